r"""Non-contrastive learning with a closed-form predictor: DirectPred (Tian, Chen & Ganguli 2021, §6,
Eqs. 18-19) and the closed-form predictor with IsoLoss (Halvagal, Laborieux & Zenke 2023).

:mod:`._symbolic` derives the eigenvalue ODEs from the losses, :mod:`._kernels` / :mod:`._simulate` run SGD
on the networks, :mod:`._studies` compares the two claim by claim and :mod:`._figures` draws them.
"""

from __future__ import annotations

from ._simulate import Run as Run, simulate as simulate
from ._studies import (compiled as compiled, cosine_study as cosine_study, derivation_study as derivation_study,
                       directpred_study as directpred_study, euclidean_study as euclidean_study, ode as ode,
                       stability_study as stability_study, width_study as width_study)
from ._symbolic import (LOSSES as LOSSES, PREDICTORS as PREDICTORS, lambda_system as lambda_system,
                        mode_system as mode_system, transit_time as transit_time)

TITLE = "Closed-form predictor (DirectPred, IsoLoss): eigenvalue dynamics of a linear encoder"


def builtin_systems():
    """The systems this theory offers to the CLI (``theorykit systems``, ``theorykit solve``)."""
    from .. import BuiltinSystem

    two = {"s1": 1.2, "s2": 0.4}
    return {
        "euclidean_lambda": BuiltinSystem(
            "euclidean_lambda", lambda: lambda_system("euclidean"), {"eta": 0.0, "sigma2_o": 0.0, "alpha": 1.0},
            {"lambda": 0.1}, "one mode, Euclidean loss, lambda' = -2 alpha lambda^2 (lambda - 1) (Halvagal)"),
        "iso_euclidean_lambda": BuiltinSystem(
            "iso_euclidean_lambda", lambda: lambda_system("iso_euclidean"),
            {"eta": 0.0, "sigma2_o": 0.0, "alpha": 1.0}, {"lambda": 0.1},
            "one mode, Euclidean IsoLoss, lambda' = -2 alpha lambda (lambda - 1)"),
        **{f"{loss}_modes": BuiltinSystem(
            f"{loss}_modes", (lambda loss=loss: mode_system(loss, "closed_form", 2)),
            {"eta": 0.0, "sigma2_o": 0.0, "alpha": 0.5, "f1": 0.5, **({"sigma2_t": 0.5} if "cosine" in loss else {})},
            two, f"two groups of eigenvalues s_k of W W^T, {loss} loss, closed-form predictor s^alpha")
          for loss in LOSSES},
        "directpred_modes": BuiltinSystem(
            "directpred_modes", lambda: mode_system("euclidean", "directpred", 2),
            {"eta": 0.1, "sigma2_o": 0.2, "epsilon": 0.4, "f1": 0.5}, {"s1": 0.21, "s2": 0.007},
            "two groups, DirectPred p = sqrt(s_hat) + epsilon max s_hat (Tian Eq. 18), weight decay"),
        "directpred_ema": BuiltinSystem(
            "directpred_ema", lambda: mode_system("euclidean", "directpred", 1, ema=True),
            {"eta": 0.1, "sigma2_o": 0.2, "epsilon": 0.0, "beta": 0.5}, {"s1": 0.21, "tau1": 0.0},
            "one mode, DirectPred with an EMA target started at W_t = 0 (Tian Eqs. 12-13, 18)"),
    }


__all__ = ["TITLE", "LOSSES", "PREDICTORS", "builtin_systems", "mode_system", "lambda_system", "transit_time",
           "compiled", "ode", "simulate", "Run", "derivation_study", "stability_study", "euclidean_study",
           "cosine_study", "directpred_study", "width_study"]
