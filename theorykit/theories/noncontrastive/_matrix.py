r"""Symbolic layer for weights that are not aligned (SymPy only): the expected gradient flow of general
matrices, and from it the alignment dynamics of Tian, Chen & Ganguli 2021 (Eq. 7, Theorem 3).

Same recipe as the eigenmode flow (:mod:`._symbolic`) without the alignment assumption: overlaps
:math:`A = |W_p W x_1|^2`, :math:`M = \langle W_p W x_1, W_t x_2\rangle`, :math:`B = |W_t x_2|^2` with
:math:`x_i = z + e_i` (``n`` coordinates each), outer factors at the concentration values, ``D = n``, and the
weight decays from the regularised loss :math:`\ell + \eta_p\|W_p\|^2/(2\alpha_p) + \eta_s\|W\|^2/2`.
"""

from __future__ import annotations

from functools import lru_cache

import sympy as sp

from ...derive import Law, ODESystem, expectation
from . import _symbolic as S


def matrix_flow(loss: str, n: int = 2, *, separate_decays: bool = False) -> tuple[sp.Matrix, sp.Matrix, dict]:
    r"""Expected gradient flow of general ``n x n`` symbolic matrices ``W_p``, ``W`` (target ``W_t`` fixed).

    Returns ``(dW_p/dt, dW/dt, symbols)`` where ``symbols`` maps ``"Wp", "W", "Wt"`` to the symbolic matrices
    (entries ``P_ij``, ``W_ij``, ``T_ij``). Weight decays ``eta`` on both, or ``eta_p`` / ``eta_s`` with
    ``separate_decays``.
    """
    S.check_loss(loss)
    Wp = sp.Matrix(n, n, lambda i, j: sp.Symbol(f"P_{i}{j}", real=True))
    W = sp.Matrix(n, n, lambda i, j: sp.Symbol(f"W_{i}{j}", real=True))
    Wt = sp.Matrix(n, n, lambda i, j: sp.Symbol(f"T_{i}{j}", real=True))
    zs = [sp.Symbol(f"z{i}", real=True) for i in range(n)]
    e1s = [sp.Symbol(f"e1_{i}", real=True) for i in range(n)]
    e2s = [sp.Symbol(f"e2_{i}", real=True) for i in range(n)]
    laws = {**{v: Law.gaussian(1) for v in zs}, **{v: Law.gaussian(S.sigma2) for v in e1s + e2s}}
    x1 = sp.Matrix([zi + ei for zi, ei in zip(zs, e1s)])
    x2 = sp.Matrix([zi + ei for zi, ei in zip(zs, e2s)])
    u, v = Wp * W * x1, Wt * x2
    overlaps = {S.A_uu: (u.T * u)[0], S.M_uv: (u.T * v)[0], S.B_vv: (v.T * v)[0]}
    conc = {X: expectation(e, laws) for X, e in overlaps.items()}
    ell = S.loss_of_overlaps(loss).subs(S.dim, n)
    outer = {X: sp.diff(ell, X).subs(conc) for X in (S.A_uu, S.M_uv)}
    dp, ds = S.weight_decays(separate_decays)
    penalty = dp * sum(x ** 2 for x in Wp) / (2 * S.alpha_p) + ds * sum(x ** 2 for x in W) / 2

    def grad(theta):
        return sum(outer[X] * expectation(sp.diff(overlaps[X], theta), laws) for X in (S.A_uu, S.M_uv)) \
            + sp.diff(penalty, theta)

    dWp = Wp.applyfunc(lambda th: -S.alpha_p * grad(th))
    dW = W.applyfunc(lambda th: -grad(th))
    return dWp, dW, {"Wp": Wp, "W": W, "Wt": Wt}


@lru_cache(maxsize=None)
def alignment_system(n: int = 3) -> ODESystem:
    r"""Tian et al.'s alignment dynamics as an ODE system in the weights themselves, derived from the loss.

    Euclidean loss, isotropic data (Assumption 2), target :math:`W_t = \tau W` with ``tau`` a parameter
    (Assumption 1 at fixed :math:`\tau`; SimSiam: ``tau = 1``), and a symmetric predictor whose flow is
    symmetrised (Assumption 3): :math:`\dot W_p = (G + G^\top)/2` of the derived flow ``G``. States: the
    ``n*n`` entries ``W_ij`` of :math:`W` and the entries ``P_ij`` (``i <= j``) of :math:`W_p`; observable
    ``comm2`` :math:`= \|[F, W_p]\|_F^2` with :math:`F = WW^\top`. In these variables :math:`F` follows Tian's
    Eq. 7 (with :math:`\eta_p` on the predictor and :math:`2\eta_s` on :math:`F`), checked numerically by the
    theory's claims.
    """
    dWp, dW, m = matrix_flow("euclidean", n, separate_decays=True)
    P, W, Wt = m["Wp"], m["W"], m["Wt"]
    sym = {P[j, i]: P[i, j] for i in range(n) for j in range(i + 1, n)}
    on = {**{Wt[i, j]: S.tau * W[i, j] for i in range(n) for j in range(n)}, **sym}
    dP = ((dWp + dWp.T) / 2).xreplace(on)
    dW = dW.xreplace(on)
    upper = [(i, j) for i in range(n) for j in range(i, n)]
    states = [W[i, j] for i in range(n) for j in range(n)] + [P[i, j] for i, j in upper]
    rhs = [sp.expand(dW[i, j]) for i in range(n) for j in range(n)] + [sp.expand(dP[i, j]) for i, j in upper]
    Ps = P.xreplace(sym)
    F = W * W.T
    C = F * Ps - Ps * F
    comm2 = sp.expand(sum(c ** 2 for c in C))
    return ODESystem(t=S.t, states=tuple(states), rhs=tuple(rhs),
                     params=(S.eta_p, S.eta_s, S.sigma2, S.alpha_p, S.tau), observed={"comm2": comm2},
                     name=f"alignment_{n}x{n}",
                     provenance=("expected gradient flow of general n x n matrices W_p, W of the Euclidean loss "
                                 "(theorykit.derive.expectation), weight decays from eta_p |W_p|^2/(2 alpha_p) + "
                                 "eta_s |W|^2/2",
                                 "target W_t = tau W (tau a parameter)",
                                 "symmetric predictor: W_p' = (G + G^T)/2, P_ji = P_ij"))


__all__ = ["matrix_flow", "alignment_system"]
