"""Fixtures shared by the test folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from ncmargin.store import thread_limits

TESTS = Path(__file__).resolve().parent
# folders of small torch models: one torch thread per test (on a shared 2-core machine OpenMP spin contention
# costs more than the second thread gains)
ONE_TORCH_THREAD = ("empirical", "robustness")


@pytest.fixture(autouse=True)
def _one_torch_thread(request):
    if Path(request.node.path).resolve().relative_to(TESTS).parts[0] not in ONE_TORCH_THREAD:
        yield
        return
    import torch  # noqa: F401 - thread_limits sets torch's pool when torch is imported

    with thread_limits(1, blas=False):
        yield
