"""The ``ncmargin`` command line (also ``python -m ncmargin``).

Only this module wires the subpackages together. Each subcommand lives in
``ncmargin/commands/<name>.py`` and defines ``HELP`` (one line), ``EXAMPLE`` (shown in ``--help``),
``add_arguments(parser)`` and ``run(args) -> int``. Command modules import heavy dependencies
(torch, cvxpy) inside ``run`` so that ``ncmargin --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Order shown in --help. A name whose module does not exist yet is skipped.
COMMANDS = ("verify", "train", "extract", "analyze", "svm", "ufm", "sweep", "figures", "report", "regress")


def _load(name: str):
    try:
        return importlib.import_module(f"ncmargin.commands.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"ncmargin.commands.{name}":
            return None
        raise


def build_parser() -> argparse.ArgumentParser:
    from ncmargin.version import __version__

    parser = argparse.ArgumentParser(
        prog="ncmargin",
        description="Verify the generalization theory of neural collapse (Gao et al., arXiv:2310.08358): "
        "exact max-margin solvers, margins, NC metrics and margin bounds on real training runs.",
    )
    parser.add_argument("--version", action="version", version=f"ncmargin {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="let errors propagate with their full traceback (for bug reports)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        mod = _load(name)
        if mod is None:
            continue
        p = sub.add_parser(
            name,
            help=mod.HELP,
            description=mod.HELP,
            epilog="example:\n  " + mod.EXAMPLE.strip().replace("\n", "\n  "),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "_run", None) is None:
        parser.print_help()
        return 0
    if args.debug:
        return int(args._run(args) or 0)
    from ncmargin.errors import INPUT_ERRORS, describe

    try:
        return int(args._run(args) or 0)
    except INPUT_ERRORS as exc:
        # Bad input (ncmargin/errors.py): one clear line naming the file and the fix, no traceback
        line = describe(exc)
        if line is None:
            return _internal_error(args.command, exc)
        print(f"ncmargin {args.command}: error: {line}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 (a bug, not bad input: one line + how to get the traceback)
        return _internal_error(args.command, exc)


def _internal_error(command: str, exc: BaseException) -> int:
    print(f"ncmargin {command}: internal error: {type(exc).__name__}: {exc} (a bug in ncmargin, not in your "
          "input; rerun with `ncmargin --debug ...` for the traceback and report it)", file=sys.stderr)
    return 3


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
