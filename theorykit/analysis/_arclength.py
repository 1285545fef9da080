r"""Pseudo-arclength continuation of the zero set of an underdetermined map, with test functions.

A *problem* is an object with

* ``dim`` (number of unknowns ``u``) and ``weights`` (float64[dim]): the arclength is measured in the
  weighted norm :math:`\|u\|_W^2 = \sum_i W_i u_i^2` (weights 0 leave auxiliary unknowns, such as
  eigenvectors, out of the step length);
* ``F(u)`` -> float64[dim - 1] and ``DF(u)`` -> float64[dim - 1, dim] (dense) or a sparse matrix;
* ``solve(DF, row, rhs)``: the solution of the bordered system :math:`[DF; row^\top] x = rhs`;
* ``test_names`` and ``tests(u, t)`` -> float64[len(test_names)] (NaN where a test is undefined);
  ``confirm(kind, u)`` -> bool, a check of a located zero (e.g. that a Hopf pair is really complex);
* ``update(u, t)``, called after each accepted step to refresh reference vectors (bordering vectors,
  phase references) that the equations depend on;
* ``param_slots`` (indices of the continuation parameters in ``u``);
* optionally ``stop(u)`` -> str or None, a reason to end the curve after an accepted point.

:func:`trace` follows the curve from a point, with the steps of :func:`continue_branch` (Newton on the
bordered system, step-size control, rejection of jumps), and locates the sign changes of the tests by
Brent's method in the arclength of a step, correcting every trial point back onto the curve.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np
from scipy.optimize import brentq

from ..errors import InvalidParameterError
from ._fixed_points import _solve_linear


def dense_solve(DF: np.ndarray, row: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve ``[DF; row] x = rhs`` (least squares if the matrix is singular to working precision)."""
    return _solve_linear(np.vstack([DF, row]), rhs)


@dataclass
class Trace:
    """Raw result of :func:`trace`: accepted points, their tangents and tests, located special points."""

    points: list[np.ndarray] = field(default_factory=list)
    tangents: list[np.ndarray] = field(default_factory=list)
    specials: list[tuple[int, str]] = field(default_factory=list)  # (index into points, kind)
    stop_reason: str = "max_points"


def _wdot(w: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sum(w * a * b))


def correct(prob, v: np.ndarray, t: np.ndarray, *, tol: float, max_newton: int,
            fixed: tuple[int, float] | None = None) -> tuple[np.ndarray, int, bool]:
    """Newton on ``[F(w) = 0, t·W(w - v) = 0]`` from ``v`` (or, with ``fixed=(k, value)``, on
    ``[F(w) = 0, w_k = value]``); returns (w, iterations, converged)."""
    w = v.copy()
    row = prob.weights * t if fixed is None else np.eye(prob.dim)[fixed[0]]
    scale = lambda x: 1.0 + float(np.max(np.abs(x)))  # noqa: E731
    for it in range(1, max_newton + 1):
        F = prob.F(w)
        if not np.all(np.isfinite(F)):
            return w, it, False
        last = float(row @ (w - v)) if fixed is None else w[fixed[0]] - fixed[1]
        dw = prob.solve(prob.DF(w), row, -np.r_[F, last])
        if not np.all(np.isfinite(dw)):
            return w, it, False
        w = w + dw
        step = float(np.max(np.abs(dw)))
        if step <= 1e-12 * scale(w) or step <= 1e-8 * scale(w) and np.max(np.abs(prob.F(w))) <= tol:
            res = prob.F(w)
            return w, it, bool(np.all(np.isfinite(res)) and np.max(np.abs(res)) <= 10 * tol)
    return w, max_newton, False


def tangent(prob, u: np.ndarray, t_ref: np.ndarray) -> np.ndarray:
    """The unit (weighted norm) tangent at ``u`` oriented along ``t_ref``."""
    t = prob.solve(prob.DF(u), prob.weights * t_ref, np.r_[np.zeros(prob.dim - 1), 1.0])
    return t / np.sqrt(_wdot(prob.weights, t, t))


def null_tangent(prob, u: np.ndarray, slot: int, direction: float) -> np.ndarray:
    """The tangent at a starting point (null vector of ``DF``), oriented so that ``t[slot]`` has the sign of
    ``direction`` (or, when ``t[slot]`` vanishes, the other parameter slot)."""
    DF = prob.DF(u)
    DF = DF.toarray() if hasattr(DF, "toarray") else DF
    t = np.linalg.svd(DF)[2][-1]
    t = t / np.sqrt(_wdot(prob.weights, t, t))
    key = t[slot]
    if abs(key) < 1e-9:
        others = [s for s in prob.param_slots if s != slot]
        key = t[others[0]] if others else key
    return -t if key * direction < 0 else t


def gauss_newton(prob, u: np.ndarray, *, tol: float, max_iter: int = 50) -> tuple[np.ndarray, bool]:
    """Minimum-norm Newton steps onto ``F = 0`` from a guess off the curve (the starting correction)."""
    u = u.copy()
    for _ in range(max_iter):
        F = prob.F(u)
        if not np.all(np.isfinite(F)):
            return u, False
        DF = prob.DF(u)
        DF = DF.toarray() if hasattr(DF, "toarray") else DF
        du = np.linalg.lstsq(DF, -F, rcond=None)[0]
        u = u + du
        if np.max(np.abs(du)) <= 1e-13 * (1.0 + np.max(np.abs(u))):
            break
    res = prob.F(u)
    return u, bool(np.all(np.isfinite(res)) and np.max(np.abs(res)) <= tol)


def trace(prob, u0: np.ndarray, t0: np.ndarray, *, ds: float, ds_min: float, ds_max: float, max_points: int,
          tol: float, max_newton: int, bounds: Mapping[int, tuple[float, float]], y_slots: np.ndarray,
          y_max: float, detect: tuple[str, ...], locate_tol: float, closed_check: bool = True) -> Trace:
    """Follow the curve from ``u0`` along ``t0`` (see the module docstring).

    ``bounds`` maps slots of ``u`` to ``(lo, hi)``: leaving one ends the curve with a last point exactly on
    the bound. ``y_slots``: slots compared with ``y_max`` (stop "diverged").
    """
    out = Trace()
    watch = np.array([k in detect for k in prob.test_names], dtype=bool)
    u, t = u0.copy(), t0.copy()
    psi = prob.tests(u, t)
    out.points.append(u.copy())
    out.tangents.append(t.copy())
    h = ds
    steps = 0
    while steps < max_points:
        w, iters, ok = correct(prob, u + h * t, t, tol=tol, max_newton=max_newton)
        t_new = tangent(prob, w, t) if ok else t
        dist = np.sqrt(_wdot(prob.weights, w - u, w - u)) if ok else np.inf
        if ok and (dist > 2.0 * h or _wdot(prob.weights, t_new, t) < 0.9):
            ok = False
        if not ok:
            if h <= ds_min:
                out.stop_reason = "ds_min"
                break
            h = max(h / 2.0, ds_min)
            continue
        steps += 1
        crossed = [(k, lo if w[k] < lo else hi) for k, (lo, hi) in bounds.items() if not lo <= w[k] <= hi]
        if crossed:
            # the first bound crossed along the step: place the last point on it (unless u is already there)
            k, b = min(crossed, key=lambda kb: (kb[1] - u[kb[0]]) / (w[kb[0]] - u[kb[0]]))
            if not bounds[k][0] < u[k] < bounds[k][1]:  # the start sits on the bound (to rounding)
                out.stop_reason = "bounds"
                break
            frac = (b - u[k]) / (w[k] - u[k])
            w_end, _, ok_end = correct(prob, u + frac * (w - u), t, tol=tol, max_newton=max(max_newton, 20),
                                       fixed=(k, b))
            if ok_end:
                t_end = tangent(prob, w_end, t)
                _locate(prob, u, t, w_end, psi, prob.tests(w_end, t_end), watch, tol, locate_tol, out)
                out.points.append(w_end)
                out.tangents.append(t_end)
            out.stop_reason = "bounds"
            break
        psi_new = prob.tests(w, t_new)
        _locate(prob, u, t, w, psi, psi_new, watch, tol, locate_tol, out)
        out.points.append(w.copy())
        out.tangents.append(t_new.copy())
        prob.update(w, t_new)
        u, t, psi = w, t_new, prob.tests(w, t_new)
        if np.max(np.abs(w[y_slots])) > y_max:
            out.stop_reason = "diverged"
            break
        reason = prob.stop(w) if hasattr(prob, "stop") else None
        if reason:
            out.stop_reason = reason
            break
        if closed_check and steps > 5 and np.sqrt(_wdot(prob.weights, w - u0, w - u0)) < 0.75 * h \
                and _wdot(prob.weights, t, t0) > 0:
            out.points.append(u0.copy())  # the curve is a closed loop: end on its first point
            out.tangents.append(t0.copy())
            out.stop_reason = "closed"
            break
        if iters <= 3:
            h = min(h * 1.5, ds_max)
        elif iters >= 6:
            h = max(h / 2.0, ds_min)
    return out


def locate_sign_change(correct_at, test: Callable[[np.ndarray], float], u: np.ndarray, w: np.ndarray, t: np.ndarray,
                       span: float, psi_a: float, psi_b: float, locate_tol: float) -> tuple[float, np.ndarray] | None:
    """``(s, v)``: the arclength ``s`` in ``[0, span]`` along ``t`` from ``u`` where ``test`` (``psi_a`` at ``u``,
    ``psi_b`` at ``w``, of opposite signs) changes sign, and the point ``v`` on the curve there; ``None`` if
    ``brentq`` fails.

    ``correct_at(x)`` returns ``(v, ok)``: ``x`` corrected onto the curve. Each correction starts from the nearest
    point already on the curve, shifted along ``t``, so that Newton still converges close to a branch point
    (where the bordered matrix becomes singular).
    """
    known = {0.0: u, span: w}

    def on_curve(s: float) -> np.ndarray:
        near = min(known, key=lambda k: abs(k - s))
        v, ok = correct_at(known[near] + (s - near) * t)
        if ok:
            known[s] = v
        return v

    def g(s: float) -> float:
        if s <= 0.0:
            return psi_a
        if s >= span:
            return psi_b
        return test(on_curve(s))

    try:
        s = brentq(g, 0.0, span, xtol=locate_tol, rtol=4 * np.finfo(float).eps, maxiter=200)
    except (ValueError, RuntimeError):
        return None
    return s, on_curve(s) if 0.0 < s < span else (u if s <= 0.0 else w)


def _locate(prob, u: np.ndarray, t: np.ndarray, w: np.ndarray, psi_a: np.ndarray, psi_b: np.ndarray,
            watch: np.ndarray, tol: float, locate_tol: float, out: Trace) -> None:
    """Locate the watched sign changes of the tests between ``u`` and ``w``; append the points to ``out``."""
    with np.errstate(invalid="ignore"):
        changed = watch & (np.sign(psi_a) * np.sign(psi_b) < 0)
    if not np.any(changed):
        return
    span = _wdot(prob.weights, t, w - u)
    found = []
    for idx in np.flatnonzero(changed):
        def test(v: np.ndarray, idx=idx) -> float:
            val = float(prob.tests(v, tangent(prob, v, t))[idx])
            return val if np.isfinite(val) else float(psi_a[idx])

        located = locate_sign_change(lambda x: correct(prob, x, t, tol=tol, max_newton=50)[::2], test, u, w, t,
                                     span, float(psi_a[idx]), float(psi_b[idx]), locate_tol)
        if located is None:
            continue
        s, v = located
        kind = prob.test_names[idx]
        if prob.confirm(kind, v):
            found.append((s, kind, v))
    for s, kind, v in sorted(found, key=lambda r: r[0]):
        out.specials.append((len(out.points), kind))
        out.points.append(v)
        out.tangents.append(tangent(prob, v, t))


def both_ways(run, u0: np.ndarray, t0: np.ndarray) -> Trace:
    """``run(u0, t)`` along ``-t0`` and ``t0``, joined into one trace through ``u0`` (backward half reversed)."""
    back = run(u0, -t0)
    fwd = run(u0, t0)
    m = len(back.points)
    joined = Trace(points=back.points[::-1] + fwd.points[1:],
                   tangents=[-x for x in back.tangents[::-1]] + fwd.tangents[1:],
                   stop_reason=f"{back.stop_reason} / {fwd.stop_reason}")
    joined.specials = [(m - 1 - i, k) for i, k in back.specials[::-1]] + [(m - 1 + i, k) for i, k in fwd.specials]
    return joined


def inside(value: float, lo: float, hi: float) -> bool:
    """``lo <= value <= hi`` up to rounding (a start located by Newton on a bound may overshoot it by ulps)."""
    slack = 1e-9 * (1.0 + abs(value))
    return lo - slack <= value <= hi + slack


def check_direction(direction: Any) -> int:
    if direction not in (1, -1, 0):
        raise InvalidParameterError(f"direction must be +1, -1 or 0 (both ways), got {direction!r}")
    return int(direction)


__all__ = ["Trace", "trace", "correct", "tangent", "null_tangent", "gauss_newton", "both_ways", "dense_solve"]
