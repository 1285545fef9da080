r"""Nonlinear contrastive learning in the high-dimensional limit (after Meng & Wang, arXiv 2406.06909).

Only the paper's abstract and TL;DR could be read. They give the qualitative claims this theory checks (a
McKean–Vlasov PDE and, under L2, closed ODEs for cosine similarities; learnability from an uninformative
start decided by the second moment of the hidden variable alone; higher moments shaping the basins;
independent augmentation noise hurting and negatively correlated noise helping). The model, the loss and
every equation below are **our reconstruction**, not the paper's (``derivations/contrastive_highdim.md`` §0
says what is the paper's and what is ours):

Data :math:`x = U c + \sqrt\eta\,a` with orthonormal features :math:`U \in \mathbb R^{n\times d}`, two
views :math:`x + \sigma\varepsilon^{(1,2)}` with noise correlation :math:`\rho`, a single-layer network
with odd activation (``tanh``), the pair loss :math:`-f(w^\top x^{(1)}) f(w^\top x^{(2)})` summed over
``K`` neurons, online SGD with step :math:`\tau/n` and L2 (or L1) regularisation.

Files: :mod:`._symbolic` derives the loss derivatives, the per-coordinate SDE, the closed ODEs and their
expansion at the uninformative state with the law of ``c`` through moment symbols (and holds the validated
hyper-parameters :class:`Hyper`); :mod:`._analysis` realises the closed ODEs by Gauss quadrature of the
compiled derivatives (:class:`ContrastiveODE`, a ``CompiledSystem`` for ``theorykit.solve`` /
``theorykit.analysis``) and analyses them; :mod:`._kernels` holds the numba quadrature and step kernels and
:mod:`._simulate` runs finite-n online SGD and the particle PDE as :class:`~theorykit.simulate.ParticleRun` s;
:mod:`._studies` are the experiments, :mod:`._figures` their figures and :mod:`._claims` the claims of
``theorykit reproduce``. The module implements :class:`theorykit.theories.Theory`.
"""

from __future__ import annotations

from ._analysis import (SMALL_Q_DEFAULTS as SMALL_Q_DEFAULTS, ContrastiveODE as ContrastiveODE,
                        Uninformative as Uninformative, basin_fractions as basin_fractions,
                        classify_selection as classify_selection, compiled_ode as compiled_ode,
                        contrastive_highdim_systems as systems, final_cosine_grid as final_cosine_grid,
                        gaussian_coefficients as gaussian_coefficients,
                        learnability_threshold as learnability_threshold, ode_solution as ode_solution,
                        uninformative_state as uninformative_state)
from ._claims import CLAIM_NAMES as claim_names, reproduce as reproduce, standard_laws as standard_laws
from ._simulate import (HiddenLaw as HiddenLaw, order_parameter_names as order_parameter_names,
                        order_parameters as order_parameters, simulate_pde as simulate_pde,
                        simulate_sgd as simulate_sgd, simulate_sgd_replicates as simulate_sgd_replicates)
from ._studies import (case_errors as case_errors, sgd_error_point as sgd_error_point,
                       sgd_error_points as sgd_error_points, sgd_error_study as sgd_error_study)
from ._symbolic import (Hyper as Hyper, closed_ode_abstract as closed_ode_abstract,
                        coordinate_sde as coordinate_sde, cubic_anisotropy as cubic_anisotropy,
                        integrand_system as integrand_system, linear_system as linear_system,
                        loss_derivatives as loss_derivatives, negative_term as negative_term,
                        small_q_expansion as small_q_expansion, stein_check as stein_check)

name = "contrastive_highdim"
title = "Nonlinear contrastive learning in the high-dimensional limit"
sources = ("Meng & Wang (arXiv 2406.06909)",)

__all__ = ["name", "title", "sources", "claim_names", "systems", "reproduce", "Hyper", "HiddenLaw", "standard_laws",
           "ContrastiveODE", "compiled_ode", "ode_solution", "Uninformative", "uninformative_state",
           "learnability_threshold", "classify_selection", "basin_fractions", "final_cosine_grid",
           "gaussian_coefficients", "SMALL_Q_DEFAULTS", "simulate_sgd", "simulate_sgd_replicates", "simulate_pde",
           "order_parameter_names", "order_parameters", "sgd_error_points", "sgd_error_point", "sgd_error_study",
           "case_errors",
           "loss_derivatives", "integrand_system", "negative_term", "stein_check", "coordinate_sde",
           "closed_ode_abstract", "small_q_expansion", "cubic_anisotropy", "linear_system"]
