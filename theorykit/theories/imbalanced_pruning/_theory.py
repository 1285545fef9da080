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
def _slopes() -> tuple[sp.Expr, sp.Expr, sp.Expr, sp.Expr]:
    H = brelu_mean()
    dH_dmu = sp.simplify(sp.diff(H, MU))
    dH_dv = sp.simplify(sp.diff(H, V))
    # H is homogeneous of degree one in (mu, v, b): evaluate at v = 1, mu = z, b = kappa
    at = {MU: Z, V: 1, BIAS: KAPPA}
    h = H.subs(at)
    return dH_dmu, dH_dv, 2 * h * dH_dmu.subs(at), 2 * h * dH_dv.subs(at)


@functools.lru_cache(maxsize=8)
def derive(n_features: int) -> Derivation:
    """Derive the projected population gradient for ``n_features`` features (SymPy, cached)."""
    H = brelu_mean()
    dH_dmu, dH_dv, slope_mu, slope_v = _slopes()
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
    at :math:`\mu = z v`, :math:`b = \kappa v`. The right-hand side is zero: the system only carries
    the compiled observables, from which :func:`projected_gradient` assembles the ``K``-feature
    gradient in :math:`O(K)` per call (the fully symbolic ``K``-feature system of :func:`derive` has
    :math:`O(K^2)` terms and is kept for display and testing).
    """
    _, _, slope_mu, slope_v = _slopes()
    return ODESystem(t=T, states=(Z,), rhs=(sp.Integer(0),), params=(KAPPA,),
                     observed={"slope_mu": slope_mu, "slope_v": slope_v},
                     provenance=("imbalanced_pruning: per-feature population terms of the BReLU neuron",),
                     name="imbalanced_pruning_slopes")


@functools.lru_cache(maxsize=2)
def compiled(backend: str = "numpy"):
    """:func:`slope_system` compiled by :func:`theorykit.compile.compile_system`."""
    return compile_system(slope_system(), backend=backend, jac=False)


def flow_params(cfg: Config) -> dict[str, float]:
    """Numeric parameters of the population flow for ``cfg``: ``c = (1 - 1/B) L / tau`` and friends."""
    c = (1.0 - 1.0 / cfg.batch) * cfg.n_tokens / cfg.tau
    out = {"eta": cfg.eta, "c": c, "lambda": cfg.lam, "sigma": cfg.sigma, "kappa": cfg.kappa}
    out |= {f"pi{k + 1}": float(p) for k, p in enumerate(cfg.feature_probs())}
    return out


def _slopes_at(z: np.ndarray, kappa: float) -> tuple[np.ndarray, np.ndarray]:
    csys = compiled()
    p = np.array([kappa])
    buf = np.empty(2)
    sm, sv = np.empty(z.size), np.empty(z.size)
    y = np.empty(1)
    for k, zk in enumerate(z):
        y[0] = zk
        csys.observed_into(0.0, y, p, buf)
        sm[k], sv[k] = buf[0], buf[1]
    return sm, sv


def projected_gradient(cfg: Config, a: np.ndarray, r: float) -> np.ndarray:
    r"""float64[K + 1]: population loss gradient projected on ``M_1..M_K`` and on the noise direction.

    .. math:: g_k = -\tfrac c2\big(\pi_k v\,s_\mu(a_k/v) + \sigma^2 a_k \textstyle\sum_j \pi_j s_v(a_j/v)\big)
              + \lambda a_k,\qquad g_r = -\tfrac c2 \sigma^2 r \textstyle\sum_j \pi_j s_v(a_j/v) + \lambda r,

    with :math:`v = \sigma\|w\|` and the compiled slopes :math:`s_\mu, s_v` of :func:`slope_system`.
    Requires ``nsr > 0``.
    """
    a = np.asarray(a, dtype=np.float64)
    if cfg.sigma <= 0:
        raise InvalidParameterError("the population gradient needs nsr > 0 (the BReLU threshold scales with the noise)")
    pr = flow_params(cfg)
    pis = cfg.feature_probs()
    v = cfg.sigma * math.sqrt(float(a @ a) + float(r) ** 2)
    sm, sv = _slopes_at(a / v, cfg.kappa)
    D = float(pis @ sv)
    c, lam, s2 = pr["c"], pr["lambda"], cfg.sigma**2
    g = np.empty(a.size + 1)
    g[:-1] = -c / 2 * (pis * v * sm + s2 * a * D) + lam * a
    g[-1] = -c / 2 * s2 * float(r) * D + lam * float(r)
    return g


def population_flow(cfg: Config, a0: np.ndarray, r0: float, t_eval: np.ndarray) -> np.ndarray:
    """Integrate the population flow of one neuron; returns float64[n_t, K + 1] (``a_1..a_K, r``).

    Time is measured in SGD steps (the flow is the small-``eta`` limit of the SGD recursion).
    """
    from scipy.integrate import solve_ivp

    y0 = np.concatenate([np.asarray(a0, dtype=np.float64), [float(r0)]])

    def f(t, y):
        return -cfg.eta * projected_gradient(cfg, y[:-1], abs(y[-1]))

    sol = solve_ivp(f, (float(t_eval[0]), float(t_eval[-1])), y0, t_eval=t_eval, method="LSODA",
                    rtol=1e-6, atol=1e-10)
    if not sol.success:  # pragma: no cover - smooth flow
        raise RuntimeError(f"population flow integration failed: {sol.message}")
    return sol.y.T


def stage_time_scales(d: int, eta: float, eps: float, *, p: float | None = None, c: float = 1.0) -> dict[str, float]:
    r"""The paper's stage time scales with unit constants.

    With per-token feature frequency :math:`\pi` the feature projections grow at rate
    :math:`\propto \eta c \pi` and must grow by a factor polynomial in :math:`d`, so every stage lasts
    :math:`\Theta(\log d / (\eta c \pi))`; with the paper's :math:`\pi = \log\log d / d` this is
    Lemma 3.1's :math:`T_1 = \Theta(d\log d / (\eta\log\log d))`. Minority features
    (:math:`\pi = \varepsilon p`) take :math:`1/\varepsilon` times longer.

    Returns ``T1_major``, ``T1_minor``, ``T2_major``, ``T3_major`` (the last two share the
    :math:`1/(\eta\pi)` scaling; their constants are not fixed by the Theta statements, here 2 and 3).
    """
    p = math.log(math.log(d)) / d if p is None else p
    t1 = math.log(d) / (eta * c * p)
    return {"T1_major": t1, "T1_minor": t1 / eps, "T2_major": 2 * t1, "T3_major": 3 * t1}


# -------------------------------------------------------------------------------------------- stages
def detect_stages(t: np.ndarray, dom: np.ndarray, nondom: np.ndarray, noise: np.ndarray, *,
                  sep: float = 3.0, tol: float = 0.05) -> tuple[float, float, float]:
    r"""Stage boundaries of one neuron from its projections over time.

    * :math:`T_1`: first time the dominant-feature projection exceeds the noise projection (end of the
      stage in which feature directions grow while noise is suppressed);
    * :math:`T_2`: first time it exceeds ``sep`` times both the largest non-dominant projection and the
      noise projection (clear separation);
    * :math:`T_3`: first time after which it stays within ``tol`` (relative) of its final value
      (convergence). ``nan`` where a criterion is never met; :math:`T_3` is ``nan`` when the final
      10% of the record are not yet within tolerance.

    Parameters
    ----------
    t : float64[n_t]
    dom, nondom, noise : float64[n_t]
        ``|<w, M_dom>|``, ``max_{k != dom} |<w, M_k>|`` and the norm outside span(M).
    """
    t = np.asarray(t, dtype=np.float64)
    dom, nondom, noise = (np.abs(np.asarray(x, dtype=np.float64)) for x in (dom, nondom, noise))

    def first(cond: np.ndarray, start: int = 0) -> int:
        idx = np.flatnonzero(cond[start:])
        return int(idx[0] + start) if idx.size else -1

    i1 = first(dom >= noise)
    i2 = first((dom >= sep * nondom) & (dom >= sep * noise), max(i1, 0))
    final = dom[-1]
    out_tol = np.abs(dom - final) > tol * max(final, 1e-300)
    bad = np.flatnonzero(out_tol)
    i3 = 0 if bad.size == 0 else int(bad[-1] + 1)
    if i3 >= int(0.9 * len(t)) or i2 < 0:
        i3 = -1
    else:
        i3 = max(i3, i2)
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
