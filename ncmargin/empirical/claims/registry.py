"""The claim registry: what a claim declares and how the pipeline finds it.

A claim is one module ``ncmargin/empirical/claims/claim*.py`` (or a package ``claim*/``) that calls
:func:`register` with a :class:`Claim` on import. :func:`all_claims` imports every such module of this
package, so a new claim is one new module and nothing else changes; a claim defined elsewhere (a test, a
user's package) registers the same way once imported.

A :class:`Claim` declares

- ``id``, ``title`` (the report heading), ``order`` (run order);
- ``settings_key`` (its section of a verify preset, e.g. ``"claim1c"``) and ``Settings`` (a dataclass
  whose fields, with their defaults, are the valid keys; ncmargin.store.settings_from rejects any other key);
- ``runs_needed(settings, preset) -> [run names]``: the preset runs it reads, trained up front;
- ``run(out_dir, settings, ctx) -> [verdict dicts]`` (``ctx``: ncmargin.pipeline.VerifyContext);
- ``section(out_dir, verdicts, doc) -> markdown``: its key numbers in report.md, read from stored
  results only;
- ``figures``: the names of the figures (ncmargin.figures) that show it (``<run>``: any run id);
- optionally ``per_run(analysis, settings) -> [verdicts]`` and ``run_section(analysis) -> markdown``: the
  claim judged on one analysed run alone (``ncmargin report RUN_DIR``);
- ``external_runs``: whether ``ncmargin verify --runs DIR...`` judges it on run directories recorded
  elsewhere (default: when ``per_run`` is given; the verdict ids carry the run's label through
  ``analysis["run_id"]``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ncmargin.plugins import import_modules

__all__ = ["REGISTRY", "Claim", "all_claims", "get_claim", "read_stored", "register", "unregister"]


@dataclass(frozen=True)
class Claim:
    id: str
    title: str
    Settings: type
    run: Callable[..., list[dict]]
    settings_key: str = ""
    order: int = 100
    runs_needed: Callable[..., list[str]] = field(default=lambda settings, preset: [])
    section: Callable[[Path, list[dict], dict], str] | None = None
    figures: tuple[str, ...] = ()
    per_run: Callable[[dict, dict | None], list[dict]] | None = None
    run_section: Callable[[dict], str] | None = None
    # judged on any analysed run directory (``ncmargin verify --runs``: Recorder, extract, train runs);
    # None = exactly when ``per_run`` is given
    external_runs: bool | None = None

    def __post_init__(self):
        if self.external_runs is None:
            object.__setattr__(self, "external_runs", self.per_run is not None)
        if self.external_runs and self.per_run is None:
            raise TypeError(f"claim {self.id}: external_runs=True needs per_run(analysis, settings)")
        if not dataclasses.is_dataclass(self.Settings):
            raise TypeError(f"claim {self.id}: Settings must be a dataclass, got {self.Settings!r}")
        if not self.settings_key:
            object.__setattr__(self, "settings_key", f"claim{self.id}")

    def settings(self, preset: dict):
        """This claim's typed settings from the preset section ``preset[settings_key]``."""
        from ncmargin.store import settings_from

        return settings_from(self.Settings, preset.get(self.settings_key), f"preset section {self.settings_key!r}")


REGISTRY: dict[str, Claim] = {}


def register(claim: Claim) -> Claim:
    """Add ``claim`` to the registry (an id registered again is replaced)."""
    REGISTRY[str(claim.id)] = claim
    return claim


def unregister(claim_id: str) -> None:
    REGISTRY.pop(str(claim_id), None)


_DISCOVERED = False


def _discover() -> None:
    """Import every ``claim*`` module or package of this package once (they register themselves)."""
    global _DISCOVERED
    if _DISCOVERED:
        return
    import_modules(__package__, prefix="claim")
    _DISCOVERED = True


def all_claims() -> list[Claim]:
    """Every registered claim (the package's own ones discovered first), in run order."""
    _discover()
    return sorted(REGISTRY.values(), key=lambda c: (c.order, c.id))


def get_claim(claim_id: str) -> Claim:
    _discover()
    if claim_id not in REGISTRY:
        raise ValueError(f"unknown claim {claim_id!r}; available: {', '.join(c.id for c in all_claims())}")
    return REGISTRY[claim_id]


def read_stored(path, record) -> tuple[dict | None, str | None]:
    """A stored result for a report section, read through its ``record`` (an ncmargin.store record class):
    ``(data, None)``, or ``(None, why)`` when the file is missing or does not match the record (the report
    says so instead of failing)."""
    p = Path(path)
    if not p.is_file():
        return None, f"`{p.name}` not found"
    try:
        return record.read(p), None
    except ValueError as exc:
        return None, str(exc)
