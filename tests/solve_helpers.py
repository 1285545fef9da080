"""The reference systems of the solve-stage tests, as hand-written ``CompiledSystem`` s.

Each reference right-hand side is written once as a plain Python function and wrapped with
``numba.njit`` for the numba backend, so both backends run exactly the same formula. Closed-form
solutions are independent of the solver.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numba
import numpy as np
import sympy as sp

from theorykit.compile import CompiledSystem
from theorykit.derive import ODESystem

BACKENDS = ("numba", "numpy")
#: Methods of ``solve`` for deterministic systems, with the options each needs.
ALL_METHODS = ("dopri5", "rk4", "bdf", "radau", "lsoda")


def method_options(method: str, dt: float = 1e-3) -> dict:
    """Keyword options so that ``method`` reaches about 1e-8 accuracy on the smooth reference systems."""
    return {"dt": dt} if method in ("rk4", "euler_maruyama") else {"rtol": 1e-10, "atol": 1e-12}


def _names_only(ref: "Reference") -> ODESystem:
    """An :class:`ODESystem` that only names the reference's states, parameters, observables and noise (its
    right-hand sides are undefined functions of t): the reference's Python functions compute them."""
    t = sp.Symbol("t", real=True)
    noise = None
    if ref.diffusion is not None:
        noise = sp.Matrix(len(ref.states), ref.n_noise, lambda i, j: sp.Function(f"g_{i}_{j}")(t))
    return ODESystem(t=t, states=ref.states, rhs=[sp.Function(f"f_{n}")(t) for n in ref.states], params=ref.params,
                     observed={n: sp.Function(f"obs_{n}")(t) for n in ref.observables}, noise=noise, name=ref.name)


@dataclass
class Reference:
    """A reference system: its functions, default data and (if known) closed-form solution."""

    name: str
    states: tuple
    params: tuple
    rhs: Callable
    jac: Callable
    y0: np.ndarray
    p: np.ndarray
    t_span: tuple
    exact: Callable | None = None  # exact(t [n_t], y0, p) -> [n_t, n_state]
    observed: Callable | None = None
    observables: tuple = ()
    diffusion: Callable | None = None
    n_noise: int = 0
    _cache: dict = field(default_factory=dict, repr=False)

    def compiled(self, backend: str = "numba") -> CompiledSystem:
        """The reference's functions (``numba.njit``-ed for the numba backend) as a compiled system."""
        if backend not in self._cache:
            wrap = numba.njit(cache=False) if backend == "numba" else (lambda f: f)
            obs = self.observed or _no_observed
            self._cache[backend] = CompiledSystem.from_functions(
                _names_only(self), rhs_into=wrap(self.rhs), jac_into=wrap(self.jac), observed_into=wrap(obs),
                diffusion_into=wrap(self.diffusion) if self.diffusion else None, backend=backend,
                source=f"reference system {self.name!r} of tests/solve_helpers.py")
        return self._cache[backend]


def _no_observed(t, y, p, out):
    return None


# --- exponential decay  y' = -k y ----------------------------------------------------------------
def _decay_rhs(t, y, p, out):
    out[0] = -p[0] * y[0]


def _decay_jac(t, y, p, out):
    out[0, 0] = -p[0]


def _decay_obs(t, y, p, out):
    out[0] = 0.5 * y[0] * y[0]


# --- logistic  y' = r y (1 - y / K) -------------------------------------------------------------
def _logistic_rhs(t, y, p, out):
    out[0] = p[0] * y[0] * (1.0 - y[0] / p[1])


def _logistic_jac(t, y, p, out):
    out[0, 0] = p[0] * (1.0 - 2.0 * y[0] / p[1])


# --- harmonic oscillator  x' = v, v' = -w^2 x ----------------------------------------------------
def _osc_rhs(t, y, p, out):
    out[0] = y[1]
    out[1] = -p[0] * p[0] * y[0]


def _osc_jac(t, y, p, out):
    out[0, 0] = 0.0
    out[0, 1] = 1.0
    out[1, 0] = -p[0] * p[0]
    out[1, 1] = 0.0


# --- Robertson (stiff) ---------------------------------------------------------------------------
def _rob_rhs(t, y, p, out):
    out[0] = -p[0] * y[0] + p[1] * y[1] * y[2]
    out[1] = p[0] * y[0] - p[1] * y[1] * y[2] - p[2] * y[1] * y[1]
    out[2] = p[2] * y[1] * y[1]


def _rob_jac(t, y, p, out):
    out[0, 0] = -p[0]
    out[0, 1] = p[1] * y[2]
    out[0, 2] = p[1] * y[1]
    out[1, 0] = p[0]
    out[1, 1] = -p[1] * y[2] - 2.0 * p[2] * y[1]
    out[1, 2] = -p[1] * y[1]
    out[2, 0] = 0.0
    out[2, 1] = 2.0 * p[2] * y[1]
    out[2, 2] = 0.0


def robertson_rhs_numpy(t, y, k1=0.04, k2=1e4, k3=3e7):
    """Robertson right-hand side written independently (for scipy reference solves)."""
    return np.array([-k1 * y[0] + k2 * y[1] * y[2], k1 * y[0] - k2 * y[1] * y[2] - k3 * y[1] ** 2, k3 * y[1] ** 2])


# --- eigenmode pair (alpha_p = 1): p' = s (tau - c p) - eta p, s' = 2 p s (tau - c p) - 2 eta s ---------
def _mode_rhs(t, y, p, out):
    g = p[0] - (1.0 + p[1]) * y[0]
    out[0] = y[1] * g - p[2] * y[0]
    out[1] = 2.0 * y[0] * y[1] * g - 2.0 * p[2] * y[1]


def _mode_jac(t, y, p, out):
    c = 1.0 + p[1]
    g = p[0] - c * y[0]
    out[0, 0] = -c * y[1] - p[2]
    out[0, 1] = g
    out[1, 0] = 2.0 * y[1] * g - 2.0 * c * y[0] * y[1]
    out[1, 1] = 2.0 * y[0] * g - 2.0 * p[2]


def _mode_obs(t, y, p, out):
    out[0] = y[1] - y[0] * y[0]  # decays as exp(-2 eta t)


# --- blow-up  y' = y^2 --------------------------------------------------------------------------
def _square_rhs(t, y, p, out):
    out[0] = y[0] * y[0]


def _square_jac(t, y, p, out):
    out[0, 0] = 2.0 * y[0]


# --- rhs that becomes nan for t > 1:  y' = sqrt(1 - t) ----------------------------------------------
def _sqrt_rhs(t, y, p, out):
    out[0] = np.sqrt(1.0 - t)


def _sqrt_jac(t, y, p, out):
    out[0, 0] = 0.0


# --- Ornstein–Uhlenbeck SDE  dx = -theta x dt + sigma dW ------------------------------------------
def _ou_rhs(t, y, p, out):
    out[0] = -p[0] * y[0]


def _ou_diff(t, y, p, out):
    out[0, 0] = p[1]


def _ou_jac(t, y, p, out):
    out[0, 0] = -p[0]


def _decay_exact(t, y0, p):
    return (y0[0] * np.exp(-p[0] * t))[:, None]


def _logistic_exact(t, y0, p):
    r, k = p
    return (k / (1.0 + (k / y0[0] - 1.0) * np.exp(-r * t)))[:, None]


def _osc_exact(t, y0, p):
    w = p[0]
    x = y0[0] * np.cos(w * t) + y0[1] / w * np.sin(w * t)
    v = -y0[0] * w * np.sin(w * t) + y0[1] * np.cos(w * t)
    return np.stack([x, v], axis=1)


REFERENCES = {
    "decay": Reference("decay", ("x",), ("k",), _decay_rhs, _decay_jac, np.array([1.0]), np.array([0.7]),
                       (0.0, 5.0), _decay_exact, _decay_obs, ("energy",)),
    "logistic": Reference("logistic", ("n",), ("r", "K"), _logistic_rhs, _logistic_jac, np.array([0.1]),
                          np.array([1.3, 2.0]), (0.0, 6.0), _logistic_exact),
    "oscillator": Reference("oscillator", ("x", "v"), ("w",), _osc_rhs, _osc_jac, np.array([1.0, 0.5]),
                            np.array([2.0]), (0.0, 10.0), _osc_exact),
    "robertson": Reference("robertson", ("y1", "y2", "y3"), ("k1", "k2", "k3"), _rob_rhs, _rob_jac,
                           np.array([1.0, 0.0, 0.0]), np.array([0.04, 1e4, 3e7]), (0.0, 40.0)),
    "mode": Reference("mode", ("p", "s"), ("tau", "s2", "eta"), _mode_rhs, _mode_jac, np.array([0.3, 0.2]),
                      np.array([1.0, 0.2, 0.05]), (0.0, 20.0), None, _mode_obs, ("invariant",)),
    "square": Reference("square", ("y",), (), _square_rhs, _square_jac, np.array([1.0]), np.empty(0),
                        (0.0, 2.0), lambda t, y0, p: (1.0 / (1.0 / y0[0] - t))[:, None]),
    "sqrt": Reference("sqrt", ("y",), (), _sqrt_rhs, _sqrt_jac, np.array([0.0]), np.empty(0), (0.0, 2.0),
                      lambda t, y0, p: (y0[0] + 2.0 / 3.0 * (1.0 - (1.0 - t) ** 1.5))[:, None]),
    "ou": Reference("ou", ("x",), ("theta", "sigma"), _ou_rhs, _ou_jac, np.array([2.0]), np.array([1.5, 0.8]),
                    (0.0, 1.0), _decay_exact, diffusion=_ou_diff, n_noise=1),
}

#: Reference systems with a closed-form solution, smooth and non-stiff.
SMOOTH_REFERENCES = ("decay", "logistic", "oscillator")


def ou_moments(t, x0, theta, sigma):
    """Exact mean and variance of the OU process started at ``x0``."""
    mean = x0 * math.exp(-theta * t)
    var = sigma**2 / (2 * theta) * (1 - math.exp(-2 * theta * t))
    return mean, var
