r"""Symbolic layer of the Barlow Twins NTK theory (SymPy only).

Everything numeric in this theory starts here:

* the two-layer network :math:`f(x) = M^{-1/2} V \sigma(Wx)` and the Barlow Twins loss
  :math:`L = \sum_k (1 - C_{kk})^2 + \lambda \sum_{k \ne l} C_{kl}^2`,
  :math:`C = \frac1N \sum_i f(x_i) f(x_i^+)^\top`;
* the loss gradient :math:`\partial L / \partial C`, the per-neuron NTK contribution for a generic
  activation and its infinite-width average;
* gradient-flow systems (:class:`theorykit.derive.ODESystem`) for small instances of the network and of
  the linearised (kernel) model in function space;
* the scalar expressions the numba kernels call (:func:`kernel_functions`, printed into ``_generated.py``
  by the compile stage).
"""

from __future__ import annotations

import sympy as sp

from ...derive import ODESystem, gradient_flow
from ...errors import InvalidParameterError

#: activations with a symbolic form; the integer is the code the numba kernels dispatch on
ACTIVATIONS: dict[str, int] = {"tanh": 0, "relu": 1}

u = sp.Symbol("u", real=True)
lam = sp.Symbol("lambda", positive=True)


def activation_expr(name: str, arg: sp.Expr = u) -> sp.Expr:
    """The activation :math:`\\sigma(arg)` as a SymPy expression (``"tanh"`` or ``"relu"``)."""
    if name == "tanh":
        return sp.tanh(arg)
    if name == "relu":
        return sp.Piecewise((arg, arg > 0), (sp.Float(0.0), True))
    raise InvalidParameterError(f"activation must be one of {sorted(ACTIVATIONS)}, got {name!r}")


def activation_derivative(name: str, arg: sp.Expr = u) -> sp.Expr:
    """:math:`\\sigma'(arg)`, derived by SymPy (the weak derivative, a step, for ReLU)."""
    d = sp.diff(activation_expr(name, u), u)
    if name == "relu":
        # SymPy differentiates each Piecewise branch; keep the value 0 at the kink as a float
        d = sp.Piecewise((sp.Float(1.0), u > 0), (sp.Float(0.0), True))
        assert sp.simplify(sp.diff(activation_expr(name, u), u).subs(u, 2) - d.subs(u, 2)) == 0
    return d.subs(u, arg)


def activation_derivative_of_value(name: str, a: sp.Symbol) -> sp.Expr:
    r""":math:`\sigma'(u)` written in terms of the activation's value ``a`` = :math:`\sigma(u)`, so that
    backpropagation needs only the stored activations: ``1 - a**2`` for tanh, the step ``[a > 0]`` for ReLU.

    Derived by replacing :math:`\sigma(u)` by ``a`` in :func:`activation_derivative` (for ReLU, whose derivative
    depends on the sign of ``u`` only, ``u`` by ``a``: ``u > 0`` exactly when ``relu(u) > 0``), and checked at
    sample points of both signs.
    """
    d = activation_derivative(name)
    by_value = d.subs(activation_expr(name), a)
    if u in by_value.free_symbols:
        by_value = d.subs(u, a)
    for u0 in (-1.5, -0.25, 0.25, 1.5):
        value = activation_expr(name).subs(u, u0)
        assert abs(float(by_value.subs(a, value)) - float(d.subs(u, u0))) < 1e-14, (name, u0)
    return by_value


# ---------------------------------------------------------------------------------------------- loss
def cross_correlation_symbols(K: int) -> sp.Matrix:
    """A K x K matrix of real symbols ``C_kl``."""
    return sp.Matrix(K, K, lambda k, l: sp.Symbol(f"C_{k}{l}", real=True))


def barlow_loss_of_C(C: sp.Matrix, lam_: sp.Expr = lam) -> sp.Expr:
    r"""Barlow Twins loss :math:`\sum_k (1-C_{kk})^2 + \lambda\sum_{k\neq l} C_{kl}^2` of a matrix ``C``."""
    K = C.shape[0]
    return sum(((1 - C[k, k]) ** 2 if k == l else lam_ * C[k, l] ** 2)
               for k in range(K) for l in range(K))


def loss_entry_exprs() -> dict[str, sp.Expr]:
    """Per-entry loss and its derivative, derived from :func:`barlow_loss_of_C` with K = 2.

    Returns ``{"diag": (1-c)^2, "offdiag": lambda c^2, "ddiag": dL/dC_kk, "doffdiag": dL/dC_kl}`` as
    expressions of the symbol ``c`` (and ``lambda``).
    """
    C = cross_correlation_symbols(2)
    L = barlow_loss_of_C(C)
    c = sp.Symbol("c", real=True)
    ddiag = sp.diff(L, C[0, 0]).subs(C[0, 0], c)
    doff = sp.diff(L, C[0, 1]).subs(C[0, 1], c)
    diag = sp.expand(L.subs({C[1, 1]: 1, C[0, 1]: 0, C[1, 0]: 0}).subs(C[0, 0], c))
    off = sp.expand(L.subs({C[0, 0]: 1, C[1, 1]: 1, C[1, 0]: 0}).subs(C[0, 1], c))
    return {"diag": diag, "offdiag": off, "ddiag": sp.expand(ddiag), "doffdiag": sp.expand(doff), "c": c}


# ---------------------------------------------------------------------------------------------- NTK
def ntk_neuron_expr() -> tuple[sp.Expr, dict[str, sp.Symbol]]:
    r"""NTK contribution of one hidden neuron, derived by the chain rule for a generic activation.

    One neuron contributes :math:`v_k \sigma(u)` to output k, where :math:`u = w\cdot x`. Its parameters are
    :math:`v_1..v_K` and :math:`w`; since :math:`\partial u/\partial w = x`, the w-part of
    :math:`\langle\partial_\theta f_k(x), \partial_\theta f_l(x')\rangle` is
    :math:`(x\cdot x')\,\partial_u f_k\,\partial_{u'} f_l`. Summing over neurons and dividing by M gives
    the empirical NTK. Returns the expression in ``s = σ(u), s' = σ(u'), ds = σ'(u), ds' = σ'(u')``,
    ``v_k, v_l``, ``xx = x·x'`` and ``delta = [k == l]``, and the dict of these symbols.
    """
    sig = sp.Function("sigma")
    up, xx = sp.symbols("u' xx", real=True)
    vk, vl = sp.symbols("v_k v_l", real=True)
    # outputs k and l of the same neuron; when k == l they share the weight (v_l -> v_k)
    fk = vk * sig(u)
    out = {}
    for same in (True, False):
        fl = (vk if same else vl) * sig(up)
        params_v = [vk] if same else [vk, vl]
        # d f_l/d v_k with k != l vanishes, so only shared output weights contribute
        val = sum(sp.diff(fk, p) * sp.diff(fl, p) for p in params_v) + xx * sp.diff(fk, u) * sp.diff(fl, up)
        out[same] = val
    s, sp_, ds, dsp = sp.symbols("s s' ds ds'", real=True)
    delta = sp.Symbol("delta", nonnegative=True)
    rep = {sig(u): s, sig(up): sp_, sp.Derivative(sig(u), u): ds, sp.Derivative(sig(up), up): dsp}
    same = out[True].subs(rep)
    diff = out[False].subs(rep)
    # one expression for both cases: delta * (shared v-part) + xx v_k v_l ds ds'
    expr = sp.expand(delta * s * sp_ + diff)
    assert sp.simplify(expr.subs({delta: 1, vl: vk}) - same) == 0
    assert sp.simplify(expr.subs({delta: 0}) - diff) == 0
    return expr, {"s": s, "sp": sp_, "ds": ds, "dsp": dsp, "vk": vk, "vl": vl, "xx": xx, "delta": delta}


def ntk_infinite_width_expr() -> sp.Expr:
    r"""Infinite-width NTK :math:`\delta_{kl}[\Sigma + (x\cdot x')\dot\Sigma]` from the per-neuron form.

    Averages :func:`ntk_neuron_expr` over :math:`v_k, v_l \sim N(0,1)` independent of ``w``
    (:math:`E[v_k v_l] = \delta_{kl}`), with :math:`\Sigma = E[\sigma(u)\sigma(u')]` and
    :math:`\dot\Sigma = E[\sigma'(u)\sigma'(u')]` written as symbols.
    """
    expr, sy = ntk_neuron_expr()
    Sig, dSig = sp.symbols("Sigma Sigmadot", real=True)
    # E over v: v_k v_l -> delta; then E over w: products of s, ds -> Sigma, Sigmadot
    e = sp.expand(expr).subs(sy["vk"] * sy["vl"], sy["delta"])
    e = e.subs(sy["s"] * sy["sp"], Sig).subs(sy["ds"] * sy["dsp"], dSig)
    return sp.factor(sp.expand(e))


def relu_arccos_exprs() -> dict[str, sp.Expr]:
    r"""Arc-cosine closed forms for ReLU with :math:`w\sim N(0, I)` (Cho & Saul 2009).

    :math:`\Sigma = \frac{\|x\|\|x'\|}{2\pi}(\sin\theta + (\pi-\theta)\cos\theta)`,
    :math:`\dot\Sigma = \frac{\pi-\theta}{2\pi}`, :math:`\cos\theta = x\cdot x'/(\|x\|\|x'\|)`.
    Checked against Gauss–Hermite quadrature in the tests.
    """
    nx, ny, th = sp.symbols("n_x n_y theta", positive=True)
    return {"Sigma": nx * ny / (2 * sp.pi) * (sp.sin(th) + (sp.pi - th) * sp.cos(th)),
            "Sigmadot": (sp.pi - th) / (2 * sp.pi)}


# ---------------------------------------------------------------------------------------------- flows
def network_flow_system(d: int, M: int, K: int, N: int, activation: str = "tanh",
                        generic: bool = False, expand: bool = True) -> ODESystem:
    r"""Gradient flow :math:`\dot\theta = -\nabla_\theta L` of a small network, as an ODESystem.

    States are the entries of ``W`` (M x d) and ``V`` (K x M); parameters are the data ``x_{i,a}``,
    ``xp_{i,a}`` (the positive views) and ``lambda``. With ``generic=True`` the activation stays an
    undefined function ``sigma`` (for rendering); otherwise it is the concrete ``activation``.
    ``expand=False`` skips expanding the right-hand sides (built by :func:`theorykit.derive.gradient_flow`
    otherwise), which is much faster for numeric checks.
    """
    W = sp.Matrix(M, d, lambda m, a: sp.Symbol(f"w_{m}{a}", real=True))
    V = sp.Matrix(K, M, lambda k, m: sp.Symbol(f"v_{k}{m}", real=True))
    X = sp.Matrix(N, d, lambda i, a: sp.Symbol(f"x_{i}{a}", real=True))
    Xp = sp.Matrix(N, d, lambda i, a: sp.Symbol(f"xp_{i}{a}", real=True))
    sig = sp.Function("sigma") if generic else (lambda z: activation_expr(activation, z))

    def f(x_row):
        h = W * x_row.T
        return V * sp.Matrix([sig(h[m]) for m in range(M)]) / sp.sqrt(M)

    FA = [f(X[i, :]) for i in range(N)]
    FB = [f(Xp[i, :]) for i in range(N)]
    C = sum((FA[i] * FB[i].T for i in range(N)), sp.zeros(K, K)) / N
    L = barlow_loss_of_C(C)
    states = list(W) + list(V)
    params = [lam] + list(X) + list(Xp)
    prov = (f"two-layer network f = M^(-1/2) V sigma(W x), d={d}, M={M}, K={K}, N={N}",
            "Barlow Twins loss on C = (1/N) sum_i f(x_i) f(x_i^+)^T")
    if generic:
        # sigma is undefined: name its derivative sigma' so the system holds no unevaluated Derivative
        dsig = sp.Function("sigma'")
        rhs = [sp.expand(-sp.diff(L, s)).replace(sp.Subs, lambda e, v, p: dsig(p[0]) if e.args[0].func == sig
                                                  else sp.Subs(e, v, p)) for s in states]
        return ODESystem(t=sp.Symbol("t", real=True), states=tuple(states), rhs=tuple(rhs), params=tuple(params),
                         observed={"loss": L}, name="barlow_twins_network_flow",
                         provenance=prov + ("gradient flow of the loss, rates 1; sigma' = d sigma/du",))
    if expand:
        return gradient_flow(L, states, params, name="barlow_twins_network_flow", provenance=prov)
    # unexpanded -dL/dtheta: the same equations, far cheaper to build for numeric checks
    return ODESystem(t=sp.Symbol("t", real=True), states=tuple(states),
                     rhs=tuple(-sp.diff(L, s) for s in states), params=tuple(params), observed={"loss": L},
                     name="barlow_twins_network_flow", provenance=prov + ("gradient flow of the loss, rates 1",))


def kernel_flow_system(N: int, K: int, n_extra: int = 0) -> ODESystem:
    r"""Function-space gradient flow of the linearised model on the training set, as an ODESystem.

    States ``f_{i,k}``: outputs on the 2N training inputs (rows ``0..N-1`` the first views, ``N..2N-1``
    the second) followed by ``n_extra`` unlabelled evaluation inputs. Parameters: the NTK Gram entries
    ``Theta_{(i,k),(j,l)}`` (symmetric) and ``lambda``.

    .. math:: \dot f_{i,k} = -\sum_{j,l} \Theta_{(i,k),(j,l)}\,\partial L/\partial f_{j,l}

    where only training rows enter the loss.
    """
    n = 2 * N + n_extra
    F = sp.Matrix(n, K, lambda i, k: sp.Symbol(f"f_{i}{k}", real=True))
    C = sum((F[i, :].T * F[N + i, :] for i in range(N)), sp.zeros(K, K)) / N
    L = barlow_loss_of_C(C)
    flat = [(i, k) for i in range(n) for k in range(K)]
    th = {}
    for a, (i, k) in enumerate(flat):
        for b, (j, l) in enumerate(flat):
            lo, hi = min(a, b), max(a, b)
            fi, fk = flat[lo]
            gj, gl = flat[hi]
            th[a, b] = sp.Symbol(f"Theta_{fi}{fk}_{gj}{gl}", real=True)
    grads = [sp.diff(L, F[j, l]) for (j, l) in flat]
    rhs = [-sum(th[a, b] * grads[b] for b in range(len(flat))) for a in range(len(flat))]
    params = [lam] + sorted(set(th.values()), key=lambda s: s.name)
    return ODESystem(t=sp.Symbol("t", real=True), states=tuple(F[i, k] for (i, k) in flat),
                     rhs=tuple(sp.expand(r) for r in rhs), params=tuple(params), observed={"loss": L},
                     name="barlow_twins_kernel_flow",
                     provenance=("linearised network f_lin = f_0 + J_0 (theta - theta_0)",
                                 "d f/dt = -J_0 J_0^T dL/df = -Theta_0 dL/df on the training inputs"))


def packed_kernel_flow_system(n: int, K: int) -> ODESystem:
    r"""The kernel-model flow on ``n`` inputs as the numba kernel evaluates it: names, no formulas.

    The same flow as :func:`kernel_flow_system`, with states ``f_{i}_{k}`` (index ``i*K + k``) and the
    parameters packed as the kernel reads them, ``[N, K, lambda, Theta_0, ..., Theta_{(nK)^2-1}]`` (the
    Gram matrix row by row); the right-hand sides and the observable ``loss`` are undefined functions of
    ``t``, evaluated by hand-written kernels (at the widths of the experiments the SymPy form would hold
    thousands of symbols per equation).
    """
    t = sp.Symbol("t", real=True)
    states = tuple(sp.Symbol(f"f_{i}_{k}", real=True) for i in range(n) for k in range(K))
    params = (sp.Symbol("N", positive=True), sp.Symbol("K", positive=True), lam,
              *(sp.Symbol(f"Theta_{a}", real=True) for a in range((n * K) ** 2)))
    return ODESystem(t=t, states=states, rhs=tuple(-sp.Function(f"Theta_dLdf_{s.name[2:]}")(t) for s in states),
                     params=params, observed={"loss": sp.Function("barlow_loss")(t)},
                     name=f"barlow_twins_kernel_flow_n{n}_K{K}",
                     provenance=("linearised network f_lin = f_0 + J_0 (theta - theta_0)",
                                 "d f/dt = -Theta_0 dL/df on the training inputs (kernel_flow_system), "
                                 "evaluated by numba kernels with Theta packed in the parameters"))


# ---------------------------------------------------------------------------------------------- kernel code
def kernel_functions() -> list[tuple[str, tuple[sp.Symbol, ...], sp.Expr, str]]:
    """The scalar functions the numba kernels call, as ``(name, arguments, expression, comment)`` for
    :func:`theorykit.compile.generate_function_module`: activations and their derivatives (also in terms of
    the activation's value), the loss entries and their derivatives, and one neuron's NTK contribution."""
    x, a = sp.Symbol("u", real=True), sp.Symbol("a", real=True)
    fns = []
    for name in ACTIVATIONS:
        fns.append((f"act_{name}", (x,), activation_expr(name, x), f"{name}(u)."))
        fns.append((f"dact_{name}", (x,), activation_derivative(name, x), f"Derivative of {name} at u."))
        fns.append((f"dact_{name}_of_value", (a,), activation_derivative_of_value(name, a),
                    f"Derivative of {name} at u, from its value a = {name}(u)."))
    le = loss_entry_exprs()
    c, lam_p = sp.Symbol("c"), sp.Symbol("lam")
    rep = {le["c"]: c, lam: lam_p}
    fns.append(("loss_diag", (c,), le["diag"].subs(rep), "Diagonal loss term (1 - C_kk)^2."))
    fns.append(("loss_offdiag", (c, lam_p), le["offdiag"].subs(rep), "Off-diagonal loss term lambda C_kl^2."))
    fns.append(("dloss_diag", (c,), le["ddiag"].subs(rep), "dL/dC_kk."))
    fns.append(("dloss_offdiag", (c, lam_p), le["doffdiag"].subs(rep), "dL/dC_kl for k != l."))
    expr, sy = ntk_neuron_expr()
    names = {"s": "s", "sp": "s2", "ds": "ds", "dsp": "ds2", "vk": "vk", "vl": "vl", "xx": "xx", "delta": "delta"}
    args = tuple(sp.Symbol(v) for v in names.values())
    fns.append(("ntk_neuron", args, expr.subs({sy[k]: a for k, a in zip(names, args)}),
                "One neuron's contribution to Theta_kl(x, x') (before the 1/M average)."))
    return fns
