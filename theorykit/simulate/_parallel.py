"""One BLAS thread while particle simulations run, and replicates of a simulation in parallel threads.

Particle simulations multiply small matrices (tens to a few hundred rows) thousands of times. A
multi-threaded BLAS only adds synchronisation to products that small, and on a machine whose cores are
busy with other work its spinning threads stall every call (a step of the 128-wide non-contrastive SGD took
several times longer with OpenBLAS's default two threads than with one on a loaded 2-core machine). The
particle driver therefore runs with one BLAS thread (:func:`single_threaded_blas`), and the cores go to
replicates instead: the step kernels release the GIL (``nogil=True``) and so do the noise draws of numpy's
``Generator``, so several seeds of one configuration run in parallel threads of one process
(:func:`map_threads`).

OpenBLAS's thread count is one number for the whole process (``openblas_set_num_threads_local``, OpenBLAS >=
0.3.27, returns the previous count but sets the shared one in pthreads builds), so the limit is counted: the
first block to enter sets one thread in every OpenBLAS loaded in the process (numpy's, and scipy's, which
numba's ``np.dot`` calls; found on Linux), the last to leave restores the previous counts. Where no such
OpenBLAS is found the setting is left alone: results never depend on it, only the speed does.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, Iterator, TypeVar

from .._checks import check_int

T = TypeVar("T")
R = TypeVar("R")

_limit_lock = threading.Lock()
_limit_holders = 0
_saved_counts: list[int] = []


@functools.lru_cache(maxsize=1)
def _thread_count_setters() -> tuple:
    """``openblas_set_num_threads_local`` of every loaded OpenBLAS (numpy's and scipy's, which numba's
    ``np.dot`` calls); empty where none is found."""
    import scipy.linalg.cython_blas  # noqa: F401  (loads the BLAS that numba's np.dot uses)

    try:
        with open("/proc/self/maps") as fh:
            paths = {f[-1] for f in (line.split() for line in fh)
                     if f and f[-1].startswith("/") and "openblas" in os.path.basename(f[-1]).lower()
                     and ".so" in os.path.basename(f[-1])}
    except OSError:
        return ()
    setters = []
    for path in sorted(paths):
        if not os.path.exists(path):
            continue
        try:
            fn = ctypes.CDLL(path).openblas_set_num_threads_local
        except (OSError, AttributeError):
            continue
        fn.argtypes, fn.restype = [ctypes.c_int], ctypes.c_int
        setters.append(fn)
    return tuple(setters)


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Within the block, BLAS calls use one thread.

    The count is process-wide (see the module docstring): it holds for every thread of the process while
    any block is open, and the previous counts come back when the last open block, in any thread, closes.
    A no-op where no OpenBLAS with ``openblas_set_num_threads_local`` is loaded.
    """
    global _limit_holders, _saved_counts
    setters = _thread_count_setters()
    with _limit_lock:
        if _limit_holders == 0:
            _saved_counts = [fn(1) for fn in setters]
        _limit_holders += 1
    try:
        yield
    finally:
        with _limit_lock:
            _limit_holders -= 1
            if _limit_holders == 0:
                for fn, n in zip(setters, _saved_counts):
                    fn(n)


def default_threads(n_tasks: int) -> int:
    """Threads for ``n_tasks`` independent replicates: one per task, at most the CPUs this process may use
    (at least 1)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover (not Linux)
        cpus = os.cpu_count() or 1
    return max(1, min(n_tasks, cpus))


def map_threads(fn: Callable[[T], R], items: Iterable[T], threads: int | None = None) -> list[R]:
    """``[fn(x) for x in items]`` on ``threads`` threads, in order, each call with single-threaded BLAS.

    Parameters
    ----------
    fn : callable
        One replicate, e.g. ``lambda seed: simulate(..., seed=seed)``; it runs in parallel only where it
        spends its time outside the GIL (numba ``nogil`` kernels, numpy's noise draws, BLAS).
    items : iterable
        The arguments of ``fn``, one per replicate.
    threads : int, optional
        Number of threads (>= 1); default :func:`default_threads` ``(len(items))``.

    Returns
    -------
    list
        ``fn(x)`` for each item, in the order of ``items``. An exception of any call propagates.

    Raises
    ------
    InvalidParameterError
        ``threads`` is not an integer >= 1.
    """
    items = list(items)
    n = default_threads(len(items)) if threads is None else check_int("threads", threads, 1)

    def call(x: T) -> R:
        with single_threaded_blas():
            return fn(x)

    if n == 1 or len(items) <= 1:
        return [call(x) for x in items]
    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(call, items))
