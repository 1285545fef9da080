"""Imbalanced-data contrastive SGD speed: theorykit's numba training loop versus the vectorised numpy loop a user
would write for the same model (sparse-coding tokens, fixed softmax attention with W_Q^T W_K = beta I, BReLU MLP
summed over tokens, InfoNCE with a stop-gradient on the second view, L2, plain SGD).

Run: python benchmarks/bench_imbalanced.py [--quick]
Prints a Markdown table: time per SGD step (best of 3 runs of the same length, numba compile time excluded by a
warm-up call), speed-up, and the agreement of the two implementations: the largest relative difference of the
loss and the gradient on identical batches, and the paper's neuron statistics of the final weights (mean over
seeds, with the spread between seeds as the scale of the Monte-Carlo error) after training from the same
initial weights, each side with its own random stream. ``--quick`` times the quick reproduce size only, with
fewer steps and seeds (about 15 s).

The numpy side never calls theorykit's kernels: :func:`numpy_sample_pairs`, :func:`numpy_loss_and_grad` and
:func:`numpy_sgd_step` are importable on their own (``tests/test_bench_imbalanced.py`` checks the loss and the
gradient against :func:`theorykit.theories.imbalanced_pruning.loss_and_grad`). Its matrix products go through
BLAS; ``OPENBLAS_NUM_THREADS=1 python benchmarks/bench_imbalanced.py`` measures the single-threaded case, and
the first line printed says which one ran.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

import theorykit.theories.imbalanced_pruning as ip

METRICS = ("count_major", "count_minor", "maxcos_major", "maxcos_minor")


def numpy_sample_pairs(rng: np.random.Generator, M: np.ndarray, probs: np.ndarray, sigma: float, batch: int,
                       n_tokens: int) -> tuple[np.ndarray, np.ndarray]:
    """``batch`` positive pairs ``(X, Y)`` float64[batch, n_tokens, d] of the sparse-coding data model.

    Each token carries feature ``j`` (row ``M[j]``) with probability ``probs[j]``, or no feature with the
    remaining probability, with a random sign; both views share the signed feature and get independent
    Gaussian noise of standard deviation ``sigma`` per coordinate.
    """
    d = M.shape[1]
    j = np.searchsorted(np.cumsum(probs), rng.random((batch, n_tokens)), side="right")  # j == K: no feature
    sign = np.where(rng.random((batch, n_tokens)) < 0.5, 1.0, -1.0)
    base = sign[..., None] * np.vstack([M, np.zeros((1, d))])[j]
    X = base + sigma * rng.standard_normal((batch, n_tokens, d))
    Y = base + sigma * rng.standard_normal((batch, n_tokens, d))
    return X, Y


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _encode(X: np.ndarray, W: np.ndarray, b: np.ndarray, beta: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Attention output ``U`` [B, L, d], pre-activations ``S`` [B*L, m] and representation ``H`` [B, m]."""
    B, L, d = X.shape
    U = _softmax(beta * (X @ X.transpose(0, 2, 1))) @ X
    S = U.reshape(B * L, d) @ W.T
    H = (np.maximum(S - b, 0.0) - np.maximum(-S - b, 0.0)).reshape(B, L, -1).sum(axis=1)
    return U, S, H


def numpy_loss_and_grad(W: np.ndarray, X: np.ndarray, Y: np.ndarray, *, beta: float, tau: float, lam: float,
                        kappa_sigma: float) -> tuple[float, np.ndarray]:
    r"""InfoNCE loss with a stop-gradient on ``Y`` plus ``lam/2 ||W||^2``, and its gradient float64[m, d] in ``W``.

    The biases :math:`b_i = \kappa\sigma\|w_i\|` (``kappa_sigma`` = :math:`\kappa\sigma`) are held constant in
    the gradient, and the negatives of ``X_n`` are the other ``Y_k`` of the batch.
    """
    B, L, d = X.shape
    b = kappa_sigma * np.linalg.norm(W, axis=1)
    UX, SX, HX = _encode(X, W, b, beta)
    _, _, HY = _encode(Y, W, b, beta)  # stop-gradient branch: no gradient flows through it
    logits = HX @ HY.T / tau
    mx = logits.max(axis=1, keepdims=True)
    lse = mx[:, 0] + np.log(np.exp(logits - mx).sum(axis=1))
    loss = np.mean(lse - np.diag(logits)) + 0.5 * lam * np.sum(W * W)
    G = (_softmax(logits) @ HY - HY) / (tau * B)  # dloss/dH(X_n)
    active = np.abs(SX) > b  # BReLU'(s) = 1 outside [-b, b]
    gS = active * np.repeat(G, L, axis=0)  # dloss/dS, [B*L, m]
    return float(loss), gS.T @ UX.reshape(B * L, d) + lam * W


def numpy_sgd_step(W: np.ndarray, rng: np.random.Generator, cfg: ip.Config, M: np.ndarray) -> float:
    """One SGD step on a fresh batch: ``W <- W - eta grad`` in place; returns the batch loss."""
    X, Y = numpy_sample_pairs(rng, M, cfg.feature_probs(), cfg.sigma, cfg.batch, cfg.n_tokens)
    loss, grad = numpy_loss_and_grad(W, X, Y, beta=cfg.beta, tau=cfg.tau, lam=cfg.lam,
                                     kappa_sigma=cfg.kappa * cfg.sigma)
    W -= cfg.eta * grad
    return loss


def numpy_train(cfg: ip.Config, W0: np.ndarray, seed: int) -> np.ndarray:
    """The baseline loop: ``cfg.steps`` SGD steps from ``W0``; returns the final weights."""
    rng = np.random.default_rng(seed)
    M = np.eye(cfg.d)[: cfg.n_features]  # coordinate basis, as ip.feature_matrix for basis="coordinate"
    W = np.array(W0, dtype=np.float64)
    for _ in range(cfg.steps):
        numpy_sgd_step(W, rng, cfg, M)
    return W


def initial_weights(cfg: ip.Config, seed: int) -> np.ndarray:
    """float64[m, d] i.i.d. ``N(0, init_scale^2 / d)`` weights, the start shared by both implementations."""
    return np.random.default_rng(seed).standard_normal((cfg.width, cfg.d)) * (cfg.init_scale / np.sqrt(cfg.d))


def grad_agreement(cfg: ip.Config, Ws: list[np.ndarray], seed: int = 0) -> tuple[float, float]:
    """Largest relative differences of the loss and the gradient between numpy and theorykit, over the
    weights ``Ws`` and 3 batches each drawn once with numpy and fed to both."""
    rng = np.random.default_rng(seed)
    M = np.eye(cfg.d)[: cfg.n_features]
    dl, dg = 0.0, 0.0
    for W in Ws:
        for _ in range(3):
            X, Y = numpy_sample_pairs(rng, M, cfg.feature_probs(), cfg.sigma, cfg.batch, cfg.n_tokens)
            l_np, g_np = numpy_loss_and_grad(W, X, Y, beta=cfg.beta, tau=cfg.tau, lam=cfg.lam,
                                             kappa_sigma=cfg.kappa * cfg.sigma)
            l_tk, g_tk = ip.loss_and_grad(cfg, W, X, Y)
            dl = max(dl, abs(l_np - l_tk) / abs(l_tk))
            dg = max(dg, float(np.max(np.abs(g_np - g_tk)) / np.max(np.abs(g_tk))))
    return dl, dg


def metrics_of(cfg: ip.Config, W: np.ndarray) -> dict[str, float]:
    """The paper's neuron statistics of the final weights (coordinate features)."""
    return ip.projection_metrics(W[:, : cfg.n_features], np.linalg.norm(W, axis=1), cfg.n_major)


def best_time(fn, *args, repeats: int = 3, **kwargs) -> float:
    """Best wall time of ``repeats`` calls ``fn(*args, **kwargs)``, in seconds."""
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(*args, **kwargs)
        best = min(best, time.perf_counter() - t0)
    return best


def machine_line() -> str:
    """Machine, software versions, BLAS threads and the current 1-minute load."""
    import platform

    import numba

    try:
        from threadpoolctl import threadpool_info
        blas = sorted({f"{i['internal_api']} {i['version']}, {i['num_threads']} threads"
                       for i in threadpool_info() if i["user_api"] == "blas"})
    except ImportError:  # pragma: no cover
        blas = ["threadpoolctl not installed"]
    return (f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, numpy {np.__version__}, "
            f"numba {numba.__version__}; BLAS: {'; '.join(blas)} "
            f"(OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}); "
            f"load average {os.getloadavg()[0]:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the quick reproduce size only, fewer steps and seeds")
    args = ap.parse_args()
    quick_cfg, full_cfg = ip.default_config(quick=True), ip.default_config(quick=False)
    if args.quick:
        sizes = [("quick", quick_cfg.with_(steps=600))]
        n_seeds = 3
    else:
        large = full_cfg.with_(d=96, n_major=8, n_minor=8, width=128, batch=64, n_tokens=4, steps=600)
        sizes = [("quick", quick_cfg), ("full", full_cfg), ("larger", large)]
        n_seeds = 5
    ip.train(quick_cfg.with_(steps=10, record_every=5), seed=0)  # warm-up: numba compile / cache load
    print(machine_line() + "\n")
    print("| size | d | m | L | batch | steps | numpy loop (µs/step) | theorykit numba (µs/step) | speed-up "
          "| max rel. diff. loss / grad | " + " | ".join(f"{k}: numpy / theorykit" for k in METRICS)
          + " | seed spread of " + ", ".join(METRICS) + " |")
    print("|" + "---|" * (10 + len(METRICS) + 1))
    for name, cfg in sizes:
        W0 = initial_weights(cfg, 0)
        t_np = best_time(numpy_train, cfg, W0, seed=100)
        t_tk = best_time(ip.train, cfg, seed=0, W0=W0)
        res_np, res_tk, W_end = [], [], None
        for s in range(n_seeds):
            W0s = initial_weights(cfg, 1000 + s)
            W_np = numpy_train(cfg, W0s, seed=2000 + s)
            W_tk = ip.train(cfg, seed=3000 + s, W0=W0s).W
            res_np.append(metrics_of(cfg, W_np))
            res_tk.append(metrics_of(cfg, W_tk))
            W_end = W_tk
        dl, dg = grad_agreement(cfg, [W0, W_end])
        cols = []
        for k in METRICS:
            cols.append(f"{np.mean([r[k] for r in res_np]):.2f} / {np.mean([r[k] for r in res_tk]):.2f}")
        spread = ", ".join(f"{np.std([r[k] for r in res_np + res_tk]):.2f}" for k in METRICS)
        print(f"| {name} | {cfg.d} | {cfg.width} | {cfg.n_tokens} | {cfg.batch} | {cfg.steps} "
              f"| {t_np / cfg.steps * 1e6:.1f} | {t_tk / cfg.steps * 1e6:.1f} | {t_np / t_tk:.1f}x "
              f"| {dl:.1e} / {dg:.1e} | " + " | ".join(cols) + f" | {spread} |")
    print(f"\n{n_seeds} seeds per side for the neuron statistics; load average at the end "
          f"{os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
