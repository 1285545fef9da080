"""The theories: each is a client of the generic pipeline that implements :class:`Theory`.

A theory is any object (usually its package module) with

* ``name`` — the key used on the command line (``theorykit reproduce --only NAME``);
* ``title`` — the report heading, written only there;
* ``sources`` — the papers it follows;
* ``claim_names`` — the names of every claim its ``reproduce`` may state (checked while it runs, and used
  to validate ``--tolerance`` before anything runs);
* ``systems()`` — its built-in ODE systems for the CLI (``theorykit systems``), name -> :class:`BuiltinSystem`;
* ``reproduce(study)`` — runs its checks into a :class:`theorykit.validate.Study`.

The built-in theories are listed in :data:`BUILTIN_THEORIES` (one line each); others join with
:func:`register_theory`. See ``theorykit/theories/README.md`` for the file template of a theory.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol, runtime_checkable

from ..errors import InvalidParameterError

if TYPE_CHECKING:
    from ..validate import Study


@dataclass(frozen=True)
class BuiltinSystem:
    """A named ODE system a theory offers to the CLI's analysis commands.

    ``build`` returns the :class:`~theorykit.derive.ODESystem`; ``params`` and ``y0`` are sensible defaults
    (mappings by name); ``description`` is one line for ``theorykit systems``; ``ranges`` suggests
    parameter ranges for continuation and phase diagrams.
    """

    name: str
    build: Callable[[], Any]
    params: dict[str, float]
    y0: dict[str, float]
    description: str = ""
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)


@runtime_checkable
class Theory(Protocol):
    """What ``theorykit reproduce`` and ``theorykit systems`` need of a theory (see the module docstring)."""

    name: str
    title: str
    sources: tuple[str, ...]
    claim_names: tuple[str, ...]

    def systems(self) -> Mapping[str, BuiltinSystem]: ...

    def reproduce(self, study: "Study") -> None: ...


#: the built-in theories in report order: name -> module implementing :class:`Theory` ("module:attribute"
#: for an object inside a module)
BUILTIN_THEORIES: dict[str, str] = {
    "reference": "theorykit.theories.reference",
    "noncontrastive": "theorykit.theories.noncontrastive",
    "closed_form_predictor": "theorykit.theories.closed_form_predictor",
    "contrastive_highdim": "theorykit.theories.contrastive_highdim",
    "barlow_ntk": "theorykit.theories.barlow_ntk",
    "imbalanced_pruning": "theorykit.theories.imbalanced_pruning",
}

_registered: dict[str, Theory] = {}


def register_theory(theory: Theory) -> Theory:
    """Add ``theory`` to the theories ``theorykit reproduce`` and ``theorykit systems`` know; returns it.

    Raises
    ------
    InvalidParameterError
        If ``theory`` lacks part of the :class:`Theory` protocol or its name is taken by another theory.
    """
    if not isinstance(theory, Theory):
        missing = [a for a in ("name", "title", "sources", "claim_names", "systems", "reproduce")
                   if not hasattr(theory, a)]
        raise InvalidParameterError(f"{theory!r} is not a Theory: it lacks {missing}")
    name = str(theory.name)
    if not name.isidentifier():
        raise InvalidParameterError(f"theory name must be an identifier, got {name!r}")
    if name in BUILTIN_THEORIES or (name in _registered and _registered[name] is not theory):
        raise InvalidParameterError(f"a theory named {name!r} is already registered")
    _registered[name] = theory
    return theory


def unregister_theory(name: str) -> None:
    """Remove a theory added with :func:`register_theory` (built-in theories stay)."""
    _registered.pop(name, None)


def theory_names() -> tuple[str, ...]:
    """Every known theory: the built-in ones in report order, then the registered ones."""
    return (*BUILTIN_THEORIES, *_registered)


def get_theory(name: str) -> Theory:
    """The theory called ``name`` (importing a built-in one on first use)."""
    if name in _registered:
        return _registered[name]
    if name not in BUILTIN_THEORIES:
        raise InvalidParameterError(f"unknown theory {name!r}; choose one of {', '.join(theory_names())}")
    module, _, attribute = BUILTIN_THEORIES[name].partition(":")
    loaded = importlib.import_module(module)
    return getattr(loaded, attribute) if attribute else loaded  # type: ignore[return-value]


def builtin_systems() -> dict[str, BuiltinSystem]:
    """Every theory's built-in systems, keyed ``"<theory>.<system>"``."""
    return {f"{name}.{key}": system for name in theory_names() for key, system in get_theory(name).systems().items()}


__all__ = ["Theory", "BuiltinSystem", "BUILTIN_THEORIES", "register_theory", "unregister_theory", "theory_names",
           "get_theory", "builtin_systems"]
