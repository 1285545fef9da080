"""Theory versus simulation: named claims, error curves and finite-size scaling fits."""

from ._cli import experiment_parser as experiment_parser
from ._claims import Claim as Claim, TheoryReport as TheoryReport
from ._scaling import PowerLawFit as PowerLawFit, fit_power_law as fit_power_law

__all__ = ["experiment_parser", "Claim", "TheoryReport", "PowerLawFit", "fit_power_law"]
