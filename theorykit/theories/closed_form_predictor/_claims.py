"""``reproduce``: the studies of :mod:`._studies` as claims, with their figures."""

from __future__ import annotations

from ...validate import Study
from . import _figures as F
from . import _studies as X

#: every claim :func:`reproduce` states
CLAIM_NAMES = (*(f"{loss}_flow_matches_halvagal" for loss in ("euclidean", "cosine", "iso_euclidean", "iso_cosine")),
               "directpred_matches_tian", "euclidean_fixed_points", "iso_euclidean_fixed_points",
               "cosine_isotropy_eigenvalues", "directpred_fixed_points", "euclidean_transit_time",
               "euclidean_rate_multiplier", "isoloss_equal_rates", "euclidean_isotropic", "cosine_gradient_orthogonal",
               "cosine_norm_conserved", "cosine_isotropic_scale", "cosine_isotropic_groups", "directpred_sgd_vs_ode",
               "directpred_weak_mode", "euclidean_width_convergence", "cosine_width_convergence")

#: SGD studies with a trajectory figure: (study, figure, observable drawn, caption)
TRAJECTORY_STUDIES = (
    ("euclidean", "euclidean.png", "lambda", "Euclidean loss and IsoLoss: group eigenvalues lambda of the predictor, "
     "SGD (dots) on the derived ODE (lines)."),
    ("cosine", "cosine.png", "lambda", "Cosine loss: the groups become isotropic at the scale of the initial norm."),
    ("directpred", "directpred.png", "s", "DirectPred without and with epsilon * max: the weak group collapses or "
     "grows, SGD (dots) on the ODE (lines)."))


def reproduce(study: Study) -> None:
    """The derived flows against the papers, their equilibria, and SGD on the networks against the ODEs."""
    quick, seed = study.quick, study.seed
    study.parameters(quick=quick, seed=seed)
    with study.section("derivation"):
        for c in X.derivation_study(seed)["claims"]:
            study.claim(**c)
    with study.section("stability"):
        for c in X.stability_study()["claims"]:
            study.claim(**c)
    for name, figure, kind, caption in TRAJECTORY_STUDIES:
        with study.section(name):
            result = getattr(X, f"{name}_study")(seed, quick)
            for c in result["claims"]:
                study.claim(**c, figures=(figure,))
            n = len(result["runs"])
            with study.figure(figure, caption, ncols=n, figsize=(4.2 * n, 3.4), squeeze=False) as (fig, axes):
                F.draw_trajectories(axes, result, kind)
    with study.section("width"):
        result = X.width_study(seed, quick)
        for c in result["claims"]:
            study.claim(**c, figures=("width_scaling.png",))
        with study.figure("width_scaling.png", "Max |s_SGD - s_ODE| against the width M with fitted power laws.",
                          **F.WIDTH_LAYOUT) as (fig, ax):
            F.draw_width_scaling(ax, result)
