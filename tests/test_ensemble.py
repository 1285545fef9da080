"""Tests of ``theorykit.solve.solve_ensemble``: equality with single solves, statuses, SDE moments, chunking."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pytest

from solve_helpers import BACKENDS, REFERENCES, ou_moments
from theorykit.errors import InvalidParameterError
from theorykit.solve import Status, Threshold, solve, solve_ensemble

pytestmark = pytest.mark.numba


def _random_modes(n, seed=0):
    rng = np.random.default_rng(seed)
    y0s = np.column_stack([rng.uniform(0.05, 1.0, n), rng.uniform(0.01, 1.0, n)])
    params = np.column_stack([rng.uniform(0.5, 1.5, n), rng.uniform(0.0, 0.5, n), rng.uniform(0.0, 0.2, n)])
    return y0s, params


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("method", ["dopri5", "rk4"])
def test_ensemble_equals_single_solves(backend, method):
    ref = REFERENCES["mode"]
    csys = ref.compiled(backend)
    n = 40 if backend == "numba" else 6
    y0s, params = _random_modes(n)
    t_eval = np.linspace(0.0, 10.0, 11)
    opts = {"dt": 0.01} if method == "rk4" else {"rtol": 1e-9, "atol": 1e-12}
    ens = solve_ensemble(csys, y0s, (0.0, 10.0), params, method=method, t_eval=t_eval, **opts)
    assert ens.y.shape == (n, t_eval.size, 2) and len(ens) == n
    assert np.all(ens.success)
    for i in range(n):
        sol = solve(csys, y0s[i], (0.0, 10.0), params[i], method=method, t_eval=t_eval, **opts)
        np.testing.assert_array_equal(ens.y[i], sol.y)
        np.testing.assert_array_equal(ens.final[i], sol.final)
        assert ens.n_steps[i] == sol.stats["n_steps"]
        assert ens.n_rhs_evals[i] == sol.stats["n_rhs_evals"]


def test_backends_agree_on_ensembles():
    ref = REFERENCES["mode"]
    y0s, params = _random_modes(5, seed=1)
    a, b = (solve_ensemble(ref.compiled(be), y0s, (0.0, 10.0), params, t_eval=np.linspace(0, 10, 6))
            for be in BACKENDS)
    np.testing.assert_allclose(a.y, b.y, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(a.n_steps, b.n_steps)


def test_broadcasting_and_mapping_params():
    ref = REFERENCES["decay"]
    ks = np.array([0.1, 0.5, 1.0, 2.0])
    t_eval = np.linspace(0.0, 3.0, 7)
    ens = solve_ensemble(ref.compiled(), {"x": 2.0}, (0.0, 3.0), {"k": ks}, t_eval=t_eval)
    np.testing.assert_allclose(ens.y_of("x"), 2.0 * np.exp(-ks[:, None] * t_eval[None, :]), rtol=1e-7)
    np.testing.assert_array_equal(ens.params[:, 0], ks)
    ens2 = solve_ensemble(ref.compiled(), np.array([[1.0], [3.0]]), (0.0, 3.0), [0.5], t_eval=t_eval)
    np.testing.assert_allclose(ens2.y[:, :, 0], np.array([[1.0], [3.0]]) * np.exp(-0.5 * t_eval), rtol=1e-8)
    # default t_eval: the end points of t_span
    ens3 = solve_ensemble(ref.compiled(), [1.0], (0.0, 3.0), {"k": ks})
    np.testing.assert_array_equal(ens3.t, [0.0, 3.0])
    np.testing.assert_allclose(ens3.final[:, 0], np.exp(-3.0 * ks), rtol=1e-7)


def test_per_trajectory_statuses_and_no_garbage():
    ref = REFERENCES["square"]  # y' = y^2 blows up at t = 1 / y0
    y0s = np.array([[1.0], [0.25], [-1.0], [2.0]])
    t_eval = np.linspace(0.05, 1.95, 20)  # avoids the singular times 0.5 and 1 themselves
    ens = solve_ensemble(ref.compiled(), y0s, (0.0, 2.0), None, t_eval=t_eval)
    expected = [Status.BLOW_UP, Status.SUCCESS, Status.SUCCESS, Status.BLOW_UP]
    assert ens.statuses == tuple(expected)
    assert ens.counts() == {Status.SUCCESS: 2, Status.BLOW_UP: 2}
    np.testing.assert_array_equal(ens.success, [False, True, True, False])
    for i, y0 in enumerate(y0s[:, 0]):
        t_blow = 1.0 / y0 if y0 > 0 else np.inf
        reached = t_eval <= ens.t_final[i]
        assert np.all(np.isnan(ens.y[i, ~reached])) and np.all(np.isfinite(ens.y[i, reached]))
        np.testing.assert_array_equal(reached, t_eval < min(t_blow, 3.0))
        ok = reached & (t_eval < 0.9 * t_blow)
        np.testing.assert_allclose(ens.y[i, ok, 0], 1.0 / (1.0 / y0 - t_eval[ok]), rtol=1e-6)


def test_ensemble_max_steps_status():
    ref = REFERENCES["oscillator"]
    ens = solve_ensemble(ref.compiled(), [[1.0, 0.0], [0.0, 1e-3]], ref.t_span, [[2.0], [2.0]], max_steps=30)
    assert ens.statuses == (Status.MAX_STEPS, Status.MAX_STEPS)
    assert np.all(ens.t_final < ref.t_span[1]) and np.all(np.isnan(ens.y[:, -1]))


def test_first_event_per_trajectory():
    ref = REFERENCES["decay"]
    ks = np.array([0.5, 1.0, 2.0, 0.01])
    ens = solve_ensemble(ref.compiled(), [1.0], (0.0, 5.0), ks[:, None],
                         events=[Threshold("x", 0.5, direction=-1, terminal=True)], rtol=1e-10, atol=1e-12)
    hit = ks * 5.0 > math.log(2.0)
    np.testing.assert_allclose(ens.event_t[hit], math.log(2.0) / ks[hit], atol=1e-8)
    np.testing.assert_allclose(ens.event_y[hit, 0], 0.5, atol=1e-8)
    assert np.all(np.isnan(ens.event_t[~hit])) and np.all(ens.event_which[~hit] == -1)
    assert np.all(ens.event_which[hit] == 0)
    np.testing.assert_array_equal(ens.status, np.where(hit, Status.EVENT, Status.SUCCESS))
    np.testing.assert_allclose(ens.t_final[hit], math.log(2.0) / ks[hit], atol=1e-8)


def test_euler_maruyama_matches_ou_moments():
    ref = REFERENCES["ou"]
    theta, sigma = ref.p
    x0 = ref.y0[0]
    n = 4000
    t_eval = np.array([0.25, 0.5, 1.0])
    ens = solve_ensemble(ref.compiled(), np.repeat(ref.y0[None], n, 0), (0.0, 1.0), ref.p,
                         method="euler_maruyama", dt=1e-2, t_eval=t_eval, seed=42)
    assert ens.y.shape == (n, 3, 1)
    assert np.all(ens.success)
    x = ens.y[:, :, 0]
    for j, t in enumerate(t_eval):
        mean, var = ou_moments(t, x0, theta, sigma)
        # Euler–Maruyama: mean x0 (1 - theta dt)^(t/dt) differs from the exact one by O(dt)
        em_mean = x0 * (1 - theta * 1e-2) ** round(t / 1e-2)
        assert abs(em_mean - mean) < 0.01
        se_mean = math.sqrt(var / n)
        assert abs(x[:, j].mean() - mean) < 4 * se_mean + abs(em_mean - mean)
        se_var = var * math.sqrt(2.0 / (n - 1))
        assert abs(x[:, j].var(ddof=1) - var) < 4 * se_var + 0.02 * var


def test_euler_maruyama_is_reproducible_and_chunking_invariant():
    ref = REFERENCES["ou"]
    kw = dict(method="euler_maruyama", dt=0.05, t_eval=[0.5, 1.0])
    a = solve_ensemble(ref.compiled(), ref.y0, (0.0, 1.0), ref.p, seed=7, **kw)
    calls = []
    b = solve_ensemble(ref.compiled(), np.repeat(ref.y0[None], 1, 0), (0.0, 1.0), ref.p, seed=7, chunk_size=1,
                       progress=lambda done, total: calls.append((done, total)), **kw)
    np.testing.assert_array_equal(a.y, b.y)
    assert calls == [(1, 1)]
    c = solve_ensemble(ref.compiled(), np.repeat(ref.y0[None], 9, 0), (0.0, 1.0), ref.p, seed=7, **kw)
    d = solve_ensemble(ref.compiled(), np.repeat(ref.y0[None], 9, 0), (0.0, 1.0), ref.p, seed=7, chunk_size=4,
                       progress=lambda done, total: calls.append((done, total)), **kw)
    np.testing.assert_array_equal(c.y, d.y)
    done = [d for d, total in calls[1:] if total == 9]  # chunks finish on several threads: reports may merge
    assert len(done) == len(calls) - 1 and done == sorted(set(done)) and done[-1] == 9
    assert len(np.unique(c.final[:, 0])) == 9  # independent streams per trajectory
    e = solve_ensemble(ref.compiled(), np.repeat(ref.y0[None], 9, 0), (0.0, 1.0), ref.p, seed=8, **kw)
    assert not np.array_equal(c.y, e.y)


def test_euler_maruyama_same_path_on_both_backends():
    ref = REFERENCES["ou"]
    sols = [solve(ref.compiled(be), ref.y0, (0.0, 1.0), ref.p, method="euler_maruyama", dt=0.01, seed=3)
            for be in BACKENDS]
    np.testing.assert_allclose(sols[0].y, sols[1].y, rtol=1e-13)
    state = np.random.get_state()[1].copy()
    solve(ref.compiled("numpy"), ref.y0, (0.0, 1.0), ref.p, method="euler_maruyama", dt=0.1, seed=3)
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # global numpy generator untouched


def test_ten_thousand_trajectories():
    ref = REFERENCES["mode"]
    y0s, params = _random_modes(10_000, seed=3)
    ens = solve_ensemble(ref.compiled(), y0s, (0.0, 20.0), params, t_eval=np.linspace(0, 20, 5))
    assert ens.y.shape == (10_000, 5, 2) and np.all(ens.success)
    inv = (y0s[:, 1] - y0s[:, 0] ** 2) * np.exp(-2 * params[:, 2] * 20.0)
    np.testing.assert_allclose(ens.final[:, 1] - ens.final[:, 0] ** 2, inv, atol=1e-6)


@pytest.mark.parametrize("case", ["rows mismatch", "width", "method", "dt missing", "nan y0", "unknown key"])
def test_ensemble_bad_inputs(case):
    ref = REFERENCES["mode"]
    csys = ref.compiled()
    y0s, params = _random_modes(4)
    kwargs = {
        "rows mismatch": dict(y0s=y0s, params=params[:3]),
        "width": dict(y0s=y0s[:, :1], params=params),
        "method": dict(y0s=y0s, params=params, method="bdf"),
        "dt missing": dict(y0s=y0s, params=params, method="rk4"),
        "nan y0": dict(y0s=np.where(y0s > 0.5, np.nan, y0s), params=params),
        "unknown key": dict(y0s=y0s, params={"tau": [1.0, 2.0], "s2": 0.1, "eta": 0.0, "zeta": 1.0}),
    }[case]
    with pytest.raises(InvalidParameterError):
        solve_ensemble(csys, t_span=(0.0, 1.0), **kwargs)


@pytest.mark.parametrize("backend", BACKENDS)
def test_compiled_sde_through_compile_system(backend):
    import sympy as sp

    from theorykit.compile import compile_system
    from theorykit.derive import make_system

    theta, sigma = sp.symbols("theta sigma", real=True)
    ou = make_system(["x"], ["-theta*x"], [theta, sigma], noise=sp.Matrix([[sigma]]), name="solve_ou")
    csys = compile_system(ou, backend=backend)
    assert csys.n_noise == 1
    n = 2000 if backend == "numba" else 200
    p = {"theta": 1.0, "sigma": 0.5}
    ens = solve_ensemble(csys, np.full((n, 1), 1.0), (0.0, 1.0), p, method="euler_maruyama", dt=0.02, seed=1)
    mean, var = ou_moments(1.0, 1.0, 1.0, 0.5)
    em_mean = (1 - 0.02) ** 50
    assert abs(ens.final[:, 0].mean() - em_mean) < 4 * math.sqrt(var / n)
    assert abs(ens.final[:, 0].var(ddof=1) - var) < 4 * var * math.sqrt(2 / (n - 1)) + 0.03 * var
    single = solve(csys, {"x": 1.0}, (0.0, 1.0), p, method="euler_maruyama", dt=0.02, seed=9)
    ref = REFERENCES["ou"].compiled("numba")
    same = solve(ref, [1.0], (0.0, 1.0), [1.0, 0.5], method="euler_maruyama", dt=0.02, seed=9)
    np.testing.assert_allclose(single.y, same.y, rtol=1e-12)  # same seed, same path, any backend


# ------------------------------------------------------------------------------------------------ memory
def test_memory_limit_refuses_before_allocating():
    ref = REFERENCES["decay"]
    t_eval = np.linspace(0.0, 1.0, 1000)
    with pytest.raises(InvalidParameterError, match=r"needs about 7\.7 GiB.*max_memory.*fewer output times"):
        solve_ensemble(ref.compiled(), {"x": np.ones(10**6)}, (0.0, 1.0), [1.0], t_eval=t_eval, max_memory=2**30)
    small = solve_ensemble(ref.compiled(), {"x": np.ones(100)}, (0.0, 1.0), [1.0], t_eval=t_eval, max_memory=2**30)
    assert np.all(small.success)
    with pytest.raises(InvalidParameterError, match="max_memory"):
        solve_ensemble(ref.compiled(), [1.0], (0.0, 1.0), [1.0], max_memory=-1)


_UNDER_RLIMIT = """
import resource, sys
import numpy as np
sys.path.insert(0, {tests!r})
from solve_helpers import REFERENCES
from theorykit.errors import InvalidParameterError
from theorykit.solve import solve_ensemble

csys = REFERENCES["decay"].compiled()
solve_ensemble(csys, [1.0], (0.0, 1.0), [1.0])  # compile and load everything first
with open("/proc/self/status") as fh:
    vm = next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmSize:"))
resource.setrlimit(resource.RLIMIT_AS, (vm + (1 << 29), resource.RLIM_INFINITY))  # 512 MiB to spare
t_eval = np.linspace(0.0, 1.0, 100)
try:  # 10^6 trajectories x 100 outputs: ~1 GiB of results
    solve_ensemble(csys, {{"x": np.ones(10**6)}}, (0.0, 1.0), [1.0], t_eval=t_eval)
except InvalidParameterError as exc:
    print("refused:", exc)
ens = solve_ensemble(csys, {{"x": np.ones(10**5)}}, (0.0, 1.0), [1.0], t_eval=t_eval, chunk_size=1000)
print("ok", ens.counts())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="address-space limits as on Linux")
def test_memory_refusal_under_an_address_space_limit():
    code = _UNDER_RLIMIT.format(tests=os.path.dirname(__file__))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "refused: solve_ensemble of 1000000 trajectories x 100 output times x 1 states needs about 1014.7 MiB, " \
           "more than the memory available" in proc.stdout, proc.stdout
    assert "ok {<Status.SUCCESS: 0>: 100000}" in proc.stdout


def test_phase_diagram_checks_memory_first():
    from theorykit.analysis import phase_diagram

    ref = REFERENCES["logistic"]
    grid = {"r": np.linspace(0.1, 1.0, 10**4), "K": np.linspace(1.0, 2.0, 10**4)}
    with pytest.raises(InvalidParameterError, match="grid of 100000000 points"):
        phase_diagram(ref.compiled(), grid, ref.p, ref.y0, t_final=1.0, max_memory=2**30)
