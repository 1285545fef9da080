"""``compare``: a theory's solution against a particle run, observable by observable."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import InvalidParameterError


@dataclass(frozen=True)
class Comparison:
    """Errors of a particle run against a solution, per named observable.

    Attributes
    ----------
    t : float64[n_rec]
        The run's record times.
    curves : mapping of str -> float64[n]
        ``|run - solution|`` at every record; for an observable recorded as interval means, at every
        interval (``n = n_rec - 1``) against the solution's trapezoid-rule interval means.
    """

    t: np.ndarray
    curves: Mapping[str, np.ndarray]

    @property
    def errors(self) -> dict[str, float]:
        """Maximum over time of each curve."""
        return {name: float(np.max(c)) for name, c in self.curves.items()}

    def max_error(self, names: Sequence[str] | None = None) -> float:
        """The largest error over time and over ``names`` (default: all compared observables)."""
        return max(float(np.max(self.curves[n])) for n in (self.curves if names is None else names))


def _series(solution: Any, name: str) -> np.ndarray:
    """Observable ``name`` of a solution: a :class:`~theorykit.solve.Solution` (state or observable) or
    anything with ``observable(name)`` (another run)."""
    if hasattr(solution, "observable"):
        return np.asarray(solution.observable(name), dtype=float)
    if name in getattr(solution, "state_names", ()):
        return np.asarray(solution.y_of(name), dtype=float)
    return np.asarray(solution.observed(name), dtype=float)


def compare(solution: Any, run: Any, names: Sequence[str], *, rtol: float = 1e-12) -> Comparison:
    """ODE-vs-SGD errors: ``|run(t) - solution(t)|`` for each observable in ``names``.

    Parameters
    ----------
    solution : Solution or ParticleRun
        Evaluated at the run's record times (``solve(..., t_eval=run.t)``).
    run : ParticleRun
        The finite-width run. Observables it records as interval means (``run.interval_means``) are
        compared with the trapezoid-rule means of the solution over the same intervals.
    names : sequence of str
        Observables present in both.
    rtol : float
        Allowed relative mismatch of the two time grids.

    Raises
    ------
    InvalidParameterError
        If ``names`` is empty or the solution is not given at the run's record times.
    """
    if not names:
        raise InvalidParameterError("names must list at least one observable to compare")
    t = np.asarray(run.t, dtype=float)
    ts = np.asarray(solution.t, dtype=float)
    if ts.shape != t.shape or not np.allclose(ts, t, rtol=rtol, atol=0.0):
        raise InvalidParameterError(f"the solution must be given at the run's {t.size} record times "
                                    "(solve with t_eval=run.t)")
    curves = {}
    for name in names:
        sim, ref = np.asarray(run.observable(name), dtype=float), _series(solution, name)
        if name in getattr(run, "interval_means", ()):
            sim, ref = sim[1:], 0.5 * (ref[1:] + ref[:-1])
        curves[name] = np.abs(sim - ref)
    return Comparison(t, curves)
