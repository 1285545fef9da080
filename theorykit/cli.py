"""The ``theorykit`` command line. Subcommands live in small modules that each expose ``register(subparsers)``.

Bad arguments and library errors print one line and exit non-zero; ``--traceback`` shows the full
Python traceback for debugging.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ._io import version_text
from .errors import TheorykitError

#: modules contributing subcommands, in the order ``--help`` lists them
COMMAND_MODULES = (
    "theorykit._commands",
    "theorykit.analysis._commands",
)


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are a single line (plus a pointer to ``--help``)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="theorykit",
        description="Derive, compile, analyse and validate the learning dynamics of self-supervised learning.",
        epilog="Run 'theorykit COMMAND --help' for the options of one command.",
        formatter_class=argparse.RawDescriptionHelpFormatter,  # prints --version on one line, unwrapped
    )
    parser.add_argument("--version", action="version", version=version_text())
    parser.add_argument("--traceback", action="store_true", help="show the full traceback on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # that command group is not part of this installation
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
