"""The command-line options every validation experiment script shares."""

from __future__ import annotations

import argparse
from pathlib import Path


def experiment_parser(description: str, *, name: str, quick_help: str, full_help: str) -> argparse.ArgumentParser:
    """An ``ArgumentParser`` with ``--quick`` (default) / ``--full``, ``--out`` (default ``out/<name>``)
    and ``--seed``; scripts add their own options to it."""
    ap = argparse.ArgumentParser(description=description)
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", dest="quick", action="store_true", default=True, help=f"{quick_help} (default)")
    mode.add_argument("--full", dest="quick", action="store_false", help=full_help)
    ap.add_argument("--out", type=Path, default=Path("out") / name, help=f"output folder (default out/{name})")
    ap.add_argument("--seed", type=int, default=0, help="base random seed (default 0)")
    return ap
