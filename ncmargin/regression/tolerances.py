"""Tolerance classes of the regression suite (docs/theory.md §11): every number is argued here."""

from __future__ import annotations

import math

import numpy as np

from .engine import Tol

__all__ = ["CLOSED_FORM", "EXACT", "GD_FLOAT64", "POWER_ITERATION", "TRAIN_FLOAT32_ARRAY", "TRAIN_FLOAT32_SCALAR",
           "svm_certified_tols", "ufm_certified_tol"]

# ------------------------------------------------------------------------------------- tolerance classes
# Every number below is argued here and in docs/theory.md §11; the measurements quoted were made on the
# machine that recorded the goldens (see the versions in each golden file).

EXACT = Tol("exact", why="discrete output (integer count, boolean, string status, index set): "
                         "any change is a real change")
# Closed-form float64: a fixed sequence of O(10^3) flops on inputs with |entries| <= ~10. Rounding error is
# then <= ~1e3 * eps * 10 ~ 2e-12 absolute and ~1e-13 relative for quantities not produced by cancellation.
# Measured: recomputing the nc_metrics, margins, bounds and alignment cases on three random row
# permutations of their inputs (a different summation order) moved the values by <= 5.1e-16 relative.
# 1e-10 relative leaves a wide margin for other BLAS/LAPACK builds (different blocking, FMA); the 1e-12
# absolute floor is for values that are 0 up to rounding (ETF deviations ~1e-16, NC metrics of exact
# structure), whose relative error is meaningless.
CLOSED_FORM = Tol("rel", rtol=1e-10, atol=1e-12,
                  why="closed-form float64 (rounding <= ~1e-13 rel, measured <= 5.1e-16 under row "
                      "permutation; 1e-12 floor for values that are 0 up to rounding)")
# Gradient descent in float64 for a few hundred steps (UFM dynamics in torch float64, fixed-feature GD in
# numpy): deterministic, but rounding differences (another BLAS kernel, summation order) are propagated
# and amplified by the iteration. Measured amplification: perturbing the step size by one ulp (a relative
# perturbation of 1.1e-16 at every step) moved every recorded quantity by <= 5.1e-15 relative (UFM) and
# <= 3.0e-15 (fixed features; row-permuted features: <= 6.0e-16). 1e-9 relative leaves >= 1e5x for
# kernels that round differently; the 1e-12 floor covers quantities that are 0 up to rounding.
GD_FLOAT64 = Tol("rel", rtol=1e-9, atol=1e-12,
                 why="float64 gradient descent, <= 300 steps (one-ulp step-size perturbation moved the "
                     "records by <= 5.1e-15 rel)")
# Training in float32 (torch, CPU, --deterministic, one thread): bitwise reproducible run-to-run
# (measured: 0 difference). Changing the torch thread count from 1 to 2 (a different reduction order in
# the float32 GEMMs) moved the features after 5 epochs by 6.6e-8 relative (Frobenius) and the float64 log
# metrics by <= 4.5e-8 relative. 1e-5 leaves >= 100x for other CPUs' kernels.
TRAIN_FLOAT32_ARRAY = Tol("norm", rtol=1e-5,
                          why="float32 training, few epochs: thread-count variation measured 6.6e-8 rel "
                              "(Frobenius); 1e-5 leaves >= 100x")
TRAIN_FLOAT32_SCALAR = Tol("rel", rtol=1e-5, atol=1e-6,
                           why="float64 metric of float32 features after a few epochs: thread-count "
                               "variation measured <= 4.5e-8 rel; 1e-6 floor for values near 0")


# Power iteration (conv-layer spectral norms, float64, seeded start, stop when the relative change of
# sigma^2 is <= tol = 1e-7): deterministic, but a rounding difference can move the stopping point by one
# iteration, which changes each conv sigma by <= tol/2 relative; products over the 3 conv layers of the
# small CNN (spectral product, R_A, Rademacher term) by <= 1.5e-7. 5e-7 relative covers that.
POWER_ITERATION = Tol("rel", rtol=5e-7, atol=1e-12,
                      why="float64 power iteration stopped at rel. change 1e-7 of sigma^2: a one-iteration "
                          "shift of the stop moves each sigma <= 5e-8, products over 3 conv layers <= 1.5e-7")


def svm_certified_tols(sol) -> tuple[Tol, Tol]:
    """(objective tolerance, W tolerance) of one SVM run from ITS certificate [our form]:

    - objective: a primal W that violates constraints by v has W/(1-v) feasible, and dual <= opt, so
      |objective - opt| <= (objective - dual) + 2 v objective (+ 1e-12 objective for float64 rounding of
      the objective itself);
    - W: the objective (1/2)||W||^2 (+ C sum xi) is 1-strongly convex, so a feasible point with
      P(W) - opt <= g is within sqrt(2 g) of the unique optimum W* in Frobenius norm; with the
      feasibility correction, ||W - W*||_F <= sqrt(2 (gap + 3 v obj)) + 1.01 v ||W||_F (+ 1e-12 ||W||).

    Both are per-run bounds (``certified=True``): the allowed golden-vs-now difference is their sum.
    """
    obj = float(sol.objective)
    gap = max(0.0, obj - float(sol.dual_objective))
    v = max(0.0, float(sol.max_violation))
    nW = float(np.linalg.norm(sol.W))
    a_obj = gap + 2.0 * v * obj + 1e-12 * abs(obj)
    a_W = math.sqrt(2.0 * (gap + 3.0 * v * obj)) + 1.01 * v * nW + 1e-12 * nW
    why = "certified by this run's duality gap and max violation (strong convexity of 1/2||W||^2)"
    return (Tol("rel", atol=a_obj, certified=True, why="certified: " + why),
            Tol("norm", atol=a_W, certified=True, why="certified: " + why))


def ufm_certified_tol(sol, scale: float = 1.0) -> Tol:
    """Objective tolerance of one UFM nuclear-norm solve from its certificate: primal upper bound minus
    dual lower bound (both certified), plus 1e-12 relative rounding [our form]."""
    c = sol.certificate
    gap = max(0.0, float(c["primal_upper_bound"]) - float(c["dual_lower_bound"]))
    return Tol("rel", atol=scale * (gap + 1e-12 * abs(float(sol.objective))), certified=True,
               why="certified: primal upper bound - dual lower bound of this solve")
