r"""SymPy derivation of the high-dimensional contrastive model: loss derivatives, the per-coordinate SDE,
the closed order-parameter ODEs, and their expansion around the uninformative state. All of it is our
reconstruction of Meng & Wang's model (arXiv 2406.06909), whose equations are not known here: only the
paper's abstract, with its qualitative claims, could be read.

Notation (see ``derivations/contrastive_highdim.md``): pre-activations of the two views
:math:`z_a = h + v_a` with the shared signal :math:`h = q^\top c` and the Gaussian noise parts
:math:`v \sim N(0, Q\,C)`, :math:`C = [[s^2, \kappa], [\kappa, s^2]]`, :math:`s^2 = \eta + \sigma^2`,
:math:`\kappa = \eta + \rho\sigma^2`. The pair loss is :math:`\ell = -f(z_1) f(z_2)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import sympy as sp

from ..._checks import check_range
from ...derive import Law, ODESystem, expectation, moment_symbol
from ...errors import InvalidParameterError

ACTIVATIONS = ("tanh", "linear")

z1, z2 = sp.symbols("z_1 z_2", real=True)
t_sym = sp.Symbol("t", real=True)
tau, lam, sigma, rho, eta, beta = sp.symbols("tau lambda sigma rho eta beta", real=True)
Q = sp.Symbol("Q", positive=True)
s2 = eta + sigma**2
kap = eta + rho * sigma**2
#: the noise covariance of (v_1, v_2) in units of Q
C = sp.Matrix([[s2, kap], [kap, s2]])


@dataclass(frozen=True)
class Hyper:
    """Training and augmentation hyper-parameters (validated), the numbers behind the symbols above.

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


def activation(name: str) -> sp.Lambda:
    """The odd activation ``f`` as a SymPy ``Lambda``."""
    x = sp.Symbol("x", real=True)
    if name == "tanh":
        return sp.Lambda(x, sp.tanh(x))
    if name == "linear":
        return sp.Lambda(x, x)
    raise InvalidParameterError(f"activation must be one of {ACTIVATIONS}, got {name!r}")


def pair_loss(act: str) -> sp.Expr:
    r"""Per-sample positive-pair loss :math:`\ell(z_1, z_2) = -f(z_1)\,f(z_2)`."""
    f = activation(act)
    return -f(z1) * f(z2)


@lru_cache(maxsize=None)
def loss_derivatives(act: str) -> dict[str, sp.Expr]:
    r"""``{"d1": ∂_1ℓ, "d2": ∂_2ℓ, "l11": ∂_1²ℓ, "l12": ∂_1∂_2ℓ, "l22": ∂_2²ℓ}`` in :math:`z_1, z_2`."""
    ell = pair_loss(act)
    zs = (z1, z2)
    out = {f"d{a + 1}": sp.simplify(sp.diff(ell, zs[a])) for a in range(2)}
    for a in range(2):
        for b in range(a, 2):
            out[f"l{a + 1}{b + 1}"] = sp.simplify(sp.diff(ell, zs[a], zs[b]))
    return out


def integrand_system(act: str) -> ODESystem:
    """The loss derivatives as observables of a trivial system in ``(z_1, z_2)``, for ``compile_system``.

    The compiled ``observed_into(t, [z_1, z_2], [], out[7])`` (``∂1ℓ, ∂2ℓ, ℓ11, ℓ12, ℓ22, f(z_1),
    f'(z_1)``) is what the quadrature kernels evaluate at every Gauss node, so the numerics use exactly
    the derivatives derived here (the last two feed the negative-pair term, :func:`negative_term`).
    """
    f = activation(act)
    single = {"f1": f(z1), "fp1": sp.diff(f(z1), z1)}
    return ODESystem(t=t_sym, states=(z1, z2), rhs=(sp.Integer(0), sp.Integer(0)), params=(),
                     observed=loss_derivatives(act) | single, name=f"contrastive_pair_{act}_integrand",
                     provenance=(f"derivatives of the pair loss -f(z1) f(z2), f = {act}",))


def negative_term() -> dict[str, sp.Expr]:
    r"""Contributions of an optional negative pair :math:`+\beta f(z_1) f(z_3)` to :math:`A`, :math:`B`, :math:`D`.

    :math:`z_3` is a view of an independent sample, so its noise is independent of :math:`(v_1, v_2)`
    (:math:`C_{13} = C_{23} = 0`, :math:`C_{33} = s^2`) and every average factorises into one over the
    positive pair and one over sample 3. With :math:`F_a = f(z_a)`, :math:`F'_a`, :math:`F''_a` as symbols,
    each monomial is split into its sample-3 factor, whose average vanishes when it is odd in :math:`z_3`
    (odd :math:`f`, symmetric law). Returns ``{"A", "B", "D"}``: the extra terms, with the remaining
    averages as symbols ``E[...]``; ``D`` is :math:`\beta^2 s^2 (E[F_1'^2] E[F_3^2] + E[F_1^2] E[F_3'^2])`.
    """
    F = {a: sp.symbols(f"F_{a} Fp_{a} Fpp_{a}", real=True) for a in (1, 2, 3)}
    zs = sp.symbols("zeta_1:4", real=True)
    fz = sp.Function("f")
    loss = -fz(zs[0]) * fz(zs[1]) + beta * fz(zs[0]) * fz(zs[2])
    base = -fz(zs[0]) * fz(zs[1])

    def to_F(e):
        e = e.doit()
        rep = {}
        for a, z in enumerate(zs, 1):
            rep[sp.Derivative(fz(z), (z, 2))] = F[a][2]
            rep[sp.Derivative(fz(z), z)] = F[a][1]
        e = e.subs(rep)
        return e.subs({fz(z): F[a][0] for a, z in enumerate(zs, 1)})

    Cfull = sp.Matrix([[s2, kap, 0], [kap, s2, 0], [0, 0, s2]])
    c1, c3 = sp.symbols("c_1 cprime_1", real=True)

    def average(e):
        """E over (pair, sample 3) of a polynomial in the F symbols and c's, factorised by sample."""
        e = sp.expand(e)
        out = sp.Integer(0)
        for term in sp.Add.make_args(e):
            coeff, pair, third = sp.Integer(1), sp.Integer(1), sp.Integer(1)
            for fac in sp.Mul.make_args(term):
                b, k = fac.as_base_exp()
                if b in F[3] or b == c3:
                    third *= fac
                elif b in F[1] or b in F[2] or b == c1:
                    pair *= fac
                else:
                    coeff *= fac
            # parity in z_3 (with c'): F and F'' and c' are odd, F' is even
            deg = sp.Poly(third, *F[3], c3).monoms()[0] if third != 1 else (0, 0, 0, 0)
            if (deg[0] + deg[2] + deg[3]) % 2:
                continue
            out += (coeff * (sp.Symbol(f"E[{pair}]") if pair != 1 else 1)
                    * (sp.Symbol(f"E[{third}]") if third != 1 else 1))
        return out

    res = {}
    for name, ell in (("full", loss), ("base", base)):
        d = [to_F(sp.diff(ell, z)) for z in zs]
        H = [[to_F(sp.diff(ell, za, zb)) for zb in zs] for za in zs]
        res[name] = {
            "A": average((d[0] + d[1]) * c1 + d[2] * c3),
            "B": average(sum(Cfull[a, b] * H[a][b] for a in range(3) for b in range(3))),
            "D": average(sum(Cfull[a, b] * d[a] * d[b] for a in range(3) for b in range(3))),
        }
    return {k: sp.simplify(res["full"][k] - res["base"][k]) for k in ("A", "B", "D")}


# ------------------------------------------------------------------------------------------- the SDE
def stein_check() -> bool:
    r"""Verify Stein's lemma in the form used for the noise projections, on a polynomial test function:
    for jointly Gaussian ``(u, v_1, v_2)`` with ``Cov(u, v_b) = q C_{ab}``,
    :math:`E[u\,g(v)] = \sum_b \mathrm{Cov}(u, v_b) E[\partial_b g(v)]`.

    The Gaussians are written through independent standard normals and averaged by moment substitution;
    returns True if both sides agree identically.
    """
    g0, g1, g2 = sp.symbols("g_0 g_1 g_2", real=True)
    qq = sp.Symbol("q", real=True)
    a_ = sp.sqrt((s2 + kap) / 2)
    b_ = sp.sqrt((s2 - kap) / 2)
    v1 = sp.sqrt(Q) * (a_ * g0 + b_ * g1)
    v2 = sp.sqrt(Q) * (a_ * g0 - b_ * g1)
    # u = xi^T (noise of view 1): covariance q*C_1b with v_b and its own remainder g2
    resid = sp.Symbol("r", positive=True)
    u = qq / sp.sqrt(Q) * (a_ * g0 + b_ * g1) + resid * g2
    y1, y2 = sp.symbols("y_1 y_2", real=True)
    g = y1**3 * y2 + 2 * y1 * y2**2 + y2**3
    laws = {g0: Law.gaussian(1), g1: Law.gaussian(1), g2: Law.gaussian(1)}
    lhs = expectation((u * g).subs({y1: v1, y2: v2}), laws)
    rhs = sum(qq * C[0, b] * expectation(sp.diff(g, (y1, y2)[b]).subs({y1: v1, y2: v2}), laws) for b in range(2))
    return sp.simplify(sp.expand(lhs - rhs)) == 0


def coordinate_sde(regularizer: str = "L2") -> dict[str, sp.Expr]:
    r"""Drift and diffusion of one rescaled weight coordinate :math:`\theta = \sqrt n\, w_j`.

    .. math:: d\theta = -\tau\,(\bar\xi\cdot A + \theta B + \Gamma'(\theta))\,dt + \tau\sqrt{D}\,dW

    with :math:`A_i = E[(\partial_1\ell + \partial_2\ell)\,c_i]`, :math:`B = \sum_{ab} C_{ab} E[\ell_{ab}]`
    (Stein's lemma on the noise projections) and :math:`D = \sum_{ab} C_{ab} E[\partial_a\ell\,\partial_b\ell]`.
    ``regularizer`` is ``"L2"`` (:math:`\Gamma' = \lambda\theta`) or ``"L1"`` (:math:`\lambda\,\mathrm{sign}\,\theta`).
    Returns ``{"drift", "diffusion"}`` in terms of the function symbols ``A_i``, ``B``, ``D``.
    """
    theta = sp.Symbol("theta", real=True)
    xi1, xi2 = sp.symbols("xibar_1 xibar_2", real=True)
    A1, A2, B, D = sp.symbols("A_1 A_2 B D", real=True)
    if regularizer == "L2":
        reg = lam * theta
    elif regularizer == "L1":
        reg = lam * sp.sign(theta)
    else:
        raise InvalidParameterError(f"regularizer must be 'L2' or 'L1', got {regularizer!r}")
    return {"drift": -tau * (xi1 * A1 + xi2 * A2 + theta * B + reg), "diffusion": tau**2 * D,
            "theta": theta}


def state_symbols(d: int, K: int = 1) -> tuple[sp.Symbol, ...]:
    """States ``q_1..q_d, Q`` (one neuron) or ``q_{i}_{k}, Q_{k}`` per neuron, neuron-major."""
    if K == 1:
        return (*sp.symbols(f"q_1:{d + 1}", real=True), Q)
    out: list[sp.Symbol] = []
    for k in range(1, K + 1):
        out += [sp.Symbol(f"q_{i}_{k}", real=True) for i in range(1, d + 1)] + [sp.Symbol(f"Q_{k}", positive=True)]
    return tuple(out)


def closed_ode_abstract(d: int = 2, K: int = 1, extra_params: tuple[sp.Symbol, ...] = ()) -> ODESystem:
    r"""The closed ODEs under L2 with the expectations kept as functions :math:`A_i(q, Q)`, :math:`B(q, Q)`,
    :math:`D(q, Q)` of each neuron's order parameters; obtained by taking the moments
    :math:`\int \bar\xi_i\theta\,dP` and :math:`\int\theta^2 dP` of the McKean–Vlasov PDE
    (:math:`E[\bar\xi_i\bar\xi_l] = \delta_{il}`). With the pair loss summed over ``K`` neurons the
    neurons decouple: each follows the same equations. ``extra_params`` are appended to the parameters
    (the quadrature rule of the law, which the numeric realisation reads)."""
    states = state_symbols(d, K)
    rhs: list[sp.Expr] = []
    observed: dict[str, sp.Expr] = {}
    for k in range(K):
        qs = states[k * (d + 1):k * (d + 1) + d]
        Qk = states[k * (d + 1) + d]
        args = (*qs, Qk)
        A = [sp.Function(f"A_{i + 1}")(*args) for i in range(d)]
        B = sp.Function("B")(*args)
        D = sp.Function("D")(*args)
        rhs += [-tau * (A[i] + (B + lam) * qs[i]) for i in range(d)]
        rhs.append(-2 * tau * (sum(q * a for q, a in zip(qs, A)) + Qk * B + lam * Qk) + tau**2 * D)
        observed |= {("m_" + q.name[2:]): q / sp.sqrt(Qk) for q in qs}
    return ODESystem(t=t_sym, states=states, rhs=tuple(rhs), params=(beta, eta, lam, rho, sigma, tau, *extra_params),
                     observed=observed, name=f"contrastive_highdim_d{d}_K{K}",
                     provenance=("online SGD w <- w - (tau/n)(grad l + lambda w), t = k/n",
                                 "per-coordinate SDE of theta = sqrt(n) w_j (Stein's lemma on the noise projections)",
                                 "moments int xi_i theta dP and int theta^2 dP of the McKean-Vlasov PDE"))


# ------------------------------------------------------------------- expansion at the uninformative state
def small_q_expansion(d: int = 2, order: int = 3) -> dict[str, object]:
    r"""The ODEs expanded in the overlaps :math:`q` around the uninformative state, with the law of
    :math:`c` entering only through the moment symbols :math:`\langle c^k\rangle`.

    Writing :math:`z_a = h + v_a`, each Gaussian average is a Taylor series in :math:`h`:
    :math:`E_v[F(h + v_1, h + v_2)] = \sum_k \frac{h^k}{k!} E_v[(\partial_1 + \partial_2)^k F]`.
    The Gaussian coefficients are kept as symbols (``G_k`` for :math:`\partial_1\ell + \partial_2\ell`,
    ``B_k`` and ``D_k`` for the integrands of :math:`B` and :math:`D`); odd activation and symmetric noise
    make the coefficients of the wrong parity vanish. The average over :math:`c` (i.i.d. coordinates,
    symmetric law) is then taken with :func:`theorykit.derive.expectation` on ``Law.symbolic("c")``.

    Returns
    -------
    dict
        ``system`` (ODESystem in ``q_1..q_d, Q`` with the Gaussian coefficients and moments as
        parameters), ``jacobian_origin`` (its Jacobian at ``q = 0``), ``growth_rate`` (the cosine growth
        rate :math:`\frac{d}{dt}\log m_i` at :math:`q \to 0`), ``A`` (the expanded :math:`A_i`), ``moments``.
    """
    qs = sp.symbols(f"q_1:{d + 1}", real=True)
    cs = sp.symbols(f"c_1:{d + 1}", real=True)
    law = Law.symbolic("c")
    laws = {c: law for c in cs}
    h = sum(q * c for q, c in zip(qs, cs))
    G = {k: sp.Symbol(f"G_{k}", real=True) for k in range(1, order + 1, 2)}
    Bk = {k: sp.Symbol(f"B_{k}", real=True) for k in range(0, order + 1, 2)}
    Dk = {k: sp.Symbol(f"D_{k}", real=True) for k in range(0, order + 1, 2)}
    A = [sp.expand(expectation(sum(G[k] * h**k / sp.factorial(k) for k in G) * cs[i], laws)) for i in range(d)]
    B = sp.expand(expectation(sum(Bk[k] * h**k / sp.factorial(k) for k in Bk), laws))
    D = sp.expand(expectation(sum(Dk[k] * h**k / sp.factorial(k) for k in Dk), laws))
    rhs = [sp.expand(-tau * (A[i] + (B + lam) * qs[i])) for i in range(d)]
    rhs.append(sp.expand(-2 * tau * (sum(q * a for q, a in zip(qs, A)) + Q * B + lam * Q) + tau**2 * D))
    system = ODESystem(t=t_sym, states=(*qs, Q), rhs=tuple(rhs), params="infer",
                       observed={f"m_{i + 1}": qs[i] / sp.sqrt(Q) for i in range(d)},
                       name=f"contrastive_small_q_d{d}",
                       provenance=(f"Taylor expansion in h = q.c to order {order}",
                                   "average over c by moment substitution (symmetric law, i.i.d. coordinates)"))
    J = system.jacobian().subs({q: 0 for q in qs})
    # cosine growth: d log m_i/dt = qdot_i/q_i - Qdot/(2Q) at q -> 0
    at_origin = {q: 0 for q in qs}
    growth = sp.simplify(sp.limit(rhs[0] / qs[0], qs[0], 0).subs(at_origin) - rhs[d].subs(at_origin) / (2 * Q))
    return {"system": system, "jacobian_origin": J, "growth_rate": sp.expand(growth), "A": A,
            "moments": tuple(moment_symbol("c", k) for k in range(2, order + 2, 2))}


def cubic_anisotropy(d: int = 2) -> sp.Expr:
    r"""The part of :math:`A_1` at third order that is not a function of :math:`\|q\|^2` times :math:`q_1`:
    :math:`\frac{G_3}{6}(\langle c^4\rangle - 3\langle c^2\rangle^2)\,q_1^3` (the only law-dependent
    term that distinguishes features from mixtures)."""
    res = small_q_expansion(d, 3)
    qs = sp.symbols(f"q_1:{d + 1}", real=True)
    A1 = res["A"][0]
    m2 = moment_symbol("c", 2)
    G1, G3 = sp.Symbol("G_1", real=True), sp.Symbol("G_3", real=True)
    r2 = sum(q**2 for q in qs)
    isotropic = G1 * m2 * qs[0] + G3 / 2 * m2**2 * qs[0] * r2
    return sp.factor(sp.expand(A1 - isotropic))


def linear_system(d: int = 2) -> ODESystem:
    r"""The exact closed ODEs for the linear activation :math:`f(z) = z` (Gaussian averages by moment
    substitution, the law of :math:`c` through :math:`\langle c^2\rangle`)."""
    qs = sp.symbols(f"q_1:{d + 1}", real=True)
    cs = sp.symbols(f"c_1:{d + 1}", real=True)
    g0, g1 = sp.symbols("g_0 g_1", real=True)
    laws = {c: Law.symbolic("c") for c in cs} | {g0: Law.gaussian(1), g1: Law.gaussian(1)}
    a_ = sp.sqrt((s2 + kap) / 2)
    b_ = sp.sqrt((s2 - kap) / 2)
    h = sum(q * c for q, c in zip(qs, cs))
    zz = {z1: h + sp.sqrt(Q) * (a_ * g0 + b_ * g1), z2: h + sp.sqrt(Q) * (a_ * g0 - b_ * g1)}
    der = loss_derivatives("linear")
    d1, d2 = der["d1"].subs(zz), der["d2"].subs(zz)
    A = [expectation((d1 + d2) * cs[i], laws) for i in range(d)]
    B = sp.expand(sum(C[a, b] * expectation(der[f"l{min(a, b) + 1}{max(a, b) + 1}"].subs(zz), laws)
                      for a in range(2) for b in range(2)))
    D = sp.expand(C[0, 0] * expectation(d1**2, laws) + C[1, 1] * expectation(d2**2, laws)
                  + 2 * C[0, 1] * expectation(d1 * d2, laws))
    # negative pair (negative_term): beta^2 s^2 (E[f'(z)^2] E[f(z)^2] + E[f(z)^2] E[f'(z)^2]) for one view z
    f = activation("linear")
    zz1 = zz[z1]
    Ef2 = expectation(f(zz1) ** 2, laws)
    Efp2 = expectation(sp.diff(f(z1), z1).subs(z1, zz1) ** 2, laws)
    D = sp.expand(D + 2 * beta**2 * s2 * Ef2 * Efp2)
    rhs = [sp.expand(-tau * (A[i] + (B + lam) * qs[i])) for i in range(d)]
    rhs.append(sp.expand(-2 * tau * (sum(q * a for q, a in zip(qs, A)) + Q * B + lam * Q) + tau**2 * D))
    return ODESystem(t=t_sym, states=(*qs, Q), rhs=tuple(rhs), params="infer",
                     observed={f"m_{i + 1}": qs[i] / sp.sqrt(Q) for i in range(d)} | {"D": D},
                     name=f"contrastive_linear_d{d}",
                     provenance=("closed ODEs of the pair loss with f(z) = z",
                                 "Gaussian averages and the average over c by moment substitution"))


__all__ = ["ACTIVATIONS", "Hyper", "activation", "pair_loss", "loss_derivatives", "integrand_system", "stein_check",
           "coordinate_sde", "negative_term", "state_symbols", "closed_ode_abstract", "small_q_expansion",
           "cubic_anisotropy", "linear_system"]
