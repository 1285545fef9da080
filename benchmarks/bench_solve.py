"""Ensemble throughput and per-call cost of theorykit's solver, against diffrax (JAX) and lambdify + solve_ivp.

Run: python benchmarks/bench_solve.py [--quick] [--baseline GIT_REF]

Systems (rtol 1e-8, atol 1e-10, t in [0, 50], random initial states):
  * "2-state eigenmode": one eigenmode (p, s) of Tian, Chen & Ganguli's Euclidean non-contrastive loss
    (theorykit.theories.noncontrastive, "euclidean_mode"), written out here with SymPy;
  * "20-state coupled": y_i' = y_i (tau_i - y_i - eta - kappa sum_j y_j^2).

Ensembles (10,000 trajectories; 2,000 with --quick): theorykit's solve_ensemble with the generic driver
and with the system's inlined driver (both on all cores), diffrax's jit(vmap(diffeqsolve)) with Dopri5 and
a PID controller at the same tolerances (if jax and diffrax are installed: pip install ".[bench]"), and
sympy.lambdify + scipy solve_ivp(RK45) on a subsample, extrapolated. Every timing is the best of three,
in the same run; CPU time is reported next to wall time because the machine may be shared.

Per call: one solve() of the 2-state system from Python (default options: every accepted step saved),
against the same integration done by a direct call of the compiled driver with records built
beforehand: the difference is the fixed cost of a call (checks, packing, buffers, result object).

--baseline GIT_REF also times solve_ensemble (both drivers) and solve() of that revision of theorykit
(extracted with git archive into a temporary folder, run in a subprocess with its own caches, compiling
in the foreground), in the same run.

NUMBA_NUM_THREADS=1 runs theorykit's ensembles on one thread: CPU time per trajectory per core.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import sympy as sp
from scipy.integrate import solve_ivp

RTOL, ATOL = 1e-8, 1e-10
T_SPAN = (0.0, 50.0)
EIGENMODE_RHS = ["-alpha_p*p1*s1*sigma2 - alpha_p*p1*s1 + alpha_p*s1 - eta*p1",
                 "-2*eta*s1 - 2*p1**2*s1*sigma2 - 2*p1**2*s1 + 2*p1*s1"]
EIGENMODE_PARAMS = {"eta": 0.1, "sigma2": 0.5, "alpha_p": 1.0}


def eigenmode_system():
    from theorykit.derive import make_system

    return make_system(["p1", "s1"], EIGENMODE_RHS, ["eta", "sigma2", "alpha_p"], name="bench_eigenmode"), \
        dict(EIGENMODE_PARAMS)


def coupled_system(n: int = 20):
    from theorykit.derive import ODESystem

    t = sp.Symbol("t", real=True)
    y = sp.symbols(f"y0:{n}", real=True)
    tau = sp.symbols(f"tau0:{n}", real=True)
    eta, kappa = sp.symbols("eta kappa", real=True)
    norm = sum(v**2 for v in y)
    rhs = [y[i] * (tau[i] - y[i] - eta - kappa * norm) for i in range(n)]
    values = {f"tau{i}": 1.0 + 0.5 * i / n for i in range(n)} | {"eta": 0.1, "kappa": 0.05}
    return ODESystem(t, y, rhs, params=(*tau, eta, kappa), name="bench_coupled20"), values


def best_of(fn, repeats: int = 3) -> tuple[float, float, object]:
    """(best wall seconds, CPU seconds of that run, last result) over ``repeats`` calls."""
    best = (np.inf, np.inf, None)
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        out = fn()
        w, c = time.perf_counter() - w, time.process_time() - c
        if w < best[0]:
            best = (w, c, out)
    return best


def load() -> str:
    return os.getloadavg().__repr__() if hasattr(os, "getloadavg") else "n/a"


# ------------------------------------------------------------------------------------------------ peers
def diffrax_ensemble(system, values: dict, y0s: np.ndarray):
    """diffrax jit(vmap(diffeqsolve)) on the same right-hand side; returns (compile s, run(), finals)."""
    try:
        import jax
        import jax.numpy as jnp
        import diffrax
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)
    f = sp.lambdify((system.t, system.states, system.params), list(system.rhs), "jax")

    def vector_field(t, y, args):
        return jnp.stack(f(t, [y[i] for i in range(y.shape[0])], [args[i] for i in range(args.shape[0])]))

    term = diffrax.ODETerm(vector_field)
    controller = diffrax.PIDController(rtol=RTOL, atol=ATOL)

    def one(y0, args):
        sol = diffrax.diffeqsolve(term, diffrax.Dopri5(), t0=T_SPAN[0], t1=T_SPAN[1], dt0=None, y0=y0, args=args,
                                  stepsize_controller=controller, saveat=diffrax.SaveAt(t1=True), max_steps=100_000)
        return sol.ys[-1]

    ensemble = jax.jit(jax.vmap(one, in_axes=(0, None)))
    single = jax.jit(one)
    args = jnp.asarray([values[s.name] for s in system.params])
    y = jnp.asarray(y0s)
    t0 = time.perf_counter()
    ensemble(y, args).block_until_ready()
    single(y[0], args).block_until_ready()
    compile_s = time.perf_counter() - t0
    return (compile_s, lambda: np.asarray(ensemble(y, args).block_until_ready()),
            lambda i: np.asarray(single(y[i], args).block_until_ready()))


def lambdify_baseline(system, p: np.ndarray):
    """What a user would write without theorykit: lambdify the rhs and wrap it for solve_ivp."""
    f = sp.lambdify((system.t, system.states, system.params), list(system.rhs), "numpy")
    return lambda t, y: np.asarray(f(t, y, p), dtype=np.float64)


_BASELINE_SNIPPET = r"""
import json, sys, time
import numpy as np
from theorykit.compile import compile_system
from theorykit.derive import make_system
from theorykit.solve import solve, solve_ensemble
rhs, params, y0s, repeats = json.loads(sys.stdin.read())
csys = compile_system(make_system(["p1", "s1"], rhs, list(params), name="bench_eigenmode"))
y0s = np.array(y0s)
solve(csys, y0s[0], (0.0, 50.0), params, rtol=1e-8, atol=1e-10)
best = {}
for inline in (False, True):
    solve_ensemble(csys, y0s[:4], (0.0, 50.0), params, rtol=1e-8, atol=1e-10, inline=inline)
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        ens = solve_ensemble(csys, y0s, (0.0, 50.0), params, rtol=1e-8, atol=1e-10, inline=inline)
        w, c = time.perf_counter() - w, time.process_time() - c
        best[inline] = (w, c) if inline not in best or w < best[inline][0] else best[inline]
calls = []
for _ in range(5):
    t = time.perf_counter()
    for _ in range(500):
        solve(csys, {"p1": 0.5, "s1": 0.5}, (0.0, 50.0), params, rtol=1e-8, atol=1e-10)
    calls.append((time.perf_counter() - t) / 500)
print(json.dumps({"ensemble": best[False], "ensemble_inlined": best[True], "final": ens.final.tolist(),
                  "solve_call": min(calls)}))
"""


def baseline_revision(ref: str, y0s: np.ndarray, repeats: int) -> dict:
    """Time the ensemble and solve() of git revision ``ref`` in a subprocess with its own caches."""
    root = Path(__file__).resolve().parents[1]
    tmp = Path(tempfile.mkdtemp(prefix="theorykit-baseline-"))
    archive = subprocess.run(["git", "-C", str(root), "archive", ref, "theorykit"], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive.stdout, check=True)
    # compile in the timed process: with its fresh caches a revision that compiles in the background would
    # otherwise run its first ensembles and solves as plain Python
    env = dict(os.environ, PYTHONPATH=str(tmp), NUMBA_CACHE_DIR=str(tmp / "numba-cache"),
               THEORYKIT_CACHE_DIR=str(tmp / "tk-cache"), THEORYKIT_COMPILE="foreground")
    payload = json.dumps([EIGENMODE_RHS, EIGENMODE_PARAMS, y0s.tolist(), repeats])
    proc = subprocess.run([sys.executable, "-c", _BASELINE_SNIPPET], input=payload, env=env, capture_output=True,
                          text=True, check=True, cwd=tmp)
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------------ benches
def bench_ensemble(label, system, values, n_traj, n_sub, rng, baseline_ref=None) -> list[dict]:
    from theorykit.compile import compile_system
    from theorykit.solve import solve_ensemble

    t0 = time.perf_counter()
    csys = compile_system(system, backend="numba")
    p = csys.pack_params(values)
    y0s = rng.uniform(0.2, 1.0, size=(n_traj, csys.n_states))
    solve_ensemble(csys, y0s[:4], T_SPAN, p, rtol=RTOL, atol=ATOL, inline=False)  # generic driver (cached)
    setup_generic = time.perf_counter() - t0
    t0 = time.perf_counter()
    solve_ensemble(csys, y0s[:4], T_SPAN, p, rtol=RTOL, atol=ATOL, inline=True)  # compiles it if not cached
    setup_inline = time.perf_counter() - t0
    rows, finals = [], {}
    for name, inline in (("inlined driver", True), ("generic driver", False)):
        w, c, ens = best_of(lambda: solve_ensemble(csys, y0s, T_SPAN, p, rtol=RTOL, atol=ATOL, inline=inline))
        assert np.all(ens.success), ens.counts()
        solver = f"theorykit solve_ensemble, {name}"
        finals[solver] = ens.final
        rows.append(dict(system=label, solver=solver, n=n_traj, wall=w / n_traj, cpu=c / n_traj,
                         setup=setup_inline if inline else setup_generic))
    reference = None
    peer = diffrax_ensemble(system, values, y0s)
    if peer is not None:
        compile_s, run, _ = peer
        w, c, reference = best_of(run)
        rows.append(dict(system=label, solver="diffrax jit(vmap(diffeqsolve)), Dopri5", n=n_traj, wall=w / n_traj,
                         cpu=c / n_traj, setup=compile_s))
    if baseline_ref is not None and label.startswith("2-state"):
        base = baseline_revision(baseline_ref, y0s, 3)
        for name, key in (("inlined driver", "ensemble_inlined"), ("generic driver", "ensemble")):
            solver = f"theorykit solve_ensemble at {baseline_ref} (baseline), {name}"
            finals[solver] = np.array(base["final"])
            rows.append(dict(system=label, solver=solver, n=n_traj, wall=base[key][0] / n_traj,
                             cpu=base[key][1] / n_traj, setup=np.nan))
    fun = lambdify_baseline(system, p)
    w, c = time.perf_counter(), time.process_time()
    ivp = np.array([solve_ivp(fun, T_SPAN, y0s[i], method="RK45", rtol=RTOL, atol=ATOL).y[:, -1]
                    for i in range(n_sub)])
    finals["sympy.lambdify + solve_ivp(RK45)"] = ivp
    rows.append(dict(system=label, solver="sympy.lambdify + solve_ivp(RK45)", n=n_sub,
                     wall=(time.perf_counter() - w) / n_sub, cpu=(time.process_time() - c) / n_sub, setup=np.nan))
    if reference is None:  # no diffrax: compare with solve_ivp on its subsample
        reference = ivp
    for row in rows:
        got = finals.get(row["solver"])
        if got is None:
            row["diff"] = np.nan
            continue
        m = min(got.shape[0], reference.shape[0])
        row["diff"] = float(np.max(np.abs(got[:m] - reference[:m]) / np.maximum(np.abs(reference[:m]), ATOL)))
    return rows


def bench_call_overhead() -> dict:
    """solve() against a direct driver call doing the same integration (2-state eigenmode, t in [0, 50])."""
    from theorykit.compile import compile_system
    from theorykit.solve import _drivers, _layout as L, _solve, solve

    system, values = eigenmode_system()
    csys = compile_system(system)
    y0 = {"p1": 0.5, "s1": 0.5}
    solve(csys, y0, T_SPAN, values, rtol=RTOL, atol=ATOL)
    fns = _solve.system_functions(csys)
    entry = _drivers.GENERIC.get("integrate")
    rhs, diffusion = fns.addresses
    p = csys.pack_params(values)
    y0v = csys.pack_state(y0)
    n = fns.n
    prob = L.Problem(np.array([*T_SPAN, RTOL, ATOL, 0.0, np.inf, 0.0, 1e12]),
                     np.array([L.DOPRI5, 0, 100_000, 100_001], dtype=np.int64), np.empty(0), np.empty((0, 5)))
    st = L.State(np.zeros(L.N_SF), np.zeros(L.N_SI, dtype=np.int64), y0v.copy(), np.empty((7, n)), np.empty(0))
    sc = L.Scratch(np.empty(n), np.empty(n), np.zeros((5, n)), np.zeros((n, 1)), np.empty(0), np.empty(0),
                   np.empty(n), np.empty(0))
    out = L.Output(np.empty(300), np.empty((300, n)), np.empty(0), np.empty(0), np.empty((0, 5, n)), np.empty(0),
                   np.empty((0, n)), np.empty(0, dtype=np.int64))

    def direct():
        st.f[:] = 0.0
        st.i[:] = 0
        st.i[L.C_STATUS], st.i[L.C_SEED] = L.NOT_STARTED, -1
        st.y[:] = y0v
        entry(rhs, diffusion, prob, p, st, sc, out)

    direct()
    steps = int(st.i[L.C_ACCEPTED])
    w_direct = best_of(lambda: [direct() for _ in range(2000)], 7)
    w_solve = best_of(lambda: [solve(csys, y0, T_SPAN, values, rtol=RTOL, atol=ATOL) for _ in range(2000)], 7)
    w_arrays = best_of(lambda: [solve(csys, y0v, T_SPAN, p, rtol=RTOL, atol=ATOL) for _ in range(2000)], 7)
    return dict(steps=steps, direct=w_direct[0] / 2000, solve=w_solve[0] / 2000, solve_arrays=w_arrays[0] / 2000,
                direct_cpu=w_direct[1] / 2000, solve_cpu=w_solve[1] / 2000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 trajectories, solve_ivp on 50")
    parser.add_argument("--baseline", metavar="GIT_REF", help="also time this revision of theorykit (e.g. main)")
    args = parser.parse_args()
    n_traj, n_sub = (2_000, 50) if args.quick else (10_000, 200)
    rng = np.random.default_rng(0)
    print(f"load average before: {load()}")
    call = bench_call_overhead()  # first: before JAX starts its threads in this process
    rows = []
    for label, (system, values) in (("2-state eigenmode", eigenmode_system()), ("20-state coupled", coupled_system())):
        rows += bench_ensemble(label, system, values, n_traj, n_sub, rng, args.baseline)
    peer = diffrax_ensemble(*eigenmode_system(), np.array([[0.5, 0.5]]))
    if peer is not None:
        call["diffrax"] = best_of(lambda: [peer[2](0) for _ in range(200)], 5)[0] / 200
    base_call = None
    if args.baseline:
        base_call = baseline_revision(args.baseline, rng.uniform(0.2, 1.0, (8, 2)), 1)["solve_call"]
    print(f"load average after: {load()}; {os.cpu_count()} cores\n")
    print(f"rtol={RTOL:g}, atol={ATOL:g}, t_span={T_SPAN}; best of 3; solve_ivp timed on {n_sub} trajectories\n")
    print("| system | solver | trajectories | wall / trajectory | CPU / trajectory | setup (s) | "
          "max rel. diff. of final states |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        diff = "reference" if r["solver"].startswith("diffrax") else (
            "—" if not np.isfinite(r["diff"]) else f"{r['diff']:.1e}")
        setup = "—" if not np.isfinite(r["setup"]) else f"{r['setup']:.2f}"
        print(f"| {r['system']} | {r['solver']} | {r['n']} | {r['wall'] * 1e6:.1f} µs | {r['cpu'] * 1e6:.1f} µs "
              f"| {setup} | {diff} |")
    for label in ("2-state eigenmode", "20-state coupled"):
        peer = [r for r in rows if r["system"] == label and r["solver"].startswith("diffrax")]
        if peer:
            for r in rows:
                if r["system"] == label and "theorykit" in r["solver"]:
                    print(f"\n{label}: {r['solver']} is {peer[0]['wall'] / r['wall']:.2f}x diffrax (wall)", end="")
    print("\n\nPer call, 2-state eigenmode to t = 50 "
          f"({call['steps']} steps, every step saved):\n")
    print("| what | wall per call | CPU per call |")
    print("|---|---|---|")
    print(f"| theorykit solve() (mappings in) | {call['solve'] * 1e6:.1f} µs | {call['solve_cpu'] * 1e6:.1f} µs |")
    print(f"| theorykit solve() (arrays in) | {call['solve_arrays'] * 1e6:.1f} µs | |")
    print(f"| the compiled driver called directly | {call['direct'] * 1e6:.1f} µs | {call['direct_cpu'] * 1e6:.1f} µs |")
    print(f"| fixed cost of solve() (difference) | {(call['solve'] - call['direct']) * 1e6:.1f} µs | "
          f"{(call['solve_cpu'] - call['direct_cpu']) * 1e6:.1f} µs |")
    if base_call is not None:
        print(f"| theorykit solve() at {args.baseline} (baseline) | {base_call * 1e6:.1f} µs | |")
    if "diffrax" in call:
        print(f"| diffrax jit(diffeqsolve), one solve | {call['diffrax'] * 1e6:.1f} µs | |")


if __name__ == "__main__":
    main()
