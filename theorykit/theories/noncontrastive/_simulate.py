"""Finite-width particle simulation: SGD on the actual linear networks, observed in the eigenbasis.

The numba step kernel (:func:`._kernels.sgd_steps`) runs inside :func:`theorykit.simulate.run_particles`,
which draws the minibatch noise, records the group eigen-observables and averages the minibatch loss.
:func:`simulate_sgd_replicates` runs several seeds of one configuration in parallel threads.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..._checks import check_int, check_range
from ..._random import SeedLike, as_generator
from ...errors import InvalidParameterError
from ...simulate import (NoiseStream, ParticleRun, map_threads, run_particles, single_threaded_blas,
                         standard_normal_compiled)
from . import _kernels
from ._symbolic import check_loss


def check_hyper(eta: float, sigma2: float, alpha_p: float = 1.0, beta: float = 0.0) -> tuple[float, float, float, float]:
    """Validate the hyper-parameters shared by theory and simulation; returns them as floats.

    Raises
    ------
    InvalidParameterError
        ``eta < 0``, ``sigma2 < 0``, ``alpha_p <= 0`` or ``beta`` outside ``[0, 1)``.
    """
    return (check_range("eta (weight decay)", eta, 0.0),
            check_range("sigma2 (augmentation variance)", sigma2, 0.0),
            check_range("alpha_p (predictor learning-rate ratio)", alpha_p, 0.0, low_open=True),
            check_range("beta (EMA momentum per unit time)", beta, 0.0, 1.0, high_open=True))


def _orthogonal(rng: np.random.Generator, d: int) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return np.ascontiguousarray(q * np.sign(np.diag(r)))


def group_sizes(dim: int, fractions: Sequence[float]) -> np.ndarray:
    """Integer group sizes summing to ``dim`` from fractions (largest remainders)."""
    f = np.asarray(fractions, dtype=float)
    raw = f / f.sum() * dim
    n = np.floor(raw).astype(int)
    for i in np.argsort(raw - n)[::-1][: dim - n.sum()]:
        n[i] += 1
    if np.any(n == 0):
        raise InvalidParameterError(f"dim={dim} is too small for {len(f)} groups with fractions {list(f)}")
    return n


def _decays(eta: float, eta_p: float | None, eta_s: float | None) -> tuple[float, float]:
    """``(eta_p, eta_s)``: both ``eta`` unless given separately."""
    return (check_range("eta_p (predictor weight decay)", eta if eta_p is None else eta_p, 0.0),
            check_range("eta_s (online network weight decay)", eta if eta_s is None else eta_s, 0.0))


def _steps(n_record: int, t_end: float, lr: float) -> tuple[int, int]:
    """``(n_steps, every)``: ``round(t_end / lr)`` steps rounded to a multiple of the ``n_record - 1`` intervals."""
    n_record = check_int("n_record", n_record, 2)
    every = max(max(int(round(t_end / lr)), 1) // (n_record - 1), 1)
    return every * (n_record - 1), every


def _train(loss, W, Wp, Wt, observe, *, batch, lr, t_end, n_record, sigma2, alpha_p, keep, decays, symmetric,
           kseed, params) -> ParticleRun:
    """Run the step kernel on ``W, Wp, Wt`` in place through :func:`run_particles` and record ``observe()``."""
    n_steps, every = _steps(n_record, t_end, lr)
    sigma = float(np.sqrt(sigma2))
    code = _kernels.EUCLIDEAN if loss == "euclidean" else _kernels.COSINE
    eta_p, eta_s = decays

    def advance(draws, step0, values):
        _kernels.sgd_steps(W, Wp, Wt, code, eta_p, eta_s, sigma, alpha_p, keep, lr, symmetric, draws[0], values[0])

    n_draw = 3 if sigma > 0.0 else 1  # sigma = 0: both views are the clean sample
    return run_particles(advance, observe, n_steps=n_steps, record_steps=range(0, n_steps + 1, every),
                         noise=[NoiseStream((n_draw, batch, W.shape[0]), standard_normal_compiled)], seed=kseed,
                         step_time=lr,
                         step_values=("loss",), params=params)


@single_threaded_blas()  # the set-up's products too (see theorykit.simulate.single_threaded_blas)
def simulate_sgd(loss: str, *, dim: int, batch: int, lr: float, t_end: float, p0: Sequence[float],
                 s0: Sequence[float] | None = None, eta: float = 0.0, sigma2: float = 0.0, alpha_p: float = 1.0,
                 beta: float = 0.0, fractions: Sequence[float] | None = None, n_record: int = 101,
                 seed: SeedLike = 0, tau0: float = 1.0, eta_p: float | None = None, eta_s: float | None = None,
                 symmetric_predictor: bool = False) -> ParticleRun:
    r"""SGD on ``W, W_p, W_t`` (each ``dim x dim``) from an aligned start, recorded in the eigenbasis.

    The start has predictor eigenvalues ``p0[k]`` and ``W W^T`` eigenvalues ``s0[k]`` (default
    ``p0**2 / alpha_p``, the invariant manifold) on group ``k`` of the modes (sizes from ``fractions``,
    default equal), random orthogonal eigenvectors, and ``W_t = tau0 W`` (``tau0 = 0``: Tian et al.'s EMA
    start :math:`W_a(0) = 0`). Time is ``lr * step``; the EMA target keeps ``beta**lr`` of itself per step
    (``beta = 0``: SimSiam, ``W_t = W``).

    Parameters
    ----------
    loss : {"euclidean", "cosine"}
    dim, batch : int
        Width (= input dimension) and minibatch size.
    lr, t_end : float
        Learning rate and training time; ``round(t_end / lr)`` steps.
    eta, eta_p, eta_s : float
        Weight decay of both networks, or separately of the predictor (``eta_p``) and the online network
        (``eta_s``); each defaults to ``eta``.
    symmetric_predictor : bool
        Symmetrise the predictor's gradient (Tian et al.'s Assumption 3).
    n_record : int
        Number of recorded times (including 0), evenly spaced in steps.
    seed : int or Generator
        Draws the eigenbases and the seed of the minibatch noise (``ParticleRun.seed``).

    Returns
    -------
    ParticleRun
        Observables ``p<k>``, ``s<k>``, ``tau<k>`` (group ``k = 1..G`` means of the predictor eigenvalue, the
        eigenvalue of ``W W^T`` and the target ratio) and ``loss`` (interval means of the minibatch loss per
        mode; cosine loss: minus the cosine similarity); the names of the eigenmode ODE system.
    """
    check_loss(loss)
    eta, sigma2, alpha_p, beta = check_hyper(eta, sigma2, alpha_p, beta)
    decays = _decays(eta, eta_p, eta_s)
    tau0 = check_range("tau0 (initial target ratio W_t / W)", tau0, 0.0)
    dim = check_int("dim", dim, 2)
    batch = check_int("batch", batch, 1)
    lr = check_range("lr", lr, 0.0, low_open=True)
    t_end = check_range("t_end", t_end, 0.0, low_open=True)
    p0 = np.atleast_1d(np.asarray(p0, dtype=float))
    s0 = p0 ** 2 / alpha_p if s0 is None else np.atleast_1d(np.asarray(s0, dtype=float))
    if s0.shape != p0.shape or np.any(s0 <= 0):
        raise InvalidParameterError("s0 must be positive and have one entry per group of p0")
    G = p0.size
    fractions = np.full(G, 1.0 / G) if fractions is None else np.asarray(fractions, dtype=float)
    if fractions.shape != (G,) or np.any(fractions <= 0):
        raise InvalidParameterError(f"fractions must be {G} positive numbers, got {fractions!r}")
    sizes = group_sizes(dim, fractions)
    _steps(n_record, t_end, lr)
    rng = as_generator(seed)
    U, V = _orthogonal(rng, dim), _orthogonal(rng, dim)
    group = np.repeat(np.arange(G), sizes).astype(np.int64)
    pv, wv = p0[group], np.sqrt(s0[group])
    W = np.ascontiguousarray((U * wv) @ V.T)
    Wp = np.ascontiguousarray((U * pv) @ U.T)
    Wt = W * tau0
    kseed = int(rng.integers(0, 2**31 - 1))
    out_p, out_s, out_tau = np.zeros(G), np.zeros(G), np.zeros(G)

    def observe():
        _kernels.project(W, Wp, Wt, U, group, G, out_p, out_s, out_tau)
        return {f"{kind}{k + 1}": float(v[k]) for kind, v in (("p", out_p), ("s", out_s), ("tau", out_tau))
                for k in range(G)}

    return _train(loss, W, Wp, Wt, observe, batch=batch, lr=lr, t_end=t_end, n_record=n_record, sigma2=sigma2,
                  alpha_p=alpha_p, keep=0.0 if beta == 0.0 else float(beta ** lr), decays=decays,
                  symmetric=bool(symmetric_predictor), kseed=kseed,
                  params=dict(loss=loss, dim=dim, batch=batch, lr=lr, eta=eta, sigma2=sigma2, alpha_p=alpha_p,
                              beta=beta, n_groups=G, tau0=tau0, eta_p=decays[0], eta_s=decays[1],
                              symmetric_predictor=bool(symmetric_predictor)))


def simulate_sgd_replicates(loss: str, seeds: Sequence[int], *, threads: int | None = None,
                            **options) -> list[ParticleRun]:
    """:func:`simulate_sgd` ``(loss, seed=seed, **options)`` for each of ``seeds``, the replicates in parallel
    threads (default: one per CPU this process may use, at most one per seed; see
    :func:`theorykit.simulate.map_threads`). The step kernel and the noise draws release the GIL; each run
    equals the single run of its seed. Returns the runs in the order of ``seeds``."""
    seeds = list(seeds)
    if not seeds:
        raise InvalidParameterError("seeds must list at least one seed")
    return map_threads(lambda seed: simulate_sgd(loss, seed=seed, **options), seeds, threads)


@single_threaded_blas()  # the set-up's products too (see theorykit.simulate.single_threaded_blas)
def simulate_matrices(W0: np.ndarray, Wp0: np.ndarray, *, batch: int, lr: float, t_end: float, sigma2: float = 0.0,
                      alpha_p: float = 1.0, eta_p: float = 0.0, eta_s: float = 0.0, n_record: int = 101,
                      seed: SeedLike = 0) -> ParticleRun:
    r"""SGD of the Euclidean loss with a symmetric predictor (symmetrised gradient) and SimSiam target
    (:math:`W_t = W`) from any start ``W0`` (d x d) and symmetric ``Wp0`` (d x d), recorded entry by entry.

    Returns
    -------
    ParticleRun
        Observables ``W_ij`` (every entry), ``P_ij`` (``i <= j``) and ``comm2`` :math:`= \|[WW^\top, W_p]\|_F^2`:
        the names of the alignment ODE system (:func:`theorykit.theories.noncontrastive._matrix.alignment_system`).
    """
    W = np.array(W0, dtype=float, order="C")
    Wp = np.array(Wp0, dtype=float, order="C")
    d = W.shape[0]
    if W.shape != (d, d) or Wp.shape != (d, d) or d < 2:
        raise InvalidParameterError(f"W0 and Wp0 must be square and of the same size >= 2, got {W.shape}, {Wp.shape}")
    if not (np.all(np.isfinite(W)) and np.all(np.isfinite(Wp))) or np.abs(Wp - Wp.T).max() > 1e-12:
        raise InvalidParameterError("W0 and Wp0 must be finite and Wp0 symmetric")
    _, sigma2, alpha_p, _ = check_hyper(0.0, sigma2, alpha_p)
    decays = _decays(0.0, eta_p, eta_s)
    batch = check_int("batch", batch, 1)
    lr = check_range("lr", lr, 0.0, low_open=True)
    t_end = check_range("t_end", t_end, 0.0, low_open=True)
    upper = [(i, j) for i in range(d) for j in range(i, d)]

    def observe():
        F = W @ W.T
        return {**{f"W_{i}{j}": W[i, j] for i in range(d) for j in range(d)},
                **{f"P_{i}{j}": Wp[i, j] for i, j in upper}, "comm2": float(np.sum((F @ Wp - Wp @ F) ** 2))}

    return _train("euclidean", W, Wp, W, observe, batch=batch, lr=lr, t_end=t_end, n_record=n_record,
                  sigma2=sigma2, alpha_p=alpha_p, keep=0.0, decays=decays, symmetric=True,
                  kseed=int(as_generator(seed).integers(0, 2**31 - 1)),
                  params=dict(dim=d, batch=batch, lr=lr, sigma2=sigma2, alpha_p=alpha_p, eta_p=decays[0],
                              eta_s=decays[1]))


def group_series(run: ParticleRun, kind: str) -> np.ndarray:
    """The group observables ``kind`` (``"p"``, ``"s"`` or ``"tau"``) of a run: float64[n_rec, n_groups]."""
    return run.stack(*(f"{kind}{k + 1}" for k in range(int(run.params["n_groups"]))))


__all__ = ["simulate_sgd", "simulate_sgd_replicates", "simulate_matrices", "group_series", "check_hyper", "group_sizes"]
