"""Golden files of the regression suite (docs/theory.md §11).

Location: package data, ``ncmargin/regression/goldens/`` (listed in setup.cfg ``[options.package_data]``),
so ``ncmargin regress`` works from an installed package as well as from a checkout; ``--golden-dir``
points elsewhere. Per case:

    goldens/<case>.json   format tag, case, description, created (UTC), versions (python, platform, numpy,
                          scipy, torch, cvxpy, clarabel, ncmargin), sha256 of the .npz, and per quantity
                          {"type", "value" (scalars), "tolerance" (kind, rtol, atol, certified, why)}
    goldens/<case>.npz    the array-valued quantities, keyed by quantity name (only if the case has any)
    goldens/inputs/       fixed INPUT files (feature files, a trained checkpoint, a statistics table),
                          generated once with seeded generators and stored, so an input cannot drift

Scalars are stored in JSON exactly (Python's float repr round-trips float64); NaN/inf as the strings
"nan"/"inf"/"-inf". Both files are written atomically (temp file + rename; ``ncmargin.io``), the .npz
first; the JSON records the .npz's sha256, so a torn pair (an interrupted update between the two renames)
is detected on load and reported with the fix (rerun ``--update``).
"""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from ncmargin.io import atomic_path, atomic_write_text
from ncmargin.store import versions

from .engine import Quantity, Tol, normalize

__all__ = ["FORMAT", "GOLDEN_DIR", "golden_paths", "load_golden", "save_golden", "versions"]

GOLDEN_DIR = Path(__file__).resolve().parent / "goldens"
FORMAT = "ncmargin-regression-golden/1"
def golden_paths(case: str, directory: Path | None = None) -> tuple[Path, Path]:
    d = Path(directory) if directory is not None else GOLDEN_DIR
    return d / f"{case}.json", d / f"{case}.npz"


def _enc_scalar(v):
    if isinstance(v, float) and not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    return v


def _dec_scalar(typ: str, v):
    if typ == "float":
        return float(v)  # float("nan"), float("inf") parse the encoded strings
    if typ == "int":
        return int(v)
    if typ == "bool":
        return bool(v)
    if typ == "none":
        return None
    return str(v)


def save_golden(case: str, description: str, quantities: dict[str, Quantity],
                directory: Path | None = None) -> tuple[Path, Path | None]:
    """Write the golden of ``case`` atomically (.npz first, then the JSON naming its sha256)."""
    jpath, npath = golden_paths(case, directory)
    arrays: dict[str, np.ndarray] = {}
    entries: dict[str, Any] = {}
    for name, q in quantities.items():
        v = normalize(q.value)
        if isinstance(v, np.ndarray):
            arrays[name] = v
            entries[name] = {"type": "array", "dtype": str(v.dtype), "shape": list(v.shape),
                             "tolerance": q.tol.to_dict()}
        else:
            typ = {bool: "bool", int: "int", float: "float", str: "str", type(None): "none"}[type(v)]
            entries[name] = {"type": typ, "value": _enc_scalar(v), "tolerance": q.tol.to_dict()}
    sha = None
    if arrays:
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        data = buf.getvalue()
        sha = hashlib.sha256(data).hexdigest()
        with atomic_path(npath, suffix=".npz") as tmp:
            tmp.write_bytes(data)
    doc = {"format": FORMAT, "case": case, "description": description,
           "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
           "versions": versions(), "npz_sha256": sha, "quantities": entries}
    atomic_write_text(jpath, json.dumps(doc, indent=1, allow_nan=False) + "\n")
    if not arrays and npath.exists():
        npath.unlink()
    return jpath, (npath if arrays else None)


def load_golden(case: str, directory: Path | None = None) -> tuple[dict[str, tuple[Any, Tol]], dict[str, Any]]:
    """Read a golden: ``({quantity: (value, stored Tol)}, metadata)``. Errors name the file and the fix."""
    jpath, npath = golden_paths(case, directory)
    if not jpath.is_file():
        raise FileNotFoundError(f"{jpath}: no golden for case {case!r}; record one deliberately with "
                                f"`ncmargin regress --update --only {case}`")
    try:
        doc = json.loads(jpath.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{jpath}: malformed golden JSON ({exc}); restore it from git or rerun "
                         f"`ncmargin regress --update --only {case}`") from exc
    if doc.get("format") != FORMAT:
        raise ValueError(f"{jpath}: format {doc.get('format')!r} is not {FORMAT!r}; rerun "
                         f"`ncmargin regress --update --only {case}`")
    arrays: dict[str, np.ndarray] = {}
    if doc.get("npz_sha256"):
        if not npath.is_file():
            raise FileNotFoundError(f"{npath}: the golden arrays of case {case!r} are missing; restore "
                                    f"them from git or rerun `ncmargin regress --update --only {case}`")
        data = npath.read_bytes()
        if hashlib.sha256(data).hexdigest() != doc["npz_sha256"]:
            raise ValueError(f"{npath}: sha256 differs from the one recorded in {jpath.name} (a torn or "
                             f"hand-edited golden); restore both from git or rerun "
                             f"`ncmargin regress --update --only {case}`")
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    out: dict[str, tuple[Any, Tol]] = {}
    for name, e in doc["quantities"].items():
        tol = Tol.from_dict(e["tolerance"])
        if e["type"] == "array":
            if name not in arrays:
                raise ValueError(f"{npath}: array {name!r} missing; rerun `ncmargin regress --update --only {case}`")
            out[name] = (arrays[name], tol)
        else:
            out[name] = (_dec_scalar(e["type"], e["value"]), tol)
    meta = {k: v for k, v in doc.items() if k != "quantities"}
    return out, meta
