r"""Limit cycles: continuation from a Hopf point by orthogonal collocation, Floquet multipliers, fold-of-cycles
and period-doubling detection.

A cycle of period :math:`T` is :math:`x(\tau)`, :math:`\tau \in [0, 1]`, with :math:`x' = T f(x; \lambda)`,
:math:`x(0) = x(1)`, and the integral phase condition :math:`\int_0^1 \langle x - x_\mathrm{ref},
\dot x_\mathrm{ref}\rangle d\tau = 0` against the previous cycle (Doedel's AUTO; Kuznetsov, *Elements of
Applied Bifurcation Theory*, §10.5). On each of ``ntst`` equal mesh intervals :math:`x` is a polynomial of
degree ``ncol`` through ``ncol + 1`` equally spaced points, and the equation holds at the ``ncol`` Gauss–Legendre
points of the interval (the error at the mesh points is :math:`O(h^{2\,\mathrm{ncol}})`). The unknowns
(the cycle at the ``ntst*ncol + 1`` basis points, :math:`T` and :math:`\lambda`) are continued in
pseudo-arclength with a sparse Jacobian built from the compiled Jacobian.

Floquet multipliers are the eigenvalues of the monodromy matrix of the collocation equations
themselves: linearising each interval's equations and eliminating its interior points gives the map of a
perturbation from the interval's start to its end; the monodromy is their product over the mesh (AUTO's
condensation of parameters). One multiplier is 1 (the phase shift); its distance from 1 is reported as an
accuracy check.

Tests along the branch: the fold of cycles (the parameter component of the tangent changes sign) and the
period doubling, :math:`\prod_i (\mu_i + 1)/(1 + |\mu_i|)` changes sign when a real multiplier passes -1.
The branch starts at a Hopf point with the tangent :math:`\mathrm{Re}(q\,e^{2\pi i\tau})` (zero change of
period and parameter) and ``T = 2π/ω``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import scipy.sparse as sps
from scipy.sparse.linalg import splu

from .._checks import check_int, check_range
from ..errors import InvalidParameterError
from . import _arclength as A
from ._curves import start_from
from ._fixed_points import _Evaluator, _frozen

CYCLE_KINDS = ("fold_cycle", "period_doubling")


@dataclass(frozen=True, eq=False)
class CyclePoint:
    """A located bifurcation of cycles on a :class:`CycleBranch`.

    Attributes
    ----------
    kind : {"fold_cycle", "period_doubling"}
    param_value : float
    period : float
    index : int
        Position in the branch arrays.
    multipliers : complex128[n_states]
        Floquet multipliers, sorted by decreasing modulus.
    """

    kind: str
    param_value: float
    period: float
    index: int
    multipliers: np.ndarray

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "param_value": float(self.param_value), "period": float(self.period),
                "index": int(self.index), "multipliers": [[float(m.real), float(m.imag)] for m in self.multipliers]}

    def __repr__(self) -> str:
        return f"CyclePoint({self.kind} at {self.param_value:.10g}, T={self.period:.8g})"


@dataclass(frozen=True, eq=False)
class CycleBranch:
    """A continued family of limit cycles in one parameter.

    Attributes
    ----------
    param : str
    param_values : float64[m]
    periods : float64[m]
    tau : float64[n_tau]
        Normalised time :math:`\\tau \\in [0, 1]` of the stored profile points (the collocation basis points;
        ``n_tau = ntst * ncol + 1``).
    profiles : float64[m, n_tau, n_states]
        The cycles: ``profiles[i, j]`` is the state at time ``tau[j] * periods[i]`` (the first point is the
        Hopf point itself, a cycle of zero amplitude).
    multipliers : complex128[m, n_states]
        Floquet multipliers, sorted by decreasing modulus.
    stable : bool[m]
        Every multiplier but the trivial one (closest to 1) has modulus ``< 1``.
    special_points : tuple of CyclePoint
    state_names : tuple of str
    params : dict
        The other parameters, held fixed.
    stop_reason : str
        ``"bounds"``, ``"max_points"``, ``"ds_min"``, ``"diverged"``, ``"period_max"`` (period above its
        limit: a homoclinic orbit?) or ``"hopf"`` (the amplitude returned to zero: another Hopf point).
    trivial_error : float64[m]
        :math:`|\\mu_\\mathrm{trivial} - 1|`, the accuracy of the multipliers.
    ntst, ncol : int
        The collocation mesh.
    """

    param: str
    param_values: np.ndarray
    periods: np.ndarray
    tau: np.ndarray
    profiles: np.ndarray
    multipliers: np.ndarray
    stable: np.ndarray
    special_points: tuple[CyclePoint, ...] = ()
    state_names: tuple[str, ...] = ()
    params: Mapping[str, float] = field(default_factory=dict)
    stop_reason: str = ""
    trivial_error: np.ndarray = field(default_factory=lambda: np.empty(0))
    ntst: int = 0
    ncol: int = 0

    def __len__(self) -> int:
        return int(self.param_values.size)

    @property
    def max_states(self) -> np.ndarray:
        """float64[m, n_states]: the maximum of each state over the cycle (at the profile points)."""
        return self.profiles.max(axis=1)

    @property
    def min_states(self) -> np.ndarray:
        """float64[m, n_states]: the minimum of each state over the cycle (at the profile points)."""
        return self.profiles.min(axis=1)

    def special(self, kind: str) -> tuple[CyclePoint, ...]:
        """The special points of one kind."""
        return tuple(sp for sp in self.special_points if sp.kind == kind)

    def save(self, stem) -> tuple[Path, Path]:
        """Write ``<stem>.npz`` (arrays) and ``<stem>.json`` (parameters, special points, provenance)."""
        from .._io import save_result

        arrays = {"param_values": self.param_values, "periods": self.periods, "tau": self.tau,
                  "profiles": self.profiles, "multipliers": self.multipliers, "stable": self.stable,
                  "trivial_error": self.trivial_error}
        meta = {"kind": "CycleBranch", "param": self.param, "state_names": list(self.state_names),
                "params": dict(self.params), "stop_reason": self.stop_reason, "ntst": self.ntst, "ncol": self.ncol,
                "special_points": [sp.as_dict() for sp in self.special_points]}
        return save_result(stem, arrays, meta)

    @classmethod
    def load(cls, stem) -> "CycleBranch":
        """Read a cycle branch written by :meth:`save`."""
        stem = Path(stem)
        meta = json.loads(stem.with_suffix(".json").read_text())
        if meta.get("kind") != "CycleBranch":
            raise InvalidParameterError(f"{stem.with_suffix('.json')} does not hold a CycleBranch")
        with np.load(stem.with_suffix(".npz")) as z:
            a = {k: z[k] for k in z.files}
        sps_ = tuple(CyclePoint(d["kind"], d["param_value"], d["period"], d["index"],
                                _frozen([complex(*m) for m in d["multipliers"]], np.complex128))
                     for d in meta["special_points"])
        return cls(meta["param"], _frozen(a["param_values"]), _frozen(a["periods"]), _frozen(a["tau"]),
                   _frozen(a["profiles"]), _frozen(a["multipliers"], np.complex128), _frozen(a["stable"], bool), sps_,
                   tuple(meta["state_names"]), meta["params"], meta["stop_reason"], _frozen(a["trivial_error"]),
                   int(meta["ntst"]), int(meta["ncol"]))

    def __repr__(self) -> str:
        lo, hi = (float(np.min(self.param_values)), float(np.max(self.param_values))) if len(self) else (np.nan,) * 2
        return (f"CycleBranch({self.param} in [{lo:.6g}, {hi:.6g}], {len(self)} cycles, "
                f"special={list(self.special_points)}, stop={self.stop_reason!r})")


def _lagrange(nodes: np.ndarray, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Values and derivatives of the Lagrange basis on ``nodes`` at ``at``: float64[len(at), len(nodes)] each."""
    m = nodes.size
    L = np.ones((at.size, m))
    dL = np.zeros((at.size, m))
    for b in range(m):
        others = np.delete(nodes, b)
        denom = np.prod(nodes[b] - others)
        for a, x in enumerate(at):
            L[a, b] = np.prod(x - others) / denom
            dL[a, b] = sum(np.prod(np.delete(x - others, r)) for r in range(m - 1)) / denom
    return L, dL


class _CollocationProblem:
    """The collocation system of a periodic orbit with unknowns ``u = (x at basis points, T, λ)``."""

    test_names = CYCLE_KINDS

    def __init__(self, csys, prm: np.ndarray, k: int, ntst: int, ncol: int, der):
        self.ev = _Evaluator(csys, prm)
        self.der = der
        self.n, self.k, self.N, self.m = csys.n_states, k, ntst, ncol
        self.base = prm.copy()
        self.npts = ntst * ncol + 1
        self.dim = self.n * self.npts + 2
        self.param_slots = (self.dim - 1,)
        self.weights = np.r_[np.full(self.n * self.npts, 1.0 / (self.npts - 1)), 1.0, 1.0]
        self.h = 1.0 / ntst
        g, gw = np.polynomial.legendre.leggauss(ncol)
        self.gauss_w = gw / 2.0
        self.L, self.D = _lagrange(np.linspace(0.0, 1.0, ncol + 1), (g + 1.0) / 2.0)
        self.idx = np.arange(ntst)[:, None] * ncol + np.arange(ncol + 1)[None, :]  # [N, m+1] basis points
        self.tau = np.linspace(0.0, 1.0, self.npts)
        self.period_max = np.inf
        self.first_amplitude: float | None = None
        self.xdot_ref = np.zeros((ntst, ncol, self.n))
        self.x_ref_c = np.zeros((ntst, ncol, self.n))
        self._pattern()

    # ---------------------------------------------------------------- layout
    def unpack(self, u: np.ndarray) -> tuple[np.ndarray, float, float]:
        return u[:-2].reshape(self.npts, self.n), float(u[-2]), float(u[-1])

    def prm(self, lam: float) -> np.ndarray:
        p = self.base.copy()
        p[self.k] = lam
        return p

    def _pattern(self) -> None:
        """Row/column indices of the sparse Jacobian (fixed), in the order :meth:`DF` fills the values."""
        n, N, m = self.n, self.N, self.m
        rows, cols = [], []
        ii, jj = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
        for j in range(N):
            for c in range(m):
                r0 = (j * m + c) * n
                for b in range(m + 1):
                    rows.append(r0 + ii.ravel())
                    cols.append(self.idx[j, b] * n + jj.ravel())
        n_col = N * m * n
        tcol, lcol = self.dim - 2, self.dim - 1
        rows += [np.arange(n_col), np.arange(n_col)]
        cols += [np.full(n_col, tcol), np.full(n_col, lcol)]
        rows += [n_col + np.arange(n), n_col + np.arange(n)]  # periodicity
        cols += [(self.npts - 1) * n + np.arange(n), np.arange(n)]
        rows.append(np.full(self.npts * n, n_col + n))  # phase
        cols.append(np.arange(self.npts * n))
        self._rows, self._cols = np.concatenate(rows), np.concatenate(cols)

    # ---------------------------------------------------------------- evaluation
    def _at_collocation(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(x, x')`` at the collocation points, float64[N, m, n] each (``x'`` w.r.t. τ)."""
        Xb = X[self.idx]
        return np.einsum("cl,jln->jcn", self.L, Xb), np.einsum("cl,jln->jcn", self.D, Xb) / self.h

    def F(self, u: np.ndarray) -> np.ndarray:
        X, T, lam = self.unpack(u)
        xc, xd = self._at_collocation(X)
        p = self.prm(lam)
        f = np.array([self.ev.f(x, p) for x in xc.reshape(-1, self.n)]).reshape(xc.shape)
        phase = self.h * np.einsum("c,jcn,jcn->", self.gauss_w, xc - self.x_ref_c, self.xdot_ref)
        return np.r_[(xd - T * f).ravel(), X[-1] - X[0], phase]

    def DF(self, u: np.ndarray):
        X, T, lam = self.unpack(u)
        n, N, m = self.n, self.N, self.m
        xc, _ = self._at_collocation(X)
        p = self.prm(lam)
        pts = xc.reshape(-1, n)
        Jc = np.array([self.ev.J(x, p) for x in pts]).reshape(N, m, n, n)
        fc = np.array([self.ev.f(x, p) for x in pts])
        fl = np.array([self.der.param_jac(x, p)[:, self.k] for x in pts])
        blocks = (self.D[None, :, :, None, None] / self.h * np.eye(n)[None, None, None]
                  - T * self.L[None, :, :, None, None] * Jc[:, :, None])  # [N, m, m+1, n, n]
        phase = np.zeros((self.npts, n))
        np.add.at(phase, self.idx, self.h * np.einsum("c,cl,jcn->jln", self.gauss_w, self.L, self.xdot_ref))
        vals = np.concatenate([blocks.ravel(), -fc.ravel(), -T * fl.ravel(), np.ones(n), -np.ones(n), phase.ravel()])
        return sps.csr_matrix((vals, (self._rows, self._cols)), shape=(self.dim - 1, self.dim))

    @staticmethod
    def solve(DF, row: np.ndarray, rhs: np.ndarray) -> np.ndarray:
        M = sps.vstack([DF, sps.csr_matrix(row[None, :])]).tocsc()
        try:
            x = splu(M).solve(rhs)
            if np.all(np.isfinite(x)):
                return x
        except RuntimeError:  # exactly singular
            pass
        return np.linalg.lstsq(M.toarray(), rhs, rcond=None)[0]

    def multipliers(self, u: np.ndarray) -> np.ndarray:
        """Floquet multipliers (complex128[n], by decreasing modulus) from the condensed collocation equations."""
        X, T, lam = self.unpack(u)
        n, m = self.n, self.m
        xc, _ = self._at_collocation(X)
        p = self.prm(lam)
        M = np.eye(n)
        for j in range(self.N):
            blk = np.zeros((m * n, (m + 1) * n))
            for c in range(m):
                Jc = self.ev.J(xc[j, c], p)
                for b in range(m + 1):
                    blk[c * n:(c + 1) * n, b * n:(b + 1) * n] = (self.D[c, b] / self.h * np.eye(n)
                                                                 - T * self.L[c, b] * Jc)
            try:
                inner = np.linalg.solve(blk[:, n:], -blk[:, :n])
            except np.linalg.LinAlgError:
                return np.full(n, np.nan + 0j)
            M = inner[-n:] @ M
        mu = np.linalg.eigvals(M)
        return mu[np.argsort(-np.abs(mu), kind="stable")]

    def tests(self, u: np.ndarray, t: np.ndarray) -> np.ndarray:
        mu = self.multipliers(u)
        return np.array([t[-1], float(np.real(np.prod((mu + 1.0) / (1.0 + np.abs(mu)))))])

    def confirm(self, kind: str, u: np.ndarray) -> bool:
        if kind == "period_doubling":
            mu = self.multipliers(u)
            return bool(np.min(np.abs(mu + 1.0)) < 1e-3)
        return True

    def update(self, u: np.ndarray, t: np.ndarray | None = None) -> None:
        """The new phase reference: the cycle ``u``."""
        self.x_ref_c, self.xdot_ref = self._at_collocation(self.unpack(u)[0])

    def amplitude(self, u: np.ndarray) -> float:
        X = self.unpack(u)[0]
        return float(np.max(np.abs(X - X[:-1].mean(axis=0))))

    def stop(self, u: np.ndarray) -> str | None:
        """End the branch when the period passes ``period_max`` (a homoclinic orbit is near) or the amplitude
        falls below half the first cycle's (the family shrinks back to an equilibrium: another Hopf point)."""
        if u[-2] > self.period_max:
            return "period_max"
        amp = self.amplitude(u)
        if self.first_amplitude is None:
            self.first_amplitude = amp
        elif amp < 0.5 * self.first_amplitude:
            return "hopf"
        return None


def _trivial(mu: np.ndarray) -> tuple[np.ndarray, float]:
    """``(non-trivial multipliers, |trivial - 1|)``."""
    k = int(np.argmin(np.abs(mu - 1.0)))
    return np.delete(mu, k), float(abs(mu[k] - 1.0))


def continue_cycles(csys, start, params=None, param: str = "mu", bounds: tuple[float, float] | None = None, *,
                    index: int = 0, ntst: int = 40, ncol: int = 4, ds: float = 0.01, ds_min: float = 1e-6,
                    ds_max: float = 0.1, max_points: int = 500, tol: float = 1e-9, max_newton: int = 10,
                    detect: tuple[str, ...] = CYCLE_KINDS, locate_tol: float = 1e-10, period_max: float = 1e4,
                    y_max: float = 1e6, stable_tol: float = 1e-6) -> CycleBranch:
    """Continue the family of limit cycles born at a Hopf point, in one parameter.

    Parameters
    ----------
    csys : CompiledSystem
        Compiled with ``jac=True`` from a SymPy system (the parameter derivative is generated).
    start : Branch, SpecialPoint, CurvePoint, FixedPoint, float64[n_states] or mapping
        The Hopf point: a :class:`Branch` (its ``index``-th Hopf point, with the branch's parameters), a point
        of a Hopf curve, or a point with ``params``. Its Jacobian must have a complex pair on the imaginary axis.
    params : mapping or float64[n_params], optional
        Every parameter at the Hopf point (not needed for a Branch or CurvePoint).
    param : str
        The continuation parameter.
    bounds : (lo, hi), optional
        Stop when the parameter leaves the interval (the last cycle sits on the bound).
    index : int
        Which Hopf point of a Branch.
    ntst, ncol : int
        Mesh intervals and collocation points per interval (the profile has ``ntst * ncol + 1`` points).
    ds, ds_min, ds_max : float
        Arclength steps in the norm :math:`(\\int_0^1 |x|^2 d\\tau + T^2 + \\lambda^2)^{1/2}`; the first step is
        (nearly) the cycle's amplitude.
    max_points : int
    tol : float
        Newton residual of the collocation system.
    detect : tuple of str
        Which of ``"fold_cycle"``, ``"period_doubling"`` to locate.
    locate_tol : float
        Arclength tolerance of their location.
    period_max : float
        Stop when the period exceeds it (approach to a homoclinic orbit).
    y_max : float
        Stop when a state exceeds it in absolute value.
    stable_tol : float
        A cycle is stable when every non-trivial multiplier has modulus ``< 1 - stable_tol``.

    Returns
    -------
    CycleBranch

    Raises
    ------
    InvalidParameterError
        On bad options, or a start that is not a Hopf point.
    """
    from ..compile import compile_derivatives

    if param not in csys.param_names:
        raise InvalidParameterError(f"param {param!r} is not a parameter of {csys.system.name!r}; its parameters are "
                                    f"{list(csys.param_names)}")
    ntst = check_int("ntst", ntst, 2)
    ncol = check_int("ncol", ncol, 1, 7)
    ds = check_range("ds", ds, 0.0, low_open=True)
    ds_min = check_range("ds_min", ds_min, 0.0, ds, low_open=True)
    ds_max = check_range("ds_max", ds_max, ds)
    max_points = check_int("max_points", max_points, 1)
    tol = check_range("tol", tol, 0.0, 1.0, low_open=True)
    max_newton = check_int("max_newton", max_newton, 1)
    period_max = check_range("period_max", period_max, 0.0, low_open=True)
    unknown = sorted(set(detect) - set(CYCLE_KINDS))
    if unknown:
        raise InvalidParameterError(f"detect: unknown kinds {unknown}; choose from {CYCLE_KINDS}")
    y, prm = start_from(csys, start, params, "hopf", index)
    k = csys.param_names.index(param)
    prob = _CollocationProblem(csys, prm, k, ntst, ncol, compile_derivatives(csys))
    J = prob.ev.J(y)
    ev, V = np.linalg.eig(J)
    scale = max(1.0, float(np.max(np.abs(ev))))
    cands = np.flatnonzero(ev.imag > 1e-8 * scale)
    if cands.size == 0:
        raise InvalidParameterError(f"start: the Jacobian has no complex eigenvalue pair (eigenvalues {ev}); "
                                    "cycles are continued from a Hopf point")
    c = cands[int(np.argmin(np.abs(ev.real[cands])))]
    if abs(ev[c].real) > 1e-6 * scale or np.max(np.abs(prob.ev.f(y))) > 1e-8 * (1.0 + np.max(np.abs(y))):
        raise InvalidParameterError(f"start: not a Hopf point (eigenvalue {ev[c]:.6g}, residual "
                                    f"{np.max(np.abs(prob.ev.f(y))):.3g}); locate it first with continue_branch "
                                    "or continue_hopf")
    omega, q = float(ev[c].imag), V[:, c]
    lo, hi = -np.inf, np.inf
    if bounds is not None:
        lo, hi = (check_range(f"bounds[{i}]", b) for i, b in enumerate(bounds))
        if not lo < hi or not A.inside(prm[k], lo, hi):
            raise InvalidParameterError(f"bounds must have lo < hi and contain {param}={prm[k]:.10g}, got {bounds!r}")
    u0 = np.r_[np.tile(y, prob.npts), 2.0 * np.pi / omega, prm[k]]
    t0 = np.r_[np.real(np.outer(np.exp(2j * np.pi * prob.tau), q)).ravel(), 0.0, 0.0]
    t0 /= np.sqrt(np.sum(prob.weights * t0 * t0))
    prob.update(u0 + ds * t0)  # the first phase reference: the direction of the small cycles
    prob.period_max = period_max
    tr = A.trace(prob, u0, t0, ds=ds, ds_min=ds_min, ds_max=ds_max, max_points=max_points,
                 tol=tol, max_newton=max_newton, bounds={prob.dim - 1: (lo, hi)} if bounds is not None else {},
                 y_slots=np.arange(prob.dim - 2), y_max=y_max, detect=tuple(detect), locate_tol=locate_tol,
                 closed_check=False)
    U = np.array(tr.points)
    mus = np.array([prob.multipliers(u) for u in U])
    nontrivial = [_trivial(mu) for mu in mus]
    stable = np.array([bool(np.all(np.abs(nt) < 1.0 - stable_tol)) for nt, _ in nontrivial])
    errs = np.array([e for _, e in nontrivial])
    sps_ = tuple(CyclePoint(kd, float(U[i, -1]), float(U[i, -2]), i, _frozen(mus[i], np.complex128))
                 for i, kd in tr.specials)
    others = {nm: float(v) for nm, v in zip(csys.param_names, prm) if nm != param}
    return CycleBranch(param, _frozen(U[:, -1]), _frozen(U[:, -2]), _frozen(prob.tau),
                       _frozen(U[:, :-2].reshape(len(U), prob.npts, prob.n)), _frozen(mus, np.complex128),
                       _frozen(stable, bool), sps_, csys.state_names, others, tr.stop_reason, _frozen(errs), ntst, ncol)


__all__ = ["CycleBranch", "CyclePoint", "CYCLE_KINDS", "continue_cycles"]
