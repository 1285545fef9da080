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
from theorykit.solve import NormAbove, Threshold, _drivers, _solve, solve, solve_ensemble

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
