"""Particle-simulation speed: theorykit's numba SGD kernels versus the plain numpy loops a user would write,
same model, same sizes, same run: minibatch SGD of the linear non-contrastive networks, and online
(one fresh sample per step) SGD of the high-dimensional nonlinear contrastive model.

Run: python benchmarks/bench_sgd.py [--quick] [--online | --replicates]
Prints Markdown tables: time per SGD step, speed-up, and the agreement of the final eigen-observables
(mean over seeds, with the spread between seeds as the scale of the Monte-Carlo error). Both sides draw their
Gaussian samples with numpy's Generator, so the speed-up is what the numba kernels save around the draws.

The products at d >= 128 go through multi-threaded BLAS on both sides; on a machine whose cores are busy
with other work, those small threaded products stall on descheduled threads and dominate (and blur) the
timings of both sides. ``OPENBLAS_NUM_THREADS=1 python benchmarks/bench_sgd.py`` measures the
single-threaded case; the first line printed says which one ran.
"""

from __future__ import annotations

import argparse
import os
import time
from concurrent.futures import ThreadPoolExecutor

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


def numpy_online_contrastive(n: int, q0: np.ndarray, t_final: float, tau: float, lam: float, sigma: float,
                             seed: int):
    """The baseline: a plain numpy loop of online contrastive SGD (tanh, Rademacher c, L2) from overlaps
    ``q0`` and unit norm; returns the final cosines with the features."""
    rng = np.random.default_rng(seed)
    d = q0.size
    U, _ = np.linalg.qr(rng.normal(size=(n, d)))
    r = rng.normal(size=n)
    r -= U @ (U.T @ r)
    w = U @ q0 + r * np.sqrt(1.0 - q0 @ q0) / np.linalg.norm(r)
    step = tau / n
    for _ in range(int(round(t_final * n))):
        base = U @ rng.choice((-1.0, 1.0), size=d)
        x1 = base + sigma * rng.normal(size=n)
        x2 = base + sigma * rng.normal(size=n)
        z1, z2 = w @ x1, w @ x2
        f1, f2 = np.tanh(z1), np.tanh(z2)
        grad = -(1 - f1**2) * f2 * x1 - f1 * (1 - f2**2) * x2 + lam * w
        w -= step * grad
    return (U.T @ w) / np.linalg.norm(w)


#: floating-point operations per coordinate of one online step of the benchmarked model (one neuron, d = 2,
#: L2): the clean input U c (3), the two views (4), the two pre-activations (4), the gradient (5), the step (2)
ONLINE_FLOPS_PER_COORDINATE = 18


def matmul_peak(size: int = 1500, repeats: int = 3) -> float:
    """The machine's float64 matrix-multiply rate per core, in flop per CPU second of this process (BLAS
    threads included), so that other work on a shared machine does not lower it: the physical limit the
    online SGD is measured against."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((size, size)), rng.standard_normal((size, size))
    a @ b
    best = float("inf")
    for _ in range(repeats):
        c0 = time.process_time()
        a @ b
        best = min(best, time.process_time() - c0)
    return 2.0 * size**3 / best


def online_arithmetic(n: int, steps: int = 50, repeats: int = 20) -> tuple[float, float]:
    """CPU seconds per step of theorykit's online step kernel alone on pre-drawn samples, and of drawing
    those samples (the two noise rows and c) with numpy's Generator."""
    from theorykit.theories.contrastive_highdim import _kernels as K

    rng = np.random.default_rng(0)
    U = np.ascontiguousarray(np.linalg.qr(rng.standard_normal((n, 2)))[0].T)
    W = rng.standard_normal((1, n)) / np.sqrt(n)
    C, Z = np.empty((steps, 1, 2)), np.empty((steps, 2, n))
    rows, coeffs = np.array([1, -1, -1, -1]), np.array([0.0, 0.5, 0.0, 0.0, 0.5, 0.5])
    kernel = draws = float("inf")
    for _ in range(repeats):
        c0 = time.thread_time()
        rng.standard_normal(out=Z)
        rng.random(out=C)
        draws = min(draws, time.thread_time() - c0)
        c0 = time.thread_time()
        K.sgd_steps(W, U, C, Z, rows, coeffs, 0, 0)
        kernel = min(kernel, time.thread_time() - c0)
    return kernel / steps, draws / steps


def online_table(quick: bool) -> None:
    from theorykit.theories.contrastive_highdim import Hyper, HiddenLaw, simulate_sgd as online_sgd

    hyper = Hyper(tau=0.5, lam=0.5, sigma=0.5)
    law = HiddenLaw.rademacher()
    q0, t_final = np.array([0.1, 0.05]), 5.0
    online_sgd(50, 0.1, hyper, law, [0.05, 0.02], 1.0, seed=0)  # JIT
    peak = matmul_peak()
    print(f"\nfloat64 matmul peak: {peak / 1e9:.1f} GFLOP/s per core; load average {os.getloadavg()[0]:.1f}\n")
    print("| n | steps | numpy loop (µs/step) | theorykit numba (µs/step) | speed-up | theorykit CPU (µs/step) "
          "| of which drawing samples | step: % of peak | arithmetic alone: % of peak | final max cosine: numpy "
          "| final max cosine: theorykit |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    sizes = (500, 2000) if quick else (1000, 4000, 10_000)
    for n in sizes:
        steps = int(round(t_final * n))
        t0 = time.perf_counter()
        m_np = numpy_online_contrastive(n, q0, t_final, hyper.tau, hyper.lam, hyper.sigma, seed=1)
        t_np = time.perf_counter() - t0
        t0, c0 = time.perf_counter(), time.process_time()
        run = online_sgd(n, t_final, hyper, law, q0, 1.0, seed=1)
        t_nb, c_nb = time.perf_counter() - t0, time.process_time() - c0
        m_nb = np.array([run.observable(name)[-1] for name in ("m_1", "m_2")])
        kernel, draws = online_arithmetic(n)
        flops = ONLINE_FLOPS_PER_COORDINATE * n
        print(f"| {n} | {steps} | {t_np / steps * 1e6:.1f} | {t_nb / steps * 1e6:.1f} | {t_np / t_nb:.1f}x "
              f"| {c_nb / steps * 1e6:.1f} | {draws * steps / c_nb:.0%} | {flops * steps / c_nb / peak:.1%} "
              f"| {flops / kernel / peak:.0%} | {np.max(np.abs(m_np)):.3f} | {np.max(np.abs(m_nb)):.3f} |")
    replicates_row(sizes[-1], t_final, range(4))


def cores_available(seconds: float = 1.0) -> float:
    """Cores a GIL-free numba loop in two threads gets on this machine now (CPU seconds per second): the
    most any two-thread run can use while other jobs share the cores."""
    from numba import njit

    @njit(nogil=True)
    def spin(n):
        s = 0.0
        for i in range(n):
            s += np.sin(i * 1e-9)
        return s

    spin(10)
    n = int(2e7 * seconds)
    t0, c0 = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(spin, [n, n]))
    return (time.process_time() - c0) / (time.perf_counter() - t0)


def replicates_row(n: int, t_final: float, seeds) -> None:
    """Several seeds of one online configuration: one after the other, then in two threads."""
    from theorykit.theories.contrastive_highdim import HiddenLaw, Hyper, simulate_sgd as online_sgd
    from theorykit.theories.contrastive_highdim import simulate_sgd_replicates

    hyper, law, q0 = Hyper(tau=0.5, lam=0.5, sigma=0.5), HiddenLaw.rademacher(), np.array([0.1, 0.05])
    ceiling = cores_available()
    t0, c0 = time.perf_counter(), time.process_time()
    for seed in seeds:
        online_sgd(n, t_final, hyper, law, q0, 1.0, seed=seed)
    t_one, c_one = time.perf_counter() - t0, time.process_time() - c0
    t0, c0 = time.perf_counter(), time.process_time()
    simulate_sgd_replicates(n, t_final, hyper, law, q0, 1.0, seeds, threads=2)
    t_two, c_two = time.perf_counter() - t0, time.process_time() - c0
    print(f"\n{len(seeds)} seeds at n = {n} (load average {os.getloadavg()[0]:.1f}; a GIL-free loop in two threads "
          f"gets {ceiling:.2f} cores now): one after the other {t_one:.1f} s ({c_one / t_one:.2f} cores busy), "
          f"simulate_sgd_replicates on 2 threads {t_two:.1f} s ({c_two / t_two:.2f} cores busy), "
          f"{t_one / t_two:.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer steps and seeds")
    ap.add_argument("--online", action="store_true", help="only the online contrastive table")
    ap.add_argument("--replicates", action="store_true", help="only the online replicates row")
    args = ap.parse_args()
    if args.online:
        return online_table(args.quick)
    if args.replicates:
        return replicates_row(2000 if args.quick else 10_000, 5.0, range(4))
    seeds = range(3 if args.quick else 5)
    settings = [(32, 16, 2000), (128, 64, 1000)] if args.quick else [(32, 16, 10_000), (128, 64, 4000), (256, 128, 1000)]
    eta, sigma2, p0 = 0.05, 0.5, 1.0
    simulate_sgd("euclidean", dim=8, batch=4, lr=0.01, t_end=0.1, p0=[p0], eta=eta, sigma2=sigma2, seed=0)  # JIT
    print(f"BLAS threads: OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}\n")
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
            p_nb.append(run.observable("p1")[-1])
        n = len(seeds) * steps
        spread = float(np.std(p_np + p_nb))
        print(f"| {dim} | {batch} | {steps} | {t_np / n * 1e6:.1f} | {t_nb / n * 1e6:.1f} | {t_np / t_nb:.1f}x "
              f"| {np.mean(p_np):.4f} | {np.mean(p_nb):.4f} | {spread:.4f} |")
    online_table(args.quick)


if __name__ == "__main__":
    main()
