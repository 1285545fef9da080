r"""Two-parameter continuation of folds and Hopf points, codimension-two points, Hopf normal form.

Both curves are followed by pseudo-arclength continuation (:mod:`._arclength`) of a standard augmented
system in the free parameters :math:`\alpha = (\alpha_1, \alpha_2)`, with the compiled Jacobian
:math:`A = f_y` and generated second derivatives (:func:`~theorykit.compile.compile_derivatives`):

* **fold** (limit point): unknowns :math:`(y, v, \alpha)`, equations :math:`f = 0,\; A v = 0,\; c^\top v = 1`.
  Along it, with :math:`w` the left null vector (:math:`A^\top w = 0`), the tests are
  :math:`\psi_\mathrm{CP} = w^\top B(v, v)` (cusp: the quadratic normal-form coefficient vanishes) and
  :math:`\psi_\mathrm{BT} = w^\top v` (Bogdanov–Takens: the zero eigenvalue becomes double, with a Jordan
  block, so the left and right null vectors turn orthogonal).
* **Hopf**: unknowns :math:`(y, v, \kappa, \alpha)`, equations :math:`f = 0,\; (A^2 + \kappa I) v = 0,\;
  c_1^\top v = 1,\; c_2^\top v = 0`, so :math:`\pm i\sqrt\kappa` are eigenvalues (Kuznetsov, *Elements of
  Applied Bifurcation Theory*, 3rd ed., §10.2). The same equations with :math:`\kappa < 0` describe neutral
  saddles (real eigenvalues :math:`\pm\sqrt{-\kappa}`), so the curve passes through Bogdanov–Takens points,
  where :math:`\kappa` changes sign. Generalized Hopf points are where the first Lyapunov coefficient
  :math:`l_1` changes sign.

The bordering vectors :math:`c, c_1, c_2` (and the reference of :math:`w`) are refreshed after every
accepted step, so the null vectors stay continuous and the tests keep their signs between steps.

:math:`l_1` is Kuznetsov's formula (eq. 3.20) with the multilinear forms :math:`B, C` of ``f``:

.. math:: l_1 = \frac{1}{2\omega}\,\mathrm{Re}\Big(\langle p, C(q,q,\bar q)\rangle
   - 2\langle p, B(q, A^{-1}B(q,\bar q))\rangle + \langle p, B(\bar q, (2i\omega I - A)^{-1}B(q,q))\rangle\Big),

with :math:`Aq = i\omega q`, :math:`A^\top p = -i\omega p`, :math:`\langle q,q\rangle = \langle p,q\rangle = 1`
(:math:`\langle a,b\rangle = \bar a^\top b`). :math:`l_1 < 0`: supercritical (a stable cycle is born),
:math:`l_1 > 0`: subcritical.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .._checks import check_int, check_range
from ..errors import InvalidParameterError
from . import _arclength as A
from ._continuation import Branch, SpecialPoint
from ._fixed_points import FixedPoint, _Evaluator, _frozen, _sorted_eigenvalues, require_finite_jacobian

CURVE_KINDS = ("fold", "hopf")
#: codimension-two points each curve detects
CODIM2_KINDS = {"fold": ("cusp", "bogdanov_takens"), "hopf": ("bogdanov_takens", "generalized_hopf")}


# ------------------------------------------------------------------------------------------ normal forms
@dataclass(frozen=True, eq=False)
class HopfNormalForm:
    """The first Lyapunov coefficient of a Hopf point and the vectors it is computed with.

    Attributes
    ----------
    frequency : float
        :math:`\\omega`, the imaginary part of the critical eigenvalue pair.
    l1 : float
        First Lyapunov coefficient (Kuznetsov's normalization :math:`\\langle q,q\\rangle = \\langle p,q\\rangle
        = 1`; for :math:`\\dot z = (\\mu + i\\omega) z + c_1 z|z|^2` in the coordinate :math:`z` along
        :math:`q`, :math:`l_1 = \\mathrm{Re}\\,c_1/\\omega`).
    criticality : {"supercritical", "subcritical", "degenerate"}
        ``"degenerate"`` when :math:`|l_1|` is below ``l1_tol`` (a generalized Hopf point).
    q, p : complex128[n_states]
        Right eigenvector for :math:`i\\omega` and adjoint eigenvector for :math:`-i\\omega`.
    """

    frequency: float
    l1: float
    criticality: str
    q: np.ndarray
    p: np.ndarray

    def __repr__(self) -> str:
        return f"HopfNormalForm(omega={self.frequency:.8g}, l1={self.l1:.6g}, {self.criticality})"


def _lyapunov(der, J: np.ndarray, y: np.ndarray, prm: np.ndarray, omega: float) -> tuple[float, np.ndarray, np.ndarray]:
    """``(l1, q, p)`` at an equilibrium ``y`` whose Jacobian ``J`` has eigenvalues ``±iω``."""
    n = J.shape[0]
    ev, V = np.linalg.eig(J)
    q = V[:, int(np.argmin(np.abs(ev - 1j * omega)))]
    q = q / np.linalg.norm(q)
    evT, W = np.linalg.eig(J.T)
    p = W[:, int(np.argmin(np.abs(evT + 1j * omega)))]
    p = p / np.conj(np.vdot(p, q))
    qb = np.conj(q)
    h11 = np.linalg.solve(J, der.bilinear(y, prm, q, qb))
    h20 = np.linalg.solve(2j * omega * np.eye(n) - J, der.bilinear(y, prm, q, q))
    total = (np.vdot(p, der.trilinear(y, prm, q, q, qb)) - 2.0 * np.vdot(p, der.bilinear(y, prm, q, h11))
             + np.vdot(p, der.bilinear(y, prm, qb, h20)))
    return float(np.real(total)) / (2.0 * omega), q, p


def _criticality(l1: float, tol: float) -> str:
    if not np.isfinite(l1) or abs(l1) <= tol:
        return "degenerate"
    return "supercritical" if l1 < 0 else "subcritical"


def hopf_normal_form(csys, point, params=None, *, index: int = 0, l1_tol: float = 1e-10) -> HopfNormalForm:
    """First Lyapunov coefficient at a Hopf point (sub- or supercritical).

    Parameters
    ----------
    csys : CompiledSystem
        Compiled from a SymPy system (its second and third derivatives are generated).
    point : Branch, SpecialPoint, CurvePoint, FixedPoint, float64[n_states] or mapping
        The Hopf point: a :class:`Branch` (its ``index``-th Hopf point, with the branch's parameters), a
        :class:`CurvePoint` (which carries its parameters), or a point with ``params``.
    params : mapping or float64[n_params]
        All parameters at the point (for a :class:`~theorykit.analysis.SpecialPoint` of a branch in ``r``,
        ``r`` must hold the located value ``point.param_value``).
    index : int
        Which Hopf point of a Branch.
    l1_tol : float
        :math:`|l_1|` at or below this is reported ``"degenerate"``.

    Returns
    -------
    HopfNormalForm

    Raises
    ------
    InvalidParameterError
        If the Jacobian has no complex pair near the imaginary axis (not a Hopf point).
    """
    from ..compile import compile_derivatives

    y, prm = start_from(csys, point, params, "hopf", index)
    J = _Evaluator(csys, prm).J(y)
    ev = _sorted_eigenvalues(J)
    pair = ev[ev.imag > 1e-8 * max(1.0, float(np.max(np.abs(ev))))]
    if pair.size == 0:
        raise InvalidParameterError(f"point: the Jacobian has no complex eigenvalue pair (eigenvalues {ev}); "
                                    "it is not a Hopf point")
    lam = pair[int(np.argmin(np.abs(pair.real)))]
    if abs(lam.real) > 1e-6 * max(1.0, abs(lam)):
        raise InvalidParameterError(f"point: the closest complex pair {lam:.6g} is not on the imaginary axis; "
                                    "locate the Hopf point first (continue_branch or continue_hopf)")
    l1, q, p = _lyapunov(compile_derivatives(csys), J, y, prm, float(lam.imag))
    return HopfNormalForm(float(lam.imag), l1, _criticality(l1, l1_tol), _frozen(q, np.complex128),
                          _frozen(p, np.complex128))


# ------------------------------------------------------------------------------------------ results
@dataclass(frozen=True, eq=False)
class CurvePoint:
    """A codimension-two point located on a :class:`BifurcationCurve`.

    Attributes
    ----------
    kind : {"cusp", "bogdanov_takens", "generalized_hopf"}
    params : dict
        Every parameter at the point (the two free ones included).
    y : float64[n_states]
    index : int
        Position in the curve arrays (located points are inserted into the curve).
    eigenvalues : complex128[n_states]
    details : dict
        Curve coefficients at the point (``"a"`` on fold curves, ``"omega2"`` and ``"l1"`` on Hopf curves).
    """

    kind: str
    params: Mapping[str, float]
    y: np.ndarray
    index: int
    eigenvalues: np.ndarray
    details: Mapping[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "params": dict(self.params), "y": [float(v) for v in self.y],
                "index": int(self.index), "eigenvalues": [[float(e.real), float(e.imag)] for e in self.eigenvalues],
                "details": {k: float(v) for k, v in self.details.items()}}

    def __repr__(self) -> str:
        ps = ", ".join(f"{k}={v:.8g}" for k, v in self.params.items())
        return f"CurvePoint({self.kind} at {ps})"


@dataclass(frozen=True, eq=False)
class BifurcationCurve:
    """A fold or Hopf curve in a parameter plane, with the equilibrium along it.

    Attributes
    ----------
    kind : {"fold", "hopf"}
    free : (str, str)
        The two free parameters; ``param_values[:, k]`` holds ``free[k]``.
    param_values : float64[m, 2]
    states : float64[m, n_states]
    eigenvalues : complex128[m, n_states]
        Of the Jacobian, sorted by decreasing real part.
    coefficients : dict of float64[m]
        Fold curves: ``"a"``, the quadratic normal-form coefficient :math:`\\tfrac12\\langle p, B(q,q)\\rangle`
        (:math:`|q| = 1`, :math:`\\langle p, q\\rangle = 1`; NaN at Bogdanov–Takens points). Hopf curves:
        ``"omega2"`` (:math:`\\kappa = \\omega^2`; negative on neutral-saddle stretches) and ``"l1"`` (first
        Lyapunov coefficient, NaN where :math:`\\kappa \\le 0`).
    special_points : tuple of CurvePoint
    state_names : tuple of str
    params : dict
        The other parameters, held fixed.
    stop_reason : str
        ``"bounds"``, ``"max_points"``, ``"ds_min"``, ``"diverged"`` or ``"closed"`` (a loop), per
        direction joined by ``" / "`` when continued both ways.
    """

    kind: str
    free: tuple[str, str]
    param_values: np.ndarray
    states: np.ndarray
    eigenvalues: np.ndarray
    coefficients: Mapping[str, np.ndarray]
    special_points: tuple[CurvePoint, ...] = ()
    state_names: tuple[str, ...] = ()
    params: Mapping[str, float] = field(default_factory=dict)
    stop_reason: str = ""

    def __len__(self) -> int:
        return int(self.param_values.shape[0])

    def param_of(self, name: str) -> np.ndarray:
        """The values of free parameter ``name`` along the curve (float64[m])."""
        if name not in self.free:
            raise KeyError(f"{name!r} is not a free parameter of this curve; they are {list(self.free)}")
        return self.param_values[:, self.free.index(name)]

    def y_of(self, name: str) -> np.ndarray:
        """State ``name`` along the curve (float64[m])."""
        if name not in self.state_names:
            raise KeyError(f"unknown state {name!r}; states are {list(self.state_names)}")
        return self.states[:, self.state_names.index(name)]

    def special(self, kind: str) -> tuple[CurvePoint, ...]:
        """The special points of one kind."""
        return tuple(sp for sp in self.special_points if sp.kind == kind)

    @property
    def hopf_mask(self) -> np.ndarray:
        """bool[m]: the points that are Hopf points (for a Hopf curve, ``omega2 > 0``; all points of a fold curve)."""
        if self.kind != "hopf":
            return np.ones(len(self), dtype=bool)
        return np.asarray(self.coefficients["omega2"]) > 0

    def save(self, stem) -> tuple[Path, Path]:
        """Write ``<stem>.npz`` (arrays) and ``<stem>.json`` (kind, parameters, special points, provenance)."""
        from .._io import save_result

        arrays = {"param_values": self.param_values, "states": self.states, "eigenvalues": self.eigenvalues,
                  **{f"coef_{k}": v for k, v in self.coefficients.items()}}
        meta = {"kind": "BifurcationCurve", "curve": self.kind, "free": list(self.free),
                "state_names": list(self.state_names), "params": dict(self.params), "stop_reason": self.stop_reason,
                "special_points": [sp.as_dict() for sp in self.special_points]}
        return save_result(stem, arrays, meta)

    @classmethod
    def load(cls, stem) -> "BifurcationCurve":
        """Read a curve written by :meth:`save`."""
        stem = Path(stem)
        meta = json.loads(stem.with_suffix(".json").read_text())
        if meta.get("kind") != "BifurcationCurve":
            raise InvalidParameterError(f"{stem.with_suffix('.json')} does not hold a BifurcationCurve")
        with np.load(stem.with_suffix(".npz")) as z:
            a = {k: z[k] for k in z.files}
        sps = tuple(CurvePoint(d["kind"], d["params"], _frozen(d["y"]), d["index"],
                               _frozen([complex(*e) for e in d["eigenvalues"]], np.complex128), d["details"])
                    for d in meta["special_points"])
        coef = {k[5:]: _frozen(v) for k, v in a.items() if k.startswith("coef_")}
        return cls(meta["curve"], tuple(meta["free"]), _frozen(a["param_values"]), _frozen(a["states"]),
                   _frozen(a["eigenvalues"], np.complex128), coef, sps, tuple(meta["state_names"]), meta["params"],
                   meta["stop_reason"])

    def __repr__(self) -> str:
        return (f"BifurcationCurve({self.kind} in ({', '.join(self.free)}), {len(self)} points, "
                f"special={list(self.special_points)}, stop={self.stop_reason!r})")


# ------------------------------------------------------------------------------------------ starts
def _point_and_params(csys, point, params) -> tuple[np.ndarray, np.ndarray]:
    """``(y, packed params)`` of a starting point given as a CurvePoint, SpecialPoint, FixedPoint, array or
    mapping (a CurvePoint carries its parameters; the others need ``params``)."""
    if isinstance(point, CurvePoint):
        prm = csys.pack_params(point.params if params is None else params)
        return np.array(point.y, dtype=np.float64), prm
    if params is None:
        raise InvalidParameterError("params: give every parameter's value at the starting point")
    prm = csys.pack_params(params)
    if isinstance(point, (SpecialPoint, FixedPoint)):
        y = np.array(point.y, dtype=np.float64)
    elif isinstance(point, Mapping):
        y = csys.pack_state(point)
    else:
        y = np.asarray(point, dtype=np.float64).reshape(-1)
    if y.size != csys.n_states or not np.all(np.isfinite(y)):
        raise InvalidParameterError(f"start must be finite with {csys.n_states} entries {list(csys.state_names)}")
    return y, prm


def start_from(csys, start, params, kind: str, index: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(y, packed params)`` at a start; a :class:`Branch` gives its ``index``-th special point of ``kind``
    with the branch's parameters and the located value of its continuation parameter. A start where the
    Jacobian is not finite is refused (:class:`~theorykit.errors.InvalidParameterError`): eigenvectors need
    a finite one."""
    if isinstance(start, Branch):
        pts = start.special(kind)
        if not pts:
            raise InvalidParameterError(f"start: the branch in {start.param!r} has no {kind} point "
                                        f"(its special points: {[sp.kind for sp in start.special_points]})")
        index = check_int("index", index, 0, len(pts) - 1)
        base = dict(start.params) if params is None else dict(zip(csys.param_names, csys.pack_params(params)))
        base[start.param] = pts[index].param_value
        y, prm = np.array(pts[index].y, dtype=np.float64), csys.pack_params(base)
    else:
        y, prm = _point_and_params(csys, start, params)
    require_finite_jacobian(_Evaluator(csys, prm).J(y), y, dict(zip(csys.param_names, prm.tolist())),
                            f"a {kind} start")
    return y, prm


def free_pair(csys, free, what: str = "free") -> tuple[tuple[str, str], int, int]:
    """``(free, index of free[0], index of free[1])`` for two distinct parameter names (``what`` names the
    argument in errors)."""
    if free is None:
        raise InvalidParameterError(f"{what}: name the two parameters that vary along the curve")
    free = tuple(free)
    if len(free) != 2 or free[0] == free[1]:
        raise InvalidParameterError(f"{what} must name two different parameters, got {free!r}")
    unknown = [k for k in free if k not in csys.param_names]
    if unknown:
        raise InvalidParameterError(f"{what}: {unknown} are not parameters of {csys.system.name!r}; its parameters "
                                    f"are {list(csys.param_names)}")
    return free, csys.param_names.index(free[0]), csys.param_names.index(free[1])  # type: ignore[return-value]


# ------------------------------------------------------------------------------------------ problems
class _CurveProblem:
    """What fold and Hopf problems share: the equilibrium part of the augmented system."""

    solve = staticmethod(A.dense_solve)
    n_aux: int  # auxiliary unknowns between y and the two parameters

    def __init__(self, csys, der, prm: np.ndarray, k1: int, k2: int):
        self.ev = _Evaluator(csys, prm)
        self.der = der
        self.n = csys.n_states
        self.k = (k1, k2)
        self.base = prm.copy()
        self.dim = self.n + self.n_aux + 2
        self.param_slots = (self.dim - 2, self.dim - 1)
        self.weights = np.r_[np.ones(self.n), np.zeros(self.n_aux), 1.0, 1.0]

    def prm(self, u: np.ndarray) -> np.ndarray:
        p = self.base.copy()
        p[self.k[0]], p[self.k[1]] = u[-2], u[-1]
        return p

    def equilibrium_rows(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(f, J, f_α [n, 2], p)`` at ``u``."""
        x, p = u[:self.n], self.prm(u)
        return self.ev.f(x, p), self.ev.J(x, p), self.der.param_jac(x, p)[:, list(self.k)], p

    def mixed(self, x: np.ndarray, p: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(∂(J v)/∂y [n, n], ∂(J v)/∂α [n, 2])``."""
        H = self.der.hessian_along(x, p, v)
        return H[:, :self.n], H[:, [self.n + self.k[0], self.n + self.k[1]]]

    def confirm(self, kind: str, u: np.ndarray) -> bool:
        return True


class _FoldProblem(_CurveProblem):
    test_names = CODIM2_KINDS["fold"]

    def __init__(self, csys, der, prm, k1, k2):
        self.n_aux = csys.n_states
        super().__init__(csys, der, prm, k1, k2)
        self.c = np.zeros(self.n)
        self.w_ref = np.zeros(self.n)

    def F(self, u: np.ndarray) -> np.ndarray:
        n = self.n
        f, J, _, _ = self.equilibrium_rows(u)
        v = u[n:2 * n]
        return np.r_[f, J @ v, self.c @ v - 1.0]

    def DF(self, u: np.ndarray) -> np.ndarray:
        n = self.n
        _, J, fa, p = self.equilibrium_rows(u)
        v = u[n:2 * n]
        Mv, Mva = self.mixed(u[:n], p, v)
        D = np.zeros((2 * n + 1, 2 * n + 2))
        D[:n, :n], D[:n, 2 * n:] = J, fa
        D[n:2 * n, :n], D[n:2 * n, n:2 * n], D[n:2 * n, 2 * n:] = Mv, J, Mva
        D[2 * n, n:2 * n] = self.c
        return D

    def left(self, u: np.ndarray) -> np.ndarray:
        """Left null vector ``w`` of ``J`` with ``w_ref · w = 1`` (bordered by the right null vector)."""
        n = self.n
        J = self.ev.J(u[:n], self.prm(u))
        M = np.zeros((n + 1, n + 1))
        M[:n, :n], M[:n, n], M[n, :n] = J.T, u[n:2 * n], self.w_ref
        return A.dense_solve(M[:n], M[n], np.r_[np.zeros(n), 1.0])[:n]

    def tests(self, u: np.ndarray, t: np.ndarray) -> np.ndarray:
        n = self.n
        v, w = u[n:2 * n], self.left(u)
        return np.array([w @ self.der.bilinear(u[:n], self.prm(u), v, v), w @ v])

    def coefficients(self, u: np.ndarray) -> dict[str, float]:
        n = self.n
        v, w = u[n:2 * n], self.left(u)
        q = v / np.linalg.norm(v)
        wq = float(w @ q)
        a = 0.5 * float(w @ self.der.bilinear(u[:n], self.prm(u), q, q)) / wq if abs(wq) > 1e-10 * np.linalg.norm(w) \
            else np.nan
        return {"a": a}

    def update(self, u: np.ndarray, t: np.ndarray | None = None) -> None:
        n = self.n
        v = u[n:2 * n]
        self.c = v / (v @ v)
        w = self.left(u)
        self.w_ref = w / (w @ w)

    def initial(self, y: np.ndarray) -> np.ndarray:
        """``u`` near the fold from an equilibrium estimate: ``v`` the eigenvector of the eigenvalue nearest 0."""
        p = self.base
        J = self.ev.J(y, p)
        ev, V = np.linalg.eig(J)
        k = int(np.argmin(np.abs(ev)))
        v = np.real(V[:, k] * np.exp(-1j * np.angle(V[np.argmax(np.abs(V[:, k])), k])))
        v = v / np.linalg.norm(v)
        w = np.linalg.svd(J)[0][:, -1]
        self.c = v.copy()
        self.w_ref = w / (w @ v if abs(w @ v) > 1e-8 else 1.0)
        return np.r_[y, v, p[self.k[0]], p[self.k[1]]]


class _HopfProblem(_CurveProblem):
    test_names = CODIM2_KINDS["hopf"]

    def __init__(self, csys, der, prm, k1, k2):
        self.n_aux = csys.n_states + 1
        super().__init__(csys, der, prm, k1, k2)
        self.c1 = np.zeros(self.n)
        self.c2 = np.zeros(self.n)

    def F(self, u: np.ndarray) -> np.ndarray:
        n = self.n
        f, J, _, _ = self.equilibrium_rows(u)
        v, kappa = u[n:2 * n], u[2 * n]
        return np.r_[f, J @ (J @ v) + kappa * v, self.c1 @ v - 1.0, self.c2 @ v]

    def DF(self, u: np.ndarray) -> np.ndarray:
        n = self.n
        _, J, fa, p = self.equilibrium_rows(u)
        x, v, kappa = u[:n], u[n:2 * n], u[2 * n]
        Jv = J @ v
        M_v, Ma_v = self.mixed(x, p, v)
        M_Jv, Ma_Jv = self.mixed(x, p, Jv)
        D = np.zeros((2 * n + 2, 2 * n + 3))
        D[:n, :n], D[:n, 2 * n + 1:] = J, fa
        D[n:2 * n, :n] = M_Jv + J @ M_v
        D[n:2 * n, n:2 * n] = J @ J + kappa * np.eye(n)
        D[n:2 * n, 2 * n] = v
        D[n:2 * n, 2 * n + 1:] = Ma_Jv + J @ Ma_v
        D[2 * n, n:2 * n] = self.c1
        D[2 * n + 1, n:2 * n] = self.c2
        return D

    def lyapunov(self, u: np.ndarray) -> float:
        n = self.n
        kappa = u[2 * n]
        if not kappa > 0:
            return np.nan
        x, p = u[:n], self.prm(u)
        try:
            return _lyapunov(self.der, self.ev.J(x, p), x, p, float(np.sqrt(kappa)))[0]
        except np.linalg.LinAlgError:  # A singular: a zero eigenvalue next to the Hopf pair
            return np.nan

    def tests(self, u: np.ndarray, t: np.ndarray) -> np.ndarray:
        return np.array([u[2 * self.n], self.lyapunov(u)])

    def confirm(self, kind: str, u: np.ndarray) -> bool:
        return kind != "generalized_hopf" or u[2 * self.n] > 0

    def coefficients(self, u: np.ndarray) -> dict[str, float]:
        return {"omega2": float(u[2 * self.n]), "l1": self.lyapunov(u)}

    def _kernel(self, u: np.ndarray) -> np.ndarray:
        """Orthonormal basis (columns) of the 2-d kernel of ``J² + κ I``."""
        n = self.n
        J = self.ev.J(u[:n], self.prm(u))
        return np.linalg.svd(J @ J + u[2 * n] * np.eye(n))[2][-2:].T

    def update(self, u: np.ndarray, t: np.ndarray | None = None) -> None:
        n = self.n
        v = u[n:2 * n]
        self.c1 = v / (v @ v)
        K = self._kernel(u)
        a, b = K.T @ v
        other = K @ np.array([-b, a])  # in the kernel, orthogonal to v's projection onto it
        self.c2 = other / np.linalg.norm(other)

    def initial(self, y: np.ndarray) -> np.ndarray:
        """``u`` near a Hopf point (or neutral saddle) from an equilibrium estimate: the eigenvalue pair with the
        smallest :math:`|\\lambda_i + \\lambda_j|` gives :math:`\\kappa = \\lambda_i\\lambda_j`."""
        n = self.n
        if n < 2:
            raise InvalidParameterError("a Hopf curve needs at least two states")
        ev = np.linalg.eigvals(self.ev.J(y, self.base))
        i, j = np.triu_indices(n, 1)
        k = int(np.argmin(np.abs(ev[i] + ev[j])))
        kappa = float(np.real(ev[i[k]] * ev[j[k]]))
        u = np.r_[y, np.zeros(n), kappa, self.base[self.k[0]], self.base[self.k[1]]]
        v = self._kernel(u)[:, 0]
        u[n:2 * n] = v
        self.c1 = v.copy()
        self.c2 = self._kernel(u)[:, 1]
        return u


# ------------------------------------------------------------------------------------------ drivers
def _bounds(free: tuple[str, str], bounds, slots: tuple[int, int], start: np.ndarray) -> dict[int, tuple[float, float]]:
    if bounds is None:
        return {}
    if not isinstance(bounds, Mapping):
        raise InvalidParameterError(f"bounds must map free parameter names to (lo, hi), got {bounds!r}")
    out = {}
    for name, b in bounds.items():
        if name not in free:
            raise InvalidParameterError(f"bounds: {name!r} is not one of the free parameters {list(free)}")
        try:
            lo, hi = (check_range(f"bounds[{name!r}]", x, -np.inf, np.inf) for x in b)
        except (TypeError, ValueError):
            raise InvalidParameterError(f"bounds[{name!r}] must be (lo, hi), got {b!r}") from None
        slot = slots[free.index(name)]
        if not lo < hi or not A.inside(start[slot], lo, hi):
            raise InvalidParameterError(f"bounds[{name!r}] = ({lo}, {hi}) must have lo < hi and contain the "
                                        f"start value {start[slot]:.10g}")
        out[slot] = (lo, hi)
    return out


def _continue_curve(kind: str, csys, start, params, free, bounds, *, index: int = 0, ds: float = 0.01,
                    ds_min: float = 1e-7, ds_max: float = 0.1, max_points: int = 1000, direction: int = 0,
                    tol: float = 1e-10, max_newton: int = 10, detect: tuple[str, ...] | None = None,
                    locate_tol: float = 1e-12, y_max: float = 1e6) -> BifurcationCurve:
    from ..compile import compile_derivatives

    ds = check_range("ds", ds, 0.0, low_open=True)
    ds_min = check_range("ds_min", ds_min, 0.0, ds, low_open=True)
    ds_max = check_range("ds_max", ds_max, ds)
    max_points = check_int("max_points", max_points, 1)
    direction = A.check_direction(direction)
    tol = check_range("tol", tol, 0.0, 1.0, low_open=True)
    max_newton = check_int("max_newton", max_newton, 1)
    detect = CODIM2_KINDS[kind] if detect is None else tuple(detect)
    unknown = sorted(set(detect) - set(CODIM2_KINDS[kind]))
    if unknown:
        raise InvalidParameterError(f"detect: {unknown} are not detected on {kind} curves; choose from "
                                    f"{CODIM2_KINDS[kind]}")
    free, k1, k2 = free_pair(csys, free)
    y, prm = start_from(csys, start, params, kind, index)
    cls = _FoldProblem if kind == "fold" else _HopfProblem
    prob = cls(csys, compile_derivatives(csys), prm, k1, k2)
    u0, ok = A.gauss_newton(prob, prob.initial(y), tol=tol)
    if not ok:
        raise InvalidParameterError(f"start: no {kind} point near the given one (Newton on the {kind} system did not "
                                    f"converge from {free[0]}={prm[k1]:.6g}, {free[1]}={prm[k2]:.6g}); start "
                                    f"from a located {kind} point (continue_branch)")
    prob.update(u0)
    box = _bounds(free, bounds, prob.param_slots, u0)
    t0 = A.null_tangent(prob, u0, prob.param_slots[0], 1.0 if direction >= 0 else -1.0)

    def run(u: np.ndarray, t: np.ndarray) -> A.Trace:
        prob.update(u)
        return A.trace(prob, u, t, ds=ds, ds_min=ds_min, ds_max=ds_max, max_points=max_points, tol=tol,
                       max_newton=max_newton, bounds=box, y_slots=np.arange(prob.n), y_max=y_max, detect=detect,
                       locate_tol=locate_tol)

    tr = A.both_ways(run, u0, t0) if direction == 0 else run(u0, t0)
    n = prob.n
    U = np.array(tr.points)
    eigs = np.array([_sorted_eigenvalues(prob.ev.J(u[:n], prob.prm(u))) for u in U])
    coef_rows = []
    for u in U:
        prob.update(u)  # orient the null vectors at each point for its coefficients
        coef_rows.append(prob.coefficients(u))
    coefs = {k: _frozen([r[k] for r in coef_rows]) for k in coef_rows[0]}
    others = {nm: float(v) for nm, v in zip(csys.param_names, prm) if nm not in free}
    sps = tuple(CurvePoint(kd, {nm: float(v) for nm, v in zip(csys.param_names, prob.prm(U[i]))}, _frozen(U[i, :n]), i,
                           _frozen(eigs[i], np.complex128), {k: float(coefs[k][i]) for k in coefs})
                for i, kd in tr.specials)
    return BifurcationCurve(kind, free, _frozen(U[:, -2:]), _frozen(U[:, :n]), _frozen(eigs, np.complex128), coefs,
                            sps, csys.state_names, others, tr.stop_reason)


_DOC_COMMON = """
    Parameters
    ----------
    csys : CompiledSystem
        Compiled with ``jac=True`` from a SymPy system (second derivatives are generated).
    start : Branch, SpecialPoint, CurvePoint, FixedPoint, float64[n_states] or mapping
        A {kind} point: a :class:`Branch` (its ``index``-th {kind} point, with the branch's parameters), a
        located special point, or an equilibrium near one; Newton on the augmented system lands on the curve.
    params : mapping or float64[n_params], optional
        Every parameter at the start (not needed for a Branch or a CurvePoint).
    free : (str, str)
        The two parameters that vary along the curve (required).
    bounds : mapping name -> (lo, hi), optional
        Box in the free parameters; the curve ends with a point exactly on its boundary.
    **options
        Keyword-only options, with defaults:

        ``index`` (0)
            Which {kind} point of a Branch to start from.
        ``ds``, ``ds_min``, ``ds_max`` (0.01, 1e-7, 0.1)
            Initial, smallest and largest arclength step, in the joint (state, free parameters) space.
        ``max_points`` (1000)
            Maximum number of accepted steps (per direction).
        ``direction`` (0)
            0: both ways from the start (joined in one curve); ±1: the first free parameter initially
            increases (+1) or decreases (-1).
        ``tol`` (1e-10), ``max_newton`` (10)
            Newton residual of the augmented system and iterations per step.
        ``detect`` (all of {codim2})
            Codimension-two points to locate.
        ``locate_tol`` (1e-12)
            Arclength tolerance of their location.
        ``y_max`` (1e6)
            Stop when a state exceeds it in absolute value.

    Returns
    -------
    BifurcationCurve

    Raises
    ------
    InvalidParameterError
        On bad parameters, options or bounds, or when Newton finds no {kind} point near the start.
    CompileError
        For systems whose derivatives cannot be generated (hand-written right-hand sides).
"""


def continue_fold(csys, start, params=None, free: tuple[str, str] | None = None, bounds=None,
                  **options) -> BifurcationCurve:
    return _continue_curve("fold", csys, start, params, free, bounds, **options)


def continue_hopf(csys, start, params=None, free: tuple[str, str] | None = None, bounds=None,
                  **options) -> BifurcationCurve:
    return _continue_curve("hopf", csys, start, params, free, bounds, **options)


continue_fold.__doc__ = ("""Continue a fold (limit point) of equilibria in two parameters: the fold curve, with cusp
    and Bogdanov–Takens points (see the module docstring for the augmented system and test functions).
""" + _DOC_COMMON.format(kind="fold", codim2=CODIM2_KINDS["fold"]))
continue_hopf.__doc__ = ("""Continue a Hopf point in two parameters: the Hopf curve, with the first Lyapunov
    coefficient at every point, Bogdanov–Takens and generalized Hopf points. Beyond a Bogdanov–Takens point
    the same curve continues as neutral saddles (``coefficients["omega2"] < 0``).
""" + _DOC_COMMON.format(kind="Hopf", codim2=CODIM2_KINDS["hopf"]))


__all__ = ["BifurcationCurve", "CurvePoint", "HopfNormalForm", "CURVE_KINDS", "CODIM2_KINDS", "continue_fold",
           "continue_hopf", "hopf_normal_form", "free_pair"]
