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


imbalanced_pruning = LegacyTheory(
    "imbalanced_pruning", "Contrastive learning under imbalanced data and magnitude pruning",
    ("Liao, Zhou, Zhang, Wang & Zhang (arXiv 2602.10357)",),
    ("projected_gradient_vs_monte_carlo", "stage1_time_vs_population_flow", "stage2_time_vs_population_flow",
     "stage3_time_vs_population_flow", "three_stages_detected", "stage_times_scale_as_1_over_eta",
     "minority_stage1_later_as_predicted", "minority_smaller_magnitude", "minority_fewer_neurons",
     "pruning_more_minority_neurons", "pruning_raises_minority_max_cosine", "pruning_lowers_downstream_error",
     "hard_pruning_effect_predicted_by_population_descent", "minority_coefficient_independent_of_eps",
     "specialised_neurons_scale_as_m_over_d", "stage1_d1_exponent_vs_population_flow"))
