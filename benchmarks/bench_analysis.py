"""Wall time of the analysis stage: a 200 x 200 phase diagram of a two-state system, a basin map of
10^5 initial conditions, and (for scale) multi-start fixed points and one continuation.

Run: ``python benchmarks/bench_analysis.py [--n-grid 200] [--n-basin 100000] [--repeat 2]``. Prints a
Markdown table. Compilation (numba, cached on disk) is timed separately as the first call on a tiny
problem; the rows report the best of ``--repeat`` timed runs.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from theorykit.analysis import (basin_map, continue_branch, find_fixed_points, nearest_attractor_classifier,
                                phase_diagram)
from theorykit.compile import compile_system
from theorykit.theories import reference as R


def best_of(fn, repeat: int) -> tuple[float, object]:
    best, out = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-grid", type=int, default=200)
    ap.add_argument("--n-basin", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args(argv)

    cubic = compile_system(R.eigenmode_cubic())
    well = compile_system(R.double_well())
    hopf = compile_system(R.hopf())
    base = {"tau": 1.0, "tau2": 0.5}
    y0 = {"p1": 0.5, "p2": 0.5}
    stable = [fp for fp in find_fixed_points(well, {}) if fp.stable]
    classify, labels = nearest_attractor_classifier(np.array([fp.y for fp in stable]), ["left", "right"])

    t0 = time.perf_counter()  # first calls: numba compilation or loading from the on-disk cache
    phase_diagram(cubic, {"eta": [0.1, 0.2], "sigma2": [0.5, 1.0]}, base, y0, t_final=1.0, progress=False)
    basin_map(well, {}, np.zeros((2, 2)), t_final=1.0, classify=classify, labels=labels, progress=False)
    t_warm = time.perf_counter() - t0

    n = args.n_grid
    eta, s2 = np.linspace(0.0, 0.3, n), np.linspace(0.0, 2.0, n)
    t_pd, pd = best_of(lambda: phase_diagram(cubic, {"eta": eta, "sigma2": s2}, base, y0, t_final=200.0,
                                             progress=False), args.repeat)
    y0s = np.random.default_rng(0).uniform(-2.0, 2.0, size=(args.n_basin, 2))
    t_bm, bm = best_of(lambda: basin_map(well, {}, y0s, t_final=30.0, classify=classify, labels=labels,
                                         progress=False), args.repeat)
    t_fp, fps = best_of(lambda: find_fixed_points(well, {}, n_starts=64), args.repeat)
    t_br, br = best_of(lambda: continue_branch(hopf, [0.0, 0.0], {"mu": -1.0, "omega": 1.0}, "mu", (-1.0, 1.0)),
                       args.repeat)

    left, se = bm.fraction("left")
    rows = [
        ("first calls (numba compile / cache load)", "2 tiny ensembles", t_warm, ""),
        (f"phase diagram {n}x{n}, eigenmode_cubic (2 states), t=200", f"{n * n} trajectories", t_pd,
         ", ".join(f"{k} {v:.3f}" for k, v in pd.fractions().items() if v)),
        ("basin map, double_well, t=30", f"{args.n_basin} initial conditions", t_bm,
         f"left {left:.4f} ± {se:.4f}"),
        ("find_fixed_points, double_well", "64 Newton starts", t_fp, f"{len(fps)} fixed points"),
        ("continue_branch, Hopf normal form", f"{len(br)} points", t_br,
         f"Hopf at mu = {br.special_points[0].param_value:.1e}"),
    ]
    print(f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}; best of {args.repeat}\n")
    print("| task | size | wall time (s) | result |")
    print("|---|---|---:|---|")
    for task, size, t, res in rows:
        print(f"| {task} | {size} | {t:.3f} | {res} |")


if __name__ == "__main__":
    main()
