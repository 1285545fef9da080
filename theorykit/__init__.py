"""theorykit: derive, compile, analyse and validate the learning dynamics of self-supervised learning.

Pipeline (one way): model -> derive (SymPy) -> compile (numba) -> solve / analyse -> simulate -> validate.
"""

__version__ = "0.1.0"
