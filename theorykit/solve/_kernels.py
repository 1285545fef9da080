"""Integration kernels: Dormand–Prince 5(4), classical RK4 and Euler–Maruyama, with events and dense output.

The entry points :func:`integrate` (one trajectory) and :func:`integrate_rows` (many) take the compiled
right-hand side ``rhs(t, y, p, out)`` / diffusion ``diffusion(t, y, p, out)`` and the records of
:mod:`theorykit.solve._layout`; they write their results into the records' arrays. All arrays are
float64 unless stated otherwise; ``n`` is the number of states.

One source, three flavours
--------------------------
This file is executed as up to three kinds of module (see :mod:`theorykit.solve._drivers`):

* ``"numba"`` (this module): every function ``njit(cache=True)``; :func:`compile_drivers` compiles the two
  entry points once for *first-class function* arguments of the fixed types :data:`RHS_TYPE` /
  :data:`DIFFUSION_TYPE`, so one machine-code driver serves every system and numba's disk cache is
  reused across processes.
* ``"python"``: ``njit`` is the identity, so the same algorithm runs as plain Python: the numpy backend
  uses it, and so does a numba-backend solve while the compiled drivers are not yet in the cache.
* ``"inline"``: uncached ``njit`` functions, one module per system, in which every call ``rhs(...)`` /
  ``diffusion(...)`` reads ``RHS(...)`` / ``DIFFUSION(...)``, module globals holding the system's
  functions (see ``theorykit.solve._drivers``); the ``rhs`` / ``diffusion`` arguments are then unused
  placeholders. A per-system module compiles :func:`integrate_rows` from them with the right-hand side
  inlined, and caches it.

Arithmetic follows IEEE rules (``error_model="numpy"``): nothing here raises on division by zero, and
every place where that could happen is guarded so that the plain-Python flavour does not raise either.
Every right-hand side output is checked for finiteness. A right-hand side that can raise (plain Python,
or a hand-written njit function with numba's default error model, whose exception numba can only print
when it is called through a pointer) reaches the kernels wrapped so that it fills its output with nan
before it runs (see ``theorykit.solve._solve``): one that stops half-way leaves nan behind and the
step ends as ``NON_FINITE``.
"""

from __future__ import annotations

import math

import numpy as np

from ._layout import (BLOW_UP, BUFFER_FULL, C_ACCEPTED, C_ATTEMPTS, C_DENSE, C_EVENTS, C_LAST_REJECTED,
                      C_NONFINITE_REJECTED, C_NONSTIFF_RUN, C_OUT, C_REJECTED, C_RHS, C_SEED, C_STATUS,
                      C_STIFF, C_STIFF_RUN, DOPRI5, EULER_MARUYAMA, EV_STATE, EVENT, EVENT_COLUMNS, F_ATOL,
                      F_BLOW_UP, F_DT, F_FIRST_STEP, F_MAX_STEP, F_RTOL, F_T0, F_T1, I_BUDGET, I_MAX_STEPS,
                      I_METHOD, I_N_NOISE, MAX_STEPS, N_FOPT, N_IOPT, N_SF, N_SI, N_STATS, NON_FINITE,
                      NOT_STARTED, PAUSED, RK4, RUNNING, S_FACOLD, S_H, S_T, STEP_SIZE_UNDERFLOW, SUCCESS,
                      Output, Problem, Rows, RowsOutput, Scratch, State)

_FLAVOUR = globals().get("_FLAVOUR", "numba")  # set by _drivers before it executes a copy of this file

if _FLAVOUR == "python":

    def njit(fn, inline="never"):
        """Identity decorator standing in for ``numba.njit``."""
        return fn

elif _FLAVOUR == "inline":
    import numba

    def njit(fn, inline="never"):
        """``numba.njit`` without disk caching (the per-system module that uses these functions caches itself)."""
        return numba.njit(error_model="numpy", inline=inline)(fn)

else:
    import numba
    from numba import types as _nt
    from numba.core import cgutils as _cgutils
    from numba.extending import intrinsic as _intrinsic

    from theorykit._jit import njit as _cached_njit  # cache stamps that include _layout, _solution, ...

    def njit(fn, inline="never"):
        """``numba.njit`` with the kernels' options: cached, IEEE arithmetic, releasing the GIL."""
        return _cached_njit(cache=True, error_model="numpy", nogil=True, inline=inline)(fn)

    _A1, _A2 = _nt.float64[::1], _nt.float64[:, ::1]
    #: The compiled drivers' right-hand side and diffusion: first-class functions of these types.
    RHS_TYPE = _nt.FunctionType(_nt.void(_nt.float64, _A1, _A1, _A1))
    DIFFUSION_TYPE = _nt.FunctionType(_nt.void(_nt.float64, _A1, _A1, _A2))

    def _function_from_address(function_type):
        @_intrinsic
        def from_address(typingctx, address):
            """A first-class function of ``function_type`` calling the C function at ``address`` (int64)."""
            def codegen(context, builder, signature, args):
                fn = _cgutils.create_struct_proxy(function_type)(context, builder)  # zero-filled
                fn.c_addr = builder.inttoptr(args[0], _cgutils.voidptr_t)
                return fn._getvalue()

            return function_type(_nt.int64), codegen

        return from_address

    # The drivers receive the functions as addresses (plain integers): numba unboxes a first-class
    # function argument through Python on every call, which costs more than a short integration.
    rhs_from_address = _function_from_address(RHS_TYPE)
    diffusion_from_address = _function_from_address(DIFFUSION_TYPE)

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
_TINY_STEP = 1e-300  # initial step when Hairer's estimate underflows (|f| beyond the float range)
_TINY_SCALE = 2.2250738585072014e-308  # the smallest normal float: floor of an error scale atol + rtol |y|


def inline_njit(fn):
    """:func:`njit` inlined into its callers by numba (for small helpers on the hot path)."""
    return njit(fn, inline="always")


# ---------------------------------------------------------------------------------------------
# Array helpers.
# ---------------------------------------------------------------------------------------------
@njit
def all_finite(x):
    """Whether every entry of the float64 array ``x`` [n] is finite."""
    for i in range(x.shape[0]):
        if not math.isfinite(x[i]):
            return False
    return True


@njit
def max_abs(x):
    """Largest absolute entry of the float64 array ``x`` [n] (the infinity norm)."""
    m = 0.0
    for i in range(x.shape[0]):
        a = abs(x[i])
        if a > m:
            m = a
    return m


@njit
def copy_into(src, dst):
    """``dst[:] = src`` for float64 [n] arrays (an explicit loop compiles much faster than a slice copy)."""
    for i in range(src.shape[0]):
        dst[i] = src[i]


@njit
def scaled_square(v, scale):
    """``(v / scale)**2`` for an error scale ``scale >= 0``; a zero scale counts as the smallest normal
    float, so ``v = 0`` gives 0 and any other ``v`` a huge error (no division by zero, no branch)."""
    q = v / max(scale, _TINY_SCALE)
    return q * q


@njit
def interpolate(rcont, theta, out):
    """Evaluate a step's dense-output polynomial at ``theta`` in [0, 1], writing ``out`` [n].

    ``rcont`` [5, n] holds Hairer's DOPRI5 coefficients: ``y(theta) = r0 + theta (r1 + (1 - theta)
    (r2 + theta (r3 + (1 - theta) r4)))``. With ``r4 = 0`` this is cubic Hermite interpolation (RK4)
    and with ``r2 = r3 = r4 = 0`` linear interpolation (Euler–Maruyama).
    """
    th1 = 1.0 - theta
    for i in range(out.shape[0]):
        out[i] = rcont[0, i] + theta * (rcont[1, i] + th1 * (rcont[2, i] + theta * (rcont[3, i] + th1 * rcont[4, i])))


@njit
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


# ---------------------------------------------------------------------------------------------
# Events.
# ---------------------------------------------------------------------------------------------
@njit
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


@njit
def _crossed(direction, g0, g1):
    """Whether the event function went from g0 to g1 across zero in the allowed ``direction``."""
    rising = g0 < 0.0 and g1 >= 0.0
    falling = g0 > 0.0 and g1 <= 0.0
    if direction > 0.0:
        return rising
    if direction < 0.0:
        return falling
    return rising or falling


@njit
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


@njit
def locate_events(events, t_old, h, rcont, y_new, g_old, out, n_ev, sc):
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
    out : Output
        Its ``ev_t``, ``ev_y``, ``ev_which`` (capacity ``cap``) receive the events; events beyond the
        capacity are counted but not stored.
    n_ev : int
        Number of events recorded so far.
    sc : Scratch
        Uses ``g_new``, ``ywork`` and ``thetas``.

    Returns
    -------
    (theta_stop, n_ev) : (float, int)
        ``theta_stop`` < 0 when no terminal event fired, else the step fraction where integration stops.
    """
    k = events.shape[0]
    g_new = sc.g_new
    event_values(events, y_new, g_new)
    thetas = sc.thetas  # thetas of the events that fired (inf for the others), handled in time order below
    for e in range(k):
        thetas[e] = math.inf
        if _crossed(events[e, 3], g_old[e], g_new[e]):
            thetas[e] = _root_theta(events, e, rcont, g_old[e], sc.ywork, sc.thetas[k:])
    theta_stop = -1.0
    while True:
        e = -1
        best = math.inf
        for j in range(k):
            if thetas[j] < best:
                best = thetas[j]
                e = j
        if e < 0:
            break
        thetas[e] = math.inf
        if n_ev < out.ev_t.shape[0]:
            out.ev_t[n_ev] = t_old + best * h
            if best >= 1.0:
                copy_into(y_new, out.ev_y[n_ev])
            else:
                interpolate(rcont, best, out.ev_y[n_ev])
            out.ev_which[n_ev] = e
        n_ev += 1
        if events[e, 4] != 0.0:
            theta_stop = best
            break
    for e in range(k):
        g_old[e] = g_new[e]
    return theta_stop, n_ev


@njit
def save_outputs(t_eval, i_out, t_old, h, t_stop, rcont, y_stop, out_t, out_y):
    """Write the requested output times in ``(t_old, t_stop]`` from one step; return the next index.

    ``t_eval`` [n_t] sorted times, ``out_t`` [n_t], ``out_y`` [n_t, n]; ``y_stop`` [n] is the exact state at
    ``t_stop`` (the step end or a terminal event), used for output times at or beyond it.
    """
    n_t = t_eval.shape[0]
    while i_out < n_t and t_eval[i_out] <= t_stop:
        out_t[i_out] = t_eval[i_out]
        if t_eval[i_out] >= t_stop:
            copy_into(y_stop, out_y[i_out])
        else:
            interpolate(rcont, (t_eval[i_out] - t_old) / h, out_y[i_out])
        i_out += 1
    return i_out


# ---------------------------------------------------------------------------------------------
# Initial step (Hairer's estimate) and steppers.
# ---------------------------------------------------------------------------------------------
@njit
def initial_step(y0, f0, y1_probe, rtol, atol, max_step):
    """First half of Hairer's initial step guess: the probe step ``h`` and the probe state ``y1_probe``.

    Returns ``h > 0``; the caller evaluates ``f1 = f(t0 + h, y1_probe)`` and calls
    :func:`refine_initial_step`.
    """
    n = y0.shape[0]
    dnf = 0.0
    dny = 0.0
    for i in range(n):
        sk = atol + rtol * abs(y0[i])
        dnf += scaled_square(f0[i], sk)
        dny += scaled_square(y0[i], sk)
    dnf /= n
    dny /= n
    if dnf <= 1e-10 or dny <= 1e-10:
        h = 1e-6
    else:
        h = 0.01 * math.sqrt(dny / dnf)
    if not h > 0.0:  # |f| / scale overflowed: the solution moves on a time scale below any float step
        h = _TINY_STEP
    h = min(h, max_step)
    for i in range(n):
        y1_probe[i] = y0[i] + h * f0[i]
    return h


@njit
def refine_initial_step(h, y0, f0, f1, rtol, atol, max_step):
    """Second half of Hairer's initial step guess, using the second-derivative estimate (f1 - f0) / h."""
    n = y0.shape[0]
    der2 = 0.0
    dnf = 0.0
    for i in range(n):
        sk = atol + rtol * abs(y0[i])
        der2 += scaled_square(f1[i] - f0[i], sk)
        dnf += scaled_square(f0[i], sk)
    der2 = math.sqrt(der2 / n) / h
    der12 = max(abs(der2), math.sqrt(dnf / n))
    if not math.isfinite(der12):
        return h
    if der12 <= 1e-15:
        h1 = max(1e-6, h * 1e-3)
    else:
        h1 = (0.01 / der12) ** 0.2
    return min(100.0 * h, h1, max_step)


@inline_njit
def dopri5_stage(s, y, h, k, arg):
    """The argument of Dormand–Prince stage ``s`` from ``k[0]`` ... ``k[s - 1]``, written into ``arg`` [n].

    ``s`` = 1 ... 5 give the arguments of ``k[1]`` ... ``k[5]``; ``s`` = 6 gives the 5th-order solution
    ``y_new`` (the argument of ``k[6]``). ``k`` [7, n] holds the stages computed so far.
    """
    n = y.shape[0]
    if s == 1:
        for i in range(n):
            arg[i] = y[i] + h * _A21 * k[0, i]
    elif s == 2:
        for i in range(n):
            arg[i] = y[i] + h * (_A31 * k[0, i] + _A32 * k[1, i])
    elif s == 3:
        for i in range(n):
            arg[i] = y[i] + h * (_A41 * k[0, i] + _A42 * k[1, i] + _A43 * k[2, i])
    elif s == 4:
        for i in range(n):
            arg[i] = y[i] + h * (_A51 * k[0, i] + _A52 * k[1, i] + _A53 * k[2, i] + _A54 * k[3, i])
    elif s == 5:
        for i in range(n):
            arg[i] = y[i] + h * (_A61 * k[0, i] + _A62 * k[1, i] + _A63 * k[2, i] + _A64 * k[3, i]
                                 + _A65 * k[4, i])
    else:
        for i in range(n):
            arg[i] = y[i] + h * (_A71 * k[0, i] + _A73 * k[2, i] + _A74 * k[3, i] + _A75 * k[4, i]
                                 + _A76 * k[5, i])


@inline_njit
def dopri5_error(y, h, k, y_new, rcont, rtol, atol):
    """A completed Dormand–Prince step's scaled RMS error estimate; fills ``rcont`` [5, n] (dense output)."""
    n = y.shape[0]
    err = 0.0
    for i in range(n):
        e = h * (_E1 * k[0, i] + _E3 * k[2, i] + _E4 * k[3, i] + _E5 * k[4, i] + _E6 * k[5, i]
                 + _E7 * k[6, i])
        err += scaled_square(e, atol + rtol * max(abs(y[i]), abs(y_new[i])))
        d = y_new[i] - y[i]
        b = h * k[0, i] - d
        rcont[0, i] = y[i]
        rcont[1, i] = d
        rcont[2, i] = b
        rcont[3, i] = d - h * k[6, i] - b
        rcont[4, i] = h * (_D1 * k[0, i] + _D3 * k[2, i] + _D4 * k[3, i] + _D5 * k[4, i] + _D6 * k[5, i]
                           + _D7 * k[6, i])
    return math.sqrt(err / n)


@njit
def dopri5_step(rhs, t, y, h, p, k, ytmp, y_new, rcont, rtol, atol):
    """One Dormand–Prince 5(4) step from (t, y) of size h; returns the scaled RMS error estimate.

    ``k`` [7, n]: ``k[0]`` must hold f(t, y) on entry (FSAL); on exit ``k[6]`` = f(t + h, y_new).
    Writes the 5th-order solution to ``y_new`` [n] and the dense-output coefficients to ``rcont`` [5, n];
    ``ytmp`` [n] keeps the last stage's argument. Six right-hand side evaluations. (The steppers take
    single arrays, not the Scratch record: a record is passed by value, field by field, on every call.)
    """
    dopri5_stage(1, y, h, k, ytmp)
    rhs(t + _C2 * h, ytmp, p, k[1])
    dopri5_stage(2, y, h, k, ytmp)
    rhs(t + _C3 * h, ytmp, p, k[2])
    dopri5_stage(3, y, h, k, ytmp)
    rhs(t + _C4 * h, ytmp, p, k[3])
    dopri5_stage(4, y, h, k, ytmp)
    rhs(t + _C5 * h, ytmp, p, k[4])
    dopri5_stage(5, y, h, k, ytmp)
    rhs(t + h, ytmp, p, k[5])
    dopri5_stage(6, y, h, k, y_new)
    rhs(t + h, y_new, p, k[6])
    return dopri5_error(y, h, k, y_new, rcont, rtol, atol)


@njit
def dopri5_lanes(rhs, lanes, n_go, t, h, y, p, k, ytmp, y_new, rcont, rtol, atol, err):
    """One Dormand–Prince step of each of the trajectories ``lanes[:n_go]``, stage by stage across them.

    Lane ``l`` is a trajectory at ``t[l]``, ``y[l]`` with parameters ``p[l]``, stages ``k[l]``; the step of
    size ``h[l]`` fills ``ytmp[l]``, ``y_new[l]``, ``rcont[l]`` and ``err[l]`` exactly as
    :func:`dopri5_step` does (the same operations in the same order for every lane). The lanes' steps are
    independent, so the CPU overlaps their chains of dependent floating-point operations, which bound the
    speed of a single small system.
    """
    # The stages are written out: a loop over them (constants from a tuple) measured 5% slower.
    for j in range(n_go):
        l = lanes[j]
        dopri5_stage(1, y[l], h[l], k[l], ytmp[l])
        rhs(t[l] + _C2 * h[l], ytmp[l], p[l], k[l, 1])
    for j in range(n_go):
        l = lanes[j]
        dopri5_stage(2, y[l], h[l], k[l], ytmp[l])
        rhs(t[l] + _C3 * h[l], ytmp[l], p[l], k[l, 2])
    for j in range(n_go):
        l = lanes[j]
        dopri5_stage(3, y[l], h[l], k[l], ytmp[l])
        rhs(t[l] + _C4 * h[l], ytmp[l], p[l], k[l, 3])
    for j in range(n_go):
        l = lanes[j]
        dopri5_stage(4, y[l], h[l], k[l], ytmp[l])
        rhs(t[l] + _C5 * h[l], ytmp[l], p[l], k[l, 4])
    for j in range(n_go):
        l = lanes[j]
        dopri5_stage(5, y[l], h[l], k[l], ytmp[l])
        rhs(t[l] + h[l], ytmp[l], p[l], k[l, 5])
    for j in range(n_go):
        l = lanes[j]
        dopri5_stage(6, y[l], h[l], k[l], y_new[l])
        rhs(t[l] + h[l], y_new[l], p[l], k[l, 6])
    for j in range(n_go):
        l = lanes[j]
        err[l] = dopri5_error(y[l], h[l], k[l], y_new[l], rcont[l], rtol, atol)


@njit
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


@njit
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


# ---------------------------------------------------------------------------------------------
# Drivers.
# ---------------------------------------------------------------------------------------------
@njit
def new_scratch(n, n_noise, n_events):
    """A :class:`Scratch` for ``n`` states, ``n_noise`` Wiener processes and ``n_events`` event specs."""
    return Scratch(np.empty(n), np.empty(n), np.zeros((5, n)), np.zeros((n, max(n_noise, 1))), np.empty(n_noise),
                   np.empty(n_events), np.empty(n), np.empty(2 * n_events))


@njit
def reset_state(st, y0, seed):
    """Prepare ``st`` to start a trajectory at ``y0`` [n]; ``seed >= 0`` seeds the random generator."""
    for j in range(st.f.shape[0]):
        st.f[j] = 0.0
    for j in range(st.i.shape[0]):
        st.i[j] = 0
    st.i[C_STATUS] = NOT_STARTED
    st.i[C_SEED] = seed
    copy_into(y0, st.y)


@njit
def _start(rhs, prob, p, st, sc, out):
    """First call on a trajectory: initial outputs, f(t0, y0), event functions and the first step."""
    fopt, t_eval = prob.fopt, prob.t_eval
    y, k = st.y, st.k
    t0 = fopt[F_T0]
    if st.i[C_SEED] >= 0:
        np.random.seed(st.i[C_SEED])
    i_out = 0
    if t_eval.shape[0] == 0:  # saving every step: the start is the first row
        out.t[0] = t0
        copy_into(y, out.y[0])
        i_out = 1
    else:
        while i_out < t_eval.shape[0] and t_eval[i_out] <= t0:
            out.t[i_out] = t_eval[i_out]
            copy_into(y, out.y[i_out])
            i_out += 1
    st.i[C_OUT] = i_out
    event_values(prob.events, y, st.g)
    rhs(t0, y, p, k[0])
    st.i[C_RHS] = 1
    st.f[S_T] = t0
    st.f[S_FACOLD] = 1e-4
    st.f[S_H] = fopt[F_DT]
    if not all_finite(k[0]):
        st.i[C_STATUS] = NON_FINITE
        return
    st.i[C_STATUS] = RUNNING
    if prob.iopt[I_METHOD] == DOPRI5:
        rtol, atol, max_step = fopt[F_RTOL], fopt[F_ATOL], fopt[F_MAX_STEP]
        if fopt[F_FIRST_STEP] > 0.0:
            h = min(fopt[F_FIRST_STEP], max_step)
        else:
            h = initial_step(y, k[0], sc.ytmp, rtol, atol, max_step)
            rhs(t0 + h, sc.ytmp, p, k[1])
            st.i[C_RHS] += 1
            h = refine_initial_step(h, y, k[0], k[1], rtol, atol, max_step)
        st.f[S_H] = h


@inline_njit
def next_attempt(t, h, target, max_step, adaptive, nonfinite_reject, t1, n_attempt, max_steps, attempts_here,
                 budget, buffer_full):
    """Whether and how far a trajectory at ``t`` steps next: ``(status, h, t_new)``.

    ``status`` is ``RUNNING`` to attempt a step of size ``h`` (at most ``max_step``; stretched by up to a
    relative 1e-9 onto ``target`` instead of leaving a sliver before it) ending at ``t_new``, else the
    reason to stop: ``t1`` reached, ``max_steps`` attempts in all or ``budget`` in this call, a full
    output buffer, or (``adaptive``) a step below the resolution of ``t``.
    """
    if t >= t1:
        return SUCCESS, h, t
    if n_attempt >= max_steps:
        return MAX_STEPS, h, t
    if attempts_here >= budget:
        return PAUSED, h, t
    if buffer_full:
        return BUFFER_FULL, h, t
    h = min(h, max_step)
    if t + h * (1.0 + 1e-9) >= target:
        h = target - t
        t_new = target
    else:
        t_new = t + h
    if adaptive and 0.1 * abs(h) <= abs(t) * _EPS:
        # non-finite stages that persist down to the resolution of t make the status NON_FINITE
        return (NON_FINITE if nonfinite_reject else STEP_SIZE_UNDERFLOW), h, t_new
    return RUNNING, h, t_new


@njit
def finite_stages(y_new, k):
    """Whether a rejected Dormand–Prince step's solution and last two stages are finite."""
    return all_finite(y_new) and all_finite(k[6]) and all_finite(k[5])


@inline_njit
def rejected_step_size(err, h):
    """The size to retry with after a Dormand–Prince step of size ``h`` was rejected with error ``err``
    (> 1 or nan); an infinite or nan estimate shrinks it by the most allowed."""
    if math.isfinite(err):
        return h / min(1.0 / _FAC_MIN, err ** _EXPO1 / _SAFE)
    return h * _FAC_MIN


@inline_njit
def accepted_step_size(err, h, facold, last_rejected):
    """PI control after an accepted Dormand–Prince step: ``(h_next, facold)`` (never growing right after
    a rejection)."""
    fac11 = err ** _EXPO1
    fac = fac11 / facold ** _BETA
    fac = max(1.0 / _FAC_MAX, min(1.0 / _FAC_MIN, fac / _SAFE))
    h_next = h / fac
    if last_rejected:
        h_next = min(h_next, h)
    return h_next, max(err, 1e-4)


@inline_njit
def stiffness_test(h, k, y_new, ytmp, n_stiff, n_stiff_run, n_nonstiff_run):
    """Hairer's stiffness test after an accepted Dormand–Prince step; returns the updated counters
    ``(n_stiff, n_stiff_run, n_nonstiff_run)``.

    h |lambda| is estimated from the last two stages (``ytmp`` still holds stage 6's argument); beyond
    3.25 for 15 accepted steps (6 non-stiff ones in between reset the run) the step size is limited by
    stability, not accuracy.
    """
    st_num = 0.0
    st_den = 0.0
    for i in range(y_new.shape[0]):
        dk = k[6, i] - k[5, i]
        dy = y_new[i] - ytmp[i]
        st_num += dk * dk
        st_den += dy * dy
    if st_den > 0.0 and h * h * st_num > 10.5625 * st_den:
        n_nonstiff_run = 0
        n_stiff_run += 1
        if n_stiff_run >= 15:
            n_stiff += 1
    else:
        n_nonstiff_run += 1
        if n_nonstiff_run == 6:
            n_stiff_run = 0
    return n_stiff, n_stiff_run, n_nonstiff_run


@njit
def step_events(events, t, h, t_new, rcont, y_new, g, out, n_ev, sc):
    """Events of an accepted step from ``t`` to ``t_new`` (see :func:`locate_events`): ``(status, t_end, n_ev)``.

    A terminal event ends the step early: ``status`` is then ``EVENT`` and ``y_new`` is overwritten with
    the state at ``t_end``; otherwise ``status`` is ``RUNNING`` and ``t_end = t_new``. ``g`` holds the
    event functions at ``t``, updated to those at the step's end.
    """
    theta_stop, n_ev = locate_events(events, t, h, rcont, y_new, g, out, n_ev, sc)
    if theta_stop < 0.0:
        return RUNNING, t_new, n_ev
    if theta_stop < 1.0:
        t_new = t + theta_stop * h
        interpolate(rcont, theta_stop, y_new)
    return EVENT, t_new, n_ev


@inline_njit
def step_outputs(save_steps, t_eval, i_out, t, h, t_end, rcont, y_end, out_t, out_y):
    """Outputs of an accepted step from ``t`` ending at ``t_end`` in state ``y_end``: that end point when
    ``save_steps``, else the output times within the step (:func:`save_outputs`); returns the next index."""
    if save_steps:
        out_t[i_out] = t_end
        copy_into(y_end, out_y[i_out])
        return i_out + 1
    return save_outputs(t_eval, i_out, t, h, t_end, rcont, y_end, out_t, out_y)


@inline_njit
def advance(y_new, y, k):
    """Move a trajectory to the end of its accepted step: ``y = y_new``, ``k[0] = k[6]`` (first same as last)."""
    for i in range(y.shape[0]):
        y[i] = y_new[i]
        k[0, i] = k[6, i]


@njit
def _integrate(rhs, diffusion, prob, p, st, sc, out):
    """Advance one trajectory; see :func:`integrate` (this is the body that the ensemble also calls)."""
    if st.i[C_STATUS] == NOT_STARTED:
        _start(rhs, prob, p, st, sc, out)
    if st.i[C_STATUS] >= 0:  # finished (also at the start, when f(t0, y0) is not finite)
        return
    fopt, iopt, t_eval, events = prob.fopt, prob.iopt, prob.t_eval, prob.events
    fs, ist, y, k = st.f, st.i, st.y, st.k
    y_new, ytmp, rcont, gmat, dw = sc.y_new, sc.ytmp, sc.rcont, sc.gmat, sc.dw
    n_t = t_eval.shape[0]
    save_steps = n_t == 0
    method = iopt[I_METHOD]
    adaptive = method == DOPRI5
    land_on_eval = method == EULER_MARUYAMA
    n_ev_kinds = events.shape[0]
    cap_out = out.t.shape[0]
    cap_dense = out.dense_t.shape[0]
    t1, rtol, atol = fopt[F_T1], fopt[F_RTOL], fopt[F_ATOL]
    max_step, dt, blow_up = fopt[F_MAX_STEP], fopt[F_DT], fopt[F_BLOW_UP]
    max_steps, budget = iopt[I_MAX_STEPS], iopt[I_BUDGET]

    t, h, facold = fs[S_T], fs[S_H], fs[S_FACOLD]
    i_out, n_dense, n_ev = ist[C_OUT], ist[C_DENSE], ist[C_EVENTS]
    n_attempt, n_acc, n_rej, n_rhs = ist[C_ATTEMPTS], ist[C_ACCEPTED], ist[C_REJECTED], ist[C_RHS]
    n_stiff, n_stiff_run, n_nonstiff_run = ist[C_STIFF], ist[C_STIFF_RUN], ist[C_NONSTIFF_RUN]
    last_rejected = ist[C_LAST_REJECTED] != 0
    nonfinite_reject = ist[C_NONFINITE_REJECTED] != 0
    attempts_here = 0
    status = RUNNING
    while status == RUNNING:
        target = t1
        if land_on_eval and i_out < n_t and t_eval[i_out] < target:
            target = t_eval[i_out]
        status, h, t_new = next_attempt(t, h, target, max_step, adaptive, nonfinite_reject, t1, n_attempt,
                                        max_steps, attempts_here, budget,
                                        (save_steps and i_out >= cap_out) or (cap_dense > 0 and n_dense >= cap_dense))
        if status != RUNNING:
            break
        n_attempt += 1
        attempts_here += 1

        h_next = dt
        if method == DOPRI5:
            err = dopri5_step(rhs, t, y, h, p, k, ytmp, y_new, rcont, rtol, atol)
            n_rhs += 6
            if not (err <= 1.0):  # rejected, also when err is nan
                n_rej += 1
                last_rejected = True
                nonfinite_reject = not finite_stages(y_new, k)
                h = rejected_step_size(err, h)
                continue
            h_next, facold = accepted_step_size(err, h, facold, last_rejected)
            last_rejected = False
            nonfinite_reject = False
            n_stiff, n_stiff_run, n_nonstiff_run = stiffness_test(h, k, y_new, ytmp, n_stiff, n_stiff_run,
                                                                  n_nonstiff_run)
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
            out.dense_t[n_dense] = t
            out.dense_h[n_dense] = h
            for j in range(5):
                copy_into(rcont[j], out.dense_r[n_dense, j])
            n_dense += 1

        if n_ev_kinds > 0:
            status, t_new, n_ev = step_events(events, t, h, t_new, rcont, y_new, st.g, out, n_ev, sc)
        i_out = step_outputs(save_steps, t_eval, i_out, t, h, t_new, rcont, y_new, out.t, out.y)
        t = t_new
        advance(y_new, y, k)
        if status != RUNNING:
            break
        if max_abs(y) > blow_up:
            status = BLOW_UP
            break
        h = h_next

    fs[S_T], fs[S_H], fs[S_FACOLD] = t, h, facold
    ist[C_OUT], ist[C_DENSE], ist[C_EVENTS] = i_out, n_dense, n_ev
    ist[C_ATTEMPTS], ist[C_ACCEPTED], ist[C_REJECTED], ist[C_RHS] = n_attempt, n_acc, n_rej, n_rhs
    ist[C_STIFF], ist[C_STIFF_RUN], ist[C_NONSTIFF_RUN] = n_stiff, n_stiff_run, n_nonstiff_run
    ist[C_LAST_REJECTED] = 1 if last_rejected else 0
    ist[C_NONFINITE_REJECTED] = 1 if nonfinite_reject else 0
    ist[C_STATUS] = status


if _FLAVOUR != "numba":  # the plain-Python flavour gets the callables; the inline one, unused placeholders

    def rhs_from_address(rhs):
        return rhs

    diffusion_from_address = njit(rhs_from_address)
    rhs_from_address = njit(rhs_from_address)


@njit
def integrate(rhs, diffusion, prob, p, st, sc, out):
    """Integrate one trajectory from where ``st`` stands, until it finishes or must return early.

    Parameters
    ----------
    rhs : int or callable
        ``rhs(t, y, p, out)`` writes dy/dt into ``out`` [n]: for the compiled flavour the address of its
        C wrapper (see :func:`function_address`), for the plain-Python flavour the callable itself.
    diffusion : int or callable
        ``diffusion(t, y, p, out)`` writes the Itô diffusion matrix into ``out`` [n, n_noise]
        (only called by Euler–Maruyama with ``n_noise > 0``), passed like ``rhs``.
    prob : Problem
        ``fopt``: t0, t1 (``t0 < t1``), rtol, atol, first_step (<= 0: automatic), max_step, dt (fixed-step
        methods; shortened to land on ``t1``, and for Euler–Maruyama on each output time), blow_up
        (stop with ``BLOW_UP`` once ``max|y|`` exceeds it). ``iopt``: method (``DOPRI5``, ``RK4``,
        ``EULER_MARUYAMA``), n_noise, max_steps (attempted steps, accepted plus rejected), budget.
        ``t_eval`` [n_t]: sorted output times in [t0, t1]; if empty, every accepted step is saved.
        ``events`` [n_ev_kinds, 5]: see :func:`locate_events`.
    p : float64 [m]
        Packed parameters.
    st : State
        Set up by :func:`reset_state` before the first call; carries the trajectory between calls.
        ``st.i[C_STATUS]`` receives the status: a :class:`~theorykit.solve.Status` code when finished,
        ``PAUSED`` when ``budget`` attempted steps were made in this call, or ``BUFFER_FULL`` when the
        per-step outputs (``t_eval`` empty) or the dense buffer filled up before ``t1``. After these two
        the caller may empty the buffers (setting ``st.i[C_OUT]`` / ``st.i[C_DENSE]`` back to 0) and call
        again: the result is the same as that of one uninterrupted call.
    sc : Scratch
        Work arrays (:func:`new_scratch`).
    out : Output
        ``t`` [cap], ``y`` [cap, n]: output rows (``cap = n_t``, or when saving every step any capacity
        >= 1); ``st.i[C_OUT]`` rows are written. ``dense_t``, ``dense_h``, ``dense_r`` [cap_d], [cap_d],
        [cap_d, 5, n]: per-step dense output (``cap_d = 0`` disables it), ``st.i[C_DENSE]`` written.
        ``ev_t``, ``ev_y``, ``ev_which`` [cap_e], [cap_e, n], int64 [cap_e]: the first ``cap_e`` events.
    """
    _integrate(rhs_from_address(rhs), diffusion_from_address(diffusion), prob, p, st, sc, out)


#: Trajectories one thread of an ensemble advances together with Dormand–Prince (:func:`dopri5_lanes`).
#: It pays where the right-hand side is inlined: 2-state system, one thread, CPU per trajectory 14.3 µs
#: one at a time, 9.6 / 9.1 / 8.9 µs with 4 / 8 / 16 lanes. Called through a pointer, the per-lane
#: array views and calls cost about what the overlap saves, so the generic driver takes one at a time.
LANES = 8 if _FLAVOUR == "inline" else 1


@njit
def integrate_rows(rhs, diffusion, prob, rows, res):
    """Integrate the trajectories ``rows`` to their end, each exactly as :func:`integrate` would.

    Dormand–Prince rows run :data:`LANES` at a time (:func:`_interleaved_rows`) in the inlined flavour;
    otherwise, and for the fixed-step methods, one after another.

    ``rows``: :class:`Rows` with ``y0`` [n_rows, n], ``p`` [n_rows, m], ``seed`` int64 [n_rows] (-1: do
    not seed). ``res``: :class:`RowsOutput` with ``y`` [n_rows, n_t, n] (rows a trajectory does not reach
    are left untouched), ``final`` [n_rows, n], ``t_final`` [n_rows], ``status`` int64 [n_rows], the
    first event per trajectory in ``ev_t`` [n_rows, 1], ``ev_y`` [n_rows, 1, n], ``ev_which`` int64
    [n_rows, 1], and ``stats`` int64 [n_rows, N_STATS]. ``prob.t_eval`` must be non-empty and
    ``prob.iopt[I_BUDGET]`` at least ``max_steps``.
    """
    rhs, diffusion = rhs_from_address(rhs), diffusion_from_address(diffusion)
    if LANES > 1 and prob.iopt[I_METHOD] == DOPRI5:
        _interleaved_rows(rhs, prob, rows, res, LANES)
        return
    n_rows, n = rows.y0.shape[0], rows.y0.shape[1]
    st = State(np.zeros(N_SF), np.zeros(N_SI, dtype=np.int64), np.empty(n), np.empty((7, n)),
               np.empty(prob.events.shape[0]))
    sc = new_scratch(n, prob.iopt[I_N_NOISE], prob.events.shape[0])
    out_t, no_dense, no_dense_r = np.empty(prob.t_eval.shape[0]), np.empty(0), np.empty((0, 5, n))
    for r in range(n_rows):
        reset_state(st, rows.y0[r], rows.seed[r])
        _integrate(rhs, diffusion, prob, rows.p[r], st, sc, _row_output(res, r, out_t, no_dense, no_dense_r))
        _store_row(st.f, st.i, st.y, res, r)


@njit
def _row_output(res, r, out_t, no_dense, no_dense_r):
    """The :class:`Output` of ensemble row ``r``: outputs into ``res.y[r]``, first event into ``res``, no
    dense output (``no_dense`` [0], ``no_dense_r`` [0, 5, n]); ``out_t`` [n_t] receives the output times."""
    return Output(out_t, res.y[r], no_dense, no_dense, no_dense_r, res.ev_t[r], res.ev_y[r], res.ev_which[r])


@njit
def _store_row(f, i, y, res, r):
    """Copy a finished trajectory (its State's ``f``, ``i``, ``y``) into row ``r`` of ``res``."""
    res.status[r] = i[C_STATUS]
    res.t_final[r] = f[S_T]
    copy_into(y, res.final[r])
    for j in range(N_STATS):
        res.stats[r, j] = i[j]


@njit
def _interleaved_rows(rhs, prob, rows, res, lanes):
    """Dormand–Prince rows, ``lanes`` trajectories at a time: the body of :func:`_integrate` for each.

    Every lane holds one trajectory (its State in row ``l`` of ``F``, ``I``, ``Y``, ``K``, ``G``). A round
    decides each lane's next attempt (a finished trajectory is stored and its lane takes the next row),
    makes the steps stage by stage across the lanes (:func:`dopri5_lanes`), then accepts or rejects each
    step, with the same helpers and in the same order as :func:`_integrate`: every trajectory gets the
    same numbers as alone.
    """
    fopt, t_eval, events = prob.fopt, prob.t_eval, prob.events
    n_rows, n, m = rows.y0.shape[0], rows.y0.shape[1], rows.p.shape[1]
    n_t, n_ev_kinds = t_eval.shape[0], events.shape[0]
    t1, rtol, atol = fopt[F_T1], fopt[F_RTOL], fopt[F_ATOL]
    max_step, blow_up = fopt[F_MAX_STEP], fopt[F_BLOW_UP]
    max_steps, budget = prob.iopt[I_MAX_STEPS], prob.iopt[I_BUDGET]
    n_lanes = max(1, min(lanes, n_rows))
    F, I = np.zeros((n_lanes, N_SF)), np.zeros((n_lanes, N_SI), dtype=np.int64)
    Y, K, G = np.empty((n_lanes, n)), np.empty((n_lanes, 7, n)), np.empty((n_lanes, n_ev_kinds))
    P = np.empty((n_lanes, m))
    YT, YN, RC = np.empty((n_lanes, n)), np.empty((n_lanes, n)), np.zeros((n_lanes, 5, n))
    T, H, T_NEW, ERR = np.empty(n_lanes), np.empty(n_lanes), np.empty(n_lanes), np.empty(n_lanes)
    row = np.full(n_lanes, -1, dtype=np.int64)  # the row each lane integrates (-1: none)
    go = np.empty(n_lanes, dtype=np.int64)       # the lanes that attempt a step this round
    sc = new_scratch(n, 0, n_ev_kinds)
    out_t, no_dense, no_dense_r = np.empty(n_t), np.empty(0), np.empty((0, 5, n))
    next_row = 0
    while True:
        n_go = 0
        for l in range(n_lanes):
            while True:
                if row[l] < 0:
                    if next_row >= n_rows:
                        break
                    r = next_row
                    next_row += 1
                    row[l] = r
                    copy_into(rows.p[r], P[l])
                    st = State(F[l], I[l], Y[l], K[l], G[l])
                    reset_state(st, rows.y0[r], rows.seed[r])
                    _start(rhs, prob, P[l], st, sc, _row_output(res, r, out_t, no_dense, no_dense_r))
                status, h, t_new = I[l, C_STATUS], 0.0, 0.0
                if status == RUNNING:
                    status, h, t_new = next_attempt(F[l, S_T], F[l, S_H], t1, max_step, True,
                                                    I[l, C_NONFINITE_REJECTED] != 0, t1, I[l, C_ATTEMPTS],
                                                    max_steps, 0, budget, False)
                    F[l, S_H] = h
                if status != RUNNING:
                    I[l, C_STATUS] = status
                    _store_row(F[l], I[l], Y[l], res, row[l])
                    row[l] = -1
                    continue
                T[l], H[l], T_NEW[l] = F[l, S_T], h, t_new
                go[n_go] = l
                n_go += 1
                break
        if n_go == 0:
            return
        dopri5_lanes(rhs, go, n_go, T, H, Y, P, K, YT, YN, RC, rtol, atol, ERR)
        for j in range(n_go):
            l = go[j]
            f, i, k, y_new, err, h = F[l], I[l], K[l], YN[l], ERR[l], H[l]
            i[C_ATTEMPTS] += 1
            i[C_RHS] += 6
            if not (err <= 1.0):  # rejected, also when err is nan
                i[C_REJECTED] += 1
                i[C_LAST_REJECTED] = 1
                i[C_NONFINITE_REJECTED] = 0 if finite_stages(y_new, k) else 1
                f[S_H] = rejected_step_size(err, h)
                continue
            h_next, f[S_FACOLD] = accepted_step_size(err, h, f[S_FACOLD], i[C_LAST_REJECTED] != 0)
            i[C_LAST_REJECTED] = 0
            i[C_NONFINITE_REJECTED] = 0
            i[C_STIFF], i[C_STIFF_RUN], i[C_NONSTIFF_RUN] = stiffness_test(h, k, y_new, YT[l], i[C_STIFF],
                                                                           i[C_STIFF_RUN], i[C_NONSTIFF_RUN])
            if not (all_finite(y_new) and all_finite(k[6])):
                i[C_STATUS] = NON_FINITE
                continue
            i[C_ACCEPTED] += 1
            status, t_end = RUNNING, T_NEW[l]
            if n_ev_kinds > 0:
                status, t_end, i[C_EVENTS] = step_events(events, T[l], h, t_end, RC[l], y_new, G[l],
                                                         _row_output(res, row[l], out_t, no_dense, no_dense_r),
                                                         i[C_EVENTS], sc)
            if i[C_OUT] < n_t and t_eval[i[C_OUT]] <= t_end:  # an output time within the step
                i[C_OUT] = step_outputs(False, t_eval, i[C_OUT], T[l], h, t_end, RC[l], y_new, out_t, res.y[row[l]])
            f[S_T] = t_end
            advance(y_new, Y[l], k)
            if status == RUNNING and max_abs(Y[l]) > blow_up:
                status = BLOW_UP
            if status == RUNNING:
                f[S_H] = h_next
            i[C_STATUS] = status


# ---------------------------------------------------------------------------------------------
# Types, compilation and the other flavours (numba-flavour module functions).
# ---------------------------------------------------------------------------------------------
def _example_records(n_noise_dims: int = 1):
    """Records with the array types (dtype, ndim, C layout) the drivers are compiled for."""
    f1, f2, f3, i1 = np.empty(1), np.empty((1, 1)), np.empty((1, 1, 1)), np.empty(1, dtype=np.int64)
    prob = Problem(np.empty(N_FOPT), np.empty(N_IOPT, dtype=np.int64), f1, np.empty((0, EVENT_COLUMNS)))
    st = State(np.empty(N_SF), np.empty(N_SI, dtype=np.int64), f1, f2, f1)
    sc = Scratch(f1, f1, f2, f2, f1, f1, f1, f1)
    out = Output(f1, f2, f1, f1, f3, f1, f2, i1)
    rows = Rows(f2, f2, i1)
    res = RowsOutput(f3, f2, f1, i1, f2, f3, np.empty((1, 1), dtype=np.int64), np.empty((1, 1), dtype=np.int64))
    return prob, st, sc, out, rows, res


def signatures() -> dict:
    """``{name: numba signature}`` of the two compiled entry points (rhs and diffusion by address)."""
    from numba import typeof, types as nt

    prob, st, sc, out, rows, res = (typeof(r) for r in _example_records())
    return {"integrate": nt.void(nt.int64, nt.int64, prob, nt.float64[::1], st, sc, out),
            "integrate_rows": nt.void(nt.int64, nt.int64, prob, rows, res)}


def function_address(fn, function_type) -> int:
    """The address of the C wrapper of the numba dispatcher ``fn`` compiled for ``function_type``'s
    signature (compiling it if needed). Valid while ``fn`` lives; the caller keeps ``fn`` alive."""
    from numba.core.types.function_type import CompileResultWAP

    args = function_type.signature.args
    if args not in fn.overloads:
        fn.compile(args)
    return int(CompileResultWAP(fn.overloads[args]).__wrapper_address__())


def nan_filled(fn, matrix: bool = False):
    """An njit function calling ``fn(t, y, p, out)`` after filling ``out`` with nan (``matrix``: [n, m]),
    for functions that can raise: numba only prints an exception of a function called through a pointer,
    and the entries it leaves unwritten must not keep an old value. (A closure: compiled in each process.)"""
    if matrix:
        def filled(t, y, p, out):
            for i in range(out.shape[0]):
                for j in range(out.shape[1]):
                    out[i, j] = math.nan
            fn(t, y, p, out)
    else:
        def filled(t, y, p, out):
            for i in range(out.shape[0]):
                out[i] = math.nan
            fn(t, y, p, out)
    return numba.njit(error_model="numpy")(filled)


def zero_diffusion(t, y, p, out):
    """Diffusion of a deterministic system: writes nothing (Euler–Maruyama never calls it with n_noise = 0)."""
    return None


if _FLAVOUR == "numba":
    zero_diffusion = _cached_njit(cache=True)(zero_diffusion)
elif _FLAVOUR == "inline":
    zero_diffusion = numba.njit(zero_diffusion)
    if DIFFUSION is None:  # noqa: F821 - set by the loader
        DIFFUSION = zero_diffusion
