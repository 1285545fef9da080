"""The built-in theories. Each module is a client of the generic pipeline and exposes

``reproduce(outdir: pathlib.Path, *, quick: bool = True, seed: int = 0) -> theorykit.validate.TheoryReport``

which derives, compiles, analyses, simulates and compares on a small default (``quick``) or at paper
scale, writing its figures into ``outdir``.
"""

from __future__ import annotations

import importlib

#: theory key -> (module, one-line title)
THEORIES: dict[str, tuple[str, str]] = {
    "noncontrastive": ("theorykit.theories.noncontrastive",
                       "Non-contrastive (BYOL/SimSiam) eigenmode dynamics: Euclidean vs normalized cosine"),
    "contrastive_highdim": ("theorykit.theories.contrastive_highdim",
                            "Nonlinear contrastive learning in the high-dimensional limit"),
    "barlow_ntk": ("theorykit.theories.barlow_ntk", "Barlow Twins at infinite width: NTK constancy"),
    "imbalanced_pruning": ("theorykit.theories.imbalanced_pruning",
                           "Contrastive learning under imbalanced data and magnitude pruning"),
}


def load_theory(name: str):
    """Import and return the module of theory ``name`` (one of :data:`THEORIES`)."""
    if name not in THEORIES:
        raise KeyError(f"unknown theory {name!r}; choose one of {', '.join(THEORIES)}")
    return importlib.import_module(THEORIES[name][0])
