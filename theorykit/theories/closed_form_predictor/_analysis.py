"""Compiled eigenvalue systems, their solutions in the names SGD records, and the built-in systems of the CLI."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ...compile import compile_system
from ...solve import solve
from . import _symbolic as S

#: parameter values used where a study does not set them
DEFAULTS = dict(eta=0.0, sigma2_o=0.0, sigma2_t=0.0, alpha=1.0, epsilon=0.0, beta=1.0, f1=0.5)


@lru_cache(maxsize=None)
def compiled(loss: str, predictor: str = "closed_form", n_groups: int = 2, ema: bool = False, lam: bool = False):
    """The compiled :func:`._symbolic.mode_system` (or, with ``lam``, :func:`._symbolic.lambda_system`)."""
    return compile_system(S.lambda_system(loss) if lam else S.mode_system(loss, predictor, n_groups, ema))


def packed(csys, params) -> np.ndarray:
    """The parameters of ``csys`` from ``params`` over :data:`DEFAULTS` (names it does not use are ignored)."""
    return csys.pack_params({k: v for k, v in {**DEFAULTS, **params}.items() if k in csys.param_names})


def ode_solution(loss: str, predictor: str, s0, t, **params):
    """The eigenvalue ODE of ``len(s0)`` groups solved at the times ``t`` (a :class:`theorykit.solve.Solution`
    with states ``s<k>`` and observables ``lambda<k>``, ``mean_s``: the names :func:`._simulate.simulate`
    records, so :func:`theorykit.validate.compare` pairs them)."""
    csys, t = compiled(loss, predictor, len(s0)), np.asarray(t, dtype=float)
    return solve(csys, np.asarray(s0, float), (t[0], t[-1]), packed(csys, params), t_eval=t, method="lsoda",
                 rtol=1e-9, atol=1e-12)


def closed_form_predictor_systems():
    """The systems this theory offers to the CLI (``theorykit systems``, ``theorykit solve``)."""
    from .. import BuiltinSystem

    def lam(loss, rate):
        return BuiltinSystem(f"{loss}_lambda", lambda: S.lambda_system(loss), {"eta": 0.0, "sigma2_o": 0.0,
                             "alpha": 1.0}, {"lambda": 0.1}, f"one mode, {loss} loss, lambda' = {rate} (Halvagal)")

    return {
        "euclidean_lambda": lam("euclidean", "-2 alpha lambda^2 (lambda - 1)"),
        "iso_euclidean_lambda": lam("iso_euclidean", "-2 alpha lambda (lambda - 1)"),
        **{f"{loss}_modes": BuiltinSystem(
            f"{loss}_modes", (lambda loss=loss: S.mode_system(loss, "closed_form", 2)),
            {"eta": 0.0, "sigma2_o": 0.0, "alpha": 0.5, "f1": 0.5, **({"sigma2_t": 0.5} if "cosine" in loss else {})},
            {"s1": 1.2, "s2": 0.4},
            f"two groups of eigenvalues s_k of W W^T, {loss} loss, closed-form predictor s^alpha")
           for loss in S.LOSSES},
        "directpred_modes": BuiltinSystem(
            "directpred_modes", lambda: S.mode_system("euclidean", "directpred", 2),
            {"eta": 0.1, "sigma2_o": 0.2, "epsilon": 0.4, "f1": 0.5}, {"s1": 0.21, "s2": 0.007},
            "two groups, DirectPred p = sqrt(s_hat) + epsilon max s_hat (Tian Eq. 18), weight decay"),
        "directpred_ema": BuiltinSystem(
            "directpred_ema", lambda: S.mode_system("euclidean", "directpred", 1, ema=True),
            {"eta": 0.1, "sigma2_o": 0.2, "epsilon": 0.0, "beta": 0.5}, {"s1": 0.21, "tau1": 0.0},
            "one mode, DirectPred with an EMA target started at W_t = 0 (Tian Eqs. 12-13, 18)"),
    }
