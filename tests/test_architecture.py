"""The doors between the rooms (docs/architecture.md), checked on the source with ``ast``.

Every ``import``/``from ... import`` of every module of the package counts, including imports inside
functions and ``importlib.import_module("...")`` with a constant string. The test fails on

- a cycle among modules;
- a wrong-way import: a room may import only the rooms listed for it in :data:`ALLOWED`
  (theory ← solvers ← empirical producers ← claims ← pipeline ← cli; the disk owner ``ncmargin.store``,
  ``ncmargin.io`` and ``ncmargin.markdown`` importable by every room that touches files; figures and the
  report renderer read stored results only: no empirical, solvers or pipeline);
- a private name (``_x``) imported from, or read as an attribute of, another module;
- an ``importlib.import_module`` with a computed name outside :data:`DYNAMIC_LOADERS` (package modules) and
  :data:`USER_CODE_LOADERS` (the user's own code, named on the command line), or a call of the shared loader
  ``ncmargin.plugins.import_modules`` that does not pass the caller's own ``__package__``;
- a module over :data:`MAX_LINES` lines;
- a citation of a file outside the repository (``THEORY.md``/``DESIGN.md``: code cites ``docs/theory.md §n``).
"""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "ncmargin"

# room -> rooms it may import (its own room always allowed)
DISK = {"disk"}
# package-level modules of the disk-owner room besides ncmargin.store (issue 12: one writer per directory,
# failed-run marks, input-error messages, verdict merging: stdlib/numpy/io/store only)
DISK_MODULES = ("ncmargin.version", "ncmargin.io", "ncmargin.markdown", "ncmargin.runlock",
                "ncmargin.errors", "ncmargin.verdict_merge", "ncmargin.plugins")
ALLOWED = {
    "disk": set(),                                    # ncmargin (version), store, DISK_MODULES
    "theory": set(),                                  # pure numpy/scipy math
    "solvers": {"theory"},
    "producers": {"theory", "solvers"} | DISK,        # ncmargin.empirical.* outside claims/
    "claims": {"theory", "solvers", "producers"} | DISK,
    "figures": {"theory"} | DISK,                     # stored results only
    "report": DISK,                                   # stored results only
    "regression": {"theory", "solvers", "producers"} | DISK,
    "pipeline": {"theory", "solvers", "producers", "claims", "figures", "report"} | DISK,
    # the package facade: ``from ncmargin import Recorder`` (lazy) and the version
    "api": {"producers"} | DISK,
    "cli": {"theory", "solvers", "producers", "claims", "figures", "report", "regression", "pipeline"} | DISK,
}

# Edges that break a rule today and are being removed elsewhere; each names why it is here.
KNOWN_EXCEPTIONS: set[tuple[str, str]] = set()

MAX_LINES = 500
KNOWN_LARGE: set[str] = set()

# modules that load others by a computed name: (loader, the package whose modules it may load)
DYNAMIC_LOADERS = {
    ("ncmargin.cli", "ncmargin.commands"),                          # one module per subcommand
    ("ncmargin.empirical", "ncmargin.empirical"),                   # lazy attributes of the package
}
# the shared loader of self-registering modules: it imports the modules of the package its caller passes,
# and every caller must pass its own package (``__package__``), so it opens no door for anyone
SHARED_LOADER = ("ncmargin.plugins", "import_modules")
# modules that import the *user's* code by a name the user gives (outside the package, so no edge of this
# graph): module -> what it loads
USER_CODE_LOADERS = {
    "ncmargin.empirical.extract": "the model factory named by `extract --model pkg.module:factory` (and the "
                                  "factory recorded in a run's config.json, for the spectral bound)",
}


def room(mod: str) -> str:
    parts = mod.split(".")
    if mod == "ncmargin":
        return "api"
    if mod in DISK_MODULES or parts[:2] == ["ncmargin", "store"]:
        return "disk"
    if parts[:3] == ["ncmargin", "empirical", "claims"]:
        return "claims"
    if len(parts) > 1 and parts[1] in ("theory", "solvers", "figures", "regression"):
        return parts[1]
    if len(parts) > 1 and parts[1] == "empirical":
        return "producers"
    if mod == "ncmargin.report":
        return "report"
    if parts[:2] == ["ncmargin", "pipeline"]:
        return "pipeline"
    if mod in ("ncmargin.cli", "ncmargin.__main__") or parts[:2] == ["ncmargin", "commands"]:
        return "cli"
    raise AssertionError(f"module {mod} is in no room: add it to tests/test_architecture.py::room and to "
                         "docs/architecture.md")


def modules() -> dict[str, Path]:
    out = {}
    for p in sorted(ROOT.rglob("*.py")):
        rel = p.relative_to(ROOT.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


MODULES = modules()


def _resolve(name: str) -> str | None:
    """The module an imported dotted name refers to (the longest prefix that is a module)."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        cand = ".".join(parts[:i])
        if cand in MODULES:
            return cand
    return None


class Imports(ast.NodeVisitor):
    def __init__(self, mod: str, path: Path):
        self.mod = mod
        self.pkg = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
        self.edges: list[tuple[str, int]] = []            # (target module, line)
        self.private: list[tuple[str, str, int]] = []     # (module, name, line)
        self.dynamic: list[int] = []
        self.module_aliases: dict[str, str] = {}
        self.shared_loads: list[tuple[int, bool]] = []   # (line, passes its own package)

    def _base(self, node: ast.ImportFrom) -> str:
        if node.level == 0:
            return node.module or ""
        base = self.pkg.split(".")
        base = base[: len(base) - (node.level - 1)]
        return ".".join(base + ([node.module] if node.module else []))

    def visit_Import(self, node):
        for a in node.names:
            t = _resolve(a.name)
            if t:
                self.edges.append((t, node.lineno))
                self.module_aliases[a.asname or a.name.split(".")[0]] = t if a.asname else _resolve(
                    a.name.split(".")[0]) or t

    def visit_ImportFrom(self, node):
        base = self._base(node)
        if not base.startswith("ncmargin"):
            return
        for a in node.names:
            sub = f"{base}.{a.name}"
            if sub in MODULES:  # `from pkg import submodule`
                self.edges.append((sub, node.lineno))
                self.module_aliases[a.asname or a.name] = sub
                continue
            t = _resolve(base)
            if t:
                self.edges.append((t, node.lineno))
                if a.name.startswith("_") and not a.name.startswith("__") and t != self.mod:
                    self.private.append((t, a.name, node.lineno))

    def visit_Attribute(self, node):
        if isinstance(node.value, ast.Name) and node.value.id in self.module_aliases:
            t = self.module_aliases[node.value.id]
            if node.attr.startswith("_") and not node.attr.startswith("__") and t != self.mod:
                self.private.append((t, node.attr, node.lineno))
        self.generic_visit(node)

    def visit_Call(self, node):
        f = node.func
        is_im = (isinstance(f, ast.Attribute) and f.attr == "import_module") or (
            isinstance(f, ast.Name) and f.id == "import_module")
        if is_im and node.args:
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                name = arg.value
                if name.startswith("."):
                    pkg = node.args[1].value if len(node.args) > 1 and isinstance(node.args[1], ast.Constant) \
                        else self.pkg
                    name = pkg + name
                t = _resolve(name)
                if t:
                    self.edges.append((t, node.lineno))
            else:
                self.dynamic.append(node.lineno)
        if (isinstance(f, ast.Name) and f.id == SHARED_LOADER[1]) or (
                isinstance(f, ast.Attribute) and f.attr == SHARED_LOADER[1]):
            args = list(node.args) + [k.value for k in node.keywords if k.arg == "package"]
            own = bool(args) and isinstance(args[0], ast.Name) and args[0].id == "__package__"
            self.shared_loads.append((node.lineno, own))
        self.generic_visit(node)


def _scan():
    graph, private, dynamic, shared = {}, [], [], []
    for mod, path in MODULES.items():
        v = Imports(mod, path)
        v.visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
        graph[mod] = {t: line for t, line in reversed(v.edges) if t != mod}
        private += [(mod, t, n, line) for t, n, line in v.private]
        dynamic += [(mod, line) for line in v.dynamic]
        shared += [(mod, line, own) for line, own in v.shared_loads]
    return graph, private, dynamic, shared


GRAPH, PRIVATE, DYNAMIC, SHARED_LOADS = _scan()


def test_scanner_sees_imports_inside_functions_and_importlib_strings():
    src = ("import importlib\n"
           "def f():\n    from ncmargin.theory import stats\n    from ncmargin.io import _hidden\n"
           "    importlib.import_module('ncmargin.solvers.svm')\n    importlib.import_module(name)\n")
    v = Imports("ncmargin.report", ROOT / "report.py")
    v.visit(ast.parse(src))
    assert {t for t, _ in v.edges} == {"ncmargin.theory.stats", "ncmargin.io", "ncmargin.solvers.svm"}
    assert [(t, n) for t, n, _ in v.private] == [("ncmargin.io", "_hidden")]
    assert v.dynamic == [6]


def test_every_module_is_in_a_room():
    for mod in MODULES:
        room(mod)


def test_no_import_cycle():
    import graphlib

    try:
        tuple(graphlib.TopologicalSorter(GRAPH).static_order())
    except graphlib.CycleError as exc:
        cycle = exc.args[1]
        steps = [f"{a} -> {b} (line {GRAPH[a][b]})" for a, b in itertools.pairwise(cycle)]
        pytest.fail("import cycle:\n  " + "\n  ".join(steps))


def test_imports_go_the_right_way():
    bad = []
    for mod, targets in GRAPH.items():
        r = room(mod)
        for t, line in targets.items():
            rt = room(t)
            if rt != r and rt not in ALLOWED[r] and (mod, t) not in KNOWN_EXCEPTIONS:
                bad.append(f"{MODULES[mod].relative_to(ROOT.parent)}:{line}: {r} imports {rt} ({t})")
    assert not bad, "wrong-way imports (see docs/architecture.md):\n" + "\n".join(bad)


def test_known_exceptions_still_exist():
    """A known exception that is gone must leave the list (so it cannot hide a new edge later)."""
    stale = [e for e in KNOWN_EXCEPTIONS if e[1] not in GRAPH.get(e[0], {})]
    assert not stale, f"remove from KNOWN_EXCEPTIONS: {stale}"


def test_no_private_names_across_modules():
    bad = [f"{MODULES[m].relative_to(ROOT.parent)}:{line}: {t}.{n}" for m, t, n, line in PRIVATE]
    assert not bad, "private names used across modules (make them public in the right room):\n" + "\n".join(bad)


def test_computed_imports_are_declared_loaders():
    loaders = {m for m, _ in DYNAMIC_LOADERS} | {SHARED_LOADER[0]} | set(USER_CODE_LOADERS)
    bad = [f"{m}:{line}" for m, line in DYNAMIC if m not in loaders]
    assert not bad, f"importlib.import_module with a computed name outside DYNAMIC_LOADERS: {bad}"
    for m, pkg in DYNAMIC_LOADERS:
        assert room(pkg) == room(m) or room(pkg) in ALLOWED[room(m)], (m, pkg)


def test_shared_loader_loads_only_the_callers_own_package():
    assert SHARED_LOADS, f"nobody calls {SHARED_LOADER[0]}.{SHARED_LOADER[1]}: drop SHARED_LOADER"
    bad = [f"{m}:{line}" for m, line, own in SHARED_LOADS if not own]
    assert not bad, f"{SHARED_LOADER[1]} must be called with __package__ (its caller's own package): {bad}"


def test_scanner_sees_shared_loader_calls():
    v = Imports("ncmargin.figures.registry", ROOT / "figures" / "registry.py")
    v.visit(ast.parse("import_modules(__package__)\nplugins.import_modules('ncmargin.solvers')\n"))
    assert v.shared_loads == [(1, True), (2, False)]


def test_no_module_over_max_lines():
    big = {str(p.relative_to(ROOT.parent)): len(p.read_text(encoding="utf-8").splitlines()) for p in MODULES.values()}
    bad = {k: n for k, n in big.items() if n > MAX_LINES and k not in KNOWN_LARGE}
    assert not bad, f"modules over {MAX_LINES} lines (split them by job): {bad}"


# files still citing the spec outside the repository, rewritten on the solver branch (issue 11 follow-up);
# shrink it, never grow it
KNOWN_OUTSIDE_CITATIONS: set[str] = set()


def test_citations_point_inside_the_repository():
    import re

    pat = re.compile(r"\b(THEORY|DESIGN)\.md\b|\bTHEORY §")
    bad = [f"{p.relative_to(ROOT.parent)}:{i}" for p in MODULES.values()
           if str(p.relative_to(ROOT.parent)) not in KNOWN_OUTSIDE_CITATIONS
           for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if pat.search(line)]
    assert not bad, f"cite docs/theory.md §n instead of a file outside the repository: {bad}"

