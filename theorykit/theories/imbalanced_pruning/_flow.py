"""The coupled population flow of the network, and its discrete form with Algorithm 1's pruning mask.

Built from the compiled per-feature terms of :mod:`._theory` (the SymPy slopes and the softmax saturation).
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np
import sympy as sp

from ..._checks import check_int
from ...compile import compile_system
from ...derive import ODESystem
from ...errors import InvalidParameterError
from . import _kernels as K
from ._config import Config
from ._theory import ETA, LAM, SIGMA, KAPPA, T, compiled, saturation_system


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
    are the compiled slopes of :func:`._theory.slope_system`. Requires ``nsr > 0``.
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
    slopes, buf, z = compiled("numba").observed_into, np.empty(3), np.empty(1)
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


def network_system(width: int, n_features: int) -> ODESystem:
    r"""The coupled population flow of ``width`` neurons (states ``a_{i}_{k}``, ``r_{i}``), abstractly.

    Neuron :math:`i` follows the projected population gradient of :func:`derive` with the linearised
    weight :math:`(B-1)/B` replaced by the saturation :math:`q_k = q(e_k)` of :func:`saturation_factor`
    per feature, :math:`e_k = \gamma\sum_i v_i^2 h(z_{ik})^2` with :math:`\gamma = 1/\tau` (the logit
    scale; :math:`\gamma = 0` gives the linearised flow), which couples the neurons (:math:`v_i = \sigma\|w_i\|`,
    :math:`z_{ik} = a_{ik}/v_i`):

    .. math:: \dot a_{ik} = \eta\Big[\tfrac{L}{2\tau}\big(q_k\pi_k v_i s_\mu(z_{ik})
              + \sigma^2 a_{ik} D_i\big) - \lambda a_{ik}\Big],\qquad
              \dot r_i = \eta\Big[\tfrac{L}{2\tau}\sigma^2 r_i D_i - \lambda r_i\Big],
              \qquad D_i = \sum_j q_j \pi_j s_v(z_{ij}).

    Like the gradient of :func:`._theory.derive` it treats the ``L`` tokens of an input as unmixed by attention
    (exact for ``L = 1``).

    The per-feature terms are functions ``G_*`` here; :func:`population_flow` evaluates them with the
    compiled :func:`slope_system` and :func:`saturation_system`.
    """
    check_int("width", width, 1)
    check_int("n_features", n_features, 1)
    a = [sp.Symbol(f"a_{i + 1}_{k + 1}", real=True) for i in range(width) for k in range(n_features)]
    r = [sp.Symbol(f"r_{i + 1}", nonnegative=True) for i in range(width)]
    tau_, ell = sp.symbols("tau L", positive=True)
    gamma = sp.Symbol("gamma", nonnegative=True)
    pis = [sp.Symbol(f"pi{k + 1}", positive=True) for k in range(n_features)]
    n_same = [sp.Symbol(f"n_s{k + 1}", nonnegative=True) for k in range(n_features)]
    n_rest = [sp.Symbol(f"n_r{k + 1}", nonnegative=True) for k in range(n_features)]
    rhs = [-ETA * sp.Function(f"G_{x.name}")(T) for x in (*a, *r)]
    return ODESystem(t=T, states=(*a, *r), rhs=tuple(rhs),
                     params=(ETA, ell, tau_, LAM, SIGMA, KAPPA, gamma, *pis, *n_same, *n_rest),
                     provenance=("imbalanced_pruning: per-neuron projected population gradient (see derive)",
                                 "InfoNCE softmax closed per feature by the token-level saturation q(e)"),
                     name=f"imbalanced_pruning_network_m{width}_K{n_features}")


def network_params(cfg: Config, *, saturation: bool = True) -> np.ndarray:
    """float64: packed parameters of :func:`network_system` for ``cfg`` (``saturation=False`` gives the
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
    """:func:`network_system` as a :class:`~theorykit.compile.CompiledSystem` for :func:`theorykit.solve.solve`.

    The right-hand side is an njit closure over the compiled observables of :func:`slope_system` and
    :func:`saturation_system` (numba compiles it once per process and shape).
    """
    from numba import njit

    from ...compile import CompiledSystem

    slopes = compiled("numba").observed_into
    sat = compile_system(saturation_system(), backend="numba", jac=False).observed_into
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

    source = ("# coupled population flow: theorykit.theories.imbalanced_pruning._theory.compiled_network, an njit "
              "closure over the compiled observables of 'imbalanced_pruning_slopes' and "
              "'imbalanced_pruning_saturation'\n")
    return CompiledSystem.from_functions(network_system(m, nk), rhs_into=rhs_into, source=source)


def population_flow(cfg: Config, a0: np.ndarray, r0: np.ndarray, t_eval: np.ndarray, *,
                    saturation: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Integrate the coupled population flow of :func:`network_system` from the projections of the
    neurons; time is measured in SGD steps (the flow is the small-``eta`` limit of the SGD recursion).

    Parameters
    ----------
    cfg : Config
        Settings (``nsr > 0``: the BReLU threshold scales with the noise).
    a0 : float64[m, K]
        Initial projections ``<w_i, M_k>`` (e.g. ``run.proj[0]``).
    r0 : float64[m]
        Initial norms outside span(M) (e.g. ``run.noise[0]``).
    t_eval : float64[n_t]
        Output times, increasing, starting at the initial time.
    saturation : bool
        Close the InfoNCE softmax with :func:`saturation_factor` (default); ``False`` integrates the
        linearised flow (each neuron on its own, no convergence stage).

    Returns
    -------
    proj : float64[n_t, m, K]
    noise : float64[n_t, m]

    Raises
    ------
    InvalidParameterError
        On ``nsr = 0``, mismatched shapes or a non-increasing ``t_eval``.
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
    t_eval = np.asarray(t_eval, dtype=np.float64)
    if t_eval.ndim != 1 or t_eval.size < 2 or np.any(np.diff(t_eval) <= 0):
        raise InvalidParameterError("t_eval must be an increasing 1-d array of at least two times")
    m, nk = a0.shape
    alive = (np.sum(a0**2, axis=1) + r0**2) > 0  # pruned neurons stay at zero
    idx = np.flatnonzero(alive)
    csys = compiled_network(idx.size, nk)
    y0 = np.concatenate([a0[idx].ravel(), r0[idx]])
    sol = solve(csys, y0, (float(t_eval[0]), float(t_eval[-1])), network_params(cfg, saturation=saturation),
                t_eval=t_eval, rtol=1e-7, atol=1e-10)
    proj = np.zeros((t_eval.size, m, nk))
    noise = np.zeros((t_eval.size, m))
    proj[:, idx, :] = sol.y[:, : idx.size * nk].reshape(-1, idx.size, nk)
    noise[:, idx] = np.abs(sol.y[:, idx.size * nk:])
    return proj, noise


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
