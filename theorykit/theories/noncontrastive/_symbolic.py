r"""Symbolic layer of the non-contrastive theory (SymPy only): losses -> eigenmode ODE systems.

Model (Tian, Chen & Ganguli 2021, §3; Bao 2023, §3-4). Input :math:`x \sim N(0, I_d)`, two views
:math:`x_i = x + \varepsilon_i` with :math:`\varepsilon_i \sim N(0, \sigma^2 I_d)`; online network
:math:`W` (d x d), linear predictor :math:`W_p`, target :math:`W_t` behind a stop-gradient (SimSiam:
:math:`W_t = W`; BYOL: exponential moving average of :math:`W`). Weight decay :math:`\eta`, predictor
learning-rate ratio :math:`\alpha_p`. Two per-sample losses of :math:`u = W_p W x_1`, :math:`v = W_t x_2`:

* Euclidean: :math:`\ell = \tfrac12 \|u - \mathrm{sg}(v)\|^2`;
* cosine with feature normalisation: :math:`\ell = -D\,\langle u, \mathrm{sg}(v)\rangle / (\|u\|\,\|v\|)`
  (``D`` the feature dimension; the factor makes the time scale of the eigenmode dynamics
  independent of ``D``: it is the cosine of RMS-normalised features).

Under the alignment assumption (``W_p`` symmetric, sharing eigenvectors with :math:`F = W W^\top`, and
``W_t`` sharing the singular vectors of ``W``) every eigenmode ``j`` is described by the predictor
eigenvalue ``p_j``, the singular value ``w_j`` of ``W`` (``s_j = w_j^2``, eigenvalue of ``F``) and the
target singular value ``a_j = tau_j w_j``. In that basis the mode-``j`` coordinates of the data are
independent scalars ``z ~ N(0,1)``, ``e1, e2 ~ N(0, sigma2)``, so

.. math:: u_j = p_j w_j (z + e_1), \qquad v_j = a_j (z + e_2).

Everything below is derived, not typed in: the per-sample gradient is differentiated by SymPy, the
feature norms of the cosine loss are replaced by their concentration values *after* differentiation
(Bao 2023, high-dimensional concentration of the feature norms), and the expectation over the Gaussian
data is taken with :func:`theorykit.derive.expectation`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import sympy as sp

from ...derive import Law, ODESystem, expectation

LOSSES = ("euclidean", "cosine")

# ----------------------------------------------------------------------------------------- symbols
t = sp.Symbol("t", real=True)
eta = sp.Symbol("eta", nonnegative=True)
#: separate weight decays of the predictor and of the online network (Tian et al. 2021, §3.3, Table 5)
eta_p, eta_s = sp.symbols("eta_p eta_s", nonnegative=True)
sigma2 = sp.Symbol("sigma2", nonnegative=True)
alpha_p = sp.Symbol("alpha_p", positive=True)
beta = sp.Symbol("beta", positive=True)
dim = sp.Symbol("dim", positive=True)
#: normalised frozen feature norms nu = |.| / sqrt(D) and the other modes' share rho of <u, v> / D
nu_u, nu_v = sp.symbols("nu_u nu_v", positive=True)
rho = sp.Symbol("rho", real=True)

# mode-j random variables and weights
z = sp.Symbol("z", real=True)
e1, e2 = sp.symbols("e1 e2", real=True)
p, w, a = sp.symbols("p w a", real=True)
s, tau = sp.Symbol("s", positive=True), sp.Symbol("tau", positive=True)
#: the macroscopic overlaps of a sample: |u|^2, <u, v>, |v|^2 (sums over all D modes)
A_uu, M_uv, B_vv = sp.symbols("A_uu M_uv B_vv", positive=True)


def check_loss(loss: str) -> str:
    from ...errors import InvalidParameterError

    if loss not in LOSSES:
        raise InvalidParameterError(f"loss must be one of {LOSSES}, got {loss!r}")
    return loss


def loss_of_overlaps(loss: str) -> sp.Expr:
    r"""The per-sample loss as a function of the overlaps :math:`A = |u|^2`, :math:`M = \langle u, v\rangle`,
    :math:`B = |v|^2`: Euclidean :math:`\tfrac12(A - 2M + B)`, cosine :math:`-D\,M/\sqrt{AB}`."""
    check_loss(loss)
    if loss == "euclidean":
        return sp.Rational(1, 2) * (A_uu - 2 * M_uv + B_vv)
    return -dim * M_uv / sp.sqrt(A_uu * B_vv)


def mode_features() -> tuple[sp.Expr, sp.Expr]:
    """``(u_j, v_j)`` of one eigenmode: ``p w (z + e1)`` and ``a (z + e2)``."""
    return p * w * (z + e1), a * (z + e2)


def mode_laws() -> dict:
    """Gaussian laws of the mode's data coordinates: ``z ~ N(0, 1)``, ``e1, e2 ~ N(0, sigma2)``."""
    return {z: Law.gaussian(1), e1: Law.gaussian(sigma2), e2: Law.gaussian(sigma2)}


@lru_cache(maxsize=None)
def expected_mode_gradient(loss: str) -> tuple[sp.Expr, sp.Expr]:
    r"""``(E[d l/d p], E[d l/d w])`` for one eigenmode, the target ``a`` held fixed (stop-gradient).

    Chain rule through the overlaps: :math:`\partial_\theta \ell = \sum_X \partial_X \ell\,\partial_\theta X`
    with :math:`X \in \{A, M\}` (``B`` is behind the stop-gradient). The mode-``j`` parts of
    :math:`\partial_\theta X` are polynomials in the Gaussian variables and are averaged exactly; the
    outer factors :math:`\partial_X \ell` depend on the sums over all modes, which concentrate in high
    dimension (Bao 2023), so they are evaluated at the concentration values — the symbols ``A_uu``,
    ``M_uv``, ``B_vv`` here. For the Euclidean loss the outer factors are constants and the result is exact.
    """
    ell = loss_of_overlaps(loss)
    u, v = mode_features()
    micro = {A_uu: u ** 2, M_uv: u * v}          # mode-j contributions to the overlaps
    out = []
    for theta in (p, w):
        g = sum(sp.diff(ell, X) * expectation(sp.diff(x, theta), mode_laws()) for X, x in micro.items())
        out.append(sp.expand(g))
    return out[0], out[1]


def weight_decays(separate: bool) -> tuple[sp.Symbol, sp.Symbol]:
    """``(eta_p, eta_s)``: the predictor's and the online network's weight decay (both ``eta`` unless
    ``separate``)."""
    return (eta_p, eta_s) if separate else (eta, eta)


@lru_cache(maxsize=None)
def mode_flow(loss: str, separate_decays: bool = False) -> tuple[sp.Expr, sp.Expr, sp.Expr]:
    r"""Drift of one eigenmode in the variables ``(p, s, tau)`` with frozen norms / rest.

    Returns ``(dp/dt, ds/dt, dw/dt / w)``: the gradient flow of the regularised loss
    :math:`\ell + \eta_p p^2/(2\alpha_p) + \eta_s w^2/2` with rate ``alpha_p`` on the predictor
    (:math:`\dot p = -\alpha_p E[\partial_p \ell] - \eta_p p`, :math:`\dot w = -E[\partial_w \ell] - \eta_s w`:
    the weight decay of SGD, not scaled by the predictor's rate), then :math:`s = w^2`, :math:`a = \tau w`.
    ``separate_decays``: two symbols ``eta_p``, ``eta_s``; otherwise both are ``eta``.
    """
    gp, gw = expected_mode_gradient(loss)
    dp, ds = weight_decays(separate_decays)
    pdot = -alpha_p * (gp + sp.diff(dp * p ** 2 / (2 * alpha_p), p))
    wdot = -(gw + sp.diff(ds * w ** 2 / 2, w))
    sub = {a: tau * w}
    pdot = sp.expand(pdot.subs(sub))
    wrel = sp.expand((wdot.subs(sub) / w))
    sdot = sp.expand(2 * w ** 2 * wrel)
    to_s = lambda e: sp.expand(e.subs(w, sp.sqrt(s)))  # noqa: E731  (w > 0)
    return to_s(pdot), to_s(sdot), to_s(wrel)


def concentration_values(loss: str):
    r"""The concentration values used for the cosine loss, derived with :func:`expectation`.

    Returns ``(E[u_j^2], E[v_j^2], E[u_j v_j])`` per mode in ``(p, s, tau)``: summed over modes they give
    :math:`N_u^2 = (1+\sigma^2)\sum_k p_k^2 s_k`, :math:`N_v^2 = (1+\sigma^2)\sum_k \tau_k^2 s_k` and
    :math:`E\langle u, v\rangle = \sum_k \tau_k p_k s_k`.
    """
    u, v = mode_features()
    vals = [expectation(e, mode_laws()) for e in (u ** 2, v ** 2, u * v)]
    return tuple(sp.expand(x.subs(a, tau * w).subs(w, sp.sqrt(s))) for x in vals)


# ------------------------------------------------------------------------------ eigenmode systems
def _mode_syms(k: int):
    return (sp.Symbol(f"p{k}", real=True), sp.Symbol(f"s{k}", positive=True), sp.Symbol(f"tau{k}", positive=True))


def eigenmode_system(loss: str, n_groups: int = 1, *, byol: bool = False, separate_decays: bool = False) -> ODESystem:
    r"""The eigenmode ODE system of ``n_groups`` groups of modes (fraction ``f_k`` of the ``D`` modes each).

    Euclidean modes are uncoupled. For the cosine loss the frozen quantities are replaced by their
    concentration values, so the groups couple through
    :math:`N_u^2 = D(1+\sigma^2)\sum_k f_k p_k^2 s_k`, :math:`N_v^2 = D(1+\sigma^2)\sum_k f_k \tau_k^2 s_k`
    and :math:`r_j = D\sum_k f_k \tau_k p_k s_k - \tau_j p_j s_j`.

    SimSiam (``byol=False``): ``tau = 1``. BYOL (``byol=True``): the target follows
    :math:`\dot W_t = \kappa (W - W_t)`, :math:`\kappa = -\ln\beta` (``beta`` the EMA momentum per unit
    time), so :math:`\dot\tau = \kappa(1 - \tau) - \tau\,\dot w / w`. ``separate_decays``: weight decays
    ``eta_p`` (predictor) and ``eta_s`` (online network) instead of one ``eta``.
    """
    check_loss(loss)
    pdot, sdot, wrel = mode_flow(loss, separate_decays)
    groups = [_mode_syms(k + 1) for k in range(n_groups)]
    fr = [sp.Symbol(f"f{k + 1}", positive=True) for k in range(n_groups)] if n_groups > 1 else [sp.Integer(1)]
    taus = [g[2] if byol else sp.Integer(1) for g in groups]
    states, rhs = [], []
    extra: dict = {}
    if loss == "cosine":
        eu2, ev2, euv = concentration_values(loss)
        nu2 = dim * sum(f * eu2.subs({p: g[0], s: g[1], tau: tt}) for f, g, tt in zip(fr, groups, taus))
        nv2 = dim * sum(f * ev2.subs({p: g[0], s: g[1], tau: tt}) for f, g, tt in zip(fr, groups, taus))
        muv = dim * sum(f * euv.subs({p: g[0], s: g[1], tau: tt}) for f, g, tt in zip(fr, groups, taus))
        extra = {"Nu2": nu2, "Nv2": nv2, "Muv": muv}
    for (pk, sk, tk), tt in zip(groups, taus):
        sub = {p: pk, s: sk, tau: tt}
        if loss == "cosine":
            sub.update({A_uu: extra["Nu2"], B_vv: extra["Nv2"], M_uv: extra["Muv"]})
        fp, fs, fw = (e.xreplace(sub) for e in (pdot, sdot, wrel))
        states += [pk, sk]
        rhs += [fp, fs]
        if byol:
            states.append(tk)
            rhs.append(-sp.log(beta) * (1 - tk) - tk * fw)
    if loss == "cosine":
        # the overlaps are all proportional to D, so D cancels from the flow; set D = 1 after checking
        rhs = [_drop_dim(e) for e in rhs]
        extra = {k: v.subs(dim, 1) for k, v in extra.items()}
    params = [*dict.fromkeys(weight_decays(separate_decays)), sigma2, alpha_p] + ([beta] if byol else []) \
        + ([f for f in fr if isinstance(f, sp.Symbol)] if loss == "cosine" else [])
    observed = {}
    if loss == "euclidean":
        # expected loss per mode, 1/2 E(u_j - v_j)^2 averaged over equally sized groups
        eu2, ev2, euv = concentration_values(loss)
        el = sum(sp.Rational(1, 2) * (eu2 - 2 * euv + ev2).subs({p: g[0], s: g[1], tau: tt}) for g, tt in zip(groups, taus))
        observed["loss"] = el / n_groups
    else:
        observed["loss"] = -extra["Muv"] / sp.sqrt(extra["Nu2"] * extra["Nv2"])
        observed["norm_u"] = sp.sqrt(extra["Nu2"])
    name = f"{loss}_{'byol' if byol else 'simsiam'}_{n_groups}g" + ("_2decays" if separate_decays else "")
    prov = ("per-sample loss " + ("1/2|u - sg(v)|^2 = (A - 2M + B)/2" if loss == "euclidean" else "-D M/sqrt(A B)")
            + " of the overlaps A = |u|^2, M = <u, sg(v)>, B = |sg(v)|^2",
            "SymPy chain rule through the overlaps in mode variables (p, w), target a fixed (stop-gradient)",
            "Gaussian expectation of the mode parts over z ~ N(0,1), e1, e2 ~ N(0, sigma2) (theorykit.derive.expectation)",
            *(("outer factors dl/dA, dl/dM at the concentration values of the overlaps",) if loss == "cosine" else ()),
            ("gradient flow of L + eta_p p^2/(2 alpha_p) + eta_s w^2/2: p' = -alpha_p dL/dp - eta_p p, "
             "w' = -dL/dw - eta_s w" if separate_decays else
             "gradient flow: p' = -alpha_p dL/dp - eta p, w' = -dL/dw - eta w") + "; s = w^2, a = tau w",
            *(("concentration values A, M, B summed over mode groups with fractions f_k of the D modes",) if loss == "cosine" else ()),
            *(("EMA target: tau' = -ln(beta)(1 - tau) - tau w'/w",) if byol else ()))
    return ODESystem(t=t, states=tuple(states), rhs=tuple(rhs), params=tuple(params), observed=observed,
                     provenance=prov, name=name)


def _drop_dim(expr: sp.Expr) -> sp.Expr:
    """``expr`` at ``dim = 1`` after checking numerically (random points) that it does not depend on ``dim``."""
    free = sorted(expr.free_symbols - {dim}, key=lambda x: x.name)
    import random

    rng = random.Random(1)
    for _ in range(3):
        vals = {x: rng.uniform(0.3, 1.5) for x in free}
        v1, v2 = (complex(expr.subs({**vals, dim: d}).evalf()) for d in (1, 37))
        if abs(v1 - v2) > 1e-9 * (1 + abs(v1)):
            raise RuntimeError("the cosine eigenmode flow depends on the dimension: the overlaps are inconsistent")
    return expr.subs(dim, 1)


# --------------------------------------------------------------------------- conserved quantity
@dataclass(frozen=True)
class Reduction:
    """The one-dimensional per-mode dynamics on the invariant manifold ``s = lam * p**2``."""

    loss: str
    lam: sp.Expr                 # s = lam * p^2 on the invariant manifold
    decay: sp.Expr               # d/dt (s - lam p^2) = decay * (s - lam p^2)
    rhs: sp.Expr                 # dp/dt on the manifold (SimSiam, tau = 1)
    poly: sp.Poly                # rhs as a polynomial in p
    degree: int

    def system(self) -> ODESystem:
        """The reduced one-state system ``p' = rhs(p)``."""
        ps = sp.Symbol("p", real=True)
        expr = self.rhs.subs(p, ps)
        params = [eta, sigma2] + [x for x in (alpha_p, dim, nu_u, nu_v, rho) if x in expr.free_symbols]
        return ODESystem(t=t, states=(ps,), rhs=(expr,), params=tuple(params),
                         name=f"{self.loss}_reduced",
                         provenance=(f"eigenmode flow of the {self.loss} loss",
                                     f"conserved quantity C = s - lam p^2 with C' = c C: lam = {self.lam}, c = {self.decay}",
                                     "restricted to the invariant manifold s = lam p^2, tau = 1 (SimSiam)"))


@lru_cache(maxsize=None)
def reduce_mode(loss: str) -> Reduction:
    r"""Find ``lam`` with :math:`\frac{d}{dt}(s - \lambda p^2) = c\,(s - \lambda p^2)` and reduce to 1-D.

    The ansatz is solved by SymPy: the time derivative of :math:`C = s - \lambda p^2` along the mode
    flow minus :math:`c\,C` must vanish identically in ``p`` and ``s`` (for the cosine loss with the
    overlaps held fixed). On the invariant manifold ``C = 0`` (SimSiam, ``tau = 1``) the flow of ``p`` is
    one-dimensional. For the cosine loss the norms are then frozen (:math:`A = D\nu_u^2`,
    :math:`B = D\nu_v^2`, Bao 2023's constant-norm assumption) while the inner product keeps its
    dependence on the mode: all ``D`` modes equal to this one give :math:`M = D(\tau p s + \rho)`,
    ``rho`` the share of other modes (0 for the isotropic case).
    """
    pdot, sdot, _ = mode_flow(loss)
    pdot = pdot.subs(tau, 1)
    sdot = sdot.subs(tau, 1)
    lam, c = sp.symbols("lam c")
    C = s - lam * p ** 2
    dC = sp.expand(sdot - 2 * lam * p * pdot - c * C)
    dC = sp.numer(sp.together(dC))
    coeffs = sp.Poly(dC, p, s).coeffs()
    sol = sp.solve(coeffs, [lam, c], dict=True)
    sol = [x for x in sol if x.get(lam, 0) != 0]
    if not sol:
        raise RuntimeError(f"no conserved quantity of the form s - lam p^2 for loss {loss!r}")
    lam_v, c_v = sp.simplify(sol[0][lam]), sp.simplify(sol[0][c])
    red = pdot
    if loss == "cosine":
        red = red.subs({A_uu: dim * nu_u ** 2, B_vv: dim * nu_v ** 2, M_uv: dim * (p * s + rho)})
    red = sp.expand(red.subs(s, lam_v * p ** 2))
    poly = sp.Poly(red, p)
    return Reduction(loss, lam_v, c_v, red, poly, int(poly.degree()))


def euclidean_roots() -> tuple[sp.Expr, sp.Expr]:
    """``(p_minus, p_plus)``: the non-zero fixed points of the reduced Euclidean flow, solved by SymPy from
    the derived cubic (ordered at a sample point where both are real)."""
    red = reduce_mode("euclidean")
    roots = sp.solve(sp.cancel(red.rhs / p), p)
    if len(roots) != 2:
        raise RuntimeError(f"expected two non-zero roots of the reduced Euclidean flow, got {roots}")
    at = {eta: sp.Rational(1, 20), sigma2: sp.Rational(1, 2)}
    lo, hi = sorted(roots, key=lambda r: float(r.subs(at)))
    return sp.simplify(lo), sp.simplify(hi)


def euclidean_critical() -> sp.Expr:
    """The weight decay at which the two non-zero Euclidean roots merge: the zero of the discriminant of
    the derived quadratic factor, solved for ``eta`` by SymPy."""
    red = reduce_mode("euclidean")
    quad = sp.Poly(sp.cancel(red.rhs / p), p)
    sol = sp.solve(sp.discriminant(quad.as_expr(), p), eta)
    if len(sol) != 1:
        raise RuntimeError(f"expected one critical weight decay, got {sol}")
    return sp.simplify(sol[0])


def cosine_fold() -> tuple[sp.Expr, sp.Expr]:
    r"""For the isolated reduced cosine mode (:math:`\rho = 0`): the fold ``(p_m, eta_fold)``.

    Non-zero equilibria solve :math:`g(p) = \eta` with :math:`g = \dot p / p + \eta`; the largest
    :math:`\eta` with a solution is :math:`g(p_m)`, :math:`g'(p_m) = 0`, solved here by SymPy.
    """
    red = reduce_mode("cosine")
    g = sp.expand(sp.cancel(red.rhs.subs(rho, 0) / p) + eta)
    crit = [r for r in sp.solve(sp.diff(g, p), p) if r.is_positive is not False]
    pm = sp.simplify(crit[0]) if len(crit) == 1 else sp.simplify([r for r in crit if r.is_real][0])
    return pm, sp.simplify(g.subs(p, pm))


__all__ = ["LOSSES", "loss_of_overlaps", "mode_features", "mode_laws", "expected_mode_gradient", "mode_flow", "concentration_values",
           "eigenmode_system", "Reduction", "reduce_mode", "euclidean_roots", "euclidean_critical", "cosine_fold", "cosine_shape_system",
           "weight_decays", "balance_drift", "cosine_self_consistent_drift"]


@lru_cache(maxsize=None)
def cosine_shape_system() -> ODESystem:
    r"""The normalised shape of two mode groups under the cosine loss, in rescaled time.

    The cosine flow is scale invariant: :math:`\sum_k f_k p_k \dot p_k = -\eta \sum_k f_k p_k^2` (checked
    here), so with :math:`r^2 = \sum_k f_k p_k^2`, :math:`x_k = p_k / r`, :math:`s_k = p_k^2/\alpha_p`
    (invariant manifold) and :math:`d\tau = dt / r^2`, the gradient part is homogeneous and the weight
    decay only rescales time: :math:`dx_1/d\tau` is the :math:`\eta = 0` flow on the unit "sphere"
    :math:`f_1 x_1^2 + f_2 x_2^2 = 1`. One state ``x`` (= :math:`x_1`); ``x = 1`` is the equal-shape state,
    ``x = 0`` and ``x = 1/\sqrt{f_1}`` the states where one group has collapsed.
    """
    sys2 = eigenmode_system("cosine", 2)
    p1, s1, p2, s2 = sys2.states
    f1, f2 = sys2.symbol("f1"), sys2.symbol("f2")
    # scale invariance of the derived flow (exact identity, checked symbolically)
    rad = sp.simplify(sp.expand(f1 * p1 * sys2.rhs[0] + f2 * p2 * sys2.rhs[2] + eta * (f1 * p1 ** 2 + f2 * p2 ** 2)))
    if rad != 0:
        raise RuntimeError(f"cosine flow is not scale invariant: residual {rad}")
    x = sp.Symbol("x", positive=True)
    on = {eta: 0, s1: p1 ** 2 / alpha_p, s2: p2 ** 2 / alpha_p}
    g = sys2.rhs[0].subs(on)
    g = g.subs({p2: sp.sqrt((1 - f1 * x ** 2) / (1 - f1)), f2: 1 - f1}).subs(p1, x)
    g = sp.factor(sp.simplify(g))
    return ODESystem(t=t, states=(x,), rhs=(g,), params=(sigma2, alpha_p, f1), name="cosine_shape",
                     provenance=(*sys2.provenance, "scale invariance sum f p p' = -eta sum f p^2 (checked)",
                                 "normalised shape x = p1/r on s = p^2/alpha_p, time dtau = dt/r^2 (eta drops out)"))


def balance_drift(loss: str) -> sp.Expr:
    r"""The drift of the balance :math:`D = s - p^2/\alpha_p` along the mode flow with separate weight decays,
    expressed in ``D`` (symbol ``D``) and ``p``: SymPy finds
    :math:`\dot D = -2\eta_s D + 2(\eta_p - \eta_s)p^2/\alpha_p` for both losses (the gradient parts cancel,
    :math:`p\,\partial_p\ell = w\,\partial_w\ell`). With :math:`\eta_p = \eta_s` it is Tian et al.'s Eq. 14;
    with :math:`\eta_p > \eta_s` it lifts every mode above the invariant parabola."""
    pdot, sdot, _ = mode_flow(loss, True)
    D = sp.Symbol("D", real=True)
    drift = sp.expand(sdot - 2 * p * pdot / alpha_p)
    return sp.expand(sp.simplify(drift.subs(s, D + p ** 2 / alpha_p)))


def cosine_self_consistent_drift() -> tuple[sp.Expr, sp.Expr]:
    r"""``(p' + eta p, s' + 2 eta s)`` of the cosine loss when one group of modes carries the whole spectrum
    and the feature norms take their self-consistent (concentration) values, simplified by SymPy: both
    vanish identically, so the drift is the weight decay alone and every scale is neutral — no fold, unlike
    the frozen-norm reduction (:func:`reduce_mode`, Bao 2023's constant-norm approximation)."""
    one = eigenmode_system("cosine", 1)
    p1, s1 = one.states

    def simplified(e):  # factor under the roots first: sqrt((1 + sigma2)^2) = 1 + sigma2
        e = sp.simplify(e)
        return sp.simplify(e.replace(lambda x: x.is_Pow and x.exp == sp.S.Half, lambda x: sp.sqrt(sp.factor(x.base))))

    return simplified(one.rhs[0] + eta * p1), simplified(one.rhs[1] + 2 * eta * s1)
