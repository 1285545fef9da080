"""Theory versus simulation: named claims, error curves and finite-size scaling fits."""

from ._cli import add_sweep_arguments as add_sweep_arguments, experiment_parser as experiment_parser
from ._cli import sweep_options as sweep_options
from ._claims import Claim as Claim, TheoryReport as TheoryReport
from ._scaling import PowerLawFit as PowerLawFit, fit_power_law as fit_power_law

__all__ = ["experiment_parser", "add_sweep_arguments", "sweep_options", "Claim", "TheoryReport", "PowerLawFit",
           "fit_power_law"]
