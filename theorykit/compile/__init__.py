"""Stage 2 — compile: an :class:`~theorykit.derive.ODESystem` into fast numeric code (numba or numpy)."""

from ._codegen import generate_function_module as generate_function_module, generate_source as generate_source
from ._derivatives import (CompiledDerivatives as CompiledDerivatives,
                           compile_derivatives as compile_derivatives)
from ._compiled import BACKENDS as BACKENDS, CompiledSystem as CompiledSystem, compile_system as compile_system

__all__ = ["compile_system", "CompiledSystem", "generate_source", "BACKENDS", "compile_derivatives",
           "CompiledDerivatives", "generate_function_module"]
