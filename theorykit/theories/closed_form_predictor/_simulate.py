"""Finite-width SGD on the linear encoder with a closed-form predictor, observed in a fixed eigenbasis; the numba
steps (:func:`._kernels.sgd_chunk`) run inside :func:`theorykit.simulate.run_particles`, and
:func:`simulate_replicates` runs several seeds of one configuration in parallel threads."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..._checks import check_int, check_range
from ..._random import SeedLike, as_generator
from ...errors import InvalidParameterError
from ...simulate import (NoiseStream, ParticleRun, map_threads, run_particles, single_threaded_blas,
                         standard_normal_compiled)
from . import _kernels
from ._symbolic import LOSSES, check

#: largest ``dim`` whose alpha = 1/2 predictor is computed from the polar factor of ``W``
#: (:func:`._kernels.sqrt_gram_by_polar`) rather than by ``eigh``: measured 7 against 19 µs at 16, 0.21 against
#: 0.29 ms at 64, and slower from about 96 on (one thread, this project's 2-core machine)
POLAR_MAX_DIM = 64
#: iterations of the polar factor before falling back to ``eigh``: enough for singular values down to about
#: 1e-4 of the largest (from a singular value x of W / c, about log(1/x) / log(1.5) + 5 iterations)
POLAR_MAX_ITER = 30


def _orthogonal(rng: np.random.Generator, n: int) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


def group_series(run: ParticleRun, kind: str) -> np.ndarray:
    """``s``, ``lambda`` or ``tau`` of every group of a run as (n_rec, n_groups)."""
    return run.stack(*(f"{kind}{k + 1}" for k in range(len(run.params["s0"]))))


@single_threaded_blas()  # the set-up's products too (see theorykit.simulate.single_threaded_blas)
def simulate(loss: str, predictor: str = "closed_form", *, dim: int, batch: int, lr: float, t_end: float,
             s0: Sequence[float], n_in: int | None = None, fractions: Sequence[float] | None = None,
             alpha: float | None = None, epsilon: float = 0.0, rho: float = 0.99, eta: float = 0.0,
             sigma2_o: float = 0.0, sigma2_t: float = 0.0, ema_rate: float | None = None, n_record: int = 51,
             seed: SeedLike = 0) -> ParticleRun:
    r"""SGD on ``W`` (``dim`` x ``n_in``, default square) from ``W = U diag(sqrt(s0[group])) V^T`` (random
    orthogonal ``U``, ``V``; group ``k`` holds ``fractions[k]`` of the modes, default equal), ``W_t = W``.

    ``predictor``: ``"closed_form"`` (``s**alpha`` from ``W W^T``, default ``alpha`` 1) or ``"directpred"``
    (exponent 1/2 plus ``epsilon * max``, from the running estimate of :math:`E[z_1 z_1^\top]` with decay
    ``rho``, started at its expectation). ``round(t_end / lr)`` steps of minibatch ``batch``, recorded
    ``n_record`` times; ``eta`` weight decay, ``sigma2_o`` / ``sigma2_t`` augmentation variances, ``ema_rate``
    the EMA target :math:`\dot W_t = \beta(W - W_t)` (``None``: SimSiam). ``seed`` draws the bases and the data.

    Returns
    -------
    ParticleRun
        Observables ``s<k>``, ``lambda<k>``, ``tau<k>`` (group means over the eigenbasis of the start, groups
        1-based), ``mean_s`` (``|W|_F^2 / M``), ``spectrum`` (eigenvalues of ``W W^T``, ascending, (n_rec, M))
        and ``max_inner`` (the largest ``|<grad, W>|/(|grad||W|)`` over the steps so far).
    """
    check(loss, predictor)
    dim, batch = check_int("dim", dim, 1), check_int("batch", batch, 1)
    n_in = dim if n_in is None else check_int("n_in", n_in, dim)
    lr, t_end = check_range("lr", lr, 0.0, low_open=True), check_range("t_end", t_end, 0.0, low_open=True)
    running = predictor == "directpred"
    if (running and alpha is not None) or (not running and epsilon != 0.0):
        raise InvalidParameterError(f"{'alpha' if running else 'epsilon'} does not apply to predictor={predictor!r}")
    alpha = 0.5 if running else check_range("alpha", 1.0 if alpha is None else alpha, 0.0, low_open=True)
    epsilon = check_range("epsilon", epsilon, 0.0)
    rho = check_range("rho", rho, 0.0, 1.0, high_open=True)
    eta, sigma2_o, sigma2_t = (check_range(n, v, 0.0) for n, v in zip(("eta", "sigma2_o", "sigma2_t"),
                                                                      (eta, sigma2_o, sigma2_t)))
    keep = 0.0 if ema_rate is None else float(np.exp(-check_range("ema_rate", ema_rate, 0.0, low_open=True) * lr))
    s0 = np.atleast_1d(np.asarray(s0, dtype=float))
    n_groups = s0.size
    f = np.full(n_groups, 1.0 / n_groups) if fractions is None else np.asarray(fractions, dtype=float)
    if f.shape != (n_groups,) or np.any(f <= 0) or abs(f.sum() - 1) > 1e-9 or np.any(s0 <= 0):
        raise InvalidParameterError(f"s0 must be positive and fractions {n_groups} positive numbers summing to 1, "
                                    f"got s0={s0.tolist()}, fractions={f.tolist()}")
    sizes = np.diff(np.round(np.concatenate([[0.0], np.cumsum(f)]) * dim).astype(int))
    if np.any(sizes == 0):
        raise InvalidParameterError(f"dim={dim} is too small for fractions {f.tolist()}: a group would be empty")
    n_record = check_int("n_record", n_record, 2)
    every = max(int(round(t_end / lr)) // (n_record - 1), 1)
    rng = as_generator(seed)
    U, V = _orthogonal(rng, dim), _orthogonal(rng, n_in)[:dim]
    group = np.repeat(np.arange(n_groups), sizes).astype(np.int64)
    W = np.ascontiguousarray((U * np.sqrt(s0[group])) @ V)
    Wt, F = W.copy(), (1.0 + sigma2_o) * W @ W.T
    P, lam = np.empty((dim, dim)), np.empty(dim)
    _kernels.prepare(W, F, P, lam, running, alpha, epsilon)
    out = {k: np.zeros(n_groups) for k in ("s", "lambda", "tau")}
    worst = [0.0]
    code, sig_o, sig_t = LOSSES.index(loss), float(np.sqrt(sigma2_o)), float(np.sqrt(sigma2_t))
    polar_iter = POLAR_MAX_ITER if dim <= POLAR_MAX_DIM else 0

    def advance(draws, step0, values):
        worst[0] = max(worst[0], _kernels.sgd_chunk(W, Wt, F, P, lam, draws[0], sig_o, sig_t, code, alpha, epsilon,
                                                    rho, running, lr, eta, keep, float(dim), polar_iter))

    def observe():
        mean_s = _kernels.observe(W, Wt, P, U, group, n_groups, out["s"], out["lambda"], out["tau"])
        return {**{f"{k}{g + 1}": out[k][g] for k in out for g in range(n_groups)}, "mean_s": mean_s,
                "spectrum": np.linalg.eigvalsh(W @ W.T), "max_inner": worst[0]}

    n_steps = every * (n_record - 1)
    params = dict(loss=loss, predictor=predictor, dim=dim, n_in=n_in, batch=batch, lr=lr, alpha=alpha,
                  epsilon=epsilon, rho=rho, eta=eta, sigma2_o=sigma2_o, sigma2_t=sigma2_t, ema_rate=ema_rate,
                  s0=s0.tolist(), fractions=f.tolist())
    return run_particles(advance, observe, n_steps=n_steps, record_steps=range(0, n_steps + 1, every),
                         noise=[NoiseStream((3, batch, n_in), standard_normal_compiled)],
                         seed=int(rng.integers(0, 2**31 - 1)), step_time=lr,
                         params=params, desc=f"{loss} SGD steps")


def simulate_replicates(loss: str, predictor: str = "closed_form", *, seeds: Sequence[int], threads: int | None = None,
                        **options) -> list[ParticleRun]:
    """:func:`simulate` ``(loss, predictor, seed=seed, **options)`` for each of ``seeds``, the replicates in
    parallel threads (default: one per CPU this process may use, at most one per seed; see
    :func:`theorykit.simulate.map_threads`). The step kernel and the noise draws release the GIL; each run
    equals the single run of its seed. Returns the runs in the order of ``seeds``."""
    seeds = list(seeds)
    if not seeds:
        raise InvalidParameterError("seeds must list at least one seed")
    return map_threads(lambda seed: simulate(loss, predictor, seed=seed, **options), seeds, threads)
