"""The paper's metrics of a trained encoder: neuron-feature cosines, positive-pair cosine, downstream regression."""

from __future__ import annotations

import numpy as np

from ..._random import SeedLike, as_generator, spawn_seeds
from ._model import Run, encode, sample_pairs

COS_THRESHOLD = 0.3  #: the paper's threshold on |cos(w_i, M_j)| for counting a neuron as learning M_j


def cosines(W: np.ndarray, M: np.ndarray) -> np.ndarray:
    """float64[m_alive, d]: ``|<w_i, M_j>| / (||w_i|| ||M_j||)`` over non-zero neurons."""
    W = np.asarray(W, dtype=np.float64)
    norms = np.linalg.norm(W, axis=1)
    keep = norms > 0
    return np.abs(W[keep] @ M.T) / (norms[keep, None] * np.linalg.norm(M, axis=1)[None, :])


def feature_metrics(run: Run, threshold: float = COS_THRESHOLD) -> dict[str, float]:
    """Neuron-level statistics of the final forward weights, split into majority and minority features.

    Returns ``count_major`` / ``count_minor`` (mean over features of the number of neurons with
    cosine >= ``threshold``), ``maxcos_major`` / ``maxcos_minor`` (mean over features of the largest
    cosine), ``magnitude_major`` / ``magnitude_minor`` (mean over features of the largest
    ``|<w_i, M_j>|``: the coefficient of the feature's most specialised neuron) and ``n_alive``.
    """
    W = run.W_forward
    return projection_metrics(W @ run.M.T, np.linalg.norm(W, axis=1), run.config.n_major, threshold)


def projection_metrics(proj: np.ndarray, norms: np.ndarray, n_major: int, threshold: float = COS_THRESHOLD
                       ) -> dict[str, float]:
    """:func:`feature_metrics` from the projections ``proj`` float64[m, d] (``<w_i, M_j>``, unit ``M_j``, majority
    features first) and the norms ``norms`` float64[m] of the neurons; zero neurons (pruned) are left out."""
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


def positive_pair_cosine(run: Run, n: int = 512, seed: SeedLike = 1) -> float:
    """Mean of ``cos(f(X_n), f(Y_n))`` over ``n`` fresh positive pairs from the training distribution
    (forward weights and the run's attention)."""
    X, Y, _ = sample_pairs(run.config, n, seed, M=run.M)
    W = run.W_forward
    FX, FY = encode(run.config, W, X, run.attention), encode(run.config, W, Y, run.attention)
    nx, ny = np.linalg.norm(FX, axis=1), np.linalg.norm(FY, axis=1)
    ok = (nx > 0) & (ny > 0)
    if not np.any(ok):
        return 0.0
    c = np.zeros(n)
    c[ok] = np.sum(FX[ok] * FY[ok], axis=1) / (nx[ok] * ny[ok])
    return float(np.mean(c))


def downstream_mse(run: Run, n_train: int = 1000, n_test: int = 1000, ridge: float = 1e-3,
                   seed: SeedLike = 2) -> float:
    r"""Relative test MSE of a ridge regression on the learned representation.

    The downstream task is balanced: every feature appears with the majority probability ``p``, and the
    target is :math:`y = \sum_r \sum_j \beta_j z_j^{(r)}` with fixed :math:`\beta_j \sim N(0,1)` so that
    every feature matters. Returns ``mean((y - yhat)^2) / var(y)`` on the test set (0 = perfect, about 1 =
    nothing learned). The encoder uses the forward weights and the run's attention.
    """
    cfg = run.config
    s = spawn_seeds(as_generator(seed), 3)
    probs = np.full(cfg.d, cfg.p)
    beta = as_generator(int(s[0])).standard_normal(cfg.d)
    W = run.W_forward

    def data(n, sd):
        X, _, Z = sample_pairs(cfg, n, int(sd), M=run.M, probs=probs)
        return encode(cfg, W, X, run.attention), Z.sum(axis=1) @ beta

    Ftr, ytr = data(n_train, s[1])
    Fte, yte = data(n_test, s[2])
    scale = np.sqrt(np.mean(Ftr**2, axis=0)) + 1e-12
    A = Ftr / scale
    coef = np.linalg.solve(A.T @ A + ridge * n_train * np.eye(A.shape[1]), A.T @ ytr)
    resid = yte - (Fte / scale) @ coef
    return float(np.mean(resid**2) / np.var(yte))
