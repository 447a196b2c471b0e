"""The claims of Gao et al. (docs/theory.md §4–5, §9–10): a registry and one module per claim.

Each ``claim*`` module registers a :class:`Claim` (typed settings, runs needed, how it runs, its report
section and figure names); ``ncmargin.pipeline`` runs them. See :mod:`.registry` and docs/architecture.md.
"""

from __future__ import annotations

from .registry import REGISTRY, Claim, all_claims, get_claim, register, unregister
from .verdicts import VERDICTS, correlation_verdict, make_verdict, trend_item, trend_verdict

__all__ = ["REGISTRY", "VERDICTS", "Claim", "all_claims", "correlation_verdict", "get_claim", "make_verdict",
           "register", "trend_item", "trend_verdict", "unregister"]
