"""``solve_ensemble``: many trajectories on a common time grid, in parallel (numba ``prange``)."""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .._checks import check_int
from .._random import SeedLike, spawn_seeds
from ..errors import InvalidParameterError
from ..progress import Progress
from . import _kernels
from ._events import Event, pack_events
from ._solution import EnsembleSolution
from ._solve import (KERNEL_METHODS, check_method, check_options, check_t_eval,
                     check_t_span, callables_for, kernels_for, pack_vector)

ENSEMBLE_METHODS = tuple(KERNEL_METHODS)


def _stack(csys: Any, value: Any, kind: str) -> np.ndarray:
    """Initial states (``kind='y0'``) or parameter sets (``'params'``) as float64 [n or 1, width].

    Accepts a packed array [width] or [n, width], or a mapping name -> scalar or array [n].
    """
    names = tuple(csys.state_names if kind == "y0" else csys.param_names)
    width = len(names)
    if isinstance(value, Mapping) and any(np.ndim(v) > 0 for v in value.values()):
        missing = [k for k in names if k not in value]
        unknown = [k for k in value if k not in names]
        if missing or unknown:
            raise InvalidParameterError(f"{kind}: missing {missing}, unknown {unknown}; expected {list(names)}")
        cols = [np.asarray(value[k], dtype=np.float64).reshape(-1) for k in names]
        lengths = {c.size for c in cols} - {1}
        if len(lengths) > 1:
            raise InvalidParameterError(f"{kind}: array values must share one length, got {sorted(lengths)}")
        n = lengths.pop() if lengths else 1
        arr = np.stack([np.broadcast_to(c, (n,)) for c in cols], axis=1) if width else np.empty((n, 0))
    elif isinstance(value, Mapping) or value is None or np.ndim(value) <= 1:
        arr = pack_vector(csys, value, kind)[None, :]
    else:
        arr = np.asarray(value, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[1] != width:
            raise InvalidParameterError(f"{kind} must have shape (n, {width}) for {list(names)}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise InvalidParameterError(f"{kind} contains non-finite values (nan or inf)")
    return arr


def solve_ensemble(csys: Any, y0s: Any, t_span: tuple[float, float], params: Any = None, *,
                   method: str = "dopri5", t_eval: Any = None, rtol: float = 1e-8, atol: float = 1e-10,
                   first_step: float | None = None, max_step: float = math.inf, dt: float | None = None,
                   events: Sequence[Event] | np.ndarray = (), max_steps: int = 100_000, seed: SeedLike = None,
                   blow_up: float = 1e12, chunk_size: int | None = None,
                   progress: bool | Callable[[int, int], None] = False) -> EnsembleSolution:
    """Integrate many trajectories (initial states and/or parameter sets) on a common output grid.

    Runs :func:`~theorykit.solve.solve`'s kernel for every trajectory, in parallel over trajectories with
    numba ``prange`` (numpy backend: the same kernel as plain Python, one trajectory after another).
    Failures never raise: inspect ``status`` per trajectory.

    Parameters
    ----------
    csys : CompiledSystem
    y0s : float64 [n, n_state] or [n_state], or mapping name -> scalar or array [n]
        Initial states; a single one is broadcast over the parameter sets.
    t_span : (float, float)
    params : float64 [n, n_param] or [n_param], or mapping name -> scalar or array [n]
        Parameter sets; a single one is broadcast over the initial states.
    method : {"dopri5", "rk4", "euler_maruyama"}
    t_eval : float64 [n_t], optional
        Common output times (default: ``t_span`` end points only).
    rtol, atol, first_step, max_step, dt, events, max_steps, blow_up
        As in :func:`~theorykit.solve.solve`. Only each trajectory's first event is recorded.
    seed : int or Generator
        Euler–Maruyama: one independent stream per trajectory, reproducible from ``seed`` (also chunk by
        chunk: trajectory ``i`` gets the same stream whatever the chunking).
    chunk_size : int, optional
        Integrate this many trajectories per kernel call (memory and progress granularity); default all
        at once, or about 20 chunks when ``progress`` is requested.
    progress : bool or callable
        ``True`` draws a :class:`~theorykit.progress.Progress` bar; a callable is called as
        ``progress(done, total)`` after every chunk.

    Returns
    -------
    EnsembleSolution
        ``y`` [n, n_t, n_state] (nan where a trajectory stopped early), per-trajectory ``status`` codes,
        step counts, ``t_final``, ``final`` states and first events.
    """
    check_method(method, ENSEMBLE_METHODS)
    t0, t1 = check_t_span(t_span)
    te = check_t_eval(t_eval if t_eval is not None else (t0, t1), t0, t1)
    opts = check_options(method, t0, t1, rtol=rtol, atol=atol, first_step=first_step, max_step=max_step, dt=dt,
                         max_steps=max_steps, blow_up=blow_up)
    K = kernels_for(csys, ensemble=True)
    Y0 = _stack(csys, y0s, "y0")
    P = _stack(csys, params, "params")
    if Y0.shape[0] != P.shape[0] and 1 not in (Y0.shape[0], P.shape[0]):
        raise InvalidParameterError(f"y0s has {Y0.shape[0]} rows and params {P.shape[0]}: give equal counts or one")
    n = max(Y0.shape[0], P.shape[0])
    Y0 = np.array(np.broadcast_to(Y0, (n, Y0.shape[1])), order="C")  # writable C copies for the kernel
    P = np.array(np.broadcast_to(P, (n, P.shape[1])), order="C")
    ev = pack_events(events, csys.state_names)
    rhs, diffusion, n_noise = callables_for(csys, K)
    seeds = (spawn_seeds(seed, n) % (2**32 - 1)).astype(np.int64) if method == "euler_maruyama" \
        else np.full(n, -1, dtype=np.int64)

    ns, n_t = Y0.shape[1], te.size
    y = np.full((n, n_t, ns), np.nan)  # rows a trajectory never reaches stay nan (kernels leave them)
    y_final = np.empty((n, ns))
    t_final = np.empty(n)
    status = np.empty(n, dtype=np.int64)
    n_out = np.empty(n, dtype=np.int64)
    ev_t = np.full((n, 1), np.nan)
    ev_y = np.full((n, 1, ns), np.nan)
    ev_which = np.full((n, 1), -1, dtype=np.int64)
    stats = np.zeros((n, _kernels.N_STATS), dtype=np.int64)

    if chunk_size is None:
        chunk_size = max(1, -(-n // 20)) if progress else n
    chunk_size = check_int("chunk_size", chunk_size, 1)
    o = opts
    common = (rhs, diffusion, n_noise, KERNEL_METHODS[method], t0, t1)
    tail = (te, o["rtol"], o["atol"], o["first_step"], o["max_step"], o["dt"], o["max_steps"], o["blow_up"], ev)
    bar = Progress(n, f"solve_ensemble[{method}]", enabled=None if progress is True else False)
    with bar, np.errstate(all="ignore"):
        for a in range(0, n, chunk_size):
            b = min(n, a + chunk_size)
            if K is _kernels:
                K.integrate_ensemble(*common, Y0[a:b], P[a:b], *tail, seeds[a:b], y[a:b], y_final[a:b],
                                     t_final[a:b], status[a:b], n_out[a:b], ev_t[a:b], ev_y[a:b], ev_which[a:b],
                                     stats[a:b])
            else:
                _python_ensemble(K, common, tail, a, b, Y0, P, seeds, y, y_final, t_final, status, n_out,
                                 ev_t, ev_y, ev_which, stats)
            bar.update(b - a)
            if callable(progress):
                progress(b, n)
    return EnsembleSolution(
        t=te, y=y, y0=Y0, params=P, status=status, n_steps=stats[:, _kernels.ST_ACCEPTED].copy(),
        n_rejected=stats[:, _kernels.ST_REJECTED].copy(), n_rhs_evals=stats[:, _kernels.ST_RHS].copy(),
        t_final=t_final, final=y_final, event_t=ev_t[:, 0].copy(), event_which=ev_which[:, 0].copy(),
        event_y=ev_y[:, 0].copy(), state_names=tuple(csys.state_names), param_names=tuple(csys.param_names),
        method=method)


def _python_ensemble(K, common, tail, a, b, Y0, P, seeds, y, y_final, t_final, status, n_out, ev_t, ev_y,
                     ev_which, stats):
    """The numpy backend: the plain-Python kernel, one trajectory after another."""
    n_t, ns = y.shape[1], y.shape[2]
    state = np.random.get_state()
    try:
        for i in range(a, b):
            out_t = np.empty(n_t)
            empty = np.empty(0)
            s, m, _, tf, _ = K.integrate(*common, Y0[i], P[i], *tail, seeds[i], out_t, y[i], y_final[i], empty, empty,
                                      np.empty((0, 5, ns)), ev_t[i], ev_y[i], ev_which[i], stats[i])
            status[i], n_out[i], t_final[i] = s, m, tf
    finally:
        np.random.set_state(state)
