"""Barlow Twins at infinite width (arXiv 2411.11176): two-layer networks in NTK parametrisation.

``f(x) = M^(-1/2) V σ(W x)`` with K outputs, Gaussian initialisation, trained on the Barlow Twins loss of the
cross-correlation of two augmented views. The theory: as the width M grows the weights stay in a
width-independent ball, the NTK stays constant during training and the network follows its linearisation
(the kernel model). Stages:

* ``_symbolic`` (SymPy): loss, gradient flow, per-neuron and infinite-width NTK, kernel-model ODE; prints
  ``_generated.py`` (numba scalar functions);
* ``_kernels`` (numba): backpropagation, GD/SGD training, empirical NTK, arc-cosine and Gauss–Hermite
  kernels, function-space flows;
* ``_model``: validated public wrappers and data (Gaussian mixture; scikit-learn digits optionally);
* ``_experiment`` / ``_reproduce``: width sweeps, kernelised Barlow Twins and its generalisation bound
  (our derivation, in the form of the paper's Theorem 6.1 / Lemma 6.2 as summarised), claims and figures.

Example
-------
>>> from theorykit.theories import barlow_ntk as bn
>>> W, V = bn.init_params(d=16, M=512, K=2, seed=0)
>>> data = bn.gaussian_pairs(24, 16, radius=2.0, seed=1)
>>> run = bn.train_network(data.X, data.Xp, W, V, activation="tanh", lr=0.05, n_steps=200)
>>> bool(run.loss[-1] < run.loss[0])
True
"""

from ._model import (KernelFlowResult as KernelFlowResult, PairData as PairData, TrainResult as TrainResult,
                     augment as augment, barlow_loss as barlow_loss, cross_correlation as cross_correlation,
                     digits_pairs as digits_pairs, empirical_ntk as empirical_ntk, gaussian_pairs as gaussian_pairs,
                     infinite_width_ntk as infinite_width_ntk,
                     infinite_width_ntk_diag as infinite_width_ntk_diag, init_params as init_params,
                     kernel_flow as kernel_flow, kernel_gd as kernel_gd, loss_and_gradient as loss_and_gradient,
                     network_outputs as network_outputs, train_network as train_network)
from ._experiment import (FULL as FULL, QUICK as QUICK, KernelModelFit as KernelModelFit,
                          SweepConfig as SweepConfig, deviation_bound as deviation_bound,
                          feature_kernel_diag as feature_kernel_diag, fit_kernel_model as fit_kernel_model,
                          generalization_check as generalization_check, make_data as make_data,
                          pair_rademacher_trace as pair_rademacher_trace, run_width_sweep as run_width_sweep)
from ._reproduce import reproduce as reproduce

__all__ = ["reproduce", "SweepConfig", "QUICK", "FULL", "run_width_sweep", "generalization_check", "make_data",
           "fit_kernel_model", "KernelModelFit", "feature_kernel_diag", "pair_rademacher_trace", "deviation_bound",
           "init_params", "network_outputs", "cross_correlation", "barlow_loss", "loss_and_gradient",
           "empirical_ntk", "infinite_width_ntk", "infinite_width_ntk_diag", "train_network", "TrainResult",
           "kernel_flow", "kernel_gd", "KernelFlowResult", "augment", "gaussian_pairs", "digits_pairs", "PairData"]
