"""Numerics of the contrastive ODEs: the compiled order-parameter system (Gauss quadrature of the derived
loss derivatives), its solutions, the uninformative state and its stability (learnability threshold), basins of
feature selection, final cosines against the augmentation noise, and the systems offered to the CLI. The model
is our reconstruction of Meng & Wang's (arXiv 2406.06909), see ``derivations/contrastive_highdim.md`` §0."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Sequence

import numpy as np
import sympy as sp
from scipy.optimize import brentq

from ..._checks import check_int
from ..._jit import njit
from ..._random import SeedLike, as_generator
from ...analysis import linearize
from ...compile import CompiledSystem, compile_system
from ...errors import InvalidParameterError
from ...solve import Solution, solve, solve_ensemble
from .. import BuiltinSystem
from .._quadrature import gauss_hermite
from . import _kernels as K_
from . import _symbolic as S
from ._simulate import RULE_POINTS, HiddenLaw, initial_overlaps
from ._symbolic import Hyper


# ------------------------------------------------------------------------------------------ compiled ODE
@lru_cache(maxsize=None)
def integrand(act: str):
    """The compiled loss-derivative integrand of :func:`._symbolic.integrand_system` (njit dispatcher)."""
    return compile_system(S.integrand_system(act), jac=False).observed_into


class ContrastiveODE:
    """The closed order-parameter ODEs of ``K`` neurons over ``d`` features as a :class:`CompiledSystem`.

    Parameters (packed in this order): ``beta, eta, lambda, rho, sigma, tau``, the law's one-coordinate
    rule ``cx_1..cx_L, cw_1..cw_L`` and ``c_gauss`` (the Gaussian law's scale, else 0; see :meth:`pack`). States ``q_1..q_d, Q`` (``K = 1``) or
    ``q_{i}_{k}, Q_{k}``. ``csys`` works with :func:`theorykit.solve.solve`, ``solve_ensemble`` and the
    analysis functions; its Jacobian is a central finite difference of the quadrature right-hand side.

    The Gaussian averages use ``gh_points`` Gauss–Hermite nodes per coordinate while the Gaussian's scale
    (``sqrt(Q (s² ± κ) / 2)``) is at most ``_kernels.GAUSS_HERMITE_SCALE`` = 0.4, and above it a trapezoid rule
    accurate to about 1e-6 relative at any scale (Gauss–Hermite converges slowly there: with 12 nodes the
    uninformative ``Q*`` at σ = 1 was 0.7% off).
    """

    def __init__(self, d: int = 2, K: int = 1, act: str = "tanh", gh_points: int = 12):
        self.d = check_int("d", d, 1, 8)
        self.K = check_int("K", K, 1, 64)
        if act not in S.ACTIVATIONS:
            raise InvalidParameterError(f"activation must be one of {S.ACTIVATIONS}, got {act!r}")
        self.act = act
        self.gh_points = check_int("gh_points", gh_points, 2, 64)
        L = RULE_POINTS
        extra = tuple(sp.Symbol(f"cx_{j + 1}", real=True) for j in range(L)) + tuple(
            sp.Symbol(f"cw_{j + 1}", real=True) for j in range(L)) + (sp.Symbol("c_gauss", real=True),)
        self.system = S.closed_ode_abstract(self.d, self.K, extra)
        self.csys = _compiled(self.system, act, self.d, L, self.gh_points)
        #: the compiled loss-derivative integrand and the Gauss–Hermite rule of the quadrature
        self.integrand = integrand(act)
        self.gauss_hermite = gauss_hermite(self.gh_points)

    def pack(self, hyper: Hyper, law: HiddenLaw) -> np.ndarray:
        """float64[n_params]: ``[beta, eta, lambda, rho, sigma, tau, cx..., cw..., c_gauss]``."""
        cx, cw = law.rule(RULE_POINTS)
        return np.concatenate(([hyper.beta, hyper.eta, hyper.lam, hyper.rho, hyper.sigma, hyper.tau], cx, cw,
                               [law.gaussian_scale]))

    def state(self, q0: Any, Q0: float) -> np.ndarray:
        """Initial state from overlaps ``q0`` (float64[d] shared by all neurons, or [d, K]) and norm ``Q0``."""
        q0, Q0 = initial_overlaps(q0, Q0, self.K)
        if q0.shape[0] != self.d:
            raise InvalidParameterError(f"q0 has {q0.shape[0]} overlaps but the ODEs have d = {self.d} features")
        return np.concatenate([np.append(q0[:, k], Q0) for k in range(self.K)])

    def expectations(self, q, Q: float, hyper: Hyper, law: HiddenLaw) -> tuple[np.ndarray, float, float]:
        """``(A float64[d], B, D)`` at one neuron's order parameters (``D`` with the negative-pair term)."""
        cx, cw = law.rule(RULE_POINTS)
        gx, gw = self.gauss_hermite
        A = np.empty(self.d)
        B, D, F2, Fp2 = K_.expectations_into(self.integrand, np.asarray(q, dtype=float), float(Q), hyper.s2,
                                             hyper.kappa, cx, cw, law.gaussian_scale, gx, gw, A)
        return A, B, D + 2 * hyper.beta**2 * hyper.s2 * F2 * Fp2


@lru_cache(maxsize=None)
def _compiled(system, act: str, d: int, L: int, gh_points: int) -> CompiledSystem:
    """A CompiledSystem whose functions are njit closures over the quadrature kernels (one per
    activation/d/K/rule size: numba compiles them once per process; closures cannot be disk-cached)."""
    fn = integrand(act)
    gx, gw = gauss_hermite(gh_points)
    n_states = system.n_states
    n_obs = len(system.observed)
    dd = d

    @njit
    def rhs_into(t, y, p, out):
        beta, eta, lam, rho, sigma, tau = p[0], p[1], p[2], p[3], p[4], p[5]
        s2 = eta + sigma * sigma
        kap = eta + rho * sigma * sigma
        K_.ode_rhs_into(fn, y, dd, tau, lam, s2, kap, beta, p[6:6 + L], p[6 + L:6 + 2 * L], p[6 + 2 * L], gx, gw,
                        out)

    @njit
    def jac_into(t, y, p, out):
        f1 = np.empty(n_states)
        f2 = np.empty(n_states)
        yy = y.copy()
        for j in range(n_states):
            h = 1e-6 * max(1.0, abs(y[j]))
            yy[j] = y[j] + h
            rhs_into(t, yy, p, f1)
            yy[j] = y[j] - h
            rhs_into(t, yy, p, f2)
            yy[j] = y[j]
            for i in range(n_states):
                out[i, j] = (f1[i] - f2[i]) / (2.0 * h)

    @njit
    def observed_into(t, y, p, out):
        k = 0
        for o in range(0, n_states, dd + 1):
            Qk = y[o + dd]
            for i in range(dd):
                if k < n_obs:
                    out[k] = y[o + i] / math.sqrt(Qk) if Qk > 0.0 else 0.0
                k += 1

    source = ("# quadrature realisation of the closed ODEs: theorykit.theories.contrastive_highdim._kernels."
              f"ode_rhs_into with the compiled integrand of {S.integrand_system(act).name!r}, "
              f"{gh_points}x{gh_points} Gauss-Hermite nodes up to Gaussian scale 0.4 and a trapezoid rule above, a "
              f"{L}-point rule per coordinate of c\n")
    return CompiledSystem.from_functions(system, rhs_into=rhs_into, jac_into=jac_into, observed_into=observed_into,
                                         source=source)


@lru_cache(maxsize=None)
def compiled_ode(d: int = 2, K: int = 1, act: str = "tanh", gh_points: int = 12) -> ContrastiveODE:
    """The :class:`ContrastiveODE` of ``K`` neurons over ``d`` features (one per setting and process)."""
    return ContrastiveODE(d=d, K=K, act=act, gh_points=gh_points)


def ode_solution(ode: ContrastiveODE, hyper: Hyper, law: HiddenLaw, q0: Any, Q0: float,
                 t_eval: Sequence[float]) -> Solution:
    """The closed ODEs from overlaps ``q0`` and norm ``Q0`` at ``t = 0``, integrated (Dormand–Prince,
    rtol 1e-8, atol 1e-10) and given at ``t_eval`` (in ``[0, t_eval[-1]]``).

    The states ``q_i``, ``Q`` and observables ``m_i`` carry the names :func:`simulate_sgd` records, so
    ``compare(ode_solution(..., t_eval=run.t), run, names)`` pairs them.
    """
    t_eval = np.asarray(t_eval, dtype=float)
    return solve(ode.csys, ode.state(q0, Q0), (0.0, float(t_eval[-1])), ode.pack(hyper, law), t_eval=t_eval,
                 rtol=1e-8, atol=1e-10)


@dataclass(frozen=True)
class Uninformative:
    """The uninformative fixed point ``q = 0, Q = Q_star`` and its linear stability.

    ``growth`` is the cosine growth rate ``d log m_i / dt`` (the q-block eigenvalue); ``eigenvalues`` of
    the full Jacobian; ``G1``, ``B0``, ``D0`` the Gaussian coefficients at the point (``A_i ≈ G1 <c²> q_i``);
    ``threshold_m2`` the ``<c²>`` at which ``growth`` changes sign, ``-(B0 + λ) / G1`` (``Q_star`` does not
    depend on the law).
    """

    Q_star: float
    eigenvalues: np.ndarray
    growth: float
    G1: float
    B0: float
    D0: float
    threshold_m2: float

    @property
    def learnable(self) -> bool:
        return self.growth > 0


def uninformative_state(ode: ContrastiveODE, hyper: Hyper, law: HiddenLaw, *, Q_bounds=(1e-6, 1e4)) -> Uninformative:
    """Solve ``dQ/dt = 0`` at ``q = 0`` (``τ D0(Q) / (2Q) = B0(Q) + λ``; the largest root) and linearise there.

    Raises ``ValueError`` if there is no positive root in ``Q_bounds`` (the norm collapses to 0).
    """
    zero = np.zeros(ode.d)

    def g(Q: float) -> float:
        _, B, D = ode.expectations(zero, Q, hyper, law)
        return hyper.tau * D / (2 * Q) - B - hyper.lam

    grid = np.geomspace(*Q_bounds, 80)
    vals = np.array([g(Q) for Q in grid])
    sign = np.where(np.sign(vals[:-1]) * np.sign(vals[1:]) < 0)[0]
    if sign.size == 0:
        raise ValueError(f"no uninformative fixed point with Q > 0 at {hyper} (the weights collapse)")
    i = sign[-1]
    Q_star = brentq(g, grid[i], grid[i + 1], xtol=1e-13, rtol=1e-12)
    y = ode.state(zero, Q_star)
    fp = linearize(ode.csys, y, ode.pack(hyper, law))
    growth = float(fp.jacobian[0, 0])
    _, B0, D0 = ode.expectations(zero, Q_star, hyper, law)
    G1 = float((-growth / hyper.tau - B0 - hyper.lam) / law.m2)
    return Uninformative(float(Q_star), np.asarray(fp.eigenvalues), growth, G1, float(B0), float(D0),
                         float(-(B0 + hyper.lam) / G1))


def learnability_threshold(ode: ContrastiveODE, hyper: Hyper) -> float:
    """The critical ``<c²>`` above which features grow from the uninformative state:
    ``<c²>_c = -(B0 + λ) / G1`` at ``Q_star`` (which does not depend on the law)."""
    return uninformative_state(ode, hyper, HiddenLaw.rademacher(1.0)).threshold_m2


def classify_selection(m_final: np.ndarray, *, pure: float = 0.9, tol: float = 0.1) -> np.ndarray:
    """Label final cosines float64[n, d]: index ``i`` if only feature ``i`` is learned (``|m_i| >= pure``,
    the others ``< tol``), ``d`` for mixtures, ``d + 1`` if nothing is learned (``max |m| < tol``)."""
    m = np.abs(np.asarray(m_final, dtype=float))
    n, d = m.shape
    lab = np.full(n, d, dtype=np.int64)
    top = np.argmax(m, axis=1)
    others = np.sort(m, axis=1)[:, -2] if d > 1 else np.zeros(n)
    lab[(m[np.arange(n), top] >= pure) & (others < tol)] = top[(m[np.arange(n), top] >= pure) & (others < tol)]
    lab[m.max(axis=1) < tol] = d + 1
    return lab


def basin_fractions(ode: ContrastiveODE, hyper: Hyper, law: HiddenLaw, *, n_init: int = 64, radius: float = 0.3,
                    Q0: float = 1.0, t_final: float = 40.0, seed: SeedLike = 0) -> dict[str, Any]:
    """Integrate the ODEs from ``n_init`` initial cosines spread uniformly on the circle/sphere of
    ``radius`` (same seed, same points for every law) and count where they end.

    Returns ``{"labels", "fractions" (float64[d + 2]: feature 1..d, mixed, none), "m_final"}``.
    """
    rng = as_generator(seed)
    dirs = rng.standard_normal((n_init, ode.d))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    Y0 = np.array([ode.state(radius * np.sqrt(Q0) * u, Q0) for u in dirs])
    ens = solve_ensemble(ode.csys, Y0, (0.0, t_final), ode.pack(hyper, law), rtol=1e-6, atol=1e-9)
    yf = np.asarray(ens.final).reshape(n_init, ode.K, ode.d + 1)[:, 0, :]
    m_final = yf[:, :ode.d] / np.sqrt(np.maximum(yf[:, ode.d:], 1e-300))
    lab = classify_selection(m_final)
    frac = np.bincount(lab, minlength=ode.d + 2) / n_init
    return {"labels": lab, "fractions": frac, "m_final": m_final, "initial": Y0}


def final_cosine_grid(ode: ContrastiveODE, law: HiddenLaw, base: Hyper, sigmas: Sequence[float],
                      rhos: Sequence[float], *, q0=(0.3, 0.2), Q0: float = 1.0,
                      t_final: float = 60.0) -> dict[str, np.ndarray]:
    """Final ``max_i |m_i|``, ``Q`` and the diffusion ``D`` at the end, on a ``sigma × rho`` grid
    (one ensemble integration). Returns float64[n_sigma, n_rho] arrays ``m``, ``Q``, ``D``."""
    sig = np.asarray(sigmas, dtype=float)
    rh = np.asarray(rhos, dtype=float)
    P = np.array([ode.pack(base.replace(sigma=s, rho=r), law) for s in sig for r in rh])
    ens = solve_ensemble(ode.csys, ode.state(q0, Q0), (0.0, t_final), P, rtol=1e-7, atol=1e-10)
    yf = np.asarray(ens.final)[:, :ode.d + 1]
    Q = yf[:, ode.d]
    m = np.max(np.abs(yf[:, :ode.d]), axis=1) / np.sqrt(np.maximum(Q, 1e-300))
    D = np.array([ode.expectations(y[:ode.d], max(y[ode.d], 1e-12), base.replace(sigma=s, rho=r), law)[2]
                  for y, (s, r) in zip(yf, [(s, r) for s in sig for r in rh])])
    shape = (sig.size, rh.size)
    return {"sigma": sig, "rho": rh, "m": m.reshape(shape), "Q": Q.reshape(shape), "D": D.reshape(shape)}


def gaussian_coefficients(ode: ContrastiveODE, hyper: Hyper, Q: float, *, x_max: float = 0.05) -> dict[str, float]:
    """The Gaussian coefficients of :func:`._symbolic.small_q_expansion` at norm ``Q``, by a polynomial fit
    of the quadrature expectations along ``q = (x, 0, ...)`` for Rademacher ``c`` (``<c^2> = <c^4> = 1``):
    ``A_1 = G1 x + G3 x^3 / 6``, ``B = B0 + B2 x^2 / 2``, ``D = D0 + D2 x^2 / 2`` (+ O(x^4))."""
    law = HiddenLaw.rademacher()
    xs = np.linspace(-x_max, x_max, 9)
    vals = []
    for x in xs:
        q = np.zeros(ode.d)
        q[0] = x
        A, B, D = ode.expectations(q, Q, hyper, law)
        vals.append((A[0], B, D))
    A1, B, D = (np.array(v) for v in zip(*vals))
    a = np.polyfit(xs, A1, 5)[::-1]
    b = np.polyfit(xs, B, 4)[::-1]
    dd = np.polyfit(xs, D, 4)[::-1]
    return {"G_1": float(a[1]), "G_3": float(6 * a[3]), "B_0": float(b[0]), "B_2": float(2 * b[2]),
            "D_0": float(dd[0]), "D_2": float(2 * dd[2])}


#: Gaussian coefficients of the tanh ODEs at the uninformative state for tau = 1, lambda = 0.2, sigma = 1,
#: rho = eta = 0 (Q_star = 0.90757), with Rademacher moments; the defaults of the ``small_q`` system
SMALL_Q_DEFAULTS = {"<c^2>": 1.0, "<c^4>": 1.0, "G_1": -0.77696, "G_3": 1.9837, "B_0": 0.0, "B_2": 0.99184,
                    "D_0": 0.36303, "D_2": 0.08299, "lambda": 0.2, "tau": 1.0}


def _small_q_system():
    return S.small_q_expansion(2, 3)["system"]


def contrastive_highdim_systems() -> dict[str, BuiltinSystem]:
    """Systems for the CLI analysis commands: the exact linear-activation ODEs and the cubic expansion of
    the tanh ODEs at the uninformative state (law through ``<c^2>``, ``<c^4>``)."""
    return {
        "linear": BuiltinSystem(
            "linear", lambda: S.linear_system(2),
            {"<c^2>": 1.0, "beta": 0.0, "eta": 0.0, "lambda": 2.5, "rho": 0.0, "sigma": 0.5, "tau": 0.5},
            {"q_1": 0.3, "q_2": 0.2, "Q": 1.0},
            "contrastive ODEs (q_1, q_2, Q) for linear activation: exact, closed",
            {"sigma": (0.0, 1.5), "rho": (-1.0, 1.0), "lambda": (1.0, 4.0)}),
        "small_q": BuiltinSystem(
            "small_q", _small_q_system,
            # gaussian_coefficients at tau = 1, lambda = 0.2, sigma = 1, rho = 0, Q = Q_star (checked by a test)
            dict(SMALL_Q_DEFAULTS),
            {"q_1": 0.05, "q_2": 0.03, "Q": 0.90757},
            "cubic expansion of the contrastive ODEs at q = 0 (Gaussian coefficients as parameters)",
            {"<c^4>": (1.0, 10.0), "lambda": (0.0, 1.0)}),
    }


__all__ = ["ContrastiveODE", "compiled_ode", "ode_solution", "Uninformative", "uninformative_state",
           "learnability_threshold", "classify_selection", "basin_fractions", "final_cosine_grid",
           "gaussian_coefficients", "SMALL_Q_DEFAULTS", "contrastive_highdim_systems"]
