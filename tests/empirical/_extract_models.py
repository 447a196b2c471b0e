"""Model factories for tests/empirical/test_extract.py (imported by name, like a user's package)."""

from torch import nn


def tiny_cnn(num_classes: int = 10, width: int = 16):
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                         nn.Linear(32, width), nn.ReLU(), nn.Linear(width, num_classes))


NOT_CALLABLE = 3


class Opaque:
    """An arbitrary picklable object: torch.load(weights_only=True) refuses files holding it."""
