"""Particle-simulation speed: theorykit's numba SGD kernels versus the plain numpy loops a user would write,
same model, same sizes, same run: minibatch SGD of the linear non-contrastive networks and of the linear
encoder with a closed-form predictor, and online (one fresh sample per step) SGD of the high-dimensional
nonlinear contrastive model.

Run: python benchmarks/bench_sgd.py [--quick] [--minibatch | --online | --replicates]
Prints Markdown tables: time per SGD step, speed-up, the flop rate as a fraction of the machine's matrix-multiply
peak measured in the same run, and the agreement of the final eigen-observables (mean over seeds, with the spread
between seeds as the scale of the Monte-Carlo error). Both sides draw their Gaussian samples from numpy's Generator
streams: the numpy loops and the online simulator with numpy's own ``standard_normal``, the minibatch simulators with
numba's compiled copy of it (``theorykit.simulate.standard_normal_compiled``: the same numbers, about twice as fast
per number), so the speed-up is what the numba kernels save in the draws and around them.

The minibatch tables run both sides with one BLAS thread (theorykit's particle driver does so itself; the numpy
loop inside ``theorykit.simulate.single_threaded_blas``): their products are small, and with OpenBLAS's default
threads on a machine whose cores are busy with other work they stall on descheduled threads (the first line printed
gives the load). Several seeds use the cores as replicates in parallel threads instead (the replicates rows).
"""

from __future__ import annotations

import argparse
import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from theorykit.simulate import single_threaded_blas, standard_normal_compiled
from theorykit.theories import closed_form_predictor as cfp
from theorykit.theories.noncontrastive import simulate_sgd, simulate_sgd_replicates


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


def numpy_closed_form(dim: int, batch: int, lr: float, n_steps: int, s0, alpha: float, sigma2_t: float, seed: int):
    """The baseline: a plain numpy loop of Euclidean SGD of the linear encoder with the closed-form predictor
    ``P = (W W^T)^alpha`` (by ``eigh``; ``P = W W^T`` itself for ``alpha = 1``, as theorykit does), SimSiam target,
    augmented target view; draws the clean sample and both views' noise each step, as the simulator does. Returns
    the final mean ``s`` of the first group of modes (``|W^T u_j|^2`` over the start's eigenbasis)."""
    rng = np.random.default_rng(seed)
    U, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    V, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    group = np.repeat(np.arange(len(s0)), dim // len(s0))
    W = (U * np.sqrt(np.asarray(s0)[group])) @ V.T
    sigma_t = np.sqrt(sigma2_t)
    for _ in range(n_steps):
        x = rng.normal(size=(batch, dim))
        rng.normal(size=(batch, dim))  # the online view's noise: drawn, as the simulator does, with sigma_o = 0
        x1, x2 = x, x + sigma_t * rng.normal(size=(batch, dim))
        F = W @ W.T
        if alpha == 1.0:
            P = F
        else:
            d, Q = np.linalg.eigh(F)
            P = (Q * np.abs(d) ** alpha) @ Q.T
        z1, z2 = x1 @ W.T, x2 @ W.T  # the target is W behind a stop-gradient
        g = (z1 @ P - z2) @ P
        W = W - lr * (g.T @ x1 / batch)
    s = np.sum((U.T @ W) ** 2, axis=1)
    return float(np.mean(s[group == 0]))


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
    those samples as theorykit does (the two noise rows with the compiled ziggurat, c with the Generator)."""
    from theorykit.simulate import standard_normal_compiled
    from theorykit.theories.contrastive_highdim import _kernels as K

    rng = np.random.default_rng(0)
    U = np.ascontiguousarray(np.linalg.qr(rng.standard_normal((n, 2)))[0].T)
    W = rng.standard_normal((1, n)) / np.sqrt(n)
    C, Z = np.empty((steps, 1, 2)), np.empty((steps, 2, n))
    rows, coeffs = np.array([1, -1, -1, -1]), np.array([0.0, 0.5, 0.0, 0.0, 0.5, 0.5])
    kernel = draws = float("inf")
    for _ in range(repeats):
        c0 = time.thread_time()
        standard_normal_compiled(rng, Z)
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


def draw_seconds(shape: tuple[int, ...], steps: int) -> float:
    """CPU seconds of drawing ``steps`` steps of standard normals of ``shape`` as the minibatch simulators do
    (numpy's Generator stream, drawn by numba's compiled ``standard_normal``), in chunks of at most 2**20 numbers."""
    rng = np.random.default_rng(0)
    per = int(np.prod(shape))
    chunk = max(1, min(steps, 2**20 // per))
    out = np.empty((chunk, *shape))
    standard_normal_compiled(rng, out[:1])  # compiled (or loaded from numba's cache) outside the timing
    c0, done = time.thread_time(), 0
    while done < steps:
        m = min(chunk, steps - done)
        standard_normal_compiled(rng, out[:m])
        done += m
    return time.thread_time() - c0


def timed(fn, *args, **kwargs):
    """``(result, wall seconds, CPU seconds of the process)`` of one call."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0, time.process_time() - c0


def row(cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


MINIBATCH_HEADER = ("| size | steps | numpy loop (µs/step) | theorykit (µs/step) | speed-up | numpy CPU (µs/step) "
                    "| theorykit CPU (µs/step) | speed-up in CPU | theorykit: drawing samples | theorykit: % of peak "
                    "| final {obs}: numpy | final {obs}: theorykit | seed spread of {obs} |")


def minibatch_row(label, steps, seeds, numpy_fn, theorykit_fn, flops, draw_shape, peak) -> str:
    """One row: both sides once per seed, alternating (the numpy loop with one BLAS thread); per-step times are
    each side's best run (other jobs on a shared machine only ever add time), the flop rate is that of
    theorykit's best CPU time against ``peak``, and the samples' share is the best time of drawing one run's
    samples over it."""
    runs_np, runs_nb, v_np, v_nb = [], [], [], []
    for seed in seeds:
        with single_threaded_blas():
            v, t, c = timed(numpy_fn, seed)
        v_np.append(v)
        runs_np.append((t, c))
        v, t, c = timed(theorykit_fn, seed)
        v_nb.append(v)
        runs_nb.append((t, c))
    (t_np, c_np), (t_nb, c_nb) = (np.min(r, axis=0) / steps for r in (runs_np, runs_nb))
    draws = min(draw_seconds(draw_shape, steps) for _ in range(3)) / steps
    return row([label, steps, f"{t_np * 1e6:.1f}", f"{t_nb * 1e6:.1f}", f"{t_np / t_nb:.1f}x", f"{c_np * 1e6:.1f}",
                f"{c_nb * 1e6:.1f}", f"{c_np / c_nb:.1f}x", f"{draws / c_nb:.0%}", f"{flops / c_nb / peak:.0%}",
                f"{np.mean(v_np):.4f}", f"{np.mean(v_nb):.4f}", f"{np.std(v_np + v_nb):.4f}"])


def minibatch_replicates_row(label: str, one, replicates, seeds) -> None:
    """Several seeds of one minibatch configuration: one after the other, then as replicates in two threads."""
    ceiling = cores_available()
    _, t_one, c_one = timed(lambda: [one(seed) for seed in seeds])
    _, t_two, c_two = timed(replicates, list(seeds))
    print(f"\n{label}, {len(seeds)} seeds (load average {os.getloadavg()[0]:.1f}; a GIL-free loop in two threads "
          f"gets {ceiling:.2f} cores now): one after the other {t_one:.2f} s ({c_one / t_one:.2f} cores busy), as "
          f"replicates in 2 threads {t_two:.2f} s ({c_two / t_two:.2f} cores busy), {t_one / t_two:.2f}x")


def noncontrastive_table(quick: bool, peak: float) -> None:
    """Euclidean SimSiam SGD of the linear non-contrastive networks (augmented views, weight decay)."""
    seeds = range(3 if quick else 5)
    settings = [(32, 16, 2000), (128, 64, 500)] if quick else [(32, 16, 10_000), (128, 64, 4000), (256, 128, 1000)]
    eta, sigma2, p0 = 0.05, 0.5, 1.0
    simulate_sgd("euclidean", dim=8, batch=4, lr=0.01, t_end=0.1, p0=[p0], eta=eta, sigma2=sigma2, seed=0)  # JIT
    print(f"\nNon-contrastive minibatch SGD, {len(seeds)} seeds per row, best run of each side (load average "
          f"{os.getloadavg()[0]:.1f}):\n")
    print(MINIBATCH_HEADER.format(obs="p"))
    print("|" + "---|" * 13)
    for dim, batch, steps in settings:
        lr = 0.64 / dim
        kw = dict(dim=dim, batch=batch, lr=lr, t_end=steps * lr, p0=[p0], eta=eta, sigma2=sigma2, n_record=2)
        print(minibatch_row(f"d = {dim}, batch {batch}", steps, seeds,
                            lambda seed: numpy_sgd(dim, batch, lr, steps, p0, eta, sigma2, seed)[0],
                            lambda seed: simulate_sgd("euclidean", seed=seed, **kw).observable("p1")[-1],
                            12 * batch * dim * dim, (3, batch, dim), peak))
    dim, batch, steps = (64, 32, 2000) if quick else (128, 64, 2000)
    lr = 0.64 / dim
    kw = dict(dim=dim, batch=batch, lr=lr, t_end=steps * lr, p0=[p0], eta=eta, sigma2=sigma2, n_record=2)
    minibatch_replicates_row(f"non-contrastive d = {dim}, batch {batch}, {steps} steps",
                             lambda seed: simulate_sgd("euclidean", seed=seed, **kw),
                             lambda seeds: simulate_sgd_replicates("euclidean", seeds, threads=2, **kw), range(4))


def closed_form_flops(dim: int, batch: int, alpha: float) -> int:
    """Floating-point operations of the products of one theorykit closed-form-predictor step (square W, M = N =
    dim), in the kernel's association: the two forward products, p, the gradient through P, the gradient's
    product with X1 and W W^T, i.e. p = (X1 W^T) P and (G P)^T X1 for batch <= dim, p = X1 (P W)^T and P (G^T X1)
    for a wider batch; for alpha != 1 also the predictor U diag U^T (the eigen-decomposition, or the polar
    factor's iterations at alpha = 1/2, is not counted). The numpy loop does 10 batch dim^2 + dim^3 (+ 2 dim^3):
    numpy's W @ W.T is a symmetric rank-k update."""
    products = 6 * batch * dim * dim + 6 * dim**3 if batch > dim else 10 * batch * dim * dim + 2 * dim**3
    return products + (2 * dim**3 if alpha != 1.0 else 0)


def closed_form_table(quick: bool, peak: float) -> None:
    """Euclidean SGD of the linear encoder with the closed-form predictor (SimSiam target, augmented target view)."""
    seeds = range(3 if quick else 5)
    settings = ([(16, 8, 1000), (32, 32, 500), (64, 128, 100)] if quick else
                [(16, 8, 4000), (32, 32, 2000), (64, 128, 500), (256, 512, 100)])
    s0, sigma2_t, lr = [0.6, 0.2], 0.5, 0.01
    cfp.simulate("euclidean", dim=4, batch=2, lr=lr, t_end=0.02, s0=s0, sigma2_t=sigma2_t, seed=0)  # JIT
    print(f"\nClosed-form predictor minibatch SGD, {len(seeds)} seeds per row, best run of each side (load average "
          f"{os.getloadavg()[0]:.1f}):\n")
    print(MINIBATCH_HEADER.format(obs="s1").replace("| size |", "| size | alpha |"))
    print("|" + "---|" * 14)
    for dim, batch, steps in settings:
        for alpha in (1.0, 0.5):
            kw = dict(dim=dim, batch=batch, lr=lr, t_end=steps * lr, s0=s0, alpha=alpha, sigma2_t=sigma2_t, n_record=2)
            line = minibatch_row(f"M = N = {dim}, batch {batch}", steps, seeds,
                                 lambda seed: numpy_closed_form(dim, batch, lr, steps, s0, alpha, sigma2_t, seed),
                                 lambda seed: cfp.simulate("euclidean", seed=seed, **kw).observable("s1")[-1],
                                 closed_form_flops(dim, batch, alpha), (3, batch, dim), peak)
            print(line.replace(" |", f" | {alpha:g} |", 1))
    dim, batch, steps = 64, 128, 1000 if quick else 2000
    kw = dict(dim=dim, batch=batch, lr=lr, t_end=steps * lr, s0=s0, sigma2_t=sigma2_t, n_record=2)
    minibatch_replicates_row(f"closed-form predictor M = N = {dim}, batch {batch}, alpha 1, {steps} steps",
                             lambda seed: cfp.simulate("euclidean", seed=seed, **kw),
                             lambda seeds: cfp.simulate_replicates("euclidean", seeds=seeds, threads=2, **kw), range(4))


def minibatch_tables(quick: bool) -> None:
    with single_threaded_blas():
        peak = matmul_peak()
    print(f"Minibatch tables: one BLAS thread on both sides; {os.cpu_count()} CPUs; float64 matmul peak of one "
          f"thread {peak / 1e9:.1f} GFLOP/s per CPU second; load average {os.getloadavg()[0]:.1f}")
    noncontrastive_table(quick, peak)
    closed_form_table(quick, peak)
    print(f"\nload average at the end of the minibatch tables {os.getloadavg()[0]:.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer steps and seeds")
    ap.add_argument("--minibatch", action="store_true", help="only the two minibatch tables")
    ap.add_argument("--online", action="store_true", help="only the online contrastive table")
    ap.add_argument("--replicates", action="store_true", help="only the online replicates row")
    args = ap.parse_args()
    if args.online:
        return online_table(args.quick)
    if args.replicates:
        return replicates_row(2000 if args.quick else 10_000, 5.0, range(4))
    minibatch_tables(args.quick)
    if not args.minibatch:
        online_table(args.quick)


if __name__ == "__main__":
    main()
