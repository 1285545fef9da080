"""``theorykit reproduce`` and ``theorykit seed-study``."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import InvalidParameterError
from ._args import non_negative_int, positive_int, select_names, tolerance_overrides, writable_folder

#: a claim that exists, for the help of --tolerance
TOLERANCE_EXAMPLE = "reference.stable_fixed_point=1e-6"


def _theories_and_tolerances(args) -> tuple[list[str], dict[str, float]]:
    """The selected theories and the checked ``--tolerance`` overrides (theories are loaded only to read
    their claim names when there are overrides)."""
    from ..theories import get_theory, theory_names

    names = select_names(args.only, theory_names())
    if not args.tolerance:
        return names, {}
    return names, tolerance_overrides(args.tolerance, {name: get_theory(name).claim_names for name in names})


def parse_seeds(text: str) -> list[int]:
    """``"10"`` -> seeds 0..9; ``"3:8"`` -> 3..7; ``"1,4,9"`` -> those seeds (distinct, >= 0)."""
    try:
        if "," in text:
            seeds = [int(x) for x in text.split(",") if x.strip()]
        elif ":" in text:
            lo, hi = (int(x) for x in text.split(":"))
            seeds = list(range(lo, hi))
        else:
            seeds = list(range(int(text)))
    except ValueError:
        raise InvalidParameterError(f"--seeds must be N, START:STOP or a comma-separated list, got {text!r}") from None
    if not seeds:
        raise InvalidParameterError(f"--seeds {text!r} gives no seed")
    if min(seeds) < 0:
        raise InvalidParameterError(f"--seeds {text!r}: seeds must be >= 0")
    if len(set(seeds)) != len(seeds):
        raise InvalidParameterError(f"--seeds {text!r} repeats a seed")
    return seeds


def _cmd_reproduce(args) -> int:
    from ..report import reproduce
    from ..sweep import SweepOptions

    out = writable_folder(args.out, "--out")
    store = writable_folder(args.store, "--store") if args.store is not None else None
    names, overrides = _theories_and_tolerances(args)
    options = SweepOptions(args.processes, args.scheduler, store)
    reports, record = reproduce(out, only=names, quick=not args.full, seed=args.seed, tolerance_overrides=overrides,
                                sweep_options=options)
    n = sum(len(r.claims) for r in reports)
    failed = [(r.theory, c) for r in reports for c in r.claims if not c.passed]
    print(f"\n{n - len(failed)}/{n} claims pass; report: {out}/report.md, {out}/report.html, {out}/results.json")
    for theory, c in failed:
        print(f"FAIL {theory}.{c.describe_failure()}")
    return 1 if failed else 0


def _cmd_seed_study(args) -> int:
    from ..seed_study import seed_study

    seeds = parse_seeds(args.seeds)
    out = writable_folder(args.out, "--out")
    names, overrides = _theories_and_tolerances(args)
    rows = seed_study(out, seeds, only=names, quick=not args.full, tolerance_overrides=overrides,
                      processes=args.processes)
    fragile = [r for r in rows if r["n_passed"] < r["n_seeds"]]
    print(f"\n{len(rows) - len(fragile)}/{len(rows)} claims pass at all {len(seeds)} seeds; "
          f"table: {out}/pass_rates.md, {out}/pass_rates.json")
    for r in sorted(fragile, key=lambda r: r["pass_rate"]):
        print(f"  {r['theory']}.{r['claim']}: {r['n_passed']}/{r['n_seeds']} (failed at seeds "
              f"{', '.join(map(str, r['failed_seeds']))})")
    return 0


def _common(p: argparse.ArgumentParser, *, out: str, full_help: str) -> None:
    from ..theories import BUILTIN_THEORIES

    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="small default settings (the default)")
    mode.add_argument("--full", action="store_true", help=full_help)
    p.add_argument("--only", action="append", metavar="THEORY",
                   help=f"run only these theories (repeatable or comma-separated): {', '.join(BUILTIN_THEORIES)}")
    p.add_argument("--out", type=Path, default=Path(out), help=f"output folder (default: {out})")
    p.add_argument("--tolerance", action="append", metavar="CLAIM=VALUE",
                   help=f"override a claim's tolerance (>= 0), e.g. {TOLERANCE_EXAMPLE}; 'THEORY.CLAIM' or a claim "
                        "name of a selected theory")


def register(sub) -> None:
    p = sub.add_parser("reproduce", help="derive, analyse, simulate and check every theory; write a report")
    _common(p, out="theorykit-report", full_help="paper-scale settings (hours on 2 cores)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="base random seed, >= 0 (default 0)")
    p.add_argument("--processes", type=positive_int, default=1, metavar="N",
                   help="run the theories' sweeps on N local worker processes (default 1: in this process)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run the sweeps on a dask.distributed scheduler (pip install 'theorykit[distributed]')")
    p.add_argument("--store", type=Path, default=None, metavar="DIR",
                   help="keep finished sweep points in DIR (one subfolder per theory); a re-run resumes, skipping "
                        "them; a theory without sweeps says so in its notes")
    p.set_defaults(func=_cmd_reproduce)

    p = sub.add_parser("seed-study", help="run reproduce at many seeds and tabulate how often each claim passes")
    _common(p, out="theorykit-seed-study", full_help="paper-scale settings (hours per seed on 2 cores)")
    p.add_argument("--seeds", default="10", help="N (seeds 0..N-1), START:STOP or a list like 1,4,9 (default 10)")
    p.add_argument("--processes", type=positive_int, default=1, metavar="N", help="seeds run at a time (default 1)")
    p.set_defaults(func=_cmd_seed_study)
