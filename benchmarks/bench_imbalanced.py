"""Imbalanced-data contrastive SGD speed: theorykit's numba training loop versus the vectorised numpy loop a user
would write for the same model (sparse codes z with independent features, x = M z + xi, identity softmax attention,
BReLU MLP summed over tokens, InfoNCE with a stop-gradient on the second view, L2, plain SGD), and the achieved
flop rate against the machine's matrix-multiply peak measured in the same run.

Run: python benchmarks/bench_imbalanced.py [--quick]
Prints a Markdown table: time per SGD step (best of 3 runs, numba compile time excluded by a warm-up call) of the
numpy loop (with one BLAS thread, the resources of one theorykit run, and with numpy's default BLAS threads), of one
theorykit run (recording at the configuration's interval, and, as the numpy loop, which records nothing, only at
the start and the end), and of two replicates of one configuration trained in parallel threads
(``simulate_replicates``; time per step of each); speed-ups on the same cores (one run against the numpy loop with
one BLAS thread, two replicates against the numpy loop with the default threads); the flop rate in flop per CPU
second (of the run's thread; of both threads of the replicates) against the one-thread peak per CPU second
measured in the same run (:func:`matmul_peak`; CPU time, so that other work on a shared machine lowers neither);
and the agreement of the two implementations (loss and gradient on identical batches; the paper's neuron
statistics after training from the same initial weights, each side with its own random stream, with the spread
between seeds). ``--quick``: the quick size only, fewer steps and seeds.

The numpy side never calls theorykit's kernels. :func:`numpy_tokens`, :func:`numpy_loss_and_grad` and
:func:`numpy_algorithm1_step` are importable on their own: ``tests/test_bench_imbalanced.py`` checks them against
theorykit's kernels step by step (Algorithm 1 included), so this file is also the numpy reference implementation.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

import theorykit.theories.imbalanced_pruning as ip
from theorykit.simulate import single_threaded_blas

METRICS = ("count_major", "count_minor", "maxcos_major", "maxcos_minor")


# ---------------------------------------------------------------------------------------- reference model
def numpy_tokens(u: np.ndarray, xi: np.ndarray, M: np.ndarray, pi: np.ndarray, sigma: float
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positive pairs from the draws of one batch: ``u`` float64[T, d] uniforms (feature ``j`` is ``+1`` below
    ``pi_j / 2``, ``-1`` below ``pi_j``), ``xi`` float64[2, T, d1] normals. Returns ``X``, ``Y`` float64[T, d1]
    (row ``n L + r``) and the codes ``Z`` float64[T, d]."""
    Z = np.where(u < pi / 2, 1.0, np.where(u < pi, -1.0, 0.0))
    base = Z @ M
    return base + sigma * xi[0], base + sigma * xi[1], Z


def numpy_attention(X: np.ndarray, L: int, beta: float) -> np.ndarray:
    """``U[nL + r] = sum_s softmax_s(beta <x_r, x_s>) x_s`` within each input; ``X`` float64[B L, d1]."""
    X3 = X.reshape(-1, L, X.shape[1])
    sc = beta * (X3 @ X3.transpose(0, 2, 1))
    P = np.exp(sc - sc.max(axis=-1, keepdims=True))
    P /= P.sum(axis=-1, keepdims=True)
    return (P @ X3).reshape(X.shape)


def numpy_loss_and_grad(W: np.ndarray, X: np.ndarray, Y: np.ndarray, *, L: int, beta: float, tau: float,
                        lam: float, bias_sigma: float) -> tuple[float, np.ndarray]:
    r"""InfoNCE loss with a stop-gradient on ``Y`` plus ``lam/2 ||W||^2``, and its gradient float64[m, d1] in ``W``.

    ``X``, ``Y`` float64[B L, d1]. The biases :math:`b_i = k\sigma\|w_i\|` (``bias_sigma`` = :math:`k\sigma`) are
    held constant in the gradient, and the negatives of ``X_n`` are the other ``Y_k`` of the batch.
    """
    b = bias_sigma * np.linalg.norm(W, axis=1)
    B = X.shape[0] // L

    def encode(V):
        U = numpy_attention(V, L, beta)
        S = U @ W.T
        return U, S, (np.maximum(S - b, 0.0) - np.maximum(-S - b, 0.0)).reshape(B, L, -1).sum(axis=1)

    UX, SX, HX = encode(X)
    _, _, HY = encode(Y)  # stop-gradient branch: no gradient flows through it
    logits = HX @ HY.T / tau
    mx = logits.max(axis=1, keepdims=True)
    P = np.exp(logits - mx)
    lse = mx[:, 0] + np.log(P.sum(axis=1))
    loss = np.mean(lse - np.diag(logits)) + 0.5 * lam * np.sum(W * W)
    G = (P / P.sum(axis=1, keepdims=True) @ HY - HY) / (tau * B)  # dloss/dH(X_n)
    gS = (np.abs(SX) > b) * np.repeat(G, L, axis=0)  # BReLU'(s) = 1 outside [-b, b]
    return float(loss), gS.T @ UX + lam * W


def numpy_mask(W: np.ndarray, rate: float) -> np.ndarray:
    """Algorithm 1's mask: 0 for the ``floor(rate * W.size)`` smallest ``|W_ic|`` (the k-th smallest and below)."""
    k = int(np.floor(rate * W.size))
    if k == 0:
        return np.ones_like(W)
    thr = np.partition(np.abs(W).ravel(), k - 1)[k - 1]
    return (np.abs(W) > thr).astype(np.float64)


def numpy_algorithm1_step(W: np.ndarray, mask: np.ndarray, t: int, u: np.ndarray, xi: np.ndarray, cfg: ip.Config,
                          M: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Step ``t`` of SGD with Algorithm 1's pruning (``cfg.prune="forward_mask"``) or one-shot hard pruning, on the
    batch drawn as ``u``, ``xi``: returns the new weights and mask. From step ``cfg.prune_step`` on the mask of the
    ``prune_rate`` smallest ``|W|`` is recomputed every ``prune_every`` steps (hard: once), the forward pass
    uses ``W * mask``, and the gradient in those weights updates every weight, ``W <- (1 - eta lam) W - eta g``
    (hard: the pruned weights stay zero). Weight-level masks only."""
    start = cfg.prune_step
    pruning = start is not None and t >= start
    if pruning and ((cfg.prune == "forward_mask" and (t - start) % cfg.prune_every == 0)
                    or (cfg.prune == "hard" and t == start)):
        mask = numpy_mask(W, cfg.prune_rate)
        if cfg.prune == "hard":
            W = W * mask
    Weff = W * mask
    X, Y, _ = numpy_tokens(u, xi, M, cfg.feature_probs(), cfg.sigma)
    _, g = numpy_loss_and_grad(Weff, X, Y, L=cfg.n_tokens, beta=cfg.beta, tau=cfg.tau, lam=0.0,
                               bias_sigma=cfg.bias_scale * cfg.sigma)
    W = (1.0 - cfg.eta * cfg.lam) * W - cfg.eta * g
    return (W * mask if cfg.prune == "hard" and pruning else W), mask


def numpy_train(cfg: ip.Config, W0: np.ndarray, seed: int) -> np.ndarray:
    """The baseline loop: ``cfg.steps`` SGD steps from ``W0``, each batch drawn with numpy's ``Generator``;
    returns the final weights."""
    rng = np.random.default_rng(seed)
    M = np.eye(cfg.d1)[: cfg.d]  # coordinate basis, as ip.feature_matrix for basis="coordinate"
    W, mask = np.array(W0, dtype=np.float64), np.ones_like(W0)
    T = cfg.batch * cfg.n_tokens
    for t in range(cfg.steps):
        W, mask = numpy_algorithm1_step(W, mask, t, rng.random((T, cfg.d)), rng.standard_normal((2, T, cfg.d1)),
                                        cfg, M)
    return W * mask


# ------------------------------------------------------------------------------------------- measurements
def initial_weights(cfg: ip.Config, seed: int) -> np.ndarray:
    """float64[m, d1] i.i.d. ``N(0, init_scale^2 / d1)`` weights, the start shared by both implementations."""
    return np.random.default_rng(seed).standard_normal((cfg.width, cfg.d1)) * (cfg.init_scale / np.sqrt(cfg.d1))


def flops_per_step(cfg: ip.Config) -> float:
    """Floating-point operations of one SGD step: the encoder's ``(2BL) x d1 x m`` product, the gradient's
    ``m x BL x d1`` product, the ``B x B x m`` logits and softmax products, and the ``L x L`` attention of both
    views (token draws, thresholds and the update are O(BL d1 + m d1) and left out)."""
    T, m, d1, B, L = cfg.batch * cfg.n_tokens, cfg.width, cfg.d1, cfg.batch, cfg.n_tokens
    return 2.0 * (2 * T) * d1 * m + 2.0 * T * m * d1 + 4.0 * B * B * m + 8.0 * T * L * d1


def matmul_peak(n: int = 2048, repeats: int = 3) -> float:
    """The machine's float64 matrix-multiply peak per core: best of ``repeats`` ``n x n`` by ``n x n`` ``np.dot`` in
    one BLAS thread, in flop per CPU second of the calling thread, so that other work on a shared machine does not
    lower it. One training run does its products in one BLAS thread: this is its limit; two replicates in two
    threads are bounded by it per CPU second of each."""
    a = np.random.default_rng(0).standard_normal((n, n))
    with single_threaded_blas():
        a @ a
        return 2.0 * n**3 / best_time(np.dot, a, a, repeats=repeats, clock=time.thread_time)


def grad_agreement(cfg: ip.Config, Ws: list[np.ndarray], seed: int = 0) -> tuple[float, float]:
    """Largest relative differences of the loss and the gradient between numpy and theorykit, over the weights
    ``Ws`` and 3 batches each drawn once with numpy and fed to both."""
    rng = np.random.default_rng(seed)
    M = np.eye(cfg.d1)[: cfg.d]
    T = cfg.batch * cfg.n_tokens
    dl, dg = 0.0, 0.0
    for W in Ws:
        for _ in range(3):
            X, Y, _ = numpy_tokens(rng.random((T, cfg.d)), rng.standard_normal((2, T, cfg.d1)), M,
                                   cfg.feature_probs(), cfg.sigma)
            l_np, g_np = numpy_loss_and_grad(W, X, Y, L=cfg.n_tokens, beta=cfg.beta, tau=cfg.tau, lam=cfg.lam,
                                             bias_sigma=cfg.bias_scale * cfg.sigma)
            shape = (cfg.batch, cfg.n_tokens, cfg.d1)
            l_tk, g_tk = ip.loss_and_grad(cfg, W, X.reshape(shape), Y.reshape(shape))
            dl = max(dl, abs(l_np - l_tk) / abs(l_tk))
            dg = max(dg, float(np.max(np.abs(g_np - g_tk)) / np.max(np.abs(g_tk))))
    return dl, dg


def metrics_of(cfg: ip.Config, W: np.ndarray) -> dict[str, float]:
    """The paper's neuron statistics of the final weights (coordinate features)."""
    return ip.projection_metrics(W[:, : cfg.d], np.linalg.norm(W, axis=1), cfg.n_major)


def best_time(fn, *args, repeats: int = 3, clock=time.perf_counter, **kwargs) -> float:
    """Best time by ``clock`` (default: wall time; ``time.thread_time``: CPU time of the calling thread) of
    ``repeats`` calls ``fn(*args, **kwargs)``, in seconds."""
    best = np.inf
    for _ in range(repeats):
        t0 = clock()
        fn(*args, **kwargs)
        best = min(best, clock() - t0)
    return best


def best_wall_and_cpu(fn, *args, repeats: int = 3, cpu_clock=time.thread_time, **kwargs) -> tuple[float, float]:
    """Best wall time and best CPU time of ``repeats`` calls ``fn(*args, **kwargs)``, in seconds. CPU time of the
    calling thread by default (a single run trains there; BLAS threads of earlier numpy calls that spin on do not
    count), ``cpu_clock=time.process_time`` for all threads of the process."""
    wall, cpu = np.inf, np.inf
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), cpu_clock()
        fn(*args, **kwargs)
        wall, cpu = min(wall, time.perf_counter() - t0), min(cpu, cpu_clock() - c0)
    return wall, cpu


def machine_line() -> str:
    """Machine, software versions and the current 1-minute load."""
    import platform

    import numba

    return (f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, numpy {np.__version__}, "
            f"numba {numba.__version__} (OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}); "
            f"load average {os.getloadavg()[0]:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the quick size only, fewer steps and seeds")
    args = ap.parse_args()
    quick_cfg, full_cfg = ip.default_config(quick=True), ip.default_config(quick=False)
    if args.quick:
        sizes, n_seeds = [("quick", quick_cfg.with_(steps=600))], 2
    else:
        large = full_cfg.with_(d1=128, n_major=8, n_minor=8, width=256, batch=64, n_tokens=4, steps=300)
        sizes, n_seeds = [("quick", quick_cfg), ("full", full_cfg), ("larger", large)], 3
    ip.simulate_sgd(quick_cfg.with_(steps=10, record_every=5), seed=0)  # warm-up: numba compile / cache load
    print(machine_line() + "\n")
    peak = matmul_peak()
    print(f"matrix-multiply peak (2048^3 np.dot, one BLAS thread): {peak / 1e9:.1f} GFlop/s per CPU second\n")
    print("| size | d1 | d | m | L | batch | steps | record every | numpy loop, one BLAS thread / default BLAS threads "
          "(µs/step) | theorykit, one run (µs/step; CPU µs/step) "
          "| theorykit, one run recording only at the end (CPU µs/step) "
          "| theorykit, 2 replicates in parallel (µs/step each; cores busy) "
          "| speed-up: one run vs numpy with one BLAS thread / 2 replicates vs numpy with default threads "
          "| one run: flop per CPU second (fraction of the peak), recording / only at the end "
          "| 2 replicates: flop per CPU second (fraction of the peak) | max rel. diff. loss / grad | "
          + " | ".join(f"{k}: numpy / theorykit" for k in METRICS) + " | seed spread |")
    print("|" + "---|" * (16 + len(METRICS)))
    for name, cfg in sizes:
        W0 = initial_weights(cfg, 0)
        with single_threaded_blas():
            t_np1 = best_time(numpy_train, cfg, W0, seed=100)
        t_np = best_time(numpy_train, cfg, W0, seed=100)
        t_tk, c_tk = best_wall_and_cpu(ip.simulate_sgd, cfg, seed=0, W0=W0)
        # the training loop alone, as the numpy loop (which records nothing): records at steps 0 and the end only
        _, c_end = best_wall_and_cpu(ip.simulate_sgd, cfg.with_(record_every=cfg.steps), seed=0, W0=W0)
        t_rep, c_rep = best_wall_and_cpu(ip.simulate_replicates, cfg, [0, 1], threads=2, cpu_clock=time.process_time)
        f = flops_per_step(cfg) * cfg.steps
        res_np, res_tk, W_end = [], [], None
        for s in range(n_seeds):
            W0s = initial_weights(cfg, 1000 + s)
            res_np.append(metrics_of(cfg, numpy_train(cfg, W0s, seed=2000 + s)))
            W_end = ip.simulate_sgd(cfg, seed=3000 + s, W0=W0s).observable("W")[-1]
            res_tk.append(metrics_of(cfg, W_end))
        dl, dg = grad_agreement(cfg, [W0, W_end])
        cols = [f"{np.mean([r[k] for r in res_np]):.2f} / {np.mean([r[k] for r in res_tk]):.2f}" for k in METRICS]
        spread = ", ".join(f"{np.std([r[k] for r in res_np + res_tk]):.2f}" for k in METRICS)
        us = 1e6 / cfg.steps
        print(f"| {name} | {cfg.d1} | {cfg.d} | {cfg.width} | {cfg.n_tokens} | {cfg.batch} | {cfg.steps} "
              f"| {cfg.record_every} | {t_np1 * us:.1f} / {t_np * us:.1f} | {t_tk * us:.1f}; {c_tk * us:.1f} "
              f"| {c_end * us:.1f} | {t_rep / 2 * us:.1f}; {c_rep / t_rep:.2f} "
              f"| {t_np1 / t_tk:.1f}x / {2 * t_np / t_rep:.1f}x "
              f"| {f / c_tk / 1e9:.1f} ({f / c_tk / peak:.0%}) / {f / c_end / 1e9:.1f} GFlop/s "
              f"({f / c_end / peak:.0%}) "
              f"| {2 * f / c_rep / 1e9:.1f} GFlop/s ({2 * f / c_rep / peak:.0%}) "
              f"| {dl:.1e} / {dg:.1e} | " + " | ".join(cols) + f" | {spread} |")
    print(f"\n{n_seeds} seeds per side for the neuron statistics; load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
