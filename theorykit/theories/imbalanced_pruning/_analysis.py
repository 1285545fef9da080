"""Numerics of the population theory: the compiled per-feature terms and the coupled population flow of the
network (its solution under the SGD runs' observable names, and its discrete form with Algorithm 1's pruning
mask), the projected population gradient, Lemma 3.1's stage times, and the stage detector shared by SGD
records and flow solutions.
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np

from ..._checks import check_int
from ...compile import compile_system
from ...errors import InvalidParameterError
from . import _kernels as K
from . import _symbolic as S
from ._config import Config


# ------------------------------------------------------------------------------------------ compiled terms
@functools.lru_cache(maxsize=2)
def compiled_slopes(backend: str = "numba"):
    """:func:`._symbolic.slope_system` compiled by :func:`theorykit.compile.compile_system`."""
    return compile_system(S.slope_system(), backend=backend, jac=False)


def flow_params(cfg: Config) -> dict[str, float]:
    """Numeric parameters of the population flow for ``cfg``: ``c = (1 - 1/B) L / tau`` and friends."""
    c = (1.0 - 1.0 / cfg.batch) * cfg.n_tokens / cfg.tau
    out = {"eta": cfg.eta, "c": c, "lambda": cfg.lam, "sigma": cfg.sigma, "kappa": cfg.bias_scale}
    out |= {f"pi{k + 1}": float(p) for k, p in enumerate(cfg.feature_probs())}
    return out


def projected_gradient(cfg: Config, a: np.ndarray, r: float, *, exact: bool = False) -> np.ndarray:
    r"""float64[d + 1]: population loss gradient projected on ``M_1..M_d`` and on the noise direction.

    With ``exact=False``, to first order in the :math:`\pi_j` (tokens carrying one feature), as in the flow:

    .. math:: g_k = -\tfrac c2\big(\pi_k v\,s_\mu(a_k/v) + \sigma^2 a_k \textstyle\sum_j \pi_j s_v(a_j/v)\big)
              + \lambda a_k,\qquad g_r = -\tfrac c2 \sigma^2 r \textstyle\sum_j \pi_j s_v(a_j/v) + \lambda r,

    the linearised (``saturation=False``) right-hand side of :func:`compiled_network` for one neuron, over
    :math:`-\eta`. With ``exact=True`` the sum runs over every code :math:`z\in\{0,\pm1\}^d` with its
    probability :math:`P(z) = \prod_j(\pi_j/2)^{|z_j|}(1-\pi_j)^{1-|z_j|}` and pre-activation mean
    :math:`\mu_z = \langle a, z\rangle`: :math:`g_k = -\tfrac c2\sum_z P(z)\big(z_k v\,s_\mu(\mu_z/v) +
    \sigma^2 a_k s_v(\mu_z/v)\big) + \lambda a_k` (``d <= 10``). :math:`v = \sigma\|w\|`; :math:`s_\mu, s_v`
    are the compiled slopes of :func:`._symbolic.slope_system`. Requires ``nsr > 0``.
    """
    a = np.asarray(a, dtype=np.float64)
    if cfg.sigma <= 0:
        raise InvalidParameterError("the population gradient needs nsr > 0 (the BReLU threshold scales with the noise)")
    if a.shape != (cfg.d,):
        raise InvalidParameterError(f"a must have shape ({cfg.d},), got {a.shape}")
    if not exact:
        out = np.empty(a.size + 1)
        compiled_network(1, a.size).rhs_into(0.0, np.append(a, float(r)), network_params(cfg, saturation=False), out)
        return -out / cfg.eta
    if cfg.d > 10:
        raise InvalidParameterError(f"exact=True enumerates 3^d codes and allows d <= 10, got d = {cfg.d}")
    codes = np.array(list(itertools.product((0.0, 1.0, -1.0), repeat=cfg.d)))
    pi = cfg.feature_probs()
    prob = np.prod(np.where(codes != 0, pi / 2, 1 - pi), axis=1)
    sigma = cfg.sigma
    v = sigma * math.sqrt(float(a @ a) + float(r) ** 2)
    slopes, buf, z = compiled_slopes("numba").observed_into, np.empty(3), np.empty(1)
    kappa = np.array([cfg.bias_scale])
    s_mu, s_v = np.empty(len(codes)), np.empty(len(codes))
    for n, mu in enumerate(codes @ a):
        z[0] = mu / v
        slopes(0.0, z, kappa, buf)
        s_mu[n], s_v[n] = buf[0], buf[1]
    c = (1.0 - 1.0 / cfg.batch) * cfg.n_tokens / cfg.tau
    D = float(prob @ s_v)
    g_a = -c / 2 * (v * (prob * s_mu) @ codes + sigma**2 * a * D) + cfg.lam * a
    return np.append(g_a, -c / 2 * sigma**2 * float(r) * D + cfg.lam * float(r))


def network_params(cfg: Config, *, saturation: bool = True) -> np.ndarray:
    """float64: packed parameters of :func:`._symbolic.network_system` for ``cfg`` (``saturation=False`` gives the
    linearised flow, ``gamma = 0``: every feature keeps the weight ``(B-1)/B``)."""
    pis = cfg.feature_probs()
    present = 1.0 - (1.0 - pis) ** cfg.n_tokens  # probability that an input carries the feature
    n_same = (cfg.batch - 1) * present / 2
    n_rest = (cfg.batch - 1) * (1.0 - present)
    gamma = 1.0 / cfg.tau if saturation else 0.0
    return np.concatenate(([cfg.eta, cfg.n_tokens, cfg.tau, cfg.lam, cfg.sigma, cfg.bias_scale, gamma], pis, n_same,
                           n_rest))


@functools.lru_cache(maxsize=8)
def compiled_network(width: int, n_features: int):
    """:func:`._symbolic.network_system` as a :class:`~theorykit.compile.CompiledSystem` for
    :func:`theorykit.solve.solve`.

    The right-hand side is an njit closure over the compiled observables of :func:`._symbolic.slope_system` and
    :func:`._symbolic.saturation_system` (numba compiles it once per process and shape).
    """
    from ..._jit import njit

    from ...compile import CompiledSystem

    slopes = compiled_slopes("numba").observed_into
    sat = compile_system(S.saturation_system(), backend="numba", jac=False).observed_into
    m, nk = width, n_features

    @njit
    def rhs_into(t, y, p, out):
        eta, ell, tau, lam, sigma, kappa, gamma = p[0], p[1], p[2], p[3], p[4], p[5], p[6]
        pis = p[7:7 + nk]
        n_same = p[7 + nk:7 + 2 * nk]
        n_rest = p[7 + 2 * nk:7 + 3 * nk]
        z = np.empty(1)
        kap = np.empty(1)
        kap[0] = kappa
        buf = np.empty(3)
        sm = np.empty((m, nk))
        sv = np.empty((m, nk))
        v = np.empty(m)
        e = np.zeros(nk)
        for i in range(m):
            acc = y[m * nk + i] ** 2
            for k in range(nk):
                acc += y[i * nk + k] ** 2
            v[i] = sigma * math.sqrt(acc)
            for k in range(nk):
                z[0] = y[i * nk + k] / v[i]
                slopes(0.0, z, kap, buf)
                sm[i, k], sv[i, k] = buf[0], buf[1]
                e[k] += gamma * (v[i] * buf[2]) ** 2
        q = np.empty(nk)
        ps = np.empty(2)
        for k in range(nk):
            z[0] = min(e[k], 700.0)
            ps[0], ps[1] = n_same[k], n_rest[k]
            sat(0.0, z, ps, buf)
            q[k] = buf[0]
        c = ell / (2.0 * tau)
        for i in range(m):
            D = 0.0
            for k in range(nk):
                D += q[k] * pis[k] * sv[i, k]
            for k in range(nk):
                a = y[i * nk + k]
                out[i * nk + k] = -eta * (-c * (q[k] * pis[k] * v[i] * sm[i, k] + sigma * sigma * a * D) + lam * a)
            r = y[m * nk + i]
            out[m * nk + i] = -eta * (-c * sigma * sigma * r * D + lam * r)

    source = ("# coupled population flow: theorykit.theories.imbalanced_pruning._analysis.compiled_network, an njit "
              "closure over the compiled observables of 'imbalanced_pruning_slopes' and "
              "'imbalanced_pruning_saturation'\n")
    return CompiledSystem.from_functions(S.network_system(m, nk), rhs_into=rhs_into, source=source)


def flow_solution(cfg: Config, a0: np.ndarray, r0: np.ndarray, t_eval: np.ndarray, *, saturation: bool = True):
    """Integrate the coupled population flow of :func:`._symbolic.network_system` from the projections of the
    neurons; time is measured in SGD steps (the flow is the small-``eta`` limit of the SGD recursion).

    Parameters
    ----------
    cfg : Config
        Settings (``nsr > 0``: the BReLU threshold scales with the noise).
    a0 : float64[m, K]
        Initial projections ``<w_i, M_k>`` (e.g. an SGD run's first record, :func:`._simulate.network_trajectories`).
    r0 : float64[m]
        Initial norms outside span(M), each neuron non-zero.
    t_eval : float64[n_t]
        Output times, increasing, starting at the initial time (``run.t`` for a comparison with a run).
    saturation : bool
        Close the InfoNCE softmax with :func:`._symbolic.saturation_factor` (default); ``False`` integrates the
        linearised flow (each neuron on its own, no convergence stage).

    Returns
    -------
    Solution
        States ``a_{i}_{k}`` and ``r_{i}``, the names of the SGD runs' observables, so that
        :func:`theorykit.validate.compare` pairs them.

    Raises
    ------
    InvalidParameterError
        On ``nsr = 0``, mismatched shapes, a zero neuron (``v = sigma ||w|| = 0``) or a non-increasing ``t_eval``.
    SolveError
        If the integration fails (non-finite values, blow-up, step underflow).
    """
    from ...solve import solve

    if cfg.sigma <= 0:
        raise InvalidParameterError("the population flow needs nsr > 0 (the BReLU threshold scales with the noise)")
    a0 = np.asarray(a0, dtype=np.float64)
    r0 = np.abs(np.asarray(r0, dtype=np.float64))
    if a0.ndim != 2 or a0.shape[1] != cfg.d or r0.shape != (a0.shape[0],):
        raise InvalidParameterError(f"a0 must have shape (m, {cfg.d}) and r0 shape (m,), "
                                    f"got {a0.shape} and {r0.shape}")
    if np.any(np.sum(a0**2, axis=1) + r0**2 == 0):
        raise InvalidParameterError("a0, r0: every neuron must be non-zero (the flow divides by sigma ||w_i||)")
    t_eval = np.asarray(t_eval, dtype=np.float64)
    if t_eval.ndim != 1 or t_eval.size < 2 or np.any(np.diff(t_eval) <= 0):
        raise InvalidParameterError("t_eval must be an increasing 1-d array of at least two times")
    csys = compiled_network(*a0.shape)
    return solve(csys, np.concatenate([a0.ravel(), r0]), (float(t_eval[0]), float(t_eval[-1])),
                 network_params(cfg, saturation=saturation), t_eval=t_eval, rtol=1e-7, atol=1e-10)


def population_descent(cfg: Config, W0: np.ndarray, M: np.ndarray, n_steps: int, *, prune: str | None = None,
                       saturation: bool = True) -> np.ndarray:
    r"""Iterate the population gradient of :func:`compiled_network` as SGD would, one step at a time,
    with Algorithm 1's mask or the one-shot mask of hard pruning; returns the final weights float64[m, d1].

    Each step evaluates the projected population gradient at the forward weights :math:`W\odot M^{(t)}`
    (the mask is recomputed from :math:`W` every ``cfg.prune_every`` steps with ``prune="forward_mask"``,
    computed once at the first step with ``"hard"``, absent with ``None``) and applies it to every weight,
    :math:`W \leftarrow (1-\eta\lambda)W - \eta g` (hard pruning keeps the masked weights at zero). The
    gradient of a coordinate outside span(M) is that of the neuron's noise part, :math:`g_c = (g_r/r)\,w_c`
    (the population gradient treats every noise direction alike), so the descent needs the coordinate
    basis. This is the deterministic counterpart of a pruned SGD run restarted from ``W0``.

    Raises
    ------
    InvalidParameterError
        On a rotated feature basis, or a shape mismatch.
    """
    if cfg.basis != "coordinate":
        raise InvalidParameterError("population_descent acts on weight coordinates and needs basis='coordinate', "
                                    f"got basis={cfg.basis!r}")
    W = np.array(W0, dtype=np.float64)
    m, d1 = W.shape
    if W.shape != (cfg.width, cfg.d1) or np.asarray(M).shape != (cfg.d, d1):
        raise InvalidParameterError(f"W0 must have shape {(cfg.width, cfg.d1)} and M {(cfg.d, cfg.d1)}, "
                                    f"got {W.shape} and {np.asarray(M).shape}")
    check_int("n_steps", n_steps, 0)
    k = cfg.d
    rhs = compiled_network(m, k).rhs_into
    params = network_params(cfg, saturation=saturation)
    mask, ones = np.ones_like(W), np.ones_like(W)
    y, dy = np.empty(m * (k + 1)), np.empty(m * (k + 1))
    decay = 1.0 - cfg.eta * cfg.lam
    for step in range(n_steps):
        if (prune == "forward_mask" and step % cfg.prune_every == 0) or (prune == "hard" and step == 0):
            K.magnitude_mask(W, cfg.prune_rate, cfg.prune_mode == "neuron", ones, mask)
        We = W * mask
        a = We[:, :k]
        r = np.sqrt(np.maximum(np.sum(We * We, axis=1) - np.sum(a * a, axis=1), 0.0))
        alive = np.sum(We * We, axis=1) > 0
        y[: m * k], y[m * k:] = a.ravel(), r
        # the network rhs needs v > 0: silent (all-masked) neurons get no gradient
        y[m * k:][~alive] = 1.0
        rhs(0.0, y, params, dy)
        g_a = -dy[: m * k].reshape(m, k) / cfg.eta - cfg.lam * a
        g_r = -dy[m * k:] / cfg.eta - cfg.lam * y[m * k:]
        G = np.zeros_like(W)
        with np.errstate(invalid="ignore", divide="ignore"):
            G[:, k:] = np.where(r[:, None] > 0, (g_r / np.where(r > 0, r, 1.0))[:, None] * We[:, k:], 0.0)
        G[:, :k] = g_a
        G[~alive] = 0.0
        W = decay * W - cfg.eta * G
        if prune == "hard":
            W *= mask
    return W


# ------------------------------------------------------------------------------------------ stage times
def stage_time_scales(d1: int, d: int, eta: float, eps: float) -> dict[str, float]:
    r"""Lemma 3.1's stage-1 time :math:`T_1 = \Theta(d_1\log d/(\eta\log\log d))` with a unit constant, and
    :math:`1/\varepsilon` times that for a minority feature (the lemma's growth rate is :math:`\propto\varepsilon_j`).

    Returns ``T1_major`` and ``T1_minor``.
    """
    check_int("d", d, 3)  # log log d > 0
    t1 = d1 * math.log(d) / (eta * math.log(math.log(d)))
    return {"T1_major": t1, "T1_minor": t1 / eps}


def stage1_rate(cfg: Config, feature: int = 0) -> float:
    r"""Per-step growth rate of a feature projection at :math:`a = 0` in the linearised population flow:
    :math:`\eta\,(\tfrac c2\pi_k s_\mu'(0) - \lambda)` (at :math:`a = 0`, :math:`s_v = 0`).

    A projection that starts at the random overlap :math:`\approx\|w_0\|/\sqrt{d_1}` and must reach the noise
    part :math:`\approx\|w_0\|` therefore needs :math:`T_1\approx(\tfrac12\ln d_1 + O(1))/\mathrm{rate}`: in
    this model :math:`d_1` enters stage 1 only logarithmically.
    """
    slope = float(S.slope_mu_at_zero().subs(S.KAPPA, cfg.bias_scale))
    c = flow_params(cfg)["c"]
    return cfg.eta * (0.5 * c * float(cfg.feature_probs()[feature]) * slope - cfg.lam)


# ---------------------------------------------------------------------------------------- stage detection
def detect_stages(t: np.ndarray, dom: np.ndarray, nondom: np.ndarray, noise: np.ndarray, *,
                  sep: float = 3.0, tol: float = 0.1, window: int = 5) -> tuple[float, float, float]:
    r"""Stage boundaries of one neuron from its projections over time.

    * :math:`T_1`: first time the dominant-feature projection exceeds the noise projection (end of the
      stage in which feature directions grow while noise is suppressed);
    * :math:`T_2`: first time after :math:`T_1` it exceeds ``sep`` times both the largest non-dominant
      projection and the noise projection (clear separation);
    * :math:`T_3`: first time after :math:`T_2` the dominant projection, smoothed by a running median over
      ``window`` records (SGD fluctuates), comes within ``tol`` (relative) of its plateau, the median of
      the last quarter of the record (convergence).

    ``nan`` where a criterion is never met. :math:`T_3` is ``nan`` when the record has not converged:
    the medians of its last two quarters differ by more than ``tol`` (relative).

    Parameters
    ----------
    t : float64[n_t]
    dom, nondom, noise : float64[n_t]
        ``|<w, M_dom>|``, ``max_{k != dom} |<w, M_k>|`` and the norm outside span(M).
    sep, tol : float
        Separation factor of :math:`T_2`, relative tolerance of :math:`T_3`.
    window : int
        Running-median window (records) of :math:`T_3`.
    """
    t = np.asarray(t, dtype=np.float64)
    dom, nondom, noise = (np.abs(np.asarray(x, dtype=np.float64)) for x in (dom, nondom, noise))
    if not (t.shape == dom.shape == nondom.shape == noise.shape) or t.ndim != 1:
        raise InvalidParameterError(f"t, dom, nondom and noise must be 1-d arrays of one length, got shapes "
                                    f"{t.shape}, {dom.shape}, {nondom.shape}, {noise.shape}")
    check_int("window", window, 1)

    def first(cond: np.ndarray, start: int = 0) -> int:
        idx = np.flatnonzero(cond[start:])
        return int(idx[0] + start) if idx.size else -1

    i1 = first(dom >= noise)
    i2 = first((dom >= sep * nondom) & (dom >= sep * noise), i1) if i1 >= 0 else -1
    i3 = -1
    quarter = t.size // 4
    if i2 >= 0 and quarter >= 1:
        plateau = float(np.median(dom[-quarter:]))
        before = float(np.median(dom[-2 * quarter:-quarter]))
        if abs(plateau - before) <= tol * plateau:
            half = window // 2
            padded = np.pad(dom, (half, window - 1 - half), mode="edge")
            smooth = np.median(np.lib.stride_tricks.sliding_window_view(padded, window), axis=1)
            i3 = first(np.abs(smooth - plateau) <= tol * plateau, i2)
    return tuple(float(t[i]) if i >= 0 else math.nan for i in (i1, i2, i3))  # type: ignore[return-value]


def neuron_trajectories(proj: np.ndarray, noise: np.ndarray, i: int, dom: int | None = None
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """``(dom, nondom, noise)`` trajectories of neuron ``i`` from records ``proj`` [n_t, m, K], ``noise`` [n_t, m].

    The dominant feature is the one with the largest final ``|<w_i, M_j>|`` unless ``dom`` is given.
    """
    P = np.abs(proj[:, i, :])
    j = int(np.argmax(P[-1])) if dom is None else int(dom)
    others = np.delete(P, j, axis=1)
    nd = others.max(axis=1) if others.shape[1] else np.zeros(P.shape[0])
    return P[:, j], nd, noise[:, i], j


def learned_neurons(proj: np.ndarray, noise: np.ndarray, *, min_growth: float = 2.0, min_cos: float = 0.5
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Neurons that learned a feature, and which one.

    A neuron learned its dominant feature ``j`` (largest final ``|<w_i, M_j>|``) when that projection ends
    at least ``min_growth`` times the neuron's initial norm (it grew along the feature beyond the random
    initialisation) and at cosine at least ``min_cos`` with ``M_j``. Pruned (zero) neurons never qualify.

    Parameters
    ----------
    proj : float64[n_t, m, K]
        Records of ``<w_i, M_k>``.
    noise : float64[n_t, m]
        Records of the norm outside span(M).

    Returns
    -------
    neurons, features : int64[n]
    """
    proj = np.asarray(proj, dtype=np.float64)
    noise = np.asarray(noise, dtype=np.float64)
    norm0 = np.sqrt(np.sum(proj[0] ** 2, axis=1) + noise[0] ** 2)
    norm1 = np.sqrt(np.sum(proj[-1] ** 2, axis=1) + noise[-1] ** 2)
    final = np.abs(proj[-1])
    feat = np.argmax(final, axis=1)
    top = final[np.arange(final.shape[0]), feat]
    with np.errstate(invalid="ignore", divide="ignore"):
        ok = (norm1 > 0) & (top >= min_growth * norm0) & (top >= min_cos * norm1)
    idx = np.flatnonzero(ok)
    return idx.astype(np.int64), feat[idx].astype(np.int64)


def stage_times(t: np.ndarray, proj: np.ndarray, noise: np.ndarray, neurons: np.ndarray, features: np.ndarray,
                **detect) -> np.ndarray:
    """float64[n, 3]: :func:`detect_stages` (``T1, T2, T3``) of each neuron with its given dominant feature,
    from records ``proj`` [n_t, m, K] and ``noise`` [n_t, m] (``detect`` is passed on)."""
    out = np.empty((len(neurons), 3))
    for n, (i, j) in enumerate(zip(neurons, features)):
        dom, nd, nz, _ = neuron_trajectories(proj, noise, int(i), dom=int(j))
        out[n] = detect_stages(t, dom, nd, nz, **detect)
    return out


def imbalanced_pruning_systems():
    """The systems this theory offers to the CLI (``theorykit systems``)."""
    from .. import BuiltinSystem

    pars = flow_params(Config(n_major=1, n_minor=1))
    return {"neuron": BuiltinSystem(
        "neuron", lambda: S.population_gradient(2).system, pars, {"a1": 0.05, "a2": 0.05, "r": 0.1},
        "linearised population gradient flow of one BReLU neuron on a majority and a minority feature",
        {"pi2": (0.001, 0.1), "lambda": (0.0, 0.05)})}


__all__ = ["compiled_slopes", "flow_params", "projected_gradient", "network_params", "compiled_network",
           "flow_solution", "population_descent", "stage_time_scales", "stage1_rate", "detect_stages",
           "neuron_trajectories", "learned_neurons", "stage_times", "imbalanced_pruning_systems"]
