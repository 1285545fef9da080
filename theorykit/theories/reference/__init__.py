"""Reference theory: the pipeline checked on systems whose behaviour is known in closed form, and the
bifurcation normal forms the analysis commands are tried on.

Implements :class:`theorykit.theories.Theory` as a module: :data:`name`, :data:`title`, :data:`sources`,
:data:`claim_names`, :func:`systems` and :func:`reproduce`.
"""

from __future__ import annotations

from ._claims import CLAIM_NAMES as claim_names, reproduce as reproduce
from ._symbolic import (cubic_roots as cubic_roots, double_well as double_well, eigenmode_cubic as eigenmode_cubic,
                        hopf as hopf, pitchfork as pitchfork, reference_systems as systems,
                        saddle_node as saddle_node, transcritical as transcritical)

name = "reference"
title = "Pipeline on reference systems"
sources = ("closed forms: fixed points of p' = p (tau p - (1 + sigma2) p^2 - eta), bifurcation normal forms",)


__all__ = ["name", "title", "sources", "claim_names", "systems", "reproduce", "eigenmode_cubic", "saddle_node",
           "transcritical", "pitchfork", "hopf", "double_well", "cubic_roots"]
