"""``solve``: integrate one trajectory of a compiled system with a named method."""

from __future__ import annotations

import math
import sys
import threading
import time
import warnings
import weakref
from typing import Any, Mapping, Sequence

import numpy as np

from .._checks import check_int, check_range
from .._random import SeedLike, as_generator
from ..errors import InvalidParameterError, SolveError, StiffnessWarning
from . import _layout as L
from ._drivers import GENERIC, python_kernels
from ._events import Event, pack_events
from ._solution import DenseOutput, EventRecord, Solution, Status

#: Methods run by the theorykit kernels (numba, or the same code as plain Python for the numpy backend).
KERNEL_METHODS = {"dopri5": L.DOPRI5, "rk4": L.RK4, "euler_maruyama": L.EULER_MARUYAMA}
#: Fixed-step methods (need ``dt``).
FIXED_STEP_METHODS = ("rk4", "euler_maruyama")
#: Stiff methods delegated to scipy's ``OdeSolver`` classes, driven step by step with the compiled rhs/Jacobian.
SCIPY_METHODS = {"bdf": "BDF", "radau": "Radau", "lsoda": "LSODA"}
METHODS = tuple(KERNEL_METHODS) + tuple(SCIPY_METHODS)

#: Most events recorded per solve (further ones are counted in ``stats['n_events']`` only).
EVENT_CAPACITY = 10_000
#: Largest per-step output / dense buffer (bytes) allocated at once; longer runs continue in new buffers.
BUFFER_BYTES = 1 << 26
#: Rows of the first per-step output buffer of an adaptive method (buffers double when they fill up).
FIRST_BUFFER_ROWS = 256
#: Wall time one kernel call aims at before it returns to Python (where Ctrl-C takes effect).
CALL_SECONDS = 0.1
#: Attempted steps of a system's first kernel call, before its cost per step has been measured.
FIRST_BUDGET = 100

#: Arithmetic errors a right-hand side run as Python may raise; they end the step as non-finite values.
ARITHMETIC_ERRORS = (ArithmeticError, ValueError)


def guarded(fn):
    """``fn(t, y, p, out)`` that turns an arithmetic error into the nan entries it leaves in ``out``.

    ``out`` is filled with nan first, so a right-hand side that raises half-way (Python float division by
    zero, ``math.sqrt`` of a negative number, a complex power) leaves nan behind and the step ends as
    ``NON_FINITE``, as it does when numba computes the same expression with IEEE arithmetic.
    """

    def call(t, y, p, out):
        out.fill(math.nan)
        try:
            fn(t, y, p, out)
        except ARITHMETIC_ERRORS:
            pass
        except TypeError as exc:  # a negative base to a fractional power gives a complex number in Python
            if "complex" not in str(exc):
                raise

    return call


def _quiet_numba_errors(unraisable) -> None:
    """``sys.unraisablehook`` during compiled kernel calls: drop the arithmetic errors numba can only print
    when a function called through a pointer raises (its unwritten outputs stay nan: see ``guarded``)."""
    if issubclass(unraisable.exc_type, ARITHMETIC_ERRORS) and "numba" in repr(unraisable.object):
        return
    _PREVIOUS_HOOK[0](unraisable)


_PREVIOUS_HOOK = [sys.unraisablehook]


class QuietNumbaErrors:
    """Context manager installing :func:`_quiet_numba_errors` (re-entrant, thread-safe enough for the GIL)."""

    depth = 0

    def __enter__(self):
        if QuietNumbaErrors.depth == 0:
            _PREVIOUS_HOOK[0] = sys.unraisablehook
            sys.unraisablehook = _quiet_numba_errors
        QuietNumbaErrors.depth += 1

    def __exit__(self, *exc):
        QuietNumbaErrors.depth -= 1
        if QuietNumbaErrors.depth == 0:
            sys.unraisablehook = _PREVIOUS_HOOK[0]


class SystemFunctions:
    """What the solvers need from one compiled system, checked once: sizes, names and its functions in
    the two forms the kernels call them (first-class numba functions for the compiled drivers, guarded
    Python callables for the plain-Python flavour), plus the measured cost of its steps."""

    def __init__(self, csys: Any):
        backend = getattr(csys, "backend", None)
        if backend not in ("numba", "numpy"):
            raise InvalidParameterError(f"csys.backend must be 'numba' or 'numpy', got {backend!r}")
        self.backend = backend
        self.rhs_into = csys.rhs_into
        self.n = int(csys.n_states)
        self.m = int(csys.n_params)
        self.state_names = tuple(csys.state_names)
        self.param_names = tuple(csys.param_names)
        n_noise = int(getattr(csys, "n_noise", 0) or 0)
        diffusion = getattr(csys, "diffusion_into", None)
        if n_noise == 0 or diffusion is None:
            diffusion, n_noise = None, 0
        self.n_noise = n_noise
        self.rhs_py = guarded(csys.rhs_into)
        self.diffusion_py = guarded(diffusion) if diffusion is not None else python_kernels().zero_diffusion
        if backend == "numba":
            for name, fn in (("rhs_into", csys.rhs_into), ("diffusion_into", diffusion)):
                if fn is not None and not hasattr(fn, "overloads"):
                    raise InvalidParameterError(f"csys.backend is 'numba' but csys.{name} is not a numba.njit "
                                                f"function ({type(fn).__name__}); compile with backend='numpy' instead")
        self._diffusion = diffusion
        self._addresses: tuple[int, int] | None = None
        self._local = threading.local()
        #: seconds per attempted step, by driver ("compiled" / "python"), measured on earlier solves
        self.seconds_per_attempt: dict[str, float] = {}
        self.no_events = EventRecord(np.empty(0), np.empty((0, self.n)), np.empty(0, dtype=np.int64), 0)

    @property
    def addresses(self) -> tuple[int, int]:
        """``(rhs, diffusion)`` as the addresses the compiled drivers call (made on first use: the
        plain-Python flavour calls the dispatchers themselves). ``self`` keeps the functions alive.

        A function that can raise (numba's default error model: hand-written njit functions) is wrapped in
        one that fills its output with nan first; generated functions use IEEE arithmetic and are called as
        they are."""
        if self._addresses is None:
            from . import _kernels

            rhs = self.rhs_into
            diffusion = self._diffusion if self._diffusion is not None else _kernels.zero_diffusion
            if not _ieee(rhs):
                rhs = _kernels.nan_filled(rhs)
            if self._diffusion is not None and not _ieee(diffusion):
                diffusion = _kernels.nan_filled(diffusion, matrix=True)
            self._keep = (rhs, diffusion)
            self._addresses = (_kernels.function_address(rhs, _kernels.RHS_TYPE),
                               _kernels.function_address(diffusion, _kernels.DIFFUSION_TYPE))
        return self._addresses

    def work(self, n_events: int) -> tuple:
        """Arrays one solve uses but does not return, kept per thread for the next solve:
        ``(f, i, k, g, scratch, no_dense, no_dense_r, no_events_y, no_events_which)``."""
        cache = self._local.__dict__.setdefault("work", {})
        work = cache.get(n_events)
        if work is None or getattr(self._local, "busy", False):  # none yet, or in use (a nested solve)
            n, m = self.n, self.n_noise
            scratch = L.Scratch(np.empty(n), np.empty(n), np.zeros((5, n)), np.zeros((n, max(m, 1))), np.empty(m),
                                np.empty(n_events), np.empty(n), np.empty(2 * n_events))
            work = (np.zeros(L.N_SF), np.zeros(L.N_SI, dtype=np.int64), np.empty((7, n)), np.empty(n_events),
                    scratch, np.empty(0), np.empty((0, 5, n)), np.empty((0, n)), np.empty(0, dtype=np.int64))
            cache.setdefault(n_events, work)
        return work

    def budget(self, driver: str, max_steps: int) -> int:
        """Attempted steps for one kernel call to last about :data:`CALL_SECONDS`."""
        spa = self.seconds_per_attempt.get(driver)
        if spa is None:
            return min(FIRST_BUDGET, max_steps + 1)
        return int(min(max_steps + 1, max(FIRST_BUDGET, CALL_SECONDS / max(spa, 1e-9))))

    def measured(self, driver: str, attempts: int, seconds: float) -> None:
        if attempts >= 20:
            self.seconds_per_attempt[driver] = seconds / attempts


def _ieee(fn) -> bool:
    """Whether a numba dispatcher was compiled with IEEE arithmetic (cannot raise on bad arithmetic)."""
    return getattr(fn, "targetoptions", {}).get("error_model") == "numpy"


_SYSTEMS: dict[int, SystemFunctions] = {}


def system_functions(csys: Any) -> SystemFunctions:
    """The checked :class:`SystemFunctions` of ``csys``, built on first use and kept while ``csys`` lives."""
    key = id(csys)
    entry = _SYSTEMS.get(key)
    if entry is not None and entry.rhs_into is csys.rhs_into and entry.backend == csys.backend:
        return entry
    entry = SystemFunctions(csys)
    try:
        weakref.finalize(csys, _SYSTEMS.pop, key, None)
    except TypeError:  # not weak-referenceable: check it on every call
        return entry
    _SYSTEMS[key] = entry
    return entry


def check_method(method: str, allowed: Sequence[str]) -> str:
    if method not in allowed:
        raise InvalidParameterError(f"method must be one of {list(allowed)}, got {method!r}")
    return method


def check_t_span(t_span: Any) -> tuple[float, float]:
    try:
        t0, t1 = t_span
    except (TypeError, ValueError):
        raise InvalidParameterError(f"t_span must be a pair (t0, t1), got {t_span!r}") from None
    t0 = check_range("t_span[0]", t0)
    t1 = check_range("t_span[1]", t1)
    if not t1 > t0:
        raise InvalidParameterError(f"t_span must be increasing (t0 < t1), got ({t0}, {t1})")
    return t0, t1


def check_t_eval(t_eval: Any, t0: float, t1: float) -> np.ndarray:
    """``t_eval`` as a strictly increasing float64 array inside ``[t0, t1]`` (``None`` -> empty)."""
    if t_eval is None:
        return np.empty(0)
    te = np.atleast_1d(np.asarray(t_eval, dtype=np.float64))
    if te.ndim != 1 or te.size == 0:
        raise InvalidParameterError(f"t_eval must be a non-empty 1-d array of times, got shape {te.shape}")
    if not np.all(np.isfinite(te)):
        raise InvalidParameterError("t_eval contains non-finite values")
    if te[0] < t0 or te[-1] > t1:
        raise InvalidParameterError(f"t_eval must lie inside t_span [{t0}, {t1}], got [{te[0]}, {te[-1]}]")
    if np.any(np.diff(te) <= 0):
        raise InvalidParameterError("t_eval must be sorted in strictly increasing order")
    return np.array(te, dtype=np.float64, order="C")  # a private, writable copy (results get frozen)


def check_options(method: str, t0: float, t1: float, *, rtol: float, atol: float, first_step: float | None,
                  max_step: float, dt: float | None, max_steps: int, blow_up: float) -> dict:
    """Validate the numeric options shared by :func:`solve` and ``solve_ensemble``."""
    rtol = check_range("rtol", rtol, 0.0, 1.0, high_open=True)
    atol = check_range("atol", atol, 0.0, math.inf, high_open=True)
    if rtol == 0.0 and atol == 0.0:
        raise InvalidParameterError("rtol and atol cannot both be 0")
    fs = 0.0 if first_step is None else check_range("first_step", first_step, 0.0, math.inf, low_open=True,
                                                   high_open=True)
    max_step = check_range("max_step", max_step, 0.0, math.inf, low_open=True)
    max_steps = check_int("max_steps", max_steps, 1)
    blow_up = check_range("blow_up", blow_up, 0.0, math.inf, low_open=True)
    if method in FIXED_STEP_METHODS:
        if dt is None:
            raise InvalidParameterError(f"method {method!r} is fixed-step: pass dt > 0")
        dt = check_range("dt", dt, 0.0, math.inf, low_open=True, high_open=True)
    elif dt is not None:
        raise InvalidParameterError(f"dt is only used by the fixed-step methods {list(FIXED_STEP_METHODS)}; "
                                    f"method {method!r} chooses its own steps (use first_step / max_step)")
    return dict(rtol=rtol, atol=atol, first_step=fs, max_step=max_step, dt=0.0 if dt is None else dt,
                max_steps=max_steps, blow_up=blow_up)


def pack_vector(csys: Any, value: Any, kind: str) -> np.ndarray:
    """Pack one state (``kind='y0'``) or parameter set (``'params'``) through the compiled system.

    Returns a private float64 copy (results freeze their arrays). A ``dict`` keyed by exactly the names,
    or a float64 array of the right length, takes a fast path with the same checks.
    """
    names = csys.state_names if kind == "y0" else csys.param_names
    if type(value) is dict and len(value) == len(names):
        try:
            packed = [float(value[k]) for k in names]
        except (KeyError, TypeError, ValueError):
            packed = None
        if packed is not None and all(map(math.isfinite, packed)):
            return np.array(packed)
    elif type(value) is np.ndarray and value.shape == (len(names),) and value.dtype == np.float64:
        arr = value.copy()
        if np.isfinite(arr).all():
            return arr
    n = csys.n_states if kind == "y0" else csys.n_params
    if kind == "params" and value is None and n == 0:
        value = np.empty(0)
    if value is None:
        raise InvalidParameterError(f"{kind} is required")
    packer = csys.pack_state if kind == "y0" else csys.pack_params
    if not isinstance(value, Mapping):
        arr = np.asarray(value, dtype=np.float64)
        if arr.ndim != 1 or arr.shape[0] != n:
            names = csys.state_names if kind == "y0" else csys.param_names
            raise InvalidParameterError(f"{kind} must have {n} entries {list(names)}, got shape {arr.shape}")
    arr = np.array(packer(value), dtype=np.float64, order="C")  # a private copy: results freeze their arrays
    if arr.shape != (n,):
        raise InvalidParameterError(f"{kind} must have {n} entries, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise InvalidParameterError(f"{kind} contains non-finite values (nan or inf)")
    return arr


def raise_for(status: Status, method: str, t_final: float, solution: Any = None) -> None:
    err = SolveError(f"{status.name} at t={t_final:.6g} (method {method!r}): {status.message}")
    err.status = status
    err.solution = solution
    raise err


def solve(csys: Any, y0: Mapping[str, float] | np.ndarray, t_span: tuple[float, float],
          params: Mapping[str, float] | np.ndarray | None = None, *, method: str = "dopri5",
          t_eval: Any = None, dense: bool = False, rtol: float = 1e-8, atol: float = 1e-10,
          first_step: float | None = None, max_step: float = math.inf, dt: float | None = None,
          events: Sequence[Event] | np.ndarray = (), max_steps: int = 100_000, seed: SeedLike = None,
          blow_up: float = 1e12, throw: bool = True) -> Solution:
    r"""Integrate :math:`\dot y = f(t, y; p)` (or the Itô SDE :math:`dy = f\,dt + G\,dW`) over ``t_span``.

    Parameters
    ----------
    csys : CompiledSystem
        From ``theorykit.compile.compile_system`` (numba or numpy backend).
    y0 : mapping or float64 [n_state]
        Initial state, by state name or packed in ``csys.state_names`` order.
    t_span : (float, float)
        ``(t0, t1)`` with ``t0 < t1``.
    params : mapping or float64 [n_param]
        Parameters, by name or packed in ``csys.param_names`` order.
    method : str
        ``"dopri5"`` (adaptive Dormand–Prince 5(4), PI step control, FSAL, 4th-order dense output),
        ``"rk4"`` (classical, fixed ``dt``), ``"euler_maruyama"`` (Itô SDE, fixed ``dt``, seeded),
        or the stiff ``"bdf"``, ``"radau"``, ``"lsoda"`` (scipy's implementations driven step by step
        with the compiled rhs and Jacobian). Deterministic methods ignore any noise (drift only).
    t_eval : float64 [n_t], optional
        Strictly increasing output times inside ``t_span``, filled from the dense output (Euler–Maruyama
        lands on them exactly). Default: every accepted step.
    dense : bool
        Keep every step's interpolant so that :meth:`Solution.at` works.
    rtol, atol : float
        Relative and absolute tolerances of adaptive methods (per component:
        ``atol + rtol * |y|``).
    first_step, max_step : float
        Initial (default: automatic) and largest step of adaptive methods.
    dt : float
        Step of the fixed-step methods (shortened to land on ``t1``).
    events : sequence of Threshold / NormAbove, or float64 [k, 5]
        Events to locate; terminal ones stop the integration with status ``EVENT``.
    max_steps : int
        Most attempted steps.
    seed : int or numpy Generator
        Randomness of ``"euler_maruyama"`` (same seed, same path, on both backends).
    blow_up : float
        Stop with status ``BLOW_UP`` once ``max|y|`` exceeds this (``np.inf`` disables it).
    throw : bool
        Raise :class:`~theorykit.errors.SolveError` on failure; if False, return the partial solution up to the failure
        with its ``status`` (no values past the failure).

    Returns
    -------
    Solution

    Raises
    ------
    InvalidParameterError
        For bad inputs (t_span not increasing, t_eval unsorted or outside t_span, negative tolerances,
        y0 of the wrong length or non-finite, unknown method, dt missing for fixed-step methods).
    SolveError
        With ``throw=True``, if the status is not SUCCESS or EVENT (``err.status``, ``err.solution``).

    Examples
    --------
    >>> sol = solve(csys, {"x": 1.0}, (0.0, 5.0), {"k": 0.5}, t_eval=[0.0, 1.0, 5.0])  # doctest: +SKIP
    >>> sol.y_of("x")                                                                  # doctest: +SKIP
    """
    check_method(method, METHODS)
    t0, t1 = check_t_span(t_span)
    te = check_t_eval(t_eval, t0, t1)
    opts = check_options(method, t0, t1, rtol=rtol, atol=atol, first_step=first_step, max_step=max_step, dt=dt,
                         max_steps=max_steps, blow_up=blow_up)
    fns = system_functions(csys)
    y0a = pack_vector(csys, y0, "y0")
    p = pack_vector(csys, params, "params")
    ev = pack_events(events, fns.state_names)
    if method in SCIPY_METHODS:
        sol = _solve_scipy(csys, fns, method, t0, t1, y0a, p, te, ev, dense=bool(dense), **opts)
    else:
        sol = _solve_kernel(csys, fns, method, t0, t1, y0a, p, te, ev, dense=bool(dense), seed=seed, **opts)
    # Near a stable equilibrium a few stability-limited steps are normal; warn when they cost real work.
    stiff = sol.stats.get("stiff_steps", 0)
    if stiff >= 100 and 2 * stiff >= sol.stats["n_steps"]:
        warnings.warn(f"dopri5 found the problem stiff on {sol.stats['stiff_steps']} of {sol.stats['n_steps']} "
                      "steps (step size limited by stability, not accuracy): method='bdf' or 'radau' will be "
                      "faster there", StiffnessWarning, stacklevel=2)
    if throw and not sol.success:
        raise_for(sol.status, method, sol.t_final, sol)
    return sol


def em_seed(seed: SeedLike) -> int:
    """A 32-bit seed for the kernels' ``np.random.seed`` drawn from ``seed``."""
    return int(as_generator(seed).integers(0, 2**32 - 1))


def _driver(fns: SystemFunctions):
    """``(integrate, rhs, diffusion, name)``: the compiled driver if it is available, else the plain-Python one."""
    if fns.backend == "numba":
        entry = GENERIC.get("integrate")
        if entry is not None:
            return (entry, *fns.addresses, "compiled")
    return python_kernels().integrate, fns.rhs_py, fns.diffusion_py, "python"


def _solve_kernel(csys, fns, method, t0, t1, y0, p, te, ev, *, dense, seed, rtol, atol, first_step, max_step, dt,
                  max_steps, blow_up) -> Solution:
    n = fns.n
    integrate, rhs, diffusion, driver = _driver(fns)
    # Per-step buffers start small and double when full (up to BUFFER_BYTES); the kernel stops with
    # BUFFER_FULL, the filled part is kept and the same trajectory continues in new buffers.
    rows_limit = max(2, BUFFER_BYTES // (8 * n * (6 if dense else 1)))
    if method in FIXED_STEP_METHODS:  # the number of steps is known
        cap_steps = min(max_steps, int(math.ceil((t1 - t0) / dt)) + te.size + 1)
    else:
        cap_steps = min(max_steps, FIRST_BUFFER_ROWS)
    cap_steps = min(cap_steps + 1, rows_limit)
    cap_out = te.size if te.size else cap_steps
    cap_d = cap_steps if dense else 0
    cap_e = EVENT_CAPACITY if ev.shape[0] else 0
    prob = L.Problem(np.array([t0, t1, rtol, atol, first_step, max_step, dt, blow_up]),
                     np.array([KERNEL_METHODS[method], fns.n_noise, max_steps, fns.budget(driver, max_steps)],
                              dtype=np.int64), te, ev)
    f, i, k, g, sc, no_dense, no_dense_r, no_ev_y, no_ev_which = fns.work(ev.shape[0])
    f.fill(0.0)
    i.fill(0)
    i[L.C_STATUS] = L.NOT_STARTED
    i[L.C_SEED] = em_seed(seed) if method == "euler_maruyama" else -1
    st = L.State(f, i, y0, k, g)  # y0 is a private copy: it becomes the final state
    out = L.Output(np.empty(cap_out), np.empty((cap_out, n)),
                   *((np.empty(cap_d), np.empty(cap_d), np.empty((cap_d, 5, n))) if dense
                     else (no_dense, no_dense, no_dense_r)),
                   *((np.empty(cap_e), np.empty((cap_e, n)), np.empty(cap_e, dtype=np.int64)) if cap_e
                     else (no_dense, no_ev_y, no_ev_which)))
    pieces, dense_pieces = [], []
    python = driver == "python"
    random_state = np.random.get_state() if python and method == "euler_maruyama" else None
    seconds, attempts = 0.0, 0
    was_busy, fns._local.busy = getattr(fns._local, "busy", False), True  # a nested solve gets its own arrays
    try:
        with (np.errstate(all="ignore") if python else QuietNumbaErrors()):
            while True:
                start, before = time.perf_counter(), st.i[L.C_ATTEMPTS]
                integrate(rhs, diffusion, prob, p, st, sc, out)
                seconds += time.perf_counter() - start
                attempts += int(st.i[L.C_ATTEMPTS] - before)
                status = int(st.i[L.C_STATUS])
                if status >= 0:
                    break
                if status == L.PAUSED:  # back in Python for a moment (Ctrl-C works); aim at CALL_SECONDS
                    fns.measured(driver, attempts, seconds)
                    prob.iopt[L.I_BUDGET] = fns.budget(driver, max_steps)
                    continue
                # BUFFER_FULL: keep what was written, continue in buffers twice the size
                cap_steps = min(2 * cap_steps, rows_limit)
                if not te.size:
                    pieces.append((out.t[:st.i[L.C_OUT]], out.y[:st.i[L.C_OUT]]))
                    out = out._replace(t=np.empty(cap_steps), y=np.empty((cap_steps, n)))
                    st.i[L.C_OUT] = 0
                if dense:
                    nd = st.i[L.C_DENSE]
                    dense_pieces.append((out.dense_t[:nd], out.dense_h[:nd], out.dense_r[:nd]))
                    out = out._replace(dense_t=np.empty(cap_steps), dense_h=np.empty(cap_steps),
                                       dense_r=np.empty((cap_steps, 5, n)))
                    st.i[L.C_DENSE] = 0
        t_final = float(f[L.S_T])
    finally:
        fns._local.busy = was_busy
        if random_state is not None:  # the plain-Python kernel seeds numpy's global generator: restore it
            np.random.set_state(random_state)
    fns.measured(driver, attempts, seconds)
    n_out, nd, n_ev = int(st.i[L.C_OUT]), int(st.i[L.C_DENSE]), int(st.i[L.C_EVENTS])
    pieces.append((out.t[:n_out], out.y[:n_out]))
    t_out, y_out = pieces[0] if len(pieces) == 1 else (np.concatenate(x) for x in zip(*pieces))
    dense_out = None
    if dense:
        dense_pieces.append((out.dense_t[:nd], out.dense_h[:nd], out.dense_r[:nd]))
        if st.i[L.C_ACCEPTED]:
            dense_out = DenseOutput(*(np.concatenate(x) for x in zip(*dense_pieces)))
    k = min(n_ev, cap_e)
    events_out = EventRecord(out.ev_t[:k], out.ev_y[:k], out.ev_which[:k], n_ev) if cap_e else fns.no_events
    return Solution(
        t=t_out, y=y_out, params=p, status=Status(status),
        stats={"n_steps": int(st.i[L.C_ACCEPTED]), "n_rejected": int(st.i[L.C_REJECTED]),
               "n_rhs_evals": int(st.i[L.C_RHS]), "n_jac_evals": 0, "n_events": n_ev,
               "stiff_steps": int(st.i[L.C_STIFF])},
        events=events_out, state_names=fns.state_names, param_names=fns.param_names, method=method,
        t_final=t_final, y_final=y0, dense=dense_out, system=csys)


#: What scipy's stiff solvers raise when their linear algebra meets nan/inf: from the rhs or Jacobian
#: (then NON_FINITE) or from a step size that underflowed (h -> 0 makes 1/h infinite: STEP_SIZE_UNDERFLOW).
SCIPY_BREAKDOWN = (ValueError, ArithmeticError, np.linalg.LinAlgError)


# Quartic fit of a scipy step interpolant in the kernels' dense-output basis
# (1, th, th(1-th), th^2(1-th), th^2(1-th)^2), from samples at th = 0, 1/4, 1/2, 3/4, 1.
_FIT_THETA = np.linspace(0.0, 1.0, 5)
_FIT_INV = np.linalg.inv(np.stack([np.ones(5), _FIT_THETA, _FIT_THETA * (1 - _FIT_THETA),
                                   _FIT_THETA**2 * (1 - _FIT_THETA), (_FIT_THETA * (1 - _FIT_THETA)) ** 2], axis=1))


def _solve_scipy(csys, fns, method, t0, t1, y0, p, te, ev, *, dense, rtol, atol, first_step, max_step, dt,
                 max_steps, blow_up) -> Solution:
    import scipy.integrate as si

    n = y0.shape[0]
    K = python_kernels()
    jac_into = getattr(csys, "jac_into", None)
    jac_py = guarded(jac_into) if jac_into is not None else None
    bad = [False]  # set when the rhs or Jacobian gave nan/inf (or an arithmetic error) since the last step

    def fun(t, y):
        out = np.full(n, np.nan)
        fns.rhs_py(float(t), np.ascontiguousarray(y, dtype=np.float64), p, out)
        if not np.all(np.isfinite(out)):
            bad[0] = True
        return out

    def jac(t, y):
        out = np.full((n, n), np.nan)
        jac_py(float(t), np.ascontiguousarray(y, dtype=np.float64), p, out)
        if not np.all(np.isfinite(out)):
            bad[0] = True
        return out

    kw = dict(rtol=rtol, atol=atol, max_step=max_step)
    if first_step:
        kw["first_step"] = min(first_step, t1 - t0)
    with np.errstate(all="ignore"):
        f0 = fun(t0, y0)
    ts, ys = [], []
    if te.size == 0:
        ts.append(t0)
        ys.append(y0.copy())
        i_out = 0
    else:
        i_out = int(np.searchsorted(te, t0, side="right"))
        ts.extend(te[:i_out])
        ys.extend([y0.copy()] * i_out)
    k_ev = ev.shape[0]
    g_old = np.empty(k_ev)
    K.event_values(ev, y0, g_old)
    cap_e = EVENT_CAPACITY if k_ev else 0
    ev_out = L.Output(None, None, None, None, None, np.empty(cap_e), np.empty((cap_e, n)),
                      np.empty(cap_e, dtype=np.int64))
    ev_work = L.Scratch(None, None, None, None, None, np.empty(k_ev), np.empty(n), np.empty(2 * k_ev))
    n_ev = 0
    dense_t, dense_h, dense_r = [], [], []
    t, y = t0, y0.copy()
    n_steps = 0
    status = None
    solver = None
    with np.errstate(all="ignore"):
        if not np.all(np.isfinite(f0)):
            status = Status.NON_FINITE
        else:
            try:
                solver = getattr(si, SCIPY_METHODS[method])(fun, t0, y0.copy(), t1,
                                                            jac=jac if jac_into is not None else None, **kw)
            except SCIPY_BREAKDOWN:
                status = Status.NON_FINITE if bad[0] else Status.STEP_SIZE_UNDERFLOW
        while status is None:
            if solver.status == "finished":
                status = Status.SUCCESS
                break
            if n_steps >= max_steps:
                status = Status.MAX_STEPS
                break
            bad[0] = False
            try:
                solver.step()
            except SCIPY_BREAKDOWN:
                status = Status.NON_FINITE if bad[0] else Status.STEP_SIZE_UNDERFLOW
                break
            n_steps += 1
            if solver.status == "failed" or not np.all(np.isfinite(solver.y)):
                status = Status.NON_FINITE if (bad[0] or not np.all(np.isfinite(solver.y))) \
                    else Status.STEP_SIZE_UNDERFLOW
                break
            t_old, t_new, y_new = solver.t_old, solver.t, solver.y.copy()
            h = t_new - t_old
            interp = solver.dense_output()
            rcont = None
            if ev.shape[0] or dense:
                samples = interp(t_old + _FIT_THETA * h).T  # [5, n]
                samples[0], samples[-1] = y, y_new
                rcont = np.ascontiguousarray(_FIT_INV @ samples)
            if dense:
                dense_t.append(t_old)
                dense_h.append(h)
                dense_r.append(rcont)
            t_stop, y_stop = t_new, y_new
            if ev.shape[0]:
                theta, n_ev = K.locate_events(ev, t_old, h, rcont, y_new, g_old, ev_out, n_ev, ev_work)
                if theta >= 0.0:
                    status = Status.EVENT
                    if theta < 1.0:
                        t_stop = t_old + theta * h
                        y_stop = interp(t_stop)
            if te.size == 0:
                ts.append(t_stop)
                ys.append(y_stop)
            else:
                j = int(np.searchsorted(te, t_stop, side="right"))
                if j > i_out:
                    inner = te[i_out:j]
                    vals = np.atleast_2d(interp(inner).T)
                    vals[inner >= t_stop] = y_stop
                    ts.extend(inner)
                    ys.extend(vals)
                    i_out = j
            t, y = t_stop, y_stop
            if status is not None:
                break
            if np.max(np.abs(y)) > blow_up:
                status = Status.BLOW_UP
    k = min(n_ev, cap_e)
    return Solution(
        t=np.array(ts, dtype=np.float64), y=np.array(ys, dtype=np.float64).reshape(len(ys), n), params=p,
        status=status,
        stats={"n_steps": n_steps, "n_rejected": -1,  # scipy does not report rejected steps
               "n_rhs_evals": int(solver.nfev) + 1 if solver else 1, "n_jac_evals": int(solver.njev) if solver else 0,
               "n_events": n_ev},
        events=EventRecord(ev_out.ev_t[:k], ev_out.ev_y[:k], ev_out.ev_which[:k], n_ev),
        state_names=fns.state_names, param_names=fns.param_names, method=method,
        t_final=float(t), y_final=np.asarray(y, dtype=np.float64).copy(),
        dense=DenseOutput(np.array(dense_t), np.array(dense_h), np.array(dense_r)) if dense and dense_t else None,
        system=csys)
