"""theorykit._prefetch.prefetch_row: a cache hint that changes no value and accepts only what it can address."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit
from numba.core.errors import TypingError

from theorykit._prefetch import prefetch_row


@njit
def _sum_with_hints(A, ahead):
    s = 0.0
    for m in range(A.shape[0]):
        if m < ahead.shape[0]:
            prefetch_row(ahead, m)
        for i in range(A.shape[1]):
            s += A[m, i]
    return s


def test_prefetching_changes_no_value_and_no_array():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((37, 129))
    B = A.copy()
    ahead = np.arange(5 * 1000, dtype=np.float64).reshape(5, 1000)
    before = ahead.copy()
    assert _sum_with_hints(A, ahead) == _sum_with_hints(A, ahead[:0]) == sum(float(x) for x in A.ravel())
    assert np.array_equal(A, B) and np.array_equal(ahead, before)
    assert _sum_with_hints(A, ahead[2:4]) == _sum_with_hints(A, ahead[:0])  # a block of rows of a larger array


def test_prefetch_rejects_arrays_whose_rows_are_not_contiguous():
    @njit
    def hint(A, i):
        prefetch_row(A, i)

    with pytest.raises(TypingError, match="C-contiguous 2-D"):
        hint(np.zeros((4, 4))[:, ::2], 0)
    with pytest.raises(TypingError, match="C-contiguous 2-D"):
        hint(np.zeros(4), 0)
    with pytest.raises(TypingError, match="integer row"):
        hint(np.zeros((4, 4)), 1.5)
