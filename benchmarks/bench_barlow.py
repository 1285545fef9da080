"""Barlow Twins network training speed: theorykit's ``simulate_network`` (the numba gradient-descent step kernel
driven by ``theorykit.simulate.run_particles``) versus the plain numpy loop a user would write for the same
model, at the sizes of ``theorykit reproduce`` (quick: N = 24 pairs, widths up to 2048; full: N = 64 pairs,
widths up to 16384), in the same run.

Run: python benchmarks/bench_barlow.py [--quick]
Prints the machine load, the measured matrix-multiply peak and a Markdown table: time per gradient-descent
step (best of the repeats, numba compile time excluded by a warm-up call), speed-up, achieved floating-point
rate of the step's matrix products as a fraction of the peak, and the agreement of the two loops (largest
difference of the recorded losses relative to the initial loss: both start from the same weights and are
deterministic, so they differ by rounding alone).

Both sides record the full-batch loss every 10 steps. The flop count is that of the five matrix products of a
step, ``2 n M (2 d + 3 K)`` for n = 2N inputs (tanh, the loss and the update are not counted). theorykit's kernel
runs in one thread, so its rate is in flop per CPU second against the peak of one BLAS thread per CPU second (the
best of 2000 x 2000 ``numpy`` matrix products in the same run; CPU time, so that other work on a shared machine
lowers neither). The numpy loop uses numpy's BLAS threads; ``OPENBLAS_NUM_THREADS=1 python
benchmarks/bench_barlow.py`` measures it single-threaded, and the first line printed says which one ran.
Then: four seeds of one network one after the other and as ``simulate_network_replicates`` in two threads, and the
parts of a step at the largest size.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from theorykit._jit import njit
from theorykit.simulate import single_threaded_blas
from theorykit.theories.barlow_ntk import (_kernels, gaussian_pairs, init_params, simulate_network,
                                          simulate_network_replicates)

D, K, LR, LAM, RECORD_EVERY = 16, 2, 0.05, 1.0, 10


def numpy_gd(X: np.ndarray, Xp: np.ndarray, W: np.ndarray, V: np.ndarray, n_steps: int) -> np.ndarray:
    """The baseline: full-batch gradient descent of ``f(x) = tanh(x Wᵀ) Vᵀ / √M`` on the Barlow Twins loss in
    plain numpy; returns the loss before steps 0, 10, ..., n_steps."""
    N, M = X.shape[0], W.shape[0]
    Z = np.vstack([X, Xp])
    s = 1.0 / np.sqrt(M)
    off = np.where(np.eye(K) > 0, 1.0, LAM)
    losses = []
    W, V = W.copy(), V.copy()
    for step in range(n_steps + 1):
        A = np.tanh(Z @ W.T)
        F = A @ V.T * s
        C = F[:N].T @ F[N:] / N
        if step % RECORD_EVERY == 0:
            losses.append(np.sum(off * (C - np.eye(K)) ** 2))
        if step == n_steps:
            break
        G = 2 * off * (C - np.eye(K))  # dL/dC
        gF = np.vstack([F[N:] @ G.T, F[:N] @ G]) / N * s
        gV = gF.T @ A
        gW = ((gF @ V) * (1 - A * A)).T @ Z
        W -= LR * gW
        V -= LR * gV
    return np.array(losses)


def matmul_peak(n: int = 2000, repeats: int = 5) -> float:
    """Best rate of an ``n x n`` float64 matrix product with numpy in one BLAS thread, in flop per CPU second of
    the calling thread: the limit of theorykit's kernel, which runs in one thread, measured so that other work on a
    shared machine does not lower it."""
    a = np.random.default_rng(0).standard_normal((n, n))
    b = np.random.default_rng(1).standard_normal((n, n))
    out = np.empty((n, n))
    best = np.inf
    with single_threaded_blas():
        np.dot(a, b, out)
        for _ in range(repeats):
            c0 = time.thread_time()
            np.dot(a, b, out)
            best = min(best, time.thread_time() - c0)
    return 2.0 * n ** 3 / best


def time_both(N: int, M: int, n_steps: int, repeats: int) -> dict:
    """Best time per step of each loop (interleaved repeats) and the agreement of their losses."""
    data = gaussian_pairs(N, D, radius=2.0, n_clusters=8, spread=1.0, seed=1)
    W, V = init_params(D, M, K, seed=2)
    t_np = t_tk = c_tk = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        loss_np = numpy_gd(data.X, data.Xp, W, V, n_steps)
        t_np = min(t_np, time.perf_counter() - t0)
        t0, c0 = time.perf_counter(), time.thread_time()  # the kernel runs in this thread
        run = simulate_network(data.X, data.Xp, W, V, lam=LAM, activation="tanh", lr=LR, n_steps=n_steps,
                               record_every=RECORD_EVERY)
        t_tk, c_tk = min(t_tk, time.perf_counter() - t0), min(c_tk, time.thread_time() - c0)
    loss_tk = run.observable("loss")
    return {"numpy": t_np / n_steps, "theorykit": t_tk / n_steps, "theorykit_cpu": c_tk / n_steps,
            "rel_diff": float(np.max(np.abs(loss_tk - loss_np)) / loss_np[0])}


@njit
def _forward_products(W, ZT, H, block):
    for m0 in range(0, W.shape[0], block):
        m1 = min(W.shape[0], m0 + block)
        np.dot(W[m0:m1], ZT, H[:m1 - m0])


@njit
def _gradient_products(BT, Z, gW, block):
    for m0 in range(0, gW.shape[0], block):
        m1 = min(gW.shape[0], m0 + block)
        np.dot(BT[:m1 - m0], Z, gW[m0:m1])


@njit
def _activation_pass(pre, AT, V, block):
    FT = np.zeros((V.shape[0], AT.shape[1]))
    for m0 in range(0, AT.shape[0], block):
        m1 = min(AT.shape[0], m0 + block)
        _kernels._activate_rows(pre[:m1 - m0], AT[m0:m1], V[:, m0:m1], 0, FT, AT[:0])


@njit
def _backward_pass(AT, gFT, V, BT, gV, block):
    for j in range((AT.shape[0] + block - 1) // block - 1, -1, -1):
        m0 = j * block
        m1 = min(AT.shape[0], m0 + block)
        _kernels._backward_rows(AT[m0:m1], gFT, V[:, m0:m1], 0, BT[:m1 - m0], gV[:, m0:m1])


def breakdown(N: int, M: int, repeats: int) -> dict[str, float]:
    """CPU seconds per step of the parts of theorykit's step at one size (best of the repeats), each in a compiled
    loop over the blocks of neurons as the kernel runs it: the BLAS products with the inputs (into the one-block
    work arrays, which stay in the cache), the activation-and-outputs pass (from one block of pre-activations, as
    the product leaves it, into the (M, n) activations), the backward pass through the activations, and the
    gradient-descent update; tanh's share: the activation pass of ``_kernels.activate`` alone, in place."""
    data = gaussian_pairs(N, D, radius=2.0, seed=1)
    W, V = init_params(D, M, K, seed=2)
    Z = np.vstack([data.X, data.Xp])
    ZT = np.ascontiguousarray(Z.T)
    n = Z.shape[0]
    rng = np.random.default_rng(3)
    AT, gW, gV = np.clip(rng.standard_normal((M, n)), -3.0, 3.0), rng.standard_normal(W.shape), np.empty_like(V)
    gFT = 1e-3 * rng.standard_normal((K, n))
    block = _kernels._block(n, D)
    H, BT = np.empty((block, n)), rng.standard_normal((block, n))  # the kernel's one-block work arrays
    pre = np.clip(AT[:block], -3.0, 3.0)
    parts = {"BLAS products": lambda: (_forward_products(W, ZT, H, block), _gradient_products(BT, Z, gW, block)),
             "activation and outputs": lambda: _activation_pass(pre, AT, V, block),
             "backward": lambda: _backward_pass(AT, gFT, V, BT, gV, block),
             "update": lambda: _kernels._descend(W, V, gW, gV, 0.0),
             "tanh alone": lambda: _kernels.activate(AT, 0)}
    out = {}
    for name, fn in parts.items():
        fn()
        best = np.inf
        for _ in range(repeats):
            AT[:] = np.clip(AT, -3.0, 3.0)  # keep the activations' inputs in tanh's working range
            c0 = time.thread_time()
            fn()
            best = min(best, time.thread_time() - c0)
        out[name] = best
    return out


def replicates_row(N: int, M: int, steps: int, seeds) -> str:
    """Several seeds of one network (N pairs, width M): one after the other, then as replicates in two threads
    (``simulate_network_replicates``), with the cores a GIL-free two-thread loop gets at the moment."""
    from bench_sgd import cores_available, timed  # benchmarks/ is the script's folder

    data = gaussian_pairs(N, D, radius=2.0, seed=1)
    kw = dict(activation="tanh", lr=LR, lam=LAM, n_steps=steps, record_every=RECORD_EVERY)
    ceiling = cores_available()
    _, t_one, c_one = timed(lambda: [simulate_network(data.X, data.Xp, *init_params(D, M, K, seed=s), seed=s, **kw)
                                     for s in seeds])
    _, t_two, c_two = timed(simulate_network_replicates, data.X, data.Xp, M, seeds, K=K, threads=2, **kw)
    return (f"N = {N}, M = {M}, {steps} steps, {len(seeds)} seeds (load average {os.getloadavg()[0]:.1f}; a GIL-free "
            f"loop in two threads gets {ceiling:.2f} cores now): one after the other {t_one:.2f} s ({c_one / t_one:.2f}"
            f" cores busy), simulate_network_replicates on 2 threads {t_two:.2f} s ({c_two / t_two:.2f} cores busy), "
            f"{t_one / t_two:.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer steps and repeats")
    args = ap.parse_args()
    # (N pairs, width M, steps): the quick reproduce's smallest, middle and largest widths, the full one's largest
    sizes = [(24, 64, 2000), (24, 512, 1000), (24, 2048, 300), (64, 16384, 40)]
    repeats = 2 if args.quick else 5
    if args.quick:
        sizes = [(N, M, max(1, steps // (4 * RECORD_EVERY)) * RECORD_EVERY) for N, M, steps in sizes]
    data = gaussian_pairs(4, D, seed=0)
    simulate_network(data.X, data.Xp, *init_params(D, 8, K), activation="tanh", n_steps=10)  # JIT / cache load
    load0 = os.getloadavg()[0]
    # the peak is measured before every row and at the end; the fractions use the best of these measurements
    peaks = [matmul_peak()]
    rows = []
    for N, M, steps in sizes:
        r = time_both(N, M, steps, repeats)
        peaks.append(matmul_peak())
        rows.append((N, M, steps, r, 2.0 * (2 * N) * M * (2 * D + 3 * K) / r["theorykit_cpu"]))
    peak = max(peaks)
    print(f"BLAS threads: OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}, "
          f"{os.cpu_count()} CPUs, load average {load0:.1f} at the start and {os.getloadavg()[0]:.1f} at the end; "
          f"matrix-multiply peak of one BLAS thread {peak / 1e9:.1f} Gflop/s per CPU second (2000 x 2000, numpy; "
          f"best of {', '.join(f'{p / 1e9:.1f}' for p in peaks)})\n")
    print("| N pairs | width M | steps | numpy loop (µs/step) | theorykit (µs/step) | speed-up "
          "| theorykit CPU (µs/step) | theorykit Gflop per CPU second | fraction of the one-thread peak "
          "| max abs. loss difference / L(0) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for N, M, steps, r, rate in rows:
        print(f"| {N} | {M} | {steps} | {r['numpy'] * 1e6:.1f} | {r['theorykit'] * 1e6:.1f} | "
              f"{r['numpy'] / r['theorykit']:.1f}x | {r['theorykit_cpu'] * 1e6:.1f} | {rate / 1e9:.2f} | "
              f"{rate / peak:.0%} | {r['rel_diff']:.1e} |")
    print("\nReplicates: " + replicates_row(24, 2048, 1000 if not args.quick else 200, list(range(4))))
    N, M, steps = sizes[-1]
    with single_threaded_blas():
        parts = breakdown(N, M, 3 * repeats)
    flops = 2.0 * (2 * N) * M * 2 * D
    print(f"\nParts of one step at N = {N}, M = {M} (CPU ms): "
          + ", ".join(f"{name} {t * 1e3:.2f}" for name, t in parts.items())
          + f"; the BLAS products alone run at {flops / parts['BLAS products'] / 1e9:.1f} Gflop/s "
          f"({flops / parts['BLAS products'] / peak:.0%} of the peak)")


if __name__ == "__main__":
    main()
