"""Contrastive learning under imbalanced data and magnitude pruning.

After Liao, Zhou, Zhang, Wang and Zhang, *Theoretical Analysis of Contrastive Learning under Imbalanced
Data: From Training Dynamics to a Pruning Solution* (arXiv:2602.10357): tokens from a sparse-coding model
with majority and minority features, a Transformer-MLP encoder (single-head attention, fixed or trained, and
BReLU neurons), InfoNCE with a stop-gradient, SGD, and magnitude pruning part-way through training.

Modules: :mod:`._kernels` (numba), :mod:`._model` (data, encoder, training, pruning, metrics),
:mod:`._theory` (SymPy population gradient and softmax saturation, compiled coupled flow, stage
detection), :mod:`._experiments`
(sweeps, claims, figures, :func:`reproduce`).
"""

from ._experiments import default_config as default_config, reproduce as reproduce, stage_summary as stage_summary
from ._experiments import sweep as sweep, mc_gradient_check as mc_gradient_check, evaluate as evaluate
from ._experiments import pruning_flow_effect as pruning_flow_effect
from ._model import (COS_THRESHOLD as COS_THRESHOLD, Config as Config, Run as Run, cosines as cosines,
                     downstream_mse as downstream_mse, encode as encode, feature_matrix as feature_matrix,
                     feature_metrics as feature_metrics, loss_and_attention_grad as loss_and_attention_grad,
                     loss_and_grad as loss_and_grad,
                     magnitude_prune as magnitude_prune, positive_pair_cosine as positive_pair_cosine,
                     projection_metrics as projection_metrics,
                     sample_pairs as sample_pairs, train as train)
from ._theory import (derive as derive, detect_stages as detect_stages, learned_neurons as learned_neurons,
                      population_flow as population_flow, projected_gradient as projected_gradient,
                      saturation_factor as saturation_factor, slope_system as slope_system,
                      stage_time_scales as stage_time_scales, stage_times as stage_times)

__all__ = ["reproduce", "default_config", "stage_summary", "sweep", "mc_gradient_check", "evaluate",
           "pruning_flow_effect", "projection_metrics",
           "COS_THRESHOLD", "Config", "Run", "cosines", "downstream_mse", "encode", "feature_matrix",
           "feature_metrics", "loss_and_attention_grad", "loss_and_grad", "magnitude_prune",
           "positive_pair_cosine", "sample_pairs", "train",
           "derive", "detect_stages", "learned_neurons", "population_flow", "projected_gradient",
           "saturation_factor", "slope_system", "stage_time_scales", "stage_times"]
