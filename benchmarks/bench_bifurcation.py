"""Cost of a phase boundary: tracing the fold curve against classifying a grid of ODE solves.

The boundary is the collapse boundary of one eigenmode of the Euclidean non-contrastive loss (SimSiam,
states p, s): non-collapsed equilibria exist iff eta <= eta_c(sigma^2) = 1 / (4 (1 + sigma^2)), over
sigma^2 in [0, 3]. Every method is scored by the maximum error of its boundary eta at the same rows of
sigma^2 against that closed form.

* fold curve: locate the fold in eta once (continue_branch), trace it in (eta, sigma^2) with continue_fold,
  and read the boundary at the rows off a cubic spline through the curve's points;
* grid of solves: phase_diagram over an (eta, sigma^2) grid from (p, s) = (1, 1), labelled collapsed or not;
  the boundary of a row is the midpoint between its last non-collapsed and first collapsed eta, so a
  spacing of 2 eps gives an error up to eps (the integration time is long enough for the slow passage near
  the fold at that eps; shorter times misclassify and the error grows);
* bisection of solves: per row, bisection in eta with one ODE solve per trial (log2(range / eps) solves),
  as a smarter use of the same solver.

Run: ``python benchmarks/bench_bifurcation.py [--rows 31] [--eps 1e-2 1e-3 1e-4] [--bisection-eps 1e-5 1e-6]
[--ds-max 0.1 0.02] [--repeat 2]``. Prints a
Markdown table with the machine load. Compilation is paid (or loaded from the disk cache) before timing.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
from scipy.interpolate import CubicSpline

from bench_analysis import best_of  # this script's folder is on sys.path
from theorykit.analysis import continue_branch, continue_fold, find_fixed_points, phase_diagram
from theorykit.solve import solve_ensemble
from theorykit.theories import noncontrastive as N

SIGMA2 = (0.0, 3.0)
ETA = (0.0, 0.3)
Y0 = np.array([1.0, 1.0])


def eta_c(sigma2):
    return 1.0 / (4.0 * (1.0 + np.asarray(sigma2)))


def fold_curve(csys, rows: np.ndarray, ds_max: float) -> tuple[np.ndarray, int]:
    p = {"eta": 0.1, "sigma2": 0.5, "alpha_p": 1.0}
    (start,) = find_fixed_points(csys, p, guesses=[[0.55, 0.3]], n_starts=0)
    br = continue_branch(csys, start, p, "eta", (0.0, 0.3), direction=1)
    cv = continue_fold(csys, br, free=("eta", "sigma2"), bounds={"sigma2": SIGMA2}, ds_max=ds_max)
    order = np.argsort(cv.param_of("sigma2"))
    spline = CubicSpline(cv.param_of("sigma2")[order], cv.param_of("eta")[order])
    return spline(rows), len(cv) + len(br)


def collapsed(final: np.ndarray) -> np.ndarray:
    return np.max(np.abs(final), axis=1) <= 1e-3


def grid(csys, rows: np.ndarray, eps: float, t_final: float) -> tuple[np.ndarray, int]:
    etas = np.arange(ETA[0] + eps, ETA[1], 2 * eps)
    pd = phase_diagram(csys, {"eta": etas, "sigma2": rows}, {"alpha_p": 1.0}, Y0, t_final=t_final,
                       progress=False)
    coll = pd.labels == pd.label_names.index("collapse")  # [n_eta, n_rows]
    first = np.argmax(coll, axis=0)
    return np.where(first > 0, 0.5 * (etas[first - 1] + etas[first]), np.nan), coll.size


def bisection(csys, rows: np.ndarray, eps: float, t_final: float) -> tuple[np.ndarray, int]:
    lo, hi = np.full(rows.size, ETA[0] + 1e-9), np.full(rows.size, ETA[1])
    n = 0
    P = np.column_stack([np.zeros(rows.size), rows, np.ones(rows.size)])
    while np.max(hi - lo) > 2 * eps:
        P[:, 0] = 0.5 * (lo + hi)
        ens = solve_ensemble(csys, Y0, (0.0, t_final), P, progress=False, rtol=1e-6, atol=1e-9)
        c = collapsed(np.asarray(ens.final))
        hi = np.where(c, P[:, 0], hi)
        lo = np.where(c, lo, P[:, 0])
        n += rows.size
    return 0.5 * (lo + hi), n


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=31)
    ap.add_argument("--eps", type=float, nargs="+", default=[1e-2, 1e-3, 1e-4])
    ap.add_argument("--t-final", type=float, nargs="+", default=[600.0, 2000.0, 6000.0],
                    help="integration time per eps (the slow passage near the fold grows like eps^-1/2)")
    ap.add_argument("--bisection-eps", type=float, nargs="*", default=[1e-5, 1e-6],
                    help="finer targets for bisection only (a grid would need millions of solves)")
    ap.add_argument("--bisection-t-final", type=float, nargs="*", default=[20000.0, 60000.0])
    ap.add_argument("--ds-max", type=float, nargs="+", default=[0.1, 0.02],
                    help="largest continuation step of the fold curve (its spline error falls with it)")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args(argv)
    if len(args.t_final) != len(args.eps) or len(args.bisection_t_final) != len(args.bisection_eps):
        ap.error("--t-final (--bisection-t-final) needs one value per --eps (--bisection-eps)")

    csys = N.compiled("euclidean", 1)
    rows = np.linspace(*SIGMA2, args.rows)
    truth = eta_c(rows)
    load0 = os.getloadavg()
    t0 = time.perf_counter()  # compilation / cache loading of everything timed below
    fold_curve(csys, rows, 0.1)
    grid(csys, rows[:2], 0.1, 1.0)
    t_warm = time.perf_counter() - t0

    table = []
    for ds_max in args.ds_max:
        t, (est, n) = best_of(lambda: fold_curve(csys, rows, ds_max), args.repeat)
        table.append((f"fold curve, ds_max = {ds_max:g} (continue_branch + continue_fold)", "—", n, t,
                      float(np.max(np.abs(est - truth)))))
    for eps, tf in zip(args.eps, args.t_final):
        t, (est, n) = best_of(lambda: grid(csys, rows, eps, tf), args.repeat)
        table.append((f"grid of solves, t = {tf:g}", f"{eps:g}", n, t, float(np.nanmax(np.abs(est - truth)))))
        t, (est, n) = best_of(lambda: bisection(csys, rows, eps, tf), args.repeat)
        table.append((f"bisection of solves, t = {tf:g}", f"{eps:g}", n, t, float(np.max(np.abs(est - truth)))))
    for eps, tf in zip(args.bisection_eps, args.bisection_t_final):
        t, (est, n) = best_of(lambda: bisection(csys, rows, eps, tf), args.repeat)
        table.append((f"bisection of solves, t = {tf:g}", f"{eps:g}", n, t, float(np.max(np.abs(est - truth)))))
    load1 = os.getloadavg()

    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"load average (1 min) {load0[0]:.2f} before, {load1[0]:.2f} after; first calls {t_warm:.2f} s")
    print(f"Boundary at {args.rows} rows of sigma^2 in [{SIGMA2[0]}, {SIGMA2[1]}], best of {args.repeat}\n")
    print("| method | target error | ODE solves or curve points | wall time (s) | max error of eta_c "
          "| time vs first fold curve |")
    print("|---|---|---:|---:|---:|---:|")
    t_curve = table[0][3]
    for name, eps, n, t, err in table:
        print(f"| {name} | {eps} | {n} | {t:.3f} | {err:.1e} | {t / t_curve:.1f}x |")


if __name__ == "__main__":
    main()
