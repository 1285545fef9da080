"""Commands on the built-in systems: ``systems``, ``derive`` and ``solve``, and the arguments every command
acting on one system takes."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import InvalidParameterError
from ._args import parse_assignments, positive_float, int_at_least, writable_folder


def resolve_system(name: str):
    """The :class:`~theorykit.theories.BuiltinSystem` called ``name`` (a clear error listing the choices)."""
    from ..theories import builtin_systems

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
    from ..compile import compile_system

    builtin = resolve_system(args.system)
    overrides = parse_assignments(args.param, "-p/--param")
    csys = compile_system(builtin.build(), backend=args.backend)
    unknown = sorted(set(overrides) - set(csys.param_names))
    if unknown:
        raise InvalidParameterError(f"-p/--param: {unknown} are not parameters of {args.system}; "
                                    f"its parameters are {list(csys.param_names)}")
    return builtin, csys, {**builtin.params, **overrides}


def _cmd_systems(args) -> int:
    from ..theories import builtin_systems

    for key, b in builtin_systems().items():
        print(f"{key:40s} {b.description}")
    return 0


def _cmd_derive(args) -> int:
    system = resolve_system(args.system).build()
    print(system.to_latex() if args.format == "latex" else system.to_markdown())
    return 0


def _cmd_solve(args) -> int:
    import numpy as np

    from .._io import save_result
    from ..solve import solve
    from ..validate import report_figure

    out = writable_folder(args.out, "--out")
    builtin, csys, params = system_and_params(args)
    y0_overrides = parse_assignments(args.y0, "--y0")
    unknown = sorted(set(y0_overrides) - set(csys.state_names))
    if unknown:
        raise InvalidParameterError(f"--y0: {unknown} are not states of {args.system}; "
                                    f"its states are {list(csys.state_names)}")
    y0 = {**builtin.y0, **y0_overrides}
    t_eval = np.linspace(0.0, args.t_final, args.points)
    sol = solve(csys, y0, (0.0, args.t_final), params, method=args.method, t_eval=t_eval, dt=args.dt,
                rtol=args.rtol, atol=args.atol, throw=False)
    print(f"{args.system}: status {sol.status.name} at t = {sol.t[-1]:.6g}" + ("" if sol.success else f" ({sol.message})"))
    for name, value in zip(csys.state_names, sol.final):
        print(f"  {name} = {value:.10g}")
    arrays = {"t": sol.t, "y": sol.y}
    arrays.update({f"obs_{k}": sol.observed(k) for k in csys.observable_names})
    save_result(out / "trajectory", arrays, {"system": args.system, "params": params, "y0": y0,
                                             "method": args.method, "status": sol.status.name,
                                             "state_names": list(csys.state_names), "stats": dict(sol.stats)})
    with report_figure(out / "trajectory.png") as (fig, ax):
        for i, name in enumerate(csys.state_names):
            ax.plot(sol.t, sol.y[:, i], label=name)
        ax.set_xlabel("t")
        ax.set_title(f"{args.system} ({sol.status.name})")
        ax.legend()
    print(f"wrote {out / 'trajectory.npz'}, {out / 'trajectory.json'}, {out / 'trajectory.png'}")
    return 0 if sol.success else 1


def register(sub) -> None:
    from ..solve import METHODS

    p = sub.add_parser("systems", help="list the built-in ODE systems")
    p.set_defaults(func=_cmd_systems)

    p = sub.add_parser("derive", help="print the equations of a built-in system (LaTeX or Markdown)")
    p.add_argument("system", help="built-in system name (see 'theorykit systems')")
    p.add_argument("--format", choices=("markdown", "latex"), default="markdown")
    p.set_defaults(func=_cmd_derive)

    p = sub.add_parser("solve", help="integrate a built-in system and plot the trajectory")
    add_system_arguments(p)
    p.add_argument("--y0", action="append", metavar="NAME=VALUE", help="override an initial value")
    p.add_argument("--t-final", type=positive_float, default=50.0, help="end time (default 50)")
    p.add_argument("--points", type=int_at_least(2), default=501, help="output points, >= 2 (default 501)")
    p.add_argument("--method", choices=METHODS, default="dopri5")
    p.add_argument("--dt", type=positive_float, default=None, help="step of fixed-step methods")
    p.add_argument("--rtol", type=positive_float, default=1e-8)
    p.add_argument("--atol", type=positive_float, default=1e-10)
    p.add_argument("--out", type=Path, default=Path("theorykit-out/solve"), help="output folder")
    p.set_defaults(func=_cmd_solve)
