"""Integration kernels: Dormand–Prince 5(4), classical RK4 and Euler–Maruyama, with events and dense output.

Every function here takes only arrays, scalars and (for the drivers) the compiled right-hand side
``rhs(t, y, p, out)`` / diffusion ``diffusion(t, y, p, out)`` as arguments, and writes its results into
``out`` arrays. All arrays are float64 unless stated otherwise; ``n`` is the number of states.

One implementation, two backends
--------------------------------
This module is executed twice: once normally, where ``njit`` is numba's, and once by
:func:`python_kernels`, which re-executes this same file with ``_PURE_PYTHON = True`` so that ``njit`` is
the identity and ``prange`` is ``range``. The numpy backend uses that second copy, so every helper the
drivers call is the plain-Python version as well (numba's ``.py_func`` alone would still call the
compiled helpers, which cannot take a Python right-hand side).

Compilation and caching (measured with numba 0.68, 2 busy cores)
-----------------------------------------------------------------
Left to itself, numba types a jitted function passed as an argument as that dispatcher object, so a
driver taking ``rhs`` is specialised per compiled system and ``cache=True`` never hits in a new process:
every process recompiled (10-20 s for :func:`integrate`, ~25 s more for the ``parallel=True``
:func:`integrate_ensemble`) and appended a fresh entry to the on-disk index. Instead,
:func:`ensure_compiled` compiles the drivers once for *first-class function* arguments of the fixed
types ``RHS_TYPE`` / ``DIFFUSION_TYPE`` and freezes them. One machine-code driver then serves every
system (the rhs is called through a function pointer, so it is not inlined), numba's cache works
across processes, and a new system only costs compiling its own small ``rhs_into``. Measured: the
first compilation ever takes ~30 s of CPU (45 s + 24 s wall on a loaded machine); afterwards a fresh
process loads both drivers from the cache, and its first ``solve`` takes ~0.2 s, each further system
~0.3 s (its rhs). Every function here is ``cache=True``. ``theorykit.solve._solve.callables_for`` passes
the rhs as a first-class function object with a cached address (passing the dispatcher itself makes
numba look the address up on every call, ~0.2 ms per ``solve``).

The drivers keep ``rhs`` as their first argument, so a caller that wants the rhs inlined (a few
per cent for tiny systems) can jit an unfrozen copy, ``numba.njit(integrate.py_func)``, and call it from a
cached wrapper in its own module that refers to the compiled rhs as a global (a toy wrapper of this
kind loaded from cache in 0.46 s in a second process). Numba only checks the wrapper's own file for
staleness, so such a cache must be keyed on the theorykit version too.
"""

from __future__ import annotations

import importlib.util
import inspect
import math

import numpy as np

from numba import types as _nt

if globals().get("_PURE_PYTHON", False):  # the plain-Python copy made by python_kernels()

    def njit(*args, **kwargs):
        """Identity decorator standing in for ``numba.njit`` (with or without a signature)."""
        if len(args) == 1 and inspect.isfunction(args[0]) and not kwargs:
            return args[0]
        return lambda f: f

    prange = range
else:
    from numba import njit, prange

# Types of the compiled callables the drivers receive. Declaring them as first-class function types
# (rather than letting numba specialise on each dispatcher object) makes the drivers compile once,
# for every system, and lets cache=True work across processes.
_F8, _I8 = _nt.float64, _nt.int64
_A1, _A2, _A3 = _nt.float64[::1], _nt.float64[:, ::1], _nt.float64[:, :, ::1]
_I1, _I2 = _nt.int64[::1], _nt.int64[:, ::1]
RHS_TYPE = _nt.FunctionType(_nt.void(_F8, _A1, _A1, _A1))
DIFFUSION_TYPE = _nt.FunctionType(_nt.void(_F8, _A1, _A1, _A2))

# Method codes (shared with theorykit.solve._solve).
DOPRI5 = 0
RK4 = 1
EULER_MARUYAMA = 2

# Status codes: the values of theorykit.solve.Status.
SUCCESS = 0
EVENT = 1
MAX_STEPS = 2
STEP_SIZE_UNDERFLOW = 3
NON_FINITE = 4
BLOW_UP = 5
BUFFER_FULL = -2  # internal: the step-output or dense buffer is full; the caller resumes from t_final

# Event kinds (column 0 of an event spec row (kind, index, value, direction, terminal)).
EV_STATE = 0  # g = y[index] - value
EV_NORM = 1   # g = ||y||_2 - value

# Layout of the int64 ``stats`` array.
ST_ACCEPTED = 0
ST_REJECTED = 1
ST_RHS = 2
ST_EVENTS = 3
ST_STIFF = 4  # accepted Dormand-Prince steps at which stiffness was detected (Hairer's test)
N_STATS = 5

# Dormand–Prince 5(4) tableau, error weights and dense-output weights (Hairer, Nørsett & Wanner, DOPRI5).
_C2, _C3, _C4, _C5 = 0.2, 0.3, 0.8, 8.0 / 9.0
_A21 = 0.2
_A31, _A32 = 3.0 / 40.0, 9.0 / 40.0
_A41, _A42, _A43 = 44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0
_A51, _A52, _A53, _A54 = 19372.0 / 6561.0, -25360.0 / 2187.0, 64448.0 / 6561.0, -212.0 / 729.0
_A61, _A62, _A63, _A64, _A65 = (9017.0 / 3168.0, -355.0 / 33.0, 46732.0 / 5247.0, 49.0 / 176.0,
                                -5103.0 / 18656.0)
_A71, _A73, _A74, _A75, _A76 = 35.0 / 384.0, 500.0 / 1113.0, 125.0 / 192.0, -2187.0 / 6784.0, 11.0 / 84.0
_E1, _E3, _E4, _E5, _E6, _E7 = (71.0 / 57600.0, -71.0 / 16695.0, 71.0 / 1920.0, -17253.0 / 339200.0,
                                22.0 / 525.0, -1.0 / 40.0)
_D1, _D3, _D4 = -12715105075.0 / 11282082432.0, 87487479700.0 / 32700410799.0, -10690763975.0 / 1880347072.0
_D5, _D6, _D7 = 701980252875.0 / 199316789632.0, -1453857185.0 / 822651844.0, 69997945.0 / 29380423.0

# PI step-size controller constants (DOPRI5 defaults).
_SAFE = 0.9
_BETA = 0.04
_EXPO1 = 0.2 - 0.75 * _BETA
_FAC_MIN = 0.2   # step may shrink at most 5x per step ...
_FAC_MAX = 10.0  # ... and grow at most 10x
_EPS = 2.220446049250313e-16


# ---------------------------------------------------------------------------------------------
# Array-only helpers (cacheable).
# ---------------------------------------------------------------------------------------------
@njit(cache=True)
def all_finite(x):
    """Whether every entry of the float64 array ``x`` [n] is finite."""
    for i in range(x.shape[0]):
        if not math.isfinite(x[i]):
            return False
    return True


@njit(cache=True)
def max_abs(x):
    """Largest absolute entry of the float64 array ``x`` [n] (the infinity norm)."""
    m = 0.0
    for i in range(x.shape[0]):
        a = abs(x[i])
        if a > m:
            m = a
    return m


@njit(cache=True)
def interpolate(rcont, theta, out):
    """Evaluate a step's dense-output polynomial at ``theta`` in [0, 1], writing ``out`` [n].

    ``rcont`` [5, n] holds Hairer's DOPRI5 coefficients: ``y(theta) = r0 + theta (r1 + (1 - theta)
    (r2 + theta (r3 + (1 - theta) r4)))``. With ``r4 = 0`` this is cubic Hermite interpolation (RK4)
    and with ``r2 = r3 = r4 = 0`` linear interpolation (Euler–Maruyama).
    """
    th1 = 1.0 - theta
    for i in range(out.shape[0]):
        out[i] = rcont[0, i] + theta * (rcont[1, i] + th1 * (rcont[2, i] + theta * (rcont[3, i] + th1 * rcont[4, i])))


@njit(cache=True)
def hermite_rcont(y0, y1, f0, f1, h, rcont):
    """Fill ``rcont`` [5, n] with the cubic Hermite interpolant through (y0, f0) and (y1, f1) over step h."""
    for i in range(y0.shape[0]):
        d = y1[i] - y0[i]
        b = h * f0[i] - d
        rcont[0, i] = y0[i]
        rcont[1, i] = d
        rcont[2, i] = b
        rcont[3, i] = d - h * f1[i] - b
        rcont[4, i] = 0.0


@njit(cache=True)
def event_values(events, y, g):
    """Evaluate the event functions ``g`` [n_ev] at state ``y`` [n].

    ``events`` [n_ev, 5] has rows (kind, index, value, direction, terminal); a row's event fires when its
    ``g`` changes sign in the given direction (+1 rising, -1 falling, 0 either).
    """
    for e in range(events.shape[0]):
        kind = int(events[e, 0])
        if kind == EV_STATE:
            g[e] = y[int(events[e, 1])] - events[e, 2]
        else:
            s = 0.0
            for i in range(y.shape[0]):
                s += y[i] * y[i]
            g[e] = math.sqrt(s) - events[e, 2]


@njit(cache=True)
def _crossed(direction, g0, g1):
    """Whether the event function went from g0 to g1 across zero in the allowed ``direction``."""
    rising = g0 < 0.0 and g1 >= 0.0
    falling = g0 > 0.0 and g1 <= 0.0
    if direction > 0.0:
        return rising
    if direction < 0.0:
        return falling
    return rising or falling


@njit(cache=True)
def _root_theta(events, e, rcont, g0, work, gwork):
    """Bisect the event function ``e`` on the step's dense output: the crossing's theta in (0, 1]."""
    lo, hi = 0.0, 1.0
    # 60 halvings reach the resolution of a double on [0, 1].
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if mid <= lo or mid >= hi:
            break
        interpolate(rcont, mid, work)
        event_values(events, work, gwork)
        gm = gwork[e]
        if (gm < 0.0) == (g0 < 0.0) and gm != 0.0:
            lo = mid
        else:
            hi = mid
    return hi


@njit(cache=True)
def locate_events(events, t_old, h, rcont, y_new, g_old, g_new, ev_t, ev_y, ev_which, n_ev, work):
    """Find, order and record the events that fire during one accepted step.

    Parameters
    ----------
    events : float64 [n_ev_kinds, 5]
        Event specs (kind, index, value, direction, terminal).
    t_old, h : float
        Start and length of the step.
    rcont : float64 [5, n]
        The step's dense-output coefficients (see :func:`interpolate`).
    y_new : float64 [n]
        State at the end of the step.
    g_old : float64 [n_ev_kinds]
        Event functions at the start of the step; overwritten with those at the end.
    g_new : float64 [n_ev_kinds]
        Work array.
    ev_t, ev_y, ev_which : float64 [cap], float64 [cap, n], int64 [cap]
        Event record buffers; entries beyond their capacity are counted but not stored.
    n_ev : int
        Number of events recorded so far.
    work : float64 [n + n_ev_kinds]
        Scratch space.

    Returns
    -------
    (theta_stop, n_ev) : (float, int)
        ``theta_stop`` < 0 when no terminal event fired, else the step fraction where integration stops.
    """
    n = y_new.shape[0]
    k = events.shape[0]
    event_values(events, y_new, g_new)
    yw = work[:n]
    gw = work[n:n + k]
    # Thetas of the events that fired (inf for the others); handled in time order below.
    thetas = np.full(k, np.inf)
    for e in range(k):
        if _crossed(events[e, 3], g_old[e], g_new[e]):
            thetas[e] = _root_theta(events, e, rcont, g_old[e], yw, gw)
    theta_stop = -1.0
    while True:
        e = -1
        best = np.inf
        for j in range(k):
            if thetas[j] < best:
                best = thetas[j]
                e = j
        if e < 0:
            break
        thetas[e] = np.inf
        if n_ev < ev_t.shape[0]:
            ev_t[n_ev] = t_old + best * h
            if best >= 1.0:
                ev_y[n_ev, :] = y_new
            else:
                interpolate(rcont, best, ev_y[n_ev])
            ev_which[n_ev] = e
        n_ev += 1
        if events[e, 4] != 0.0:
            theta_stop = best
            break
    for e in range(k):
        g_old[e] = g_new[e]
    return theta_stop, n_ev


@njit(cache=True)
def save_outputs(t_eval, i_out, t_old, h, t_stop, rcont, y_stop, out_y):
    """Write the requested output times in ``(t_old, t_stop]`` from one step; return the next index.

    ``t_eval`` [n_t] sorted times, ``out_y`` [n_t, n]; ``y_stop`` [n] is the exact state at ``t_stop``
    (the step end or a terminal event), used for output times at or beyond it.
    """
    n_t = t_eval.shape[0]
    while i_out < n_t and t_eval[i_out] <= t_stop:
        if t_eval[i_out] >= t_stop:
            out_y[i_out, :] = y_stop
        else:
            interpolate(rcont, (t_eval[i_out] - t_old) / h, out_y[i_out])
        i_out += 1
    return i_out


@njit(cache=True)
def initial_step(y0, f0, y1_probe, rtol, atol, max_step):
    """First half of Hairer's initial step guess: the probe step ``h`` and the probe state ``y1_probe``.

    Returns ``h``; the caller evaluates ``f1 = f(t0 + h, y1_probe)`` and calls
    :func:`refine_initial_step`.
    """
    n = y0.shape[0]
    dnf = 0.0
    dny = 0.0
    for i in range(n):
        sk = atol + rtol * abs(y0[i])
        dnf += (f0[i] / sk) ** 2
        dny += (y0[i] / sk) ** 2
    dnf /= n
    dny /= n
    if dnf <= 1e-10 or dny <= 1e-10:
        h = 1e-6
    else:
        h = 0.01 * math.sqrt(dny / dnf)
    h = min(h, max_step)
    for i in range(n):
        y1_probe[i] = y0[i] + h * f0[i]
    return h


@njit(cache=True)
def refine_initial_step(h, y0, f0, f1, rtol, atol, max_step):
    """Second half of Hairer's initial step guess, using the second-derivative estimate (f1 - f0) / h."""
    n = y0.shape[0]
    der2 = 0.0
    dnf = 0.0
    for i in range(n):
        sk = atol + rtol * abs(y0[i])
        der2 += ((f1[i] - f0[i]) / sk) ** 2
        dnf += (f0[i] / sk) ** 2
    der2 = math.sqrt(der2 / n) / h
    der12 = max(abs(der2), math.sqrt(dnf / n))
    if not math.isfinite(der12):
        return h
    if der12 <= 1e-15:
        h1 = max(1e-6, h * 1e-3)
    else:
        h1 = (0.01 / der12) ** 0.2
    return min(100.0 * h, h1, max_step)


# ---------------------------------------------------------------------------------------------
# Steppers and drivers (take the compiled right-hand side; not cacheable, see the module docstring).
# ---------------------------------------------------------------------------------------------
@njit(cache=True)
def dopri5_step(rhs, t, y, h, p, k, ytmp, y_new, rcont, rtol, atol):
    """One Dormand–Prince 5(4) step from (t, y) of size h; returns the scaled RMS error estimate.

    ``k`` [7, n]: ``k[0]`` must hold f(t, y) on entry (FSAL); on exit ``k[6]`` = f(t + h, y_new).
    Writes the 5th-order solution to ``y_new`` [n] and the dense-output coefficients to ``rcont`` [5, n].
    Uses ``ytmp`` [n] as scratch. Six right-hand side evaluations.
    """
    n = y.shape[0]
    for i in range(n):
        ytmp[i] = y[i] + h * _A21 * k[0, i]
    rhs(t + _C2 * h, ytmp, p, k[1])
    for i in range(n):
        ytmp[i] = y[i] + h * (_A31 * k[0, i] + _A32 * k[1, i])
    rhs(t + _C3 * h, ytmp, p, k[2])
    for i in range(n):
        ytmp[i] = y[i] + h * (_A41 * k[0, i] + _A42 * k[1, i] + _A43 * k[2, i])
    rhs(t + _C4 * h, ytmp, p, k[3])
    for i in range(n):
        ytmp[i] = y[i] + h * (_A51 * k[0, i] + _A52 * k[1, i] + _A53 * k[2, i] + _A54 * k[3, i])
    rhs(t + _C5 * h, ytmp, p, k[4])
    for i in range(n):
        ytmp[i] = y[i] + h * (_A61 * k[0, i] + _A62 * k[1, i] + _A63 * k[2, i] + _A64 * k[3, i]
                              + _A65 * k[4, i])
    rhs(t + h, ytmp, p, k[5])
    for i in range(n):
        y_new[i] = y[i] + h * (_A71 * k[0, i] + _A73 * k[2, i] + _A74 * k[3, i] + _A75 * k[4, i]
                               + _A76 * k[5, i])
    rhs(t + h, y_new, p, k[6])
    err = 0.0
    for i in range(n):
        e = h * (_E1 * k[0, i] + _E3 * k[2, i] + _E4 * k[3, i] + _E5 * k[4, i] + _E6 * k[5, i]
                 + _E7 * k[6, i])
        sk = atol + rtol * max(abs(y[i]), abs(y_new[i]))
        err += (e / sk) ** 2
        d = y_new[i] - y[i]
        b = h * k[0, i] - d
        rcont[0, i] = y[i]
        rcont[1, i] = d
        rcont[2, i] = b
        rcont[3, i] = d - h * k[6, i] - b
        rcont[4, i] = h * (_D1 * k[0, i] + _D3 * k[2, i] + _D4 * k[3, i] + _D5 * k[4, i] + _D6 * k[5, i]
                           + _D7 * k[6, i])
    return math.sqrt(err / n)


@njit(cache=True)
def rk4_step(rhs, t, y, h, p, k, ytmp, y_new, rcont):
    """One classical RK4 step; ``k[0]`` = f(t, y) on entry, ``k[6]`` = f(t + h, y_new) on exit.

    Writes ``y_new`` [n] and the cubic Hermite dense output to ``rcont`` [5, n]. Four new evaluations
    (the end-point derivative is reused as the next step's first stage).
    """
    n = y.shape[0]
    for i in range(n):
        ytmp[i] = y[i] + 0.5 * h * k[0, i]
    rhs(t + 0.5 * h, ytmp, p, k[1])
    for i in range(n):
        ytmp[i] = y[i] + 0.5 * h * k[1, i]
    rhs(t + 0.5 * h, ytmp, p, k[2])
    for i in range(n):
        ytmp[i] = y[i] + h * k[2, i]
    rhs(t + h, ytmp, p, k[3])
    for i in range(n):
        y_new[i] = y[i] + h / 6.0 * (k[0, i] + 2.0 * k[1, i] + 2.0 * k[2, i] + k[3, i])
    rhs(t + h, y_new, p, k[6])
    hermite_rcont(y, y_new, k[0], k[6], h, rcont)


@njit(cache=True)
def euler_maruyama_step(rhs, diffusion, t, y, h, p, k, gmat, dw, y_new, rcont):
    """One Euler–Maruyama step ``y_new = y + f h + G dW`` with ``dW ~ N(0, h I)`` drawn from numpy's
    global (numba: per-thread) generator; ``k[0]`` = f(t, y) on entry, ``k[6]`` = f(t + h, y_new) on exit.

    ``gmat`` [n, n_noise] and ``dw`` [n_noise] are scratch; ``rcont`` gets linear interpolation.
    """
    n = y.shape[0]
    m = dw.shape[0]
    sq = math.sqrt(h)
    for j in range(m):
        dw[j] = sq * np.random.normal(0.0, 1.0)
    if m > 0:
        diffusion(t, y, p, gmat)
    for i in range(n):
        s = y[i] + h * k[0, i]
        for j in range(m):
            s += gmat[i, j] * dw[j]
        y_new[i] = s
        rcont[0, i] = y[i]
        rcont[1, i] = s - y[i]
        rcont[2, i] = 0.0
        rcont[3, i] = 0.0
        rcont[4, i] = 0.0
    rhs(t + h, y_new, p, k[6])


@njit(cache=True)
def integrate(rhs, diffusion, n_noise, method, t0, t1, y0, p, t_eval, rtol, atol, first_step, max_step, dt,
              max_steps, blow_up, events, seed, out_t, out_y, y_final, dense_t, dense_h, dense_r,
              ev_t, ev_y, ev_which, stats):
    """Integrate one trajectory from ``t0`` to ``t1``.

    Parameters
    ----------
    rhs : callable
        ``rhs(t, y, p, out)`` writes dy/dt into ``out`` [n].
    diffusion : callable
        ``diffusion(t, y, p, out)`` writes the Itô diffusion matrix into ``out`` [n, n_noise]
        (only called by Euler–Maruyama with ``n_noise > 0``).
    n_noise : int
        Number of independent Wiener processes.
    method : int
        ``DOPRI5`` (adaptive; uses rtol, atol, first_step, max_step), ``RK4`` or ``EULER_MARUYAMA``
        (fixed step ``dt``, shortened to land on ``t1``; Euler–Maruyama also lands on each ``t_eval``).
    t0, t1 : float
        Integration interval, ``t0 < t1``.
    y0 : float64 [n]
        Initial state.
    p : float64 [m]
        Packed parameters.
    t_eval : float64 [n_t]
        Sorted output times in [t0, t1]; if empty, every accepted step is saved instead.
    first_step : float
        Initial step for DOPRI5, or <= 0 to choose it automatically.
    max_steps : int
        Maximum number of attempted steps (accepted plus rejected).
    blow_up : float
        Stop with ``BLOW_UP`` once ``max|y|`` exceeds this bound (``inf`` disables it).
    events : float64 [n_ev_kinds, 5]
        Event specs, see :func:`locate_events`.
    seed : int
        Seeds the random generator when >= 0 (Euler–Maruyama only).
    out_t : float64 [cap]
        Output times (filled when ``t_eval`` is empty; else a copy of the reached ``t_eval``).
    out_y : float64 [cap, n]
        Output states; ``cap`` is ``n_t`` or, when saving every step, ``max_steps + 2``.
    y_final : float64 [n]
        Receives the state where integration stopped.
    dense_t, dense_h, dense_r : float64 [cap_d], [cap_d], [cap_d, 5, n]
        Per-step dense output (start time, step, coefficients); ``cap_d = 0`` disables it.
    ev_t, ev_y, ev_which : float64 [cap_e], float64 [cap_e, n], int64 [cap_e]
        Event record buffers.
    stats : int64 [N_STATS]
        Receives (accepted steps, rejected steps, rhs evaluations, events fired).

    Returns
    -------
    (status, n_out, n_dense, t_final, h_next) : (int, int, int, float, float)
        Status code, number of rows of ``out_t``/``out_y`` written, dense steps stored, the time where
        integration stopped and the step size to continue with. Rows past ``n_out`` are never written.
        ``BUFFER_FULL`` means that the per-step output (``t_eval`` empty) or dense buffer filled up
        before ``t1``: the caller continues from ``(t_final, y_final)`` with ``first_step=h_next``.
    """
    n = y0.shape[0]
    n_t = t_eval.shape[0]
    save_steps = n_t == 0
    adaptive = method == DOPRI5
    land_on_eval = method == EULER_MARUYAMA
    n_ev_kinds = events.shape[0]
    cap_dense = dense_t.shape[0]

    y = y0.copy()
    y_new = np.empty(n)
    ytmp = np.empty(n)
    k = np.empty((7, n))
    rcont = np.zeros((5, n))
    gmat = np.zeros((n, max(n_noise, 1)))
    dw = np.empty(n_noise)
    g_old = np.empty(n_ev_kinds)
    g_new = np.empty(n_ev_kinds)
    work = np.empty(n + n_ev_kinds)
    for i in range(stats.shape[0]):
        stats[i] = 0
    if seed >= 0:
        np.random.seed(seed)

    t = t0
    i_out = 0
    n_ev = 0
    n_dense = 0
    if save_steps:
        out_t[0] = t0
        out_y[0, :] = y0
        i_out = 1
    else:
        while i_out < n_t and t_eval[i_out] <= t0:
            out_t[i_out] = t_eval[i_out]
            out_y[i_out, :] = y0
            i_out += 1
    event_values(events, y, g_old)

    rhs(t, y, p, k[0])
    n_rhs = 1
    status = -1
    if not all_finite(k[0]):
        status = NON_FINITE

    h = dt
    if adaptive and status < 0:
        if first_step > 0.0:
            h = min(first_step, max_step)
        else:
            h = initial_step(y, k[0], ytmp, rtol, atol, max_step)
            rhs(t + h, ytmp, p, k[1])
            n_rhs += 1
            h = refine_initial_step(h, y, k[0], k[1], rtol, atol, max_step)

    facold = 1e-4
    last_rejected = False
    nonfinite_reject = False
    n_stiff_run = 0  # consecutive-ish accepted steps with |h lambda| beyond the stability boundary
    n_nonstiff_run = 0
    n_stiff = 0
    n_attempt = 0
    n_acc = 0
    n_rej = 0
    while status < 0:
        if t >= t1:
            status = SUCCESS
            break
        if n_attempt >= max_steps:
            status = MAX_STEPS
            break
        h = min(h, max_step)
        target = t1
        if land_on_eval and i_out < n_t and t_eval[i_out] < target:
            target = t_eval[i_out]
        # Stretch the step by up to a relative 1e-9 instead of leaving a sliver before the target.
        if t + h * (1.0 + 1e-9) >= target:
            h = target - t
            t_new = target
        else:
            t_new = t + h
        if adaptive and 0.1 * abs(h) <= abs(t) * _EPS:
            status = NON_FINITE if nonfinite_reject else STEP_SIZE_UNDERFLOW
            break
        n_attempt += 1

        h_next = dt
        if method == DOPRI5:
            err = dopri5_step(rhs, t, y, h, p, k, ytmp, y_new, rcont, rtol, atol)
            n_rhs += 6
            if not (err <= 1.0):  # rejected, also when err is nan
                n_rej += 1
                last_rejected = True
                if math.isfinite(err):
                    nonfinite_reject = False
                    h = h / min(1.0 / _FAC_MIN, err ** _EXPO1 / _SAFE)
                else:
                    # Non-finite stages: shrink hard; if this persists to underflow, report NON_FINITE.
                    nonfinite_reject = True
                    h = h * _FAC_MIN
                continue
            fac11 = err ** _EXPO1
            fac = fac11 / facold ** _BETA
            fac = max(1.0 / _FAC_MAX, min(1.0 / _FAC_MIN, fac / _SAFE))
            h_next = h / fac
            if last_rejected:
                h_next = min(h_next, h)
            facold = max(err, 1e-4)
            last_rejected = False
            nonfinite_reject = False
            # Hairer's stiffness test: h * |lambda| estimated from the last two stages (ytmp still holds
            # stage 6); beyond 3.25 for 15 accepted steps (6 non-stiff ones in between reset it) the
            # step size is limited by stability, not accuracy.
            st_num = 0.0
            st_den = 0.0
            for i in range(n):
                st_num += (k[6, i] - k[5, i]) ** 2
                st_den += (y_new[i] - ytmp[i]) ** 2
            if st_den > 0.0 and h * h * st_num > 10.5625 * st_den:
                n_nonstiff_run = 0
                n_stiff_run += 1
                if n_stiff_run >= 15:
                    n_stiff += 1
            else:
                n_nonstiff_run += 1
                if n_nonstiff_run == 6:
                    n_stiff_run = 0
        elif method == RK4:
            rk4_step(rhs, t, y, h, p, k, ytmp, y_new, rcont)
            n_rhs += 4
        else:
            euler_maruyama_step(rhs, diffusion, t, y, h, p, k, gmat, dw, y_new, rcont)
            n_rhs += 1
        if not (all_finite(y_new) and all_finite(k[6])):
            status = NON_FINITE
            break
        n_acc += 1

        if n_dense < cap_dense:
            dense_t[n_dense] = t
            dense_h[n_dense] = h
            dense_r[n_dense] = rcont
            n_dense += 1

        theta_stop = -1.0
        if n_ev_kinds > 0:
            theta_stop, n_ev = locate_events(events, t, h, rcont, y_new, g_old, g_new, ev_t, ev_y,
                                             ev_which, n_ev, work)
        if theta_stop >= 0.0:
            if theta_stop < 1.0:
                t_new = t + theta_stop * h
                interpolate(rcont, theta_stop, y_new)
            status = EVENT
        if save_steps:
            out_t[i_out] = t_new
            out_y[i_out, :] = y_new
            i_out += 1
        else:
            j = i_out
            i_out = save_outputs(t_eval, i_out, t, h, t_new, rcont, y_new, out_y)
            for jj in range(j, i_out):
                out_t[jj] = t_eval[jj]
        t = t_new
        for i in range(n):
            y[i] = y_new[i]
            k[0, i] = k[6, i]  # first-same-as-last
        if status >= 0:
            break
        if max_abs(y) > blow_up:
            status = BLOW_UP
            break
        h = h_next
        if t < t1 and ((save_steps and i_out >= out_t.shape[0]) or (cap_dense > 0 and n_dense >= cap_dense)):
            status = BUFFER_FULL
            break

    for i in range(n):
        y_final[i] = y[i]
    stats[ST_ACCEPTED] = n_acc
    stats[ST_REJECTED] = n_rej
    stats[ST_RHS] = n_rhs
    stats[ST_EVENTS] = n_ev
    stats[ST_STIFF] = n_stiff
    return status, i_out, n_dense, t, h


@njit(cache=True, parallel=True)
def integrate_ensemble(rhs, diffusion, n_noise, method, t0, t1, y0s, ps, t_eval, rtol, atol, first_step,
                       max_step, dt, max_steps, blow_up, events, seeds, out_y, y_final, t_final, status,
                       n_out, ev_t, ev_y, ev_which, stats):
    """Integrate ``n_traj`` trajectories in parallel (``prange``), each with :func:`integrate`.

    ``y0s`` [n_traj, n], ``ps`` [n_traj, m], ``seeds`` int64 [n_traj] (-1: do not seed);
    outputs: ``out_y`` [n_traj, n_t, n] (rows past ``n_out[i]`` left untouched), ``y_final`` [n_traj, n],
    ``t_final`` [n_traj], ``status`` / ``n_out`` int64 [n_traj], first event per trajectory in ``ev_t``
    [n_traj, 1], ``ev_y`` [n_traj, 1, n], ``ev_which`` int64 [n_traj, 1], ``stats`` int64 [n_traj, N_STATS].
    ``t_eval`` must be non-empty.
    """
    n_traj = y0s.shape[0]
    n = y0s.shape[1]
    n_t = t_eval.shape[0]
    for i in prange(n_traj):
        out_t = np.empty(n_t)
        dense_t = np.empty(0)
        dense_h = np.empty(0)
        dense_r = np.empty((0, 5, n))
        s, m, nd, tf, hn = integrate(rhs, diffusion, n_noise, method, t0, t1, y0s[i], ps[i], t_eval, rtol, atol,
                                 first_step, max_step, dt, max_steps, blow_up, events, seeds[i], out_t,
                                 out_y[i], y_final[i], dense_t, dense_h, dense_r, ev_t[i], ev_y[i],
                                 ev_which[i], stats[i])
        status[i] = s
        n_out[i] = m
        t_final[i] = tf


@njit(_nt.void(_F8, _A1, _A1, _A2), cache=True)
def zero_diffusion(t, y, p, out):
    """Diffusion of a deterministic system: writes nothing (``out`` has shape [n, 0] or is unused)."""
    return None


INTEGRATE_SIGNATURE = _nt.Tuple((_I8, _I8, _I8, _F8, _F8))(
    RHS_TYPE, DIFFUSION_TYPE, _I8, _I8, _F8, _F8, _A1, _A1, _A1, _F8, _F8, _F8, _F8, _F8, _I8, _F8, _A2, _I8,
    _A1, _A2, _A1, _A1, _A1, _A3, _A1, _A2, _I1, _I1)
ENSEMBLE_SIGNATURE = _nt.void(
    RHS_TYPE, DIFFUSION_TYPE, _I8, _I8, _F8, _F8, _A2, _A2, _A1, _F8, _F8, _F8, _F8, _F8, _I8, _F8, _A2, _I1,
    _A3, _A2, _A1, _I1, _I1, _A2, _A3, _I2, _I2)
_COMPILED: set = set()


def ensure_compiled(ensemble: bool = False):
    """Compile (or load from numba's cache) :func:`integrate` (and, if ``ensemble``,
    :func:`integrate_ensemble`) for first-class-function arguments, once per process.

    Afterwards the drivers accept any compiled ``rhs``/``diffusion`` with the ``RHS_TYPE`` /
    ``DIFFUSION_TYPE`` signatures without compiling again, and refuse argument types that would
    trigger a per-system specialisation. Done lazily, not at import, so that importing theorykit stays
    fast and single solves never wait for the parallel driver.
    """
    wanted = [(integrate, INTEGRATE_SIGNATURE)] + ([(integrate_ensemble, ENSEMBLE_SIGNATURE)] if ensemble else [])
    for fn, sig in wanted:
        if fn not in _COMPILED:
            fn.compile(sig)
            fn.disable_compile()
            _COMPILED.add(fn)


_PY_MODULE = None


def python_kernels():
    """This module's kernels as plain Python functions (numba bypassed), for the numpy backend."""
    global _PY_MODULE
    if _PY_MODULE is None:
        spec = importlib.util.spec_from_file_location(__name__ + "_python", __file__)
        mod = importlib.util.module_from_spec(spec)
        mod._PURE_PYTHON = True
        spec.loader.exec_module(mod)
        _PY_MODULE = mod
    return _PY_MODULE
