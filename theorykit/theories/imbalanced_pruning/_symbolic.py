r"""The model and its derivation: the per-neuron population gradient, its projections, the softmax
saturation and the coupled population flow of the network (SymPy).

Setting of the derivation: a token is :math:`x = Mz + \xi\in\mathbb R^{d_1}` (Assumption 3.1) with
independent :math:`z_j\in\{0,\pm1\}`, :math:`\Pr(z_j\ne0)=\pi_j` (Definition 3.1), noise
:math:`\xi\sim N(0,\sigma^2 I_{d_1})`; the positive view :math:`y` shares :math:`z` and has fresh noise.
The gradient is kept to first order in the :math:`\pi_j` (tokens carrying one feature; a token with two
or more contributes :math:`O(\pi^2)`), exact for one token per input or for ``L`` tokens when attention
does not mix them. For a neuron :math:`w = \sum_k a_k M_k + r\,e_\perp` the pre-activation on a token
carrying :math:`sM_j` is :math:`s a_j + v g` with :math:`v = \sigma\|w\|`, :math:`g\sim N(0,1)`.

Linearising InfoNCE in the logits (small :math:`\|f\|^2/\tau`) and using the stop-gradient, the expected
loss gradient of neuron :math:`i` decouples from the other neurons:

.. math:: \mathbb E\,\nabla_{w}\ell = -\frac{(1-1/B)L}{\tau}\,\mathbb E\big[h(y)\,\nabla_w h(x)\big]
          + \lambda w = -\frac{c}{2}\,\nabla_w J + \lambda w,
          \qquad J = \sum_j \pi_j\,H(a_j, v, b)^2,

with :math:`H(\mu, v, b) = \mathbb E[\mathrm{BReLU}_b(\mu + v g)]` and :math:`c = (1-1/B)L/\tau` (the
factor 2 because the two views are exchangeable; :math:`b` is held fixed, then set to
:math:`\kappa v` with :math:`\kappa` the configuration's ``bias_scale``). Its projections on :math:`M_k` and on
the noise direction :math:`e_\perp` are
:math:`\partial/\partial a_k` and :math:`\partial/\partial r` of :math:`-\tfrac c2 J + \tfrac\lambda2\|w\|^2`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import sympy as sp

from ..._checks import check_int
from ...derive import ODESystem
from ._config import network_state_names

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
class PopulationGradient:
    r"""Symbolic results of :func:`population_gradient`.

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
def neuron_slopes() -> tuple[sp.Expr, sp.Expr, sp.Expr, sp.Expr, sp.Expr]:
    H = brelu_mean()
    dH_dmu = sp.simplify(sp.diff(H, MU))
    dH_dv = sp.simplify(sp.diff(H, V))
    # H is homogeneous of degree one in (mu, v, b): evaluate at v = 1, mu = z, b = kappa
    at = {MU: Z, V: 1, BIAS: KAPPA}
    h = H.subs(at)
    return dH_dmu, dH_dv, 2 * h * dH_dmu.subs(at), 2 * h * dH_dv.subs(at), h


@functools.lru_cache(maxsize=8)
def population_gradient(n_features: int) -> PopulationGradient:
    """Derive the projected population gradient for ``n_features`` features (SymPy, cached)."""
    H = brelu_mean()
    dH_dmu, dH_dv, slope_mu, slope_v, _ = neuron_slopes()
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
    return PopulationGradient(H, dH_dmu, dH_dv, slope_mu, slope_v, a, r, pi, grad_feature, grad_noise, system)


@functools.lru_cache(maxsize=1)
def slope_system() -> ODESystem:
    r"""The per-feature population terms as observables of a (static) system in :math:`z = a/v`.

    ``slope_mu`` is :math:`\partial_\mu(H^2)/v` and ``slope_v`` is :math:`\partial_v(H^2)/v`, both
    at :math:`\mu = z v`, :math:`b = \kappa v`; ``h`` is :math:`H(z, 1, \kappa) = H(a, v, \kappa v)/v`.
    The right-hand side is zero: the system only carries the compiled observables, from which
    :func:`._analysis.projected_gradient` and :func:`._analysis.compiled_network` assemble the ``K``-feature
    gradient in :math:`O(K)` per neuron (the fully symbolic ``K``-feature system of :func:`population_gradient` has
    :math:`O(K^2)` terms and is kept for display and testing).
    """
    _, _, slope_mu, slope_v, h = neuron_slopes()
    return ODESystem(t=T, states=(Z,), rhs=(sp.Integer(0),), params=(KAPPA,),
                     observed={"slope_mu": slope_mu, "slope_v": slope_v, "h": h},
                     provenance=("imbalanced_pruning: per-feature population terms of the BReLU neuron",),
                     name="imbalanced_pruning_slopes")


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


# ---------------------------------------------------------------------------------------- network flow
def network_system(width: int, n_features: int) -> ODESystem:
    r"""The coupled population flow of ``width`` neurons (states ``a_{i}_{k}``, ``r_{i}``), abstractly.

    Neuron :math:`i` follows the projected population gradient of :func:`population_gradient` with the linearised
    weight :math:`(B-1)/B` replaced by the saturation :math:`q_k = q(e_k)` of :func:`saturation_factor`
    per feature, :math:`e_k = \gamma\sum_i v_i^2 h(z_{ik})^2` with :math:`\gamma = 1/\tau` (the logit
    scale; :math:`\gamma = 0` gives the linearised flow), which couples the neurons (:math:`v_i = \sigma\|w_i\|`,
    :math:`z_{ik} = a_{ik}/v_i`):

    .. math:: \dot a_{ik} = \eta\Big[\tfrac{L}{2\tau}\big(q_k\pi_k v_i s_\mu(z_{ik})
              + \sigma^2 a_{ik} D_i\big) - \lambda a_{ik}\Big],\qquad
              \dot r_i = \eta\Big[\tfrac{L}{2\tau}\sigma^2 r_i D_i - \lambda r_i\Big],
              \qquad D_i = \sum_j q_j \pi_j s_v(z_{ij}).

    Like :func:`population_gradient` it treats the ``L`` tokens of an input as unmixed by attention
    (exact for ``L = 1``).

    The per-feature terms are functions ``G_*`` here; :func:`._analysis.compiled_network` evaluates them with
    the compiled :func:`slope_system` and :func:`saturation_system`.
    """
    check_int("width", width, 1)
    check_int("n_features", n_features, 1)
    names = network_state_names(width, n_features)
    a = [sp.Symbol(n, real=True) for n in names[:width * n_features]]
    r = [sp.Symbol(n, nonnegative=True) for n in names[width * n_features:]]
    tau_, ell = sp.symbols("tau L", positive=True)
    gamma = sp.Symbol("gamma", nonnegative=True)
    pis = [sp.Symbol(f"pi{k + 1}", positive=True) for k in range(n_features)]
    n_same = [sp.Symbol(f"n_s{k + 1}", nonnegative=True) for k in range(n_features)]
    n_rest = [sp.Symbol(f"n_r{k + 1}", nonnegative=True) for k in range(n_features)]
    rhs = [-ETA * sp.Function(f"G_{x.name}")(T) for x in (*a, *r)]
    return ODESystem(t=T, states=(*a, *r), rhs=tuple(rhs),
                     params=(ETA, ell, tau_, LAM, SIGMA, KAPPA, gamma, *pis, *n_same, *n_rest),
                     provenance=("imbalanced_pruning: per-neuron projected population gradient (population_gradient)",
                                 "InfoNCE softmax closed per feature by the token-level saturation q(e)"),
                     name=f"imbalanced_pruning_network_m{width}_K{n_features}")


@functools.lru_cache(maxsize=1)
def slope_mu_at_zero() -> sp.Expr:
    r""":math:`s_\mu'(0) = 2\,\mathrm{erfc}(\kappa/\sqrt2)^2` as SymPy derives it from :func:`neuron_slopes`."""
    return sp.simplify(sp.diff(neuron_slopes()[2], Z).subs(Z, 0))
