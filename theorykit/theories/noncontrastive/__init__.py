r"""Non-contrastive (BYOL / SimSiam) eigenmode dynamics: Euclidean loss versus normalised cosine loss.

Sources: Tian, Chen & Ganguli, *Understanding self-supervised learning dynamics without contrastive
pairs* (ICML 2021, arXiv 2102.06810) for the linear model and its Euclidean eigenmode dynamics; H. Bao,
*Feature normalization prevents collapse of non-contrastive learning dynamics* (arXiv 2309.16109) for
the cosine loss. See ``derivations/noncontrastive.md`` for what was checked against which section.

Pipeline: :mod:`._symbolic` derives the eigenmode ODE systems from the per-sample losses (SymPy),
:mod:`._analysis` compiles and analyses them, :mod:`._simulate` / :mod:`._kernels` run SGD on the actual
networks, :mod:`._reproduce` compares them and writes the report figures.
"""

from __future__ import annotations

from ._analysis import (compiled as compiled, equilibria as equilibria, continue_in_eta as continue_in_eta,
                        cosine_fold_eta as cosine_fold_eta, euclidean_critical_eta as euclidean_critical_eta,
                        euclidean_fixed_points as euclidean_fixed_points, frozen_norms as frozen_norms,
                        ode_trajectory as ode_trajectory, phase_grid as phase_grid,
                        reduced_fixed_points as reduced_fixed_points, system as system)
from ._simulate import ParticleRun as ParticleRun, check_hyper as check_hyper, simulate_sgd as simulate_sgd
from ._symbolic import (LOSSES as LOSSES, eigenmode_system as eigenmode_system, mode_flow as mode_flow,
                        reduce_mode as reduce_mode)

TITLE = "Non-contrastive (BYOL/SimSiam) eigenmode dynamics: Euclidean vs normalized cosine"


def builtin_systems():
    """The systems this theory offers to the CLI (``theorykit systems``)."""
    from .. import BuiltinSystem

    nu_u, nu_v = frozen_norms(1.0, 0.5)
    return {
        "euclidean_mode": BuiltinSystem(
            "euclidean_mode", lambda: system("euclidean", 1), {"eta": 0.1, "sigma2": 0.5, "alpha_p": 1.0},
            {"p1": 1.0, "s1": 1.0}, "one eigenmode (p, s) of the Euclidean loss, SimSiam target",
            {"eta": (0.0, 0.3), "sigma2": (0.0, 2.0)}),
        "euclidean_byol": BuiltinSystem(
            "euclidean_byol", lambda: system("euclidean", 1, True),
            {"eta": 0.1, "sigma2": 0.5, "alpha_p": 1.0, "beta": 0.5},
            {"p1": 1.0, "s1": 1.0, "tau1": 1.0}, "one eigenmode (p, s, tau) of the Euclidean loss, EMA target",
            {"eta": (0.0, 0.3), "beta": (0.01, 0.99)}),
        "euclidean_reduced": BuiltinSystem(
            "euclidean_reduced", lambda: system("euclidean", reduced=True), {"eta": 0.1, "sigma2": 0.5},
            {"p": 1.0}, "cubic per-mode flow on the invariant manifold s = p^2/alpha_p",
            {"eta": (0.0, 0.3), "sigma2": (0.0, 2.0)}),
        "cosine_reduced": BuiltinSystem(
            "cosine_reduced", lambda: system("cosine", reduced=True),
            {"eta": 0.1, "sigma2": 0.5, "alpha_p": 1.0, "nu_u": nu_u, "nu_v": nu_v, "rho": 0.0},
            {"p": 1.0}, "sextic per-mode flow of the cosine loss with frozen feature norms",
            {"eta": (0.0, 1.0), "sigma2": (0.0, 2.0)}),
        "cosine_modes": BuiltinSystem(
            "cosine_modes", lambda: system("cosine", 2),
            {"eta": 0.05, "sigma2": 0.5, "alpha_p": 1.0, "f1": 0.5, "f2": 0.5},
            {"p1": 1.0, "s1": 1.0, "p2": 0.4, "s2": 0.16},
            "two mode groups of the cosine loss coupled through the concentrated norms",
            {"eta": (0.0, 0.3), "sigma2": (0.0, 2.0)}),
        "cosine_shape": BuiltinSystem(
            "cosine_shape", lambda: system("cosine", shape=True), {"sigma2": 0.5, "alpha_p": 1.0, "f1": 0.5},
            {"x": 1.2}, "normalised shape of two cosine mode groups in rescaled time (weight decay drops out)",
            {"sigma2": (0.0, 2.0), "alpha_p": (0.2, 3.0)}),
    }


def reproduce(outdir, *, quick: bool = True, seed: int = 0, **sweep_options):
    """Derive, analyse, simulate and compare; see :func:`._reproduce.reproduce` (``sweep_options``:
    ``processes``, ``scheduler``, ``store`` of the SGD studies)."""
    from ._reproduce import reproduce as _run

    return _run(outdir, quick=quick, seed=seed, **sweep_options)


__all__ = ["TITLE", "LOSSES", "builtin_systems", "reproduce", "eigenmode_system", "mode_flow", "reduce_mode",
           "system", "compiled", "equilibria", "ode_trajectory", "euclidean_fixed_points", "euclidean_critical_eta",
           "reduced_fixed_points", "cosine_fold_eta", "frozen_norms", "phase_grid", "continue_in_eta",
           "simulate_sgd", "ParticleRun", "check_hyper"]
