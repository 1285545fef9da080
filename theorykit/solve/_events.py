"""Event specifications, packed into small numeric rows that the kernels evaluate.

Each event becomes a row ``(kind, index, value, direction, terminal)`` of a float64 [n_events, 5] array
(see ``theorykit.solve._kernels.locate_events``), so events work inside numba.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .._checks import check_range
from ..errors import InvalidParameterError
from . import _layout as K


def _direction(direction: int) -> float:
    if direction not in (-1, 0, 1):
        raise InvalidParameterError(f"event direction must be -1 (falling), 0 (either) or +1 (rising), got {direction!r}")
    return float(direction)


@dataclass(frozen=True)
class Threshold:
    """Fires when state ``state`` (name or index) crosses ``value``.

    Parameters
    ----------
    state : str or int
    value : float
    direction : {-1, 0, 1}
        +1 only upward crossings, -1 only downward, 0 both.
    terminal : bool
        Stop the integration (status ``EVENT``) at the first crossing.
    """

    state: str | int
    value: float
    direction: int = 0
    terminal: bool = False

    def row(self, state_names: Sequence[str]) -> list[float]:
        if isinstance(self.state, str):
            if self.state not in state_names:
                raise InvalidParameterError(f"event state {self.state!r} is not one of {list(state_names)}")
            idx = list(state_names).index(self.state)
        else:
            idx = int(self.state)
            if not 0 <= idx < len(state_names):
                raise InvalidParameterError(f"event state index must lie in [0, {len(state_names) - 1}], got {idx}")
        value = check_range("event value", self.value)
        return [K.EV_STATE, idx, value, _direction(self.direction), float(bool(self.terminal))]


@dataclass(frozen=True)
class NormAbove:
    """Fires when the Euclidean norm ``||y||_2`` rises above ``bound`` (divergence detection).

    Terminal by default. For a blanket guard that reports ``Status.BLOW_UP`` instead, use
    ``solve(..., blow_up=bound)``.
    """

    bound: float
    terminal: bool = True

    def row(self, state_names: Sequence[str]) -> list[float]:
        bound = check_range("NormAbove bound", self.bound, 0.0, math.inf, low_open=True, high_open=True)
        return [K.EV_NORM, 0, bound, 1.0, float(bool(self.terminal))]


Event = Threshold | NormAbove


def pack_events(events: Sequence[Event] | np.ndarray, state_names: Sequence[str]) -> np.ndarray:
    """Event objects (or an already-packed float array [k, 5]) -> float64 [k, 5] kernel specs."""
    if isinstance(events, np.ndarray):
        arr = np.array(events, dtype=np.float64, order="C")
        if arr.ndim != 2 or arr.shape[1] != 5:
            raise InvalidParameterError(f"packed events must have shape (k, 5), got {arr.shape}")
        return arr
    if isinstance(events, (Threshold, NormAbove)):
        events = (events,)
    rows = []
    for ev in events:
        if not isinstance(ev, (Threshold, NormAbove)):
            raise InvalidParameterError(f"events must be Threshold or NormAbove objects, got {type(ev).__name__}")
        rows.append(ev.row(state_names))
    return np.array(rows, dtype=np.float64).reshape(len(rows), 5)
