"""The experiments behind the claims: the Monte-Carlo check of the population gradient, stage detection in SGD
and in the population flow, the pruning effect the population descent predicts, the sweeps over eps_min / NSR /
pruning / width / d1, and the statistics the claims state.

A sweep point is one configuration with all its replicates: they train in parallel threads
(:func:`._simulate.simulate_replicates`), and a point's values are arrays over replicates, so that
``SweepResult.grid(axes, key)`` gives ``(*axes, replicate)`` arrays. Replicate ``s`` trains with the same seed at
every point of a grid, so a pruned and an unpruned run of one configuration share features, initial weights
and batches up to the pruning step (a paired design). The sweeps run through ``sweeps.sweep(...)``, where
``sweeps`` is the :class:`theorykit.validate.Study` of a report or a :class:`theorykit.sweep.SweepOptions`.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from ..._checks import check_int
from ..._random import SeedLike, as_generator, spawn_seeds
from ...errors import InvalidParameterError
from ...simulate import ParticleRun, map_threads
from ...sweep import SweepOptions
from ...validate import compare, fit_power_law, nan_reduce
from . import _analysis as A
from . import _data as D
from . import _simulate as sim
from ._config import Config, network_state_names

METRICS = ("count_major", "count_minor", "maxcos_major", "maxcos_minor", "magnitude_major", "magnitude_minor",
           "pos_cosine", "mse", "flow_delta_count_minor", "flow_delta_maxcos_minor")
STAGE1_VALUES = ("T1_sgd", "T1_flow", "n_neurons")


# ------------------------------------------------------------------------------------------------ settings
def default_config(quick: bool = True) -> Config:
    """The base configuration of ``reproduce`` (small in ``quick`` mode): identity attention, the bias schedule,
    Algorithm 1's pruning (rate 0 here; the sweeps set it)."""
    if quick:
        return Config(d1=32, n_major=3, n_minor=3, p=0.1, nsr=1.0, n_tokens=3, width=48, tau=1.0, lam=0.01,
                      eta=0.05, batch=32, steps=2400, record_every=20, prune_at=0.2)
    return Config(d1=48, n_major=4, n_minor=4, p=0.1, nsr=1.0, n_tokens=3, width=64, tau=1.0, lam=0.01, eta=0.05,
                  batch=48, steps=4000, record_every=20, prune_at=0.2)


def one_token_config(base: Config) -> Config:
    """``base`` in the derivation's setting: one token per input (attention cannot mix tokens), with the batch and
    the step scaled so that tokens per step and the time scale ``eta L / tau`` are those of ``base``."""
    return base.with_(n_tokens=1, batch=base.batch * base.n_tokens, eta=base.eta * base.n_tokens)


def converged_config(base: Config, quick: bool = True) -> Config:
    """The runs of Theorem 3.2's checks: weak L2 and a larger step, long enough that minority features
    converge (Theorem 3.1's training window) at every swept eps_min."""
    return base.with_(lam=1e-3, eta=0.2, steps=3200 if quick else 5000, prune_at=0.25)


def evaluate(run: ParticleRun, seed: SeedLike = 0) -> dict[str, float]:
    """All final metrics of one run (:func:`._simulate.feature_metrics`, positive-pair cosine, downstream MSE)."""
    s = spawn_seeds(seed, 2)
    out = sim.feature_metrics(run)
    out["pos_cosine"] = sim.positive_pair_cosine(run, seed=int(s[0]))
    out["mse"] = sim.downstream_mse(run, seed=int(s[1]))
    return out


def pruning_flow_effect(run: ParticleRun) -> dict[str, float]:
    """Pruning's effect on the minority features as the population gradient predicts it.

    :func:`._analysis.population_descent` is restarted from the run's weights at the pruning step
    (:func:`._simulate.weights_at_prune`) twice, without and with the run's pruning (Algorithm 1's mask or the
    one-shot mask), to the end of training; the differences (pruned - unpruned) of the metrics of the forward
    weights are ``flow_delta_count_minor`` and ``flow_delta_maxcos_minor``. A run without pruning gives 0. Needs
    the coordinate basis.
    """
    cfg, W_at, M = sim.run_config(run), sim.weights_at_prune(run), run.params["features"]
    if W_at is None:
        return {"flow_delta_count_minor": 0.0, "flow_delta_maxcos_minor": 0.0}
    n = cfg.steps - run.params["prune_step"]
    plain = A.population_descent(cfg, W_at, M, n)
    pruned = A.population_descent(cfg, W_at, M, n, prune=cfg.prune)
    mask = D.magnitude_prune(pruned, cfg.prune_rate, cfg.prune_mode) if cfg.prune == "forward_mask" else 1.0
    before, after = (sim.projection_metrics(W @ M.T, np.linalg.norm(W, axis=1), cfg.n_major)
                     for W in (plain, pruned * mask))
    return {f"flow_delta_{k}": after[k] - before[k] for k in ("count_minor", "maxcos_minor")}


def mc_gradient_check(cfg: Config, a: np.ndarray, r: float, n_batches: int, seed: SeedLike = 0
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Monte-Carlo average of the sampled InfoNCE gradient of one neuron, projected on ``M_k`` and the noise
    direction, next to the symbolic population gradient summed over every code (:func:`._analysis.projected_gradient`
    with ``exact=True``). Returns ``(symbolic, mc_mean, mc_se)``, each float64[d + 1]. Use ``n_tokens = 1`` and a
    large ``tau`` (the derivation's regime: InfoNCE linear in the logits)."""
    rng = as_generator(seed)
    M = D.feature_matrix(cfg, 0)
    e = rng.standard_normal(cfg.d1)
    e -= M.T @ (M @ e)
    e /= np.linalg.norm(e)
    W = np.ascontiguousarray((np.asarray(a, dtype=np.float64) @ M + r * e)[None, :])
    b = D.bias_of(cfg, W)
    G = np.empty((n_batches, cfg.d + 1))
    for k, sd in enumerate(spawn_seeds(rng, n_batches)):
        X, Y, _ = D.sample_pairs(cfg, cfg.batch, int(sd), M=M)
        _, g = D.loss_and_grad(cfg, W, X, Y, bias=b)
        G[k, :-1], G[k, -1] = M @ g[0], e @ g[0]
    return A.projected_gradient(cfg, a, r, exact=True), G.mean(0), G.std(0, ddof=1) / np.sqrt(n_batches)


# ------------------------------------------------------------------------------------------------ stages
@dataclass(frozen=True)
class StageSummary:
    """Stage times of the neurons that learned a feature (:func:`._analysis.learned_neurons`).

    ``measured_*`` (SGD) and ``predicted_*`` (the saturating population flow started from the same initial
    projections) are float64[n, 3] with columns ``T1, T2, T3``, for majority- and minority-feature neurons;
    ``neurons_*`` and ``features_*`` (int64[n]) name each row's neuron and dominant feature. ``t``, ``proj``
    float64[n_t, m, K] and ``noise`` float64[n_t, m] are the SGD records, ``flow_proj`` and ``flow_noise`` the
    flow's (``None`` without flow), and ``flow_deviation`` the median over the majority-feature neurons of the
    largest ``|SGD - flow|`` over time of the dominant projection (:func:`theorykit.validate.compare`), relative to
    its final SGD value (NaN without flow or without such neurons).
    """

    measured_major: np.ndarray
    measured_minor: np.ndarray
    predicted_major: np.ndarray
    predicted_minor: np.ndarray
    neurons_major: np.ndarray
    neurons_minor: np.ndarray
    features_major: np.ndarray
    features_minor: np.ndarray
    t: np.ndarray
    proj: np.ndarray
    noise: np.ndarray
    flow_proj: np.ndarray | None = None
    flow_noise: np.ndarray | None = None
    flow_deviation: float = float("nan")


def stage_summary(run: ParticleRun, *, with_flow: bool = True) -> StageSummary:
    """Detect the three stages of every neuron that learned a feature and, with ``with_flow``, in the
    population flow (:func:`._analysis.flow_solution`) integrated from the run's initial projections."""
    cfg = sim.run_config(run)
    proj, noise = sim.network_trajectories(run, cfg.width, cfg.d)
    neurons, features = A.learned_neurons(proj, noise)
    major = features < cfg.n_major
    measured = A.stage_times(run.t, proj, noise, neurons, features)
    fp = fn = None
    predicted, deviation = np.full_like(measured, np.nan), float("nan")
    if with_flow:
        sol = A.flow_solution(cfg, proj[0], noise[0], run.t)
        fp, fn = sim.network_trajectories(sol, cfg.width, cfg.d)
        predicted = A.stage_times(run.t, fp, fn, neurons, features)
        names = network_state_names(cfg.width, cfg.d)
        dominant = [(int(i), int(j)) for i, j in zip(neurons[major], features[major])]
        if dominant:
            gap = compare(sol, run, [names[i * cfg.d + j] for i, j in dominant]).errors
            deviation = float(np.median([gap[names[i * cfg.d + j]] / abs(proj[-1, i, j]) for i, j in dominant]))
    return StageSummary(measured[major], measured[~major], predicted[major], predicted[~major], neurons[major],
                        neurons[~major], features[major], features[~major], run.t, proj, noise, fp, fn, deviation)


def median_stage_times(T: np.ndarray) -> np.ndarray:
    """float64[3]: median ``T1, T2, T3`` over neurons (NaN where none was detected), without warnings."""
    T = np.asarray(T, dtype=np.float64).reshape(-1, 3)
    return nan_reduce(np.nanmedian, np.where(np.isfinite(T), T, np.nan), axis=0)


def stage_study(base: Config, seed: int) -> dict[str, Any]:
    """The stage dynamics: in the derivation's setting (one token, eps_min 0.4), at half the step size, and with L
    tokens under fixed and trained identity attention (four runs of seed ``seed`` in parallel threads).

    Returns the one-token config ``config``, its ``run`` and summaries ``stages`` and ``stages_half`` (without
    flow), the L-token summary ``stages_tokens``, and ``attention``: the relative Frobenius change of the trained
    score matrix and the largest relative change of the median stage times against fixed attention."""
    cfg = one_token_config(base).with_(eps_min=0.4)
    attn_cfg = base.with_(eps_min=0.2)
    run, run_half, run_fixed, run_attn = map_threads(
        lambda c: sim.simulate_sgd(c, seed),
        [cfg, cfg.with_(eta=cfg.eta / 2), attn_cfg, attn_cfg.with_(attention="trained")])
    st_tokens, st_attn = stage_summary(run_fixed), stage_summary(run_attn, with_flow=False)
    A0 = attn_cfg.initial_attention()
    med, med_attn = median_stage_times(st_tokens.measured_major), median_stage_times(st_attn.measured_major)
    with np.errstate(invalid="ignore", divide="ignore"):
        change = np.abs(med_attn / med - 1.0)
    attention = {"relative_change_A": float(np.linalg.norm(sim.run_attention(run_attn) - A0) / np.linalg.norm(A0)),
                 "median_T_fixed": med, "median_T_trained": med_attn,
                 "max_relative_change_T": float(np.nanmax(change)) if np.isfinite(change).any() else float("nan")}
    return {"config": cfg, "run": run, "stages": stage_summary(run),
            "stages_half": stage_summary(run_half, with_flow=False), "stages_tokens": st_tokens, "attention": attention}


# ------------------------------------------------------------------------------------------------ sweeps
def grid_points(base: Config, axes: Mapping[str, Sequence[float]], n_seeds: int, seed: SeedLike = 0, *,
                flow: bool = True) -> list[dict]:
    """One point per combination of the ``axes`` (C order; each axis a Config field: ``eps_min``, ``nsr``,
    ``prune_rate``, ``width``, ``d1``, ...), each with the ``n_seeds`` replicate seeds ``spawn_seeds(seed, n_seeds)``.

    ``config`` is the whole base configuration as a plain dict, so stored points are only reused for the same
    settings; ``flow`` adds the population-gradient prediction of the pruning effect (:func:`pruning_flow_effect`).
    """
    check_int("n_seeds", n_seeds, 1)
    names = list(axes)
    for name in names:
        if name not in Config.__dataclass_fields__ or isinstance(getattr(base, name), (bool, str, type(None))):
            raise InvalidParameterError(f"sweep axis {name!r} is not a numeric Config field")
    values = [[type(getattr(base, name))(v) for v in axes[name]] for name in names]
    seeds = [int(s) for s in spawn_seeds(seed, n_seeds)]
    return [{**dict(zip(names, combo)), "axes": names, "train_seeds": seeds, "config": base.as_dict(),
             "flow": bool(flow)} for combo in itertools.product(*values)]


def _point_config(params: dict) -> Config:
    return Config(**params["config"]).with_(**{a: params[a] for a in params["axes"]})


def grid_point(params: dict, seed: int) -> dict[str, np.ndarray]:
    """Train the replicates of one configuration in parallel and evaluate them (sweep point function).

    Returns :data:`METRICS` as float64[n_seeds] arrays (the flow deltas 0 unless ``params["flow"]``). Replicate
    ``s`` trains with ``train_seeds[s]`` and is evaluated with ``train_seeds[s] + 1``; the sweep's per-point
    ``seed`` is not used, because pairing pruned and unpruned runs needs the same seed for both.
    """
    del seed  # the pairing by replicate fixes all randomness, see above
    cfg = _point_config(params)

    def one(train_seed: int) -> dict[str, float]:
        run = sim.simulate_sgd(cfg, train_seed)
        values = evaluate(run, train_seed + 1)
        values |= pruning_flow_effect(run) if params["flow"] else {"flow_delta_count_minor": 0.0,
                                                                    "flow_delta_maxcos_minor": 0.0}
        return values

    rows = map_threads(one, params["train_seeds"])
    return {k: np.array([r[k] for r in rows], dtype=np.float64) for k in METRICS}


def stage1_point(params: dict, seed: int) -> dict[str, np.ndarray]:
    """Median T1 of the replicates of one configuration (sweep point function, like :func:`grid_point`) over the
    neurons that learned a majority feature, in SGD and in the population flow from the run's initial
    projections, over the neurons where both are detected; returns :data:`STAGE1_VALUES` per replicate."""
    del seed

    def one(train_seed: int) -> dict[str, float]:
        st = stage_summary(sim.simulate_sgd(_point_config(params), train_seed))
        sgd, flow = st.measured_major[:, 0], st.predicted_major[:, 0]
        both = np.isfinite(sgd) & np.isfinite(flow)
        nan = float("nan")
        return {"T1_sgd": float(np.median(sgd[both])) if both.any() else nan,
                "T1_flow": float(np.median(flow[both])) if both.any() else nan, "n_neurons": float(both.sum())}

    rows = map_threads(one, params["train_seeds"])
    return {k: np.array([r[k] for r in rows], dtype=np.float64) for k in STAGE1_VALUES}


def grid_study(base: Config, axes: Mapping[str, Sequence[float]], n_seeds: int, seed: SeedLike = 0, *,
               sweeps: Any = SweepOptions(), desc: str = "eps/NSR/pruning sweep", flow: bool = True,
               point=grid_point, keys: Sequence[str] = METRICS) -> dict[str, Any]:
    """Train and evaluate on the grid ``axes x replicate`` as one sweep (:func:`grid_points`, ``point`` the point
    function: :func:`grid_point` or :func:`stage1_point` with ``keys`` :data:`STAGE1_VALUES`).

    Returns ``{key: float64[*axis_lengths, n_seeds]}`` (NaN where a point failed), the axes (by name), the
    replicates' training seeds ``seeds``, ``desc`` and ``failures`` (one line per failed point).
    """
    points = grid_points(base, axes, n_seeds, seed, flow=flow)
    res = sweeps.sweep(point, points, seed=seed, desc=desc)
    grids = {k: res.grid(tuple(axes), k) for k in keys}
    out: dict[str, Any] = {k: g.values for k, g in grids.items()}
    out |= {a: np.asarray(c, dtype=np.float64) for a, c in grids[keys[0]].coords.items()}
    return out | {"seeds": np.asarray(spawn_seeds(seed, n_seeds)), "desc": desc,
                  "failures": [f"{desc}: {line}" for line in grids[keys[0]].failures]}


def pruning_studies(base: Config, eps_values: Sequence[float], nsr_values: Sequence[float], rate: float,
                    n_seeds: int, seed: int, *, n_seeds_descent: int | None = None,
                    sweeps: Any = SweepOptions()) -> dict[str, dict]:
    """The pruning sweeps, all with the replicate seeds of ``seed`` (paired; a sweep with more replicates starts
    with the same ones): ``grid`` (eps_min x NSR x prune rate 0 / ``rate`` under Algorithm 1) and ``hard`` (one-shot
    hard pruning at NSR 1); in the derivation's setting (one token per input, with the population descent's
    predictions) ``one_token_plain`` (unpruned) and ``one_token_hard`` (hard pruning) with ``n_seeds_descent``
    replicates (default ``n_seeds``), and ``one_token_forward`` (Algorithm 1)."""
    one, n_descent = one_token_config(base), n_seeds if n_seeds_descent is None else n_seeds_descent
    at_nsr1 = {"eps_min": eps_values, "nsr": (1.0,)}

    def one_token(cfg: Config, r: float, n: int, desc: str) -> dict:
        return grid_study(cfg, at_nsr1 | {"prune_rate": (r,)}, n, seed, sweeps=sweeps, desc=desc)

    return {"grid": grid_study(base, {"eps_min": eps_values, "nsr": nsr_values, "prune_rate": (0.0, rate)}, n_seeds,
                               seed, sweeps=sweeps, flow=False),
            "hard": grid_study(base.with_(prune="hard"), at_nsr1 | {"prune_rate": (rate,)}, n_seeds, seed,
                               sweeps=sweeps, desc="hard-pruning sweep", flow=False),
            "one_token_plain": one_token(one, 0.0, n_descent, "one-token sweep without pruning"),
            "one_token_forward": one_token(one, rate, n_seeds, "one-token pruning sweep"),
            "one_token_hard": one_token(one.with_(prune="hard"), rate, n_descent, "one-token hard-pruning sweep")}


def d1_study(base: Config, d1s: Sequence[int], n_seeds: int, seed: int, *,
             sweeps: Any = SweepOptions()) -> dict[str, Any]:
    """Stage 1 against the ambient dimension d1 at fixed d, with the noise variance per coordinate held at
    ``base.sigma ** 2`` (Assumption 3.1 ties it to d, not to d1), so the noise norm grows as sqrt(d1): one
    :func:`stage1_point` sweep per d1 (``nsr = base.sigma * sqrt(d1)``).

    Returns ``T1_sgd``, ``T1_flow``, ``n_neurons`` (float64[n_d1, n_seeds], replicate ``r`` with the same seed at
    every d1), ``d1``, ``sigma`` and ``failures``.
    """
    runs = [grid_study(base.with_(nsr=base.sigma * math.sqrt(d1)), {"d1": (int(d1),)}, n_seeds, seed, sweeps=sweeps,
                       desc=f"d1 sweep (d1 {d1})", flow=False, point=stage1_point, keys=STAGE1_VALUES) for d1 in d1s]
    return {**_stacked(runs, STAGE1_VALUES), "d1": np.array([float(d1) for d1 in d1s]), "sigma": base.sigma,
            "failures": _failures(runs)}


def temperature_study(base: Config, taus: Sequence[float], n_seeds: int, seed: int, *,
                      sweeps: Any = SweepOptions()) -> dict[str, Any]:
    """The converged runs of the temperature check: ``at_tau`` trains at each temperature of ``taus`` with ``base``'s
    L2 ``lam`` and step, ``at_lam_tau`` at temperature 1 with L2 ``lam * tau`` (the same products ``lam tau``;
    tau = 1 is one run for both). Runs at tau > 1 get ``tau`` times the steps, as the loss's time scale is
    ``eta / tau``. By the temperature scaling of the loss (``W = sqrt(tau) V`` turns the loss at ``(tau, lam)``
    into that of ``V`` at ``(1, lam tau)``) a converged state at ``(tau, lam)`` is ``sqrt(tau)`` times one at
    ``(1, lam tau)``.

    Returns ``tau`` float64[n_tau], ``lam`` (``base.lam``), ``at_tau`` and ``at_lam_tau`` (``{metric:
    float64[n_tau, n_seeds]}``, replicate ``r`` with the same seed everywhere) and ``failures``.
    """
    taus = [float(t) for t in taus]
    if 1.0 not in taus:
        raise InvalidParameterError(f"taus must contain 1, got {taus}")
    at_tau = [grid_study(base.with_(tau=t, steps=int(round(base.steps * max(1.0, t)))), {"tau": (t,)}, n_seeds,
                         seed, sweeps=sweeps, desc=f"temperature sweep (tau {t:g})", flow=False) for t in taus]
    others = tuple(base.lam * t for t in taus if t != 1.0)
    at_lam = grid_study(base, {"lam": others}, n_seeds, seed, sweeps=sweeps, desc="L2 sweep at tau 1", flow=False)
    at_one = taus.index(1.0)

    def rows(k: str) -> np.ndarray:
        lam_rows = list(at_lam[k])
        lam_rows.insert(at_one, at_tau[at_one][k][0])
        return np.array(lam_rows)

    return {"tau": np.array(taus), "lam": base.lam, "at_tau": _stacked(at_tau, METRICS),
            "at_lam_tau": {k: rows(k) for k in METRICS}, "failures": _failures([*at_tau, at_lam])}


def _stacked(runs: Sequence[dict], keys: Sequence[str]) -> dict[str, np.ndarray]:
    """The ``keys`` of one-value :func:`grid_study` results, one row per run (studies whose points differ in more
    than the swept value run one sweep per value)."""
    return {k: np.concatenate([r[k] for r in runs]) for k in keys}


def _failures(runs: Sequence[dict]) -> list[str]:
    return [line for r in runs for line in r["failures"]]


# ------------------------------------------------------------------------------------------------ summaries
def stat(x: np.ndarray) -> dict[str, float]:
    """Mean, standard deviation and count of the finite entries of ``x``."""
    x = np.asarray(x, dtype=np.float64).ravel()
    x = x[np.isfinite(x)]
    return {"mean": float(np.mean(x)) if x.size else math.nan,
            "std": float(np.std(x, ddof=1)) if x.size > 1 else 0.0, "n": int(x.size)}


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


def fit_slope(x: np.ndarray, y: np.ndarray) -> dict:
    """Fitted log-log slope of ``y ~ x^slope`` (seeds as repeated x) over the finite positive points, with its
    95% interval, R^2 and number of points (NaN where fewer than two distinct x remain)."""
    x, y = np.asarray(x, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel()
    ok = np.isfinite(x) & (x > 0) & (y > 0)  # non-finite y (failed points) are left out by the fit
    fit = fit_power_law(x[ok], y[ok], nan_policy="omit")
    return {"slope": fit.slope, "slope_ci95": list(fit.slope_ci), "r_squared": fit.r_squared, "n_points": fit.n_points}


def fit_paired_slope(x: np.ndarray, y: np.ndarray) -> dict:
    """Log-log slope of ``y ~ x^slope`` within replicates paired across ``x``.

    ``y`` float64[n_x, n_rep] holds replicate ``r`` at ``x[i]`` in column ``r``; the replicates are paired (the
    same training seed, hence the same initial weights and random streams, at every ``x``), so each gets its own
    prefactor and the slope comes from the changes along ``x`` within replicates: the least-squares fit of
    ``log y = a_r + slope log x``. The 95% interval uses the t distribution with ``n - n_rep - 1`` degrees of
    freedom over the ``n`` finite positive points (a replicate with fewer than two of them is left out); the
    result is NaN where no degree of freedom remains.
    """
    from scipy import stats

    with np.errstate(divide="ignore", invalid="ignore"):
        lx, ly = np.log(np.asarray(x, dtype=np.float64)), np.log(np.asarray(y, dtype=np.float64))
    ok = np.isfinite(ly) & np.isfinite(lx)[:, None]
    cols = [r for r in range(ly.shape[1]) if ok[:, r].sum() >= 2]
    dx = [lx[ok[:, r]] - lx[ok[:, r]].mean() for r in cols]
    dy = [ly[ok[:, r], r] - ly[ok[:, r], r].mean() for r in cols]
    n = sum(a.size for a in dx)
    sxx, dof = sum(float(a @ a) for a in dx), n - len(cols) - 1
    nan = float("nan")
    if dof < 1 or sxx <= 0:
        return {"slope": nan, "slope_ci95": [nan, nan], "n_points": n, "n_replicates": len(cols)}
    slope = sum(float(a @ b) for a, b in zip(dx, dy)) / sxx
    half = stats.t.ppf(0.975, dof) * math.sqrt(sum(float(((b - slope * a) ** 2).sum()) for a, b in zip(dx, dy))
                                               / dof / sxx)
    return {"slope": slope, "slope_ci95": [float(slope - half), float(slope + half)], "n_points": n,
            "n_replicates": len(cols)}


__all__ = ["METRICS", "STAGE1_VALUES", "default_config", "one_token_config", "converged_config", "evaluate",
           "pruning_flow_effect", "mc_gradient_check", "StageSummary", "stage_summary", "median_stage_times",
           "stage_study", "grid_points", "grid_point", "stage1_point", "grid_study", "pruning_studies", "stat",
           "paired_medians", "median_ratio", "fit_slope", "fit_paired_slope"]
