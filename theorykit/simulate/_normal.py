"""Standard normal draws of a ``numpy.random.Generator`` by numba's compiled copy of numpy's ziggurat.

numba implements ``Generator.standard_normal`` itself, on the generator's own bit stream, and produces the
same numbers as numpy in the same order (tests/test_simulate_normal.py checks a long stream against numpy):
about twice as fast per number as numpy's ``standard_normal(out=...)`` on this project's machines, which is
most of a small particle step's time. numba is imported at the first draw, not with ``theorykit.simulate``.
"""

from __future__ import annotations

import functools

import numpy as np


@functools.cache
def _compiled_fill():
    from .._jit import njit

    @njit(cache=True, nogil=True)
    def fill_standard_normal(rng, flat):
        for i in range(flat.size):
            flat[i] = rng.standard_normal()

    return fill_standard_normal


def standard_normal_compiled(rng: np.random.Generator, out: np.ndarray) -> None:
    """Fill the C-contiguous float64 array ``out`` with the numbers ``rng.standard_normal(out=out)`` would give,
    advancing ``rng`` alike, with numba's compiled draws (a :class:`~theorykit.simulate.NoiseStream` ``draw``).

    Releases the GIL and does not take the generator's lock: ``rng`` must not be shared with another thread
    while it runs (each particle run owns its generators).
    """
    if out.dtype != np.float64 or not out.flags.c_contiguous:
        raise ValueError("out must be a C-contiguous float64 array")
    _compiled_fill()(rng, out.reshape(-1))
