"""``solve_ensemble``: many trajectories on a common time grid, in parallel over trajectories."""

from __future__ import annotations

import math
import os
import threading
import time
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .._checks import check_int, check_range
from .._random import SeedLike, spawn_seeds
from ..errors import InvalidParameterError
from ..progress import Progress
from . import _layout as L
from ._drivers import GENERIC, INLINE_REPAY_SECONDS, compile_inline_in_background, inline_rows, python_kernels
from ._events import Event, pack_events
from ._solution import EnsembleSolution
from ._solve import (CALL_SECONDS, KERNEL_METHODS, QuietNumbaErrors, check_method, check_options, check_t_eval,
                     check_t_span, pack_vector, system_functions)

ENSEMBLE_METHODS = tuple(KERNEL_METHODS)
#: Trajectories in the first kernel call of an ensemble, before their cost has been measured.
FIRST_ROWS = 1


# ---------------------------------------------------------------------------------------------- memory
def available_memory() -> int | None:
    """Bytes this process can still allocate: the system's available memory, and the room left under an
    address-space limit (``ulimit -v``); None if neither can be read."""
    avail = None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError):
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, ValueError, OSError):
            avail = None
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            used = 0
            with open("/proc/self/status") as fh:
                for line in fh:
                    if line.startswith("VmSize:"):
                        used = int(line.split()[1]) * 1024
                        break
            room = max(0, soft - used)
            avail = room if avail is None else min(avail, room)
    except (ImportError, OSError, ValueError):
        pass
    return avail


def _format_bytes(b: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if b < 1024 or unit == "TiB":
            return f"{b:.1f} {unit}" if unit != "B" else f"{int(b)} B"
        b /= 1024
    return f"{b:.1f} TiB"  # pragma: no cover


def ensemble_bytes(n_traj: int, n_t: int, n_states: int, n_params: int) -> int:
    """Bytes :func:`solve_ensemble` allocates for ``n_traj`` trajectories: the result (states at ``n_t``
    times, final states, statuses, statistics, first events), the packed inputs and their copies in the result."""
    per_traj = 8 * (n_t * n_states + 4 * n_states + 2 * n_params + 3 * L.N_STATS + 12)
    return int(n_traj) * per_traj


def check_memory(needed: int, max_memory: float | None, what: str, remedy: str) -> None:
    """Raise :class:`~theorykit.errors.InvalidParameterError` if ``needed`` bytes exceed ``max_memory``
    (default: what is available)."""
    if max_memory is not None:
        limit, source = check_range("max_memory", max_memory, 0.0, math.inf, low_open=True), "max_memory"
    else:
        limit, source = available_memory(), "the memory available"
        if limit is None:
            return
    if needed > limit:
        raise InvalidParameterError(f"{what} needs about {_format_bytes(needed)}, more than {source} "
                                    f"({_format_bytes(limit)}): {remedy}")


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
                   progress: bool | Callable[[int, int], None] = False, max_memory: float | None = None,
                   inline: bool | str = "auto") -> EnsembleSolution:
    """Integrate many trajectories (initial states and/or parameter sets) on a common output grid.

    Runs :func:`~theorykit.solve.solve`'s kernel for every trajectory, in parallel over trajectories on
    ``NUMBA_NUM_THREADS`` threads (numpy backend: the same kernel as plain Python, one trajectory after
    another). Failures never raise: inspect ``status`` per trajectory.

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
        chunk: trajectory ``i`` gets the same stream whatever the chunking or threading).
    chunk_size : int, optional
        Most trajectories per kernel call. By default each call is sized to take about 0.1 s, so that
        progress is reported and Ctrl-C stops the integration within a fraction of a second.
    progress : bool or callable
        ``True`` draws a :class:`~theorykit.progress.Progress` bar; a callable is called as
        ``progress(done, total)`` as trajectories complete (increasing ``done``, last with ``done == total``).
    max_memory : float, optional
        Bytes the ensemble may allocate (default: the memory available to this process). The result is
        allocated at once (``y`` has ``n * n_t * n_state`` floats); beyond the limit an
        :class:`~theorykit.errors.InvalidParameterError` names the size instead.
    inline : {"auto", True, False}
        Use a driver compiled for this system with its right-hand side inlined (numba backend, systems from
        ``compile_system``), which advances several Dormand–Prince trajectories per thread together; its
        first compilation takes about as long as the generic driver's, and it then lives in the disk
        cache. ``True`` compiles it if needed; ``"auto"`` uses it when it is in the cache, and an ensemble
        expected to take more than ``INLINE_REPAY_SECONDS`` (20 s, about the compilation's cost) starts its
        compilation in a background process, so the system's later ensembles get it; ``False`` never does.
        Results are the same, bit for bit; small systems run faster (see BENCHMARKS.md).

    Returns
    -------
    EnsembleSolution
        ``y`` [n, n_t, n_state] (nan where a trajectory stopped early), per-trajectory ``status`` codes,
        step counts, ``t_final``, ``final`` states and first events.

    Raises
    ------
    InvalidParameterError
        For bad inputs, or when the result would not fit in memory (``max_memory``).
    """
    check_method(method, ENSEMBLE_METHODS)
    t0, t1 = check_t_span(t_span)
    te = check_t_eval(t_eval if t_eval is not None else (t0, t1), t0, t1)
    opts = check_options(method, t0, t1, rtol=rtol, atol=atol, first_step=first_step, max_step=max_step, dt=dt,
                         max_steps=max_steps, blow_up=blow_up)
    if inline not in ("auto", True, False):
        raise InvalidParameterError(f"inline must be 'auto', True or False, got {inline!r}")
    if chunk_size is not None:
        chunk_size = check_int("chunk_size", chunk_size, 1)
    fns = system_functions(csys)
    Y0 = _stack(csys, y0s, "y0")
    P = _stack(csys, params, "params")
    if Y0.shape[0] != P.shape[0] and 1 not in (Y0.shape[0], P.shape[0]):
        raise InvalidParameterError(f"y0s has {Y0.shape[0]} rows and params {P.shape[0]}: give equal counts or one")
    n = max(Y0.shape[0], P.shape[0])
    ns, n_t = fns.n, te.size
    check_memory(ensemble_bytes(n, n_t, ns, fns.m), max_memory,
                 f"solve_ensemble of {n} trajectories x {n_t} output times x {ns} states",
                 "pass fewer output times (t_eval) or integrate the trajectories in several calls")
    Y0 = np.array(np.broadcast_to(Y0, (n, ns)), order="C")  # writable C copies for the kernel
    P = np.array(np.broadcast_to(P, (n, fns.m)), order="C")
    ev = pack_events(events, fns.state_names)
    seeds = (spawn_seeds(seed, n) % (2**32 - 1)).astype(np.int64) if method == "euler_maruyama" \
        else np.full(n, -1, dtype=np.int64)
    o = opts
    prob = L.Problem(np.array([t0, t1, o["rtol"], o["atol"], o["first_step"], o["max_step"], o["dt"], o["blow_up"]]),
                     np.array([KERNEL_METHODS[method], fns.n_noise, o["max_steps"], o["max_steps"] + 1],
                              dtype=np.int64), te, ev)
    rows = L.Rows(Y0, P, seeds)
    # rows a trajectory never reaches stay nan (the kernels leave them)
    res = L.RowsOutput(np.full((n, n_t, ns), np.nan), np.empty((n, ns)), np.empty(n), np.empty(n, dtype=np.int64),
                       np.full((n, 1), np.nan), np.full((n, 1, ns), np.nan), np.full((n, 1), -1, dtype=np.int64),
                       np.zeros((n, L.N_STATS), dtype=np.int64))

    bar = Progress(n, f"solve_ensemble[{method}]", enabled=None if progress is True else False)
    runner = _EnsembleRun(fns, csys, prob, rows, res, chunk_size, inline,
                          lambda done: (bar.update(done - bar.count), progress(done, n) if callable(progress) else None))
    with bar:
        runner.run()
    stats = res.stats
    return EnsembleSolution(
        t=te, y=res.y, y0=Y0, params=P, status=res.status, n_steps=stats[:, L.C_ACCEPTED].copy(),
        n_rejected=stats[:, L.C_REJECTED].copy(), n_rhs_evals=stats[:, L.C_RHS].copy(),
        t_final=res.t_final, final=res.final, event_t=res.ev_t[:, 0].copy(), event_which=res.ev_which[:, 0].copy(),
        event_y=res.ev_y[:, 0].copy(), state_names=fns.state_names, param_names=fns.param_names, method=method)


def _slice(record, a: int, b: int):
    """The rows ``a:b`` of every array of a :class:`Rows` / :class:`RowsOutput` record (views)."""
    return type(record)(*(x[a:b] for x in record))


def thread_count() -> int:
    """Threads the compiled ensemble uses: ``NUMBA_NUM_THREADS`` (by default the usable cores)."""
    from numba import config

    return max(1, int(config.NUMBA_NUM_THREADS))


class _EnsembleRun:
    """Integrates the rows of one ensemble with the best driver available, a chunk at a time.

    Compiled drivers run on worker threads (they release the GIL); each call takes about
    :data:`CALL_SECONDS`, so the main thread reports progress and a Ctrl-C stops the workers after
    their current chunk. While the compiled drivers are still being compiled in the background, rows run
    one by one in the plain-Python flavour and switch to compiled code as soon as it is there.
    """

    def __init__(self, fns, csys, prob, rows, res, chunk_size, inline, report):
        self.fns, self.csys, self.prob, self.rows, self.res = fns, csys, prob, rows, res
        self.n = rows.y0.shape[0]
        self.max_rows = chunk_size or self.n
        self.inline = inline
        self.inline_requested = False
        self.report = report
        self.next = 0
        self.done = 0
        self.seconds_per_row: float | None = None
        self.stop = False
        self.lock = threading.Lock()

    def run(self) -> None:
        if self.fns.backend == "numpy":
            self._python_rows(compiled=False)
            return
        with QuietNumbaErrors():
            if self._compiled_rows() is None:
                self._python_rows(compiled=True)

    def _rows_driver(self):
        """A callable ``(prob, rows, res)`` running compiled rows, or None while none is compiled yet."""
        if self.inline is not False:
            drv = inline_rows(self.csys, compile_now=self.inline is True)
            if drv is not None:
                return drv
        generic = GENERIC.get("integrate_rows")
        if generic is None:
            return None
        rhs, diffusion = self.fns.addresses
        return lambda prob, rows, res: generic(rhs, diffusion, prob, rows, res)

    def _take(self, n_threads: int) -> tuple[int, int] | None:
        """The next chunk of rows, sized to take about CALL_SECONDS and to balance the threads at the end."""
        with self.lock:
            if self.stop or self.next >= self.n:
                return None
            remaining = self.n - self.next
            size = FIRST_ROWS if self.seconds_per_row is None else int(CALL_SECONDS / max(self.seconds_per_row, 1e-9))
            size = max(1, min(size, self.max_rows, -(-remaining // (2 * n_threads)) if n_threads > 1 else remaining))
            a = self.next
            self.next = a + size
            return a, a + size

    def _finished(self, a: int, b: int, seconds: float) -> None:
        with self.lock:
            self.done += b - a
            if b - a >= 4 or self.seconds_per_row is None:
                self.seconds_per_row = seconds / (b - a)
            large = (self.inline == "auto" and not self.inline_requested
                     and self.seconds_per_row * self.n >= INLINE_REPAY_SECONDS)
            self.inline_requested |= large
        if large:  # long enough to repay the inlined driver's compilation: later ensembles of the system get it
            compile_inline_in_background(self.csys)

    def _compiled_rows(self):
        driver = self._rows_driver()
        if driver is None:
            return None
        n_threads = min(thread_count(), max(1, -(-(self.n - self.next) // FIRST_ROWS)))
        errors: list[BaseException] = []

        def work():
            try:
                while True:
                    chunk = self._take(n_threads)
                    if chunk is None:
                        return
                    a, b = chunk
                    start = time.perf_counter()
                    driver(self.prob, _slice(self.rows, a, b), _slice(self.res, a, b))
                    self._finished(a, b, time.perf_counter() - start)
            except BaseException as exc:  # pragma: no cover - re-raised in the main thread
                errors.append(exc)
                self.stop = True

        if n_threads == 1:
            while True:
                chunk = self._take(1)
                if chunk is None:
                    break
                start = time.perf_counter()
                driver(self.prob, _slice(self.rows, *chunk), _slice(self.res, *chunk))
                self._finished(*chunk, time.perf_counter() - start)
                self.report(self.done)
            return True
        threads = [threading.Thread(target=work, daemon=True) for _ in range(n_threads)]
        for th in threads:
            th.start()
        reported = -1
        try:
            while any(th.is_alive() for th in threads):
                for th in threads:
                    th.join(timeout=0.05)
                if self.done != reported:
                    reported = self.done
                    self.report(reported)
        except BaseException:
            self.stop = True  # Ctrl-C: the workers end after their current chunk
            for th in threads:
                th.join()
            raise
        if errors:
            raise errors[0]
        if reported != self.done:
            self.report(self.done)
        return True

    def _python_rows(self, compiled: bool) -> None:
        """Rows one by one with :func:`~theorykit.solve._kernels.integrate` (the plain-Python flavour, or the
        compiled one once it is there); switches to the compiled row driver when that becomes available."""
        fns, prob, res = self.fns, self.prob, self.res
        K = python_kernels()
        n = fns.n
        k_ev = prob.events.shape[0]
        st = L.State(np.zeros(L.N_SF), np.zeros(L.N_SI, dtype=np.int64), np.empty(n), np.empty((7, n)),
                     np.empty(k_ev))
        sc = K.new_scratch(n, fns.n_noise, k_ev)
        out_t, none, none_r = np.empty(prob.t_eval.size), np.empty(0), np.empty((0, 5, n))
        random_state = np.random.get_state()
        try:
            with np.errstate(all="ignore"):
                while self.next < self.n and not self.stop:
                    if compiled and self._compiled_rows() is not None:
                        return
                    entry = GENERIC.get("integrate") if compiled else None
                    integrate, rhs, diffusion = (entry, *fns.addresses) if entry is not None \
                        else (K.integrate, fns.rhs_py, fns.diffusion_py)
                    r = self.next
                    K.reset_state(st, self.rows.y0[r], self.rows.seed[r])
                    out = L.Output(out_t, res.y[r], none, none, none_r, res.ev_t[r], res.ev_y[r], res.ev_which[r])
                    integrate(rhs, diffusion, prob, self.rows.p[r], st, sc, out)
                    res.status[r], res.t_final[r] = st.i[L.C_STATUS], st.f[L.S_T]
                    res.final[r] = st.y
                    res.stats[r] = st.i[:L.N_STATS]
                    self.next = r + 1
                    self.done = r + 1
                    if self.done == self.n or self.done % 64 == 0:
                        self.report(self.done)
        finally:
            np.random.set_state(random_state)  # the plain-Python kernel seeds numpy's global generator
