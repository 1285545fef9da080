"""Sweeps behind ``reproduce``: grids over eps_min / NSR / pruning / width, and the d1 sweep of stage 1.

A sweep point is one configuration with all its replicates: they train in parallel threads
(:func:`._model.train_replicates`), and a point's values are arrays over replicates. Replicate ``s`` trains
with the same seed at every point of a grid, so a pruned and an unpruned run of one configuration share
features, initial weights and batches up to the pruning step (a paired design).
"""

from __future__ import annotations

import itertools
import os
from typing import Any, Mapping, Sequence

import numpy as np

from ..._checks import check_int
from ..._random import SeedLike, spawn_seeds
from ...errors import InvalidParameterError
from ...simulate import map_threads
from ...sweep import SweepResult, sweep as run_sweep
from . import _flow as fl
from . import _metrics as mt
from . import _model as mdl
from . import _stages as stg
from ._config import Config

METRICS = ("count_major", "count_minor", "maxcos_major", "maxcos_minor", "magnitude_major", "magnitude_minor",
           "pos_cosine", "mse", "flow_delta_count_minor", "flow_delta_maxcos_minor")
STAGE1_VALUES = ("T1_sgd", "T1_flow", "n_neurons")


def evaluate(run: mdl.Run, seed: SeedLike = 0) -> dict[str, float]:
    """All final metrics of one run (:func:`._metrics.feature_metrics`, positive-pair cosine, downstream MSE)."""
    s = spawn_seeds(seed, 2)
    out = mt.feature_metrics(run)
    out["pos_cosine"] = mt.positive_pair_cosine(run, seed=int(s[0]))
    out["mse"] = mt.downstream_mse(run, seed=int(s[1]))
    return out


def _descent_metrics(cfg: Config, W: np.ndarray, M: np.ndarray) -> dict[str, float]:
    return mt.projection_metrics(W @ M.T, np.linalg.norm(W, axis=1), cfg.n_major)


def pruning_flow_effect(run: mdl.Run) -> dict[str, float]:
    """Pruning's effect on the minority features as the population gradient predicts it.

    :func:`._flow.population_descent` is restarted from the run's weights at the pruning step
    (``run.W_at_prune``) twice, without and with the run's pruning (Algorithm 1's mask or the one-shot mask),
    to the end of training; the differences (pruned - unpruned) of the metrics of the forward weights are
    ``flow_delta_count_minor`` and ``flow_delta_maxcos_minor``. A run without pruning gives 0. Needs the
    coordinate basis.
    """
    cfg = run.config
    if run.W_at_prune is None:
        return {"flow_delta_count_minor": 0.0, "flow_delta_maxcos_minor": 0.0}
    n = cfg.steps - run.prune_step
    plain = fl.population_descent(cfg, run.W_at_prune, run.M, n)
    pruned = fl.population_descent(cfg, run.W_at_prune, run.M, n, prune=cfg.prune)
    mask = mdl.magnitude_prune(pruned, cfg.prune_rate, cfg.prune_mode) if cfg.prune == "forward_mask" else 1.0
    before, after = _descent_metrics(cfg, plain, run.M), _descent_metrics(cfg, pruned * mask, run.M)
    return {f"flow_delta_{k}": after[k] - before[k] for k in ("count_minor", "maxcos_minor")}


# --------------------------------------------------------------------------------------------- grid sweeps
def grid_sweep_points(base: Config, axes: Mapping[str, Sequence[float]], n_seeds: int, seed: SeedLike = 0,
                      *, flow: bool = True) -> list[dict]:
    """One point per combination of the ``axes`` (C order; each axis a Config field: ``eps_min``, ``nsr``,
    ``prune_rate``, ``width``, ...), each with the ``n_seeds`` replicate seeds ``spawn_seeds(seed, n_seeds)``.

    ``config`` is the whole base configuration as a plain dict, so stored points are only reused for the same
    settings; ``flow`` adds the population-gradient prediction of the pruning effect (:func:`pruning_flow_effect`).
    """
    check_int("n_seeds", n_seeds, 1)
    names = list(axes)
    for name in names:
        if name not in Config.__dataclass_fields__:
            raise InvalidParameterError(f"sweep axis {name!r} is not a Config field")
    values = [[float(v) if name != "width" else int(v) for v in axes[name]] for name in names]
    conf = base.as_dict()
    seeds = [int(s) for s in spawn_seeds(seed, n_seeds)]
    return [{"overrides": dict(zip(names, combo)), "train_seeds": seeds, "config": conf, "flow": bool(flow)}
            for combo in itertools.product(*values)]


def grid_point(params: dict, seed: int) -> dict[str, np.ndarray]:
    """Train the replicates of one configuration in parallel and evaluate them (sweep point function).

    Returns :data:`METRICS` as float64[n_seeds] arrays (the flow deltas 0 unless ``params["flow"]``). Replicate
    ``s`` trains with ``train_seeds[s]`` and is evaluated with ``train_seeds[s] + 1``; the sweep's per-point
    ``seed`` is not used, because pairing pruned and unpruned runs needs the same seed for both.
    """
    del seed  # the pairing by replicate fixes all randomness, see above
    cfg = Config(**params["config"]).with_(**params["overrides"])

    def one(train_seed: int) -> dict[str, float]:
        run = mdl.train(cfg, train_seed)
        values = evaluate(run, train_seed + 1)
        values |= pruning_flow_effect(run) if params["flow"] else {"flow_delta_count_minor": 0.0,
                                                                    "flow_delta_maxcos_minor": 0.0}
        return values

    rows = map_threads(one, params["train_seeds"])
    return {k: np.array([r[k] for r in rows], dtype=np.float64) for k in METRICS}


def collect(result: SweepResult, shape: tuple[int, ...], keys: Sequence[str], describe) -> dict[str, Any]:
    """``{key: float64[*shape, n_seeds]}`` from the points of a sweep (in C order of ``shape``); a failed point
    leaves NaN in every key at its place and one line ``describe(point)`` in ``failures``."""
    if len(result.points) != int(np.prod(shape)):
        raise InvalidParameterError(f"expected {int(np.prod(shape))} sweep points for a grid of shape {shape}, "
                                    f"got {len(result.points)}")
    n_seeds = len(result.points[0].params["train_seeds"])
    out: dict[str, Any] = {k: np.full((*shape, n_seeds), np.nan) for k in keys}
    failures = []
    for p in result.points:
        where = np.unravel_index(p.index, shape)
        if p.status != "ok":
            failures.append(f"{describe(p.params)}: {p.status}: {p.error}")
            continue
        for k in keys:
            out[k][where] = p.values.get(k, np.nan)  # points stored before a key existed lack it
    out["failures"] = failures
    return out


def sweep(base: Config, axes: Mapping[str, Sequence[float]], n_seeds: int, seed: SeedLike = 0,
          desc: str = "eps/NSR/pruning sweep", *, flow: bool = True, processes: int | None = 1,
          scheduler: Any = None, store: str | os.PathLike | None = None) -> dict[str, Any]:
    """Train and evaluate on the grid ``axes x replicate`` (see :func:`grid_sweep_points`).

    Runs :func:`grid_point` with :func:`theorykit.sweep.sweep` (``processes``, ``scheduler`` and ``store`` are
    passed on: inline by default, a local pool, a dask cluster; ``store`` keeps finished points for resuming).
    Returns ``{metric: float64[*axis_lengths, n_seeds]}`` plus the axes (by name), the replicates' training
    seeds ``seeds`` and ``failures`` (one line per failed point; its entries are NaN).
    """
    points = grid_sweep_points(base, axes, n_seeds, seed, flow=flow)
    result = run_sweep(grid_point, points, seed=seed, processes=processes, scheduler=scheduler, store=store,
                       desc=desc)
    shape = tuple(len(v) for v in axes.values())
    out = collect(result, shape, METRICS,
                  lambda p: ", ".join(f"{k}={v:g}" for k, v in p["overrides"].items()) + f" ({base.prune})")
    out |= {k: np.asarray(v, dtype=np.float64) for k, v in axes.items()}
    out["seeds"] = np.asarray(spawn_seeds(seed, n_seeds))
    return out


# ---------------------------------------------------------------------------------------------- d1 sweep
def stage1_times(run: mdl.Run) -> dict[str, float]:
    """Median T1 over the neurons that learned a majority feature, in SGD and in the population flow from the
    run's initial projections (:func:`._stages.stage_summary`), over the neurons where both are detected."""
    st = stg.stage_summary(run)
    sgd, flow = st.measured_major[:, 0], st.predicted_major[:, 0]
    both = np.isfinite(sgd) & np.isfinite(flow)
    nan = float("nan")
    return {"T1_sgd": float(np.median(sgd[both])) if both.any() else nan,
            "T1_flow": float(np.median(flow[both])) if both.any() else nan, "n_neurons": float(both.sum())}


def d1_point(params: dict, seed: int) -> dict[str, np.ndarray]:
    """Stage-1 times of the replicates of one ambient dimension (sweep point function, like :func:`grid_point`)."""
    del seed
    cfg = Config(**params["config"]).with_(**params["overrides"])
    rows = map_threads(lambda s: stage1_times(mdl.train(cfg, s)), params["train_seeds"])
    return {k: np.array([r[k] for r in rows], dtype=np.float64) for k in STAGE1_VALUES}


def d1_sweep(base: Config, d1_values: Sequence[int], n_seeds: int, seed: SeedLike = 0, *,
             processes: int | None = 1, scheduler: Any = None,
             store: str | os.PathLike | None = None) -> dict[str, Any]:
    """T1 of SGD and of the population flow over the ambient dimension ``d1`` at fixed ``d`` (:func:`d1_point`).

    Returns ``{T1_sgd, T1_flow, n_neurons: float64[n_d1, n_seeds]}``, ``d1``, ``seeds`` and ``failures``.
    """
    d1_values = [check_int("d1", v, base.d) for v in d1_values]
    points = grid_sweep_points(base, {"d1": d1_values}, n_seeds, seed, flow=False)
    for p in points:
        p["overrides"]["d1"] = int(p["overrides"]["d1"])
    result = run_sweep(d1_point, points, seed=seed, processes=processes, scheduler=scheduler, store=store,
                       desc="d1 sweep")
    out = collect(result, (len(d1_values),), STAGE1_VALUES, lambda p: f"d1={p['overrides']['d1']}")
    return out | {"d1": np.asarray(d1_values, dtype=np.float64), "seeds": np.asarray(spawn_seeds(seed, n_seeds))}


def mc_gradient_check(cfg: Config, a: np.ndarray, r: float, n_batches: int, seed: SeedLike = 0
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Monte-Carlo average of the sampled InfoNCE gradient of one neuron, projected on ``M_k`` and the noise
    direction, next to the symbolic population gradient summed over every code (:func:`._flow.projected_gradient`
    with ``exact=True``). Returns ``(symbolic, mc_mean, mc_se)``, each float64[d + 1]. Use ``n_tokens = 1`` and a
    large ``tau`` (the derivation's regime: InfoNCE linear in the logits)."""
    from ..._random import as_generator

    rng = as_generator(seed)
    M = mdl.feature_matrix(cfg, 0)
    e = rng.standard_normal(cfg.d1)
    e -= M.T @ (M @ e)
    e /= np.linalg.norm(e)
    W = np.ascontiguousarray((np.asarray(a, dtype=np.float64) @ M + r * e)[None, :])
    b = mdl.bias_of(cfg, W)
    G = np.empty((n_batches, cfg.d + 1))
    for k, sd in enumerate(spawn_seeds(rng, n_batches)):
        X, Y, _ = mdl.sample_pairs(cfg, cfg.batch, int(sd), M=M)
        _, g = mdl.loss_and_grad(cfg, W, X, Y, bias=b)
        G[k, :-1], G[k, -1] = M @ g[0], e @ g[0]
    return fl.projected_gradient(cfg, a, r, exact=True), G.mean(0), G.std(0, ddof=1) / np.sqrt(n_batches)

