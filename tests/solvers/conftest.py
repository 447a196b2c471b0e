import numpy as np
import pytest


def separable(N, d, K, seed=0, spread=3.0, noise=0.6):
    """Random separable-ish features: class centres at distance ~spread, Gaussian noise."""
    rng = np.random.default_rng(seed)
    C = rng.standard_normal((K, d)) * spread / np.sqrt(2)
    y = np.arange(N) % K
    rng.shuffle(y)
    H = C[y] + noise * rng.standard_normal((N, d))
    return H, y


@pytest.fixture
def make_separable():
    return separable
