r"""Non-contrastive (BYOL / SimSiam) eigenmode dynamics: Euclidean loss versus normalised cosine loss.

Sources: Tian, Chen & Ganguli, *Understanding self-supervised learning dynamics without contrastive
pairs* (ICML 2021, arXiv 2102.06810) for the linear model and its Euclidean eigenmode dynamics; H. Bao,
*Feature normalization prevents collapse of non-contrastive learning dynamics* (arXiv 2309.16109) for
the cosine loss. See ``derivations/noncontrastive.md`` for what was checked against which section.

Files: :mod:`._symbolic` derives the eigenmode ODE systems from the per-sample losses (SymPy);
:mod:`._analysis` compiles and analyses them; :mod:`._kernels` holds the numba SGD step and
:mod:`._simulate` runs it on the actual networks as :class:`~theorykit.simulate.ParticleRun` s;
:mod:`._studies` are the experiments, :mod:`._figures` their figures and :mod:`._claims` the claims of
``theorykit reproduce``. The module implements :class:`theorykit.theories.Theory`.
"""

from __future__ import annotations

from ._analysis import (compiled_ode as compiled_ode, continue_in_eta as continue_in_eta,
                        cosine_fold_eta as cosine_fold_eta, equilibria as equilibria,
                        euclidean_critical_eta as euclidean_critical_eta,
                        euclidean_fixed_points as euclidean_fixed_points, frozen_norms as frozen_norms,
                        noncontrastive_systems as systems, ode_solution as ode_solution, ode_system as ode_system,
                        ode_trajectory as ode_trajectory, phase_grid as phase_grid,
                        reduced_fixed_points as reduced_fixed_points)
from ._claims import CLAIM_NAMES as claim_names, reproduce as reproduce
from ._simulate import check_hyper as check_hyper, group_series as group_series, simulate_sgd as simulate_sgd
from ._symbolic import (LOSSES as LOSSES, eigenmode_system as eigenmode_system, mode_flow as mode_flow,
                        reduce_mode as reduce_mode)

name = "noncontrastive"
title = "Non-contrastive (BYOL/SimSiam) eigenmode dynamics: Euclidean vs normalized cosine"
sources = ("Tian, Chen & Ganguli 2021, arXiv 2102.06810", "Bao 2023, arXiv 2309.16109")

__all__ = ["name", "title", "sources", "claim_names", "systems", "reproduce", "LOSSES", "eigenmode_system",
           "mode_flow", "reduce_mode", "ode_system", "compiled_ode", "ode_solution", "ode_trajectory", "equilibria",
           "euclidean_fixed_points", "euclidean_critical_eta", "reduced_fixed_points", "cosine_fold_eta",
           "frozen_norms", "phase_grid", "continue_in_eta", "simulate_sgd", "group_series", "check_hyper"]
