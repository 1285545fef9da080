"""``ParticleRun``: what every finite-width simulation returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from ..errors import InvalidParameterError


def _frozen(values: Any) -> np.ndarray:
    arr = np.array(values, dtype=np.float64)
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class ParticleRun:
    """One finite-width SGD (or particle) run, recorded at times ``t`` in the theory's own vocabulary.

    Attributes
    ----------
    t : float64[n_rec]
        Record times (training time, e.g. ``lr * step``).
    observables : mapping of str -> float64[n_rec, ...]
        Named observables at the records; names match the ODE system's states and observables where they
        describe the same quantity, so :func:`theorykit.validate.compare` can pair them.
    seed : int
        The seed of the run's noise streams (the run is reproduced from its parameters and this seed).
    params : mapping
        The settings of the run (width, batch, learning rate, hyper-parameters, ...).
    interval_means : frozenset of str
        Observables recorded as the mean of a per-step value over the interval since the previous record
        (entry 0: the first step's value), e.g. the minibatch loss.
    """

    t: np.ndarray
    observables: Mapping[str, np.ndarray]
    seed: int
    params: Mapping[str, Any] = field(default_factory=dict)
    interval_means: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        t = _frozen(self.t)
        if t.ndim != 1:
            raise InvalidParameterError(f"t must be one-dimensional, got shape {t.shape}")
        obs = {}
        for name, values in self.observables.items():
            arr = _frozen(values)
            if arr.ndim < 1 or arr.shape[0] != t.size:
                raise InvalidParameterError(f"observable {name!r} must have {t.size} records, got shape {arr.shape}")
            obs[str(name)] = arr
        unknown = set(self.interval_means) - set(obs)
        if unknown:
            raise InvalidParameterError(f"interval_means names unknown observables {sorted(unknown)}")
        object.__setattr__(self, "t", t)
        object.__setattr__(self, "observables", obs)
        object.__setattr__(self, "params", dict(self.params))
        object.__setattr__(self, "interval_means", frozenset(self.interval_means))
        object.__setattr__(self, "seed", int(self.seed))

    @property
    def names(self) -> tuple[str, ...]:
        """The recorded observables' names."""
        return tuple(self.observables)

    def observable(self, name: str) -> np.ndarray:
        """Observable ``name`` at the records (read-only)."""
        try:
            return self.observables[name]
        except KeyError:
            raise KeyError(f"unknown observable {name!r}; recorded: {list(self.observables)}") from None

    def stack(self, *names: str) -> np.ndarray:
        """Scalar observables ``names`` side by side: float64[n_rec, len(names)]."""
        return np.column_stack([self.observable(n) for n in names])

    def __repr__(self) -> str:
        return f"ParticleRun(n_records={self.t.size}, observables={list(self.observables)}, seed={self.seed})"
