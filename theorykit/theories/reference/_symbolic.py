"""Reference systems with known behaviour: the foundation demo and the analysis normal forms."""

from __future__ import annotations

from ...derive import ODESystem, make_system
from .. import BuiltinSystem


def eigenmode_cubic() -> ODESystem:
    r"""Two uncoupled eigenmodes with the cubic right-hand side of linear non-contrastive learning,

    .. math:: \dot p_j = p_j\,(\tau p_j - (1+\sigma^2) p_j^2 - \eta), \quad j = 1, 2,

    (mode 2 with a weaker augmentation-invariant strength ``tau2``). Fixed points: 0 and the roots of
    :math:`(1+\sigma^2)p^2 - \tau p + \eta = 0`.
    """
    return make_system(
        ["p1", "p2"],
        ["p1*(tau*p1 - (1 + sigma2)*p1**2 - eta)", "p2*(tau2*p2 - (1 + sigma2)*p2**2 - eta)"],
        ["eta", "sigma2", "tau", "tau2"],
        observed={"norm2": "p1**2 + p2**2"},
        name="eigenmode_cubic",
        provenance=("reference: two uncoupled eigenmodes on the invariant manifold s = p^2",),
    )


def saddle_node() -> ODESystem:
    """Saddle-node normal form ``x' = r + x^2`` (fold at r = 0)."""
    return make_system(["x"], ["r + x**2"], ["r"], name="saddle_node")


def transcritical() -> ODESystem:
    """Transcritical normal form ``x' = r x - x^2``."""
    return make_system(["x"], ["r*x - x**2"], ["r"], name="transcritical")


def pitchfork() -> ODESystem:
    """Supercritical pitchfork normal form ``x' = r x - x^3``."""
    return make_system(["x"], ["r*x - x**3"], ["r"], name="pitchfork")


def hopf() -> ODESystem:
    """Hopf normal form in Cartesian coordinates; Hopf bifurcation at ``mu = 0`` with frequency ``omega``."""
    return make_system(
        ["x", "y"],
        ["mu*x - omega*y - x*(x**2 + y**2)", "omega*x + mu*y - y*(x**2 + y**2)"],
        ["mu", "omega"], name="hopf")


def double_well() -> ODESystem:
    """Gradient flow in the symmetric double well ``V = (x^2 - 1)^2 / 4 + y^2 / 2``."""
    return make_system(["x", "y"], ["x - x**3", "-y"], [], name="double_well")


def cubic_roots(eta: float, sigma2: float, tau: float) -> tuple[float, float]:
    """Closed-form non-zero fixed points of ``p' = p (tau p - (1+sigma2) p^2 - eta)``: ``(saddle, stable)``."""
    disc = tau * tau - 4.0 * eta * (1.0 + sigma2)
    r = disc**0.5
    return (tau - r) / (2.0 * (1.0 + sigma2)), (tau + r) / (2.0 * (1.0 + sigma2))


def reference_systems() -> dict[str, BuiltinSystem]:
    """The reference systems with defaults for the CLI."""
    return {
        "eigenmode_cubic": BuiltinSystem("eigenmode_cubic", eigenmode_cubic,
                                         {"eta": 0.05, "sigma2": 0.5, "tau": 1.0, "tau2": 0.5},
                                         {"p1": 0.5, "p2": 0.5},
                                         "two cubic eigenmodes of linear non-contrastive learning",
                                         {"eta": (0.0, 0.3), "sigma2": (0.0, 2.0)}),
        "saddle_node": BuiltinSystem("saddle_node", saddle_node, {"r": -1.0}, {"x": -1.0},
                                     "x' = r + x^2", {"r": (-1.0, 0.5)}),
        "transcritical": BuiltinSystem("transcritical", transcritical, {"r": -1.0}, {"x": 0.5},
                                       "x' = r x - x^2", {"r": (-1.0, 1.0)}),
        "pitchfork": BuiltinSystem("pitchfork", pitchfork, {"r": -1.0}, {"x": 0.5},
                                   "x' = r x - x^3", {"r": (-1.0, 1.0)}),
        "hopf": BuiltinSystem("hopf", hopf, {"mu": -0.5, "omega": 1.0}, {"x": 0.1, "y": 0.0},
                              "Hopf normal form", {"mu": (-1.0, 1.0), "omega": (0.5, 2.0)}),
        "double_well": BuiltinSystem("double_well", double_well, {}, {"x": 0.1, "y": 0.0},
                                     "symmetric double well", {}),
    }
