"""ncmargin.solvers: exact, certified max-margin solvers (docs/theory.md §3).

- :func:`multiclass_svm` — hard / soft (Crammer–Singer) multi-class SVM on fixed features, scalable
  working-set method or the cvxpy reference, with a duality-gap certificate on the full problem.
- :func:`ufm_svm` — the unconstrained-feature-model SVM as the convex nuclear-norm program, factored back
  into (W, H), with its certificate.

Imports numpy/scipy/clarabel/cvxpy/numba and ncmargin.theory only (torch only lazily, for
``backend="torch"``).
"""

from .status import Status
from .svm import NotSeparableError, SVMSolution, multiclass_svm, svm_certificate
from .ufm import UFMSolution, ufm_svm

__all__ = ["NotSeparableError", "SVMSolution", "Status", "UFMSolution", "multiclass_svm", "svm_certificate", "ufm_svm"]
