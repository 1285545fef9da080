"""Reference systems with known behaviour: the foundation demo and the analysis normal forms."""

from __future__ import annotations


from ..derive import ODESystem, make_system


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


def builtin_systems():
    from . import BuiltinSystem

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


__all__ = ["eigenmode_cubic", "saddle_node", "transcritical", "pitchfork", "hopf", "double_well"]


def _cubic_roots(eta: float, sigma2: float, tau: float) -> tuple[float, float]:
    """Closed-form non-zero fixed points of p' = p (tau p - (1+sigma2) p^2 - eta): (saddle, stable)."""
    disc = tau * tau - 4.0 * eta * (1.0 + sigma2)
    r = disc**0.5
    return (tau - r) / (2.0 * (1.0 + sigma2)), (tau + r) / (2.0 * (1.0 + sigma2))


def reproduce(outdir, *, quick: bool = True, seed: int = 0):
    """Check the pipeline itself on the two-mode cubic system: derive -> compile (both backends) ->
    solve / ensemble-solve -> compare with the closed-form fixed points."""
    import time
    from pathlib import Path

    import numpy as np

    from .._random import as_generator
    from ..compile import compile_system
    from ..solve import solve, solve_ensemble
    from ..validate import Claim, TheoryReport

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    rng = as_generator(seed)
    params = {"eta": 0.05, "sigma2": 0.5, "tau": 1.0, "tau2": 0.6}
    saddle, stable = _cubic_roots(params["eta"], params["sigma2"], params["tau"])
    saddle2, stable2 = _cubic_roots(params["eta"], params["sigma2"], params["tau2"])
    timings = {}
    t0 = time.perf_counter()
    system = eigenmode_cubic()
    csys = compile_system(system, backend="numba")
    cnp = compile_system(system, backend="numpy")
    timings["derive_compile_s"] = time.perf_counter() - t0
    t_final = 400.0
    y0 = {"p1": 0.9, "p2": saddle2 * 0.9}
    t0 = time.perf_counter()
    sol = solve(csys, y0, (0.0, t_final), params, t_eval=np.linspace(0, 250.0, 501), rtol=1e-10, atol=1e-12)
    long = solve(csys, y0, (0.0, t_final), params, rtol=1e-10, atol=1e-12)
    sol_np = solve(cnp, y0, (0.0, t_final), params, rtol=1e-10, atol=1e-12)
    timings["solve_s"] = time.perf_counter() - t0
    n_ens = 256 if quick else 10_000
    y0s = rng.uniform(0.0, 1.2, size=(n_ens, 2))
    t0 = time.perf_counter()
    ens = solve_ensemble(csys, y0s, (0.0, t_final), params, rtol=1e-10, atol=1e-12)
    timings["ensemble_s"] = time.perf_counter() - t0
    check = [solve(csys, y0s[i], (0.0, t_final), params, rtol=1e-10, atol=1e-12).final for i in range(8)]
    final = np.asarray(ens.final if hasattr(ens, "final") else ens.y[:, -1, :])
    # basin of each mode: above the saddle -> the stable root, below -> collapse to 0
    want = np.column_stack([np.where(y0s[:, 0] > saddle, stable, 0.0), np.where(y0s[:, 1] > saddle2, stable2, 0.0)])
    y_probe = rng.normal(0.5, 0.2, size=2)
    p_vec = csys.pack_params(params)
    h = 1e-6
    fd = np.column_stack([(csys.rhs(0, y_probe + h * e, p_vec) - csys.rhs(0, y_probe - h * e, p_vec)) / (2 * h)
                          for e in np.eye(2)])
    claims = [
        Claim("stable_fixed_point", "mode 1 converges to the larger root of (1+σ²)p² − τp + η = 0",
              float(long.final[0]), stable, 1e-7, kind="abs"),
        Claim("collapse_below_saddle", "mode 2 started below the saddle root collapses to p = 0",
              float(abs(long.final[1])), 0.0, 1e-6, kind="abs", details={"saddle": saddle2}),
        Claim("backends_agree", "numba and numpy backends give the same trajectory (relative difference)",
              float(np.max(np.abs(long.final - sol_np.final)) / np.max(np.abs(long.final))), 0.0, 1e-9, kind="abs"),
        Claim("ensemble_basins", "ensemble of random starts: fraction ending at the predicted attractor",
              float(np.mean(np.all(np.abs(final - want) < 1e-5, axis=1))), 1.0, 0.0, kind="ge",
              details={"n_trajectories": n_ens}),
        Claim("ensemble_equals_single", "ensemble solve equals one-at-a-time solves (max abs difference)",
              float(np.max(np.abs(final[:8] - np.array(check)))), 0.0, 1e-12, kind="abs"),
        Claim("jacobian_vs_finite_differences", "compiled Jacobian equals central finite differences",
              float(np.max(np.abs(csys.jac(0, y_probe, p_vec) - fd))), 0.0, 1e-6, kind="abs"),
    ]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.plot(sol.t, sol.y[:, 0], label="$p_1$ (τ = 1)")
    ax.plot(sol.t, sol.y[:, 1], label="$p_2$ (τ = 0.6)")
    ax.axhline(stable, color="C0", ls="--", lw=0.8, label="stable root, mode 1")
    ax.axhline(saddle2, color="C1", ls=":", lw=0.8, label="saddle root, mode 2")
    ax.set_xlabel("t")
    ax.set_ylabel("eigenmode $p_j$")
    ax.set_title("Cubic eigenmode dynamics: convergence vs collapse")
    ax.legend(loc="center right")
    fig.tight_layout()
    fig.savefig(outdir / "eigenmodes.png", dpi=110)
    plt.close(fig)
    return TheoryReport(
        theory="reference", title="Pipeline on reference systems", claims=claims,
        figures={"eigenmodes.png": "Two cubic eigenmodes: one converges to the stable root (dashed), one starts "
                                   "below its saddle (dotted) and collapses."},
        numbers={"saddle": saddle, "stable": stable, "final": long.final, "solve_stats": dict(long.stats)},
        parameters={**params, "y0": y0, "t_final": t_final, "n_ensemble": n_ens, "seed": seed},
        timings=timings)
