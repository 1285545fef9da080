"""Replicates in parallel threads, each with single-threaded BLAS.

The training kernels release the GIL and the batch draws of numpy's ``Generator`` do too, so replicates of
one configuration run in parallel threads of one process. Their matrix products are small (a few hundred
rows), where a multi-threaded BLAS only adds synchronisation, and on a loaded machine its spinning threads
slow every call many times over; each training thread therefore asks OpenBLAS for one thread for itself
(``openblas_set_num_threads_local``, OpenBLAS >= 0.3.27, found among the loaded libraries on Linux). Where
that is unavailable the setting is left alone: results are the same, only the speed differs.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@functools.lru_cache(maxsize=1)
def _thread_local_setters() -> tuple:
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
    """Within the block, BLAS calls of the calling thread use one thread (restored afterwards)."""
    previous = [fn(1) for fn in _thread_local_setters()]
    try:
        yield
    finally:
        for fn, n in zip(_thread_local_setters(), previous):
            fn(n)


def default_threads(n_tasks: int) -> int:
    """Threads for ``n_tasks`` independent replicates: one per task, at most the CPUs this process may use."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover (not Linux)
        cpus = os.cpu_count() or 1
    return max(1, min(n_tasks, cpus))


def map_threads(fn: Callable[[T], R], items: Iterable[T], threads: int | None = None) -> list[R]:
    """``[fn(x) for x in items]`` on ``threads`` threads (default :func:`default_threads`), in order, each call
    with single-threaded BLAS. Exceptions propagate."""
    items = list(items)
    n = default_threads(len(items)) if threads is None else max(1, int(threads))

    def call(x: T) -> R:
        with single_threaded_blas():
            return fn(x)

    if n == 1 or len(items) <= 1:
        return [call(x) for x in items]
    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(call, items))
