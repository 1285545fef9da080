"""Barlow Twins at infinite width (arXiv 2411.11176): two-layer networks in NTK parametrisation.

``f(x) = M^(-1/2) V σ(W x)`` with K outputs, Gaussian initialisation, trained on the Barlow Twins loss of the
cross-correlation of two augmented views. The theory: as the width M grows the weights stay in a
width-independent ball, the NTK stays constant during training and the network follows its linearisation
(the kernel model).

Files: :mod:`._symbolic` holds the loss, gradient flow, per-neuron and infinite-width NTK and kernel-model
ODE (SymPy) and the scalar functions printed into ``_generated.py``; :mod:`._analysis` the infinite-width
NTK, the kernel-model flow as a compiled system and our generalisation bound; :mod:`._kernels` the numba
kernels and :mod:`._simulate` the training of the network and of its linearisation as
:class:`~theorykit.simulate.ParticleRun` s, and the data; :mod:`._studies` the experiments, :mod:`._figures`
their figures and :mod:`._claims` the claims of ``theorykit reproduce``. The module implements
:class:`theorykit.theories.Theory`.

Example
-------
>>> from theorykit.theories import barlow_ntk as bn
>>> W, V = bn.init_params(d=16, M=512, K=2, seed=0)
>>> data = bn.gaussian_pairs(24, 16, radius=2.0, seed=1)
>>> run = bn.simulate_network(data.X, data.Xp, W, V, activation="tanh", lr=0.05, n_steps=200)
>>> loss = run.observable("loss")
>>> bool(loss[-1] < loss[0])
True
"""

from __future__ import annotations

from ._analysis import (barlow_ntk_systems as systems, compiled_ode as compiled_ode, deviation_bound as deviation_bound,
                        feature_kernel_diag as feature_kernel_diag, infinite_width_ntk as infinite_width_ntk,
                        infinite_width_ntk_diag as infinite_width_ntk_diag, ode_solution as ode_solution,
                        pair_rademacher_trace as pair_rademacher_trace)
from ._claims import CLAIM_NAMES as claim_names, reproduce as reproduce
from ._simulate import (PairData as PairData, augment as augment, barlow_loss as barlow_loss,
                        cross_correlation as cross_correlation, digits_pairs as digits_pairs,
                        empirical_ntk as empirical_ntk, gaussian_pairs as gaussian_pairs, init_params as init_params,
                        loss_and_gradient as loss_and_gradient, network_outputs as network_outputs,
                        simulate_kernel_model as simulate_kernel_model, simulate_network as simulate_network,
                        simulate_network_replicates as simulate_network_replicates)
from ._studies import (FULL as FULL, QUICK as QUICK, KernelModelFit as KernelModelFit, SweepConfig as SweepConfig,
                       fit_kernel_model as fit_kernel_model, generalization_check as generalization_check,
                       make_data as make_data, run_width_sweep as run_width_sweep)

name = "barlow_ntk"
title = "Barlow Twins at infinite width: NTK constancy"
sources = ("Fleissner, Anil & Ghoshdastidar 2024, arXiv 2411.11176",)

__all__ = ["name", "title", "sources", "claim_names", "systems", "reproduce", "SweepConfig", "QUICK", "FULL",
           "run_width_sweep", "generalization_check", "make_data", "fit_kernel_model", "KernelModelFit",
           "feature_kernel_diag", "pair_rademacher_trace", "deviation_bound", "init_params", "network_outputs",
           "cross_correlation", "barlow_loss", "loss_and_gradient", "empirical_ntk", "infinite_width_ntk",
           "infinite_width_ntk_diag", "simulate_network", "simulate_network_replicates", "simulate_kernel_model",
           "compiled_ode", "ode_solution", "augment", "gaussian_pairs", "digits_pairs", "PairData"]
