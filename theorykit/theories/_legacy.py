"""Temporary adapter: theories whose ``reproduce(outdir, quick=, seed=, processes=, scheduler=, store=)``
still returns a :class:`~theorykit.validate.TheoryReport` of their own, seen through the :class:`Theory`
protocol until they are ported to ``reproduce(study)``. Delete a theory's line here when it is ported."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Mapping

from . import BuiltinSystem


@dataclass(frozen=True)
class LegacyTheory:
    """A theory module with the old ``reproduce`` signature, adapted to :class:`Theory`."""

    name: str
    title: str
    sources: tuple[str, ...]
    claim_names: tuple[str, ...]

    def _module(self):
        return importlib.import_module(f"theorykit.theories.{self.name}")

    def systems(self) -> Mapping[str, BuiltinSystem]:
        builtin = getattr(self._module(), "builtin_systems", None)
        return builtin() if builtin is not None else {}

    def reproduce(self, study) -> None:
        report = self._module().reproduce(study.outdir, quick=study.quick, seed=study.seed,
                                          **study.sweep_options.kwargs())
        study.absorb(report)


contrastive_highdim = LegacyTheory(
    "contrastive_highdim", "Nonlinear contrastive learning in the high-dimensional limit",
    ("Meng & Wang (arXiv 2406.06909)",),
    ("jacobian_only_second_moment", "negative_pair_only_variance", "eigenvalues_equal_across_laws",
     "threshold_matches_sgd", "basins_depend_on_higher_moments", "independent_noise_degrades",
     "negative_correlation_improves", "negative_correlation_reduces_variance", "sgd_error_exponent",
     "ode_matches_sgd_n2000", "pde_matches_ode_L2", "pde_matches_sgd_L1"))
barlow_ntk = LegacyTheory(
    "barlow_ntk", "Barlow Twins at infinite width: NTK constancy", ("arXiv 2411.11176",),
    ("ntk_change_rate", "ntk_constant_at_infinite_width", "ntk_init_fluctuation_rate",
     "weights_in_width_independent_ball", "representation_gap_rate", "finite_time_convergence",
     "kernel_model_loss_agreement", "generalization_bound_holds", "generalization_bound_within_factor",
     "symbolic_gradient_matches_numba"))
