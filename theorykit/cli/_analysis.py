"""The analysis commands: ``fixed-points``, ``continue`` (with branch switching, limit cycles and
two-parameter curves), ``phase-diagram`` and ``basins``.

Each acts on a built-in system (``theorykit systems``), writes figures (PNG) and data (npz + json) into
``--out`` (default ``theorykit-out/<command>``) and prints a short summary.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..errors import InvalidParameterError
from ._args import int_at_least, non_negative_int, positive_float, positive_int, writable_folder
from ._systems import add_system_arguments, system_and_params


def _pair(text: str | None, what: str) -> tuple[float, float] | None:
    """``"lo,hi"`` -> (lo, hi) with lo < hi, or a clear error."""
    if text is None:
        return None
    parts = [s for s in text.replace(":", ",").split(",") if s.strip()]
    try:
        lo, hi = (float(s) for s in parts)
    except ValueError:
        raise InvalidParameterError(f"{what} expects LO,HI (two numbers), got {text!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise InvalidParameterError(f"{what} needs finite LO < HI, got {text!r}")
    return lo, hi


def _out_dir(args, command: str) -> Path:
    """The output folder, checked before any work (created when the results are written)."""
    return writable_folder(args.out if args.out else Path("theorykit-out") / command, "--out")


def _fmt_y(names, y) -> str:
    return ", ".join(f"{n}={v:.6g}" for n, v in zip(names, y))


def _search_box(builtin, csys, scale: float | None) -> np.ndarray:
    """A fixed-point search box: ±scale, by default ±max(2, 2 max|y0|)."""
    if scale is None:
        y0 = np.abs(csys.pack_state(builtin.y0)) if builtin.y0 else np.zeros(csys.n_states)
        scale = max(2.0, 2.0 * float(np.max(y0, initial=0.0)))
    return np.tile([-scale, scale], (csys.n_states, 1))


# ------------------------------------------------------------------------------------------- fixed-points
def _cmd_fixed_points(args) -> int:
    from .._io import save_result
    from ..analysis import find_fixed_points, linearize, plot_phase_portrait

    out = _out_dir(args, "fixed-points")
    builtin, csys, params = system_and_params(args)
    box = _search_box(builtin, csys, args.scale)
    first = csys.pack_state(builtin.y0) if builtin.y0 else box.mean(axis=1)
    fps = find_fixed_points(csys, params, n_starts=args.n_starts, bounds=box, seed=args.seed,
                            guesses=first[None, :] if builtin.y0 else None)
    # no equilibrium because f is nan/inf (x/0, sqrt of a negative number) is a failure, not an empty answer
    undefined = not fps and not np.isfinite(linearize(csys, first, params).residual)
    out.mkdir(parents=True, exist_ok=True)
    n = csys.n_states
    arrays = {"y": np.array([fp.y for fp in fps]).reshape(-1, n),
              "eigenvalues": np.array([fp.eigenvalues for fp in fps]).reshape(-1, n),
              "stable": np.array([fp.stable for fp in fps], dtype=bool)}
    meta = {"kind": "FixedPoints", "system": args.system, "params": params, "state_names": list(csys.state_names),
            "fixed_points": [fp.as_dict() for fp in fps]}
    print(f"{args.system} at {', '.join(f'{k}={v:g}' for k, v in params.items()) or 'no parameters'}: "
          f"{len(fps)} fixed point(s)")
    for fp in fps:
        ev = ", ".join(f"{e.real:.4g}{e.imag:+.4g}j" if e.imag else f"{e.real:.4g}" for e in fp.eigenvalues)
        print(f"  {_fmt_y(csys.state_names, fp.y):40s} {fp.kind:16s} eigenvalues [{ev}]")
    if undefined:
        print(f"  the right-hand side is not finite (nan/inf) at the search's first point "
              f"{_fmt_y(csys.state_names, first)}: check the parameters")
    if args.symbolic:
        from ..analysis import symbolic_fixed_points

        sym = symbolic_fixed_points(csys.system, params)
        meta["symbolic"] = {"polynomial": str(sym.polynomial), "variable": str(sym.variable), "degree": sym.degree,
                            "solutions": [{str(k): str(v) for k, v in s.items()} for s in sym.solutions]}
        print(f"  symbolic: eliminant in {sym.variable} of degree {sym.degree}: {sym.polynomial}")
    save_result(out / "fixed_points", arrays, meta)
    written = [out / "fixed_points.npz", out / "fixed_points.json"]
    if n <= 2 or args.states:
        states = args.states.split(",") if args.states else None
        plot_phase_portrait(csys, params, states=states, fixed_points=fps if n <= 2 else None,
                            path=out / "phase_portrait.png")
        written.append(out / "phase_portrait.png")
    print("wrote " + ", ".join(str(p) for p in written))
    return 1 if undefined else 0


# ------------------------------------------------------------------------------------------- continue
def _on_branch(branch, value: float, y: np.ndarray, rtol: float = 1e-2) -> bool:
    """Whether ``(value, y)`` lies on ``branch`` (linear interpolation where the parameter passes ``value``)."""
    lam = branch.param_values - value
    for k in np.flatnonzero((lam[:-1] * lam[1:] <= 0)):
        d = lam[k] - lam[k + 1]
        w = 0.5 if d == 0 else lam[k] / d
        yk = branch.states[k] + w * (branch.states[k + 1] - branch.states[k])
        if np.max(np.abs(yk - y)) <= rtol * (1.0 + np.max(np.abs(y))):
            return True
    return False


def _cmd_continue(args) -> int:
    from ..analysis import continue_branch, find_fixed_points, plot_bifurcation

    out = _out_dir(args, "continue")
    builtin, csys, params = system_and_params(args)
    if not csys.param_names:
        raise InvalidParameterError(f"{args.system} has no parameters to continue in")
    two = _two_params(args, csys) if args.two_param else None
    param = two[0] if two else args.continuation_param or next(iter(builtin.ranges), csys.param_names[0])
    if param not in csys.param_names:
        raise InvalidParameterError(f"--in: {param!r} is not a parameter of {args.system}; "
                                    f"its parameters are {list(csys.param_names)}")
    rng = _pair(args.range, "--range") or builtin.ranges.get(param)
    if rng is None:
        raise InvalidParameterError(f"--range: {args.system} has no default range for {param!r}; give --range LO,HI")
    lo, hi = map(float, rng)
    box = _search_box(builtin, csys, None)
    opts = dict(ds=args.ds, ds_max=args.ds_max, max_points=args.max_points)
    if opts["ds"] > opts["ds_max"]:
        raise InvalidParameterError(f"--ds ({args.ds}) must not exceed --ds-max ({args.ds_max})")
    p0 = {**params, param: float(params[param])}
    if not lo <= p0[param] <= hi:
        p0[param] = 0.5 * (lo + hi)
    branches = []
    for fp in find_fixed_points(csys, p0, bounds=box, seed=args.seed):
        if min(abs(fp.eigenvalues.real)) < 1e-6:
            continue  # a start at a bifurcation has no unique tangent
        if any(_on_branch(b, p0[param], fp.y) for b in branches):
            continue
        try:
            branches.append(continue_branch(csys, fp, p0, param, (lo, hi), direction=0, **opts))
        except InvalidParameterError as exc:
            print(f"  skipped the start {_fmt_y(csys.state_names, fp.y)}: {exc}")
    out.mkdir(parents=True, exist_ok=True)
    print(f"{args.system}: {len(branches)} branch(es) in {param} over [{lo:g}, {hi:g}]")
    written = []
    for i, br in enumerate(branches):
        _save(br, out / f"branch_{i}", written)
        print(f"  branch {i}: {len(br)} points from {_fmt_y(csys.state_names, br.states[0])} at "
              f"{param}={br.param_values[0]:g} (stop: {br.stop_reason})")
        for sp in br.special_points:
            print(f"    {sp.kind:13s} at {param} = {sp.param_value:.10g}, {_fmt_y(csys.state_names, sp.y)}")
    if args.switch:
        _switched_branches(csys, branches, param, (lo, hi), opts, out, written)
    cycles = _cycle_branches(csys, branches, param, (lo, hi), opts, out, written) if args.from_hopf else []
    if two:
        rng2 = _pair(args.range2, "--range2") or builtin.ranges.get(two[1])
        if rng2 is None:
            raise InvalidParameterError(f"--range2: {args.system} has no default range for {two[1]!r}; give "
                                        "--range2 LO,HI")
        _two_parameter_curves(csys, branches, two, {param: (lo, hi), two[1]: tuple(map(float, rng2))}, opts, out,
                              written, args.system)
    if branches or cycles:
        state = args.state if args.state is not None else csys.state_names[0]
        plot_bifurcation(branches, state, cycles=cycles, path=out / "bifurcation.png",
                         title=f"{args.system}: continuation in {param}")
        written.append(out / "bifurcation.png")
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


def _two_params(args, csys) -> tuple[str, str]:
    """``--two-param P1,P2`` as two distinct parameter names (P1 is the continuation parameter)."""
    from ..analysis._curves import free_pair

    names, _, _ = free_pair(csys, [s.strip() for s in args.two_param.split(",") if s.strip()], "--two-param")
    if args.continuation_param and args.continuation_param != names[0]:
        raise InvalidParameterError(f"--in {args.continuation_param} and --two-param {args.two_param}: the first "
                                    "of the two parameters is the continuation parameter; give one of them")
    return names


def _save(result, stem: Path, written: list) -> None:
    """``result.save(stem)`` and note the two files."""
    result.save(stem)
    written += [stem.with_suffix(".npz"), stem.with_suffix(".json")]


def _switched_branches(csys, branches: list, param: str, bounds, opts, out: Path, written: list) -> None:
    """Switch onto the other branch at every branch point (``--switch``); new branches are appended."""
    from ..analysis import switch_branch

    for br in list(branches):
        for i, bp in enumerate(br.special("branch_point")):
            try:
                new = switch_branch(csys, br, i, bounds, **opts)
            except InvalidParameterError as exc:
                print(f"  no switch at the branch point {param} = {bp.param_value:.10g}: {exc}")
                continue
            if any(_on_branch(b, new.param_values[0], new.states[0]) for b in branches):
                continue  # the other branch was already continued from another start
            _save(new, out / f"branch_{len(branches)}", written)
            print(f"  branch {len(branches)}: switched at the branch point {param} = {bp.param_value:.10g}, "
                  f"{len(new)} points (stop: {new.stop_reason})")
            branches.append(new)


def _cycle_branches(csys, branches: list, param: str, bounds, opts, out: Path, written: list) -> list:
    """Limit cycles from every Hopf point (``--from-hopf``)."""
    from ..analysis import continue_cycles, hopf_normal_form

    cycles = []
    for br in branches:
        for i, h in enumerate(br.special("hopf")):
            if any(abs(cb.param_values[0] - h.param_value) < 1e-8 and np.allclose(cb.profiles[0, 0], h.y, atol=1e-6)
                   for cb in cycles):
                continue  # the same Hopf point on two joined halves
            try:
                nf = hopf_normal_form(csys, br, index=i)
                cb = continue_cycles(csys, br, param=param, bounds=bounds, index=i, **opts)
            except InvalidParameterError as exc:
                print(f"  no cycles from the Hopf point {param} = {h.param_value:.10g}: {exc}")
                continue
            _save(cb, out / f"cycles_{len(cycles)}", written)
            print(f"  cycles {len(cycles)} from the Hopf point {param} = {h.param_value:.10g} ({nf.criticality}, "
                  f"l1 = {nf.l1:.6g}): {len(cb)} cycles to {param} = {cb.param_values[-1]:.6g}, period "
                  f"{cb.periods[0]:.6g} -> {cb.periods[-1]:.6g} (stop: {cb.stop_reason})")
            for sp in cb.special_points:
                print(f"    {sp.kind:15s} at {param} = {sp.param_value:.10g}, period {sp.period:.8g}")
            cycles.append(cb)
    return cycles


def _two_parameter_curves(csys, branches: list, free: tuple[str, str], bounds, opts, out: Path, written: list,
                          system: str) -> None:
    """Fold and Hopf curves in ``free`` from every fold and Hopf point (``--two-param``), with figure."""
    from ..analysis import continue_fold, continue_hopf, plot_curves

    curves = []
    for br in branches:
        for kind, fn in (("fold", continue_fold), ("hopf", continue_hopf)):
            for i, sp in enumerate(br.special(kind)):
                if any(cv.kind == kind and np.min(np.abs(cv.param_of(free[0]) - sp.param_value)
                                                  + np.max(np.abs(cv.states - sp.y), axis=1)) < 1e-6
                       for cv in curves):
                    continue  # on a curve already traced
                try:
                    cv = fn(csys, br, free=free, bounds=bounds, index=i, **opts)
                except InvalidParameterError as exc:
                    print(f"  no {kind} curve from {free[0]} = {sp.param_value:.10g}: {exc}")
                    continue
                _save(cv, out / f"{kind}_curve_{sum(c.kind == kind for c in curves)}", written)
                print(f"  {kind} curve in ({free[0]}, {free[1]}) from {free[0]} = {sp.param_value:.10g}: {len(cv)} "
                      f"points (stop: {cv.stop_reason})")
                for cp in cv.special_points:
                    where = ", ".join(f"{k} = {cp.params[k]:.10g}" for k in free)
                    print(f"    {cp.kind:17s} at {where}")
                curves.append(cv)
    if curves:
        plot_curves(curves, path=out / "curves.png", title=f"{system}: bifurcation curves")
        written.append(out / "curves.png")


# ------------------------------------------------------------------------------------------- phase-diagram
def _cmd_phase_diagram(args) -> int:
    from ..analysis import phase_diagram, plot_phase_diagram, support_classifier

    out = _out_dir(args, "phase-diagram")
    builtin, csys, params = system_and_params(args)
    if csys.n_params < 2:
        raise InvalidParameterError(f"phase-diagram needs a system with two parameters; {args.system} has "
                                    f"{list(csys.param_names)} (use 'continue' for one)")
    defaults = list(builtin.ranges) + [p for p in csys.param_names if p not in builtin.ranges]
    ax = args.x or next(p for p in defaults if p != args.y)
    ay = args.y or next(p for p in defaults if p != ax)
    for flag, name in (("--x", ax), ("--y", ay)):
        if name not in csys.param_names:
            raise InvalidParameterError(f"{flag}: {name!r} is not a parameter of {args.system}; "
                                        f"its parameters are {list(csys.param_names)}")
    if ax == ay:
        raise InvalidParameterError(f"--x and --y must be different parameters, got {ax!r} twice")
    ranges = []
    for flag, name, text in (("--x-range", ax, args.x_range), ("--y-range", ay, args.y_range)):
        r = _pair(text, flag) or builtin.ranges.get(name)
        if r is None:
            raise InvalidParameterError(f"{flag}: no default range for {name!r} in {args.system}; give {flag} LO,HI")
        ranges.append(r)
    t_final = args.t_final
    classify, labels = support_classifier(csys.state_names, tol=args.tol, coarse=args.coarse)
    grid = {ax: np.linspace(*ranges[0], args.nx), ay: np.linspace(*ranges[1], args.ny)}
    pd = phase_diagram(csys, grid, params, builtin.y0 or np.zeros(csys.n_states), t_final=t_final,
                       classify=classify, labels=labels)
    out.mkdir(parents=True, exist_ok=True)
    pd.save(out / "phase_diagram")
    plot_phase_diagram(pd, path=out / "phase_diagram.png", title=f"{args.system}: phase diagram (t = {t_final:g})")
    print(f"{args.system}: {args.nx} x {args.ny} phase diagram over {ax} in [{ranges[0][0]:g}, {ranges[0][1]:g}], "
          f"{ay} in [{ranges[1][0]:g}, {ranges[1][1]:g}]")
    for name, f in pd.fractions().items():
        if f > 0:
            print(f"  {name:20s} {f:7.3f}")
    failed = int(np.sum(pd.status > 1))
    if failed:
        print(f"  ({failed} run(s) did not finish; they are labelled by their last state)")
    print("wrote " + ", ".join(str(out / f) for f in ("phase_diagram.npz", "phase_diagram.json", "phase_diagram.png")))
    return 0


# ------------------------------------------------------------------------------------------- basins
def _cmd_basins(args) -> int:
    from ..analysis import basin_map, find_fixed_points, nearest_attractor_classifier, plot_basins

    out = _out_dir(args, "basins")
    builtin, csys, params = system_and_params(args)
    box = _search_box(builtin, csys, None)
    stable = [fp for fp in find_fixed_points(csys, params, bounds=box, seed=args.seed) if fp.stable]
    names = [f"fp{i} ({_fmt_y(csys.state_names, fp.y)})" for i, fp in enumerate(stable)]
    classify, labels = nearest_attractor_classifier(np.array([fp.y for fp in stable]).reshape(-1, csys.n_states),
                                                    names, tol=args.tol)
    t_final = args.t_final
    lo_hi = [(float(b[0]), float(b[1])) for b in box]
    if csys.n_states == 1:
        r = _pair(args.x_range, "--x-range") or lo_hi[0]
        grid = np.linspace(*r, args.n * args.n)[:, None]
        axes_txt = f"{csys.state_names[0]} in [{r[0]:g}, {r[1]:g}]"
    else:
        sx = args.x or csys.state_names[0]
        sy = args.y or next(s for s in csys.state_names if s != sx)
        for flag, name in (("--x", sx), ("--y", sy)):
            if name not in csys.state_names:
                raise InvalidParameterError(f"{flag}: {name!r} is not a state of {args.system}; "
                                            f"its states are {list(csys.state_names)}")
        rx = _pair(args.x_range, "--x-range") or lo_hi[csys.state_names.index(sx)]
        ry = _pair(args.y_range, "--y-range") or lo_hi[csys.state_names.index(sy)]
        grid = {sx: np.linspace(*rx, args.n), sy: np.linspace(*ry, args.n)}
        axes_txt = f"{sx} in [{rx[0]:g}, {rx[1]:g}], {sy} in [{ry[0]:g}, {ry[1]:g}]"
    bm = basin_map(csys, params, grid, t_final=t_final, classify=classify, labels=labels,
                   base_y0=builtin.y0 or None)
    out.mkdir(parents=True, exist_ok=True)
    bm.save(out / "basins")
    plot_basins(bm, path=out / "basins.png", title=f"{args.system}: basins (t = {t_final:g})")
    print(f"{args.system}: basins of {len(stable)} stable fixed point(s) over {axes_txt} "
          f"({bm.labels.size} initial conditions)")
    for name, f, se in zip(bm.label_names, bm.fractions, bm.stderr):
        if f > 0:
            print(f"  {name:40s} {f:7.4f} ± {se:.4f}")
    print("wrote " + ", ".join(str(out / f) for f in ("basins.npz", "basins.json", "basins.png")))
    return 0


# ------------------------------------------------------------------------------------------- registration
def _common(p: argparse.ArgumentParser) -> None:
    add_system_arguments(p)
    p.add_argument("--out", type=Path, default=None, help="output folder (default theorykit-out/<command>)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the random Newton starts, >= 0")


def _plane_axes(p: argparse.ArgumentParser, kind: str) -> None:
    """``--x`` and ``--y`` (a ``kind``, parameter or state, on each axis) and their ``--x-range`` / ``--y-range``
    on the sub-command ``p``."""
    for axis in ("x", "y"):
        p.add_argument(f"--{axis}", default=None, help=f"{kind} on the {axis} axis")
    for axis in ("x", "y"):
        p.add_argument(f"--{axis}-range", default=None, metavar="LO,HI", help=f"interval of the {axis} axis")


def register(sub) -> None:
    p = sub.add_parser("fixed-points", help="find and classify the equilibria of a built-in system")
    _common(p)
    p.add_argument("--n-starts", type=positive_int, default=64, help="random Newton starts (default 64)")
    p.add_argument("--scale", type=positive_float, default=None, help="search box ±SCALE for every state")
    p.add_argument("--symbolic", action="store_true", help="also solve symbolically (polynomial systems)")
    p.add_argument("--states", default=None, help="two states to draw, comma-separated (systems with > 2 states)")
    p.set_defaults(func=_cmd_fixed_points)

    p = sub.add_parser("continue", help="continue equilibria in one parameter; locate folds, branch and Hopf points")
    _common(p)
    p.add_argument("--in", dest="continuation_param", default=None, metavar="PARAM",
                   help="the continuation parameter (default: the system's first ranged parameter); every "
                        "equilibrium at its current value (-p) is continued both ways")
    p.add_argument("--range", default=None, metavar="LO,HI", help="parameter interval (default: the system's range)")
    p.add_argument("--ds", type=positive_float, default=0.01, help="initial arclength step")
    p.add_argument("--ds-max", type=positive_float, default=0.05, help="largest arclength step")
    p.add_argument("--max-points", type=positive_int, default=2000, help="maximum points per branch")
    p.add_argument("--state", default=None, help="state on the vertical axis of the figure")
    p.add_argument("--switch", action="store_true", help="switch onto the other branch at every branch point")
    p.add_argument("--from-hopf", action="store_true",
                   help="continue the limit cycles born at every Hopf point (period, Floquet multipliers, folds of "
                        "cycles, period doublings)")
    p.add_argument("--two-param", default=None, metavar="P1,P2",
                   help="continue every fold and Hopf point found in P1 in the plane (P1, P2): fold and Hopf "
                        "curves with cusp, Bogdanov-Takens and generalized Hopf points")
    p.add_argument("--range2", default=None, metavar="LO,HI",
                   help="interval of P2 for --two-param (default: the system's range)")
    p.set_defaults(func=_cmd_continue)

    p = sub.add_parser("phase-diagram", help="long-time state over a grid of two parameters (ensemble integration)")
    _common(p)
    _plane_axes(p, "parameter")
    p.add_argument("--nx", type=int_at_least(2), default=60, help="grid points along x")
    p.add_argument("--ny", type=int_at_least(2), default=50, help="grid points along y")
    p.add_argument("--t-final", type=positive_float, default=200.0, help="integration time")
    p.add_argument("--tol", type=positive_float, default=1e-3, help="|y_i| above which a state counts as non-zero")
    p.add_argument("--coarse", action="store_true",
                   help="labels collapse / nonzero / diverged only (for oscillating systems)")
    p.set_defaults(func=_cmd_phase_diagram)

    p = sub.add_parser("basins", help="basins of attraction of the stable fixed points over two states")
    _common(p)
    _plane_axes(p, "state")
    p.add_argument("--n", type=int_at_least(2), default=101, help="grid points per axis")
    p.add_argument("--t-final", type=positive_float, default=100.0, help="integration time")
    p.add_argument("--tol", type=positive_float, default=1e-2, help="relative distance to a fixed point that counts as arrived")
    p.set_defaults(func=_cmd_basins)
