r"""Branch switching at a simple branch point of equilibria (transcritical, pitchfork).

At a branch point :math:`u^* = (y^*, \lambda^*)` of :math:`F(u) = f(y; \lambda)` the derivative
:math:`F_u = [f_y, f_\lambda]` has a two-dimensional null space :math:`\{\phi_1, \phi_2\}` (:math:`\phi_1`
along the known branch) and a left null vector :math:`\psi`. The tangents :math:`a\phi_1 + b\phi_2` of the
branches through :math:`u^*` solve the algebraic branching equation (Keller; Kuznetsov, *Elements of Applied
Bifurcation Theory*, §10.3)

.. math:: c_{11} a^2 + 2 c_{12} a b + c_{22} b^2 = 0, \qquad c_{ij} = \psi^\top F_{uu}[\phi_i, \phi_j],

with :math:`F_{uu}` from the generated second derivatives. One root is the known branch; the other is the
new branch's tangent. A step along it, corrected by Newton on the pseudo-arclength system, lands on the new
branch on either side of :math:`u^*`, and :func:`continue_branch` follows it from there.
"""

from __future__ import annotations

import numpy as np

from .._checks import check_int, check_range
from ..errors import InvalidParameterError
from ._continuation import Branch, SpecialPoint, _Problem, continue_branch
from ._fixed_points import _frozen, _sorted_eigenvalues, classify_eigenvalues


def _branch_tangents(prob: _Problem, der, u: np.ndarray, secant: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(known, new)``: unit tangents of the two branches through the branch point ``u``."""
    n, k = prob.n, prob.k
    y, p = u[:-1], prob._params(u[-1]).copy()
    Fu = np.column_stack([prob.ev.J(y, p), der.param_jac(y, p)[:, k]])
    U, _, Vt = np.linalg.svd(Fu)
    N = Vt[-2:].T  # null space of F_u (2 columns)
    psi = U[:, -1]
    phi1 = N @ (N.T @ secant)
    if np.linalg.norm(phi1) < 1e-8 * np.linalg.norm(secant):
        raise InvalidParameterError("index: the branch does not pass through the null space of the extended "
                                    "Jacobian at this point; it is not a simple branch point")
    phi1 /= np.linalg.norm(phi1)
    a, b = N.T @ phi1
    phi2 = N @ np.array([-b, a])

    def d2(s: np.ndarray, r: np.ndarray) -> float:
        H = der.hessian_along(y, p, s[:n], np.eye(p.size)[k] * s[n])
        return float(psi @ (H[:, :n] @ r[:n] + H[:, n + k] * r[n]))

    c11, c12, c22 = d2(phi1, phi1), d2(phi1, phi2), d2(phi2, phi2)
    lam, E = np.linalg.eigh(np.array([[c11, c12], [c12, c22]]))
    if not lam[0] * lam[1] < 0:
        raise InvalidParameterError(f"index: the branching equation has no two distinct real roots (c11={c11:.3g}, "
                                    f"c12={c12:.3g}, c22={c22:.3g}); not a transcritical or pitchfork point")
    # in the eigenbasis the quadratic form is lam0 s^2 + lam1 r^2: zero along sqrt|lam1| e0 ± sqrt|lam0| e1
    dirs = [np.sqrt(abs(lam[1])) * E[:, 0] + sgn * np.sqrt(abs(lam[0])) * E[:, 1] for sgn in (1.0, -1.0)]
    cands = [(d[0] * phi1 + d[1] * phi2) / np.linalg.norm(d) for d in dirs]
    new = min(cands, key=lambda t: abs(t @ phi1))  # the root away from the known branch
    return phi1, new


def switch_branch(csys, branch: Branch, index: int = 0, bounds: tuple[float, float] | None = None, *,
                  ds: float = 0.01, **options) -> Branch:
    """Continue the other branch through a branch point of ``branch`` (transcritical or pitchfork).

    Parameters
    ----------
    csys : CompiledSystem
        The system ``branch`` was computed for (compiled from a SymPy system: the branching equation uses its
        generated second derivatives).
    branch : Branch
        A branch with a located branch point.
    index : int
        Which of its branch points (``branch.special("branch_point")[index]``).
    bounds : (lo, hi), optional
        Parameter interval of the new branch (as in :func:`continue_branch`).
    ds : float
        Length of the first step from the branch point onto the new branch (and the initial step after it).
    **options
        Passed to :func:`continue_branch` (``ds_max``, ``max_points``, ``tol``, ``detect``, ...).

    Returns
    -------
    Branch
        The new branch through the branch point, on both sides of it, in order of arclength; the branch point
        itself is one of its special points.

    Raises
    ------
    InvalidParameterError
        If ``branch`` has no such branch point, if the point is not a simple branch point (the branching
        equation has no two distinct real roots), or if Newton cannot step onto the new branch.
    """
    from ..compile import compile_derivatives

    bps = branch.special("branch_point")
    if not bps:
        raise InvalidParameterError(f"branch: no branch point on the branch in {branch.param!r} "
                                    f"(its special points: {[sp.kind for sp in branch.special_points]})")
    index = check_int("index", index, 0, len(bps) - 1)
    ds = check_range("ds", ds, 0.0, low_open=True)
    bp = bps[index]
    params = {**dict(branch.params), branch.param: bp.param_value}
    prob = _Problem(csys, params, branch.param, options.get("tol", 1e-10), options.get("max_newton", 10))
    u = np.r_[bp.y, bp.param_value]
    i0, i1 = max(bp.index - 1, 0), min(bp.index + 1, len(branch) - 1)
    secant = np.r_[branch.states[i1] - branch.states[i0], branch.param_values[i1] - branch.param_values[i0]]
    _, t_new = _branch_tangents(prob, compile_derivatives(csys), u, secant)
    halves = []
    for sgn in (-1.0, 1.0):
        t = sgn * t_new
        w, _, ok = prob.correct(u + ds * t, t, max_newton=50)
        if not ok or np.linalg.norm(w - u) < 0.5 * ds:
            raise InvalidParameterError(f"could not step from the branch point at {branch.param}={bp.param_value:.10g} "
                                        f"onto the new branch with ds={ds}; try a smaller or larger ds")
        t_w = prob.tangent(w, t)
        direction = 1 if t_w[-1] >= 0 else -1
        halves.append(continue_branch(csys, w[:-1], {**params, branch.param: w[-1]}, branch.param, bounds,
                                      ds=ds, direction=direction, **options))
    back, fwd = halves
    eig = _sorted_eigenvalues(prob.J_y(u))
    stable = classify_eigenvalues(eig, options.get("eig_tol", 1e-8))[1]
    m = len(back)
    sps = [SpecialPoint(sp.kind, sp.param_value, sp.y, m - 1 - sp.index, sp.eigenvalues) for sp in back.special_points]
    sps = sps[::-1] + [SpecialPoint("branch_point", bp.param_value, bp.y, m, _frozen(eig, np.complex128))]
    sps += [SpecialPoint(sp.kind, sp.param_value, sp.y, m + 1 + sp.index, sp.eigenvalues) for sp in fwd.special_points]

    def cat(a: np.ndarray, mid, b: np.ndarray, dtype) -> np.ndarray:
        return _frozen(np.concatenate([a[::-1], np.asarray([mid], dtype=dtype), b]), dtype)

    return Branch(branch.param, cat(back.param_values, bp.param_value, fwd.param_values, np.float64),
                  cat(back.states, bp.y, fwd.states, np.float64), cat(back.stable, stable, fwd.stable, bool),
                  cat(back.eigenvalues, eig, fwd.eigenvalues, np.complex128), tuple(sps), branch.state_names,
                  fwd.params, f"{back.stop_reason} / {fwd.stop_reason}")


__all__ = ["switch_branch"]
