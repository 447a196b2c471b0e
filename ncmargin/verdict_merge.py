"""Merge a partial ``verify --claims ...`` result into an existing ``verdicts.json`` (docs/results.md).

    doc = merge_verdicts(old_doc, new_doc, evaluated=["1c"])   # claim 1c replaced, the others stand
    rc = exit_status(doc)                                        # 0 all evaluated, 1 something failed

A claim that was evaluated again replaces all of its old verdicts (its ids may change between versions);
every other claim keeps its old verdicts untouched, with the time they were made recorded under
``merged["kept"]``. Documents of different presets are never merged (the caller picks another ``--out``).
Pure functions on dicts: the caller reads and writes the file (atomic, under the directory's lock).
"""

from __future__ import annotations

__all__ = ["exit_status", "failed_verdicts", "merge_verdicts"]


def _claim_of(v: dict) -> str:
    return str(v.get("claim", str(v.get("id", "")).split(".")[0]))


def merge_verdicts(old: dict | None, new: dict, evaluated: list[str] | None = None) -> dict:
    """``new`` with the verdicts of the claims it did not evaluate carried over from ``old``.

    ``evaluated``: the claims ``new`` evaluated (default: ``new["claims"]``, else the claims of its
    verdicts). Raises ValueError when ``old`` belongs to another preset or either document is malformed.
    """
    if not isinstance(new, dict) or not isinstance(new.get("verdicts"), list):
        raise ValueError("new verdicts document has no 'verdicts' list")  # noqa: TRY004 (bad file content)
    if evaluated is None:
        evaluated = list(new.get("claims") or dict.fromkeys(_claim_of(v) for v in new["verdicts"]))
    evaluated = [str(c) for c in evaluated]
    if not old:
        return {**new, "claims": list(evaluated)}
    if not isinstance(old.get("verdicts"), list):
        raise ValueError("existing verdicts.json has no 'verdicts' list; delete it or rerun all claims")  # noqa: TRY004
    if old.get("preset") != new.get("preset"):
        raise ValueError(f"the existing verdicts.json is of preset {old.get('preset')!r}, this run of "
                         f"{new.get('preset')!r}: use another --out directory (verdicts of two presets never mix)")
    kept = [v for v in old["verdicts"] if _claim_of(v) not in evaluated]
    fresh = [v for v in new["verdicts"] if _claim_of(v) in evaluated]
    order = list(dict.fromkeys([*(old.get("claims") or []), *(_claim_of(v) for v in old["verdicts"]), *evaluated]))
    rank = {c: i for i, c in enumerate(order)}
    verdicts = sorted([*kept, *fresh], key=lambda v: rank.get(_claim_of(v), len(rank)))  # stable within a claim
    ids = [v.get("id") for v in verdicts]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise ValueError(f"merged verdicts repeat ids {dup}; rerun all claims into a fresh --out")
    kept_claims = list(dict.fromkeys(_claim_of(v) for v in kept))
    errors = {c: e for c, e in (old.get("errors") or {}).items() if c in kept_claims}
    errors.update(new.get("errors") or {})
    merged_info = {"kept": {c: old.get("created") for c in kept_claims}, "evaluated": evaluated}
    return {**new, "verdicts": verdicts, "claims": [c for c in order if c in kept_claims or c in evaluated],
            "errors": errors, "merged": merged_info}


def failed_verdicts(doc: dict) -> list[str]:
    """Ids of verdicts that record a failure (``<claim>.error`` ids, or an ``error`` in their detail)."""
    out = []
    for v in doc.get("verdicts", []):
        if str(v.get("id", "")).endswith(".error") or (v.get("detail") or {}).get("error"):
            out.append(str(v.get("id")))
    return out


def skipped_checkpoints(doc: dict) -> dict[str, dict[str, str]]:
    """Runs judged without some of their checkpoints (unreadable files): run -> {epoch: error}."""
    out: dict[str, dict[str, str]] = {}
    for v in doc.get("verdicts", []):
        sk = (v.get("detail") or {}).get("skipped_checkpoints")
        if sk:
            for run in v.get("runs") or ["?"]:
                out.setdefault(str(run), {}).update({str(k): str(e) for k, e in sk.items()})
    return out


def exit_status(doc: dict) -> int:
    """0 when every verdict was evaluated on all its data, 1 when something failed (an error verdict, a claim
    error, or a run judged without an unreadable checkpoint)."""
    return 1 if failed_verdicts(doc) or doc.get("errors") or skipped_checkpoints(doc) else 0
