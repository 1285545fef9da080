"""Results of the solve stage: :class:`Status`, :class:`Solution`, :class:`EventRecord`, :class:`EnsembleSolution`."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from ..errors import InvalidParameterError, SolveError


class Status(enum.IntEnum):
    """How an integration ended; ``status.message`` says what it means and what to try.

    The integer values are the codes the kernels return (``EnsembleSolution.status`` stores them).
    """

    SUCCESS = 0
    EVENT = 1
    MAX_STEPS = 2
    STEP_SIZE_UNDERFLOW = 3
    NON_FINITE = 4
    BLOW_UP = 5

    @property
    def message(self) -> str:
        """A one-line explanation with a fix-it hint."""
        return _MESSAGES[self]

    @property
    def success(self) -> bool:
        """True for SUCCESS and for a terminal EVENT (an intended stop)."""
        return self in (Status.SUCCESS, Status.EVENT)


_MESSAGES = {
    Status.SUCCESS: "integration reached the end of t_span",
    Status.EVENT: "a terminal event stopped the integration (see Solution.events)",
    Status.MAX_STEPS: ("the step budget max_steps ran out before the end of t_span: raise max_steps, loosen "
                       "rtol/atol, or use a stiff method (method='bdf' or 'radau') if the system is stiff"),
    Status.STEP_SIZE_UNDERFLOW: ("the step size fell below the floating-point resolution of t: the solution "
                                 "is probably singular here (finite-time blow-up or a discontinuity); "
                                 "shorten t_span, check the parameters, or try a stiff method"),
    Status.NON_FINITE: ("the state or the right-hand side became nan/inf: check the parameters and the "
                        "initial state, shorten t_span, or reduce dt for fixed-step methods"),
    Status.BLOW_UP: ("the state's max-norm exceeded the blow_up bound: the trajectory diverges; shorten "
                     "t_span or raise blow_up (np.inf disables the check) if such values are expected"),
}


def _freeze_arrays(obj) -> None:
    """Make the result's arrays read-only, so that the frozen result cannot change through them."""
    for value in vars(obj).values():
        if isinstance(value, np.ndarray):
            value.setflags(write=False)


@dataclass(frozen=True, eq=False)
class EventRecord:
    """Events that fired, in time order.

    Attributes
    ----------
    t : float64 [n_fired]
        Event times (located on the dense output).
    y : float64 [n_fired, n_state]
        States at the event times.
    which : int64 [n_fired]
        Index into the ``events`` sequence passed to ``solve``.
    n_total : int
        Events that fired, including any beyond the record's capacity.
    """

    t: np.ndarray
    y: np.ndarray
    which: np.ndarray
    n_total: int

    def __post_init__(self) -> None:
        _freeze_arrays(self)

    def __len__(self) -> int:
        return int(self.t.shape[0])

    def times_of(self, which: int) -> np.ndarray:
        """Times of the events of the ``which``-th spec."""
        return self.t[self.which == which]


@dataclass(frozen=True, eq=False)
class DenseOutput:
    """Per-step interpolants: step starts ``t0`` [n_steps], lengths ``h`` [n_steps] and coefficients
    ``rcont`` [n_steps, 5, n_state] (see ``theorykit.solve._kernels.interpolate``)."""

    t0: np.ndarray
    h: np.ndarray
    rcont: np.ndarray

    def __post_init__(self) -> None:
        _freeze_arrays(self)

    def __call__(self, t: Any) -> np.ndarray:
        """States at times ``t`` (scalar -> [n_state], array [k] -> [k, n_state])."""
        ts = np.asarray(t, dtype=np.float64)
        flat = ts.reshape(-1)
        if flat.size and (flat.min() < self.t0[0] or flat.max() > self.t0[-1] + self.h[-1]):
            raise InvalidParameterError(
                f"t must lie in the integrated interval [{self.t0[0]}, {self.t0[-1] + self.h[-1]}]")
        idx = np.clip(np.searchsorted(self.t0, flat, side="right") - 1, 0, self.t0.size - 1)
        th = ((flat - self.t0[idx]) / self.h[idx])[:, None]
        r = self.rcont[idx]
        th1 = 1.0 - th
        y = r[:, 0] + th * (r[:, 1] + th1 * (r[:, 2] + th * (r[:, 3] + th1 * r[:, 4])))
        return y.reshape(ts.shape + (self.rcont.shape[2],))


@dataclass(frozen=True, eq=False)
class Solution:
    """One integrated trajectory (immutable; its arrays are read-only).

    Attributes
    ----------
    t : float64 [n_t]
        Output times (``t_eval``, or every accepted step), up to where the integration stopped.
    y : float64 [n_t, n_state]
        States at ``t``. Never contains values past a failure.
    params : float64 [n_param]
        The packed parameters used.
    status : Status
        How the integration ended.
    stats : mapping
        ``n_steps`` (accepted), ``n_rejected``, ``n_rhs_evals``, ``n_jac_evals``, ``n_events``.
    events : EventRecord
        Events that fired.
    state_names, param_names : tuple of str
    method : str
    t_final : float
        Time where integration stopped (``t_span[1]`` on success).
    y_final : float64 [n_state]
        State at ``t_final``.
    dense : DenseOutput or None
        Per-step interpolants (``solve(..., dense=True)``); used by :meth:`at`.
    system : CompiledSystem
        The compiled system (for :meth:`observed`).
    """

    t: np.ndarray
    y: np.ndarray
    params: np.ndarray
    status: Status
    stats: Mapping[str, int]
    events: EventRecord
    state_names: tuple[str, ...]
    param_names: tuple[str, ...]
    method: str
    t_final: float
    y_final: np.ndarray
    dense: DenseOutput | None = field(default=None, repr=False)
    system: Any = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        _freeze_arrays(self)

    def __repr__(self) -> str:
        return (f"Solution(status={self.status.name}, method={self.method!r}, n_t={self.t.shape[0]}, "
                f"t_final={self.t_final:.6g}, states={list(self.state_names)}, n_steps={self.stats['n_steps']}, "
                f"n_events={self.stats['n_events']})")

    @property
    def success(self) -> bool:
        """Whether the integration reached ``t_span[1]`` or stopped at a terminal event."""
        return self.status.success

    @property
    def final(self) -> np.ndarray:
        """The state where the integration stopped, float64 [n_state]."""
        return self.y_final

    @property
    def message(self) -> str:
        return self.status.message

    def _state_index(self, name: str) -> int:
        if name not in self.state_names:
            raise KeyError(f"unknown state {name!r}; available: {list(self.state_names)}")
        return self.state_names.index(name)

    def y_of(self, name: str) -> np.ndarray:
        """Trajectory of the state ``name``, float64 [n_t]."""
        return self.y[:, self._state_index(name)]

    def observed(self, name: str) -> np.ndarray:
        """Observable ``name`` along the trajectory, float64 [n_t], via the compiled ``observed_into``."""
        names = tuple(self.system.observable_names)
        if name not in names:
            raise KeyError(f"unknown observable {name!r}; available: {list(names)}")
        k = names.index(name)
        buf = np.empty(len(names))
        res = np.empty(self.t.shape[0])
        # writable copies: read-only arrays would make numba compile another specialisation
        p = np.array(self.params)
        yi = np.empty(self.y.shape[1])
        for i in range(self.t.shape[0]):
            yi[:] = self.y[i]
            self.system.observed_into(float(self.t[i]), yi, p, buf)
            res[i] = buf[k]
        return res

    def at(self, t: Any) -> np.ndarray:
        """Interpolated state at time(s) ``t`` (requires ``solve(..., dense=True)``)."""
        if self.dense is None:
            raise InvalidParameterError("Solution.at needs dense output: call solve(..., dense=True)")
        return self.dense(t)

    def raise_for_status(self) -> "Solution":
        """Raise :class:`~theorykit.errors.SolveError` unless :attr:`success`; return ``self`` otherwise."""
        if not self.success:
            raise SolveError(f"{self.status.name} at t={self.t_final:.6g} ({self.method}): {self.status.message}")
        return self

    def _repr_html_(self) -> str:
        """Status, steps and final state as HTML (Jupyter's rich display)."""
        from .._display import solution_html

        return solution_html(self)


@dataclass(frozen=True, eq=False)
class EnsembleSolution:
    """Many trajectories on a common output grid (immutable; its arrays are read-only).

    Attributes
    ----------
    t : float64 [n_t]
        Common output times.
    y : float64 [n_traj, n_t, n_state]
        States; rows a trajectory did not reach (after a failure or terminal event) are nan.
    y0 : float64 [n_traj, n_state]
    params : float64 [n_traj, n_param]
    status : int64 [n_traj]
        :class:`Status` codes.
    n_steps, n_rejected, n_rhs_evals : int64 [n_traj]
    t_final : float64 [n_traj]
        Where each trajectory stopped.
    final : float64 [n_traj, n_state]
        States at ``t_final``.
    event_t : float64 [n_traj]
        Time of each trajectory's first event (nan if none fired).
    event_which : int64 [n_traj]
        Which event spec fired first (-1 if none).
    event_y : float64 [n_traj, n_state]
        State at the first event (nan if none fired).
    state_names, param_names : tuple of str
    method : str
    """

    t: np.ndarray
    y: np.ndarray
    y0: np.ndarray
    params: np.ndarray
    status: np.ndarray
    n_steps: np.ndarray
    n_rejected: np.ndarray
    n_rhs_evals: np.ndarray
    t_final: np.ndarray
    final: np.ndarray
    event_t: np.ndarray
    event_which: np.ndarray
    event_y: np.ndarray
    state_names: tuple[str, ...]
    param_names: tuple[str, ...]
    method: str

    def __post_init__(self) -> None:
        _freeze_arrays(self)

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def __repr__(self) -> str:
        counts = ", ".join(f"{s.name}: {k}" for s, k in self.counts().items())
        return (f"EnsembleSolution(n={len(self)}, method={self.method!r}, n_t={self.t.shape[0]}, "
                f"states={list(self.state_names)}, status={{{counts}}})")

    @property
    def success(self) -> np.ndarray:
        """bool [n_traj]: reached the end or stopped at a terminal event."""
        return (self.status == Status.SUCCESS) | (self.status == Status.EVENT)

    @property
    def statuses(self) -> tuple[Status, ...]:
        return tuple(Status(int(s)) for s in self.status)

    def counts(self) -> dict[Status, int]:
        """Number of trajectories per status (only statuses that occur)."""
        codes, n = np.unique(self.status, return_counts=True)
        return {Status(int(c)): int(k) for c, k in zip(codes, n)}

    def y_of(self, name: str) -> np.ndarray:
        """float64 [n_traj, n_t]: the state ``name`` of every trajectory."""
        if name not in self.state_names:
            raise KeyError(f"unknown state {name!r}; available: {list(self.state_names)}")
        return self.y[:, :, self.state_names.index(name)]

    def _repr_html_(self) -> str:
        """Status counts, steps and final-state ranges as HTML (Jupyter's rich display)."""
        from .._display import ensemble_html

        return ensemble_html(self)
