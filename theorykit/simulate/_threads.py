"""Replicates in parallel threads, each with single-threaded BLAS.

A step kernel compiled with ``nogil=True`` lets replicates of one configuration run in threads of one process
(numpy's ``Generator`` releases the GIL while it draws too). Their matrix products are small, where a
multi-threaded BLAS only adds synchronisation, and on a loaded machine its spinning threads slow every call
many times over; each replicate's thread therefore asks OpenBLAS for one thread of its own
(``openblas_set_num_threads_local``, OpenBLAS >= 0.3.27, found among the loaded libraries on Linux). Where that
is unavailable the setting is left alone: results are the same, only the speed differs.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterable, Iterator

from .._checks import check_int


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


def map_threads(fn: Callable[[Any], Any], items: Iterable[Any], threads: int | None = None) -> list[Any]:
    """``[fn(x) for x in items]`` on ``threads`` threads (default: one per item, at most the CPUs this process
    may use), in order, each call with single-threaded BLAS. ``fn`` should release the GIL for most of its time
    (a ``nogil`` numba kernel); the results equal those of the calls one by one. Exceptions propagate."""
    items = list(items)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    n = max(1, min(len(items), cpus)) if threads is None else check_int("threads", threads, 1)

    def call(x):
        with single_threaded_blas():
            return fn(x)

    if n == 1 or len(items) <= 1:
        return [call(x) for x in items]
    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(call, items))
