"""Seeds in, generators out: every stochastic API accepts ``int | numpy.random.Generator``."""

from __future__ import annotations

import numpy as np

from .errors import InvalidParameterError

SeedLike = int | np.random.Generator | None


def as_generator(seed: SeedLike) -> np.random.Generator:
    """Return a ``numpy.random.Generator`` for an integer seed, a generator (returned as is) or ``None``.

    ``None`` gives a fresh, unpredictable generator; pass an integer for reproducible runs.
    """
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None:
        return np.random.default_rng()
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) and seed >= 0:
        return np.random.default_rng(int(seed))
    raise InvalidParameterError(f"seed must be a non-negative int, a numpy Generator or None, got {seed!r}")


def spawn_seeds(seed: SeedLike, n: int) -> np.ndarray:
    """Draw ``n`` independent 63-bit integer seeds (for per-replica numba kernels) from ``seed``."""
    return as_generator(seed).integers(0, 2**63 - 1, size=n, dtype=np.int64)
