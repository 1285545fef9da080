"""Argument validation helpers that raise :class:`InvalidParameterError` naming the parameter and its range."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .errors import InvalidParameterError


def check_range(
    name: str,
    value: Any,
    low: float = -math.inf,
    high: float = math.inf,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Return ``float(value)`` if it is finite and inside the interval, else raise.

    The interval is ``[low, high]`` with either end made open by ``low_open`` / ``high_open``.
    """
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise InvalidParameterError(f"{name} must be a real number, got {value!r}") from None
    lo_ok = x > low if low_open else x >= low
    hi_ok = x < high if high_open else x <= high
    if not (math.isfinite(x) or (math.isinf(x) and (math.isinf(low) or math.isinf(high)) and lo_ok and hi_ok)):
        raise InvalidParameterError(f"{name} must be finite, got {value!r}")
    if not (lo_ok and hi_ok):
        lb = "(" if low_open else "["
        rb = ")" if high_open else "]"
        raise InvalidParameterError(f"{name} must lie in {lb}{low}, {high}{rb}, got {x!r}")
    return x


def check_int(name: str, value: Any, low: int = 0, high: int | None = None) -> int:
    """Return ``int(value)`` if it is an integer in ``[low, high]``, else raise."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        if not (isinstance(value, float) and value.is_integer()):
            raise InvalidParameterError(f"{name} must be an integer, got {value!r}")
    v = int(value)
    if v < low or (high is not None and v > high):
        rng = f"[{low}, {high}]" if high is not None else f">= {low}"
        raise InvalidParameterError(f"{name} must be an integer {rng}, got {v}")
    return v


def check_finite_array(name: str, value: Any, *, ndim: int | None = None, shape: tuple | None = None) -> np.ndarray:
    """Return ``value`` as a float64 array, checking finiteness and (optionally) its ndim / shape."""
    arr = np.asarray(value, dtype=np.float64)
    if ndim is not None and arr.ndim != ndim:
        raise InvalidParameterError(f"{name} must be a {ndim}-d array, got shape {arr.shape}")
    if shape is not None and arr.shape != tuple(shape):
        raise InvalidParameterError(f"{name} must have shape {tuple(shape)}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise InvalidParameterError(f"{name} contains non-finite values (nan or inf)")
    return arr
