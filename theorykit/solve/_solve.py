"""``solve``: integrate one trajectory of a compiled system with a named method."""

from __future__ import annotations

import math
import warnings
import weakref
from typing import Any, Mapping, Sequence

import numpy as np

from .._checks import check_int, check_range
from .._random import SeedLike, as_generator
from ..errors import InvalidParameterError, SolveError, StiffnessWarning
from . import _kernels
from ._events import Event, pack_events
from ._solution import DenseOutput, EventRecord, Solution, Status

#: Methods run by the theorykit kernels (numba, or the same code as plain Python for the numpy backend).
KERNEL_METHODS = {"dopri5": _kernels.DOPRI5, "rk4": _kernels.RK4, "euler_maruyama": _kernels.EULER_MARUYAMA}
#: Fixed-step methods (need ``dt``).
FIXED_STEP_METHODS = ("rk4", "euler_maruyama")
#: Stiff methods delegated to scipy's ``OdeSolver`` classes, driven step by step with the compiled rhs/Jacobian.
SCIPY_METHODS = {"bdf": "BDF", "radau": "Radau", "lsoda": "LSODA"}
METHODS = tuple(KERNEL_METHODS) + tuple(SCIPY_METHODS)

#: Most events recorded per solve (further ones are counted in ``stats['n_events']`` only).
EVENT_CAPACITY = 10_000


def kernels_for(csys: Any, *, ensemble: bool = False):
    """The kernel module for ``csys.backend``: numba-compiled, or the same code as plain Python."""
    backend = getattr(csys, "backend", None)
    if backend == "numba":
        _kernels.ensure_compiled(ensemble=ensemble)
        return _kernels
    if backend == "numpy":
        return _kernels.python_kernels()
    raise InvalidParameterError(f"csys.backend must be 'numba' or 'numpy', got {backend!r}")


_FIRST_CLASS: "weakref.WeakKeyDictionary[Any, Any]" = weakref.WeakKeyDictionary()


def _first_class(fn: Any, arg_types: tuple) -> Any:
    """A numba dispatcher as a first-class function object whose address is looked up once.

    Passing the dispatcher itself works too, but numba then resolves its address on every call
    (~0.2 ms each); numba's ``CompileResultWAP`` caches it. Falls back to the dispatcher if that
    (semi-internal) route is unavailable.
    """
    try:
        return _FIRST_CLASS[fn]
    except (KeyError, TypeError):
        pass
    try:
        from numba.core.types.function_type import CompileResultWAP

        if arg_types not in fn.overloads:
            fn.compile(arg_types)
        wap = CompileResultWAP(fn.overloads[arg_types])
        _FIRST_CLASS[fn] = wap
        return wap
    except Exception:  # pragma: no cover - depends on numba internals
        return fn


def callables_for(csys: Any, K) -> tuple[Any, Any, int]:
    """``(rhs_into, diffusion_into, n_noise)`` of ``csys`` as the kernels ``K`` take them.

    Deterministic systems get a no-op diffusion. For the numba kernels the compiled functions are
    passed as first-class functions of the fixed types ``K.RHS_TYPE`` / ``K.DIFFUSION_TYPE``.
    """
    n_noise = int(getattr(csys, "n_noise", 0) or 0)
    diffusion = getattr(csys, "diffusion_into", None)
    if n_noise == 0 or diffusion is None:
        diffusion, n_noise = K.zero_diffusion, 0
    rhs = csys.rhs_into
    if K is _kernels:
        for name, fn in (("rhs_into", rhs), ("diffusion_into", diffusion)):
            if not hasattr(fn, "overloads"):
                raise InvalidParameterError(f"csys.backend is 'numba' but csys.{name} is not a numba.njit function "
                                            f"({type(fn).__name__}); compile with backend='numpy' instead")
        rhs = _first_class(rhs, K.RHS_TYPE.signature.args)
        diffusion = _first_class(diffusion, K.DIFFUSION_TYPE.signature.args)
    return rhs, diffusion, n_noise


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
    """Pack one state (``kind='y0'``) or parameter set (``'params'``) through the compiled system."""
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
    K = kernels_for(csys)
    y0a = pack_vector(csys, y0, "y0")
    p = pack_vector(csys, params, "params")
    ev = pack_events(events, csys.state_names)
    if method in SCIPY_METHODS:
        sol = _solve_scipy(csys, K, method, t0, t1, y0a, p, te, ev, dense=bool(dense), **opts)
    else:
        sol = _solve_kernel(csys, K, method, t0, t1, y0a, p, te, ev, dense=bool(dense), seed=seed, **opts)
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


#: Largest per-step output / dense buffer (bytes) allocated at once; longer runs continue in new buffers.
BUFFER_BYTES = 1 << 26


def _solve_kernel(csys, K, method, t0, t1, y0, p, te, ev, *, dense, seed, rtol, atol, first_step, max_step, dt,
                  max_steps, blow_up) -> Solution:
    n = y0.shape[0]
    code = KERNEL_METHODS[method]
    rhs, diffusion, n_noise = callables_for(csys, K)
    if method in FIXED_STEP_METHODS:
        # Fixed steps: the number of steps is known, so size the buffers for it.
        cap_steps = min(max_steps, int(math.ceil((t1 - t0) / dt)) + te.size + 1)
    else:
        cap_steps = max_steps
    # Buffers for every step are bounded in size; the kernel stops with BUFFER_FULL and is resumed.
    cap_steps = max(2, min(cap_steps, BUFFER_BYTES // (8 * n * (6 if dense else 1))))
    cap_out = te.size if te.size else cap_steps + 2
    cap_d = cap_steps if dense else 0
    cap_e = EVENT_CAPACITY if ev.shape[0] else 0
    stats = np.zeros(_kernels.N_STATS, dtype=np.int64)
    total = np.zeros(_kernels.N_STATS, dtype=np.int64)
    y_final = np.empty(n)
    s = em_seed(seed) if method == "euler_maruyama" else -1
    pieces_t, pieces_y, dense_parts, ev_parts = [], [], [], []
    t_start, y_start, h_start, steps_left = t0, y0, first_step, max_steps
    state = np.random.get_state() if (K is not _kernels and method == "euler_maruyama") else None
    try:
        while True:
            te_cur, discard = te, False
            if te.size and pieces_t:  # resumed: only the output times not yet written
                te_cur = te[te > t_start]
                if not te_cur.size:  # none left (only the dense output is still being filled)
                    te_cur, discard = np.array([t1]), True
                cap_out = te_cur.size
            out_t, out_y = np.empty(cap_out), np.empty((cap_out, n))
            dense_t, dense_h, dense_r = np.empty(cap_d), np.empty(cap_d), np.empty((cap_d, 5, n))
            ev_t, ev_y, ev_which = np.empty(cap_e), np.empty((cap_e, n)), np.empty(cap_e, dtype=np.int64)
            args = (rhs, diffusion, n_noise, code, t_start, t1, y_start, p, te_cur, rtol, atol, h_start,
                    max_step, dt, steps_left, blow_up, ev, s, out_t, out_y, y_final, dense_t, dense_h, dense_r,
                    ev_t, ev_y, ev_which, stats)
            if K is _kernels:
                status, n_out, n_dense, t_final, h_next = K.integrate(*args)
            else:
                with np.errstate(all="ignore"):  # non-finite values are detected and reported as a status
                    status, n_out, n_dense, t_final, h_next = K.integrate(*args)
            skip = 1 if pieces_t and not te.size else 0  # a resumed run repeats its starting point
            if discard:
                skip = n_out
            pieces_t.append(out_t[skip:n_out])
            pieces_y.append(out_y[skip:n_out])
            dense_parts.append((dense_t[:n_dense], dense_h[:n_dense], dense_r[:n_dense]))
            k = min(int(stats[_kernels.ST_EVENTS]), cap_e)
            ev_parts.append((ev_t[:k], ev_y[:k], ev_which[:k]))
            total += stats
            if status != _kernels.BUFFER_FULL:
                break
            # Continue where the full buffer stopped; the random stream continues unseeded.
            t_start, y_start, h_start, s = t_final, y_final.copy(), h_next, -1
            steps_left -= int(stats[_kernels.ST_ACCEPTED] + stats[_kernels.ST_REJECTED])
    finally:
        if state is not None:  # the plain-Python kernel seeds numpy's global generator: restore it
            np.random.set_state(state)
    n_ev = int(total[_kernels.ST_EVENTS])
    return Solution(
        t=np.concatenate(pieces_t), y=np.concatenate(pieces_y), params=p, status=Status(int(status)),
        stats={"n_steps": int(total[_kernels.ST_ACCEPTED]), "n_rejected": int(total[_kernels.ST_REJECTED]),
               "n_rhs_evals": int(total[_kernels.ST_RHS]), "n_jac_evals": 0, "n_events": n_ev,
               "stiff_steps": int(total[_kernels.ST_STIFF])},
        events=EventRecord(*(np.concatenate(parts) for parts in zip(*ev_parts)), n_ev),
        state_names=tuple(csys.state_names), param_names=tuple(csys.param_names), method=method,
        t_final=float(t_final), y_final=y_final,
        dense=DenseOutput(*(np.concatenate(parts) for parts in zip(*dense_parts))) if dense and total[0] else None,
        system=csys)


# Quartic fit of a scipy step interpolant in the kernels' dense-output basis
# (1, th, th(1-th), th^2(1-th), th^2(1-th)^2), from samples at th = 0, 1/4, 1/2, 3/4, 1.
_FIT_THETA = np.linspace(0.0, 1.0, 5)
_FIT_INV = np.linalg.inv(np.stack([np.ones(5), _FIT_THETA, _FIT_THETA * (1 - _FIT_THETA),
                                   _FIT_THETA**2 * (1 - _FIT_THETA), (_FIT_THETA * (1 - _FIT_THETA)) ** 2], axis=1))


def _solve_scipy(csys, K, method, t0, t1, y0, p, te, ev, *, dense, rtol, atol, first_step, max_step, dt,
                 max_steps, blow_up) -> Solution:
    import scipy.integrate as si

    n = y0.shape[0]
    rhs_into, jac_into = csys.rhs_into, getattr(csys, "jac_into", None)
    bad = [False]  # set when the rhs returned nan/inf since the last accepted step

    def fun(t, y):
        out = np.empty(n)
        rhs_into(float(t), np.ascontiguousarray(y, dtype=np.float64), p, out)
        if not np.all(np.isfinite(out)):
            bad[0] = True
        return out

    def jac(t, y):
        out = np.empty((n, n))
        jac_into(float(t), np.ascontiguousarray(y, dtype=np.float64), p, out)
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
    g_old = np.empty(ev.shape[0])
    g_new = np.empty(ev.shape[0])
    K.event_values(ev, y0, g_old)
    cap_e = EVENT_CAPACITY if ev.shape[0] else 0
    ev_t, ev_y, ev_which = np.empty(cap_e), np.empty((cap_e, n)), np.empty(cap_e, dtype=np.int64)
    work = np.empty(n + ev.shape[0])
    n_ev = 0
    dense_t, dense_h, dense_r = [], [], []
    t, y = t0, y0.copy()
    n_steps = 0
    status = None
    solver = None
    if not np.all(np.isfinite(f0)):
        status = Status.NON_FINITE
    else:
        jac_arg = jac if jac_into is not None else None
        solver = getattr(si, SCIPY_METHODS[method])(fun, t0, y0.copy(), t1, jac=jac_arg, **kw)
    with np.errstate(all="ignore"):
        while status is None:
            if solver.status == "finished":
                status = Status.SUCCESS
                break
            if n_steps >= max_steps:
                status = Status.MAX_STEPS
                break
            bad[0] = False
            solver.step()
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
                theta, n_ev = K.locate_events(ev, t_old, h, rcont, y_new, g_old, g_new, ev_t, ev_y, ev_which,
                                              n_ev, work)
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
        events=EventRecord(ev_t[:k].copy(), ev_y[:k].copy(), ev_which[:k].copy(), n_ev),
        state_names=tuple(csys.state_names), param_names=tuple(csys.param_names), method=method,
        t_final=float(t), y_final=np.asarray(y, dtype=np.float64).copy(),
        dense=DenseOutput(np.array(dense_t), np.array(dense_h), np.array(dense_r)) if dense and dense_t else None,
        system=csys)
