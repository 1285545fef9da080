"""Theory versus simulation: named claims, error curves and finite-size scaling fits."""

from ._claims import Claim as Claim, TheoryReport as TheoryReport
from ._scaling import PowerLawFit as PowerLawFit, fit_power_law as fit_power_law

__all__ = ["Claim", "TheoryReport", "PowerLawFit", "fit_power_law"]
