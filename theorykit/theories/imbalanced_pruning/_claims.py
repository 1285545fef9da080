"""The claims of ``reproduce``, built from the measured stages and sweeps.

Every claim can fail: inequalities report their margin and how loose their bound is (``bound_over_measured``),
paired comparisons give the signed-rank statistic as a z-score against the one-sided 5% critical value, and
"does not depend on" claims require the whole 95% confidence interval of a fitted slope to lie within a stated
tolerance of zero.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import replace

import numpy as np

from ...validate import Claim, fit_power_law
from ._stages import StageSummary, neuron_trajectories


# ------------------------------------------------------------------------------------------------ helpers
def stat(x: np.ndarray) -> dict[str, float]:
    """Mean, standard deviation and count of the finite entries of ``x``."""
    x = np.asarray(x, dtype=np.float64).ravel()
    x = x[np.isfinite(x)]
    return {"mean": float(np.mean(x)) if x.size else math.nan,
            "std": float(np.std(x, ddof=1)) if x.size > 1 else 0.0, "n": int(x.size)}


def nan_reduce(fn, x: np.ndarray, axis=None):
    """``fn`` (np.nanmean / np.nanstd / ...) over ``x`` ignoring failed (NaN) sweep points; NaN, without a
    warning, where every point failed. Returns a float for ``axis=None``, else an array."""
    x = np.asarray(x, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out = fn(x, axis=axis)
    return float(out) if axis is None else out


def paired_medians(measured: np.ndarray, predicted: np.ndarray) -> tuple[float, float, int]:
    """Medians of ``measured`` and ``predicted`` over the entries where both are finite, and their number."""
    both = np.isfinite(measured) & np.isfinite(predicted)
    if not both.any():
        return math.nan, math.nan, 0
    return float(np.median(measured[both])), float(np.median(predicted[both])), int(both.sum())


def median_ratio(num: np.ndarray, den: np.ndarray) -> float:
    """``nanmedian(num) / nanmedian(den)``; NaN (without a warning) where either has no finite entry."""
    num, den = num[np.isfinite(num)], den[np.isfinite(den)]
    return float(np.median(num) / np.median(den)) if num.size and den.size else math.nan


def with_margin(claim: Claim) -> Claim:
    """For an inequality claim (``le`` / ``ge``), add to its details the ``margin`` by which it passes (negative:
    fails) and ``bound_over_measured``, the bound ``predicted +- tolerance`` over the measured value."""
    if claim.kind not in ("le", "ge"):
        return claim
    bound = claim.predicted + (claim.tolerance if claim.kind == "le" else -claim.tolerance)
    margin = (bound - claim.measured) if claim.kind == "le" else (claim.measured - bound)
    ratio = abs(bound) / abs(claim.measured) if claim.measured not in (0.0,) and math.isfinite(claim.measured) \
        else math.inf
    return replace(claim, details={**claim.details, "bound": float(bound), "margin": float(margin),
                                   "bound_over_measured": float(ratio)})


def signed_rank_claim(name: str, statement: str, diff: np.ndarray, *, increase: bool, figures=(),
                      details=None) -> Claim:
    """Paired differences move in the predicted direction: the Wilcoxon signed-rank statistic of the non-zero
    differences, as a z-score signed so that positive is the predicted direction (normal approximation with the
    tie correction), must reach the one-sided 5% critical value 1.645. NaN entries (failed points) are left out;
    the p-value, the counts, the sign test's fraction, the mean and the standard error are in the details. The
    signed-rank test uses the sizes of the differences, which the sign test throws away."""
    from scipy.stats import norm, wilcoxon

    d = np.asarray(diff, dtype=np.float64).ravel()
    d = d[np.isfinite(d)]
    n_pos, n_neg = int(np.sum(d > 0)), int(np.sum(d < 0))
    n = n_pos + n_neg
    z = math.nan
    if n:
        res = wilcoxon(d[d != 0], zero_method="wilcox", method="approx", alternative="greater" if increase else "less")
        z = float(norm.isf(res.pvalue))
    info = {"p_value": float(norm.sf(z)) if n else 1.0, "n_positive": n_pos, "n_negative": n_neg,
            "n_ties": int(d.size - n), "sign_fraction": (n_pos if increase else n_neg) / n if n else math.nan,
            "mean": float(np.mean(d)) if d.size else math.nan,
            "stderr": float(np.std(d, ddof=1) / math.sqrt(d.size)) if d.size > 1 else math.nan}
    claim = Claim(name, statement + " Measured: the Wilcoxon signed-rank statistic of the paired differences as a "
                  "z-score (positive in the predicted direction); predicted: the one-sided 5% critical value.",
                  measured=z, predicted=float(norm.isf(0.05)), tolerance=0.0, kind="ge",
                  details=info | (details or {}), figures=tuple(figures))
    return with_margin(claim)


def ci_claim(name: str, statement: str, x: np.ndarray, y: np.ndarray, predicted: float, tolerance: float, *,
             details=None, figures=()) -> Claim:
    """The fitted exponent of ``y ~ x^slope`` (log-log least squares over all finite points, seeds as repeated x)
    equals ``predicted``: the whole 95% confidence interval lies within ``tolerance`` of it. Measured is the
    largest distance of the interval from ``predicted``."""
    x, y = np.asarray(x, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel()
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    try:
        fit = fit_power_law(x[ok], y[ok])
        far = max(abs(fit.slope_ci[0] - predicted), abs(fit.slope_ci[1] - predicted))
        info = {"slope": fit.slope, "slope_ci95": list(fit.slope_ci), "r_squared": fit.r_squared,
                "n_points": fit.n_points}
    except Exception as exc:  # too few finite points: the claim fails with the reason in its details
        far, info = math.nan, {"fit_error": f"{type(exc).__name__}: {exc}"}
    claim = Claim(name, statement + f" Measured: the largest distance of the fitted exponent's 95% confidence "
                  f"interval from {predicted:g}.", measured=far, predicted=0.0, tolerance=tolerance, kind="le",
                  details=info | {"predicted_exponent": predicted} | (details or {}), figures=tuple(figures))
    return with_margin(claim)


# ------------------------------------------------------------------------------------------------ claims
def gradient_claim(sym: np.ndarray, mc: np.ndarray, se: np.ndarray) -> Claim:
    err = float(np.max(np.abs(sym - mc)) / np.max(np.abs(mc)))
    return Claim(
        "projected_gradient_vs_monte_carlo",
        "The SymPy-derived population gradient (summed over every sparse code z, one token, InfoNCE linear in the "
        "logits), projected on each feature and on the noise direction, equals the Monte-Carlo average of the "
        "sampled InfoNCE gradient (large temperature).",
        measured=err, predicted=0.0, tolerance=0.1, kind="abs",
        details={"symbolic": sym, "mc_mean": mc, "mc_stderr": se, "measure": "max|sym - mc| / max|mc|",
                 "mc_noise_scale": float(np.max(se) / np.max(np.abs(mc)))})


STAGE_MEANING = {0: "Stage 1 (the dominant feature overtakes the noise projection)",
                 1: "Stage 2 (separation: the dominant projection reaches 3x the other features and the noise)",
                 2: "Stage 3 (convergence: the dominant projection settles within 10% of its plateau)"}


def stage_claims(st: StageSummary, st_half: StageSummary, run, scales: dict, eta: float, eps: float,
                 tolerances=(0.3, 0.3, 0.35)) -> list[Claim]:
    """Stage times against the population flow, three stages detected, 1/eta scaling, minority stage 1 later."""
    T = st.measured_major
    claims = []
    for k in range(3):
        med_m, med_p, n_both = paired_medians(T[:, k], st.predicted_major[:, k])
        claims.append(Claim(
            f"stage{k + 1}_time_vs_population_flow",
            f"{STAGE_MEANING[k]} ends at the time predicted by the compiled population flow (per-neuron projected "
            "population gradient with the token-level softmax saturation) started from the same initial "
            "projections: median over majority-feature neurons, in the derivation's setting (one token per input).",
            measured=med_m, predicted=med_p, tolerance=tolerances[k], kind="rel",
            details={"measured": stat(T[:, k]), "flow": stat(st.predicted_major[:, k]), "n_neurons": n_both,
                     **({"lemma_3_1_scale_unit_constant": scales} if k == 0 else {})},
            figures=("stages.png", "stage_times.png")))
    full = np.all(np.isfinite(T), axis=1)
    grew = np.zeros(T.shape[0], dtype=bool)  # stage 1: growth along the feature with the noise suppressed
    for n, (i, j) in enumerate(zip(st.neurons_major, st.features_major)):
        if np.isfinite(T[n, 0]):
            dom, _, nz, _ = neuron_trajectories(run.proj, run.noise, int(i), dom=int(j))
            k1 = int(np.searchsorted(run.steps, T[n, 0]))
            grew[n] = dom[k1] > dom[0] and nz[k1] < nz[0]
    claims.append(with_margin(Claim(
        "three_stages_detected",
        "Majority-feature neurons that learn their feature (final projection >= 2x the initial norm, cosine >= 0.5) "
        "pass through three stages: growth along the dominant feature while the noise projection shrinks (until "
        "T1), separation from the other features and the noise (T2), convergence (T3); fraction of such neurons "
        "in which all three are detected.",
        measured=float(np.mean(full & grew)) if T.shape[0] else 0.0, predicted=1.0, tolerance=0.2, kind="ge",
        details={"n_neurons_all_stages": int(full.sum()), "n_neurons": int(T.shape[0]),
                 "T1": stat(T[:, 0]), "T2": stat(T[:, 1]), "T3": stat(T[:, 2]),
                 "minority_neurons_T": {f"T{k + 1}": stat(st.measured_minor[:, k]) for k in range(3)}},
        figures=("stages.png",))))
    ratios = np.array([median_ratio(st_half.measured_major[:, k], T[:, k]) for k in range(3)])
    worst = int(np.nanargmax(np.abs(np.log(ratios / 2.0)))) if np.isfinite(ratios).any() else 0
    claims.append(Claim(
        "stage_times_scale_as_1_over_eta",
        "T1, T2 and T3 scale as 1/eta (Lemma 3.1: T1 = Theta(d1 log d / (eta log log d)); the flow depends on time "
        "through eta t): halving the step size doubles each median stage time; measured is the ratio furthest "
        "from 2.",
        measured=float(ratios[worst]), predicted=2.0, tolerance=0.25, kind="rel",
        details={"ratios_T1_T2_T3": ratios, "eta": eta, "T_eta": [stat(T[:, k]) for k in range(3)],
                 "T_eta_half": [stat(st_half.measured_major[:, k]) for k in range(3)]},
        figures=("stage_times.png",)))
    claims.append(Claim(
        "minority_stage1_later_as_predicted",
        "Minority features (frequency eps_min p) finish stage 1 later than majority features, by the factor the "
        "population flow predicts from the same initial projections (median T1 of minority-feature neurons over "
        "that of majority-feature neurons). Lemma 3.1's rate gives 1/eps_min; at finite d the factor is smaller "
        "because the neurons that learn a minority feature start with larger overlaps.",
        measured=median_ratio(st.measured_minor[:, 0], T[:, 0]),
        predicted=median_ratio(st.predicted_minor[:, 0], st.predicted_major[:, 0]), tolerance=0.3, kind="rel",
        details={"T1_minor": stat(st.measured_minor[:, 0]), "T1_major": stat(T[:, 0]), "eps_min": eps,
                 "lemma_3_1_ratio_1_over_eps": 1.0 / eps, "T2_minor": stat(st.measured_minor[:, 1]),
                 "T2_minor_flow": stat(st.predicted_minor[:, 1])},
        figures=("stage_times.png",)))
    return claims


def imbalance_claims(sw: dict, rare_eps: float = 0.1) -> list[Claim]:
    """Unpruned runs at the fixed horizon: rare minority features smaller, learned by fewer neurons."""
    un = 0
    ratio = sw["magnitude_minor"][:, :, un, :] / sw["magnitude_major"][:, :, un, :]
    rare = sw["eps_min"] <= rare_eps + 1e-12
    per_eps = nan_reduce(np.nanmean, ratio, axis=(1, 2))
    dcount = sw["count_minor"][:, :, un, :] - sw["count_major"][:, :, un, :]
    return [with_margin(Claim(
        "minority_smaller_magnitude",
        f"Rare minority features (eps_min <= {rare_eps:g}) are learned with smaller magnitude within the training "
        "horizon: max_i |<w_i, M_j>| of minority features over that of majority features (mean over those "
        "eps_min, NSR and seeds, no pruning) is below 1. Per-eps_min ratios in the details.",
        measured=nan_reduce(np.nanmean, ratio[rare]), predicted=1.0, tolerance=0.0, kind="le",
        details={"per_eps_mean": per_eps, "per_eps_std": nan_reduce(np.nanstd, ratio, axis=(1, 2)),
                 "eps": sw["eps_min"]})),
        with_margin(Claim(
            "minority_fewer_neurons",
            "Minority features are learned by fewer neurons: (#neurons with cos >= 0.3 per minority feature) - "
            "(same per majority feature), mean over eps_min, NSR and seeds without pruning, is negative.",
            measured=nan_reduce(np.nanmean, dcount), predicted=0.0, tolerance=0.0, kind="le",
            details={"per_eps_mean": nan_reduce(np.nanmean, dcount, axis=(1, 2)),
                     "per_eps_std": nan_reduce(np.nanstd, dcount, axis=(1, 2)),
                     "count_major": stat(sw["count_major"][:, :, un, :]),
                     "count_minor": stat(sw["count_minor"][:, :, un, :])},
            figures=("neuron_counts.png",)))]


def pruning_claims(sw: dict, pruning: str) -> list[Claim]:
    """Paired signed-rank tests of the pruning effects on the grid ``sw`` (prune rates 0 and the tested one)."""
    claims = []
    for name, key, up, what, fig in (
            ("pruning_more_minority_neurons", "count_minor", True,
             "increases the number of neurons with cos >= 0.3 per minority feature", "neuron_counts.png"),
            ("pruning_raises_minority_max_cosine", "maxcos_minor", True,
             "raises the largest |cos(w_i, M_j)| of minority features (sharper minority neurons)", "max_cosine.png"),
            ("pruning_lowers_downstream_error", "mse", False,
             "lowers the downstream regression test MSE on the learned representation", "downstream_mse.png")):
        diff = sw[key][:, :, 1, :] - sw[key][:, :, 0, :]
        claims.append(signed_rank_claim(
            name, f"{pruning} {what} in paired runs (same seed, eps_min and NSR, pruned vs not).", diff, increase=up,
            figures=(fig,), details={"per_eps_mean": nan_reduce(np.nanmean, diff, axis=(1, 2)),
                                     "pruned": stat(sw[key][:, :, 1, :]), "unpruned": stat(sw[key][:, :, 0, :])}))
    return claims


def descent_claim(forward: dict, hard: dict) -> Claim:
    """The population descent predicts the effect of one-shot hard pruning; Algorithm 1's numbers in the details.

    ``forward``: one-token runs with prune rates 0 and the tested one under Algorithm 1; ``hard``: the same seeds
    with one-shot hard pruning (rate axis of length 1); both with the descent's predictions.
    """
    plain = forward["maxcos_minor"][:, :, 0, :]
    d_hard, f_hard = hard["maxcos_minor"][:, :, 0, :] - plain, hard["flow_delta_maxcos_minor"][:, :, 0, :]
    d_fwd, f_fwd = forward["maxcos_minor"][:, :, 1, :] - plain, forward["flow_delta_maxcos_minor"][:, :, 1, :]
    both = np.isfinite(d_hard) & np.isfinite(f_hard)
    with np.errstate(invalid="ignore", divide="ignore"):  # constant inputs have no correlation: NaN
        corr = float(np.corrcoef(d_hard[both], f_hard[both])[0, 1]) if both.sum() > 2 else math.nan
    return Claim(
        "hard_pruning_effect_predicted_by_population_descent",
        "The population gradient iterated like SGD from each run's weights at the pruning step, with and without "
        "one-shot hard pruning, predicts how much that pruning raises the largest cosine of minority features: "
        "mean paired difference over eps_min and seeds, SGD against the population descent, in the derivation's "
        "setting (one token per input). Under Algorithm 1 the descent predicts the same effect as for hard pruning "
        "(a masked weight has zero mean gradient, so it never re-enters the mask), while SGD's gradient noise on "
        "the masked weights lets them re-enter and gives a larger effect: both are in the details.",
        measured=nan_reduce(np.nanmean, d_hard[both]), predicted=nan_reduce(np.nanmean, f_hard[both]),
        tolerance=0.35, kind="rel",
        details={"correlation_per_run": corr, "sgd_per_eps_mean": nan_reduce(np.nanmean, d_hard, axis=(1, 2)),
                 "descent_per_eps_mean": nan_reduce(np.nanmean, f_hard, axis=(1, 2)), "n_runs": int(both.sum()),
                 "algorithm_1_sgd": stat(d_fwd), "algorithm_1_descent": stat(f_fwd),
                 "algorithm_1_sgd_per_eps_mean": nan_reduce(np.nanmean, d_fwd, axis=(1, 2))},
        figures=("max_cosine.png",))


def theorem_3_2_claims(conv: dict, widths: dict, tau: float, d: int, horizon_slope: float) -> list[Claim]:
    """Theorem 3.2: the minority coefficient after pruning does not depend on eps_min; specialists scale as m/d."""
    eps = np.broadcast_to(conv["eps_min"][:, None], conv["magnitude_minor"][:, 0, 0, :].shape)
    coef = {c: conv["magnitude_minor"][:, 0, c, :] / tau for c in range(conv["prune_rate"].size)}
    unpruned = fit_slope(eps, coef[0])
    m = np.broadcast_to(widths["width"][:, None], widths["count_minor"][:, 0, :].shape)
    return [
        ci_claim(
            "minority_coefficient_independent_of_eps",
            "Theorem 3.2: after Algorithm 1's pruning the coefficient of a minority feature's most specialised "
            "neuron, over tau, does not depend on eps_min / eps_max (runs trained to convergence, eps_min swept at "
            "fixed eps_max): fitted exponent of coefficient/tau against eps_min is 0.", eps, coef[1], 0.0, 0.25,
            details={"ratio_to_tau_per_eps": nan_reduce(np.nanmean, coef[1], axis=1), "eps": conv["eps_min"],
                     "unpruned_slope": unpruned, "fixed_horizon_unpruned_slope": horizon_slope,
                     "theorem_3_1_unpruned_exponent": 1.0},
            figures=("scaling.png",)),
        ci_claim(
            "specialised_neurons_scale_as_m_over_d",
            "Theorem 3.2: after Algorithm 1's pruning the number of neurons specialised on a minority feature "
            "(|cos| >= 0.3) is Omega(m/d): at fixed d it grows in proportion to the width m (fitted exponent 1).",
            m, widths["count_minor"][:, 0, :], 1.0, 0.3,
            details={"count_over_m_over_d": nan_reduce(np.nanmean, widths["count_minor"][:, 0, :], axis=1)
                     / (widths["width"] / d), "width": widths["width"], "d": d},
            figures=("scaling.png",))]


def fit_slope(x: np.ndarray, y: np.ndarray) -> dict:
    """Fitted log-log slope and its 95% interval over the finite positive points (NaN where impossible)."""
    x, y = np.asarray(x, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel()
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    try:
        fit = fit_power_law(x[ok], y[ok])
    except Exception:
        return {"slope": math.nan, "slope_ci95": [math.nan, math.nan]}
    return {"slope": fit.slope, "slope_ci95": list(fit.slope_ci)}


def d1_claim(d1s: dict, d: int, eta: float) -> Claim:
    """The exponent of T1 in d1 of SGD equals that of the population flow (both fitted per replicate)."""
    x = np.broadcast_to(d1s["d1"][:, None], d1s["T1_sgd"].shape)
    sgd, flow = fit_slope(x, d1s["T1_sgd"]), fit_slope(x, d1s["T1_flow"])
    return ci_claim(
        "stage1_d1_exponent_vs_population_flow",
        "Stage 1 in the ambient dimension d1 at fixed d: T1 of SGD over T1 of the population flow from the same "
        "initial projections does not drift with d1 (fitted exponent of the ratio 0), i.e. SGD's exponent of T1 in "
        "d1 is the flow's. Lemma 3.1's Theta(d1 log d / (eta log log d)) would give exponent 1; here d1 enters only "
        "through the initial overlap ~ 1/sqrt(d1) (T1 ~ (ln d1 / 2) / rate), see the details.",
        x, d1s["T1_sgd"] / d1s["T1_flow"], 0.0, 0.15,
        details={"sgd_exponent": sgd, "flow_exponent": flow, "lemma_3_1_exponent": 1.0,
                 "lemma_3_1_exponent_in_sgd_ci": bool(sgd["slope_ci95"][0] <= 1.0 <= sgd["slope_ci95"][1]),
                 "T1_sgd": nan_reduce(np.nanmean, d1s["T1_sgd"], axis=1),
                 "T1_flow": nan_reduce(np.nanmean, d1s["T1_flow"], axis=1), "d1": d1s["d1"], "d": d, "eta": eta},
        figures=("scaling.png",))
