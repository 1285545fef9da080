"""Quadrature rules for Gaussian averages ``E f(Z)``, ``Z ~ N(0, 1)``, shared by the theories' kernels.

Gauss-Hermite is exact for polynomials but crowds its nodes where the weight is large; for integrands that vary
on a length much below 1 (``tanh(s Z)`` with ``s`` above about 0.4) the trapezoid rule, whose error falls
geometrically with the width of the strip where the integrand is analytic, is the accurate one. Each theory
chooses its step for the accuracy it needs.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from .._jit import njit

#: the trapezoid rules sum over |z| <= GAUSSIAN_RADIUS standard deviations (the Gaussian tail beyond: 1e-16)
GAUSSIAN_RADIUS = 8.5


@lru_cache(maxsize=None)
def gauss_hermite(points: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights (summing to 1) of the ``points``-node Gauss-Hermite rule for ``E f(Z)``."""
    x, w = np.polynomial.hermite_e.hermegauss(points)
    return x, w / w.sum()


@njit(cache=True)
def gaussian_trapezoid(h, n):
    """Nodes ``k h`` (``k = -n..n``) and weights (``exp(-z²/2)``, normalised to sum 1) of the trapezoid rule for
    ``E f(Z)``."""
    nodes = np.empty(2 * n + 1)
    weights = np.empty(2 * n + 1)
    total = 0.0
    for k in range(2 * n + 1):
        z = (k - n) * h
        nodes[k] = z
        weights[k] = math.exp(-0.5 * z * z)
        total += weights[k]
    for k in range(2 * n + 1):
        weights[k] /= total
    return nodes, weights
