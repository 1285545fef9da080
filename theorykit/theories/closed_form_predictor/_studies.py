"""Studies: each computes the measured and predicted numbers of its claims (dicts with the fields of
:class:`theorykit.validate.Claim`) and returns them with the data its figure needs."""

from __future__ import annotations

import numpy as np

from ..._random import spawn_seeds
from ...analysis import find_fixed_points, linearize
from ...validate import compare, fit_power_law
from . import _symbolic as S
from ._analysis import compiled, ode_solution, packed
from ._simulate import group_series, simulate


def claim(name, statement, measured, predicted, tolerance, kind="abs", **details) -> dict:
    """The fields of a :class:`theorykit.validate.Claim` as a plain dict."""
    return dict(name=name, statement=statement, measured=float(measured), tolerance=float(tolerance), kind=kind,
                predicted=None if predicted is None else float(predicted), details=details)


# ------------------------------------------------------------------ references typed from the papers
def halvagal_rate(loss, lam, s, f, alpha, sigma2_t):
    r"""Halvagal et al. (papers.md §6; clean online view, no weight decay): :math:`\dot\lambda_k` with
    :math:`N_P^2 = \sum f\lambda^2 s`, :math:`N_z^2 = (1+\sigma_t^2)\sum f s`, :math:`\bar\lambda = \sum
    f\lambda^2 s / \sum f\lambda s`, per feature (our cosine losses are M times Halvagal's)."""
    lbar = np.sum(f * lam ** 2 * s) / np.sum(f * lam * s)
    norms = np.sqrt(np.sum(f * lam ** 2 * s) * (1 + sigma2_t) * np.sum(f * s))
    return {"euclidean": -2 * alpha * lam ** 2 * (lam - 1), "iso_euclidean": -2 * alpha * lam * (lam - 1),
            "cosine": 2 * alpha * lam ** 2 * (1 - lam / lbar) / norms,
            "iso_cosine": 2 * alpha * lam * (1 - lam / lbar) / norms}[loss]


def tian_directpred(s, tau, eta, sigma2, epsilon, beta):
    r"""Tian et al. Eqs. 12-13 with the DirectPred predictor of Eq. 18, :math:`p_j = \sqrt{\hat s_j} +
    \epsilon\max_k \hat s_k`, :math:`\hat s = (1+\sigma^2)s` (both views augmented): ``(ds/dt, dtau/dt)``."""
    p = np.sqrt((1 + sigma2) * s) + epsilon * (1 + sigma2) * np.max(s)
    sdot = 2 * p * s * (tau - (1 + sigma2) * p) - 2 * eta * s
    return sdot, beta * (1 - tau) - tau * sdot / (2 * s)


def tian_roots(eta, sigma2, tau=1.0):
    """Tian et al. Eq. 16: the non-zero equilibria ``(p-, p+)`` on the invariant parabola."""
    r = np.sqrt(tau ** 2 - 4 * eta * (1 + sigma2))
    return (tau - r) / (2 * (1 + sigma2)), (tau + r) / (2 * (1 + sigma2))


# ------------------------------------------------------------------------ derivation and stability
def _relative(got, ref) -> float:
    return float(np.max(np.abs(np.asarray(got) - ref)) / np.max(np.abs(ref)))


def derivation_study(seed: int = 0) -> dict:
    """The derived flows against the papers' equations at random points (no simulation)."""
    rng, claims = np.random.default_rng(seed), []
    for loss in S.LOSSES:
        csys, dev = compiled(loss), 0.0
        for s, a, f1, st in ((rng.uniform(0.2, 2, 2), *rng.uniform((0.3, 0.2, 0), (1.5, 0.8, 1))) for _ in range(8)):
            sdot = csys.rhs(0.0, s, packed(csys, dict(alpha=a, f1=f1, sigma2_t=st)))
            ref = halvagal_rate(loss, s ** a, s, np.array([f1, 1 - f1]), a, st)
            dev = max(dev, _relative(a * s ** (a - 1) * sdot, ref))
        claims.append(claim(f"{loss}_flow_matches_halvagal", f"derived {loss} eigenvalue flow = Halvagal et al.'s "
                            "lambda' (max relative difference at random points)", dev, 0.0, 1e-10))
    csys, dev = compiled("euclidean", "directpred", 2, ema=True), 0.0
    for _ in range(8):
        s, tau = np.sort(rng.uniform(0.1, 2.0, 2))[::-1], rng.uniform(0.1, 1.0, 2)
        e, s2, eps, b = rng.uniform((0, 0, 0, 0.1), (0.3, 1, 0.5, 2))
        prm = packed(csys, dict(eta=e, sigma2_o=s2, epsilon=eps, beta=b))
        got = csys.rhs(0.0, np.ravel(np.column_stack([s, tau])), prm)
        dev = max(dev, _relative(got, np.ravel(np.column_stack(tian_directpred(s, tau, e, s2, eps, b)))))
    claims.append(claim("directpred_matches_tian", "derived DirectPred flow with EMA target = Tian et al. Eqs. 12-13 "
                        "with the Eq. 18 predictor (max relative difference at random points)", dev, 0.0, 1e-10))
    return {"claims": claims}


def stability_study() -> dict:
    """Fixed points and Jacobian eigenvalues by :mod:`theorykit.analysis` against closed forms."""
    dev = {"euclidean": 0.0, "iso_euclidean": 0.0}
    for loss in dev:
        csys = compiled(loss, lam=True)
        for a in (0.5, 1.0):
            for s2 in (0.0, 0.5):
                prm = packed(csys, dict(alpha=a, sigma2_o=s2))
                fps = find_fixed_points(csys, prm, guesses=[[0.0]], n_starts=16, bounds=(0.0, 2.0))
                lam_star, zero = 1 / (1 + s2), (0.0 if loss == "euclidean" else 2 * a)
                rate = -2 * a / (1 + s2) if loss == "euclidean" else -2 * a
                got = sorted((float(fp.y[0]), float(fp.eigenvalues[0].real)) for fp in fps)
                ref = [(0.0, zero), (lam_star, rate)]
                dev[loss] = max(dev[loss], np.inf if len(got) != 2 else float(np.max(np.abs(np.subtract(got, ref)))))
    csys, iso_dev = compiled("cosine"), 0.0
    for a, so, st, f1, S0 in ((0.5, 0.0, 0.5, 0.5, 0.8), (1.0, 0.3, 0.0, 0.3, 1.5), (0.5, 0.5, 1.0, 0.7, 0.4)):
        fp = linearize(csys, np.array([S0, S0]), packed(csys, dict(alpha=a, sigma2_o=so, sigma2_t=st, f1=f1)))
        ref = np.array([0.0, -2 * a / (S0 * np.sqrt((1 + so) * (1 + st)))])
        iso_dev = max(iso_dev, float(np.max(np.abs(fp.eigenvalues.real - ref))), fp.residual)
    csys, dp_dev = compiled("euclidean", "directpred", 1), 0.0
    for e, s2 in ((0.05, 0.0), (0.1, 0.2), (0.15, 0.5)):
        prm = packed(csys, dict(eta=e, sigma2_o=s2))
        # s = 0 (where the Jacobian of sqrt(s) is singular) is judged just above it
        fps = (linearize(csys, np.array([1e-14]), prm),
               *sorted(find_fixed_points(csys, prm, n_starts=24, bounds=(1e-6, 1.5)), key=lambda fp: fp.y[0]))
        got = [(np.sqrt((1 + s2) * fp.y[0]), fp.stable) for fp in fps]
        ref = [(0.0, True), (tian_roots(e, s2)[0], False), (tian_roots(e, s2)[1], True)]
        ok = len(got) == 3 and all(g[1] == r[1] for g, r in zip(got, ref))
        dp_dev = max(dp_dev, max(abs(g[0] - r[0]) for g, r in zip(got[1:], ref[1:])) if ok else np.inf)
    return {"claims": [
        claim("euclidean_fixed_points", "Euclidean lambda flow: lambda* = 1/(1+sigma2_o) stable at rate "
              "2 alpha/(1+sigma2_o) (Halvagal: 2 alpha), lambda = 0 non-hyperbolic (eigenvalue 0: the lambda^2 "
              "multiplier); max deviation of (position, eigenvalue) over alpha, sigma2_o (find_fixed_points)",
              dev["euclidean"], 0.0, 1e-8),
        claim("iso_euclidean_fixed_points", "IsoLoss lambda flow: lambda* = 1/(1+sigma2_o) stable at rate 2 alpha, "
              "lambda = 0 unstable at rate 2 alpha (no multiplier); max deviation", dev["iso_euclidean"], 0.0, 1e-8),
        claim("cosine_isotropy_eigenvalues", "cosine flow at an isotropic point s: Jacobian eigenvalues 0 (conserved "
              "|W|_F) and -2 alpha/(s sqrt((1+sigma2_o)(1+sigma2_t))) (time scale ~ |W|^2); max deviation",
              iso_dev, 0.0, 1e-8),
        claim("directpred_fixed_points", "DirectPred flow (epsilon = 0): equilibria p = 0 (stable), p- (unstable), "
              "p+ (stable) of Tian et al. Eq. 16; max |p - p_Tian|", dp_dev, 0.0, 1e-8)]}


# ---------------------------------------------------------------------------------- SGD studies
def rate_law(run, window: float, multiplier) -> np.ndarray:
    r"""Per group, :math:`\Delta\ln s / \int 2\,m(\lambda)(1-\lambda)\,dt` over ``t <= window`` along the
    run's own group means: 1 where SGD follows :math:`d\ln s/dt = 2m(\lambda)(1-\lambda)`."""
    w = run.t <= window
    s, lam = group_series(run, "s")[w], group_series(run, "lambda")[w]
    from scipy.integrate import trapezoid  # here: scipy.integrate takes ~0.5 s to import

    return np.log(s[-1] / s[0]) / trapezoid(2 * multiplier(lam) * (1 - lam), run.t[w], axis=0)


def euclidean_study(seed: int = 0, quick: bool = True) -> dict:
    """Euclidean and IsoLoss SGD (alpha = 1) from two small groups: the transit time (lambda^2 multiplier),
    the per-mode rate laws and the isotropic end point."""
    lam0, level = 0.1, 0.5
    common = dict(dim=32 if quick else 64, batch=32, lr=0.01, s0=[lam0, 0.3], sigma2_t=0.5, n_record=201)
    sd = spawn_seeds(seed, 2)
    runs = {"euclidean": simulate("euclidean", t_end=10.0, seed=int(sd[0]), **common),
            "iso_euclidean": simulate("iso_euclidean", t_end=2.0, seed=int(sd[1]), **common)}
    odes = {k: ode_solution(k, "closed_form", common["s0"], r.t, sigma2_t=0.5) for k, r in runs.items()}
    transit = S.transit_time("euclidean")
    T = float(transit.xreplace({x: dict(alpha=1, lambda0=lam0, lambda1=level)[x.name] for x in transit.free_symbols}))
    r = runs["euclidean"]
    euc = rate_law(r, 3.0, lambda lam: lam)
    iso = rate_law(runs["iso_euclidean"], 0.5, np.ones_like)
    end = np.abs(group_series(r, "lambda")[-1] - 1.0)
    y, i = r.observable("lambda1"), int(np.argmax(r.observable("lambda1") >= level))  # first record at the level
    cross = float(r.t[i - 1] + (level - y[i - 1]) / (y[i] - y[i - 1]) * (r.t[i] - r.t[i - 1])) if i else np.nan
    return {"runs": runs, "odes": odes, "claims": [
        claim("euclidean_transit_time", f"Euclidean SGD: time for the small group to go from lambda={lam0} to {level} "
              "= SymPy integral of 1/lambda' (transient slowed by the lambda^2 multiplier)",
              cross, T, 0.05, "rel"),
        claim("euclidean_rate_multiplier", "Euclidean SGD, groups at lambda0 = 0.1 and 0.3, t < 3: d ln s/dt = "
              "2 lambda (1 - lambda), the rate carries the multiplier lambda (lambda^2 in lambda'); max over the "
              "groups of |measured/law - 1|", float(np.max(np.abs(euc - 1))), 0.0, 0.05, "le", per_group=euc.tolist()),
        claim("isoloss_equal_rates", "IsoLoss SGD, same start, t < 0.5: d ln s/dt = 2 (1 - lambda) for every mode, "
              "no multiplier (rates equalised); max over the groups of |measured/law - 1|",
              float(np.max(np.abs(iso - 1))), 0.0, 0.05, "le", per_group=iso.tolist()),
        claim("euclidean_isotropic", "Euclidean SGD ends isotropic at the stable lambda* = 1: max over the groups "
              "of |mean lambda - 1| at the end", float(end.max()), 0.0, 0.03, "le",
              rms_spectrum=float(np.sqrt(np.mean((r.observable("spectrum")[-1] - 1.0) ** 2))))]}


def cosine_study(seed: int = 0, quick: bool = True) -> dict:
    """Cosine-loss SGD (alpha = 1/2): exact orthogonality of gradient and weights, conserved norm, and the
    isotropic end point at the scale set by the initial norm."""
    dim = 32 if quick else 64
    s0, alpha = [1.2, 0.4], 0.5
    r = simulate("cosine", dim=dim, batch=2 * dim, lr=0.005, t_end=6.0, s0=s0, alpha=alpha, sigma2_t=0.5, n_record=61,
                 seed=int(spawn_seeds(seed, 1)[0]))
    o = ode_solution("cosine", "closed_form", s0, r.t, alpha=alpha, sigma2_t=0.5)
    lam_star = float(np.mean(s0)) ** alpha
    lam_end = r.observable("spectrum")[-1] ** alpha
    drift = abs(r.observable("mean_s")[-1] / r.observable("mean_s")[0] - 1)
    return {"runs": {"cosine": r}, "odes": {"cosine": o}, "claims": [
        claim("cosine_gradient_orthogonal", "cosine loss: <grad, W> = 0 at every SGD step (max |cos angle|)",
              r.observable("max_inner")[-1], 0.0, 1e-12, "le"),
        claim("cosine_norm_conserved", "cosine SGD: relative change of |W|_F^2 over the run (the flow conserves "
              "it; SGD adds lr^2 |grad|^2 per step)", drift, 0.0, 0.02, "le"),
        claim("cosine_isotropic_scale", "cosine SGD ends isotropic at lambda* = (|W0|_F^2/M)^alpha: mean final "
              "predictor eigenvalue", float(np.mean(lam_end)), lam_star, 0.01, "rel"),
        claim("cosine_isotropic_groups", "cosine SGD: the groups, lambda ratio sqrt(3) at the start, end equal: "
              "|lambda_1 - lambda_2| / lambda* at the end",
              float(abs(np.diff(group_series(r, "lambda")[-1])[0])) / lam_star,
              0.0, 0.01, "le", max_spectrum_deviation=float(np.max(np.abs(lam_end / lam_star - 1))))]}


def directpred_study(seed: int = 0, quick: bool = True, epsilons=(0.0, 0.4)) -> dict:
    """DirectPred SGD (running correlation estimate, weight decay, both views augmented) with and without
    Tian's epsilon * max term, against the derived eigenvalue ODE."""
    dim, eta, sigma2 = (32 if quick else 64), 0.1, 0.2
    s0 = [0.5 ** 2 / 1.2, 0.09 ** 2 / 1.2]          # p = (0.5, 0.09): above and below p- of Eq. 16
    runs, odes, err, outcome = {}, {}, 0.0, True
    for eps, sd in zip(epsilons, spawn_seeds(seed, len(epsilons))):
        key = f"epsilon={eps:g}"
        runs[key] = r = simulate("euclidean", "directpred", dim=dim, batch=32, lr=0.01, t_end=25.0, s0=s0, rho=0.99,
                                 epsilon=eps, eta=eta, sigma2_o=sigma2, sigma2_t=sigma2, n_record=51, seed=int(sd))
        odes[key] = o = ode_solution("euclidean", "directpred", s0, r.t, eta=eta, sigma2_o=sigma2, epsilon=eps)
        err = max(err, *(c[-1] for c in compare(o, r, ("lambda1", "lambda2")).curves.values()))
        outcome &= bool(np.diff(r.observable("s2")[[0, -1]])[0] > 0) == bool(np.diff(o.y_of("s2")[[0, -1]])[0] > 0)
    return {"runs": runs, "odes": odes, "claims": [
        claim("directpred_sgd_vs_ode", "DirectPred SGD (running estimate of E[f f^T]): final predictor eigenvalues "
              "of both groups vs the derived ODE, epsilon in " + str(list(epsilons)), err, 0.0, 0.02, "abs"),
        claim("directpred_weak_mode", "the weak group (p below p- of Tian's Eq. 16) collapses without epsilon and "
              "grows with epsilon * max s, in SGD as in the ODE", float(outcome), None, 0, "true")]}


def width_study(seed: int = 0, quick: bool = True, losses=("euclidean", "cosine")) -> dict:
    """Max error of SGD's group eigenvalues against the ODE as the width grows (lr * N / batch halving)."""
    sizes = ((16, 8, 0.04), (32, 16, 0.02), (64, 32, 0.01)) + (() if quick else ((128, 64, 0.005),))
    n_seeds = 3 if quick else 5
    out = {"sizes": np.array(sizes), "claims": []}
    for loss, lseed in zip(losses, spawn_seeds(seed, len(losses))):
        s0 = [0.3, 0.05] if loss == "euclidean" else [1.5, 0.5]
        errors = np.full((len(sizes), n_seeds), np.nan)
        seeds = spawn_seeds(int(lseed), errors.size).reshape(errors.shape)
        for i, (d, b, lr) in enumerate(sizes):
            for j in range(n_seeds):
                r = simulate(loss, dim=d, batch=b, lr=lr, t_end=4.0, s0=s0, sigma2_t=0.5, n_record=21,
                             seed=int(seeds[i, j]))
                sol = ode_solution(loss, "closed_form", s0, r.t, sigma2_t=0.5)
                errors[i, j] = compare(sol, r, ("s1", "s2")).max_error()
        fit = fit_power_law(out["sizes"][:, 0], errors, nan_policy="omit")
        out[loss] = {"errors": errors, "fit": fit}
        out["claims"].append(claim(f"{loss}_width_convergence", f"{loss}: max |s_SGD - s_ODE| shrinks with the width "
                                   "M (lr M / batch halving): upper end of the 95% CI of the fitted slope",
                                   fit.slope_ci[1], 0.0, 0.0, "le", slope=fit.slope, slope_ci=fit.slope_ci,
                                   errors=errors.tolist()))
    return out
