"""The command-line options every validation experiment script (``validation/*.py``) shares."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._args import non_negative_int, positive_int


def experiment_parser(description: str, *, name: str, quick_help: str, full_help: str) -> argparse.ArgumentParser:
    """An ``ArgumentParser`` with ``--quick`` (default) / ``--full``, ``--out`` (default ``out/<name>``)
    and ``--seed``; scripts add their own options to it."""
    ap = argparse.ArgumentParser(description=description)
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", dest="quick", action="store_true", default=True, help=f"{quick_help} (default)")
    mode.add_argument("--full", dest="quick", action="store_false", help=full_help)
    ap.add_argument("--out", type=Path, default=Path("out") / name, help=f"output folder (default out/{name})")
    ap.add_argument("--seed", type=non_negative_int, default=0, help="base random seed, >= 0 (default 0)")
    return ap


def add_sweep_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the backend options of :func:`theorykit.sweep.sweep` to ``parser``: ``--processes N`` (local
    worker processes, default 1: inline), ``--scheduler ADDRESS`` (a ``dask.distributed`` scheduler, e.g.
    ``tcp://host:8786``) and ``--store DIR`` (keep each finished point there and resume from it).

    Read them back with :func:`sweep_options`."""
    group = parser.add_argument_group("sweep backend")
    group.add_argument("--processes", type=positive_int, default=1,
                       help="local worker processes for the sweep (default 1: run inline)")
    group.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="run the sweep on a dask.distributed scheduler at ADDRESS (tcp://host:port) "
                            "instead of locally (needs pip install 'theorykit[distributed]')")
    group.add_argument("--store", type=Path, default=None, metavar="DIR",
                       help="write each finished sweep point to DIR; a re-run skips points already there")
    return parser


def sweep_options(args: argparse.Namespace) -> dict:
    """``{"processes", "scheduler", "store"}`` from arguments parsed with :func:`add_sweep_arguments`;
    ``SweepOptions(**sweep_options(args))`` is the options object."""
    return {"processes": args.processes, "scheduler": args.scheduler, "store": args.store}
