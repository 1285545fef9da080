r"""Pseudo-arclength continuation of equilibria in one parameter, with fold, branch-point and Hopf detection.

The branch is a curve :math:`u(s) = (y(s), \lambda(s))` with :math:`f(y; \lambda) = 0`. Each step predicts
along the unit tangent :math:`t` and corrects with Newton on the bordered system
:math:`[f(u) = 0,\; t\cdot(u - u_\mathrm{pred}) = 0]`. Three test functions are watched between steps:

* fold: the parameter component :math:`t_\lambda` of the tangent changes sign;
* branch point (transcritical / pitchfork): :math:`\det\begin{pmatrix}f_y & f_\lambda\\ t^\top\end{pmatrix}`
  changes sign (it stays non-zero at folds, so a fold with it is reported as a branch point);
* Hopf: :math:`\prod_{i<j}(\mu_i + \mu_j)` over the Jacobian eigenvalues (the determinant of the
  bialternate product :math:`2 f_y \odot I`) changes sign while a complex pair crosses the imaginary axis.

Each sign change is located by Brent's method in the arclength of the step, correcting back onto the
branch at every trial point, so special points sit on the branch to Newton accuracy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .._checks import check_int, check_range
from ..errors import InvalidParameterError
from ._arclength import locate_sign_change
from ._fixed_points import (FixedPoint, _Evaluator, _frozen, _solve_linear, _sorted_eigenvalues, classify_eigenvalues,
                            newton, require_finite_jacobian)

SPECIAL_KINDS = ("fold", "branch_point", "hopf")


@dataclass(frozen=True, eq=False)
class SpecialPoint:
    """A located bifurcation point on a :class:`Branch`.

    Attributes
    ----------
    kind : {"fold", "branch_point", "hopf"}
    param_value : float
    y : float64[n_states]
    index : int
        Position of the point in the branch arrays (special points are inserted into the branch).
    eigenvalues : complex128[n_states]
    """

    kind: str
    param_value: float
    y: np.ndarray
    index: int = -1
    eigenvalues: np.ndarray = field(default_factory=lambda: np.empty(0, np.complex128))

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "param_value": float(self.param_value), "y": [float(v) for v in self.y],
                "index": int(self.index),
                "eigenvalues": [[float(e.real), float(e.imag)] for e in self.eigenvalues]}

    def __repr__(self) -> str:
        ys = ", ".join(f"{v:.6g}" for v in self.y)
        return f"SpecialPoint({self.kind} at {self.param_value:.10g}, y=[{ys}])"


@dataclass(frozen=True, eq=False)
class Branch:
    """A continued branch of equilibria.

    Attributes
    ----------
    param : str
        The continuation parameter.
    param_values : float64[m]
    states : float64[m, n_states]
    stable : bool[m]
    eigenvalues : complex128[m, n_states]
        Sorted by decreasing real part at each point.
    special_points : tuple of SpecialPoint
    state_names : tuple of str
    params : dict
        The other parameters (by name) held fixed.
    stop_reason : str
        Why continuation ended (``"bounds"``, ``"max_points"``, ``"ds_min"``, ``"diverged"``).
    """

    param: str
    param_values: np.ndarray
    states: np.ndarray
    stable: np.ndarray
    eigenvalues: np.ndarray
    special_points: tuple[SpecialPoint, ...] = ()
    state_names: tuple[str, ...] = ()
    params: Mapping[str, float] = field(default_factory=dict)
    stop_reason: str = ""

    def __len__(self) -> int:
        return int(self.param_values.size)

    def y_of(self, name: str) -> np.ndarray:
        """The branch of state ``name`` (float64[m])."""
        if name not in self.state_names:
            raise KeyError(f"unknown state {name!r}; states are {list(self.state_names)}")
        return self.states[:, self.state_names.index(name)]

    def special(self, kind: str) -> tuple[SpecialPoint, ...]:
        """The special points of one kind."""
        return tuple(sp for sp in self.special_points if sp.kind == kind)

    def save(self, stem) -> tuple[Path, Path]:
        """Write ``<stem>.npz`` (arrays) and ``<stem>.json`` (parameters, special points, provenance)."""
        from .._io import save_result

        arrays = {"param_values": self.param_values, "states": self.states, "stable": self.stable,
                  "eigenvalues": self.eigenvalues}
        meta = {"kind": "Branch", "param": self.param, "state_names": list(self.state_names),
                "params": dict(self.params), "stop_reason": self.stop_reason,
                "special_points": [sp.as_dict() for sp in self.special_points]}
        return save_result(stem, arrays, meta)

    @classmethod
    def load(cls, stem) -> "Branch":
        """Read a branch written by :meth:`save`."""
        stem = Path(stem)
        meta = json.loads(stem.with_suffix(".json").read_text())
        if meta.get("kind") != "Branch":
            raise InvalidParameterError(f"{stem.with_suffix('.json')} does not hold a Branch")
        with np.load(stem.with_suffix(".npz")) as z:
            arrays = {k: z[k] for k in z.files}
        sps = tuple(SpecialPoint(d["kind"], d["param_value"], _frozen(d["y"]), d["index"],
                                 _frozen([complex(*e) for e in d["eigenvalues"]], np.complex128))
                    for d in meta["special_points"])
        return cls(meta["param"], _frozen(arrays["param_values"]), _frozen(arrays["states"]),
                   _frozen(arrays["stable"], bool), _frozen(arrays["eigenvalues"], np.complex128), sps,
                   tuple(meta["state_names"]), meta["params"], meta["stop_reason"])

    def __repr__(self) -> str:
        lo, hi = (float(np.min(self.param_values)), float(np.max(self.param_values))) if len(self) else (np.nan,) * 2
        return (f"Branch({self.param} in [{lo:.6g}, {hi:.6g}], {len(self)} points, "
                f"special={list(self.special_points)}, stop={self.stop_reason!r})")

    def _repr_html_(self) -> str:
        """Stability along the branch and its special points as HTML (Jupyter's rich display)."""
        from .._display import branch_html

        return branch_html(self)


class _Problem:
    """The extended map ``F(u) = f(y; λ)`` of ``u = (y, λ)`` and its derivative ``[f_y, f_λ]``."""

    def __init__(self, csys, params, param: str, tol: float, max_newton: int):
        if param not in csys.param_names:
            raise InvalidParameterError(f"param {param!r} is not a parameter of {csys.system.name!r}; "
                                        f"its parameters are {list(csys.param_names)}")
        self.ev = _Evaluator(csys, params)
        self.k = csys.param_names.index(param)
        self.n = csys.n_states
        self.tol = tol
        self.max_newton = max_newton
        self._p = self.ev.p.copy()

    def _params(self, lam: float) -> np.ndarray:
        self._p[self.k] = lam
        return self._p

    def F(self, u: np.ndarray) -> np.ndarray:
        return self.ev.f(u[:-1], self._params(u[-1]))

    def J_y(self, u: np.ndarray) -> np.ndarray:
        return self.ev.J(u[:-1], self._params(u[-1]))

    def Fu(self, u: np.ndarray) -> np.ndarray:
        """``[f_y, f_λ]`` (float64[n, n+1]); ``f_λ`` by central differences (step ~ eps^(1/3))."""
        lam = u[-1]
        h = 6e-6 * (1.0 + abs(lam))
        y = u[:-1]
        f_lam = (self.ev.f(y, self._params(lam + h)) - self.ev.f(y, self._params(lam - h))) / (2.0 * h)
        return np.column_stack([self.J_y(u), f_lam])

    def tangent(self, u: np.ndarray, t_ref: np.ndarray | None, direction: float = 1.0) -> np.ndarray:
        """Unit tangent at ``u``, oriented by ``t_ref`` (or, at the start, so that ``sign(t_λ) = direction``)."""
        A = self.Fu(u)
        if t_ref is None:
            t = np.linalg.svd(A)[2][-1]
            if t[-1] * direction < 0:
                t = -t
        else:
            t = _solve_linear(np.vstack([A, t_ref]), np.r_[np.zeros(self.n), 1.0])
        return t / np.linalg.norm(t)

    def correct(self, v: np.ndarray, t: np.ndarray, max_newton: int | None = None) -> tuple[np.ndarray, int, bool]:
        """Newton on ``[F(w) = 0, t·(w - v) = 0]`` from the predictor ``v``; returns (w, iterations, ok)."""
        w = v.copy()
        max_newton = max_newton or self.max_newton
        for it in range(1, max_newton + 1):
            F = self.F(w)
            if not np.all(np.isfinite(F)):
                return w, it, False
            A = np.vstack([self.Fu(w), t])
            dw = _solve_linear(A, -np.r_[F, t @ (w - v)])
            w = w + dw
            if np.max(np.abs(dw)) <= 1e-12 * (1.0 + np.max(np.abs(w))) or (
                    np.max(np.abs(self.F(w))) <= self.tol and np.max(np.abs(dw)) <= 1e-8 * (1.0 + np.max(np.abs(w)))):
                return w, it, bool(np.max(np.abs(self.F(w))) <= self.tol * 10)
        return w, max_newton, False

    def at_param(self, y0: np.ndarray, lam: float) -> tuple[np.ndarray, bool]:
        """Natural Newton in ``y`` at fixed ``λ``."""
        p = self._params(lam).copy()
        y, _, ok, _ = newton(lambda y: self.ev.f(y, p), lambda y: self.ev.J(y, p), y0, tol=self.tol)
        return y, ok

    def tests(self, u: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Test functions (fold, branch point, Hopf) and the eigenvalues at ``u``."""
        Jy = self.J_y(u)
        eig = _sorted_eigenvalues(Jy)
        bp = np.linalg.det(np.vstack([self.Fu(u), t]))
        if self.n >= 2:
            i, j = np.triu_indices(self.n, 1)
            hopf = float(np.real(np.prod(eig[i] + eig[j])))
        else:
            hopf = 1.0
        return np.array([t[-1], bp, hopf]), eig


def _is_hopf(eig: np.ndarray, eig_tol: float) -> bool:
    """A complex pair on the imaginary axis (to a loose tolerance) rather than a neutral saddle."""
    scale = max(1.0, float(np.max(np.abs(eig))))
    pair = np.abs(eig.imag) > 1e-6 * scale
    return bool(np.any(pair)) and float(np.min(np.abs(eig.real[pair]))) <= max(eig_tol, 1e-6) * scale


def continue_branch(csys, start, params, param: str = "r", bounds: tuple[float, float] | None = None, *,
                    ds: float = 0.01, ds_min: float = 1e-6, ds_max: float = 0.1, max_points: int = 2000,
                    direction: int = +1, tol: float = 1e-10, max_newton: int = 10, eig_tol: float = 1e-8,
                    detect: tuple[str, ...] = SPECIAL_KINDS, locate_tol: float = 1e-13,
                    y_max: float = 1e6) -> Branch:
    """Continue a branch of equilibria in one parameter by pseudo-arclength continuation.

    Parameters
    ----------
    csys : CompiledSystem
        Compiled with ``jac=True``.
    start : FixedPoint, float64[n_states] or mapping state -> value
        A point on (or near) the branch at ``params[param]``; it is first corrected by Newton.
    params : mapping name -> value or float64[n_params]
        All parameters; ``params[param]`` is where the branch starts.
    param : str
        The continuation parameter.
    bounds : (lo, hi), optional
        Stop when the parameter leaves this interval; the last point is placed exactly on the bound.
    ds, ds_min, ds_max : float
        Initial, smallest and largest arclength step (in the joint ``(y, λ)`` space).
    max_points : int
        Maximum number of accepted continuation steps.
    direction : {+1, -1, 0}
        Initial direction of the parameter; 0 continues both ways from the start and joins the two halves
        (in increasing-parameter order near the start).
    tol : float
        Newton residual ``max |f|``.
    eig_tol : float
        Tolerance of the stability classification.
    detect : tuple of str
        Which of ``"fold"``, ``"branch_point"``, ``"hopf"`` to detect and locate.
    locate_tol : float
        Arclength tolerance of the location of special points.
    y_max : float
        Stop when ``max |y|`` exceeds it.

    Returns
    -------
    Branch

    Raises
    ------
    InvalidParameterError
        On an unknown parameter, bad step sizes or bounds, or a start that Newton cannot converge.
    """
    ds = check_range("ds", ds, 0.0, low_open=True)
    ds_min = check_range("ds_min", ds_min, 0.0, ds, low_open=True)
    ds_max = check_range("ds_max", ds_max, ds)
    max_points = check_int("max_points", max_points, 1)
    if direction not in (1, -1, 0):
        raise InvalidParameterError(f"direction must be +1, -1 or 0 (both ways), got {direction!r}")
    if direction == 0:
        kw = dict(ds=ds, ds_min=ds_min, ds_max=ds_max, max_points=max_points, tol=tol, max_newton=max_newton,
                  eig_tol=eig_tol, detect=detect, locate_tol=locate_tol, y_max=y_max)
        back = continue_branch(csys, start, params, param, bounds, direction=-1, **kw)
        fwd = continue_branch(csys, back.states[0], params, param, bounds, direction=+1, **kw)
        return _join(back, fwd)
    unknown = sorted(set(detect) - set(SPECIAL_KINDS))
    if unknown:
        raise InvalidParameterError(f"detect: unknown kinds {unknown}; choose from {SPECIAL_KINDS}")
    prob = _Problem(csys, params, param, check_range("tol", tol, 0.0, 1.0, low_open=True),
                    check_int("max_newton", max_newton, 1))
    lam0 = float(prob.ev.p[prob.k])
    lo, hi = -np.inf, np.inf
    if bounds is not None:
        lo, hi = (check_range(f"bounds[{i}]", b) for i, b in enumerate(bounds))
        if not lo < hi:
            raise InvalidParameterError(f"bounds must satisfy lo < hi, got {bounds!r}")
        if not lo <= lam0 <= hi:
            raise InvalidParameterError(f"the start value {param}={lam0} lies outside bounds [{lo}, {hi}]")
    if isinstance(start, FixedPoint):
        y0 = np.array(start.y, dtype=np.float64)
    elif isinstance(start, Mapping):
        y0 = csys.pack_state(start)
    else:
        y0 = np.asarray(start, dtype=np.float64).reshape(-1)
        if y0.size != prob.n or not np.all(np.isfinite(y0)):
            raise InvalidParameterError(f"start must be finite with {prob.n} entries {list(csys.state_names)}")
    y0, ok = prob.at_param(y0, lam0)
    if not ok:
        raise InvalidParameterError(f"start: Newton did not converge to an equilibrium near {start!r} at "
                                    f"{param}={lam0}; give a point closer to the branch")
    watch = np.array([k in detect for k in SPECIAL_KINDS])

    pts: list[np.ndarray] = []
    eigs: list[np.ndarray] = []
    specials: list[SpecialPoint] = []

    def record(u: np.ndarray, eig: np.ndarray) -> None:
        pts.append(u.copy())
        eigs.append(eig)

    u = np.r_[y0, lam0]
    require_finite_jacobian(prob.Fu(u), y0, f"{param}={lam0}", "continuation")
    t = prob.tangent(u, None, direction)
    psi, eig = prob.tests(u, t)
    record(u, eig)
    h = ds
    reason = "max_points"
    steps = 0
    while steps < max_points:
        w, iters, ok = prob.correct(u + h * t, t)
        t_new = prob.tangent(w, t) if ok else t
        # reject steps that jump (corrector far off the predictor, or a sharp turn of the tangent)
        if ok and (not np.all(np.isfinite(t_new)) or np.linalg.norm(w - u) > 2.0 * h or t_new @ t < 0.9):
            ok = False
        if not ok:
            if h <= ds_min:
                reason = "ds_min"
                break
            h = max(h / 2.0, ds_min)
            continue
        steps += 1
        if not (lo <= w[-1] <= hi):
            bound = hi if w[-1] > hi else lo
            frac = (bound - u[-1]) / (w[-1] - u[-1])
            y_end, ok_end = prob.at_param(u[:-1] + frac * (w[:-1] - u[:-1]), bound)
            if ok_end and abs(bound - u[-1]) > 1e-12 * (1.0 + abs(bound)):  # (not already on the bound)
                u_end = np.r_[y_end, bound]
                t_end = prob.tangent(u_end, t)
                psi_end, eig_end = prob.tests(u_end, t_end)
                _locate_between(prob, u, t, u_end, psi, psi_end, watch, eig_tol, locate_tol, record, specials,
                                pts, exact_end=True)
                record(u_end, eig_end)
            reason = "bounds"
            break
        psi_new, eig_new = prob.tests(w, t_new)
        _locate_between(prob, u, t, w, psi, psi_new, watch, eig_tol, locate_tol, record, specials, pts, h=h)
        record(w, eig_new)
        u, t, psi = w, t_new, psi_new
        if np.max(np.abs(w[:-1])) > y_max:
            reason = "diverged"
            break
        if iters <= 3:
            h = min(h * 1.5, ds_max)
        elif iters >= 6:
            h = max(h / 2.0, ds_min)

    U = np.array(pts)
    E = np.array(eigs)
    stable = np.array([classify_eigenvalues(e, eig_tol)[1] for e in E], dtype=bool)
    others = {n: float(v) for n, v in zip(csys.param_names, prob.ev.p) if n != param}
    return Branch(param, _frozen(U[:, -1]), _frozen(U[:, :-1]), _frozen(stable, bool), _frozen(E, np.complex128),
                  tuple(specials), csys.state_names, others, reason)


def _join(back: Branch, fwd: Branch) -> Branch:
    """One branch from two halves that start at the same point: ``back`` reversed, then ``fwd``."""
    m = len(back)

    def cat(a: np.ndarray, b: np.ndarray, dtype) -> np.ndarray:
        return _frozen(np.concatenate([a[::-1], b[1:]]), dtype)

    sps = [SpecialPoint(sp.kind, sp.param_value, sp.y, m - 1 - sp.index, sp.eigenvalues) for sp in back.special_points]
    sps = sps[::-1] + [SpecialPoint(sp.kind, sp.param_value, sp.y, m - 1 + sp.index, sp.eigenvalues)
                       for sp in fwd.special_points]
    return Branch(fwd.param, cat(back.param_values, fwd.param_values, np.float64),
                  cat(back.states, fwd.states, np.float64), cat(back.stable, fwd.stable, bool),
                  cat(back.eigenvalues, fwd.eigenvalues, np.complex128), tuple(sps), fwd.state_names, fwd.params,
                  f"{back.stop_reason} / {fwd.stop_reason}")


def _locate_between(prob: _Problem, u: np.ndarray, t: np.ndarray, w: np.ndarray, psi_a: np.ndarray,
                    psi_b: np.ndarray, watch: np.ndarray, eig_tol: float, locate_tol: float, record, specials,
                    pts, h: float | None = None, exact_end: bool = False) -> None:
    """Locate every watched test-function sign change between ``u`` and ``w`` and record the points."""
    changed = watch & (np.sign(psi_a) * np.sign(psi_b) < 0)
    if not np.any(changed):
        return
    # a branch point also flips the fold test on a symmetric branch: report it once, as a branch point
    if changed[1]:
        changed[0] = False
    # arclength of the step, measured along the predictor direction t (the corrector hyperplane)
    span = float(t @ (w - u)) if h is None else h
    found = []
    for idx in np.flatnonzero(changed):
        located = locate_sign_change(lambda x: prob.correct(x, t, max_newton=50)[::2],
                                     lambda v, idx=idx: float(prob.tests(v, prob.tangent(v, t))[0][idx]), u, w, t,
                                     span, float(psi_a[idx]), float(psi_b[idx]), locate_tol)
        if located is None:
            continue
        s, v = located
        if exact_end and s >= span:
            v = w
        psi_v, eig = prob.tests(v, prob.tangent(v, t))
        if not abs(psi_v[idx]) <= min(abs(psi_a[idx]), abs(psi_b[idx])):
            continue  # the sign changed through a pole of f_y (a singular point of f), not through a zero
        kind = SPECIAL_KINDS[idx]
        if kind == "hopf" and not _is_hopf(eig, eig_tol):
            continue  # a neutral saddle (real pair summing to zero) is not a bifurcation
        found.append((s, kind, v, eig))
    for s, kind, v, eig in sorted(found, key=lambda r: r[0]):
        specials.append(SpecialPoint(kind, float(v[-1]), _frozen(v[:-1]), len(pts), _frozen(eig, np.complex128)))
        record(v, eig)


__all__ = ["Branch", "SpecialPoint", "SPECIAL_KINDS", "continue_branch"]
