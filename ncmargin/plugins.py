"""Self-registering modules: import every module of a package, so that the modules that declare something
(a claim, a figure) register it on import and a new one is one new module, no list to edit.

Importable by every room (like the disk owner): standard library only. A caller passes its own package,
``import_modules(__package__)``; tests/test_architecture.py checks every call does, so this loader opens no
door that the caller's room does not already have.
"""

from __future__ import annotations

import importlib
import pkgutil

__all__ = ["import_modules"]


def import_modules(package: str, prefix: str = "") -> list[str]:
    """Import every module and subpackage of ``package`` whose name starts with ``prefix`` (names starting
    with ``_`` excluded), in name order, and return their full names. A module already imported is not run
    again (``sys.modules``), so what it registered stays registered once."""
    pkg = importlib.import_module(package)
    names = [f"{package}.{m.name}" for m in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name)
             if m.name.startswith(prefix) and not m.name.startswith("_")]
    for name in names:
        importlib.import_module(name)
    return names
