"""Stage 3a — solve: integrate a :class:`~theorykit.compile.CompiledSystem` (one trajectory or an ensemble).

Never imports SymPy: it relies only on the compiled system's numeric interface (``rhs_into``,
``jac_into``, ``observed_into``, ``diffusion_into``, names and packing).
"""

from ._ensemble import (ENSEMBLE_METHODS as ENSEMBLE_METHODS, available_memory as available_memory,
                        check_memory as check_memory, ensemble_bytes as ensemble_bytes,
                        solve_ensemble as solve_ensemble)
from ._events import NormAbove as NormAbove, Threshold as Threshold, pack_events as pack_events
from ._solution import (DenseOutput as DenseOutput, EnsembleSolution as EnsembleSolution,
                        EventRecord as EventRecord, Solution as Solution, Status as Status)
from ._solve import METHODS as METHODS, solve as solve

__all__ = ["solve", "solve_ensemble", "Solution", "EnsembleSolution", "Status", "EventRecord", "DenseOutput",
           "Threshold", "NormAbove", "pack_events", "METHODS", "ENSEMBLE_METHODS", "available_memory", "check_memory",
           "ensemble_bytes"]
