"""Finite-width simulation: SGD with magnitude pruning on the Transformer-MLP encoder, and the paper's metrics
of a trained run.

Training runs the step kernel :func:`._kernels.sgd_steps` inside :func:`theorykit.simulate.run_particles` (two
noise streams: the uniforms of the sparse codes and the normals of the noise of both views) and returns a
:class:`~theorykit.simulate.ParticleRun`; replicates of one configuration train in parallel threads
(:func:`theorykit.simulate.map_threads`: the kernels release the GIL).
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np

from ..._random import SeedLike, as_generator, spawn_seeds
from ...errors import InvalidParameterError
from ...simulate import NoiseStream, ParticleRun, map_threads, run_particles, standard_normal_compiled
from . import _kernels as K
from ._config import Config, network_state_names
from ._data import encode, feature_matrix, sample_pairs, uniform


# ------------------------------------------------------------------------------------------------ training
def init_weights(cfg: Config, seed: SeedLike) -> np.ndarray:
    """float64[m, d1] initial MLP weights, i.i.d. ``N(0, init_scale^2 / d1)``."""
    return as_generator(seed).standard_normal((cfg.width, cfg.d1)) * (cfg.init_scale / math.sqrt(cfg.d1))


def kernel_hyper(cfg: Config) -> K.Hyper:
    """The scalars of :func:`._kernels.sgd_steps` for ``cfg``."""
    start = cfg.prune_step
    mode = K.PRUNE_NONE if start is None else (K.PRUNE_FORWARD if cfg.prune == "forward_mask" else K.PRUNE_HARD)
    return K.Hyper(cfg.sigma, cfg.beta, cfg.tau, cfg.lam, cfg.eta, cfg.attention_step, cfg.bias_scale,
                   cfg.prune_rate, cfg.steps + 1 if start is None else start, cfg.prune_every, mode,
                   cfg.prune_mode == "neuron", cfg.attention == "trained", cfg.n_tokens)


def simulate_sgd(cfg: Config, seed: SeedLike = 0, *, W0: np.ndarray | None = None) -> ParticleRun:
    """Train the Transformer-MLP encoder by SGD on the InfoNCE loss, with magnitude pruning if ``prune_rate > 0``.

    Parameters
    ----------
    cfg : Config
        Settings (``prune`` chooses Algorithm 1's forward mask or one-shot hard pruning).
    seed : int or Generator
        Seeds the features (random basis), the initial weights and the noise streams of the batches.
    W0 : float64[m, d1], optional
        Initial weights (default :func:`init_weights`); the same ``seed`` with and without pruning gives the
        same run up to the pruning step.

    Returns
    -------
    ParticleRun
        Recorded every ``record_every`` steps and at the end (time in SGD steps): the projections of the
        forward weights ``a_{i}_{k}`` and ``r_{i}`` (:func:`._config.network_state_names`, the population flow's
        states), the weights ``W`` and the forward mask ``mask`` of the step starting there (float64[m, d1]; at
        the last record, of the last step), with trained attention the score matrix ``attention``
        (float64[d1, d1]), and ``loss`` (interval means of the batch loss plus ``lam/2 ||W||^2``). ``params``
        holds the settings, the feature directions ``features`` (float64[d, d1]), ``prune_step`` and the
        ``train_seed`` (``-1`` for a Generator).
    """
    seeds = spawn_seeds(seed, 3)
    M = feature_matrix(cfg, int(seeds[0]))
    W = init_weights(cfg, int(seeds[1])) if W0 is None else np.array(W0, dtype=np.float64)
    if W.shape != (cfg.width, cfg.d1):
        raise InvalidParameterError(f"W0 must have shape {(cfg.width, cfg.d1)}, got {W.shape}")
    W = np.ascontiguousarray(W)
    mask, ones, A = np.ones_like(W), np.ones_like(W), cfg.initial_attention()
    h, pi, names = kernel_hyper(cfg), cfg.feature_probs(), network_state_names(cfg.width, cfg.d)
    proj, noise = np.empty((cfg.width, cfg.d)), np.empty(cfg.width)
    done = [0]

    def advance(draws, step0, values):
        K.sgd_steps(W, A, mask, M, pi, draws[0], draws[1], step0, h, values[0])
        done[0] = step0 + draws[0].shape[0]

    def observe():
        t = done[0]
        # the forward mask of step t: recomputed there on Algorithm 1's schedule (or once, for hard pruning)
        fresh = t < cfg.steps and h.prune_mode != K.PRUNE_NONE and t >= h.prune_start and (
            (t - h.prune_start) % h.prune_every == 0 if h.prune_mode == K.PRUNE_FORWARD else t == h.prune_start)
        forward_mask = mask.copy()
        if fresh:
            K.magnitude_mask(W, h.prune_rate, h.neuron_level, ones, forward_mask)
        K.project(W * forward_mask, M, proj, noise)
        row = dict(zip(names, (*proj.ravel().tolist(), *noise.tolist())))
        row.update(W=W.copy(), mask=forward_mask)
        if h.train_attention:
            row["attention"] = A.copy()
        return row

    T = cfg.batch * cfg.n_tokens
    record = [*range(0, cfg.steps, cfg.record_every), cfg.steps]
    return run_particles(advance, observe, n_steps=cfg.steps, record_steps=record,
                         noise=[NoiseStream((T, cfg.d), uniform),
                                NoiseStream((2, T, cfg.d1), standard_normal_compiled)],
                         seed=int(seeds[2]), step_time=1.0, step_values=("loss",),
                         params={**cfg.as_dict(), "features": M, "prune_step": cfg.prune_step,
                                 "train_seed": int(seed) if isinstance(seed, (int, np.integer)) else -1})


def simulate_replicates(cfg: Config, seeds: Iterable[int], *, threads: int | None = None) -> list[ParticleRun]:
    """:func:`simulate_sgd` at each seed of ``seeds``, replicates in parallel threads (default: one per CPU this
    process may use, at most one per seed). The runs equal those of :func:`simulate_sgd` one by one."""
    return map_threads(lambda s: simulate_sgd(cfg, s), [int(s) for s in seeds], threads)


# ---------------------------------------------------------------------------------------------- the runs
def run_config(run: ParticleRun) -> Config:
    """The settings a run was trained with."""
    return Config.from_mapping(run.params)


def forward_weights(run: ParticleRun) -> np.ndarray:
    """float64[m, d1]: the final weights of the forward pass, ``W * mask`` (pruned weights keep their values in
    ``W`` under Algorithm 1)."""
    return run.observable("W")[-1] * run.observable("mask")[-1]


def weights_at_prune(run: ParticleRun) -> np.ndarray | None:
    """float64[m, d1]: the weights just before the first mask (``None`` without pruning, or when the first mask
    would fall on the last step), the common state of a pruned run and its unpruned twin of the same seed."""
    step = run.params["prune_step"]
    if step is None or step >= run.t[-1]:
        return None
    return np.array(run.observable("W")[int(np.searchsorted(run.t, step))])


def run_attention(run: ParticleRun) -> np.ndarray | None:
    """The attention argument of :func:`encode`: ``None`` (fixed ``beta I``) or the final trained ``A``."""
    return run.observable("attention")[-1] if "attention" in run.observables else None


def network_trajectories(source: Any, width: int, n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """``(proj, noise)``: the projections float64[n_t, m, K] and the norms outside span(M) float64[n_t, m] over
    time, from an SGD run (:class:`~theorykit.simulate.ParticleRun`) or a population-flow
    :class:`~theorykit.solve.Solution` (which records them under the same names)."""
    names = network_state_names(width, n_features)
    series = source.stack(*names) if hasattr(source, "stack") else np.column_stack([source.y_of(n) for n in names])
    n = width * n_features
    return series[:, :n].reshape(-1, width, n_features), np.abs(series[:, n:])


# ------------------------------------------------------------------------------------------------ metrics
COS_THRESHOLD = 0.3  #: the paper's threshold on |cos(w_i, M_j)| for counting a neuron as learning M_j


def projection_metrics(proj: np.ndarray, norms: np.ndarray, n_major: int, threshold: float = COS_THRESHOLD
                       ) -> dict[str, float]:
    """Neuron-level statistics from the projections ``proj`` float64[m, d] (``<w_i, M_j>``, unit ``M_j``, majority
    features first) and the norms ``norms`` float64[m] of the neurons; zero neurons (pruned) are left out.

    Returns ``count_major`` / ``count_minor`` (mean over features of the number of neurons with
    cosine >= ``threshold``), ``maxcos_major`` / ``maxcos_minor`` (mean over features of the largest
    cosine), ``magnitude_major`` / ``magnitude_minor`` (mean over features of the largest
    ``|<w_i, M_j>|``: the coefficient of the feature's most specialised neuron) and ``n_alive``.
    """
    proj = np.asarray(proj, dtype=np.float64)
    norms = np.asarray(norms, dtype=np.float64)
    keep = norms > 0
    P = np.abs(proj[keep])
    C = P / norms[keep, None]
    out = {"n_alive": float(C.shape[0])}
    for name, sl in (("major", slice(0, n_major)), ("minor", slice(n_major, proj.shape[1]))):
        if sl.stop - sl.start <= 0 or C.shape[0] == 0:
            out |= {f"count_{name}": 0.0, f"maxcos_{name}": 0.0, f"magnitude_{name}": 0.0}
            continue
        out[f"count_{name}"] = float(np.mean(np.sum(C[:, sl] >= threshold, axis=0)))
        out[f"maxcos_{name}"] = float(np.mean(C[:, sl].max(axis=0)))
        out[f"magnitude_{name}"] = float(np.mean(P[:, sl].max(axis=0)))
    return out


def feature_metrics(run: ParticleRun, threshold: float = COS_THRESHOLD) -> dict[str, float]:
    """:func:`projection_metrics` of the final forward weights of a run."""
    W = forward_weights(run)
    return projection_metrics(W @ run.params["features"].T, np.linalg.norm(W, axis=1), run.params["n_major"],
                              threshold)


def positive_pair_cosine(run: ParticleRun, n: int = 512, seed: SeedLike = 1) -> float:
    """Mean of ``cos(f(X_n), f(Y_n))`` over ``n`` fresh positive pairs from the training distribution
    (final forward weights and the run's attention)."""
    cfg, W, A_ = run_config(run), forward_weights(run), run_attention(run)
    X, Y, _ = sample_pairs(cfg, n, seed, M=run.params["features"])
    FX, FY = encode(cfg, W, X, A_), encode(cfg, W, Y, A_)
    nx, ny = np.linalg.norm(FX, axis=1), np.linalg.norm(FY, axis=1)
    ok = (nx > 0) & (ny > 0)
    if not np.any(ok):
        return 0.0
    c = np.zeros(n)
    c[ok] = np.sum(FX[ok] * FY[ok], axis=1) / (nx[ok] * ny[ok])
    return float(np.mean(c))


def downstream_mse(run: ParticleRun, n_train: int = 1000, n_test: int = 1000, ridge: float = 1e-3,
                   seed: SeedLike = 2) -> float:
    r"""Relative test MSE of a ridge regression on the learned representation.

    The downstream task is balanced: every feature appears with the majority probability ``p``, and the
    target is :math:`y = \sum_r \sum_j \beta_j z_j^{(r)}` with fixed :math:`\beta_j \sim N(0,1)` so that
    every feature matters. Returns ``mean((y - yhat)^2) / var(y)`` on the test set (0 = perfect, about 1 =
    nothing learned). The encoder uses the final forward weights and the run's attention.
    """
    cfg, W, A_ = run_config(run), forward_weights(run), run_attention(run)
    s = spawn_seeds(as_generator(seed), 3)
    probs = np.full(cfg.d, cfg.p)
    beta = as_generator(int(s[0])).standard_normal(cfg.d)

    def data(n, sd):
        X, _, Z = sample_pairs(cfg, n, int(sd), M=run.params["features"], probs=probs)
        return encode(cfg, W, X, A_), Z.sum(axis=1) @ beta

    Ftr, ytr = data(n_train, s[1])
    Fte, yte = data(n_test, s[2])
    scale = np.sqrt(np.mean(Ftr**2, axis=0)) + 1e-12
    Fs = Ftr / scale
    coef = np.linalg.solve(Fs.T @ Fs + ridge * n_train * np.eye(Fs.shape[1]), Fs.T @ ytr)
    resid = yte - (Fte / scale) @ coef
    return float(np.mean(resid**2) / np.var(yte))


__all__ = ["init_weights", "kernel_hyper", "simulate_sgd", "simulate_replicates", "run_config", "forward_weights",
           "weights_at_prune", "run_attention", "network_trajectories", "COS_THRESHOLD", "projection_metrics",
           "feature_metrics", "positive_pair_cosine", "downstream_mse"]
