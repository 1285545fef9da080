"""The three drivers of one algorithm give the same numbers: compiled, plain Python (the first calls while
numba's cache is cold), and the per-system driver with the right-hand side inlined; a run split into many
kernel calls equals one uninterrupted call."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from solve_helpers import REFERENCES
from theorykit.solve import NormAbove, Status, Threshold, _drivers, _solve, solve, solve_ensemble

pytestmark = pytest.mark.numba

CASES = {  # reference, method, options (events and dense output included)
    "dopri5": ("mode", "dopri5", dict(rtol=1e-9, atol=1e-12, dense=True, events=[Threshold("p", 0.5)])),
    "dopri5-terminal": ("logistic", "dopri5", dict(events=[NormAbove(1.5)])),
    "rk4": ("oscillator", "rk4", dict(dt=0.01, t_eval=np.linspace(0.0, 10.0, 33))),
    "euler_maruyama": ("ou", "euler_maruyama", dict(dt=0.01, seed=4)),
}


def _same(a, b):
    np.testing.assert_array_equal(a.t, b.t)
    np.testing.assert_array_equal(a.y, b.y)
    np.testing.assert_array_equal(a.events.t, b.events.t)
    assert a.status is b.status and a.stats == b.stats and a.t_final == b.t_final
    if a.dense is not None:
        np.testing.assert_array_equal(a.dense.rcont, b.dense.rcont)


@pytest.fixture
def compiled_available(monkeypatch):
    monkeypatch.setenv("THEORYKIT_COMPILE", "foreground")  # compile here if the cache is cold
    assert _drivers.GENERIC.get("integrate") is not None and _drivers.GENERIC.get("integrate_rows") is not None


@pytest.mark.parametrize("case", list(CASES))
def test_plain_python_driver_equals_compiled(compiled_available, monkeypatch, case):
    name, method, opts = CASES[case]
    ref = REFERENCES[name]
    csys = ref.compiled("numba")
    compiled = solve(csys, ref.y0, ref.t_span, ref.p, method=method, **opts)
    monkeypatch.setattr(_drivers.GENERIC, "get", lambda entry: None)  # as while the cache is being filled
    python = solve(csys, ref.y0, ref.t_span, ref.p, method=method, **opts)
    _same(python, compiled)
    y0s = np.array([ref.y0 * s for s in (1.0, 0.9, 1.1)])
    ens_python = solve_ensemble(csys, y0s, ref.t_span, ref.p, method=method, t_eval=opts.get("t_eval"),
                                dt=opts.get("dt"), seed=7)
    monkeypatch.undo()
    ens = solve_ensemble(csys, y0s, ref.t_span, ref.p, method=method, t_eval=opts.get("t_eval"), dt=opts.get("dt"),
                         seed=7, inline=False)
    np.testing.assert_array_equal(ens_python.y, ens.y)
    np.testing.assert_array_equal(ens_python.n_rhs_evals, ens.n_rhs_evals)


@pytest.mark.parametrize("case", list(CASES))
def test_many_short_calls_equal_one_call(compiled_available, monkeypatch, case):
    name, method, opts = CASES[case]
    ref = REFERENCES[name]
    whole = {be: solve(ref.compiled(be), ref.y0, ref.t_span, ref.p, method=method, **opts) for be in ("numba", "numpy")}
    # every kernel call stops after one attempted step, and the per-step buffers hold 2 rows
    monkeypatch.setattr(_solve.SystemFunctions, "budget", lambda self, driver, max_steps: 1)
    monkeypatch.setattr(_solve, "BUFFER_BYTES", 1)
    for backend, one_call in whole.items():
        _same(solve(ref.compiled(backend), ref.y0, ref.t_span, ref.p, method=method, **opts), one_call)


@pytest.mark.slow
def test_inlined_ensemble_driver_equals_generic(compiled_available):
    from theorykit.compile import compile_system
    from theorykit.derive import make_system

    system = make_system(["p", "s"], ["s*(tau - c*p) - eta*p", "2*p*s*(tau - c*p) - 2*eta*s"], ["tau", "c", "eta"],
                         name="drivers_inline_mode")
    csys = compile_system(system)
    rng = np.random.default_rng(5)
    y0s = rng.uniform(0.05, 1.0, (500, 2))
    params = np.column_stack([rng.uniform(0.5, 1.5, 500), rng.uniform(1.0, 1.5, 500), rng.uniform(0.0, 0.2, 500)])
    kw = dict(t_eval=np.linspace(0.0, 20.0, 9), events=[Threshold("p", 0.4, terminal=True)])
    generic = solve_ensemble(csys, y0s, (0.0, 20.0), params, inline=False, **kw)
    inlined = solve_ensemble(csys, y0s, (0.0, 20.0), params, inline=True, **kw)
    assert _drivers.inline_rows(csys, compile_now=False) is not None  # now in the cache
    for field in ("y", "status", "n_rhs_evals", "t_final", "event_t", "final"):
        np.testing.assert_array_equal(getattr(inlined, field), getattr(generic, field))
    for i in range(0, 500, 97):
        single = solve(csys, y0s[i], (0.0, 20.0), params[i], **kw)
        np.testing.assert_array_equal(single.y, inlined.y[i, :single.t.size])


def _varied_rows(n: int):
    """A system and rows whose trajectories differ in every way the ensemble can report: x' = -a,
    v' = sqrt(x) + c v (1 - v). Rows with a > 0 turn non-finite once x < 0, a large c takes many steps
    (up to the step limit), a small c carries v over the terminal threshold 1.05."""
    from theorykit.derive import make_system

    system = make_system(["x", "v"], ["-a", "sqrt(x) + c*v*(1 - v)"], ["a", "c"], name="drivers_varied_rows")
    rng = np.random.default_rng(11)
    y0s = np.column_stack([np.ones(n), rng.uniform(0.1, 0.9, n)])
    params = np.column_stack([np.where(np.arange(n) % 3 == 0, 0.5, 0.0), 10.0 ** rng.uniform(-1.0, 2.5, n)])
    opts = dict(t_eval=np.linspace(0.0, 20.0, 7), events=[Threshold("v", 1.05, terminal=True)], max_steps=400)
    return system, y0s, params, opts


def _check_varied(ens):
    """The rows of :func:`_varied_rows` did end in every way, after very different step counts."""
    assert {"success", "event", "non_finite", "max_steps"} <= {Status(s).name.lower() for s in ens.status}
    assert ens.n_steps.max() > 10 * ens.n_steps.min()


def test_interleaved_rows_equal_one_at_a_time(monkeypatch):
    """The interleaved Dormand–Prince rows (plain-Python flavour, 3 lanes) give every trajectory exactly
    what integrating it alone gives (the numpy backend's ensemble runs one row at a time)."""
    from theorykit.compile import compile_system
    from theorykit.solve import _ensemble

    system, y0s, params, opts = _varied_rows(14)
    captured = {}
    run = _ensemble._EnsembleRun.run

    def capture(self):
        captured["records"] = (self.prob, self.rows, type(self.res)(*(x.copy() for x in self.res)), self.fns)
        run(self)

    monkeypatch.setattr(_ensemble._EnsembleRun, "run", capture)
    alone = solve_ensemble(compile_system(system, backend="numpy"), y0s, (0.0, 20.0), params, **opts)
    _check_varied(alone)
    prob, rows, res, fns = captured["records"]
    with np.errstate(all="ignore"):
        _drivers.python_kernels()._interleaved_rows(fns.rhs_py, prob, rows, res, 3)
    np.testing.assert_array_equal(res.y, alone.y)
    np.testing.assert_array_equal(res.status, alone.status)
    np.testing.assert_array_equal(res.t_final, alone.t_final)
    np.testing.assert_array_equal(res.final, alone.final)
    np.testing.assert_array_equal(res.ev_t[:, 0], alone.event_t)
    np.testing.assert_array_equal(res.ev_y[:, 0], alone.event_y)
    np.testing.assert_array_equal(res.stats[:, 0], alone.n_steps)
    np.testing.assert_array_equal(res.stats[:, 1], alone.n_rejected)
    np.testing.assert_array_equal(res.stats[:, 2], alone.n_rhs_evals)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::theorykit.errors.StiffnessWarning")  # the rows with a large c
def test_interleaved_inlined_driver_equals_single_solves(compiled_available):
    """The inlined ensemble driver (Dormand–Prince rows interleaved in lanes) against single solves."""
    from theorykit.compile import compile_system

    system, y0s, params, opts = _varied_rows(200)
    csys = compile_system(system)
    inlined = solve_ensemble(csys, y0s, (0.0, 20.0), params, inline=True, **opts)
    _check_varied(inlined)
    generic = solve_ensemble(csys, y0s, (0.0, 20.0), params, inline=False, **opts)
    for field in ("y", "status", "n_steps", "n_rejected", "n_rhs_evals", "t_final", "final", "event_t", "event_y"):
        np.testing.assert_array_equal(getattr(inlined, field), getattr(generic, field))
    for i in range(200):
        single = solve(csys, y0s[i], (0.0, 20.0), params[i], throw=False, **opts)
        assert single.status == inlined.status[i] and single.t_final == inlined.t_final[i]
        assert single.stats["n_steps"] == inlined.n_steps[i]
        np.testing.assert_array_equal(single.y, inlined.y[i, :single.t.size])


_COLD = """
import sys, time
import numpy as np
from theorykit.compile import compile_system
from theorykit.derive import make_system
from theorykit.solve import _drivers, solve

csys = compile_system(make_system(["x", "v"], ["v", "-w**2*x - g*v"], ["w", "g"], name="drivers_cold"))
first = solve(csys, [1.0, 0.0], (0.0, 20.0), [2.0, 0.1], dense=True)
assert not _drivers.GENERIC.entries, "the cache was not cold"
deadline = time.monotonic() + 900
while _drivers.GENERIC.get("integrate") is None and time.monotonic() < deadline:
    time.sleep(1.0)
later = solve(csys, [1.0, 0.0], (0.0, 20.0), [2.0, 0.1], dense=True)
assert "integrate" in _drivers.GENERIC.entries, "the background compilation did not fill the cache"
assert np.array_equal(first.y, later.y) and np.array_equal(first.dense.rcont, later.dense.rcont)
assert first.stats == later.stats
print("same")
"""


@pytest.mark.slow
def test_cold_cache_first_solve_runs_in_python_and_equals_the_compiled_one(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba"), THEORYKIT_CACHE_DIR=str(tmp_path / "tk"))
    env.pop("THEORYKIT_COMPILE", None)
    proc = subprocess.run([sys.executable, "-c", _COLD], env=env, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0 and proc.stdout.strip() == "same", proc.stderr


def test_a_long_auto_ensemble_starts_the_inlined_drivers_compilation(compiled_available, monkeypatch):
    from theorykit.compile import compile_system
    from theorykit.derive import make_system
    from theorykit.solve import _ensemble

    csys = compile_system(make_system(["x"], ["-k*x"], ["k"], name="drivers_auto_inline"))
    started = []
    monkeypatch.setattr(_ensemble, "compile_inline_in_background", started.append)
    y0s, ks = np.ones((64, 1)), np.linspace(0.5, 2.0, 64)[:, None]
    solve_ensemble(csys, y0s, (0.0, 1.0), ks, inline="auto")
    assert started == []  # 64 short trajectories never repay a compilation
    monkeypatch.setattr(_ensemble, "INLINE_REPAY_SECONDS", 0.0)
    solve_ensemble(csys, y0s, (0.0, 1.0), ks, inline=False)
    assert started == []  # inline=False: never
    solve_ensemble(csys, y0s, (0.0, 1.0), ks, inline="auto")
    assert started == [csys]  # once per ensemble, however many chunks it runs


_INLINE_BACKGROUND = """
import os, time
import numpy as np
from theorykit.compile import compile_system
from theorykit.derive import make_system
from theorykit.solve import _drivers, solve_ensemble

csys = compile_system(make_system(["p", "s"], ["s*(1 - p) - e*p", "2*p*s*(1 - p) - 2*e*s"], ["e"],
                                  name="drivers_inline_background"))
assert _drivers.inline_rows(csys, compile_now=False) is None, "the cache was not cold"
assert _drivers.compile_inline_in_background(csys), "no background compilation started"
background = _drivers._inline[str(csys.path)].background
deadline = time.monotonic() + 900
while background.busy() and time.monotonic() < deadline:
    time.sleep(1.0)
time.sleep(_drivers.POLL_INTERVAL)
assert _drivers.inline_rows(csys, compile_now=False) is not None, "the inlined driver is not in the cache"
assert not _drivers.compile_inline_in_background(csys)  # nothing left to compile
os.environ["THEORYKIT_COMPILE"] = "foreground"
y0s = np.random.default_rng(1).uniform(0.05, 1.0, (40, 2))
es = np.linspace(0.0, 0.2, 40)[:, None]
auto = solve_ensemble(csys, y0s, (0.0, 20.0), es, inline="auto", t_eval=np.linspace(0.0, 20.0, 5))
generic = solve_ensemble(csys, y0s, (0.0, 20.0), es, inline=False, t_eval=np.linspace(0.0, 20.0, 5))
assert np.array_equal(auto.y, generic.y) and np.array_equal(auto.status, generic.status)
print("same")
"""


@pytest.mark.slow
def test_inlined_driver_compiled_in_the_background_is_used_and_equal(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba"), THEORYKIT_CACHE_DIR=str(tmp_path / "tk"))
    env.pop("THEORYKIT_COMPILE", None)
    proc = subprocess.run([sys.executable, "-c", _INLINE_BACKGROUND], env=env, capture_output=True, text=True,
                          timeout=1200)
    assert proc.returncode == 0 and proc.stdout.strip() == "same", proc.stderr
