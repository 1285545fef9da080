r"""Non-contrastive learning with a closed-form predictor: DirectPred (Tian, Chen & Ganguli 2021, §4,
Eqs. 18-19) and the closed-form predictor with IsoLoss (Halvagal, Laborieux & Zenke 2023).

:mod:`._symbolic` derives the eigenvalue ODEs from the losses, :mod:`._analysis` compiles and solves them,
:mod:`._kernels` / :mod:`._simulate` run SGD on the networks, :mod:`._studies` compares the two,
:mod:`._figures` draws them and :mod:`._claims` states the claims. Implements :class:`theorykit.theories.Theory`.
"""

from __future__ import annotations

from ._analysis import (closed_form_predictor_systems as systems, compiled as compiled, ode_solution as ode_solution)
from ._claims import CLAIM_NAMES as claim_names, reproduce as reproduce
from ._simulate import group_series as group_series, simulate as simulate, simulate_replicates as simulate_replicates
from ._symbolic import (LOSSES as LOSSES, PREDICTORS as PREDICTORS, lambda_system as lambda_system,
                        mode_system as mode_system, transit_time as transit_time)

name = "closed_form_predictor"
title = "Closed-form predictor (DirectPred, IsoLoss): eigenvalue dynamics of a linear encoder"
sources = ("Tian, Chen & Ganguli 2021, arXiv 2102.06810, §4 (DirectPred)",
           "Halvagal, Laborieux & Zenke 2023, arXiv 2212.04858 (code: fmi-basel/implicit-var-reg)")

__all__ = ["name", "title", "sources", "claim_names", "systems", "reproduce", "LOSSES", "PREDICTORS", "mode_system",
           "lambda_system", "transit_time", "compiled", "ode_solution", "simulate",
           "simulate_replicates", "group_series"]
