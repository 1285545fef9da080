"""Collapse boundaries of the non-contrastive theory as fold curves, against their closed forms.

* Euclidean loss: non-collapsed equilibria solve (1 + sigma^2) p^2 - tau p + eta = 0, so the collapse boundary
  in (eta, sigma^2) is the fold tau^2 = 4 eta (1 + sigma^2) (Tian et al. 2021), with tau = 1 for SimSiam and
  tau the target state of BYOL (which settles at 1 on the non-collapsed equilibria).
* Cosine loss with frozen feature norms: the fold eta_fold(nu_u) of the reduced sextic, derived by SymPy
  (``cosine_fold``).

The curves are traced on the theory's own eigenmode systems, from a fold located by one-parameter
continuation in eta.
"""

from __future__ import annotations

import numpy as np
import pytest

from theorykit.analysis import continue_branch, continue_fold, find_fixed_points
from theorykit.theories import noncontrastive as N


def _fold_branch(csys, params, guess):
    """The branch in eta through the stable non-collapsed equilibrium near ``guess``, with its fold located."""
    (start,) = [fp for fp in find_fixed_points(csys, params, guesses=[guess], n_starts=0)]
    br = continue_branch(csys, start, params, "eta", (0.0, 2.0), direction=1)
    assert len(br.special("fold")) == 1
    return br


@pytest.mark.parametrize("byol", [False, True])
def test_euclidean_collapse_boundary_is_the_fold_curve(byol):
    csys = N.compiled_ode("euclidean", 1, byol)
    params = {"eta": 0.1, "sigma2": 0.5, "alpha_p": 1.0, **({"beta": 0.5} if byol else {})}
    br = _fold_branch(csys, params, [0.55, 0.3] + ([1.0] if byol else []))
    cv = continue_fold(csys, br, free=("eta", "sigma2"), bounds={"sigma2": (0.0, 3.0)})
    eta, sigma2 = cv.param_of("eta"), cv.param_of("sigma2")
    tau = cv.y_of("tau1") if byol else np.ones(len(cv))
    np.testing.assert_allclose(tau ** 2, 4 * eta * (1 + sigma2), atol=1e-6)
    # the whole curve: from sigma^2 = 0 to 3, i.e. eta from 1/4 down to 1/16
    assert np.sort(sigma2[[0, -1]]) == pytest.approx([0.0, 3.0]) and cv.stop_reason == "bounds / bounds"
    # the double root p = tau / (2 (1 + sigma^2)) is the state along the curve
    np.testing.assert_allclose(cv.y_of("p1"), tau / (2 * (1 + sigma2)), atol=1e-6)
    np.testing.assert_allclose(eta.max(), 0.25, atol=1e-9)


def test_cosine_frozen_norm_fold_curve():
    import sympy as sp

    from theorykit.theories.noncontrastive import _symbolic as S

    csys = N.compiled_ode("cosine", reduced=True)
    nu_u, nu_v = N.frozen_norms(1.0, 0.5)
    params = {"eta": 0.05, "sigma2": 0.5, "alpha_p": 1.0, "nu_u": nu_u, "nu_v": nu_v, "rho": 0.0}
    br = _fold_branch(csys, params, [1.0])
    cv = continue_fold(csys, br, free=("nu_u", "eta"), bounds={"nu_u": (0.2, 3.0)})
    nu, eta = cv.param_of("nu_u"), cv.param_of("eta")
    pm, eta_fold = S.cosine_fold()
    args = (S.sigma2, S.alpha_p, S.nu_u, S.nu_v)
    assert (pm.free_symbols | eta_fold.free_symbols) <= set(args)
    eta_of, p_of = (sp.lambdify(args, e, "numpy") for e in (eta_fold, pm))
    np.testing.assert_allclose(eta, eta_of(0.5, 1.0, nu, nu_v), atol=1e-6)
    np.testing.assert_allclose(cv.y_of("p"), p_of(0.5, 1.0, nu, nu_v), atol=1e-6)
    assert np.sort(nu[[0, -1]]) == pytest.approx([0.2, 3.0])
    # the theory's own evaluation of the same closed form agrees at the start
    assert N.cosine_fold_eta(0.5, 1.0, 1.0, nu_u, nu_v) == pytest.approx(br.special("fold")[0].param_value, abs=1e-9)
