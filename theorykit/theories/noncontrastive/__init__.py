r"""Non-contrastive (BYOL / SimSiam) eigenmode dynamics: Euclidean loss versus normalised cosine loss.

Sources: Tian, Chen & Ganguli, *Understanding self-supervised learning dynamics without contrastive
pairs* (ICML 2021, arXiv 2102.06810) for the linear model, its Euclidean eigenmode dynamics, the EMA target
started at zero (Eq. 15), the alignment of the eigenspaces (Eq. 7, Theorem 3, Eq. 17) and separate weight
decays; H. Bao, *Feature normalization prevents collapse of non-contrastive learning dynamics* (arXiv
2309.16109) for the cosine loss, whose sextic per-mode flow holds the feature norms frozen (Bao's
constant-norm approximation; with self-consistent norms the drift of one group of modes is the weight decay
alone). See ``derivations/noncontrastive.md`` for what was checked against which section.

Files: :mod:`._symbolic` derives the eigenmode ODE systems from the per-sample losses (SymPy);
:mod:`._matrix` derives the flow of weights that are not aligned; :mod:`._analysis`, :mod:`._continuation`
and :mod:`._alignment` compile and analyse them; :mod:`._kernels` holds the numba SGD step and
:mod:`._simulate` runs it on the actual networks as :class:`~theorykit.simulate.ParticleRun` s;
:mod:`._studies` and :mod:`._studies_tian` are the experiments, :mod:`._figures` their figures and
:mod:`._claims` the claims of ``theorykit reproduce``. The module implements :class:`theorykit.theories.Theory`.
"""

from __future__ import annotations

from ._alignment import (alignment_solution as alignment_solution, compiled_alignment as compiled_alignment,
                         tian_K as tian_K)
from ._analysis import (compiled_ode as compiled_ode, cosine_fold_eta as cosine_fold_eta,
                        equilibria as equilibria, euclidean_critical_eta as euclidean_critical_eta,
                        euclidean_fixed_points as euclidean_fixed_points, frozen_norms as frozen_norms, noncontrastive_systems as systems, ode_solution as ode_solution,
                        ode_system as ode_system, ode_trajectory as ode_trajectory, phase_grid as phase_grid,
                        reduced_fixed_points as reduced_fixed_points,
                        symmetric_predictor_grid as symmetric_predictor_grid)
from ._claims import CLAIM_NAMES as claim_names, reproduce as reproduce
from ._continuation import (continue_in_eta as continue_in_eta, cosine_fold_curve as cosine_fold_curve,
                            euclidean_fold_curve as euclidean_fold_curve)
from ._matrix import alignment_system as alignment_system, matrix_flow as matrix_flow
from ._simulate import (check_hyper as check_hyper, group_series as group_series,
                        simulate_matrices as simulate_matrices, simulate_sgd as simulate_sgd,
                        simulate_sgd_replicates as simulate_sgd_replicates)
from ._symbolic import (LOSSES as LOSSES, eigenmode_system as eigenmode_system, mode_flow as mode_flow,
                        reduce_mode as reduce_mode)

name = "noncontrastive"
title = "Non-contrastive (BYOL/SimSiam) eigenmode dynamics: Euclidean vs normalized cosine"
sources = ("Tian, Chen & Ganguli 2021, arXiv 2102.06810", "Bao 2023, arXiv 2309.16109")

__all__ = ["name", "title", "sources", "claim_names", "systems", "reproduce", "LOSSES", "eigenmode_system",
           "mode_flow", "reduce_mode", "matrix_flow", "alignment_system", "ode_system", "compiled_ode", "ode_solution",
           "ode_trajectory", "equilibria", "euclidean_fixed_points", "euclidean_critical_eta", "reduced_fixed_points",
           "cosine_fold_eta", "frozen_norms", "phase_grid", "continue_in_eta", "euclidean_fold_curve",
           "cosine_fold_curve", "symmetric_predictor_grid", "compiled_alignment", "alignment_solution", "tian_K",
           "simulate_sgd", "simulate_sgd_replicates", "simulate_matrices", "group_series", "check_hyper"]
