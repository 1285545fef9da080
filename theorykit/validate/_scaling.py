"""Finite-size scaling: power-law fits with confidence intervals (error ~ C N^slope), and NaN-safe reductions
over sweep results."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from .._checks import check_finite_array
from ..errors import InvalidParameterError


@dataclass(frozen=True)
class PowerLawFit:
    """Least-squares fit of ``log y = log C + slope * log x``.

    ``slope_ci`` is the two-sided confidence interval at ``confidence`` from the t distribution of the
    slope estimate over all points (seeds enter as repeated x values).
    """

    slope: float
    prefactor: float
    slope_stderr: float
    slope_ci: tuple[float, float]
    confidence: float
    n_points: int
    r_squared: float

    def predict(self, x):
        return self.prefactor * np.asarray(x, dtype=float) ** self.slope

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies in the slope's confidence interval."""
        return self.slope_ci[0] <= value <= self.slope_ci[1]


def fit_power_law(x, y, confidence: float = 0.95, *, nan_policy: str = "raise") -> PowerLawFit:
    """Fit ``y ≈ C x^slope`` on log–log axes.

    Parameters
    ----------
    x, y : array_like
        Positive sizes (width, dimension, ...) and positive errors, of the same shape, or ``x`` with the
        leading shape of ``y`` (one size per row of repeated measurements). Repeated ``x`` (several seeds)
        are fine and tighten the interval.
    confidence : float
        Confidence level of ``slope_ci`` in (0, 1).
    nan_policy : {"raise", "omit"}
        ``"omit"``: leave out points whose ``y`` is not finite (failed runs); if fewer than two distinct
        ``x`` remain the fit is all NaN, so that a claim on it fails instead of the run.

    Raises
    ------
    InvalidParameterError
        Non-finite values (with ``nan_policy="raise"``), non-positive values, mismatched shapes, fewer
        than two distinct ``x``, or ``confidence`` outside (0, 1).
    """
    if nan_policy not in ("raise", "omit"):
        raise InvalidParameterError(f"nan_policy must be 'raise' or 'omit', got {nan_policy!r}")
    if not 0 < confidence < 1:
        raise InvalidParameterError(f"confidence must lie in (0, 1), got {confidence}")
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape and x.shape == y.shape[:x.ndim]:
        x = np.broadcast_to(x.reshape(x.shape + (1,) * (y.ndim - x.ndim)), y.shape)
    if x.shape != y.shape:
        raise InvalidParameterError(f"x and y must have the same length, got {x.size} and {y.size}")
    if nan_policy == "omit":
        keep = np.isfinite(y)
        x, y = x[keep], y[keep]
        if np.unique(x).size < 2:
            nan = float("nan")
            return PowerLawFit(nan, nan, nan, (nan, nan), confidence, int(y.size), nan)
    x = check_finite_array("x", x).ravel()
    y = check_finite_array("y", y).ravel()
    if np.any(x <= 0) or np.any(y <= 0):
        raise InvalidParameterError("x and y must be positive for a log-log power-law fit")
    if np.unique(x).size < 2:
        raise InvalidParameterError("x needs at least two distinct values for a power-law fit")
    lx, ly = np.log(x), np.log(y)
    from scipy import stats  # here: scipy.stats takes ~0.5 s to import

    res = stats.linregress(lx, ly)
    n = x.size
    if n > 2:
        tq = stats.t.ppf(0.5 + confidence / 2, n - 2)
        half = tq * res.stderr
    else:
        half = float("inf")
    return PowerLawFit(
        slope=float(res.slope),
        prefactor=float(np.exp(res.intercept)),
        slope_stderr=float(res.stderr),
        slope_ci=(float(res.slope - half), float(res.slope + half)),
        confidence=confidence,
        n_points=n,
        r_squared=float(res.rvalue**2),
    )


def nan_reduce(fn, x, axis=None):
    """``fn`` (``np.nanmean``, ``np.nanstd``, ``np.nanmedian``, ...) over ``x`` ignoring NaN entries (failed sweep
    points, runs that never reached a threshold); NaN, without a warning, where every entry is NaN. A float for
    ``axis=None``, else an array."""
    x = np.asarray(x, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out = fn(x, axis=axis)
    return float(out) if axis is None else out
