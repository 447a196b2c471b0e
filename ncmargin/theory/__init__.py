"""ncmargin.theory: pure numpy, float64 theory core (docs/theory.md). No torch here."""

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
from .alignment import (
    alignment_predictors,
    alignment_score,
    concentration_bound,
    concentration_check,
    deviation_probability,
    normalized_margin_stats,
)
from .bounds import (
    best_gamma_bound,
    bound_report,
    default_gamma_grid,
    last_layer_bound,
    margin_bound,
    margin_range,
    normalized_margins,
    rademacher_last_layer,
    spectral_complexity,
    spectral_product,
)
from .compare import angle_deg, margin_ratio, svm_comparison
from .power import (
    AlignmentEffect,
    alignment_effect,
    design_for,
    effect_power,
    equivalence_power,
    omega_squared_table,
)
from .resolution import MIN_DISCORDANT, bootstrap_error_change, correct_predictions, series_resolution
from .stats import (
    alignment_effect_verdict,
    bootstrap_ci,
    complete_table,
    fit_inverse_log,
    kendall_trend,
    permutation_test_alignment,
    spearman,
    two_way_anova,
)

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
    # compare (claim 1)
    "angle_deg",
    "margin_ratio",
    "svm_comparison",
    # bounds (claim 2)
    "margin_bound",
    "best_gamma_bound",
    "bound_report",
    "last_layer_bound",
    "default_gamma_grid",
    "margin_range",
    "rademacher_last_layer",
    "spectral_complexity",
    "spectral_product",
    "normalized_margins",
    # alignment (claim 3)
    "concentration_bound",
    "alignment_score",
    "normalized_margin_stats",
    "alignment_predictors",
    "deviation_probability",
    "concentration_check",
    # stats
    "kendall_trend",
    "spearman",
    "fit_inverse_log",
    "complete_table",
    "two_way_anova",
    "permutation_test_alignment",
    "bootstrap_ci",
    "alignment_effect_verdict",
    # power (claim 3: power behind every negative)
    "AlignmentEffect",
    "alignment_effect",
    "design_for",
    "effect_power",
    "equivalence_power",
    "omega_squared_table",
    # resolution (claims 1c, 2: trends at the test set's resolution)
    "MIN_DISCORDANT",
    "series_resolution",
    "bootstrap_error_change",
    "correct_predictions",
]
