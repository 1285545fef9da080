"""Particle-simulation speed: theorykit's numba SGD on the linear non-contrastive networks versus the plain
numpy loop a user would write, same model, same sizes, same run.

Run: python benchmarks/bench_sgd.py [--quick]
Prints a Markdown table: time per SGD step, speed-up, and the agreement of the final eigen-observables
(mean over seeds, with the spread between seeds as the scale of the Monte-Carlo error).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from theorykit.theories.noncontrastive import simulate_sgd


def numpy_sgd(dim: int, batch: int, lr: float, n_steps: int, p0: float, eta: float, sigma2: float, seed: int):
    """The baseline: a plain numpy loop of the same Euclidean SimSiam SGD; returns the final mean p and s."""
    rng = np.random.default_rng(seed)
    U, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    V, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    W = (U * np.sqrt(p0**2)) @ V.T
    Wp = (U * p0) @ U.T
    sigma = np.sqrt(sigma2)
    for _ in range(n_steps):
        x = rng.normal(size=(batch, dim))
        x1 = x + sigma * rng.normal(size=(batch, dim))
        x2 = x + sigma * rng.normal(size=(batch, dim))
        z = x1 @ W.T
        u = z @ Wp.T
        v = x2 @ W.T  # SimSiam: the target is the online network behind a stop-gradient
        g = u - v
        g_wp = g.T @ z / batch
        g_w = (g @ Wp).T @ x1 / batch
        Wp -= lr * (g_wp + eta * Wp)
        W -= lr * (g_w + eta * W)
    p = np.mean(np.diag(U.T @ Wp @ U))
    s = np.mean(np.diag(U.T @ W @ W.T @ U))
    return p, s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer steps and seeds")
    args = ap.parse_args()
    seeds = range(3 if args.quick else 5)
    settings = [(32, 16, 2000), (128, 64, 1000)] if args.quick else [(32, 16, 10_000), (128, 64, 4000), (256, 128, 1000)]
    eta, sigma2, p0 = 0.05, 0.5, 1.0
    simulate_sgd("euclidean", dim=8, batch=4, lr=0.01, t_end=0.1, p0=[p0], eta=eta, sigma2=sigma2, seed=0)  # JIT
    print("| d | batch | steps | numpy loop (µs/step) | theorykit numba (µs/step) | speed-up | final p: numpy | "
          "final p: theorykit | seed spread of p |")
    print("|---|---|---|---|---|---|---|---|---|")
    for dim, batch, steps in settings:
        lr = 0.64 / dim
        t_np, t_nb, p_np, p_nb = 0.0, 0.0, [], []
        for seed in seeds:
            t0 = time.perf_counter()
            p_np.append(numpy_sgd(dim, batch, lr, steps, p0, eta, sigma2, seed)[0])
            t_np += time.perf_counter() - t0
            t0 = time.perf_counter()
            run = simulate_sgd("euclidean", dim=dim, batch=batch, lr=lr, t_end=steps * lr, p0=[p0], eta=eta,
                               sigma2=sigma2, n_record=2, seed=seed)
            t_nb += time.perf_counter() - t0
            p_nb.append(run.p[-1, 0])
        n = len(seeds) * steps
        spread = float(np.std(p_np + p_nb))
        print(f"| {dim} | {batch} | {steps} | {t_np / n * 1e6:.1f} | {t_nb / n * 1e6:.1f} | {t_np / t_nb:.1f}x "
              f"| {np.mean(p_np):.4f} | {np.mean(p_nb):.4f} | {spread:.4f} |")


if __name__ == "__main__":
    main()
