"""The contrastive model's numeric side: laws of the hidden variable, hyper-parameters, the compiled
order-parameter ODEs (Gauss quadrature of the derived loss derivatives), finite-n SGD and the PDE
particle method. The model is our reconstruction of Meng & Wang's (arXiv 2406.06909; only the abstract
could be read), see ``derivations/contrastive_highdim.md`` §0."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Mapping

import numpy as np
import sympy as sp
from numba import njit

from ..._checks import check_int, check_range
from ..._random import SeedLike, as_generator
from ...compile import CompiledSystem, compile_system
from ...derive import Law
from ...errors import InvalidParameterError
from ...progress import Progress
from . import _kernels as K_
from . import _symbolic as S

#: points of the one-coordinate quadrature rule of continuous laws (exact for moments up to degree 15;
#: for Gaussian c the cosines then differ from a 12-point rule by < 1e-4, with 5 points by 4e-3)
RULE_POINTS = 8


# ------------------------------------------------------------------------------------------ laws of c
def _gauss_rule_from_moments(moments: Mapping[int, float], max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss quadrature nodes/weights of a symmetric law from its even moments (odd ones are 0).

    Uses the largest rule whose Hankel moment matrix is positive definite; raises if the given moments
    cannot belong to any law (a Hankel matrix with a negative eigenvalue, e.g. ``<c^4> < <c^2>^2``).
    """
    top = max(moments)
    mom = np.zeros(top + 2)
    mom[0] = 1.0
    for k, v in moments.items():
        mom[k] = v
    for k in range(2, top + 1, 2):
        if k not in moments:
            raise InvalidParameterError(f"law: moment <c^{k}> missing (give every even moment up to {top})")
    for size in range(1, top // 2 + 2):
        H = np.array([[mom[i + j] for j in range(size)] for i in range(size)])
        ev = np.linalg.eigvalsh(H)
        if ev.min() < -1e-10 * max(1.0, ev.max()):
            raise InvalidParameterError(
                f"law: moments {dict(sorted(moments.items()))} are inconsistent (their Hankel matrix of size "
                f"{size} has a negative eigenvalue {ev.min():.3g}); e.g. <c^4> >= <c^2>^2 is required")
    n = 1
    while n + 1 <= min(max_points, top // 2 + 1) and 2 * (n + 1) - 1 <= top + 1:
        H = np.array([[mom[i + j] for j in range(n + 1)] for i in range(n + 1)])
        if np.linalg.eigvalsh(H).min() <= 1e-12 * max(1.0, np.abs(H).max()):
            break
        n += 1
    H = np.array([[mom[i + j] for j in range(n)] for i in range(n)])
    rhs = -np.array([mom[n + i] for i in range(n)])
    coef = np.linalg.solve(H, rhs)  # monic orthogonal polynomial x^n + sum coef_i x^i
    nodes = np.sort(np.roots(np.concatenate(([1.0], coef[::-1]))).real)
    V = np.vander(nodes, n, increasing=True).T
    weights = np.linalg.solve(V, mom[:n])
    return nodes, weights


@dataclass(frozen=True)
class HiddenLaw:
    """Law of each (i.i.d., symmetric) coordinate of the hidden variable ``c``.

    ``nodes``/``weights`` are the one-coordinate Gauss rule the ODEs use (exact for laws with at most
    :data:`RULE_POINTS` atoms, exact in the moments up to degree ``2 RULE_POINTS - 1`` otherwise);
    ``sampler`` (``"discrete"`` on the rule, ``"gaussian"``, ``"uniform"``) and ``scale`` drive SGD.
    """

    name: str
    nodes: tuple[float, ...]
    weights: tuple[float, ...]
    sampler: str = "discrete"
    scale: float = 1.0

    def moment(self, k: int) -> float:
        """Exact raw moment ``<c^k>`` of the law."""
        if k % 2:
            return 0.0
        if self.sampler == "gaussian":
            return self.scale**k * float(sp.factorial2(k - 1))
        if self.sampler == "uniform":
            return self.scale**k / (k + 1)
        return float(np.dot(self.weights, np.asarray(self.nodes) ** k))

    @property
    def m2(self) -> float:
        return self.moment(2)

    @property
    def kappa4(self) -> float:
        """Excess kurtosis ``<c^4> - 3 <c^2>^2``."""
        return self.moment(4) - 3 * self.m2**2

    def rule(self, points: int = RULE_POINTS) -> tuple[np.ndarray, np.ndarray]:
        """float64[points] nodes and weights, padded with zero-weight nodes."""
        x = np.zeros(points)
        w = np.zeros(points)
        x[:len(self.nodes)] = self.nodes
        w[:len(self.weights)] = self.weights
        return x, w

    # -------------------------------------------------------------- constructors
    @classmethod
    def rademacher(cls, m2: float = 1.0) -> "HiddenLaw":
        s = math.sqrt(check_range("<c^2>", m2, 0.0, low_open=True))
        return cls("rademacher", (-s, s), (0.5, 0.5))

    @classmethod
    def gaussian(cls, m2: float = 1.0) -> "HiddenLaw":
        s = math.sqrt(check_range("<c^2>", m2, 0.0, low_open=True))
        x, w = np.polynomial.hermite_e.hermegauss(RULE_POINTS)
        return cls("gaussian", tuple(s * x), tuple(w / w.sum()), "gaussian", s)

    @classmethod
    def uniform(cls, m2: float = 1.0) -> "HiddenLaw":
        s = math.sqrt(3 * check_range("<c^2>", m2, 0.0, low_open=True))
        x, w = np.polynomial.legendre.leggauss(RULE_POINTS)
        return cls("uniform", tuple(s * x), tuple(w / w.sum()), "uniform", s)

    @classmethod
    def sparse_ternary(cls, p: float, m2: float = 1.0) -> "HiddenLaw":
        """``±sqrt(m2/p)`` with probability ``p/2`` each, else 0 (excess kurtosis ``m2²(1/p - 3)``)."""
        p = check_range("p", p, 0.0, 1.0, low_open=True)
        s = math.sqrt(check_range("<c^2>", m2, 0.0, low_open=True) / p)
        if p == 1.0:
            return cls(f"sparse(p={p:g})", (-s, s), (0.5, 0.5))
        return cls(f"sparse(p={p:g})", (-s, 0.0, s), (p / 2, 1 - p, p / 2))

    @classmethod
    def from_moments(cls, moments: Mapping[int, float] | Law, *, name: str = "moments") -> "HiddenLaw":
        """A symmetric law given by its even moments ``{2: <c^2>, 4: <c^4>, ...}`` (or a
        :class:`theorykit.derive.Law` with numeric moments); SGD samples its Gauss rule (a law with the
        same moments). Raises :class:`InvalidParameterError` for moments no law can have."""
        if isinstance(moments, Law):
            law = moments
            moments = {}
            for k in range(2, 2 * RULE_POINTS + 1, 2):
                try:
                    moments[k] = float(law.moment(k))
                except Exception:
                    break
        moments = {int(k): float(v) for k, v in dict(moments).items() if int(k) % 2 == 0 and int(k) > 0}
        if not moments or 2 not in moments:
            raise InvalidParameterError("law: give at least the second moment {2: <c^2>}")
        if moments[2] <= 0:
            raise InvalidParameterError(f"law: <c^2> must be > 0, got {moments[2]}")
        x, w = _gauss_rule_from_moments(moments, RULE_POINTS)
        return cls(name, tuple(x), tuple(w))


@dataclass(frozen=True)
class Hyper:
    """Training and augmentation hyper-parameters (validated).

    tau : step scale (SGD step ``tau/n``), > 0;  lam : regularisation strength, >= 0;
    sigma : augmentation noise std, >= 0;  rho : correlation of the two views' noise, in [-1, 1];
    eta : background noise variance, >= 0;  beta : weight of the negative pair ``+β f(z1) f(z3)``, >= 0.
    """

    tau: float = 0.5
    lam: float = 0.5
    sigma: float = 0.5
    rho: float = 0.0
    eta: float = 0.0
    beta: float = 0.0

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "tau", check_range("tau", self.tau, 0.0, low_open=True))
        set_(self, "lam", check_range("lam", self.lam, 0.0))
        set_(self, "sigma", check_range("sigma", self.sigma, 0.0))
        set_(self, "rho", check_range("rho", self.rho, -1.0, 1.0))
        set_(self, "eta", check_range("eta", self.eta, 0.0))
        set_(self, "beta", check_range("beta", self.beta, 0.0))

    @property
    def s2(self) -> float:
        return self.eta + self.sigma**2

    @property
    def kappa(self) -> float:
        return self.eta + self.rho * self.sigma**2

    def replace(self, **kw: float) -> "Hyper":
        return Hyper(**{**self.__dict__, **kw})


# ------------------------------------------------------------------------------------------ compiled ODE
@lru_cache(maxsize=None)
def integrand(act: str):
    """The compiled loss-derivative integrand of :func:`._symbolic.integrand_system` (njit dispatcher)."""
    return compile_system(S.integrand_system(act), jac=False).observed_into


@lru_cache(maxsize=None)
def gauss_hermite(points: int) -> tuple[np.ndarray, np.ndarray]:
    x, w = np.polynomial.hermite_e.hermegauss(points)
    return x, w / w.sum()


class ContrastiveODE:
    """The closed order-parameter ODEs of ``K`` neurons over ``d`` features as a :class:`CompiledSystem`.

    Parameters (packed in this order): ``beta, eta, lambda, rho, sigma, tau`` then the law's one-coordinate
    rule ``cx_1..cx_L, cw_1..cw_L`` (see :meth:`pack`). States ``q_1..q_d, Q`` (``K = 1``) or
    ``q_{i}_{k}, Q_{k}``. ``csys`` works with :func:`theorykit.solve.solve`, ``solve_ensemble`` and the
    analysis functions; its Jacobian is a central finite difference of the quadrature right-hand side.
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
            sp.Symbol(f"cw_{j + 1}", real=True) for j in range(L))
        self.system = S.closed_ode_abstract(self.d, self.K, extra)
        self.csys = _compiled(self.system, act, self.d, L, self.gh_points)

    def pack(self, hyper: Hyper, law: HiddenLaw) -> np.ndarray:
        """float64[n_params]: ``[beta, eta, lambda, rho, sigma, tau, cx..., cw...]``."""
        cx, cw = law.rule(RULE_POINTS)
        return np.concatenate(([hyper.beta, hyper.eta, hyper.lam, hyper.rho, hyper.sigma, hyper.tau], cx, cw))

    def state(self, q0: Any, Q0: float) -> np.ndarray:
        """Initial state from overlaps ``q0`` (float64[d] shared by all neurons, or [d, K]) and norm ``Q0``."""
        q0 = np.asarray(q0, dtype=float)
        q0 = np.repeat(q0.reshape(self.d, 1), self.K, axis=1) if q0.ndim == 1 else q0.reshape(self.d, self.K)
        Q0 = check_range("Q0", Q0, 0.0, low_open=True)
        if np.any(np.sum(q0**2, axis=0) > Q0 + 1e-12):
            raise InvalidParameterError("initial overlaps need |q0|^2 <= Q0 (cosines at most 1)")
        return np.concatenate([np.append(q0[:, k], Q0) for k in range(self.K)])

    def expectations(self, q, Q: float, hyper: Hyper, law: HiddenLaw) -> tuple[np.ndarray, float, float]:
        """``(A float64[d], B, D)`` at one neuron's order parameters (``D`` with the negative-pair term)."""
        cx, cw = law.rule(RULE_POINTS)
        gx, gw = gauss_hermite(self.gh_points)
        A = np.empty(self.d)
        B, D, F2, Fp2 = K_.expectations_into(integrand(self.act), np.asarray(q, dtype=float), float(Q), hyper.s2,
                                             hyper.kappa, cx, cw, gx, gw, A)
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
        K_.ode_rhs_into(fn, y, dd, tau, lam, s2, kap, beta, p[6:6 + L], p[6 + L:6 + 2 * L], gx, gw, out)

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
              f"{gh_points}x{gh_points} Gauss-Hermite nodes, a {L}-point rule per coordinate of c\n")
    return CompiledSystem.from_functions(system, rhs_into=rhs_into, jac_into=jac_into, observed_into=observed_into,
                                         source=source)


# ------------------------------------------------------------------------------------------ simulations
def orthonormal_features(n: int, d: int, seed: SeedLike) -> np.ndarray:
    """float64[n, d] random orthonormal feature directions ``U`` (QR of a Gaussian matrix)."""
    rng = as_generator(seed)
    U, _ = np.linalg.qr(rng.standard_normal((n, d)))
    return np.ascontiguousarray(U)


def initial_weights(U: np.ndarray, q0: np.ndarray, Q0: float, seed: SeedLike) -> np.ndarray:
    """float64[n, K]: columns ``U q0[:, k] + r_k`` with ``r_k ⟂ U``, ``|r_k|^2 = Q0 - |q0[:, k]|^2``."""
    rng = as_generator(seed)
    n, d = U.shape
    K = q0.shape[1]
    W = np.empty((n, K))
    for k in range(K):
        r = rng.standard_normal(n)
        r -= U @ (U.T @ r)
        r *= math.sqrt(max(Q0 - float(q0[:, k] @ q0[:, k]), 0.0)) / np.linalg.norm(r)
        W[:, k] = U @ q0[:, k] + r
    return W


@dataclass(frozen=True)
class Trajectory:
    """Order parameters over time: ``t`` float64[n_t], ``q`` float64[n_t, d, K], ``Q`` float64[n_t, K];
    ``m`` (cosines ``q / sqrt(Q)``) float64[n_t, d, K]."""

    t: np.ndarray
    q: np.ndarray
    Q: np.ndarray

    @property
    def m(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.q / np.sqrt(np.maximum(self.Q, 0.0))[:, None, :]


def _reg_code(reg: str) -> int:
    if reg not in ("L2", "L1"):
        raise InvalidParameterError(f"regularizer must be 'L2' or 'L1', got {reg!r}")
    return 0 if reg == "L2" else 1


# Upper bound on the pre-drawn samples held at once (bytes); online SGD draws them chunk by chunk of steps.
CHUNK_BYTES = 32 * 2**20


def _draw_hidden(rng: np.random.Generator, law: HiddenLaw, out: np.ndarray) -> None:
    """Fill ``out`` with independent draws of the hidden variable ``c`` (SGD sampler of ``law``)."""
    if law.sampler == "gaussian":
        rng.standard_normal(out=out)
        out *= law.scale
    elif law.sampler == "uniform":
        rng.random(out=out)
        out *= 2.0 * law.scale
        out -= law.scale
    else:
        cx, cw = law.rule(RULE_POINTS)
        cum = np.cumsum(cw)
        rng.random(out=out)
        last = np.flatnonzero(cw > 0)[-1]  # rounding of the cumulative sum must not pick a padding node
        out[...] = cx[np.minimum(np.searchsorted(cum, out), last)]


def _online_chunks(W: np.ndarray, U: np.ndarray, act: int, law: HiddenLaw, hyper: Hyper, reg: int, n_steps: int,
                   every: int, seed: int, out_q: np.ndarray, out_Q: np.ndarray) -> None:
    """Run ``n_steps`` of online SGD on ``W`` (float64[n, K]) with samples pre-drawn in chunks of steps by
    ``numpy.random.Generator`` streams seeded from ``seed`` (one for ``c``, one for the Gaussian noise), so
    the kernel only does arithmetic; records into ``out_q, out_Q`` every ``every`` steps (and at the end).

    Each step takes its samples from the two streams in the same order whatever the chunk size, so the run
    depends only on ``seed``.
    """
    n = W.shape[0]
    d = U.shape[1]
    neg = hyper.beta != 0.0
    rows = ["e1"]
    if hyper.rho * hyper.rho < 1.0:
        rows.append("e2")
    if hyper.eta > 0.0:
        rows.append("eta1")
    if neg:
        rows.append("e3")
        if hyper.eta > 0.0:
            rows.append("eta3")
    idx = {name: (rows.index(name) if name in rows else -1) for name in ("e2", "eta1", "e3", "eta3")}
    n_c = 2 if neg else 1
    chunk = max(1, min(n_steps, CHUNK_BYTES // (8 * (len(rows) * n + n_c * d))))
    c_rng, z_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    c_buf = np.empty((chunk, n_c, d))
    z_buf = np.empty((chunk, len(rows), n))
    rec = 0
    with Progress(n_steps, "online SGD steps") as bar:
        for step0 in range(0, n_steps, chunk):
            m = min(chunk, n_steps - step0)
            C, Z = c_buf[:m], z_buf[:m]
            _draw_hidden(c_rng, law, C)
            z_rng.standard_normal(out=Z)
            rec = K_.sgd_steps(W, U, act, C, Z, idx["e2"], idx["eta1"], idx["e3"], idx["eta3"], hyper.eta,
                               hyper.sigma, hyper.rho, hyper.beta, hyper.tau, hyper.lam, reg, step0, every, rec,
                               out_q, out_Q)
            bar.update(m)
    if rec < out_q.shape[0]:  # the last record falls on the final step
        K_.record_overlaps(W, U, out_q, out_Q, rec)


def simulate_sgd(n: int, t_final: float, hyper: Hyper, law: HiddenLaw, q0: Any, Q0: float, *, K: int = 1,
                 act: str = "tanh", reg: str = "L2", record_dt: float = 0.5, seed: SeedLike = 0) -> Trajectory:
    """Online SGD at dimension ``n`` (``n t_final`` steps of size ``tau/n``, one fresh sample each).

    ``q0`` float64[d] (or [d, K]) and ``Q0`` give the initial overlaps and norm; features are random
    orthonormal. Returns the order parameters every ``record_dt`` time units. ``seed`` draws the start
    and the seed of the samples, which are drawn with ``numpy.random.Generator`` (same seed, same run).
    """
    n = check_int("n", n, 4)
    t_final = check_range("t_final", t_final, 0.0, low_open=True)
    record_dt = check_range("record_dt", record_dt, 0.0, low_open=True)
    if act not in K_.ACT_CODES:
        raise InvalidParameterError(f"activation must be one of {tuple(K_.ACT_CODES)}, got {act!r}")
    rng = as_generator(seed)
    q0 = np.asarray(q0, dtype=float)
    d = q0.shape[0]
    q0 = np.repeat(q0.reshape(d, 1), K, axis=1) if q0.ndim == 1 else q0.reshape(d, K)
    U = orthonormal_features(n, d, rng)
    W = initial_weights(U, q0, Q0, rng)
    n_steps = int(round(t_final * n))
    every = max(1, int(round(record_dt * n)))
    n_rec = n_steps // every + 1
    out_q = np.zeros((n_rec, d, K))
    out_Q = np.zeros((n_rec, K))
    _online_chunks(W, U, K_.ACT_CODES[act], law, hyper, _reg_code(reg), n_steps, every,
                   int(rng.integers(0, 2**31 - 1)), out_q, out_Q)
    return Trajectory(np.arange(n_rec) * every / n, out_q, out_Q)


def simulate_pde(n_particles: int, t_final: float, hyper: Hyper, law: HiddenLaw, q0: Any, Q0: float, *,
                 act: str = "tanh", reg: str = "L1", dt: float = 0.01, record_dt: float = 0.5,
                 gh_points: int = 12, seed: SeedLike = 0) -> Trajectory:
    """Particle method for the McKean–Vlasov PDE of the weight-coordinate density (one neuron).

    Particles ``(ξ̄_j, θ_j)``: ``ξ̄ ~ N(0, I_d)`` (orthonormalised), ``θ_j = q0·ξ̄_j + r_j`` with ``r``
    orthogonal to ``ξ̄`` and ``mean(r²) = Q0 - |q0|²``; Euler–Maruyama with step ``dt``.
    """
    N = check_int("n_particles", n_particles, 16)
    t_final = check_range("t_final", t_final, 0.0, low_open=True)
    dt = check_range("dt", dt, 0.0, low_open=True)
    rng = as_generator(seed)
    q0 = np.asarray(q0, dtype=float).reshape(-1)
    d = q0.size
    U = orthonormal_features(N, d, rng)
    xi = np.ascontiguousarray(U * math.sqrt(N))
    theta = (initial_weights(U, q0.reshape(d, 1), Q0, rng)[:, 0] * math.sqrt(N)).copy()
    n_steps = int(round(t_final / dt))
    every = max(1, int(round(record_dt / dt)))
    n_rec = n_steps // every + 1
    out_q = np.zeros((n_rec, d))
    out_Q = np.zeros(n_rec)
    cx, cw = law.rule(RULE_POINTS)
    gx, gw = gauss_hermite(gh_points)
    K_.particle_run(integrand(act), xi, theta, hyper.tau, hyper.lam, hyper.s2, hyper.kappa, hyper.beta,
                    _reg_code(reg), cx, cw, gx, gw, dt, n_steps, every, int(rng.integers(0, 2**31 - 1)), out_q, out_Q)
    return Trajectory(np.arange(n_rec) * every * dt, out_q[:, :, None], out_Q[:, None])
