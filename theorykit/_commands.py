"""Core CLI commands: list and print systems, solve one, reproduce the theories' results."""

from __future__ import annotations

import argparse

from .errors import InvalidParameterError


def parse_assignments(items: list[str] | None, what: str) -> dict[str, float]:
    """``["eta=0.1", "sigma2=0.5"]`` -> ``{"eta": 0.1, "sigma2": 0.5}`` with a clear error on bad items."""
    out: dict[str, float] = {}
    for item in items or []:
        for part in item.split(","):
            if not part.strip():
                continue
            name, sep, value = part.partition("=")
            if not sep or not name.strip():
                raise InvalidParameterError(f"{what} expects NAME=VALUE, got {part!r}")
            try:
                out[name.strip()] = float(value)
            except ValueError:
                raise InvalidParameterError(f"{what} {name.strip()}: {value!r} is not a number") from None
    return out


def resolve_system(name: str):
    """The :class:`~theorykit.theories.BuiltinSystem` called ``name`` (clear error listing the choices)."""
    from .theories import builtin_systems

    systems = builtin_systems()
    if name not in systems:
        matches = [k for k in systems if k.endswith("." + name)]
        if len(matches) == 1:
            return systems[matches[0]]
        raise InvalidParameterError(f"unknown system {name!r}; choose one of: {', '.join(systems)}")
    return systems[name]


def add_system_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments every command acting on one built-in system takes."""
    p.add_argument("system", help="built-in system, e.g. reference.eigenmode_cubic (see 'theorykit systems')")
    p.add_argument("-p", "--param", action="append", metavar="NAME=VALUE",
                   help="override a parameter (repeatable, or comma-separated)")
    p.add_argument("--backend", choices=("numba", "numpy"), default="numba", help="compiled backend")


def system_and_params(args) -> tuple:
    """(builtin, compiled system, params dict) from parsed :func:`add_system_arguments` arguments."""
    from .compile import compile_system

    builtin = resolve_system(args.system)
    params = {**builtin.params, **parse_assignments(args.param, "--param")}
    csys = compile_system(builtin.build(), backend=args.backend)
    unknown = sorted(set(params) - set(csys.param_names))
    if unknown:
        raise InvalidParameterError(f"--param: {unknown} are not parameters of {args.system}; "
                                    f"its parameters are {list(csys.param_names)}")
    return builtin, csys, params


def _cmd_systems(args) -> int:
    from .theories import builtin_systems

    for key, b in builtin_systems().items():
        print(f"{key:40s} {b.description}")
    return 0


def _cmd_derive(args) -> int:
    builtin = resolve_system(args.system)
    system = builtin.build()
    print(system.to_latex() if args.format == "latex" else system.to_markdown())
    return 0


def _parse_seeds(text: str) -> list[int]:
    """``"10"`` -> seeds 0..9; ``"3:8"`` -> 3..7; ``"1,4,9"`` -> those seeds."""
    try:
        if "," in text:
            return [int(x) for x in text.split(",") if x.strip()]
        if ":" in text:
            lo, hi = (int(x) for x in text.split(":"))
            return list(range(lo, hi))
        return list(range(int(text)))
    except ValueError:
        raise InvalidParameterError(f"--seeds must be N, START:STOP or a comma-separated list, got {text!r}") from None


def _cmd_seed_study(args) -> int:
    from .seed_study import seed_study

    if args.processes < 1:
        raise InvalidParameterError(f"--processes must be >= 1, got {args.processes}")
    seeds = _parse_seeds(args.seeds)
    rows = seed_study(args.out, seeds, only=args.only, quick=not args.full,
                      tolerance_overrides=parse_assignments(args.tolerance, "--tolerance"), processes=args.processes)
    fragile = [r for r in rows if r["n_passed"] < r["n_seeds"]]
    print(f"\n{len(rows) - len(fragile)}/{len(rows)} claims pass at all {len(seeds)} seeds; "
          f"table: {args.out}/pass_rates.md, {args.out}/pass_rates.json")
    for r in sorted(fragile, key=lambda r: r["pass_rate"]):
        print(f"  {r['theory']}.{r['claim']}: {r['n_passed']}/{r['n_seeds']} (failed at seeds "
              f"{', '.join(map(str, r['failed_seeds']))})")
    return 0


def register_seed_study(sub) -> None:
    p = sub.add_parser("seed-study", help="run reproduce at many seeds and tabulate how often each claim passes")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="small default settings (the default)")
    mode.add_argument("--full", action="store_true", help="paper-scale settings (hours per seed on 2 cores)")
    p.add_argument("--seeds", default="10", help="N (seeds 0..N-1), START:STOP or a list like 1,4,9 (default 10)")
    p.add_argument("--only", action="append", metavar="THEORY", help="run only these theories (as in reproduce)")
    p.add_argument("--out", default="theorykit-seed-study",
                   help="folder for the per-seed reports and pass_rates.md (default: theorykit-seed-study); "
                        "seeds already there with the same settings are reused")
    p.add_argument("--tolerance", action="append", metavar="CLAIM=VALUE", help="override a claim's tolerance")
    p.add_argument("--processes", type=int, default=1, metavar="N", help="seeds run at a time (default 1)")
    p.set_defaults(func=_cmd_seed_study)


def register(sub) -> None:
    register_reproduce(sub)
    register_seed_study(sub)
    register_solve(sub)

    p = sub.add_parser("systems", help="list the built-in ODE systems")
    p.set_defaults(func=_cmd_systems)

    p = sub.add_parser("derive", help="print the equations of a built-in system (LaTeX or Markdown)")
    p.add_argument("system", help="built-in system name (see 'theorykit systems')")
    p.add_argument("--format", choices=("markdown", "latex"), default="markdown")
    p.set_defaults(func=_cmd_derive)


def _cmd_reproduce(args) -> int:
    from .report import reproduce

    overrides = parse_assignments(args.tolerance, "--tolerance")
    if args.processes is not None and args.processes < 1:
        raise InvalidParameterError(f"--processes must be >= 1, got {args.processes}")
    from .sweep import SweepOptions

    options = SweepOptions(args.processes or 1, args.scheduler, args.store)
    reports, record = reproduce(args.out, only=args.only, quick=not args.full, seed=args.seed,
                                tolerance_overrides=overrides, sweep_options=options)
    n = sum(len(r.claims) for r in reports)
    failed = [(r.theory, c) for r in reports for c in r.claims if not c.passed]
    print(f"\n{n - len(failed)}/{n} claims pass; report: {args.out}/report.md, {args.out}/report.html, "
          f"{args.out}/results.json")
    for theory, c in failed:
        print(f"FAIL {theory}.{c.describe_failure()}")
    return 1 if failed else 0


def register_reproduce(sub) -> None:
    p = sub.add_parser("reproduce", help="derive, analyse, simulate and check every theory; write a report")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="small default settings (the default)")
    mode.add_argument("--full", action="store_true", help="paper-scale settings (hours on 2 cores)")
    p.add_argument("--only", action="append", metavar="THEORY",
                   help="run only these theories (repeatable or comma-separated): reference, "
                        "noncontrastive, contrastive_highdim, barlow_ntk, imbalanced_pruning")
    p.add_argument("--out", default="theorykit-report", help="report folder (default: theorykit-report)")
    p.add_argument("--seed", type=int, default=0, help="base random seed (default 0)")
    p.add_argument("--tolerance", action="append", metavar="CLAIM=VALUE",
                   help="override a claim's tolerance, e.g. reference.fixed_point=1e-12")
    p.add_argument("--processes", type=int, default=None, metavar="N",
                   help="run the theories' sweeps on N local worker processes (default: in this process)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run the sweeps on a dask.distributed scheduler (pip install 'theorykit[distributed]')")
    p.add_argument("--store", default=None, metavar="DIR",
                   help="keep finished sweep points in DIR; a re-run resumes, skipping them")
    p.set_defaults(func=_cmd_reproduce)


def _cmd_solve(args) -> int:
    import numpy as np

    from ._io import save_result
    from .solve import solve

    builtin, csys, params = system_and_params(args)
    y0 = {**builtin.y0, **parse_assignments(args.y0, "--y0")}
    t_eval = np.linspace(0.0, args.t_final, args.points)
    sol = solve(csys, y0, (0.0, args.t_final), params, method=args.method, t_eval=t_eval, dt=args.dt,
                rtol=args.rtol, atol=args.atol, throw=False)
    print(f"{args.system}: status {sol.status.name} at t = {sol.t[-1]:.6g}" + ("" if sol.success else f" ({sol.message})"))
    for name, value in zip(csys.state_names, sol.final):
        print(f"  {name} = {value:.10g}")
    from pathlib import Path

    out = Path(args.out)
    arrays = {"t": sol.t, "y": sol.y}
    arrays.update({f"obs_{k}": sol.observed(k) for k in csys.observable_names})
    save_result(out / "trajectory", arrays, {"system": args.system, "params": params, "y0": y0,
                                             "method": args.method, "status": sol.status.name,
                                             "state_names": list(csys.state_names), "stats": dict(sol.stats)})
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    for i, name in enumerate(csys.state_names):
        ax.plot(sol.t, sol.y[:, i], label=name)
    ax.set_xlabel("t")
    ax.set_title(f"{args.system} ({sol.status.name})")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "trajectory.png", dpi=110)
    plt.close(fig)
    print(f"wrote {out / 'trajectory.npz'}, {out / 'trajectory.json'}, {out / 'trajectory.png'}")
    return 0 if sol.success else 1


def register_solve(sub) -> None:
    from .solve import METHODS

    p = sub.add_parser("solve", help="integrate a built-in system and plot the trajectory")
    add_system_arguments(p)
    p.add_argument("--y0", action="append", metavar="NAME=VALUE", help="override an initial value")
    p.add_argument("--t-final", type=float, default=50.0, help="end time (default 50)")
    p.add_argument("--points", type=int, default=501, help="output points (default 501)")
    p.add_argument("--method", choices=METHODS, default="dopri5")
    p.add_argument("--dt", type=float, default=None, help="step of fixed-step methods")
    p.add_argument("--rtol", type=float, default=1e-8)
    p.add_argument("--atol", type=float, default=1e-10)
    p.add_argument("--out", default="theorykit-out/solve", help="output folder")
    p.set_defaults(func=_cmd_solve)
