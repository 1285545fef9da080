"""The ``theorykit`` command line: the one place that parses arguments (stages never import it).

Subcommands live in small modules that each expose ``register(subparsers)``: :mod:`._systems` (``systems``,
``derive``, ``solve``), :mod:`._reproduce` (``reproduce``, ``seed-study``) and :mod:`._analysis`
(``fixed-points``, ``continue``, ``phase-diagram``, ``basins``). :mod:`._experiments` holds the options the
scripts in ``validation/`` share. Every value is checked before any work starts; bad arguments and library
errors print one line naming the flag and exit non-zero; ``--traceback`` shows the full Python traceback.
"""

from __future__ import annotations

import argparse
import sys

from .._io import version_text
from ..errors import TheorykitError
from . import _analysis, _reproduce, _systems
from ._experiments import (add_sweep_arguments as add_sweep_arguments, experiment_parser as experiment_parser,
                           sweep_options as sweep_options)

#: modules contributing subcommands, in the order ``--help`` lists them
COMMAND_MODULES = (_reproduce, _systems, _analysis)


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are a single line (plus a pointer to ``--help``)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``theorykit`` argument parser with every subcommand (the command-line reference is generated from it)."""
    parser = _Parser(
        prog="theorykit",
        description="Derive, compile, analyse and validate the learning dynamics of self-supervised learning.",
        epilog="Run 'theorykit COMMAND --help' for the options of one command.",
        formatter_class=argparse.RawDescriptionHelpFormatter,  # prints --version on one line, unwrapped
    )
    parser.add_argument("--version", action="version", version=version_text())
    parser.add_argument("--traceback", action="store_true", help="show the full traceback on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``theorykit`` command line in this process.

    Parameters
    ----------
    argv : list of str, optional
        The arguments after ``theorykit`` (default: ``sys.argv[1:]``), e.g. ``["reproduce", "--only", "reference"]``.

    Returns
    -------
    int
        The exit status: 0 on success; 1 when ``reproduce`` finds a failing claim or on an error (one line
        on stderr); 2 when no command is given; 130 when interrupted.

    Raises
    ------
    SystemExit
        As argparse does: for bad arguments (status 2, one line naming the flag) and for ``--help`` and
        ``--version`` (status 0).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("theorykit: interrupted", file=sys.stderr)
        return 130
    except (TheorykitError, KeyError, ValueError, OSError) as exc:
        if args.traceback:
            raise
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"theorykit {args.command}: error: {msg}", file=sys.stderr)
        return 1
    except Exception as exc:  # an internal bug: still one line unless asked for more
        if args.traceback:
            raise
        print(f"theorykit {args.command}: internal error: {type(exc).__name__}: {exc} "
              "(rerun with --traceback and report it)", file=sys.stderr)
        return 1


__all__ = ["main", "build_parser", "experiment_parser", "add_sweep_arguments", "sweep_options"]
