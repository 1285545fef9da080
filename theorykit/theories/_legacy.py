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
imbalanced_pruning = LegacyTheory(
    "imbalanced_pruning", "Contrastive learning under imbalanced data and magnitude pruning",
    ("Liao, Zhou, Zhang, Wang & Zhang (arXiv 2602.10357)",),
    ("projected_gradient_vs_monte_carlo", "stage1_time_vs_population_flow", "stage2_time_vs_population_flow",
     "stage3_time_vs_population_flow", "three_stages_detected", "stage_times_scale_as_1_over_eta",
     "minority_stage1_later_as_predicted", "minority_smaller_magnitude", "minority_fewer_neurons",
     "pruning_more_minority_neurons", "pruning_raises_minority_max_cosine", "pruning_lowers_downstream_error",
     "pruning_effect_predicted_by_population_flow"))
