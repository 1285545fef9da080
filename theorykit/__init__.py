"""theorykit: derive, compile, analyse and validate the learning dynamics of self-supervised learning.

Pipeline (one way): model -> derive (SymPy) -> compile (numba) -> solve / analyse -> simulate -> validate.

The main names are available from the top level and imported on first use, so that ``import
theorykit.solve`` does not pull in SymPy::

    from theorykit import ODESystem, gradient_flow, compile_system, find_fixed_points

``theorykit.solve`` and ``theorykit.sweep`` are always the subpackage / module; their functions of the same name
are imported from them: ``from theorykit.solve import solve``, ``from theorykit.sweep import sweep``.
"""

from __future__ import annotations

import importlib


def _read_version() -> str:
    """The version setuptools-scm wrote at build/install time (``_version.py``), else the installed metadata."""
    try:
        from ._version import version
    except ImportError:  # the source folder used without installing it
        from importlib.metadata import PackageNotFoundError, version as installed_version

        try:
            return installed_version("theorykit")
        except PackageNotFoundError:
            return "0+unknown"
    return version


__version__ = _read_version()

_LAZY = {
    "ODESystem": "derive", "make_system": "derive", "gradient_flow": "derive", "expectation": "derive",
    "Law": "derive", "moment_symbol": "derive", "cached_derivation": "derive",
    "compile_system": "compile", "CompiledSystem": "compile",
    "solve_ensemble": "solve", "Solution": "solve", "EnsembleSolution": "solve",
    "Status": "solve", "Threshold": "solve", "NormAbove": "solve",
    "find_fixed_points": "analysis", "continue_branch": "analysis", "phase_diagram": "analysis",
    "basin_map": "analysis", "FixedPoint": "analysis", "Branch": "analysis",
    "grid_points": "sweep", "SweepOptions": "sweep", "SweepResult": "sweep",
    "ParticleRun": "simulate", "run_particles": "simulate", "NoiseStream": "simulate",
    "Claim": "validate", "TheoryReport": "validate", "fit_power_law": "validate", "Study": "validate",
    "compare": "validate", "Comparison": "validate",
    "Theory": "theories", "BuiltinSystem": "theories", "register_theory": "theories",
}


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'theorykit' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


__all__ = ["__version__", *_LAZY]
