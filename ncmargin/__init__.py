"""ncmargin: numerically verify the generalization theory of neural collapse.

Subpackages
-----------
theory     pure numpy, float64: simplex ETF, margins, neural-collapse metrics, bounds, predictors
solvers    convex programs: multi-class SVM (exact, certified), UFM nuclear-norm program
empirical  torch: datasets, models, trainer, UFM dynamics, experiments for each claim
figures    one module per figure; reads saved results only
"""

from ncmargin.version import __version__

__all__ = ["Recorder", "__version__"]


def __getattr__(name: str):
    # lazy: ``import ncmargin`` must not import torch
    if name == "Recorder":
        from ncmargin.empirical.recorder import Recorder

        return Recorder
    raise AttributeError(f"module 'ncmargin' has no attribute {name!r}")
