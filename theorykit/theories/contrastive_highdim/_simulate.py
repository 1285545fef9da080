"""The contrastive model simulated: laws of the hidden variable, finite-n online SGD and the particle
method of the McKean–Vlasov PDE, both as :class:`~theorykit.simulate.ParticleRun` s.

The step kernels (:mod:`._kernels`) run inside :func:`theorykit.simulate.run_particles`, which draws the
samples (``numpy.random.Generator`` streams) and records the order parameters under the names of the ODE
system (``q_1, q_2, Q, m_1, m_2`` for one neuron), so :func:`theorykit.validate.compare` pairs them.
:func:`simulate_sgd_replicates` runs several seeds of one configuration in parallel threads. The
model is our reconstruction of Meng & Wang's (arXiv 2406.06909; only the abstract could be read), see
``derivations/contrastive_highdim.md`` §0.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from ..._checks import check_int, check_range
from ..._random import SeedLike, as_generator
from ...derive import Law
from ...errors import InvalidParameterError
from ...simulate import NoiseStream, ParticleRun, run_particles, standard_normal_compiled
from .._quadrature import gauss_hermite
from . import _kernels as K_
from ._symbolic import Hyper, state_symbols

if TYPE_CHECKING:
    from ._analysis import ContrastiveODE

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

    def hankel(size: int) -> np.ndarray:
        return mom[np.add.outer(np.arange(size), np.arange(size))]

    for size in range(1, top // 2 + 2):
        ev = np.linalg.eigvalsh(hankel(size))
        if ev.min() < -1e-10 * max(1.0, ev.max()):
            raise InvalidParameterError(
                f"law: moments {dict(sorted(moments.items()))} are inconsistent (their Hankel matrix of size "
                f"{size} has a negative eigenvalue {ev.min():.3g}); e.g. <c^4> >= <c^2>^2 is required")
    n = 1
    while n + 1 <= min(max_points, top // 2 + 1) and 2 * (n + 1) - 1 <= top + 1:
        H = hankel(n + 1)
        if np.linalg.eigvalsh(H).min() <= 1e-12 * max(1.0, np.abs(H).max()):
            break
        n += 1
    coef = np.linalg.solve(hankel(n), -mom[n:2 * n])  # monic orthogonal polynomial x^n + sum coef_i x^i
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
            return self.scale**k * float(math.prod(range(k - 1, 0, -2)))
        if self.sampler == "uniform":
            return self.scale**k / (k + 1)
        return float(np.dot(self.weights, np.asarray(self.nodes) ** k))

    @property
    def m2(self) -> float:
        return self.moment(2)

    @property
    def gaussian_scale(self) -> float:
        """The standard deviation of ``c`` for the Gaussian law (its averages are then exact, see
        ``_kernels.expectations_into``), else 0."""
        return self.scale if self.sampler == "gaussian" else 0.0

    @property
    def kappa4(self) -> float:
        """Excess kurtosis ``<c^4> - 3 <c^2>^2``."""
        return self.moment(4) - 3 * self.m2**2

    def draw(self, rng: np.random.Generator, out: np.ndarray) -> None:
        """Fill ``out`` with independent draws of ``c`` (the SGD sampler; a :class:`NoiseStream` draw)."""
        if self.sampler == "gaussian":
            standard_normal_compiled(rng, out)
            out *= self.scale
        elif self.sampler == "uniform":
            rng.random(out=out)
            out *= 2.0 * self.scale
            out -= self.scale
        else:
            cx, cw = self.rule(RULE_POINTS)
            cum = np.cumsum(cw)
            rng.random(out=out)
            last = np.flatnonzero(cw > 0)[-1]  # rounding of the cumulative sum must not pick a padding node
            out[...] = cx[np.minimum(np.searchsorted(cum, out), last)]

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
        x, w = gauss_hermite(RULE_POINTS)
        return cls("gaussian", tuple(s * x), tuple(w), "gaussian", s)

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


# ------------------------------------------------------------------------------------- observables
@lru_cache(maxsize=None)
def order_parameter_names(d: int, K: int = 1) -> tuple[tuple[tuple[str, ...], ...], tuple[str, ...],
                                                       tuple[tuple[str, ...], ...]]:
    """The names of ``q`` ([d][K]), ``Q`` ([K]) and the cosines ``m`` ([d][K]) as the ODE system names its
    states and observables (``q_1, Q, m_1`` for one neuron, ``q_1_2, Q_2, m_1_2`` for neuron 2 of several)."""
    names = [s.name for s in state_symbols(d, K)]
    q = tuple(tuple(names[k * (d + 1) + i] for k in range(K)) for i in range(d))
    return (q, tuple(names[k * (d + 1) + d] for k in range(K)),
            tuple(tuple("m_" + s[2:] for s in row) for row in q))


def order_parameters(result: Any, d: int, K: int = 1) -> dict[str, np.ndarray]:
    """``q`` float64[n_t, d, K], ``Q`` float64[n_t, K] and the cosines ``m = q / sqrt(Q)`` of a
    :class:`ParticleRun` or an ODE :class:`~theorykit.solve.Solution`."""
    get = result.observable if isinstance(result, ParticleRun) else result.y_of
    q_names, Q_names, _ = order_parameter_names(d, K)
    q = np.stack([np.column_stack([get(s) for s in row]) for row in q_names], axis=1)
    Q = np.column_stack([get(s) for s in Q_names])
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"q": q, "Q": Q, "m": q / np.sqrt(np.maximum(Q, 0.0))[:, None, :]}


def _recorder(q: np.ndarray, Q: np.ndarray) -> dict[str, float]:
    """The observables of one record from ``q`` float64[d, K] and ``Q`` float64[K]."""
    d, K = q.shape
    q_names, Q_names, m_names = order_parameter_names(d, K)
    with np.errstate(invalid="ignore", divide="ignore"):
        m = q / np.sqrt(np.maximum(Q, 0.0))[None, :]
    out = {s: float(q[i, k]) for i, row in enumerate(q_names) for k, s in enumerate(row)}
    out.update({s: float(Q[k]) for k, s in enumerate(Q_names)})
    out.update({s: float(m[i, k]) for i, row in enumerate(m_names) for k, s in enumerate(row)})
    return out


# ------------------------------------------------------------------------------------- simulations
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


def initial_overlaps(q0: Any, Q0: float, K: int = 1) -> tuple[np.ndarray, float]:
    """Validated start: overlaps float64[d, K] (``q0`` float64[d] shared by all neurons, or [d, K]) and the
    squared norm ``Q0 > 0`` with ``|q0[:, k]|² <= Q0`` (cosines at most 1)."""
    K = check_int("K", K, 1)
    q = np.asarray(q0, dtype=float)
    if q.ndim == 1:
        q = np.repeat(q.reshape(-1, 1), K, axis=1)
    if q.ndim != 2 or q.shape[1] != K or q.shape[0] < 1 or not np.all(np.isfinite(q)):
        raise InvalidParameterError(f"q0 must be d finite overlaps or a d x K array (K = {K}), got {q0!r}")
    Q0 = check_range("Q0", Q0, 0.0, low_open=True)
    if np.any(np.sum(q**2, axis=0) > Q0 + 1e-12):
        raise InvalidParameterError("initial overlaps need |q0|^2 <= Q0 (cosines at most 1)")
    return q, Q0


def _code(kind: str, value: str, codes: Mapping[str, int]) -> int:
    if value not in codes:
        raise InvalidParameterError(f"{kind} must be one of {tuple(codes)}, got {value!r}")
    return codes[value]


def _steps(name: str, steps: int) -> int:
    if steps < 1:
        raise InvalidParameterError(f"{name} is shorter than one step; make it longer")
    return steps


def simulate_sgd(n: int, t_final: float, hyper: Hyper, law: HiddenLaw, q0: Any, Q0: float, *, K: int = 1,
                 act: str = "tanh", reg: str = "L2", record_dt: float = 0.5, seed: SeedLike = 0) -> ParticleRun:
    """Online SGD at dimension ``n``: ``round(n t_final)`` steps of size ``tau/n``, one fresh sample each.

    Parameters
    ----------
    n : int
        Input dimension (>= 4).
    t_final, record_dt : float
        Training time (``t = step / n``) and record spacing.
    hyper : Hyper
    law : HiddenLaw
        Law of each coordinate of ``c``.
    q0, Q0 : float64[d] or float64[d, K], float
        Initial overlaps with the features (shared by the ``K`` neurons, or per neuron) and squared norm of
        every neuron (:func:`initial_overlaps`).
    K : int
    act : {"tanh", "linear"}
    reg : {"L2", "L1"}
    seed : int or Generator
        Draws the random orthonormal features, the start and the seed of the sample streams
        (``ParticleRun.seed``; same seed, same run).

    Returns
    -------
    ParticleRun
        Observables ``q_i``, ``Q``, ``m_i`` (``q_i_k``, ``Q_k``, ``m_i_k`` for ``K > 1``) every ``record_dt``.
    """
    n = check_int("n", n, 4)
    t_final = check_range("t_final", t_final, 0.0, low_open=True)
    record_dt = check_range("record_dt", record_dt, 0.0, low_open=True)
    act_code = _code("activation", act, K_.ACT_CODES)
    reg_code = _code("regularizer", reg, K_.REG_CODES)
    rng = as_generator(seed)
    q0, Q0 = initial_overlaps(q0, Q0, K)
    d = q0.shape[0]
    U = orthonormal_features(n, d, rng)
    W = initial_weights(U, q0, Q0, rng)
    # the kernels work on rows: one per neuron, one per feature
    W, U = np.ascontiguousarray(W.T), np.ascontiguousarray(U.T)
    n_steps = _steps("t_final * n", int(round(t_final * n)))
    every = max(1, int(round(record_dt * n)))
    # noise rows of each step: only those whose term is non-zero are drawn
    names = ["e1"] + (["e2"] if hyper.rho * hyper.rho < 1.0 else []) + (["eta1"] if hyper.eta > 0.0 else [])
    if hyper.beta != 0.0:
        names += ["e3"] + (["eta3"] if hyper.eta > 0.0 else [])
    rows = np.array([names.index(r) if r in names else -1 for r in ("e2", "eta1", "e3", "eta3")], dtype=np.int64)
    coeffs = np.array([hyper.eta, hyper.sigma, hyper.rho, hyper.beta, hyper.tau, hyper.lam])
    n_c = 2 if hyper.beta != 0.0 else 1
    q, Q = np.empty((d, K)), np.empty(K)

    def advance(draws, step0, values):
        K_.sgd_steps(W, U, draws[0], draws[1], rows, coeffs, act_code, reg_code)

    def observe():
        K_.overlaps(W, U, q, Q)
        return _recorder(q, Q)

    return run_particles(advance, observe, n_steps=n_steps, record_steps=range(0, n_steps + 1, every),
                         noise=[NoiseStream((n_c, d), law.draw),
                                NoiseStream((len(names), n), standard_normal_compiled)],
                         seed=int(rng.integers(0, 2**31 - 1)), step_time=1.0 / n, desc="online SGD steps",
                         params=dict(n=n, d=d, K=K, act=act, reg=reg, law=law.name, **hyper.__dict__))


def simulate_sgd_replicates(n: int, t_final: float, hyper: Hyper, law: HiddenLaw, q0: Any, Q0: float,
                            seeds: Sequence[SeedLike], *, threads: int | None = None,
                            **options: Any) -> list[ParticleRun]:
    """Replicates of one :func:`simulate_sgd` configuration, one per seed, run side by side in ``threads``
    threads (default: one per CPU). The sample draws and the step kernel release the GIL, so the replicates
    use the cores in parallel; each run equals ``simulate_sgd(..., seed=seed)``. ``options`` are the keyword
    options of :func:`simulate_sgd` (``K``, ``act``, ``reg``, ``record_dt``)."""
    seeds = list(seeds)
    threads = check_int("threads", (os.cpu_count() or 1) if threads is None else threads, 1)
    if not seeds:
        raise InvalidParameterError("seeds must list at least one seed")

    def one(seed: SeedLike) -> ParticleRun:
        return simulate_sgd(n, t_final, hyper, law, q0, Q0, seed=seed, **options)

    with ThreadPoolExecutor(max_workers=min(threads, len(seeds))) as pool:
        return list(pool.map(one, seeds))


def simulate_pde(ode: "ContrastiveODE", n_particles: int, t_final: float, hyper: Hyper, law: HiddenLaw, q0: Any,
                 Q0: float, *, reg: str = "L1", dt: float = 0.01, record_dt: float = 0.5,
                 seed: SeedLike = 0) -> ParticleRun:
    """Particle method for the McKean–Vlasov PDE of the weight-coordinate density (one neuron).

    Particles ``(ξ̄_j, θ_j)``: ``ξ̄ ~ N(0, I_d)`` (orthonormalised), ``θ_j = q0·ξ̄_j + r_j`` with ``r``
    orthogonal to ``ξ̄`` and ``mean(r²) = Q0 - |q0|²``; Euler–Maruyama with step ``dt``. The drift and
    diffusion use the quadrature of ``ode`` (its activation and Gauss–Hermite rule; ``ode.d`` features).
    Returns a :class:`ParticleRun` with the observables of :func:`simulate_sgd` every ``record_dt``.
    """
    N = check_int("n_particles", n_particles, 16)
    t_final = check_range("t_final", t_final, 0.0, low_open=True)
    dt = check_range("dt", dt, 0.0, low_open=True)
    record_dt = check_range("record_dt", record_dt, 0.0, low_open=True)
    reg_code = _code("regularizer", reg, K_.REG_CODES)
    q0, Q0 = initial_overlaps(np.ravel(q0), Q0)
    d = q0.shape[0]
    if d != ode.d:
        raise InvalidParameterError(f"q0 has {d} overlaps but the ODE has d = {ode.d} features")
    rng = as_generator(seed)
    U = orthonormal_features(N, d, rng)
    xi = np.ascontiguousarray(U * math.sqrt(N))
    theta = (initial_weights(U, q0, Q0, rng)[:, 0] * math.sqrt(N)).copy()
    n_steps = _steps("t_final / dt", int(round(t_final / dt)))
    every = max(1, int(round(record_dt / dt)))
    cx, cw = law.rule(RULE_POINTS)
    gx, gw = ode.gauss_hermite
    coeffs = np.array([hyper.tau, hyper.lam, hyper.s2, hyper.kappa, hyper.beta, dt])
    q = np.empty(d)

    def advance(draws, step0, values):
        K_.particle_steps(ode.integrand, xi, theta, coeffs, reg_code, cx, cw, law.gaussian_scale, gx, gw, draws[0])

    def observe():
        Q = K_.particle_moments(xi, theta, q)
        return _recorder(q[:, None], np.array([Q]))

    return run_particles(advance, observe, n_steps=n_steps, record_steps=range(0, n_steps + 1, every),
                         noise=[NoiseStream((N,), standard_normal_compiled)], seed=int(rng.integers(0, 2**31 - 1)),
                         step_time=dt, desc="particle PDE steps",
                         params=dict(n_particles=N, d=d, K=1, act=ode.act, reg=reg, law=law.name, **hyper.__dict__))


__all__ = ["RULE_POINTS", "HiddenLaw", "order_parameter_names", "order_parameters",
           "orthonormal_features", "initial_overlaps", "initial_weights", "simulate_sgd", "simulate_sgd_replicates",
           "simulate_pde"]
