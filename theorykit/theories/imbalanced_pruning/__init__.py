"""Contrastive learning under imbalanced data and magnitude pruning.

After Liao, Zhou, Zhang, Wang and Zhang, *Theoretical Analysis of Contrastive Learning under Imbalanced
Data: From Training Dynamics to a Pruning Solution* (arXiv:2602.10357, ICLR 2026): tokens ``x = Mz + xi`` in
``d1`` dimensions from ``d`` sparse majority and minority features, a Transformer-MLP encoder (identity
attention by default, BReLU neurons), InfoNCE with a stop-gradient, SGD, and magnitude pruning by the
paper's Algorithm 1 (a forward-pass mask recomputed every step, the gradient applied to every weight) or
once, permanently. See ``derivations/imbalanced_pruning.md`` for what is the paper's and what is ours.

Files: :mod:`._config` holds the settings of a run; :mod:`._symbolic` derives the population gradient of a
neuron, the softmax saturation and the coupled population flow (SymPy); :mod:`._analysis` compiles and solves
them, iterates the pruned population descent and detects the stages; :mod:`._kernels` holds the numba SGD step,
:mod:`._data` the data model and the encoder around it, and :mod:`._simulate` runs SGD as
:class:`~theorykit.simulate.ParticleRun` s and measures the paper's metrics of a trained run; :mod:`._studies`
are the experiments, :mod:`._figures` their figures and :mod:`._claims` the claims of ``theorykit reproduce``.
The module implements :class:`theorykit.theories.Theory`.
"""

from __future__ import annotations

from ._analysis import (compiled_network as compiled_network, compiled_slopes as compiled_slopes,
                        detect_stages as detect_stages, flow_params as flow_params, flow_solution as flow_solution,
                        imbalanced_pruning_systems as systems, learned_neurons as learned_neurons,
                        network_params as network_params, population_descent as population_descent,
                        projected_gradient as projected_gradient, stage1_rate as stage1_rate,
                        stage_time_scales as stage_time_scales, stage_times as stage_times)
from ._claims import CLAIM_NAMES as claim_names, reproduce as reproduce
from ._config import Config as Config, network_state_names as network_state_names
from ._data import (encode as encode, feature_matrix as feature_matrix,
                    loss_and_attention_grad as loss_and_attention_grad, loss_and_grad as loss_and_grad,
                    magnitude_prune as magnitude_prune, sample_pairs as sample_pairs)
from ._simulate import (COS_THRESHOLD as COS_THRESHOLD, downstream_mse as downstream_mse,
                        feature_metrics as feature_metrics, forward_weights as forward_weights,
                        network_trajectories as network_trajectories, positive_pair_cosine as positive_pair_cosine,
                        projection_metrics as projection_metrics, run_attention as run_attention,
                        run_config as run_config, simulate_replicates as simulate_replicates,
                        simulate_sgd as simulate_sgd, weights_at_prune as weights_at_prune)
from ._studies import (default_config as default_config, evaluate as evaluate, grid_study as grid_study,
                       mc_gradient_check as mc_gradient_check, pruning_flow_effect as pruning_flow_effect,
                       stage_summary as stage_summary)
from ._symbolic import (population_gradient as population_gradient, saturation_factor as saturation_factor,
                        slope_system as slope_system)

name = "imbalanced_pruning"
title = "Contrastive learning under imbalanced data and magnitude pruning"
sources = ("Liao, Zhou, Zhang, Wang & Zhang (arXiv 2602.10357)",)

__all__ = ["name", "title", "sources", "claim_names", "systems", "reproduce", "Config", "network_state_names",
           "population_gradient", "saturation_factor", "slope_system", "compiled_slopes", "compiled_network",
           "flow_params", "network_params", "projected_gradient", "flow_solution", "population_descent",
           "stage_time_scales", "stage1_rate", "detect_stages", "learned_neurons", "stage_times", "feature_matrix",
           "sample_pairs", "encode", "loss_and_grad", "loss_and_attention_grad", "magnitude_prune", "simulate_sgd",
           "simulate_replicates", "run_config", "forward_weights", "weights_at_prune", "run_attention",
           "network_trajectories", "COS_THRESHOLD", "default_config", "projection_metrics", "feature_metrics",
           "positive_pair_cosine", "downstream_mse", "evaluate", "pruning_flow_effect", "mc_gradient_check",
           "stage_summary", "grid_study"]
