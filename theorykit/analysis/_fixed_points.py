"""Equilibria of a compiled system: damped multi-start Newton, linearisation and stability classes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from .._checks import check_finite_array, check_int, check_range
from .._random import as_generator
from ..errors import InvalidParameterError

#: every value ``FixedPoint.kind`` can take
KINDS = ("stable node", "stable focus", "saddle", "unstable node", "unstable focus", "center", "non-hyperbolic")


def _frozen(a: Any, dtype=np.float64) -> np.ndarray:
    arr = np.array(a, dtype=dtype)
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class FixedPoint:
    """An equilibrium ``f(y*) = 0`` with its linearisation.

    Attributes
    ----------
    y : float64[n_states]
        The equilibrium.
    eigenvalues : complex128[n_states]
        Eigenvalues of the Jacobian at ``y``, sorted by decreasing real part.
    kind : str
        One of :data:`KINDS`. ``"center"`` and ``"non-hyperbolic"`` mean some eigenvalue has
        ``|Re| <= eig_tol`` (linear stability is then inconclusive).
    stable : bool
        Every eigenvalue has real part ``< -eig_tol`` (linearly asymptotically stable).
    residual : float
        ``max |f(y)|``.
    jacobian : float64[n_states, n_states]
        ``∂f/∂y`` at ``y``.
    state_names : tuple of str
    """

    y: np.ndarray
    eigenvalues: np.ndarray
    kind: str
    stable: bool
    residual: float
    jacobian: np.ndarray
    state_names: tuple[str, ...] = ()

    @property
    def hyperbolic(self) -> bool:
        return self.kind not in ("center", "non-hyperbolic")

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly summary (state by name, eigenvalues as [re, im] pairs)."""
        names = self.state_names or tuple(f"y{i}" for i in range(self.y.size))
        return {"y": {n: float(v) for n, v in zip(names, self.y)},
                "eigenvalues": [[float(e.real), float(e.imag)] for e in self.eigenvalues],
                "kind": self.kind, "stable": bool(self.stable), "residual": float(self.residual)}

    def __repr__(self) -> str:
        names = self.state_names or tuple(f"y{i}" for i in range(self.y.size))
        ys = ", ".join(f"{n}={v:.6g}" for n, v in zip(names, self.y))
        ev = ", ".join(f"{e.real:.4g}{e.imag:+.4g}j" if e.imag else f"{e.real:.4g}" for e in self.eigenvalues)
        return f"FixedPoint({ys}; {self.kind}; eigenvalues [{ev}])"

    def _repr_html_(self) -> str:
        """Location, stability class and eigenvalues as HTML (Jupyter's rich display)."""
        from .._display import fixed_point_html

        return fixed_point_html(self)


def classify_eigenvalues(eigenvalues: Sequence[complex], eig_tol: float = 1e-8) -> tuple[str, bool]:
    """Stability class of an equilibrium from its Jacobian eigenvalues.

    Parameters
    ----------
    eigenvalues : complex[n]
    eig_tol : float
        Real parts with ``|Re| <= eig_tol * max(1, max|λ|)`` count as zero (non-hyperbolic); imaginary
        parts below the same threshold count as real.

    Returns
    -------
    (kind, stable) : (str, bool)
        ``kind`` is one of :data:`KINDS`.
    """
    ev = np.asarray(eigenvalues, dtype=np.complex128).reshape(-1)
    if ev.size == 0:
        raise InvalidParameterError("eigenvalues must not be empty")
    scale = eig_tol * max(1.0, float(np.max(np.abs(ev))))
    re, im = ev.real, ev.imag
    complex_ = bool(np.any(np.abs(im) > scale))
    if np.any(np.abs(re) <= scale):
        if np.all(np.abs(re) <= scale) and complex_:
            return "center", False
        return "non-hyperbolic", False
    if np.all(re < 0):
        return ("stable focus" if complex_ else "stable node"), True
    if np.all(re > 0):
        return ("unstable focus" if complex_ else "unstable node"), False
    return "saddle", False


def _sorted_eigenvalues(J: np.ndarray) -> np.ndarray:
    ev = np.linalg.eigvals(J).astype(np.complex128)
    return ev[np.lexsort((-ev.imag, -ev.real))]


class _Evaluator:
    """Python-level access to a compiled system's ``rhs_into`` / ``jac_into`` with reused buffers."""

    def __init__(self, csys, params):
        if csys.jac_into is None:
            raise InvalidParameterError("the system was compiled with jac=False; fixed points need the Jacobian "
                                        "(compile_system(system, jac=True))")
        self.csys = csys
        self.n = csys.n_states
        self.p = np.ascontiguousarray(csys.pack_params(params), dtype=np.float64)
        self._f = np.empty(self.n)
        self._J = np.empty((self.n, self.n))

    def f(self, y: np.ndarray, p: np.ndarray | None = None) -> np.ndarray:
        self.csys.rhs_into(0.0, np.ascontiguousarray(y, dtype=np.float64), self.p if p is None else p, self._f)
        return self._f.copy()

    def J(self, y: np.ndarray, p: np.ndarray | None = None) -> np.ndarray:
        self.csys.jac_into(0.0, np.ascontiguousarray(y, dtype=np.float64), self.p if p is None else p, self._J)
        return self._J.copy()


def _solve_linear(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    try:
        x = np.linalg.solve(A, b)
        if np.all(np.isfinite(x)):
            return x
    except np.linalg.LinAlgError:
        pass
    # singular Jacobian (e.g. exactly at a fold): the least-squares step still makes progress
    return np.linalg.lstsq(A, b, rcond=None)[0]


def newton(fun, jac, y0: np.ndarray, *, tol: float = 1e-10, max_iter: int = 100,
           y_max: float = 1e8) -> tuple[np.ndarray, float, bool, float]:
    """Damped Newton iteration for ``fun(y) = 0`` with a backtracking line search on ``|f|``.

    Parameters
    ----------
    fun, jac : callables ``y -> float64[n]`` and ``y -> float64[n, n]``
    y0 : float64[n]
    tol : float
        Converged when ``max |f| <= tol``. Iteration then goes on while the steps keep shrinking, so a
        simple root is polished to machine precision and a multiple root (where Newton converges only
        linearly) is approached as far as rounding allows.

    Returns
    -------
    (y, residual, converged, step)
        ``step`` is the max-norm of the last step, an estimate of the error of ``y``.
    """
    y = np.array(y0, dtype=np.float64)
    f = fun(y)
    res = float(np.max(np.abs(f))) if np.all(np.isfinite(f)) else np.inf
    last = np.inf
    for _ in range(max_iter):
        dy = _solve_linear(jac(y), -f)
        if not np.all(np.isfinite(dy)):
            break
        step = float(np.max(np.abs(dy)))
        if res <= tol and (step <= 1e-15 * (1.0 + float(np.max(np.abs(y)))) or step > 0.9 * last):
            last = min(last, step)  # a start that is already a root has the (tiny) step as its error
            break  # polished: the steps no longer shrink
        alpha = 1.0
        while True:
            y_try = y + alpha * dy
            f_try = fun(y_try)
            res_try = float(np.max(np.abs(f_try))) if np.all(np.isfinite(f_try)) else np.inf
            if res_try <= (1.0 - 1e-4 * alpha) * res or res_try <= tol:
                break
            alpha *= 0.5
            if alpha < 1e-8:
                break
        if not np.isfinite(res_try) or (alpha < 1e-8 and res_try > res):
            break
        y, f, res, last = y_try, f_try, res_try, alpha * step
        if np.max(np.abs(y)) > y_max:
            return y, res, False, last
    return y, res, res <= tol, last


def linearize(csys, y, params, *, eig_tol: float = 1e-8, _ev: _Evaluator | None = None) -> FixedPoint:
    """The :class:`FixedPoint` record (eigenvalues, class) of ``csys`` at the point ``y``.

    ``y`` is taken as given (no Newton correction); ``residual`` says how close it is to an equilibrium.
    """
    ev = _ev or _Evaluator(csys, params)
    y = csys.pack_state(y) if isinstance(y, Mapping) else check_finite_array("y", y, shape=(csys.n_states,))
    J = ev.J(y)
    eig = _sorted_eigenvalues(J)
    kind, stable = classify_eigenvalues(eig, eig_tol)
    res = float(np.max(np.abs(ev.f(y))))
    return FixedPoint(_frozen(y), _frozen(eig, np.complex128), kind, stable, res, _frozen(J), csys.state_names)


def _box(bounds: Any, csys) -> np.ndarray:
    """``bounds`` (``(lo, hi)``, ``[n_states, 2]`` or a mapping name -> (lo, hi)) as float64[n_states, 2]."""
    n = csys.n_states
    if isinstance(bounds, Mapping):
        unknown = sorted(set(bounds) - set(csys.state_names))
        if unknown:
            raise InvalidParameterError(f"bounds: {unknown} are not states; states are {list(csys.state_names)}")
        box = np.tile([-2.0, 2.0], (n, 1))
        for k, v in bounds.items():
            box[csys.state_names.index(k)] = check_finite_array(f"bounds[{k!r}]", v, shape=(2,))
    else:
        arr = check_finite_array("bounds", bounds)
        if arr.shape == (2,):
            box = np.tile(arr, (n, 1))
        elif arr.shape == (n, 2):
            box = arr.copy()
        else:
            raise InvalidParameterError(f"bounds must be (lo, hi), an array [n_states={n}, 2] or a mapping by "
                                        f"state name, got shape {arr.shape}")
    if np.any(box[:, 0] >= box[:, 1]):
        raise InvalidParameterError(f"bounds must have lo < hi for every state, got {box.tolist()}")
    return box


def _dedup(points: list[tuple[np.ndarray, float]], tol: float) -> list[np.ndarray]:
    """Merge roots closer than ``tol * (1 + |y|)`` or than a few times their error estimates; of each
    cluster keep the most accurate one (a multiple root is reached from many starts, each slightly off)."""
    kept: list[tuple[np.ndarray, float]] = []
    for y, err in sorted(points, key=lambda r: r[1]):
        if not any(np.max(np.abs(y - k)) <= max(tol * (1.0 + np.max(np.abs(k))), 10.0 * (err + e))
                   for k, e in kept):
            kept.append((y, err))
    return [y for y, _ in kept]


def find_fixed_points(csys, params=None, *, guesses=None, n_starts: int = 64,
                      bounds: Any = (-2.0, 2.0), seed: Any = 0, tol: float = 1e-10,
                      dedup_tol: float = 1e-6, eig_tol: float = 1e-8, max_iter: int = 100) -> tuple[FixedPoint, ...]:
    """Equilibria of a compiled system by damped Newton from many starts, with the compiled Jacobian.

    Parameters
    ----------
    csys : CompiledSystem
        Compiled with ``jac=True``. Time-dependent right-hand sides are evaluated at ``t = 0``.
    params : mapping name -> value or float64[n_params]
    guesses : float64[n_guess, n_states] or sequence of mappings, optional
        Starting points tried first; roots found from them are always kept.
    n_starts : int
        Extra starts drawn uniformly in ``bounds``; roots found from these are kept only inside ``bounds``.
    bounds : (lo, hi), float64[n_states, 2] or mapping state -> (lo, hi)
        The search box.
    seed : int or Generator
        For the random starts.
    tol : float
        Residual ``max |f(y)|`` below which a Newton run has converged.
    dedup_tol : float
        Roots closer than ``dedup_tol * (1 + |y|)`` (max norm) are one root.
    eig_tol : float
        Tolerance of the stability classification (:func:`classify_eigenvalues`).

    Returns
    -------
    tuple of FixedPoint
        Stable ones first, then sorted by state (lexicographically).

    Raises
    ------
    InvalidParameterError
        On bad bounds, counts, tolerances or guesses of the wrong shape.
    """
    n_starts = check_int("n_starts", n_starts, 0)
    tol = check_range("tol", tol, 0.0, 1.0, low_open=True)
    dedup_tol = check_range("dedup_tol", dedup_tol, 0.0, 1.0, low_open=True)
    check_int("max_iter", max_iter, 1)
    box = _box(bounds, csys)
    ev = _Evaluator(csys, params)
    n = csys.n_states
    if guesses is None:
        g = np.empty((0, n))
    elif isinstance(guesses, Mapping):
        g = csys.pack_state(guesses)[None, :]
    elif len(guesses) and isinstance(guesses[0], Mapping):
        g = np.array([csys.pack_state(m) for m in guesses])
    else:
        g = check_finite_array("guesses", guesses)
        if g.ndim == 1 and g.size == n:
            g = g[None, :]
        if g.ndim != 2 or g.shape[1] != n:
            raise InvalidParameterError(f"guesses must have shape [n_guess, {n}], got {g.shape}")
    if g.shape[0] + n_starts == 0:
        raise InvalidParameterError("give guesses or n_starts >= 1: there is nowhere to start Newton from")
    rng = as_generator(seed)
    starts = rng.uniform(box[:, 0], box[:, 1], size=(n_starts, n))
    roots: list[tuple[np.ndarray, float]] = []
    slack = 1e-9 * (1.0 + np.abs(box))
    for i, y0 in enumerate(np.vstack([g, starts])):
        y, _, ok, err = newton(ev.f, ev.J, y0, tol=tol, max_iter=max_iter)
        if not ok or not np.all(np.isfinite(y)):
            continue
        if i >= g.shape[0] and (np.any(y < box[:, 0] - slack[:, 0]) or np.any(y > box[:, 1] + slack[:, 1])):
            continue
        roots.append((y, err))
    roots = _dedup(roots, dedup_tol)
    fps = [linearize(csys, y, None, eig_tol=eig_tol, _ev=ev) for y in roots]
    fps.sort(key=lambda fp: (not fp.stable, tuple(np.round(fp.y, 12))))
    return tuple(fps)


__all__ = ["FixedPoint", "KINDS", "classify_eigenvalues", "find_fixed_points", "linearize", "newton"]
