"""Stage 3b — analysis: equilibria, their stability, continuation (branches of equilibria, branch switching,
fold and Hopf curves in two parameters, limit cycles), phase diagrams, basins and plots.

The numeric routes work on a :class:`~theorykit.compile.CompiledSystem` only. The symbolic fixed-point
route (:func:`symbolic_fixed_points`) and the high-precision refinement (:func:`refine_fixed_point`) need
SymPy and mpmath and are imported on first use; the plotting functions import matplotlib on first use.
Two-parameter curves, branch switching and cycles use second (and third) derivatives of the right-hand side,
generated on first use by :func:`theorykit.compile.compile_derivatives`.
"""

from ._continuation import (Branch as Branch, SPECIAL_KINDS as SPECIAL_KINDS, SpecialPoint as SpecialPoint,
                            continue_branch as continue_branch)
from ._curves import (CODIM2_KINDS as CODIM2_KINDS, CURVE_KINDS as CURVE_KINDS, BifurcationCurve as BifurcationCurve,
                      CurvePoint as CurvePoint, HopfNormalForm as HopfNormalForm, continue_fold as continue_fold,
                      continue_hopf as continue_hopf, hopf_normal_form as hopf_normal_form)
from ._cycles import (CYCLE_KINDS as CYCLE_KINDS, CycleBranch as CycleBranch, CyclePoint as CyclePoint,
                      continue_cycles as continue_cycles)
from ._fixed_points import (KINDS as KINDS, FixedPoint as FixedPoint, classify_eigenvalues as classify_eigenvalues,
                            find_fixed_points as find_fixed_points, linearize as linearize)
from ._phase import (BasinMap as BasinMap, PhaseDiagram as PhaseDiagram, basin_map as basin_map,
                     load_result as load_result, nearest_attractor_classifier as nearest_attractor_classifier,
                     phase_diagram as phase_diagram, support_classifier as support_classifier)
from ._switching import switch_branch as switch_branch

_LAZY = {
    "symbolic_fixed_points": "._symbolic",
    "SymbolicFixedPoints": "._symbolic",
    "refine_fixed_point": "._symbolic",
    "RefinedFixedPoint": "._symbolic",
    "plot_phase_portrait": "._plots",
    "plot_bifurcation": "._plots",
    "plot_phase_diagram": "._plots",
    "plot_basins": "._plots",
    "plot_curves": "._plots",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "FixedPoint", "KINDS", "classify_eigenvalues", "find_fixed_points", "linearize",
    "Branch", "SpecialPoint", "SPECIAL_KINDS", "continue_branch", "switch_branch",
    "BifurcationCurve", "CurvePoint", "CURVE_KINDS", "CODIM2_KINDS", "continue_fold", "continue_hopf",
    "HopfNormalForm", "hopf_normal_form", "CycleBranch", "CyclePoint", "CYCLE_KINDS", "continue_cycles",
    "PhaseDiagram", "BasinMap", "phase_diagram", "basin_map", "load_result", "support_classifier",
    "nearest_attractor_classifier",
    *_LAZY,
]
