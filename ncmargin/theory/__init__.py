"""ncmargin.theory: pure numpy, float64 theory core (THEORY.md; docs/theory.md). No torch here."""

from .checks import check_classifier, check_features
from .etf import etf_deviation, haar_orthogonal, is_etf, simplex_etf
from .margins import (
    ce_loss,
    ce_pmin_sandwich,
    logits,
    margins,
    normalized_margin,
    normalized_pairwise_margins,
    p_min,
    pairwise_margins,
    ufm_normalized_margin,
)
from .nc import NCAccumulator, class_means, nc_metrics, nc_metrics_streaming, scatter_matrices

__all__ = [
    # checks
    "check_features",
    "check_classifier",
    # etf
    "simplex_etf",
    "etf_deviation",
    "is_etf",
    "haar_orthogonal",
    # margins
    "logits",
    "margins",
    "p_min",
    "pairwise_margins",
    "normalized_pairwise_margins",
    "normalized_margin",
    "ufm_normalized_margin",
    "ce_loss",
    "ce_pmin_sandwich",
    # nc
    "nc_metrics",
    "nc_metrics_streaming",
    "NCAccumulator",
    "class_means",
    "scatter_matrices",
]
