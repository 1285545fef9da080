"""``reproduce``: the pipeline itself on the two-mode cubic system — derive, compile (both backends),
solve and ensemble-solve — against the closed-form fixed points."""

from __future__ import annotations

import numpy as np

from ..._random import as_generator
from ...compile import compile_system
from ...solve import solve, solve_ensemble
from ...validate import Study
from ._symbolic import cubic_roots, eigenmode_cubic

#: every claim :func:`reproduce` states
CLAIM_NAMES = ("stable_fixed_point", "collapse_below_saddle", "backends_agree", "ensemble_basins",
               "ensemble_equals_single", "jacobian_vs_finite_differences")


def reproduce(study: Study) -> None:
    """Check derive -> compile -> solve / ensemble-solve on the cubic eigenmodes against their closed forms."""
    rng = as_generator(study.seed)
    params = {"eta": 0.05, "sigma2": 0.5, "tau": 1.0, "tau2": 0.6}
    saddle, stable = cubic_roots(params["eta"], params["sigma2"], params["tau"])
    saddle2, stable2 = cubic_roots(params["eta"], params["sigma2"], params["tau2"])
    t_final, tol = 400.0, {"rtol": 1e-10, "atol": 1e-12}
    y0 = {"p1": 0.9, "p2": saddle2 * 0.9}
    n_ens = 256 if study.quick else 10_000
    study.parameters(**params, y0=y0, t_final=t_final, n_ensemble=n_ens, seed=study.seed)
    with study.section("derive_compile"):
        system = eigenmode_cubic()
        csys = compile_system(system, backend="numba")
        cnp = compile_system(system, backend="numpy")
    with study.section("solve"):
        sol = solve(csys, y0, (0.0, t_final), params, t_eval=np.linspace(0, 250.0, 501), **tol)
        long = solve(csys, y0, (0.0, t_final), params, **tol)
        sol_np = solve(cnp, y0, (0.0, t_final), params, **tol)
        study.claim("stable_fixed_point", "mode 1 converges to the larger root of (1+σ²)p² − τp + η = 0",
                    float(long.final[0]), stable, 1e-7, kind="abs")
        study.claim("collapse_below_saddle", "mode 2 started below the saddle root collapses to p = 0",
                    float(abs(long.final[1])), 0.0, 1e-6, kind="abs", details={"saddle": saddle2})
        study.claim("backends_agree", "numba and numpy backends give the same trajectory (relative difference)",
                    float(np.max(np.abs(long.final - sol_np.final)) / np.max(np.abs(long.final))), 0.0, 1e-9)
        study.record(saddle=saddle, stable=stable, final=long.final, solve_stats=dict(long.stats))
    with study.section("ensemble"):
        y0s = rng.uniform(0.0, 1.2, size=(n_ens, 2))
        final = np.asarray(solve_ensemble(csys, y0s, (0.0, t_final), params, **tol).final)
        check = [solve(csys, y0s[i], (0.0, t_final), params, **tol).final for i in range(8)]
        # basin of each mode: above the saddle -> the stable root, below -> collapse to 0
        want = np.column_stack([np.where(y0s[:, 0] > saddle, stable, 0.0),
                                np.where(y0s[:, 1] > saddle2, stable2, 0.0)])
        study.claim("ensemble_basins", "ensemble of random starts: fraction ending at the predicted attractor",
                    float(np.mean(np.all(np.abs(final - want) < 1e-5, axis=1))), 1.0, 0.0, kind="ge",
                    details={"n_trajectories": n_ens})
        study.claim("ensemble_equals_single", "ensemble solve equals one-at-a-time solves (max abs difference)",
                    float(np.max(np.abs(final[:8] - np.array(check)))), 0.0, 1e-12, kind="abs")
    with study.section("jacobian"):
        y_probe = rng.normal(0.5, 0.2, size=2)
        p_vec = csys.pack_params(params)
        h = 1e-6
        fd = np.column_stack([(csys.rhs(0, y_probe + h * e, p_vec) - csys.rhs(0, y_probe - h * e, p_vec)) / (2 * h)
                              for e in np.eye(2)])
        study.claim("jacobian_vs_finite_differences", "compiled Jacobian equals central finite differences",
                    float(np.max(np.abs(csys.jac(0, y_probe, p_vec) - fd))), 0.0, 1e-6, kind="abs")
    with study.figure("eigenmodes.png", "Two cubic eigenmodes: one converges to the stable root (dashed), one "
                      "starts below its saddle (dotted) and collapses.") as (fig, ax):
        ax.plot(sol.t, sol.y[:, 0], label="$p_1$ (τ = 1)")
        ax.plot(sol.t, sol.y[:, 1], label="$p_2$ (τ = 0.6)")
        ax.axhline(stable, color="C0", ls="--", lw=0.8, label="stable root, mode 1")
        ax.axhline(saddle2, color="C1", ls=":", lw=0.8, label="saddle root, mode 2")
        ax.set_xlabel("t")
        ax.set_ylabel("eigenmode $p_j$")
        ax.set_title("Cubic eigenmode dynamics: convergence vs collapse")
        ax.legend(loc="center right")
