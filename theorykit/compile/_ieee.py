"""IEEE arithmetic for numpy-backend generated code: ``x/0 -> inf``, ``sqrt(-1) -> nan``, no exceptions.

numba-backend functions are compiled with ``error_model="numpy"``, so bad arithmetic yields inf/nan, which the
solvers and analyses report as a status. Python's ``math`` module and Python floats raise instead
(``ZeroDivisionError``, ``ValueError: math domain error``, ``OverflowError``). :func:`make_ieee` makes a loaded
numpy-backend module behave like its numba twin, so ``csys.rhs(...)`` returns the same inf/nan on both backends:

* its ``math`` is :data:`IEEE_MATH`: each function tries :mod:`math` first (fast, identical on finite results) and
  falls back to the numpy ufunc (or :mod:`scipy.special` function) of the same meaning when ``math`` raises; it
  returns ``np.float64``, so that the arithmetic on its result is IEEE too;
* its functions run under ``np.errstate(all="ignore")`` with Python-float arguments (the time ``t``) turned into
  ``np.float64``, whose division by zero gives ±inf or nan instead of raising.
"""

from __future__ import annotations

import functools
import math
from types import SimpleNamespace
from typing import Any, Callable

import numpy as np

#: math functions whose numpy / scipy.special counterpart has another name
_RENAMED = {"acos": "arccos", "asin": "arcsin", "atan": "arctan", "acosh": "arccosh", "asinh": "arcsinh",
            "atanh": "arctanh", "atan2": "arctan2", "pow": "power", "lgamma": "gammaln"}
_ARITHMETIC_ERRORS = (ValueError, OverflowError, ZeroDivisionError)


def _ieee_counterpart(name: str) -> Callable | None:
    """The numpy ufunc, else the scipy.special function, computing ``math.<name>`` in IEEE arithmetic."""
    target = _RENAMED.get(name, name)
    fn = getattr(np, target, None)
    if isinstance(fn, np.ufunc):
        return fn
    import scipy.special  # only on the rare failing call: keeps importing the compile stage light

    fn = getattr(scipy.special, target, None)
    return fn if isinstance(fn, np.ufunc) else None


def _guarded(name: str) -> Callable:
    fast = getattr(math, name)

    @functools.wraps(fast)
    def ieee(*args):
        try:  # a numpy scalar, so that later arithmetic on it is IEEE as well (0.5 / sqrt(0.0) -> inf)
            return np.float64(fast(*args))
        except _ARITHMETIC_ERRORS:
            slow = _ieee_counterpart(name)
            if slow is None:
                return np.float64(math.nan)
            with np.errstate(all="ignore"):
                return np.float64(slow(*args))

    return ieee


#: :mod:`math` with IEEE results instead of exceptions (constants as they are)
IEEE_MATH = SimpleNamespace(**{name: _guarded(name) if callable(value) else value
                               for name, value in vars(math).items() if not name.startswith("_")})


def _ieee_call(fn: Callable) -> Callable:
    @functools.wraps(fn)
    def call(*args):
        with np.errstate(all="ignore"):
            return fn(*(np.float64(a) if type(a) is float else a for a in args))

    return call


def make_ieee(module: Any) -> Any:
    """Make the loaded numpy-backend generated ``module`` compute in IEEE arithmetic (in place; returned)."""
    module.math = IEEE_MATH
    for name, value in list(vars(module).items()):
        if name.endswith("_into") and callable(value):
            setattr(module, name, _ieee_call(value))
    return module
