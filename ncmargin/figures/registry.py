"""The figure registry: what a figure declares and how :func:`ncmargin.figures.make_figures` finds it.

A figure is one module of ``ncmargin/figures/`` that calls :func:`register` with a :class:`Figure` on
import. :func:`all_figures` imports every module of this package (:func:`ncmargin.plugins.import_modules`),
so a new figure is one new module and nothing else changes; a figure defined elsewhere (a test, a user's
package) registers the same way once imported.

A :class:`Figure` declares

- ``name``: the file stem. A figure drawn once per input item (``each=True``) is named ``name`` for the
  first item and ``name_<i>`` for the others, or, when ``name`` holds ``<run>``, with the item's run id
  there (``bound_<run>`` -> ``bound_digits_wd0``); the claims list the same names in their ``figures``;
- ``inputs``: the stored results it reads, one of :data:`INPUTS` (``runs``: run directories with
  log.jsonl and analysis.json; ``claim1a``, ``claim1b``: the claims' record files; ``sweeps``:
  sweep.json), read through :mod:`ncmargin.figures.data`;
- ``caption``: one line saying what it shows (the drawn figure's own caption,
  ``FigureResult.caption``, adds the numbers of the data);
- ``draw(data, out_dir, name) -> FigureResult``, ``data`` being the list of items of its inputs, or one
  item when ``each``;
- ``select(data) -> data | Skip`` (optional): the part of the data it can draw, or a :class:`Skip`
  saying why it is not drawn;
- ``order``: the drawing order among the figures of the same inputs.

Figures come out grouped by inputs in :data:`INPUTS` order; within one kind, the figures of all items
(by ``order``) first, then the per-item ones, item by item.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ncmargin.plugins import import_modules

from .base import FigureResult
from .data import Inventory, read_claim1a, read_claim1b, read_run, read_sweep, run_labels

__all__ = ["INPUTS", "REGISTRY", "Figure", "Input", "Skip", "all_figures", "figure_names", "item_name", "plan",
           "read_inputs", "register", "unregister"]



@dataclass(frozen=True)
class Input:
    """One kind of stored input: its reader (a path -> the item a figure gets) and what is missing when
    none of that kind was given."""

    read: Callable[[Path], Any]
    missing: str


# the stored inputs a figure may read; a kind is a field of ncmargin.store.Inventory (what a path holds)
INPUTS = {
    "runs": Input(read_run, "no run directory among the inputs"),
    "claim1a": Input(read_claim1a, "no claim1a/fixed_features.json among the inputs"),
    "claim1b": Input(read_claim1b, "no claim1b/ufm.json among the inputs"),
    "sweeps": Input(read_sweep, "no sweep.json among the inputs"),
}


def read_inputs(inv: Inventory) -> dict[str, list]:
    """Every input that ``inv`` lists, read (a malformed file raises, naming it); runs get their labels."""
    inputs = {kind: [spec.read(p) for p in getattr(inv, kind)] for kind, spec in INPUTS.items()}
    run_labels(inputs["runs"])
    return inputs


@dataclass(frozen=True)
class Skip:
    """Returned by ``Figure.select``: the figure is not drawn, for this reason."""

    why: str


@dataclass(frozen=True)
class Figure:
    name: str
    inputs: str
    caption: str
    draw: Callable[[Any, Path, str], FigureResult]
    select: Callable[[Any], Any] | None = None
    order: int = 100
    each: bool = False

    def __post_init__(self):
        if self.inputs not in INPUTS:
            raise ValueError(f"figure {self.name!r}: inputs {self.inputs!r} is not one of {', '.join(INPUTS)}")
        if "<run>" in self.name and not (self.each and self.inputs == "runs"):
            raise ValueError(f"figure {self.name!r}: '<run>' in a name needs each=True and inputs='runs'")


REGISTRY: dict[str, Figure] = {}


def register(figure: Figure) -> Figure:
    """Add ``figure`` to the registry (a name registered again is replaced)."""
    REGISTRY[figure.name] = figure
    return figure


def unregister(name: str) -> None:
    REGISTRY.pop(name, None)


def all_figures() -> list[Figure]:
    """Every registered figure (this package's own modules imported first), in drawing order."""
    import_modules(__package__)
    kinds = list(INPUTS)
    return sorted(REGISTRY.values(), key=lambda f: (kinds.index(f.inputs), f.each, f.order, f.name))


def figure_names() -> tuple[str, ...]:
    """The names of every registered figure (``<run>``: one per run)."""
    return tuple(f.name for f in all_figures())


def item_name(name: str, item: Any, i: int) -> str:
    """The file stem of a per-item figure: ``<run>`` replaced by the run id (characters outside
    ``A-Za-z0-9._-`` become ``_``), else ``name`` for the first item and ``name_<i>`` after it."""
    if "<run>" in name:
        return name.replace("<run>", re.sub(r"[^A-Za-z0-9._-]+", "_", item.run_id))
    return name if i == 0 else f"{name}_{i}"


def _selected(fig: Figure, data: Any) -> Any:
    out = fig.select(data) if fig.select is not None else data
    if not isinstance(out, Skip) and isinstance(out, Sequence) and not out:
        return Skip("nothing to draw")
    return out


def plan(inputs: dict[str, list], out_dir: Path) -> list[tuple[str, Callable[[], FigureResult] | Skip]]:
    """What to draw from ``inputs`` (kind -> read items): ``(name, job)`` per figure, ``job`` a call that
    draws it or the :class:`Skip` saying why not; a kind with no input gives one Skip naming all its figures."""
    figs = all_figures()
    out: list[tuple[tuple, str, Any]] = []
    for k, kind in enumerate(INPUTS):
        mine = [f for f in figs if f.inputs == kind]
        items = inputs.get(kind) or []
        if mine and not items:
            out.append(((k, -1, 0), ", ".join(f.name for f in mine), Skip(INPUTS[kind].missing)))
            continue
        for f in mine:
            pieces = enumerate(items) if f.each else [(-1, items)]
            for i, data in pieces:
                name = item_name(f.name, data, i) if f.each else f.name
                sel = _selected(f, data)
                job = sel if isinstance(sel, Skip) else (lambda f=f, d=sel, n=name: f.draw(d, out_dir, n))
                out.append(((k, i, f.order), name, job))
    return [(name, job) for _, name, job in sorted(out, key=lambda t: t[0])]
