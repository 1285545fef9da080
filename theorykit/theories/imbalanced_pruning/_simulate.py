"""Finite-width simulation: the data model, the Transformer-MLP encoder and its SGD with magnitude pruning.

The public functions validate their arguments, draw and allocate; the numerical work happens in
:mod:`._kernels`. Training runs the step kernel :func:`._kernels.sgd_steps` inside
:func:`theorykit.simulate.run_particles` (two noise streams: the uniforms of the sparse codes and the normals
of the noise of both views) and returns a :class:`~theorykit.simulate.ParticleRun`. Replicates of one
configuration train in parallel threads: the kernels release the GIL, and each thread asks OpenBLAS for one
thread of its own (``openblas_set_num_threads_local``, found among the loaded libraries on Linux), because the
products are small and a multi-threaded BLAS only adds synchronisation (where the call is unavailable the
setting is left alone: the numbers are the same, only the speed differs).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import math
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from ..._checks import check_int, check_range
from ..._random import SeedLike, as_generator, spawn_seeds
from ...errors import InvalidParameterError
from ...simulate import NoiseStream, ParticleRun, run_particles
from . import _kernels as K
from ._config import Config, network_state_names


# ------------------------------------------------------------------------------------------------ data
def feature_matrix(cfg: Config, seed: SeedLike = 0) -> np.ndarray:
    """float64[d, d1]: the orthonormal feature directions ``M_j`` as rows (the columns of the paper's
    ``d1 x d`` matrix), majority features first."""
    if cfg.basis == "coordinate":
        return np.ascontiguousarray(np.eye(cfg.d1)[: cfg.d])
    q, _ = np.linalg.qr(as_generator(seed).standard_normal((cfg.d1, cfg.d1)))
    return np.ascontiguousarray(q[:, : cfg.d].T)


def uniform(rng: np.random.Generator, out: np.ndarray) -> None:
    """Fill ``out`` with uniforms on [0, 1) (the draw of the feature codes' stream)."""
    rng.random(out=out)


def sample_pairs(cfg: Config, n: int, seed: SeedLike, *, M: np.ndarray | None = None,
                 probs: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw ``n`` positive pairs ``(X, Y)`` float64[n, L, d1] and their signed codes ``z`` float64[n, L, d].

    ``probs`` (float64[d], each in [0, 1]) overrides :math:`\\Pr(z_j\\ne0)` (e.g. a balanced test set).
    """
    n = check_int("n", n, 1)
    M = feature_matrix(cfg) if M is None else M
    probs = cfg.feature_probs() if probs is None else np.asarray(probs, dtype=np.float64)
    if probs.shape != (cfg.d,) or np.any(probs < 0) or np.any(probs > 1):
        raise InvalidParameterError(f"probs must be {cfg.d} probabilities in [0, 1], got {probs!r}")
    s = spawn_seeds(seed, 2)
    T = n * cfg.n_tokens
    u, xi = as_generator(int(s[0])).random((T, cfg.d)), as_generator(int(s[1])).standard_normal((2, T, cfg.d1))
    XY, Z = np.empty((2 * T, cfg.d1)), np.empty((T, cfg.d))
    K.tokens_from_draws(u, xi, np.ascontiguousarray(M, dtype=np.float64), probs, cfg.sigma, XY, Z)
    shape = (n, cfg.n_tokens)
    return XY[:T].reshape(*shape, cfg.d1), XY[T:].reshape(*shape, cfg.d1), Z.reshape(*shape, cfg.d)


# ------------------------------------------------------------------------------------------------ encoder
def bias_of(cfg: Config, W: np.ndarray) -> np.ndarray:
    """float64[m] BReLU thresholds ``bias_scale * sigma * ||w_i||`` of the forward weights ``W``."""
    b = np.empty(W.shape[0])
    K.neuron_bias(np.ascontiguousarray(W, dtype=np.float64), cfg.bias_scale * cfg.sigma, b)
    return b


def _attention_arg(cfg: Config, A: np.ndarray | None, name: str = "A") -> np.ndarray | None:
    """``None`` (the fixed ``beta I`` kernels) or ``A`` as a C-contiguous float64[d1, d1] array."""
    if A is None:
        return None
    A = np.ascontiguousarray(A, dtype=np.float64)
    if A.shape != (cfg.d1, cfg.d1):
        raise InvalidParameterError(f"{name} must have shape {(cfg.d1, cfg.d1)}, got {A.shape}")
    return A


def _tokens(cfg: Config, X: np.ndarray, name: str = "X") -> np.ndarray:
    """``X`` float64[N, L, d1] as the 2-d token array float64[N L, d1] of the kernels."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 3 or X.shape[1:] != (cfg.n_tokens, cfg.d1):
        raise InvalidParameterError(f"{name} must have shape (N, {cfg.n_tokens}, {cfg.d1}), got {X.shape}")
    return np.ascontiguousarray(X.reshape(-1, cfg.d1))


def encode(cfg: Config, W: np.ndarray, X: np.ndarray, A: np.ndarray | None = None) -> np.ndarray:
    """Representations ``f(X)`` float64[N, m] of inputs ``X`` float64[N, L, d1] with forward weights ``W``.

    ``A`` float64[d1, d1] is the attention score matrix; ``None`` (default) means the fixed ``beta I``.
    """
    W = np.ascontiguousarray(W, dtype=np.float64)
    X2 = _tokens(cfg, X)
    A = _attention_arg(cfg, A)
    F = np.empty((X2.shape[0] // cfg.n_tokens, W.shape[0]))
    with single_threaded_blas():
        if A is None:
            K.encode(X2, W, bias_of(cfg, W), cfg.beta, cfg.n_tokens, F)
        else:
            K.encode_attention(X2, W, bias_of(cfg, W), A, cfg.n_tokens, F)
    return F


def loss_and_grad(cfg: Config, W: np.ndarray, X: np.ndarray, Y: np.ndarray,
                  bias: np.ndarray | None = None, *, W_sg: np.ndarray | None = None,
                  bias_sg: np.ndarray | None = None, A: np.ndarray | None = None,
                  A_sg: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """InfoNCE loss (stop-gradient on ``Y``, biases held fixed) plus ``lam/2 ||W||^2``, and its gradient
    float64[m, d1] in the forward weights ``W``.

    ``W_sg`` / ``bias_sg`` (default ``W`` / ``bias``) are the frozen weights of the stop-gradient branch.
    ``A`` / ``A_sg`` (float64[d1, d1]) are the attention score matrices of the two branches; ``A=None``
    (default) means the fixed ``beta I`` for both, and ``A_sg`` defaults to ``A``. For the gradient in ``A``
    as well see :func:`loss_and_attention_grad`.
    """
    loss, grad, _ = _loss_grads(cfg, W, X, Y, bias, W_sg, bias_sg, A, A_sg, False)
    return loss, grad


def loss_and_attention_grad(cfg: Config, W: np.ndarray, A: np.ndarray, X: np.ndarray, Y: np.ndarray,
                            bias: np.ndarray | None = None, *, W_sg: np.ndarray | None = None,
                            bias_sg: np.ndarray | None = None, A_sg: np.ndarray | None = None
                            ) -> tuple[float, np.ndarray, np.ndarray]:
    """The loss of :func:`loss_and_grad` with scores ``x_r^T A x_s`` and its gradients in ``W`` (float64[m, d1])
    and in ``A`` (float64[d1, d1]); with frozen copies for the ``Y`` branch they are the derivatives of the
    returned loss.

    Raises
    ------
    InvalidParameterError
        If ``A`` or ``A_sg`` is not ``d1 x d1``.
    """
    if A is None:
        raise InvalidParameterError("A must be a (d1, d1) attention matrix, got None")
    return _loss_grads(cfg, W, X, Y, bias, W_sg, bias_sg, A, A_sg, True)


def _loss_grads(cfg, W, X, Y, bias, W_sg, bias_sg, A, A_sg, want_A):
    """Shared body of :func:`loss_and_grad` and :func:`loss_and_attention_grad`: ``(loss, grad_W, grad_A)``."""
    W = np.ascontiguousarray(W, dtype=np.float64)
    X2, Y2 = _tokens(cfg, X), _tokens(cfg, Y, "Y")
    L, T, m = cfg.n_tokens, X2.shape[0], W.shape[0]
    if Y2.shape != X2.shape:
        raise InvalidParameterError(f"X and Y must have the same shape, got {X.shape} and {Y.shape}")
    A = _attention_arg(cfg, A)
    A_sg = A if A_sg is None else _attention_arg(cfg, A_sg, "A_sg")
    if A is None and A_sg is not None:
        raise InvalidParameterError("A_sg needs A (the attention matrix of the first branch)")
    bias = bias_of(cfg, W) if bias is None else np.ascontiguousarray(bias, dtype=np.float64)
    W_sg = W if W_sg is None else np.ascontiguousarray(W_sg, dtype=np.float64)
    bias_sg = bias if bias_sg is None else np.ascontiguousarray(bias_sg, dtype=np.float64)
    XY = np.concatenate([X2, Y2])
    UXY = np.empty_like(XY)
    P = np.empty((T, L))
    B = T // L
    S, HX, HY, G = np.empty((2 * T, m)), np.empty((B, m)), np.empty((B, m)), np.empty((B, m))
    gS, grad = np.empty((T, m)), np.empty_like(W)
    grad_A = np.empty((cfg.d1, cfg.d1)) if want_A else None
    with single_threaded_blas():
        if A is None:
            K.attention_scaled(XY[:T], L, cfg.beta, UXY[:T])
            K.attention_scaled(XY[T:], L, cfg.beta, UXY[T:])
        else:
            K.attention_general(XY[:T], L, A, UXY[:T], P)
            K.attention_general(XY[T:], L, A_sg, UXY[T:], np.empty((T, L)))
        loss = K.loss_grad_core(UXY, W, bias, W_sg, bias_sg, False, L, cfg.tau, S, HX, HY, G, gS, grad)
        if want_A:
            K.attention_grad(XY[:T], UXY[:T], P, W, bias, S, G, L, grad_A)
    grad += cfg.lam * W
    return float(loss + 0.5 * cfg.lam * np.sum(W * W)), grad, grad_A


def magnitude_prune(W: np.ndarray, rate: float, mode: str = "weight", mask: np.ndarray | None = None) -> np.ndarray:
    """Mask float64[m, d1] (1 = kept) removing the fraction ``rate`` of smallest-magnitude units.

    ``mode="weight"`` masks ``floor(rate * n_alive)`` entries with the smallest ``|W_ic|``; ``mode="neuron"``
    masks ``floor(rate * m_alive)`` whole neurons with the smallest ``||w_i||``. Units already removed by
    ``mask`` are not counted again. The mask of every step of Algorithm 1 (:func:`simulate_sgd`) is this one.

    Raises
    ------
    InvalidParameterError
        If ``rate`` is outside [0, 1) or ``mode`` is unknown.
    """
    rate = check_range("prune_rate", rate, 0.0, 1.0, high_open=True)
    if mode not in ("weight", "neuron"):
        raise InvalidParameterError(f"prune mode must be 'weight' or 'neuron', got {mode!r}")
    W = np.ascontiguousarray(W, dtype=np.float64)
    eligible = np.ones_like(W) if mask is None else np.ascontiguousarray(mask, dtype=np.float64)
    out = np.empty_like(W)
    K.magnitude_mask(W, rate, mode == "neuron", eligible, out)
    return out


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
    with single_threaded_blas():
        return run_particles(advance, observe, n_steps=cfg.steps, record_steps=record,
                             noise=[NoiseStream((T, cfg.d), uniform), NoiseStream((2, T, cfg.d1))],
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


# ------------------------------------------------------------------------------------------------ threads
@functools.lru_cache(maxsize=1)
def _thread_local_setters() -> tuple:
    """``openblas_set_num_threads_local`` of every loaded OpenBLAS (numpy's and scipy's, which numba's
    ``np.dot`` calls); empty where none is found."""
    import scipy.linalg.cython_blas  # noqa: F401  (loads the BLAS that numba's np.dot uses)

    try:
        with open("/proc/self/maps") as fh:
            paths = {f[-1] for f in (line.split() for line in fh)
                     if f and f[-1].startswith("/") and "openblas" in os.path.basename(f[-1]).lower()
                     and ".so" in os.path.basename(f[-1])}
    except OSError:
        return ()
    setters = []
    for path in sorted(paths):
        if not os.path.exists(path):
            continue
        try:
            fn = ctypes.CDLL(path).openblas_set_num_threads_local
        except (OSError, AttributeError):
            continue
        fn.argtypes, fn.restype = [ctypes.c_int], ctypes.c_int
        setters.append(fn)
    return tuple(setters)


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Within the block, BLAS calls of the calling thread use one thread (restored afterwards)."""
    previous = [fn(1) for fn in _thread_local_setters()]
    try:
        yield
    finally:
        for fn, n in zip(_thread_local_setters(), previous):
            fn(n)


def map_threads(fn: Callable[[Any], Any], items: Sequence[Any], threads: int | None = None) -> list[Any]:
    """``[fn(x) for x in items]`` on ``threads`` threads (default: one per item, at most the CPUs this process
    may use), in order, each call with single-threaded BLAS. Exceptions propagate."""
    items = list(items)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    n = max(1, min(len(items), cpus)) if threads is None else max(1, int(threads))

    def call(x):
        with single_threaded_blas():
            return fn(x)

    if n == 1 or len(items) <= 1:
        return [call(x) for x in items]
    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(call, items))


__all__ = ["feature_matrix", "sample_pairs", "encode", "loss_and_grad", "loss_and_attention_grad", "bias_of",
           "magnitude_prune", "init_weights", "simulate_sgd", "simulate_replicates", "run_config", "forward_weights",
           "weights_at_prune", "run_attention", "network_trajectories", "single_threaded_blas", "map_threads"]
