"""Ensemble throughput of theorykit's solver against sympy.lambdify + scipy.integrate.solve_ivp(RK45).

Run: python benchmarks/bench_solve.py [--quick]

Two polynomial systems, built with theorykit.derive and compiled with theorykit.compile (numba backend):
  * "2-mode": two cubic eigenmodes p_k' = p_k (tau_k p_k - (1 + s2) p_k^2 - eta);
  * "20-state": y_i' = y_i (tau_i - y_i - eta - kappa sum_j y_j^2), twenty modes coupled through their norm.
For an ensemble of random initial states (10,000; 2,000 with --quick) it times theorykit's solve_ensemble
(dopri5, parallel over trajectories) and, at the same rtol/atol, the usual alternative: the rhs from
sympy.lambdify called by scipy's solve_ivp(RK45), measured in the same run on a subsample (200; 50 with
--quick) and extrapolated per trajectory. Also times theorykit's single-trajectory solve() in a Python loop.
Prints a Markdown table with time per trajectory, trajectories/s, speed-up and the largest relative
difference of final states between theorykit and the baseline on the subsample.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import sympy as sp
from scipy.integrate import solve_ivp

from theorykit.compile import compile_system
from theorykit.derive import ODESystem
from theorykit.solve import solve, solve_ensemble

RTOL, ATOL = 1e-8, 1e-10
T_SPAN = (0.0, 50.0)


def two_mode_system() -> tuple[ODESystem, dict]:
    t = sp.Symbol("t", real=True)
    p = sp.symbols("p1 p2", real=True)
    tau = sp.symbols("tau1 tau2", real=True)
    s2, eta = sp.symbols("s2 eta", real=True)
    rhs = [p[k] * (tau[k] * p[k] - (1 + s2) * p[k] ** 2 - eta) for k in range(2)]
    system = ODESystem(t, p, rhs, params=(*tau, s2, eta), name="bench_two_modes")
    return system, {"tau1": 1.0, "tau2": 0.7, "s2": 0.3, "eta": 0.05}


def coupled_system(n: int = 20) -> tuple[ODESystem, dict]:
    t = sp.Symbol("t", real=True)
    y = sp.symbols(f"y0:{n}", real=True)
    tau = sp.symbols(f"tau0:{n}", real=True)
    eta, kappa = sp.symbols("eta kappa", real=True)
    norm = sum(v**2 for v in y)
    rhs = [y[i] * (tau[i] - y[i] - eta - kappa * norm) for i in range(n)]
    values = {f"tau{i}": 1.0 + 0.5 * i / n for i in range(n)} | {"eta": 0.1, "kappa": 0.05}
    return ODESystem(t, y, rhs, params=(*tau, eta, kappa), name="bench_coupled20"), values


def lambdified_rhs(system: ODESystem, p: np.ndarray):
    """What a user would write without theorykit: lambdify the rhs and wrap it for solve_ivp."""
    f = sp.lambdify((system.t, system.states, system.params), list(system.rhs), "numpy")
    return lambda t, y: np.asarray(f(t, y, p), dtype=np.float64)


def bench(label: str, system: ODESystem, values: dict, n_traj: int, n_base: int, rng) -> list[dict]:
    t0 = time.perf_counter()
    csys = compile_system(system, backend="numba")
    p = csys.pack_params(values)
    y0s = rng.uniform(0.2, 1.0, size=(n_traj, csys.n_states))
    solve_ensemble(csys, y0s[:2], T_SPAN, p, rtol=RTOL, atol=ATOL)  # JIT of the rhs (drivers are cached)
    solve(csys, y0s[0], T_SPAN, p, rtol=RTOL, atol=ATOL)
    t_setup = time.perf_counter() - t0

    t0 = time.perf_counter()
    ens = solve_ensemble(csys, y0s, T_SPAN, p, rtol=RTOL, atol=ATOL)
    t_ens = time.perf_counter() - t0
    assert np.all(ens.success), ens.counts()

    t0 = time.perf_counter()
    singles = [solve(csys, y0s[i], T_SPAN, p, rtol=RTOL, atol=ATOL, t_eval=T_SPAN).final for i in range(n_base)]
    t_single = (time.perf_counter() - t0) / n_base

    fun = lambdified_rhs(system, p)
    t0 = time.perf_counter()
    base = [solve_ivp(fun, T_SPAN, y0s[i], method="RK45", rtol=RTOL, atol=ATOL).y[:, -1] for i in range(n_base)]
    t_base = (time.perf_counter() - t0) / n_base
    base = np.array(base)

    def rel(a: np.ndarray) -> float:
        return float(np.max(np.abs(a - base) / np.maximum(np.abs(base), ATOL)))

    common = dict(system=label, setup=t_setup)
    return [
        dict(common, solver=f"theorykit solve_ensemble (dopri5, numba, {os.cpu_count()} cores)", n=n_traj,
             per=t_ens / n_traj, speedup=t_base / (t_ens / n_traj), diff=rel(ens.final[:n_base])),
        dict(common, solver="theorykit solve() in a Python loop", n=n_base, per=t_single,
             speedup=t_base / t_single, diff=rel(np.array(singles))),
        dict(common, solver="sympy.lambdify + solve_ivp(RK45)", n=n_base, per=t_base, speedup=1.0, diff=0.0),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 trajectories, baseline on 50")
    args = parser.parse_args()
    n_traj, n_base = (2_000, 50) if args.quick else (10_000, 200)
    rng = np.random.default_rng(0)
    rows = []
    for label, (system, values) in (("2-mode cubic", two_mode_system()), ("20-state coupled", coupled_system())):
        rows += bench(label, system, values, n_traj, n_base, rng)
    print(f"rtol={RTOL:g}, atol={ATOL:g}, t_span={T_SPAN}; baseline timed on {n_base} trajectories and "
          f"extrapolated per trajectory\n")
    print("| system | solver | trajectories timed | time / trajectory | trajectories / s | speed-up vs baseline "
          "| max rel. diff. of final state vs baseline |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        diff = "—" if r["speedup"] == 1.0 else f"{r['diff']:.1e}"
        print(f"| {r['system']} | {r['solver']} | {r['n']} | {r['per'] * 1e6:.1f} µs | {1.0 / r['per']:,.0f} "
              f"| {r['speedup']:.0f}x | {diff} |")
    print("\nSetup (compile_system + first JIT of the rhs, drivers loaded from numba's cache): "
          + ", ".join(f"{r['system']} {r['setup']:.2f} s" for r in rows[::3]))


if __name__ == "__main__":
    main()
