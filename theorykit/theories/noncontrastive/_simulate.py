"""Finite-width particle simulation: SGD on the actual linear networks, observed in the eigenbasis."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ..._checks import check_int, check_range
from ..._random import SeedLike, as_generator
from ...errors import InvalidParameterError
from ...progress import Progress
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


@dataclass(frozen=True)
class ParticleRun:
    """One SGD run observed in the eigenbasis of its initialisation.

    ``t``: (n_rec,) training time ``lr * step``; ``p, s, tau``: (n_rec, n_groups) group means of the
    predictor eigenvalue, the eigenvalue of ``W W^T`` and the target ratio; ``loss``: (n_rec,) mean
    minibatch loss per mode (cosine loss: minus the cosine similarity).
    """

    loss_kind: str
    t: np.ndarray
    p: np.ndarray
    s: np.ndarray
    tau: np.ndarray
    loss: np.ndarray
    dim: int
    batch: int
    lr: float
    seed: int
    params: dict[str, float] = field(default_factory=dict)

    def observable(self, name: str) -> np.ndarray:
        """``"p1"``, ``"s2"``, ``"tau1"`` (1-based group index) or ``"loss"``."""
        if name == "loss":
            return self.loss
        kind, idx = name.rstrip("0123456789"), name[len(name.rstrip("0123456789")):]
        if kind not in ("p", "s", "tau") or not idx:
            raise KeyError(f"unknown observable {name!r}: use p<k>, s<k>, tau<k> or loss")
        return getattr(self, kind)[:, int(idx) - 1]


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

# Upper bound on the pre-drawn noise held at once (bytes); a run draws it chunk by chunk of whole steps.
CHUNK_BYTES = 32 * 2**20


def _run_chunks(W, Wp, Wt, U, group, n_groups, loss_code, eta, sigma, alpha_p, keep, lr, batch, n_steps, every,
                kseed, out_p, out_s, out_tau, out_loss) -> None:
    """Draw the minibatch noise with a ``Generator`` seeded by ``kseed`` in chunks of steps and run the kernel
    on each chunk, carrying the weights, the loss accumulator and the record index across chunks.

    Each step takes its samples from the stream in the same order, so the result does not depend on the
    chunk size (only on ``kseed``).
    """
    d = W.shape[0]
    n_draw = 3 if sigma > 0.0 else 1  # sigma = 0: both views are the clean sample
    per_step = n_draw * batch * d
    chunk = max(1, min(n_steps, CHUNK_BYTES // (8 * per_step)))
    noise = np.random.default_rng(kseed)
    buf = np.empty((chunk, n_draw, batch, d))
    _kernels.project(W, Wp, Wt, U, group, n_groups, out_p[0], out_s[0], out_tau[0])
    acc, n_acc, rec = 0.0, 0, 1
    with Progress(n_steps, "SGD steps") as bar:
        for step0 in range(0, n_steps, chunk):
            E = buf[: min(chunk, n_steps - step0)]
            noise.standard_normal(out=E)
            acc, n_acc, rec = _kernels.sgd_steps(W, Wp, Wt, U, group, n_groups, loss_code, eta, sigma, alpha_p,
                                                 keep, lr, E, step0, every, acc, n_acc, rec,
                                                 out_p, out_s, out_tau, out_loss)
            bar.update(E.shape[0])


def simulate_sgd(loss: str, *, dim: int, batch: int, lr: float, t_end: float, p0: Sequence[float],
                 s0: Sequence[float] | None = None, eta: float = 0.0, sigma2: float = 0.0, alpha_p: float = 1.0,
                 beta: float = 0.0, fractions: Sequence[float] | None = None, n_record: int = 101,
                 seed: SeedLike = 0) -> ParticleRun:
    r"""SGD on ``W, W_p, W_t`` (each ``dim x dim``) from an aligned start, recorded in the eigenbasis.

    The start has predictor eigenvalues ``p0[k]`` and ``W W^T`` eigenvalues ``s0[k]`` (default
    ``p0**2 / alpha_p``, the invariant manifold) on group ``k`` of the modes (sizes from ``fractions``,
    default equal), random orthogonal eigenvectors, and ``W_t = W``. Time is ``lr * step``; the EMA target
    keeps ``beta**lr`` of itself per step (``beta = 0``: SimSiam, ``W_t = W``).

    Parameters
    ----------
    loss : {"euclidean", "cosine"}
    dim, batch : int
        Width (= input dimension) and minibatch size.
    lr, t_end : float
        Learning rate and training time; ``round(t_end / lr)`` steps.
    n_record : int
        Number of recorded times (including 0), evenly spaced in steps.
    seed : int or Generator
        Draws the eigenbases and the seed of the minibatch noise (``ParticleRun.seed``); the noise comes
        from ``numpy.random.default_rng(ParticleRun.seed)``.
    """
    check_loss(loss)
    eta, sigma2, alpha_p, beta = check_hyper(eta, sigma2, alpha_p, beta)
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
    n_steps = max(int(round(t_end / lr)), 1)
    n_record = check_int("n_record", n_record, 2)
    every = max(n_steps // (n_record - 1), 1)
    n_steps = every * (n_record - 1)
    rng = as_generator(seed)
    U, V = _orthogonal(rng, dim), _orthogonal(rng, dim)
    group = np.repeat(np.arange(G), sizes).astype(np.int64)
    pv, wv = p0[group], np.sqrt(s0[group])
    W = np.ascontiguousarray((U * wv) @ V.T)
    Wp = np.ascontiguousarray((U * pv) @ U.T)
    Wt = W.copy()
    out_p = np.zeros((n_record, G))
    out_s = np.zeros((n_record, G))
    out_tau = np.zeros((n_record, G))
    out_loss = np.zeros(n_record)
    keep = 0.0 if beta == 0.0 else float(beta ** lr)
    kseed = int(rng.integers(0, 2**31 - 1))
    sigma = float(np.sqrt(sigma2))
    _run_chunks(W, Wp, Wt, U, group, G, _kernels.EUCLIDEAN if loss == "euclidean" else _kernels.COSINE,
                eta, sigma, alpha_p, keep, lr, batch, n_steps, every, kseed, out_p, out_s, out_tau, out_loss)
    t = np.arange(n_record) * every * lr
    return ParticleRun(loss, t, out_p, out_s, out_tau, out_loss, dim, batch, lr, kseed,
                       dict(eta=eta, sigma2=sigma2, alpha_p=alpha_p, beta=beta))


__all__ = ["ParticleRun", "simulate_sgd", "check_hyper", "group_sizes"]
