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

Pipeline: :mod:`._symbolic` derives the loss derivatives, the per-coordinate SDE, the closed ODEs and their
expansion at the uninformative state with the law of ``c`` through moment symbols; the derivatives are
compiled with ``compile_system`` and averaged by Gauss quadrature in :mod:`._kernels`
(:class:`ContrastiveODE` is a ``CompiledSystem`` for ``theorykit.solve`` / ``theorykit.analysis``);
:func:`simulate_sgd` and :func:`simulate_pde` are the finite-n and particle-PDE checks.
"""

from __future__ import annotations

from ._analysis import (Uninformative, basin_fractions, classify_selection, final_cosine_grid,
                        gaussian_coefficients, learnability_threshold, ode_trajectory, sgd_errors, uninformative_state)
from ._model import (ContrastiveODE, HiddenLaw, Hyper, Trajectory, simulate_pde, simulate_sgd)
from ._symbolic import (closed_ode_abstract, coordinate_sde, cubic_anisotropy, integrand_system, linear_system,
                        loss_derivatives, negative_term, small_q_expansion, stein_check)


def standard_laws() -> dict[str, HiddenLaw]:
    """The laws of ``c`` used in the report, all with ``<c²> = 1``."""
    return {"rademacher": HiddenLaw.rademacher(), "uniform": HiddenLaw.uniform(), "gaussian": HiddenLaw.gaussian(),
            "sparse_0.5": HiddenLaw.sparse_ternary(0.5), "sparse_0.25": HiddenLaw.sparse_ternary(0.25),
            "sparse_0.1": HiddenLaw.sparse_ternary(0.1)}


#: Gaussian coefficients of the tanh ODEs at the uninformative state for tau = 1, lambda = 0.2, sigma = 1,
#: rho = eta = 0 (Q_star = 0.91405), with Rademacher moments; the defaults of the ``small_q`` system
SMALL_Q_DEFAULTS = {"<c^2>": 1.0, "<c^4>": 1.0, "G_1": -0.77315, "G_3": 1.9294, "B_0": 0.0, "B_2": 0.9647,
                    "D_0": 0.36562, "D_2": -0.00965, "lambda": 0.2, "tau": 1.0}


def builtin_systems():
    """Systems for the CLI analysis commands: the exact linear-activation ODEs and the cubic expansion of
    the tanh ODEs at the uninformative state (law through ``<c^2>``, ``<c^4>``)."""
    from .. import BuiltinSystem

    def small_q():
        return small_q_expansion(2, 3)["system"]

    return {
        "linear": BuiltinSystem(
            "linear", lambda: linear_system(2),
            {"<c^2>": 1.0, "beta": 0.0, "eta": 0.0, "lambda": 2.5, "rho": 0.0, "sigma": 0.5, "tau": 0.5},
            {"q_1": 0.3, "q_2": 0.2, "Q": 1.0},
            "contrastive ODEs (q_1, q_2, Q) for linear activation: exact, closed",
            {"sigma": (0.0, 1.5), "rho": (-1.0, 1.0), "lambda": (1.0, 4.0)}),
        "small_q": BuiltinSystem(
            "small_q", small_q,
            # gaussian_coefficients at tau = 1, lambda = 0.2, sigma = 1, rho = 0, Q = Q_star (checked by a test)
            dict(SMALL_Q_DEFAULTS),
            {"q_1": 0.05, "q_2": 0.03, "Q": 0.91405},
            "cubic expansion of the contrastive ODEs at q = 0 (Gaussian coefficients as parameters)",
            {"<c^4>": (1.0, 10.0), "lambda": (0.0, 1.0)}),
    }


def reproduce(outdir, *, quick: bool = True, seed: int = 0, **sweep_options):
    """Derive, compile, analyse, simulate and compare; write figures into ``outdir``. See
    :func:`._reproduce.reproduce` (``sweep_options``: ``processes``, ``scheduler``, ``store``)."""
    from ._reproduce import reproduce as _r

    return _r(outdir, quick=quick, seed=seed, **sweep_options)


__all__ = ["ContrastiveODE", "HiddenLaw", "Hyper", "Trajectory", "Uninformative", "simulate_sgd", "simulate_pde",
           "ode_trajectory", "uninformative_state", "learnability_threshold", "basin_fractions",
           "classify_selection", "final_cosine_grid", "gaussian_coefficients", "sgd_errors", "standard_laws", "builtin_systems", "reproduce",
           "loss_derivatives", "integrand_system", "negative_term", "stein_check", "coordinate_sde", "closed_ode_abstract",
           "small_q_expansion", "cubic_anisotropy", "linear_system"]
