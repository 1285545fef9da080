"""Equilibria followed in parameters: the non-collapsed branch of the reduced flows in the weight decay, and the
collapse boundaries as fold curves in two parameters (:func:`theorykit.analysis.continue_fold`)."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from ...errors import InvalidParameterError
from ._analysis import (compiled_ode, cosine_fold_eta, euclidean_fixed_points, frozen_norms, hyper, pack,
                        reduced_fixed_points)


def continue_in_eta(loss: str, params: Mapping[str, float], eta_bounds: tuple[float, float],
                    start_p: float | None = None):
    """Continue the non-collapsed equilibrium of the reduced per-mode flow in ``eta``.

    Uses :func:`theorykit.analysis.continue_branch` (pseudo-arclength, fold detection) from the stable
    root at ``eta_bounds[0]``. Returns ``(eta, p, stable, folds)`` arrays / list of fold ``eta`` values.
    """
    from ...analysis import continue_branch

    csys = compiled_ode(loss, reduced=True)
    prm = {k: v for k, v in params.items() if k in csys.param_names}
    prm["eta"] = float(eta_bounds[0])
    if start_p is None:
        fps = [r for r, st in reduced_fixed_points(loss, prm) if st and r > 0]
        if not fps:
            raise InvalidParameterError(f"no stable non-zero equilibrium of the reduced {loss} flow at eta={eta_bounds[0]}")
        start_p = max(fps)
    br = continue_branch(csys, np.array([start_p]), prm, param="eta", bounds=(float(eta_bounds[0]), float(eta_bounds[1])),
                         ds=1e-3, ds_max=0.02, max_points=4000, detect=("fold",))
    folds = [sp_.param_value for sp_ in br.special("fold")]
    return np.asarray(br.param_values), np.asarray(br.states[:, 0]), np.asarray(br.stable), folds


# ------------------------------------------------------------------------------ fold curves
def _fold_branch(csys, params: Mapping[str, float], guess: Sequence[float], eta_max: float):
    """The branch in ``eta`` through the stable non-collapsed equilibrium near ``guess``, up to its fold."""
    from ...analysis import continue_branch, find_fixed_points

    prm = pack(csys, params)
    start = find_fixed_points(csys, prm, guesses=[np.asarray(guess, dtype=float) * (1 + 1e-6)], n_starts=0)
    if len(start) != 1:
        raise RuntimeError(f"expected one equilibrium near {list(guess)}, found {len(start)}")
    br = continue_branch(csys, start[0], prm, "eta", (0.0, eta_max), detect=("fold",), ds=1e-3, ds_max=0.02)
    if len(br.special("fold")) != 1:
        raise RuntimeError(f"expected one fold on the branch in eta, found {len(br.special('fold'))}")
    return br


def euclidean_fold_curve(sigma2_bounds: tuple[float, float] = (0.0, 2.0), alpha_p: float = 1.0):
    """The Euclidean collapse boundary as a fold curve in ``(eta, sigma2)``: the fold of the one-mode system
    ``(p, s)`` located by continuation in ``eta`` at ``sigma2 = 0.5`` and followed in both parameters by
    :func:`theorykit.analysis.continue_fold` over ``sigma2_bounds``; a
    :class:`~theorykit.analysis.BifurcationCurve`."""
    from ...analysis import continue_fold

    csys = compiled_ode("euclidean", 1)
    p_plus = euclidean_fixed_points(0.1, 0.5)[1]
    br = _fold_branch(csys, hyper(0.1, 0.5, alpha_p), [p_plus, p_plus ** 2 / alpha_p], 1.0)
    return continue_fold(csys, br, free=("eta", "sigma2"), bounds={"sigma2": tuple(map(float, sigma2_bounds))})


def cosine_fold_curve(nu_u_bounds: tuple[float, float] = (0.2, 3.0), sigma2: float = 0.5, alpha_p: float = 1.0):
    """The fold of the frozen-norm cosine sextic (isolated mode, ``rho = 0``) followed in ``(nu_u, eta)`` by
    :func:`theorykit.analysis.continue_fold`, from the fold at the norms of ``p = 1``."""
    from ...analysis import continue_fold

    csys = compiled_ode("cosine", reduced=True)
    nu_u, nu_v = frozen_norms(1.0, sigma2, alpha_p)
    prm = dict(eta=0.5 * cosine_fold_eta(sigma2, alpha_p, 1.0, nu_u, nu_v), sigma2=sigma2, alpha_p=alpha_p,
               nu_u=nu_u, nu_v=nu_v, rho=0.0)
    start = max(r for r, stable in reduced_fixed_points("cosine", prm) if stable and r > 0)
    br = _fold_branch(csys, prm, [start], 2.0 * prm["eta"] * 2)
    return continue_fold(csys, br, free=("nu_u", "eta"), bounds={"nu_u": tuple(map(float, nu_u_bounds))})


__all__ = ["continue_in_eta", "euclidean_fold_curve", "cosine_fold_curve"]
