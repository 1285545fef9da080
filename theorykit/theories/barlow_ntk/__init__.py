"""Barlow Twins at infinite width: two-layer networks in NTK parametrisation and their kernel limit."""

from ._model import (KernelFlowResult as KernelFlowResult, PairData as PairData, TrainResult as TrainResult,
                     augment as augment, barlow_loss as barlow_loss, cross_correlation as cross_correlation,
                     digits_pairs as digits_pairs, empirical_ntk as empirical_ntk, gaussian_pairs as gaussian_pairs,
                     infinite_width_ntk as infinite_width_ntk,
                     infinite_width_ntk_diag as infinite_width_ntk_diag, init_params as init_params,
                     kernel_flow as kernel_flow, kernel_gd as kernel_gd, loss_and_gradient as loss_and_gradient,
                     network_outputs as network_outputs, train_network as train_network)
from ._experiment import (FULL as FULL, QUICK as QUICK, SweepConfig as SweepConfig,
                          generalization_check as generalization_check, make_data as make_data,
                          run_width_sweep as run_width_sweep)
from ._reproduce import reproduce as reproduce

__all__ = ["reproduce", "SweepConfig", "QUICK", "FULL", "run_width_sweep", "generalization_check", "make_data",
           "init_params", "network_outputs", "cross_correlation", "barlow_loss", "loss_and_gradient",
           "empirical_ntk", "infinite_width_ntk", "infinite_width_ntk_diag", "train_network", "TrainResult",
           "kernel_flow", "kernel_gd", "KernelFlowResult", "augment", "gaussian_pairs", "digits_pairs", "PairData"]
