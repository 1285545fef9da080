"""Stage 4b — validate: theory versus simulation. Named claims, the :class:`Study` every theory's
``reproduce`` fills, ODE-vs-SGD comparisons and finite-size scaling fits."""

from ._claims import Claim as Claim, TheoryReport as TheoryReport
from ._compare import Comparison as Comparison, compare as compare
from ._figures import STYLE as STYLE, report_figure as report_figure
from ._scaling import PowerLawFit as PowerLawFit, fit_power_law as fit_power_law, nan_reduce as nan_reduce
from ._study import Study as Study, crash_claim as crash_claim

__all__ = ["Claim", "TheoryReport", "Study", "crash_claim", "Comparison", "compare", "report_figure", "STYLE",
           "PowerLawFit", "fit_power_law", "nan_reduce"]
