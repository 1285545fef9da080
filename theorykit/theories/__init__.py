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


from dataclasses import dataclass, field  # noqa: E402
from typing import Any, Callable  # noqa: E402


@dataclass(frozen=True)
class BuiltinSystem:
    """A named ODE system a theory offers to the CLI's analysis commands.

    ``build`` returns the :class:`~theorykit.derive.ODESystem`; ``params`` and ``y0`` are sensible defaults
    (mappings by name); ``description`` is one line for ``theorykit systems``.
    """

    name: str
    build: Callable[[], Any]
    params: dict[str, float]
    y0: dict[str, float]
    description: str = ""
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)


def builtin_systems() -> dict[str, BuiltinSystem]:
    """Every built-in system, keyed ``"<theory>.<name>"``: the reference systems plus those each theory
    module lists in its ``builtin_systems()`` function (theories without one contribute nothing)."""
    from . import reference

    found = {f"reference.{k}": v for k, v in reference.builtin_systems().items()}
    for key in THEORIES:
        try:
            module = load_theory(key)
        except ImportError:
            continue
        fn = getattr(module, "builtin_systems", None)
        if fn is not None:
            found.update({f"{key}.{k}": v for k, v in fn().items()})
    return found
