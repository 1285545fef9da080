"""The records the integration kernels take, and the codes they return (no numba here).

A kernel call takes the compiled ``rhs`` / ``diffusion`` and four small records, each a namedtuple of
arrays (numba types a namedtuple argument field by field, so one record replaces many positional
arguments and the drivers still compile once for every system):

* :class:`Problem`: what to integrate, shared by every trajectory: packed options ``fopt`` (float64,
  slots ``F_*``) and ``iopt`` (int64, slots ``I_*``), the output times and the event specs.
* :class:`State`: one trajectory's resumable state: scalars ``f`` (float64, slots ``S_*``) and ``i``
  (int64, slots ``C_*``: status, counters, output positions), the state ``y``, the Runge–Kutta stages
  ``k`` (``k[0]`` holds f(t, y) between steps) and the event functions ``g``. A call that stops early
  (``PAUSED``, ``BUFFER_FULL``) leaves everything needed to continue exactly as if it had not stopped.
* :class:`Scratch`: work arrays of one trajectory, not needed between calls.
* :class:`Output`: what one trajectory writes (outputs, per-step dense output, events).

The ensemble kernel takes :class:`Rows` (per-trajectory inputs) and :class:`RowsOutput` instead of a
State and an Output.
"""

from __future__ import annotations

from collections import namedtuple

from ._solution import Status

# Status codes: theorykit.solve.Status is their one definition; the kernels compare plain ints.
SUCCESS = int(Status.SUCCESS)
EVENT = int(Status.EVENT)
MAX_STEPS = int(Status.MAX_STEPS)
STEP_SIZE_UNDERFLOW = int(Status.STEP_SIZE_UNDERFLOW)
NON_FINITE = int(Status.NON_FINITE)
BLOW_UP = int(Status.BLOW_UP)
# Internal codes of an unfinished trajectory (negative: never a Status).
NOT_STARTED = -1  # State as set up by the caller: the kernel initialises it on the first call
RUNNING = -2
BUFFER_FULL = -3  # the per-step output or dense buffer is full: give new buffers and call again
PAUSED = -4       # this call's budget of attempted steps is used up: call again to continue

# Method codes.
DOPRI5 = 0
RK4 = 1
EULER_MARUYAMA = 2

# Event kinds (column 0 of an event spec row (kind, index, value, direction, terminal)).
EV_STATE = 0  # g = y[index] - value
EV_NORM = 1   # g = ||y||_2 - value
EVENT_COLUMNS = 5

# Problem.fopt slots.
F_T0, F_T1, F_RTOL, F_ATOL, F_FIRST_STEP, F_MAX_STEP, F_DT, F_BLOW_UP = range(8)
N_FOPT = 8
# Problem.iopt slots. I_BUDGET: most attempted steps per call before returning PAUSED.
I_METHOD, I_N_NOISE, I_MAX_STEPS, I_BUDGET = range(4)
N_IOPT = 4

# State.f slots: time, next step size, the step-size controller's memory.
S_T, S_H, S_FACOLD = range(3)
N_SF = 3
# State.i slots. The first N_STATS are the statistics reported to the user.
(C_ACCEPTED, C_REJECTED, C_RHS, C_EVENTS, C_STIFF,  # statistics
 C_STATUS, C_SEED, C_OUT, C_DENSE, C_ATTEMPTS, C_STIFF_RUN, C_NONSTIFF_RUN, C_LAST_REJECTED,
 C_NONFINITE_REJECTED) = range(14)
N_STATS = 5
N_SI = 14

Problem = namedtuple("Problem", ["fopt", "iopt", "t_eval", "events"])
State = namedtuple("State", ["f", "i", "y", "k", "g"])
Scratch = namedtuple("Scratch", ["y_new", "ytmp", "rcont", "gmat", "dw", "g_new", "ywork", "thetas"])
Output = namedtuple("Output", ["t", "y", "dense_t", "dense_h", "dense_r", "ev_t", "ev_y", "ev_which"])
Rows = namedtuple("Rows", ["y0", "p", "seed"])
RowsOutput = namedtuple("RowsOutput", ["y", "final", "t_final", "status", "ev_t", "ev_y", "ev_which", "stats"])
