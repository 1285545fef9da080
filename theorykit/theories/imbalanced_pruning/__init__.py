"""Contrastive learning under imbalanced data and magnitude pruning.

After Liao, Zhou, Zhang, Wang and Zhang, *Theoretical Analysis of Contrastive Learning under Imbalanced
Data: From Training Dynamics to a Pruning Solution* (arXiv:2602.10357, ICLR 2026): tokens ``x = Mz + xi`` in
``d1`` dimensions from ``d`` sparse majority and minority features, a Transformer-MLP encoder (identity
attention by default, BReLU neurons), InfoNCE with a stop-gradient, SGD, and magnitude pruning by the
paper's Algorithm 1 (a forward-pass mask recomputed every step, the gradient applied to every weight) or
once, permanently.

Modules: :mod:`._config` (settings), :mod:`._kernels` and :mod:`._kernels_attention` (numba), :mod:`._model`
(data, encoder, training, pruning; replicates in threads through :func:`theorykit.simulate.map_threads`),
:mod:`._metrics` (the paper's metrics), :mod:`._theory` (SymPy population gradient, softmax saturation,
stage-time scales), :mod:`._flow` (coupled population flow, its discrete form with the pruning mask),
:mod:`._stages` (stage detection), :mod:`._sweeps` (sweeps), :mod:`._claims` and :mod:`._figures`, and
:mod:`._reproduce` (:func:`reproduce`).
"""

from ._config import Config as Config
from ._flow import (population_descent as population_descent, population_flow as population_flow,
                    projected_gradient as projected_gradient)
from ._metrics import (COS_THRESHOLD as COS_THRESHOLD, cosines as cosines, downstream_mse as downstream_mse,
                       feature_metrics as feature_metrics, positive_pair_cosine as positive_pair_cosine,
                       projection_metrics as projection_metrics)
from ._model import (Run as Run, encode as encode, feature_matrix as feature_matrix,
                     loss_and_attention_grad as loss_and_attention_grad, loss_and_grad as loss_and_grad,
                     magnitude_prune as magnitude_prune, sample_pairs as sample_pairs, train as train,
                     train_replicates as train_replicates)
from ._reproduce import default_config as default_config, reproduce as reproduce
from ._stages import (detect_stages as detect_stages, learned_neurons as learned_neurons,
                      stage_summary as stage_summary, stage_times as stage_times)
from ._sweeps import (evaluate as evaluate, mc_gradient_check as mc_gradient_check,
                      pruning_flow_effect as pruning_flow_effect, sweep as sweep)
from ._theory import (derive as derive, saturation_factor as saturation_factor, slope_system as slope_system,
                      stage1_rate as stage1_rate, stage_time_scales as stage_time_scales)

__all__ = ["reproduce", "default_config", "stage_summary", "sweep", "mc_gradient_check", "evaluate",
           "pruning_flow_effect", "projection_metrics", "COS_THRESHOLD", "Config", "Run", "cosines",
           "downstream_mse", "encode", "feature_matrix", "feature_metrics", "loss_and_attention_grad",
           "loss_and_grad", "magnitude_prune", "positive_pair_cosine", "sample_pairs", "train", "train_replicates",
           "derive", "detect_stages", "learned_neurons", "population_descent", "population_flow",
           "projected_gradient", "saturation_factor", "slope_system", "stage1_rate", "stage_time_scales",
           "stage_times"]
