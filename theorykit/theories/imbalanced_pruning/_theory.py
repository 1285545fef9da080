r"""Symbolic part: the per-neuron population gradient, its projections, the population flow and stage times.

Setting of the derivation (exact for one token, or for ``L`` i.i.d. tokens when attention is the
identity): a token is :math:`x = s M_j + \xi` with probability :math:`\pi_j` (sign :math:`s=\pm1`),
noise :math:`\xi\sim N(0,\sigma^2 I_d)`; the positive view :math:`y` shares :math:`sM_j` and has fresh
noise. For a neuron :math:`w = \sum_k a_k M_k + r\,e_\perp` the pre-activation is
:math:`\langle w, x\rangle = s a_j + v g` with :math:`v = \sigma\|w\|`, :math:`g\sim N(0,1)`.

Linearising InfoNCE in the logits (small :math:`\|f\|^2/\tau`) and using the stop-gradient, the expected
loss gradient of neuron :math:`i` decouples from the other neurons:

.. math:: \mathbb E\,\nabla_{w}\ell = -\frac{(1-1/B)L}{\tau}\,\mathbb E\big[h(y)\,\nabla_w h(x)\big]
          + \lambda w = -\frac{c}{2}\,\nabla_w J + \lambda w,
          \qquad J = \sum_j \pi_j\,H(a_j, v, b)^2,

with :math:`H(\mu, v, b) = \mathbb E[\mathrm{BReLU}_b(\mu + v g)]` and :math:`c = (1-1/B)L/\tau` (the
factor 2 because the two views are exchangeable; :math:`b` is held fixed, then set to
:math:`\kappa v`). Its projections on :math:`M_k` and on the noise direction :math:`e_\perp` are
:math:`\partial/\partial a_k` and :math:`\partial/\partial r` of :math:`-\tfrac c2 J + \tfrac\lambda2\|w\|^2`.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import sympy as sp

from ..._checks import check_int
from ...compile import compile_system
from ...derive import ODESystem
from ...errors import InvalidParameterError
from ._model import Config

# ------------------------------------------------------------------------------------------ symbols
MU = sp.Symbol("mu", real=True)
V = sp.Symbol("v", positive=True)
BIAS = sp.Symbol("b", nonnegative=True)
ETA, C, LAM, SIGMA, KAPPA = sp.symbols("eta c lambda sigma kappa", positive=True)
T = sp.Symbol("t", real=True)


@functools.lru_cache(maxsize=1)
def relu_mean() -> sp.Expr:
    r""":math:`R(m, v) = \mathbb E[\mathrm{ReLU}(m + v g)]`, :math:`g\sim N(0,1)`, integrated by SymPy."""
    m = sp.Symbol("m", real=True)
    g = sp.Symbol("g", real=True)
    phi = sp.exp(-g**2 / 2) / sp.sqrt(2 * sp.pi)
    R = sp.integrate((m + V * g) * phi, (g, -m / V, sp.oo))
    return sp.Lambda((m, V), sp.expand(R.rewrite(sp.erf)))


@functools.lru_cache(maxsize=1)
def brelu_mean() -> sp.Expr:
    r""":math:`H(\mu, v, b) = \mathbb E[\mathrm{BReLU}_b(\mu + v g)] = R(\mu - b, v) - R(-\mu - b, v)`."""
    R = relu_mean()
    return sp.expand(R(MU - BIAS, V) - R(-MU - BIAS, V))


Z = sp.Symbol("z", real=True)


@dataclass(frozen=True)
class Derivation:
    r"""Symbolic results of :func:`derive`.

    ``H`` is :math:`H(\mu, v, b)`; ``slope_mu`` / ``slope_v`` are :math:`\partial_\mu(H^2)/v` and
    :math:`\partial_v(H^2)/v` at fixed :math:`b`, evaluated at :math:`b = \kappa v`, :math:`\mu = z v`
    (functions of :math:`z` and :math:`\kappa` only, since :math:`H` is homogeneous of degree one);
    ``grad_feature[k]`` / ``grad_noise`` are the projections of the population loss gradient on
    :math:`M_k` / :math:`e_\perp` as functions of the states ``a``, ``r`` and the parameters
    ``c, lambda, sigma, kappa, pi``; ``system`` is the population gradient flow
    :math:`\dot a_k = -\eta\,g_k`, :math:`\dot r = -\eta\,g_r` (time in SGD steps).
    """

    H: sp.Expr
    dH_dmu: sp.Expr
    dH_dv: sp.Expr
    slope_mu: sp.Expr
    slope_v: sp.Expr
    a: tuple[sp.Symbol, ...]
    r: sp.Symbol
    pi: tuple[sp.Symbol, ...]
    grad_feature: tuple[sp.Expr, ...]
    grad_noise: sp.Expr
    system: ODESystem


@functools.lru_cache(maxsize=1)
def _slopes() -> tuple[sp.Expr, sp.Expr, sp.Expr, sp.Expr, sp.Expr]:
    H = brelu_mean()
    dH_dmu = sp.simplify(sp.diff(H, MU))
    dH_dv = sp.simplify(sp.diff(H, V))
    # H is homogeneous of degree one in (mu, v, b): evaluate at v = 1, mu = z, b = kappa
    at = {MU: Z, V: 1, BIAS: KAPPA}
    h = H.subs(at)
    return dH_dmu, dH_dv, 2 * h * dH_dmu.subs(at), 2 * h * dH_dv.subs(at), h


@functools.lru_cache(maxsize=8)
def derive(n_features: int) -> Derivation:
    """Derive the projected population gradient for ``n_features`` features (SymPy, cached)."""
    H = brelu_mean()
    dH_dmu, dH_dv, slope_mu, slope_v, _ = _slopes()
    a = tuple(sp.Symbol(f"a{k + 1}", real=True) for k in range(n_features))
    pi = tuple(sp.Symbol(f"pi{k + 1}", positive=True) for k in range(n_features))
    r = sp.Symbol("r", nonnegative=True)
    vw = SIGMA * sp.sqrt(sum(x**2 for x in a) + r**2)  # v = sigma ||w||
    # sum_j pi_j d(H_j^2)/dv / v, shared by every projection through v = sigma ||w||
    dv_term = sum(p_ * slope_v.subs(Z, ak / vw) for p_, ak in zip(pi, a))
    grad_feature = tuple(
        -C / 2 * (pk * vw * slope_mu.subs(Z, ak / vw) + SIGMA**2 * ak * dv_term) + LAM * ak
        for pk, ak in zip(pi, a))
    grad_noise = -C / 2 * SIGMA**2 * r * dv_term + LAM * r
    params = (ETA, C, LAM, SIGMA, KAPPA, *pi)
    system = ODESystem(
        t=T, states=(*a, r), rhs=tuple(-ETA * gk for gk in (*grad_feature, grad_noise)), params=params,
        observed={"norm": sp.sqrt(sum(x**2 for x in a) + r**2)},
        provenance=("imbalanced_pruning: sparse-coding tokens, BReLU neuron, InfoNCE with stop-gradient",
                    "population average over signs, features and Gaussian noise (closed form, erf)",
                    "InfoNCE linearised in the logits; bias b = kappa sigma ||w|| held fixed in the gradient"),
        name=f"imbalanced_pruning_neuron_K{n_features}")
    return Derivation(H, dH_dmu, dH_dv, slope_mu, slope_v, a, r, pi, grad_feature, grad_noise, system)


@functools.lru_cache(maxsize=1)
def slope_system() -> ODESystem:
    r"""The per-feature population terms as observables of a (static) system in :math:`z = a/v`.

    ``slope_mu`` is :math:`\partial_\mu(H^2)/v` and ``slope_v`` is :math:`\partial_v(H^2)/v`, both
    at :math:`\mu = z v`, :math:`b = \kappa v`; ``h`` is :math:`H(z, 1, \kappa) = H(a, v, \kappa v)/v`.
    The right-hand side is zero: the system only carries the compiled observables, from which
    :func:`projected_gradient` and :func:`population_flow` assemble the ``K``-feature gradient in
    :math:`O(K)` per neuron (the fully symbolic ``K``-feature system of :func:`derive` has
    :math:`O(K^2)` terms and is kept for display and testing).
    """
    _, _, slope_mu, slope_v, h = _slopes()
    return ODESystem(t=T, states=(Z,), rhs=(sp.Integer(0),), params=(KAPPA,),
                     observed={"slope_mu": slope_mu, "slope_v": slope_v, "h": h},
                     provenance=("imbalanced_pruning: per-feature population terms of the BReLU neuron",),
                     name="imbalanced_pruning_slopes")


@functools.lru_cache(maxsize=2)
def compiled(backend: str = "numba"):
    """:func:`slope_system` compiled by :func:`theorykit.compile.compile_system`."""
    return compile_system(slope_system(), backend=backend, jac=False)


def flow_params(cfg: Config) -> dict[str, float]:
    """Numeric parameters of the population flow for ``cfg``: ``c = (1 - 1/B) L / tau`` and friends."""
    c = (1.0 - 1.0 / cfg.batch) * cfg.n_tokens / cfg.tau
    out = {"eta": cfg.eta, "c": c, "lambda": cfg.lam, "sigma": cfg.sigma, "kappa": cfg.kappa}
    out |= {f"pi{k + 1}": float(p) for k, p in enumerate(cfg.feature_probs())}
    return out


def projected_gradient(cfg: Config, a: np.ndarray, r: float) -> np.ndarray:
    r"""float64[K + 1]: population loss gradient projected on ``M_1..M_K`` and on the noise direction.

    .. math:: g_k = -\tfrac c2\big(\pi_k v\,s_\mu(a_k/v) + \sigma^2 a_k \textstyle\sum_j \pi_j s_v(a_j/v)\big)
              + \lambda a_k,\qquad g_r = -\tfrac c2 \sigma^2 r \textstyle\sum_j \pi_j s_v(a_j/v) + \lambda r,

    with :math:`v = \sigma\|w\|` and the compiled slopes :math:`s_\mu, s_v` of :func:`slope_system`: the
    linearised (``saturation=False``) right-hand side of :func:`compiled_network` for one neuron, over
    :math:`-\eta`. Requires ``nsr > 0``.
    """
    a = np.asarray(a, dtype=np.float64)
    if cfg.sigma <= 0:
        raise InvalidParameterError("the population gradient needs nsr > 0 (the BReLU threshold scales with the noise)")
    if a.shape != (cfg.n_features,):
        raise InvalidParameterError(f"a must have shape ({cfg.n_features},), got {a.shape}")
    out = np.empty(a.size + 1)
    compiled_network(1, a.size).rhs_into(0.0, np.append(a, float(r)), network_params(cfg, saturation=False), out)
    return -out / cfg.eta


# ------------------------------------------------------------------------------- saturating network flow
LOGIT = sp.Symbol("e", real=True)
N_SAME, N_REST = sp.symbols("n_s n_r", nonnegative=True)


@functools.lru_cache(maxsize=1)
def saturation_factor() -> sp.Expr:
    r"""Token-level closure of the InfoNCE softmax: the weight :math:`q(e)` of a feature's gradient.

    A token carrying :math:`sM_j` adds :math:`e_j = \sum_i H_{ij}^2/\tau` to the positive logit
    (:math:`H_{ij} = H(a_{ij}, v_i, \kappa v_i)`). Among the :math:`B-1` negatives, on average
    :math:`n_s = (B-1)\rho_j/2` carry the same signed feature (logit :math:`+e_j`), as many carry it with the
    opposite sign (:math:`-e_j`) and :math:`n_r = (B-1)(1-\rho_j)` do not carry it (logit 0), with
    :math:`\rho_j = 1-(1-\pi_j)^L`. With the stop-gradient, the gradient of
    :math:`\ell = -x_+ + \log(e^{x_+} + n_s e^{x_s} + n_s e^{x_o} + n_r)` along the feature is the
    positive minus the same-sign plus the opposite-sign logit derivative, so

    .. math:: q(e) = -\Big(\frac{\partial\ell}{\partial x_+} + \frac{\partial\ell}{\partial x_s}
              - \frac{\partial\ell}{\partial x_o}\Big)\Big|_{x_+ = x_s = e,\ x_o = -e},

    which equals :math:`(B-1)/B` (the linearised weight) at :math:`e = 0` and decays like
    :math:`e^{-e}` once the feature is learned: the saturation that ends the growth (stage 3).
    """
    xp, xs, xo = sp.symbols("x_+ x_s x_o", real=True)
    loss = -xp + sp.log(sp.exp(xp) + N_SAME * sp.exp(xs) + N_SAME * sp.exp(xo) + N_REST)
    q = -(sp.diff(loss, xp) + sp.diff(loss, xs) - sp.diff(loss, xo))
    return sp.simplify(q.subs({xp: LOGIT, xs: LOGIT, xo: -LOGIT}))


@functools.lru_cache(maxsize=1)
def saturation_system() -> ODESystem:
    """:func:`saturation_factor` as the observable ``q`` of a static system in the logit ``e``."""
    return ODESystem(t=T, states=(LOGIT,), rhs=(sp.Integer(0),), params=(N_SAME, N_REST),
                     observed={"q": saturation_factor()},
                     provenance=("imbalanced_pruning: token-level closure of the InfoNCE softmax",),
                     name="imbalanced_pruning_saturation")


def network_system(width: int, n_features: int) -> ODESystem:
    r"""The coupled population flow of ``width`` neurons (states ``a_{i}_{k}``, ``r_{i}``), abstractly.

    Neuron :math:`i` follows the projected population gradient of :func:`derive` with the linearised
    weight :math:`(B-1)/B` replaced by the saturation :math:`q_k = q(e_k)` of :func:`saturation_factor`
    per feature, :math:`e_k = \gamma\sum_i v_i^2 h(a_{ik}/v_i)^2` with :math:`\gamma = 1/\tau` (the logit
    scale; :math:`\gamma = 0` gives the linearised flow), which couples the neurons:

    .. math:: \dot a_{ik} = \eta\Big[\tfrac{L}{2\tau}\big(q_k\pi_k v_i s_\mu(z_{ik})
              + \sigma^2 a_{ik} D_i\big) - \lambda a_{ik}\Big],\qquad
              \dot r_i = \eta\Big[\tfrac{L}{2\tau}\sigma^2 r_i D_i - \lambda r_i\Big],
              \qquad D_i = \sum_j q_j \pi_j s_v(z_{ij}).

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
    rho = 1.0 - (1.0 - pis) ** cfg.n_tokens
    n_same = (cfg.batch - 1) * rho / 2
    n_rest = (cfg.batch - 1) * (1.0 - rho)
    gamma = 1.0 / cfg.tau if saturation else 0.0
    return np.concatenate(([cfg.eta, cfg.n_tokens, cfg.tau, cfg.lam, cfg.sigma, cfg.kappa, gamma], pis, n_same,
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
    if a0.ndim != 2 or a0.shape[1] != cfg.n_features or r0.shape != (a0.shape[0],):
        raise InvalidParameterError(f"a0 must have shape (m, {cfg.n_features}) and r0 shape (m,), "
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


def stage_time_scales(d: int, eta: float, eps: float, *, p: float | None = None, c: float = 1.0) -> dict[str, float]:
    r"""Lemma 3.1's stage-1 time scale with a unit constant.

    With per-token feature frequency :math:`\pi` the feature projections grow at rate
    :math:`\propto \eta c \pi` and must grow by a factor polynomial in :math:`d`, so stage 1 lasts
    :math:`\Theta(\log d / (\eta c \pi))`; with the paper's :math:`\pi = \log\log d / d` this is
    :math:`T_1 = \Theta(d\log d / (\eta\log\log d))`. Minority features (:math:`\pi = \varepsilon p`) take
    :math:`1/\varepsilon` times longer. The constants, and the times :math:`T_2, T_3`, come from the
    population flow (:func:`population_flow` with :func:`stage_times`).

    Returns ``T1_major`` and ``T1_minor``.
    """
    p = math.log(math.log(d)) / d if p is None else p
    t1 = math.log(d) / (eta * c * p)
    return {"T1_major": t1, "T1_minor": t1 / eps}


# -------------------------------------------------------------------------------------------- stages
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
