r"""Symbolic layer (SymPy only): per-sample losses of a linear encoder with a closed-form predictor, and
the eigenvalue ODEs derived from them (see ``derivations/closed_form_predictor.md`` for the sources).

Input :math:`x \sim N(0, I_N)`, views :math:`x_i = x + \xi_i`, :math:`\xi_i \sim N(0, \sigma_i^2 I)` (``sigma2_o``
online, ``sigma2_t`` target), encoder :math:`W` (M x N), target :math:`W_t` behind a stop-gradient (SimSiam
or an EMA at rate ``beta``), predictor :math:`W_P = U\,\mathrm{diag}(\lambda)U^\top` from :math:`WW^\top =
U\,\mathrm{diag}(s)U^\top` with no gradient through it. Mode ``m`` of :math:`W = \sum_m w_m u_m v_m^\top` sees
:math:`g = v_m^\top x \sim N(0,1)`, :math:`e_i \sim N(0, \sigma_i^2)`: :math:`z_1 = w(g+e_1)`, :math:`z_2 =
a(g+e_2)` (:math:`a = \tau w`), :math:`p = \lambda z_1`. The surrogate :math:`\sum_X \mathrm{sg}(\partial\ell/
\partial X)\,E[X]` of the loss's overlaps ``X`` (outer factors at the concentration values: exact for the
Euclidean losses, the high-dimensional closure for the cosine ones) is averaged with
:func:`theorykit.derive.expectation` and differentiated by :func:`theorykit.derive.gradient_flow`.
"""

from __future__ import annotations

from functools import lru_cache

import sympy as sp

from ...derive import Law, ODESystem, expectation, gradient_flow
from ...errors import InvalidParameterError

LOSSES = ("euclidean", "cosine", "iso_euclidean", "iso_cosine")
PREDICTORS = ("closed_form", "directpred")

t = sp.Symbol("t", real=True)
alpha, beta = sp.Symbol("alpha", positive=True), sp.Symbol("beta", positive=True)
eta, epsilon = sp.Symbol("eta", nonnegative=True), sp.Symbol("epsilon", nonnegative=True)
sigma2_o, sigma2_t = sp.Symbol("sigma2_o", nonnegative=True), sp.Symbol("sigma2_t", nonnegative=True)
dim = sp.Symbol("dim", positive=True)        # number of features M; cancels from every flow
lam = sp.Symbol("lambda", positive=True)     # predictor eigenvalue of the one-mode systems
g, e1, e2 = sp.symbols("g e1 e2", real=True)


def check(loss: str, predictor: str = "closed_form") -> None:
    """Raise :class:`InvalidParameterError` unless ``loss`` is in :data:`LOSSES` and ``predictor`` in
    :data:`PREDICTORS`."""
    if loss not in LOSSES:
        raise InvalidParameterError(f"loss must be one of {LOSSES}, got {loss!r}")
    if predictor not in PREDICTORS:
        raise InvalidParameterError(f"predictor must be one of {PREDICTORS}, got {predictor!r}")


def loss_of_overlaps(loss: str, w, wb, a, lm) -> tuple[sp.Expr, dict]:
    r"""``(ell, parts)``: the per-sample loss as a function of overlap symbols, and each overlap's per-mode
    product in the live singular value ``w``, its stopped copy ``wb``, the target ``a`` and predictor
    eigenvalue ``lm``. Cosine losses carry the factor ``dim`` (cosine of RMS-normalised features).

    * ``euclidean`` :math:`\tfrac12\|p - \mathrm{sg}\,z_2\|^2`; ``cosine`` :math:`-M\cos(p, \mathrm{sg}\,z_2)`;
    * ``iso_euclidean`` :math:`\tfrac12\|z_1 - \mathrm{sg}(z_2 + z_1 - p)\|^2` (``isoloss.py``, halved as the
      toy notebook's update);
    * ``iso_cosine`` :math:`-M[\langle z_1, \mathrm{sg}\,z_2\rangle/\mathrm{sg}(\|p\|\|z_2\|) - \tfrac12
      \mathrm{sg}(\langle p, z_2\rangle/(\|p\|^3\|z_2\|))\,\|W_P^{1/2} z_1\|^2]` (``isoloss.py``, halved).
    """
    check(loss)
    z1, z1s, z2 = w * (g + e1), wb * (g + e1), a * (g + e2)
    p, ps = lm * z1, lm * z1s
    A, C, B, K, Q, Z, R, RR = sp.symbols("A C B K Q Z R RR", positive=True)
    if loss == "euclidean":
        return (A - 2 * C + B) / 2, {A: p * p, C: p * z2, B: z2 * z2}
    if loss == "cosine":
        return -dim * C / sp.sqrt(A * B), {A: p * p, C: p * z2, B: z2 * z2}
    if loss == "iso_euclidean":
        r = z2 + z1s - ps
        return (Z - 2 * R + RR) / 2, {Z: z1 * z1, R: z1 * r, RR: r * r}
    return (-dim * (K / sp.sqrt(A * B) - C * Q / (2 * A ** sp.Rational(3, 2) * sp.sqrt(B))),
            {K: z1 * z2, Q: lm * z1 * z1, A: ps * ps, C: ps * z2, B: z2 * z2})


def fractions(n_groups: int) -> list:
    """Fractions ``f_k`` of the M modes in each group: symbols ``f1 .. f{G-1}`` and ``1 - sum`` (``[1]``
    for one group)."""
    fs = [sp.Symbol(f"f{k + 1}", positive=True) for k in range(n_groups - 1)]
    return fs + [1 - sum(fs)] if fs else [sp.Integer(1)]


def predictor_eigenvalues(predictor: str, s: list) -> list:
    r"""Predictor eigenvalues of the groups: :math:`s_k^\alpha`, or DirectPred's
    :math:`\sqrt{(1+\sigma_o^2) s_k} + \epsilon (1+\sigma_o^2) s_1` (group 1 holds the largest eigenvalue;
    the flow keeps the order, as every mode follows the same law in a common field)."""
    check("euclidean", predictor)
    if predictor == "closed_form":
        return [sk ** alpha for sk in s]
    c = 1 + sigma2_o
    return [sp.sqrt(c * sk) + epsilon * c * s[0] for sk in s]


@lru_cache(maxsize=None)
def mode_flow(loss: str, n_groups: int = 1, ema: bool = False) -> tuple[tuple, tuple, tuple, tuple, dict]:
    r"""``(s, lambdas, taus, rel, overlaps)``: the derived relative rates :math:`\dot w_k / w_k` of
    ``n_groups`` groups of modes in their eigenvalues ``s_k``, predictor eigenvalues ``lambda_k`` (symbols,
    any predictor), target ratios ``tau_k`` (1 without ``ema``) and the overlap symbols, which ``overlaps``
    maps to their concentration values per feature, :math:`E[X]/M = \sum_k f_k E[x_k]`."""
    check(loss)
    G = int(n_groups)
    ws, wbs, s, lams = ([sp.Symbol(f"{x}{k}", positive=True) for k in range(1, G + 1)]
                        for x in ("w", "wb", "s", "lambda"))
    taus = [sp.Symbol(f"tau{k}", positive=True) if ema else sp.Integer(1) for k in range(1, G + 1)]
    fr = fractions(G)
    laws = {g: Law.gaussian(1), e1: Law.gaussian(sigma2_o), e2: Law.gaussian(sigma2_t)}
    ell, _ = loss_of_overlaps(loss, ws[0], wbs[0], taus[0] * wbs[0], lams[0])
    parts = [loss_of_overlaps(loss, w, wb, tk * wb, lk)[1] for w, wb, tk, lk in zip(ws, wbs, taus, lams)]
    # outer factors of the live overlaps at X = M x (x per feature): the cosine's factor M cancels here
    live = [X for X, x in parts[0].items() if ws[0] in x.free_symbols]
    outer = {X: sp.expand(sp.diff(ell, X).subs({Y: dim * Y for Y in parts[0]}, simultaneous=True)) for X in live}
    if any(dim in e.free_symbols for e in outer.values()):
        raise RuntimeError(f"the {loss} flow depends on the number of features: the overlaps are inconsistent")
    surrogate = sum(sum(outer[X] * expectation(pk[X], laws) for X in live) + eta * w ** 2 / 2
                    for pk, w in zip(parts, ws))
    flow = gradient_flow(surrogate, ws, name="w_flow")
    to_s = {**{wb: sp.sqrt(sk) for wb, sk in zip(wbs, s)}, **{w: sp.sqrt(sk) for w, sk in zip(ws, s)}}
    rel = [sp.factor_terms(sp.expand(r / w).xreplace(to_s)) for r, w in zip(flow.rhs, ws)]
    conc = {X: sp.factor(sum(f * expectation(pk[X], laws).xreplace(to_s) for f, pk in zip(fr, parts)))
            for X in parts[0] if any(X in r.free_symbols for r in rel)}
    return tuple(s), tuple(lams), tuple(taus), tuple(rel), conc


@lru_cache(maxsize=None)
def mode_system(loss: str, predictor: str = "closed_form", n_groups: int = 1, ema: bool = False) -> ODESystem:
    r"""The eigenvalue ODEs of ``n_groups`` groups of modes: states ``s1..sG`` (eigenvalues of
    :math:`WW^\top`) and, with ``ema``, the target ratios ``tau1..tauG``; observables ``lambda1..G``
    (predictor eigenvalues) and ``mean_s`` (:math:`\|W\|_F^2/M`)."""
    check(loss, predictor)
    s, lams, taus, rel, conc = mode_flow(loss, n_groups, ema)
    lam_v = predictor_eigenvalues(predictor, list(s))
    rel = [r.xreplace(conc).xreplace(dict(zip(lams, lam_v))) for r in rel]
    states, rhs = [], []
    for sk, tk, rk in zip(s, taus, rel):
        states.append(sk), rhs.append(2 * sk * rk)
        if ema:
            states.append(tk), rhs.append(beta * (1 - tk) - tk * rk)
    fr = fractions(len(s))
    observed = {**{f"lambda{k}": lv for k, lv in enumerate(lam_v, 1)}, "mean_s": sum(f * sk for f, sk in zip(fr, s))}
    params = [eta, sigma2_o] + ([sigma2_t] if "cosine" in loss else []) \
        + ([alpha] if predictor == "closed_form" else [epsilon]) + ([beta] if ema else []) + fr[:-1]
    prov = (f"per-sample {loss} loss of the overlaps, predictor {predictor} (no gradient through it)",
            "outer factors dl/dX at the concentration values E[X] (exact for Euclidean losses)",
            "Gaussian expectation of the per-mode overlap parts (theorykit.derive.expectation)",
            "gradient flow in the live singular values w_k with weight decay eta (theorykit.derive.gradient_flow)",
            "stopped copies set equal; s = w^2, target a = tau w"
            + ("; EMA tau' = beta(1 - tau) - tau w'/w" if ema else ""))
    return ODESystem(t=t, states=tuple(states), rhs=tuple(rhs), params=tuple(params), observed=observed,
                     provenance=prov, name=f"{loss}_{predictor}_{len(s)}g" + ("_ema" if ema else ""))


@lru_cache(maxsize=None)
def lambda_system(loss: str) -> ODESystem:
    r"""One mode of the closed-form predictor in the predictor eigenvalue :math:`\lambda = s^\alpha`:
    :math:`\dot\lambda = \alpha s^{\alpha-1}\dot s` at :math:`s = \lambda^{1/\alpha}` (SimSiam target)."""
    base = mode_system(loss, "closed_form", 1)
    s1 = base.states[0]
    rhs = sp.factor(sp.simplify((alpha * s1 ** (alpha - 1) * base.rhs[0]).subs(s1, lam ** (1 / alpha))))
    return ODESystem(t=t, states=(lam,), rhs=(rhs,), params=base.params, name=f"{loss}_lambda",
                     provenance=base.provenance + ("lambda = s^alpha, lambda' = alpha s^(alpha-1) s'",))


def transit_time(loss: str) -> sp.Expr:
    r"""Time for one mode to travel from ``lambda0`` to ``lambda1`` under :func:`lambda_system` (no weight
    decay, clean online view, :math:`0 < \lambda_0, \lambda_1 < 1`): :math:`\int_{\lambda_0}^{\lambda_1}
    d\lambda/\dot\lambda`, integrated by SymPy."""
    l0, l1 = sp.symbols("lambda0 lambda1", positive=True)
    rate = lambda_system(loss).rhs[0].subs({eta: 0, sigma2_o: 0})
    antider = sp.integrate(sp.apart(sp.factor(1 / rate), lam), lam)
    # below the fixed point 1: log(lambda - 1) and log(1 - lambda) differ by a constant that cancels
    antider = antider.subs(sp.log(lam - 1), sp.log(1 - lam))
    return sp.simplify(antider.subs(lam, l1) - antider.subs(lam, l0))
