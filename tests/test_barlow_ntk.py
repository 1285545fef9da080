"""Tests of the Barlow Twins NTK theory: every numeric piece against an independent computation."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

from theorykit.errors import InvalidParameterError
from theorykit.simulate import ParticleRun
from theorykit.theories import barlow_ntk as bn
from theorykit.theories.barlow_ntk import _analysis, _claims, _kernels, _studies, _symbolic
from theorykit.validate import Study, compare

ROOT = Path(__file__).resolve().parents[1]
ACTS = ("tanh", "relu")


def _pairs(n=5, d=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    return X, X + 0.3 * rng.standard_normal((n, d))


def _flat(W, V):
    return np.concatenate([W.ravel(), V.ravel()])


def _unflat(theta, W, V):
    return theta[:W.size].reshape(W.shape), theta[W.size:].reshape(V.shape)


def _loss_of_C(C, lam):
    """Barlow Twins loss of a cross-correlation, written out with numpy only."""
    weights = np.where(np.eye(C.shape[0]) > 0, 1.0, lam)
    return float(np.sum(weights * (C - np.eye(C.shape[0])) ** 2))


def _loss_direct(X, Xp, W, V, lam, act):
    """Loss written out with numpy only (no theorykit kernels)."""
    s = np.tanh if act == "tanh" else (lambda h: np.maximum(h, 0.0))
    FA = s(X @ W.T) @ V.T / np.sqrt(W.shape[0])
    FB = s(Xp @ W.T) @ V.T / np.sqrt(W.shape[0])
    return _loss_of_C(FA.T @ FB / X.shape[0], lam)


# ------------------------------------------------------------------------------------------ derivatives
@pytest.mark.parametrize("act", ACTS)
def test_empirical_ntk_equals_finite_difference_jacobian_product(act):
    rng = np.random.default_rng(1)
    Z = rng.standard_normal((4, 3))
    W, V = bn.init_params(3, 7, 2, seed=2)
    theta = _flat(W, V)
    h = 1e-6
    J = np.empty((Z.shape[0] * 2, theta.size))
    for p in range(theta.size):
        e = np.zeros_like(theta)
        e[p] = h
        Fp = bn.network_outputs(Z, *_unflat(theta + e, W, V), act)
        Fm = bn.network_outputs(Z, *_unflat(theta - e, W, V), act)
        J[:, p] = ((Fp - Fm) / (2 * h)).ravel()  # row i*K + k, as the NTK
    ntk = bn.empirical_ntk(Z, W, V, act)
    np.testing.assert_allclose(ntk, J @ J.T, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("act", ACTS)
def test_loss_gradient_matches_finite_differences(act):
    X, Xp = _pairs(6, 3, seed=3)
    W, V = bn.init_params(3, 5, 3, seed=4)
    lam = 0.4
    L, gW, gV = bn.loss_and_gradient(X, Xp, W, V, lam=lam, activation=act)
    assert L == pytest.approx(_loss_direct(X, Xp, W, V, lam, act), rel=1e-12)
    theta = _flat(W, V)
    g = _flat(gW, gV)
    h = 1e-6
    fd = np.empty_like(theta)
    for p in range(theta.size):
        e = np.zeros_like(theta)
        e[p] = h
        fd[p] = (_loss_direct(X, Xp, *_unflat(theta + e, W, V), lam, act)
                 - _loss_direct(X, Xp, *_unflat(theta - e, W, V), lam, act)) / (2 * h)
    np.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-7)


def test_symbolic_gradient_flow_equals_numba_gradient():
    assert _studies.symbolic_gradient_check(0, "tanh") < 1e-10
    assert _studies.symbolic_gradient_check(1, "relu") < 1e-10


def test_loss_gradient_entries_match_full_symbolic_loss():
    K = 3
    C = _symbolic.cross_correlation_symbols(K)
    L = _symbolic.barlow_loss_of_C(C)
    rng = np.random.default_rng(5)
    Cn = rng.standard_normal((K, K))
    lam = 0.3
    subs = {C[k, l]: Cn[k, l] for k in range(K) for l in range(K)} | {_symbolic.lam: lam}
    G = np.empty((K, K))
    _kernels.dloss_dC(Cn, lam, G)
    for k in range(K):
        for l in range(K):
            assert G[k, l] == pytest.approx(float(sp.diff(L, C[k, l]).subs(subs)), rel=1e-12)
    assert bn.barlow_loss(Cn, lam) == pytest.approx(float(L.subs(subs)), rel=1e-12)


def test_kernel_flow_rhs_matches_symbolic_function_space_flow():
    N, K, extra = 2, 2, 1
    sysk = _symbolic.kernel_flow_system(N, K, extra)
    n = 2 * N + extra
    rng = np.random.default_rng(6)
    A = rng.standard_normal((n * K, n * K))
    Theta = A @ A.T
    F = rng.standard_normal((n, K))
    lam = 0.6
    subs = {_symbolic.lam: lam}
    flat = [(i, k) for i in range(n) for k in range(K)]
    for a, (i, k) in enumerate(flat):
        for b, (j, l) in enumerate(flat):
            lo, hi = min(a, b), max(a, b)
            subs[sp.Symbol(f"Theta_{flat[lo][0]}{flat[lo][1]}_{flat[hi][0]}{flat[hi][1]}", real=True)] = Theta[a, b]
    subs |= {s: F[i, k] for s, (i, k) in zip(sysk.states, flat)}
    sym = np.array([float(r.subs(subs)) for r in sysk.rhs])
    out = np.empty(n * K)
    _kernels.kernel_flow_rhs(F.ravel(), Theta, N, K, lam, out)
    np.testing.assert_allclose(out, sym, rtol=1e-10, atol=1e-12)
    # rows of the evaluation input do not enter the loss, but move through the kernel
    assert np.any(out[2 * N * K:] != 0)


def test_generated_source_is_up_to_date():
    path = ROOT / "theorykit" / "theories" / "barlow_ntk" / "_generated.py"
    assert path == _analysis.GENERATED and path.read_text() == _analysis.generated_source()


def test_generated_functions_evaluate_their_symbolic_expressions():
    from theorykit.theories.barlow_ntk import _generated

    for name, args, expr, _ in _symbolic.kernel_functions():
        values = {a: v for a, v in zip(args, (0.7, -0.4, 1.3, 0.2, -1.1, 0.9, 0.5, 1.0))}
        assert getattr(_generated, name)(*values.values()) == pytest.approx(float(expr.subs(values)), rel=1e-14)


def test_infinite_width_ntk_symbolic_form():
    e = _symbolic.ntk_infinite_width_expr()
    by = {s.name: s for s in e.free_symbols}
    assert set(by) == {"Sigma", "Sigmadot", "xx", "delta"}
    vals = {by["Sigma"]: 0.7, by["Sigmadot"]: 0.3, by["xx"]: 1.9}
    assert float(e.subs(vals | {by["delta"]: 1})) == pytest.approx(0.7 + 1.9 * 0.3)
    assert float(e.subs(vals | {by["delta"]: 0})) == 0.0


# ------------------------------------------------------------------------------------------ kernels
def test_relu_gauss_hermite_matches_arc_cosine():
    rng = np.random.default_rng(7)
    Z = rng.standard_normal((5, 4))
    closed = bn.infinite_width_ntk(Z, activation="relu", method="closed")
    quad = bn.infinite_width_ntk(Z, activation="relu", method="quadrature", quadrature=300)
    # the ReLU kink slows Gauss–Hermite down; 300 nodes give ~1e-3 relative accuracy
    np.testing.assert_allclose(quad, closed, rtol=5e-3, atol=5e-3)
    np.testing.assert_allclose(np.diag(closed), bn.infinite_width_ntk_diag(Z, "relu"), rtol=1e-7)  # acos near 1


def test_tanh_kernel_matches_monte_carlo():
    rng = np.random.default_rng(8)
    Z = rng.standard_normal((3, 4))
    Z = 2.0 * Z / np.linalg.norm(Z, axis=1, keepdims=True)
    quad = bn.infinite_width_ntk(Z, activation="tanh")
    w = rng.standard_normal((400_000, 4))
    T = np.tanh(w @ Z.T)
    D = 1 - T ** 2
    for i in range(3):
        for j in range(3):
            samples = T[:, i] * T[:, j] + (Z[i] @ Z[j]) * D[:, i] * D[:, j]
            se = samples.std() / np.sqrt(samples.size)
            assert abs(quad[i, j] - samples.mean()) < 5 * se
    np.testing.assert_allclose(np.diag(quad), bn.infinite_width_ntk_diag(Z, "tanh"), rtol=1e-13)


def _tanh_ntk_reference(z1, z2):
    """Theta_inf(z1, z2) for tanh by scipy's adaptive quadrature over (u, u') in the plane, independent of the
    library's rules: the Gaussian of (x.w, x'.w) written with its Cholesky factor."""
    from scipy.integrate import dblquad

    a, c = np.linalg.norm(z1), z1 @ z2
    r = c / a
    s = np.sqrt(max(z2 @ z2 - r * r, 0.0))
    phi = lambda z: np.exp(-0.5 * z * z) / np.sqrt(2 * np.pi)  # noqa: E731
    sig = dblquad(lambda y, x: phi(x) * phi(y) * np.tanh(a * x) * np.tanh(r * x + s * y), -9, 9, -9, 9,
                  epsabs=1e-13, epsrel=1e-12)[0]
    dsig = dblquad(lambda y, x: phi(x) * phi(y) / np.cosh(a * x) ** 2 / np.cosh(r * x + s * y) ** 2, -9, 9, -9, 9,
                   epsabs=1e-13, epsrel=1e-12)[0]
    return sig + c * dsig


def test_tanh_kernel_is_accurate_at_large_input_norms():
    """The default rule (trapezoid, step set by the norms) against mpmath on the diagonal and scipy's adaptive
    quadrature off it, at norms where 64-node Gauss-Hermite is 0.2% (norm 2) to 17% (norm 4) low."""
    import mpmath as mp

    for norm in (0.5, 2.0, 4.0):
        want = float(mp.quad(lambda x: mp.npdf(x) * (mp.tanh(norm * x) ** 2 + norm ** 2 * mp.sech(norm * x) ** 4),
                             [-mp.inf, -2, -1, -0.3, 0, 0.3, 1, 2, mp.inf]))
        z = np.array([[norm, 0.0, 0.0]])
        assert bn.infinite_width_ntk_diag(z, "tanh")[0] == pytest.approx(want, rel=1e-10)
        assert bn.infinite_width_ntk(z, activation="tanh")[0, 0] == pytest.approx(want, rel=1e-10)
    Z = np.array([[2.0, 0.0, 0.0], [4.0 * np.cos(1.0), 4.0 * np.sin(1.0), 0.0]])
    got = bn.infinite_width_ntk(Z, activation="tanh")
    assert got[0, 1] == pytest.approx(_tanh_ntk_reference(Z[0], Z[1]), rel=1e-9)
    assert got[1, 0] == got[0, 1]
    gauss_hermite = bn.infinite_width_ntk(Z, activation="tanh", method="quadrature")
    assert abs(gauss_hermite[1, 1] / got[1, 1] - 1) > 0.1  # why it is not the default
    with pytest.raises(InvalidParameterError, match="smooth activation"):
        bn.infinite_width_ntk(Z, activation="relu", method="trapezoid")


def test_arc_cosine_kernel_matches_empirical_ntk_within_monte_carlo_error():
    rng = np.random.default_rng(9)
    d, M, K = 5, 2 ** 14, 2
    Z = rng.standard_normal((4, d))
    W, V = bn.init_params(d, M, K, seed=10)
    emp = bn.empirical_ntk(Z, W, V, "relu").reshape(4, K, 4, K)
    inf = bn.infinite_width_ntk(Z, activation="relu")
    # per-neuron terms, written out independently, give the Monte-Carlo standard error of each entry
    H = Z @ W.T
    A, D = np.maximum(H, 0), (H > 0).astype(float)
    G = Z @ Z.T
    for k in range(K):
        for l in range(K):
            for i in range(4):
                for j in range(4):
                    terms = (k == l) * A[i] * A[j] + G[i, j] * V[k] * V[l] * D[i] * D[j]
                    se = terms.std() / np.sqrt(M)
                    target = inf[i, j] if k == l else 0.0
                    assert abs(emp[i, k, j, l] - target) < 5 * se + 1e-12, (i, k, j, l)


# ------------------------------------------------------------------------------------------ dynamics
def _short_run(M, seed, act="tanh", N=12, d=8, n_steps=120, lr=0.05):
    data = bn.gaussian_pairs(N, d, radius=2.0, n_clusters=8, spread=1.0, seed=100 + seed)
    W, V = bn.init_params(d, M, 2, seed=200 + seed)
    run = bn.simulate_network(data.X, data.Xp, W, V, activation=act, lr=lr, n_steps=n_steps, record_every=10,
                              ntk_every=n_steps)
    return run.observable("ntk_change")[-1], run.observable("weight_dist")[-1], run, (W, V, data)


def _numpy_step(X, Xp, W, V, lam, lr, act="tanh"):
    """One gradient-descent step on the pairs (X, Xp), written with numpy only, as an independent reference."""
    N, M = X.shape[0], W.shape[0]
    if act == "tanh":
        s, ds = np.tanh, lambda a: 1 - a ** 2
    else:
        s, ds = (lambda h: np.maximum(h, 0.0)), (lambda a: 1.0 * (a > 0))
    HA, HB = s(X @ W.T), s(Xp @ W.T)
    FA, FB = HA @ V.T / np.sqrt(M), HB @ V.T / np.sqrt(M)
    G = 2 * np.where(np.eye(V.shape[0]) > 0, FA.T @ FB / N - 1, lam * FA.T @ FB / N)  # dL/dC
    gFA, gFB = FB @ G.T / N, FA @ G / N
    gV = (gFA.T @ HA + gFB.T @ HB) / np.sqrt(M)
    gW = (((gFA @ V) * ds(HA)).T @ X + ((gFB @ V) * ds(HB)).T @ Xp) / np.sqrt(M)
    return W - lr * gW, V - lr * gV


def _numpy_gd(X, Xp, W, V, lam, lr, n_steps, act="tanh"):
    """Full-batch gradient descent with :func:`_numpy_step`."""
    for _ in range(n_steps):
        W, V = _numpy_step(X, Xp, W, V, lam, lr, act)
    return W, V


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("M", [40, 1000])  # one block of neurons, and three (the last one partial)
@pytest.mark.parametrize("K", [2, 3])  # the fused one-sweep passes of K = 2, and the general ones
def test_step_kernels_match_the_numpy_reference_step(act, M, K):
    data = bn.gaussian_pairs(10, 5, radius=2.0, seed=3)
    W, V = bn.init_params(5, M, K, seed=4)
    Z = np.vstack([data.X, data.Xp])
    work = (np.empty((M, 20)), np.empty((20, K)), np.empty((20, K)), np.empty_like(W), np.empty_like(V))
    code = _symbolic.ACTIVATIONS[act]
    Wk, Vk = W.copy(), V.copy()
    _kernels.gd_steps(Z, Wk, Vk, 10, 0.7, code, 0.05, 3, *work)
    Wn, Vn = _numpy_gd(data.X, data.Xp, W, V, 0.7, 0.05, 3, act)
    np.testing.assert_allclose(Wk - W, Wn - W, rtol=1e-12, atol=1e-12 * np.abs(Wn - W).max())
    np.testing.assert_allclose(Vk - V, Vn - V, rtol=1e-12, atol=1e-12 * np.abs(Vn - V).max())
    # the steps leave the forward pass of the final weights in the work arrays, as forward() computes it
    AT, F = np.empty((M, 20)), np.empty((20, K))
    _kernels.forward(Z, Wk, Vk, code, AT, F)
    assert np.array_equal(work[0], AT) and np.array_equal(work[1], F)
    # one sweep per step (backward, update and next forward block by block) equals backprop, then the update
    Wb, Vb, gW, gV = W.copy(), V.copy(), np.empty_like(W), np.empty_like(V)
    for _ in range(3):
        _kernels.loss_and_grad(Z, Wb, Vb, 10, 0.7, code, gW, gV)
        _kernels._descend(Wb, Vb, gW, gV, 0.05)
    assert np.array_equal(Wb, Wk) and np.array_equal(Vb, Vk)
    # a forward pass already in the work arrays (a record's) stands for the first step's: the same steps
    Wf, Vf = W.copy(), V.copy()
    _kernels.forward(Z, Wf, Vf, code, work[0], work[1])
    _kernels.gd_steps(Z, Wf, Vf, 10, 0.7, code, 0.05, 3, *work, True)
    assert np.array_equal(Wf, Wk) and np.array_equal(Vf, Vk)
    # SGD: each step follows the minibatch of the pairs it is given
    batches = np.array([[3.0, 7.0, 1.0], [0.0, 9.0, 4.0]])
    Wk, Vk = W.copy(), V.copy()
    small = (np.empty((M, 6)), np.empty((6, K)), np.empty((6, K)), np.empty_like(W), np.empty_like(V))
    _kernels.sgd_steps(Z, Wk, Vk, 10, 0.7, code, 0.05, batches, np.empty((6, 5)), *small)
    Wn, Vn = W, V
    for b in batches.astype(int):
        Wn, Vn = _numpy_step(data.X[b], data.Xp[b], Wn, Vn, 0.7, 0.05, act)
    np.testing.assert_allclose(Wk - W, Wn - W, rtol=1e-12, atol=1e-12 * np.abs(Wn - W).max())
    np.testing.assert_allclose(Vk - V, Vn - V, rtol=1e-12, atol=1e-12 * np.abs(Vn - V).max())


def test_vectorisable_tanh_is_within_three_ulp():
    import mpmath

    rng = np.random.default_rng(5)
    x = np.concatenate([rng.standard_normal(3000) * 3, rng.uniform(-20, 20, 2000), np.linspace(-1.5, 1.5, 4000),
                        10.0 ** rng.uniform(-310, 1.3, 1000) * rng.choice([-1.0, 1.0], 1000),
                        [0.17328679513998632, 0.3465735902799726, 0.35, 19.06, 19.07, 25.0, 1e-320, 2.0 ** -1074]])
    ours = np.array([_kernels.tanh_vectorisable(v) for v in x])
    with mpmath.workdps(40):
        exact = np.array([float(mpmath.tanh(mpmath.mpf(float(v)))) for v in x])
    ulps = np.abs(ours - exact) / np.spacing(np.abs(exact))
    assert np.max(ulps) <= 3.0 and np.mean(ulps > 1.0) < 0.02
    for v in (0.0, -0.0, np.inf, -np.inf, 1e300, -1e300):
        t = _kernels.tanh_vectorisable(v)
        assert t == np.tanh(v) and np.signbit(t) == np.signbit(v)
    assert np.isnan(_kernels.tanh_vectorisable(np.nan))
    H = x.reshape(-1, 2).copy()
    _kernels.activate(H, 0)  # the vectorised loop gives the same numbers as the scalar calls
    assert np.array_equal(H.ravel(), ours)


def test_simulate_network_records_the_numpy_reference_training():
    data = bn.gaussian_pairs(10, 5, radius=2.0, seed=1)
    W0, V0 = bn.init_params(5, 40, 3, seed=2)
    probe = np.vstack([data.X[:3], bn.gaussian_pairs(4, 5, radius=2.0, seed=9).X])
    run = bn.simulate_network(data.X, data.Xp, W0, V0, lam=0.6, activation="tanh", lr=0.05, n_steps=30,
                              record_every=10, probe=probe, ntk_every=20)
    assert isinstance(run, ParticleRun) and run.t.tolist() == pytest.approx([0.0, 0.5, 1.0, 1.5])
    Z = np.vstack([data.X, data.Xp])
    ntk0 = bn.empirical_ntk(Z, W0, V0, "tanh")
    W, V = W0, V0
    for r, steps in enumerate((0, 10, 10, 10)):
        W, V = _numpy_gd(data.X, data.Xp, W, V, 0.6, 0.05, steps)
        assert run.observable("loss")[r] == pytest.approx(_loss_direct(data.X, data.Xp, W, V, 0.6, "tanh"), rel=1e-12)
        F = np.tanh(probe @ W.T) @ V.T / np.sqrt(40)
        np.testing.assert_allclose(run.observable("F")[r], F, rtol=1e-12, atol=1e-14)
        dist = np.sqrt(np.sum((W - W0) ** 2) + np.sum((V - V0) ** 2))
        assert run.observable("weight_dist")[r] == pytest.approx(dist, rel=1e-10, abs=1e-14)
        change = np.linalg.norm(bn.empirical_ntk(Z, W, V, "tanh") - ntk0) / np.linalg.norm(ntk0)
        if r % 2:
            assert np.isnan(run.observable("ntk_change")[r])  # between the NTK records
        else:
            assert run.observable("ntk_change")[r] == pytest.approx(change, rel=1e-9, abs=1e-15)
    # C is the cross-correlation of the outputs on the two views
    FA, FB = (np.tanh(Y @ W.T) @ V.T / np.sqrt(40) for Y in (data.X, data.Xp))
    np.testing.assert_allclose(run.observable("C")[-1], FA.T @ FB / 10, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("batch_size", [None, 4])  # gradient descent, and SGD drawing minibatches by seed
def test_replicates_in_threads_equal_the_single_runs(batch_size):
    data = bn.gaussian_pairs(10, 5, radius=2.0, seed=1)
    kw = dict(activation="tanh", lr=0.05, n_steps=20, record_every=10, batch_size=batch_size)
    runs = bn.simulate_network_replicates(data.X, data.Xp, 24, [3, 4, 5], K=3, threads=2, **kw)
    for seed, run in zip([3, 4, 5], runs):
        single = bn.simulate_network(data.X, data.Xp, *bn.init_params(5, 24, 3, seed=seed), seed=seed, **kw)
        assert run.seed == single.seed and run.names == single.names
        for name in single.names:
            np.testing.assert_array_equal(run.observable(name), single.observable(name))
    assert runs[0].observable("loss")[-1] != runs[1].observable("loss")[-1]
    for bad, match in (({"seeds": []}, "seeds"), ({"threads": 0}, "threads"), ({"M": 0}, "M"),
                       ({"seed": 1}, "seed"), ({"seeds": [-1]}, "seeds")):
        args = {"M": 24, "seeds": [1], **bad}
        with pytest.raises(InvalidParameterError, match=match):
            bn.simulate_network_replicates(data.X, data.Xp, args.pop("M"), args.pop("seeds"), **args)


def test_the_kernels_called_from_python_release_the_gil():
    # replicates run in parallel threads only if every kernel a simulation calls from Python releases the GIL
    for name in ("forward", "backprop", "loss_and_grad", "outputs", "gd_steps", "sgd_steps", "loss_of_outputs",
                 "empirical_ntk", "kernel_gd_steps"):
        assert getattr(_kernels, name).targetoptions.get("nogil") is True, name


def test_sgd_noise_does_not_depend_on_the_chunking():
    data = bn.gaussian_pairs(12, 4, radius=2.0, seed=3)
    W, V = bn.init_params(4, 32, 2, seed=4)
    kw = dict(activation="tanh", lr=0.05, n_steps=60, batch_size=5, seed=11)
    coarse = bn.simulate_network(data.X, data.Xp, W, V, record_every=60, **kw)
    fine = bn.simulate_network(data.X, data.Xp, W, V, record_every=6, **kw)
    assert np.array_equal(coarse.observable("loss"), fine.observable("loss")[::10])
    other = bn.simulate_network(data.X, data.Xp, W, V, record_every=60, **{**kw, "seed": 12})
    assert other.observable("loss")[-1] != coarse.observable("loss")[-1]
    full = bn.simulate_network(data.X, data.Xp, W, V, record_every=60, **{**kw, "batch_size": None})
    assert full.observable("loss")[-1] != coarse.observable("loss")[-1]


@pytest.mark.parametrize("act", ACTS)
def test_ntk_change_decreases_with_width(act):
    small = [_short_run(64, s, act)[:2] for s in range(3)]
    large = [_short_run(1024, s, act)[:2] for s in range(3)]
    ch_s = np.mean([c for c, _ in small])
    ch_l = np.mean([c for c, _ in large])
    # the theorem's O(M^-1/2) alone gives a factor 4 from M = 64 to 1024
    assert ch_s > 4 * ch_l, (ch_s, ch_l)
    # ... while the distance travelled by the weights does not grow with width (a sqrt(M) growth would
    # give a factor 4 here)
    R_s = np.mean([r for _, r in small])
    R_l = np.mean([r for _, r in large])
    assert R_l / R_s < 2.0, (R_s, R_l)


def test_kernel_model_and_network_losses_coincide_at_large_width():
    devs = {}
    for M in (16, 4096):
        _, _, run, (W, V, data) = _short_run(M, 0, n_steps=60)
        Z = np.vstack([data.X, data.Xp])
        th0 = bn.empirical_ntk(Z, W, V, "tanh")
        F0 = bn.network_outputs(Z, W, V, "tanh")
        lin = bn.simulate_kernel_model(F0, th0, data.X.shape[0], lr=0.05, n_steps=60, record_every=10)
        devs[M] = compare(lin, run, ("loss",)).errors["loss"] / run.observable("loss")[0]
        if M == 4096:
            # the gradient-flow ODE of the kernel model, integrated by theorykit.solve, agrees too
            ode = bn.ode_solution(F0, th0, data.X.shape[0], run.t)
            assert compare(ode, run, ("loss",)).errors["loss"] / run.observable("loss")[0] < 0.02
            np.testing.assert_allclose(ode.y[0], F0.ravel())
    assert devs[4096] < 0.01, devs
    assert devs[16] > devs[4096], devs


def test_kernel_model_steps_are_the_linearised_gradient_descent():
    rng = np.random.default_rng(12)
    N, K, n, lam = 3, 2, 8, 0.5
    A = rng.standard_normal((n * K, n * K))
    Theta = A @ A.T / (n * K)
    F0 = rng.standard_normal((n, K))
    lin = bn.simulate_kernel_model(F0, Theta, N, lr=0.1, n_steps=4, record_every=2, lam=lam)
    F = F0.copy()
    for step in range(5):
        C = F[:N].T @ F[N:2 * N] / N
        if step % 2 == 0:
            np.testing.assert_allclose(lin.observable("F")[step // 2], F, rtol=1e-12, atol=1e-14)
            assert lin.observable("loss")[step // 2] == pytest.approx(_loss_of_C(C, lam), rel=1e-12)
        G = 2 * np.where(np.eye(K) > 0, C - 1, lam * C)  # dL/dC
        g = np.zeros((n, K))  # dL/dF: evaluation rows do not enter the loss
        g[:N], g[N:2 * N] = F[N:2 * N] @ G.T / N, F[:N] @ G / N
        F = F - 0.1 * (Theta @ g.ravel()).reshape(n, K)


def test_sgd_reduces_loss():
    data = bn.gaussian_pairs(16, 6, radius=2.0, seed=3)
    W, V = bn.init_params(6, 256, 2, seed=4)
    run = bn.simulate_network(data.X, data.Xp, W, V, activation="tanh", lr=0.05, n_steps=200, record_every=50,
                              batch_size=8, seed=5)
    assert run.observable("loss")[-1] < 0.5 * run.observable("loss")[0]
    assert run.params["batch_size"] == 8 and run.seed == 5


# ------------------------------------------------------------------------------------------ generalisation
GEN_CFG = bn.SweepConfig(widths=(64, 256), n_train=10, n_population=60, t_end=3.0, n_moment=2000)


@pytest.fixture(scope="module")
def kernel_fit():
    return bn.fit_kernel_model(GEN_CFG, seed=0)


def _feature_gram(X, Y, fit, act="tanh"):
    """Kernel of the feature map (phi_inf, f_0): Theta_inf(x, y) + f_0(x) . f_0(y), accurate quadrature."""
    return (bn.infinite_width_ntk(X, Y, act)
            + bn.network_outputs(X, fit.W0, fit.V0, act) @ bn.network_outputs(Y, fit.W0, fit.V0, act).T)


def test_rademacher_trace_term_against_random_signs(kernel_fit):
    # empirical Rademacher complexity of the unit ball of the pair RKHS: E_sigma sqrt(sigma' K_pair sigma) / N,
    # averaged over every sign vector (exact), against the trace bound sqrt(tr K_pair) / N of Lemma 6.2's form
    tr = kernel_fit.train
    N = tr.X.shape[0]
    K_pair = _feature_gram(tr.X, tr.X, kernel_fit) * _feature_gram(tr.Xp, tr.Xp, kernel_fit)
    signs = 1.0 - 2.0 * ((np.arange(2 ** N)[:, None] >> np.arange(N)) & 1)
    quad = np.einsum("si,ij,sj->s", signs, K_pair, signs)
    rademacher = float(np.mean(np.sqrt(quad)) / N)
    diag_first = bn.feature_kernel_diag(tr.X, kernel_fit.W0, kernel_fit.V0, "tanh")
    diag_second = bn.feature_kernel_diag(tr.Xp, kernel_fit.W0, kernel_fit.V0, "tanh")
    np.testing.assert_allclose(diag_first * diag_second, np.diag(K_pair), rtol=1e-9)
    trace_term = bn.pair_rademacher_trace(diag_first, diag_second)
    assert np.mean(quad) == pytest.approx(np.trace(K_pair), rel=1e-12)  # E_sigma ||sum sigma_i xi_i||^2 = tr K
    # Jensen above, the Khintchine-Kahane constant 1/sqrt(2) below
    assert trace_term / np.sqrt(2) <= rademacher <= trace_term
    # random signs: the Monte-Carlo estimate agrees with the exact average
    rng = np.random.default_rng(1)
    mc = rng.choice([-1.0, 1.0], size=(4000, N))
    est = np.sqrt(np.einsum("si,ij,sj->s", mc, K_pair, mc)) / N
    assert abs(est.mean() - rademacher) < 4 * est.std() / np.sqrt(mc.shape[0])


def test_deviation_bound_step_on_the_trained_kernel_model(kernel_fit):
    # ||C_S - C_P||_F <= lambda_max(G) ||E_S xi - E_P xi||_HS for the trained weights, with the empirical
    # distributions of the training pairs S and the fresh pairs P (kernel trick for the HS norm)
    tr, pop = kernel_fit.train, kernel_fit.population
    N, n = tr.X.shape[0], pop.X.shape[0]
    Ztr = np.vstack([tr.X, tr.Xp])

    def outputs(X):
        return (bn.network_outputs(X, kernel_fit.W0, kernel_fit.V0, "tanh")
                + bn.infinite_width_ntk(X, Ztr, "tanh") @ kernel_fit.A)

    C_S = outputs(tr.X).T @ outputs(tr.Xp) / N
    np.testing.assert_allclose(C_S, kernel_fit.F_train[:N].T @ kernel_fit.F_train[N:] / N, atol=1e-9)
    C_P = outputs(pop.X).T @ outputs(pop.Xp) / n

    def pair_mean(P, Q):
        return np.mean(_feature_gram(P.X, Q.X, kernel_fit) * _feature_gram(P.Xp, Q.Xp, kernel_fit))

    hs = np.sqrt(pair_mean(tr, tr) - 2 * pair_mean(tr, pop) + pair_mean(pop, pop))
    G = kernel_fit.A.T @ kernel_fit.theta @ kernel_fit.A + np.eye(2)
    dev = np.linalg.norm(C_P - C_S)
    assert dev <= np.linalg.eigvalsh(G).max() * hs * (1 + 1e-3)  # 1e-3: the 64-node quadrature of theta
    assert dev > 0.05 * np.linalg.eigvalsh(G).max() * hs  # the inequality is not vacuous here


def test_deviation_bound_confidence_by_simulation():
    # explicit features psi(x) = x in R^p, positive pairs x+ = x + noise: E[x x+^T] = Sigma. Over many
    # training sets, ||Delta||^2 has mean (E|x|^2|x+|^2 - ||Sigma||_F^2) / N (step 4) and the bound of
    # deviation_bound (lambda_max(G) = 1) fails with frequency at most delta (step 5)
    rng = np.random.default_rng(3)
    p, N, reps = 5, 20, 4000
    L = rng.standard_normal((p, p)) / np.sqrt(p)
    Sigma = L @ L.T

    def pairs(n):
        x = rng.standard_normal((n, p)) @ L.T
        return x, x + 0.5 * rng.standard_normal((n, p))

    xb, xpb = pairs(400_000)
    second_moment = float(np.mean(np.sum(xb ** 2, 1) * np.sum(xpb ** 2, 1)))
    x, xp = pairs(N * reps)
    Delta = np.einsum("rni,rnj->rij", x.reshape(reps, N, p), xp.reshape(reps, N, p)) / N - Sigma
    sq = np.sum(Delta ** 2, axis=(1, 2))
    expected = (second_moment - np.sum(Sigma ** 2)) / N
    assert abs(sq.mean() - expected) < 4 * sq.std() / np.sqrt(reps)
    for delta in (0.05, 0.2, 0.5):
        eps = bn.deviation_bound(1.0, second_moment, N, delta)
        assert np.mean(np.sqrt(sq) > eps) <= delta
    # the largest deviation over weights with lambda_max(G) <= 1 is the top singular value block of Delta
    top = np.linalg.svd(Delta[0], compute_uv=False)
    assert np.sqrt(np.sum(top[:2] ** 2)) <= np.sqrt(sq[0]) + 1e-12
    assert bn.deviation_bound(2.0, 4.0, 4, 0.25, lam=4.0) == pytest.approx(2 * 2.0 * np.sqrt(4.0 / (4 * 0.25)))


def test_generalization_check_bound_holds_and_reports_its_margin():
    g = bn.generalization_check(GEN_CFG, seed=0)
    assert g["deviation"] <= g["deviation_bound"]
    assert g["deviation_ratio"] == pytest.approx(g["deviation_bound"] / g["deviation"])
    assert g["bound"] == pytest.approx((np.sqrt(g["train_loss"]) + g["deviation_bound"]) ** 2)
    assert g["test_loss"] <= g["bound"] and g["bound_ratio"] == pytest.approx(g["bound"] / g["test_loss"])
    # sqrt(L) is 1-Lipschitz in the Lambda norm (lambda = 1 here)
    assert np.sqrt(g["test_loss"]) <= np.sqrt(g["train_loss"]) + g["deviation"] + 1e-12
    assert g["W_op2"] >= 1.0 and g["rademacher_rms"] == pytest.approx(np.sqrt(g["second_moment"] / 10))


def test_generalization_claims_fail_when_the_bound_is_violated_or_vacuous(tmp_path):
    def claims(deviation, bound):
        gen = {"deviation": deviation, "deviation_bound": bound, "deviation_ratio": bound / deviation,
               "deviation_se": 0.01, "delta": 0.05}
        study = Study(bn.name, bn.title, tmp_path, claim_names=bn.claim_names)
        _claims.state_generalization_claims(study, gen)
        return {c.name: c.passed for c in study.report().claims}

    assert all(claims(0.5, 5.0).values())
    assert claims(0.5, 0.4) == {"generalization_bound_holds": False, "generalization_bound_within_factor": True}
    vacuous = claims(0.5, 0.5 * _claims.GENERALIZATION_FACTOR * 1.01)
    assert vacuous == {"generalization_bound_holds": True, "generalization_bound_within_factor": False}
    with pytest.raises(InvalidParameterError, match="delta"):
        bn.deviation_bound(1.0, 1.0, 10, 1.0)
    with pytest.raises(InvalidParameterError, match="same length"):
        bn.pair_rademacher_trace(np.ones(3), np.ones(4))


# ------------------------------------------------------------------------------------------ errors & data
def test_clear_errors_for_bad_input():
    X, Xp = _pairs(5, 3)
    W, V = bn.init_params(3, 4, 2)
    with pytest.raises(InvalidParameterError, match="same shape"):
        bn.loss_and_gradient(X, Xp[:4], W, V)
    with pytest.raises(InvalidParameterError, match="d = 3"):
        bn.loss_and_gradient(X, Xp, W[:, :2], V)
    with pytest.raises(InvalidParameterError, match=r"\(K, M\)"):
        bn.loss_and_gradient(X, Xp, W, V[:, :3])
    with pytest.raises(InvalidParameterError, match="K"):
        bn.init_params(3, 4, 0)
    with pytest.raises(InvalidParameterError, match="K must be >= 1"):
        bn.loss_and_gradient(X, Xp, W, V[:0])
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(InvalidParameterError, match="non-finite"):
        bn.loss_and_gradient(bad, Xp, W, V)
    with pytest.raises(InvalidParameterError, match="non-finite"):
        bn.empirical_ntk(np.full((2, 3), np.inf), W, V)
    with pytest.raises(InvalidParameterError, match="activation"):
        bn.network_outputs(X, W, V, "sigmoid")
    with pytest.raises(InvalidParameterError, match="multiple"):
        bn.simulate_network(X, Xp, W, V, n_steps=15, record_every=10)
    with pytest.raises(InvalidParameterError, match="lr"):
        bn.simulate_network(X, Xp, W, V, lr=0.0)
    with pytest.raises(InvalidParameterError, match="ntk_every"):
        bn.simulate_network(X, Xp, W, V, n_steps=20, record_every=10, ntk_every=15)
    with pytest.raises(InvalidParameterError, match="probe"):
        bn.simulate_network(X, Xp, W, V, n_steps=20, probe=np.ones((2, 4)))
    with pytest.raises(InvalidParameterError, match="batch_size"):
        bn.simulate_network(X, Xp, W, V, n_steps=20, batch_size=6)
    with pytest.raises(InvalidParameterError, match="closed form"):
        bn.infinite_width_ntk(X, activation="tanh", method="closed")
    with pytest.raises(InvalidParameterError, match="widths"):
        bn.SweepConfig(widths=(64,)).check()


def test_gaussian_pairs_lie_on_sphere():
    d = bn.gaussian_pairs(20, 7, radius=2.0, seed=1)
    assert d.X.shape == d.Xp.shape == (20, 7)
    np.testing.assert_allclose(np.linalg.norm(d.X, axis=1), 2.0)
    np.testing.assert_allclose(np.linalg.norm(d.Xp, axis=1), 2.0)
    assert not np.allclose(d.X, d.Xp)


def test_digits_without_sklearn_gives_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match=r"theorykit\[digits\]"):
        bn.digits_pairs(4)


def test_digits_pairs():
    pytest.importorskip("sklearn")
    d = bn.digits_pairs(12, seed=0)
    assert d.X.shape == (12, 64)
    np.testing.assert_allclose(np.linalg.norm(d.X, axis=1), np.sqrt(2.0))
    t = bn.digits_pairs(12, seed=0, subset="test")
    assert t.labels.shape == (12,)


# ------------------------------------------------------------------------------------------ documents
def _load_derivation():
    spec = importlib.util.spec_from_file_location("derivation_barlow_ntk", ROOT / "derivations" / "barlow_ntk.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_derivation_markdown_is_up_to_date():
    mod = _load_derivation()
    assert (ROOT / "derivations" / "barlow_ntk.md").read_text() == mod.render()


def test_compiled_symbolic_kernel_flow_solves_like_the_numba_flow():
    """The small symbolic kernel flow, through compile_system + solve, matches ode_solution (numba kernels)."""
    from theorykit.compile import compile_system
    from theorykit.solve import solve

    N, K = 2, 1
    sysk = _symbolic.kernel_flow_system(N, K)
    csys = compile_system(sysk, backend="numpy", jac=False)
    rng = np.random.default_rng(11)
    A = rng.standard_normal((2 * N * K, 2 * N * K))
    Theta = A @ A.T / 4
    F0 = rng.standard_normal((2 * N, K))
    lam = 1.0
    params = {"lambda": lam}
    for a in range(2 * N):
        for b in range(a, 2 * N):
            params[f"Theta_{a}0_{b}0"] = Theta[a, b]
    t = np.linspace(0.0, 2.0, 5)
    sol = solve(csys, F0.ravel(), (0.0, 2.0), params, t_eval=t)
    ref = bn.ode_solution(F0, Theta, N, t, lam=lam)
    np.testing.assert_allclose(sol.y, ref.y, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(sol.observed("loss"), ref.observed("loss"), rtol=1e-6, atol=1e-8)
    csys = bn.compiled_ode(2 * N, K)
    assert csys.state_names == tuple(f"f_{i}_0" for i in range(2 * N)) and csys.observable_names == ("loss",)
    assert csys.param_names[:3] == ("N", "K", "lambda") and csys.n_params == 3 + (2 * N * K) ** 2
