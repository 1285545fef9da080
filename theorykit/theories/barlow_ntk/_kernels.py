"""Numba kernels of the Barlow Twins NTK theory: forward and backward passes, the (S)GD and kernel-model step
kernels that :func:`theorykit.simulate.run_particles` drives, the empirical NTK, and the
function-space flow.

Arrays and scalars only; results go into ``out`` arrays (or the state arrays, updated in place); no recording,
no random numbers. All float arrays are float64 and C-contiguous. The kernels the simulations call from Python
release the GIL, so replicates run in parallel threads (:func:`._simulate.simulate_network_replicates`).
Conventions: ``Z`` (n, d) stacks inputs row-wise; for a training set of N pairs the first N rows are the
first views ``x_i`` and rows ``N..2N-1`` the second views ``x_i^+``. ``W`` (M, d), ``V`` (K, M).
``act`` is the activation code of ``_symbolic.ACTIVATIONS`` (0 = tanh, 1 = relu). The scalar building
blocks (activation, loss entries, per-neuron NTK) come from ``_generated.py``, printed from SymPy by the
compile stage, except the hidden layer's tanh, which :func:`tanh_vectorisable` evaluates in vector registers.

The training step works neuron-major (activations ``AT`` (M, n)) in blocks of neurons (:func:`_block`): the
products with the inputs (inner dimension d, and n for the gradient) go through BLAS, the activation, the
outputs and the backward pass through the block are one vectorised numba pass each, and full-batch gradient
descent (:func:`gd_steps`) runs a block's backward pass, update and next forward pass in one sweep, prefetching
the next block's activations (timings and the comparison with a numpy loop: ``benchmarks/bench_barlow.py``,
BENCHMARKS.md).
"""

from __future__ import annotations

import math

import numpy as np

from ..._jit import njit
from ..._prefetch import prefetch_row

# the generated functions are looked up when a kernel compiles, so that a kernel function can be added to
# _symbolic.kernel_functions and generated before any kernel calls it
from . import _generated as G


@njit(cache=True)
def _matvec(T, x, out):
    """``out = T x`` by plain loops (small sizes; avoids multithreaded BLAS contention)."""
    for i in range(T.shape[0]):
        acc = 0.0
        for j in range(T.shape[1]):
            acc += T[i, j] * x[j]
        out[i] = acc


# Cody-Waite split of ln 2 (LN2_HI has trailing zero bits, so k * LN2_HI is exact for the k used here)
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.44269504088896338700e+00
# the [6/6] Padé approximant of exp: exp(r) = (E + r O) / (E - r O) with E = 1 + C2 r² + C4 r⁴ + C6 r⁶ and
# O = 1/2 + C3 r² + C5 r⁴; for |r| <= ln(2) / 2 its relative error is below 2e-19, and that of
# expm1(r) = 2 r O / (E - r O) below 7e-19 (mpmath, 2000 points)
_C2, _C3, _C4, _C5, _C6 = 5.0 / 44, 1.0 / 66, 1.0 / 792, 1.0 / 15840, 1.0 / 665280


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def tanh_vectorisable(x):
    """``tanh(x)`` within 3 ulp (``tests/test_barlow_ntk.py`` checks it against mpmath), in arithmetic that LLVM
    vectorises (with fused multiply-adds): ``math.tanh`` is a scalar library call, about 20x slower over the
    hidden layer. With ``y = 2|x| = k ln 2 + r``, ``|r| <= ln(2) / 2``, and the Padé form of ``exp(r)`` above,
    ``expm1(r) = 2 r O / q`` with ``q = E - r O``, and ``tanh(|x|) = e / (e + 2)`` with
    ``q e = q expm1(y) = 2^k 2 r O + (2^k - 1) q``: one division, and no cancellation for small ``y`` (k = 0).
    NaN stays NaN."""
    ax = abs(x)
    y = 2.0 * ax
    y = y if y < 40.0 else 40.0  # tanh(20) rounds to 1; NaN also lands here and is passed through below
    k = int(y * _INV_LN2 + 0.5)
    kf = float(k)
    r = (y - kf * _LN2_HI) - kf * _LN2_LO
    r2 = r * r
    E = 1.0 + r2 * (_C2 + r2 * (_C4 + r2 * _C6))
    rO = r * (0.5 + r2 * (_C3 + r2 * _C5))
    q = E - rO
    two_k = float(1 << k)
    qe = two_k * (2.0 * rO) + (two_k - 1.0) * q
    t = math.copysign(qe / (qe + 2.0 * q), x)
    return t if ax == ax else x


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def activate(H, act):
    """``H <- σ(H)`` in place (any shape, C-contiguous): tanh by :func:`tanh_vectorisable`, ReLU as generated."""
    h = H.reshape(H.size)
    if act == 0:
        for i in range(h.size):
            h[i] = tanh_vectorisable(h[i])
    else:
        for i in range(h.size):
            h[i] = G.act_relu(h[i])


@njit(cache=True, error_model="numpy")
def derivative_from_values(A, act, out):
    """``out = σ'(u)`` from the activations ``A = σ(u)`` (same shape, C-contiguous), by the generated
    ``dact_*_of_value``."""
    a = A.reshape(A.size)
    o = out.reshape(out.size)
    for i in range(a.size):
        o[i] = G.dact_tanh_of_value(a[i]) if act == 0 else G.dact_relu_of_value(a[i])


@njit(cache=True)
def hidden(Z, W, act, A):
    """Hidden activations ``A = σ(Z Wᵀ)`` (n, M), written in place (the product through BLAS)."""
    np.dot(Z, W.T, A)
    activate(A, act)


@njit(cache=True)
def loss_of_C(C, lam):
    """Barlow Twins loss of a (K, K) cross-correlation matrix, off-diagonal weight ``lam``."""
    K = C.shape[0]
    s = 0.0
    for k in range(K):
        for l in range(K):
            s += G.loss_diag(C[k, k]) if k == l else G.loss_offdiag(C[k, l], lam)
    return s


@njit(cache=True)
def dloss_dC(C, lam, out):
    """``out[k, l] = ∂L/∂C_kl`` for a (K, K) matrix ``C``."""
    K = C.shape[0]
    for k in range(K):
        for l in range(K):
            out[k, l] = G.dloss_diag(C[k, k]) if k == l else G.dloss_offdiag(C[k, l], lam)


@njit(cache=True)
def _cross(F, N, C):
    """``C = F_Aᵀ F_B / N`` for the first 2N rows of ``F`` (n, K)."""
    K = F.shape[1]
    for k in range(K):
        for l in range(K):
            acc = 0.0
            for i in range(N):
                acc += F[i, k] * F[N + i, l]
            C[k, l] = acc / N


@njit(cache=True)
def dloss_dF(F, N, lam, out):
    """Gradient of the loss w.r.t. the outputs on the 2N training rows of ``F`` (n, K); 0 on other rows.

    With ``C = F_Aᵀ F_B / N``: ``∂L/∂F_A = F_B Gᵀ / N`` and ``∂L/∂F_B = F_A G / N``, ``G = ∂L/∂C``.
    Returns ``(loss, C)``.
    """
    K = F.shape[1]
    C = np.empty((K, K))
    _cross(F, N, C)
    G = np.empty((K, K))
    dloss_dC(C, lam, G)
    out[:] = 0.0
    for i in range(N):
        for k in range(K):
            a = 0.0
            b = 0.0
            for l in range(K):
                a += F[N + i, l] * G[k, l]
                b += F[i, l] * G[l, k]
            out[i, k] = a / N
            out[N + i, k] = b / N
    return loss_of_C(C, lam), C


@njit(cache=True, nogil=True)
def loss_of_outputs(F, N, lam, C):
    """Loss of the outputs ``F`` (n, K) on the 2N training rows; ``C`` (K, K) receives ``F_Aᵀ F_B / N``."""
    _cross(F, N, C)
    return loss_of_C(C, lam)


#: multiply-adds of the largest product OpenBLAS runs in the calling thread (below 4 x 65536); its thread pool
#: stalls when another process holds a core, so the blocks' products stay below this
BLAS_SINGLE_THREAD = 4 * 65536 - 1
#: largest block (entries, 256 KiB): a block's activations stay in the L2 cache between the product that makes
#: them and the passes that use them
BLOCK_ENTRIES = 32768


@njit(cache=True)
def _block(n, d):
    """Neurons per block for ``n`` inputs of dimension ``d``: as many as :data:`BLAS_SINGLE_THREAD` and
    :data:`BLOCK_ENTRIES` allow (larger products run closer to the BLAS peak), a multiple of 8 (the vector width),
    at least 8."""
    return max(8, min(BLAS_SINGLE_THREAD // (n * d), BLOCK_ENTRIES // n) // 8 * 8)


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _activate_rows(H, AT, V, act, FT, ahead):
    """One pass over a block of neurons: ``AT = σ(H)`` (m, n) from the pre-activations ``H`` (m, n) and
    ``FT += V AT`` (K, n), ``V`` (K, m); one row of ``ahead`` (C-contiguous, any number of rows) is prefetched
    per row of the block, so that memory traffic for the caller's next pass overlaps the activation's arithmetic.

    For tanh and K = 2 (the theory's setting) the activation and both outputs are one sweep over each row, so the
    row is read and written once and the output updates overlap the activation's arithmetic."""
    K, n = FT.shape
    if act == 0 and K == 2:
        f0, f1 = FT[0], FT[1]
        for m in range(AT.shape[0]):
            if m < ahead.shape[0]:
                prefetch_row(ahead, m)
            h = H[m]
            row = AT[m]
            v0, v1 = V[0, m], V[1, m]
            for i in range(n):
                t = tanh_vectorisable(h[i])
                row[i] = t
                f0[i] += v0 * t
                f1[i] += v1 * t
        return
    for m in range(AT.shape[0]):
        if m < ahead.shape[0]:
            prefetch_row(ahead, m)
        h = H[m]
        row = AT[m]
        if act == 0:
            for i in range(n):
                row[i] = tanh_vectorisable(h[i])
        else:
            for i in range(n):
                row[i] = G.act_relu(h[i])
        for k in range(K):
            v = V[k, m]
            f = FT[k]
            for i in range(n):
                f[i] += v * row[i]


@njit(cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
def _backward_rows(AT, gFT, V, act, BT, gV):
    """One pass over a block of neurons: ``gV = gFT ATᵀ`` (K, m) and ``BT = (Vᵀ gFT) ⊙ σ'`` (m, n), with ``σ'``
    from the activations ``AT`` (m, n) by the generated ``dact_*_of_value``; ``gFT`` (K, n).

    For K = 2 each row is one sweep (both ``gV`` entries and the row of ``BT``)."""
    K, n = gFT.shape
    if K == 2:
        g0, g1 = gFT[0], gFT[1]
        for m in range(AT.shape[0]):
            a = AT[m]
            b = BT[m]
            v0, v1 = V[0, m], V[1, m]
            acc0 = 0.0
            acc1 = 0.0
            if act == 0:
                for i in range(n):
                    ai = a[i]
                    acc0 += g0[i] * ai
                    acc1 += g1[i] * ai
                    b[i] = (g0[i] * v0 + g1[i] * v1) * G.dact_tanh_of_value(ai)
            else:
                for i in range(n):
                    ai = a[i]
                    acc0 += g0[i] * ai
                    acc1 += g1[i] * ai
                    b[i] = (g0[i] * v0 + g1[i] * v1) * G.dact_relu_of_value(ai)
            gV[0, m] = acc0
            gV[1, m] = acc1
        return
    for m in range(AT.shape[0]):
        a = AT[m]
        b = BT[m]
        for i in range(n):
            b[i] = 0.0
        for k in range(K):
            g = gFT[k]
            v = V[k, m]
            acc = 0.0
            for i in range(n):
                b[i] += g[i] * v
                acc += g[i] * a[i]
            gV[k, m] = acc
        if act == 0:
            for i in range(n):
                b[i] *= G.dact_tanh_of_value(a[i])
        else:
            for i in range(n):
                b[i] *= G.dact_relu_of_value(a[i])


@njit(cache=True)
def _forward_block(W, ZT, V, act, H, AT, FT, ahead):
    """The forward pass of one block of neurons: ``H = W Zᵀ`` through BLAS, then :func:`_activate_rows` into the
    block's activations ``AT`` and the outputs ``FT``, prefetching the rows of ``ahead``.

    The product goes into ``H``, one block that stays in the cache, not into AT's rows, which come from memory
    before they are written (1.9 against 1.3 ms per step at M = 16384, n = 128); the activation pass writes AT
    anyway, and its arithmetic hides the memory traffic."""
    np.dot(W, ZT, H)
    _activate_rows(H, AT, V, act, FT, ahead)


@njit(cache=True)
def _backward_block(AT, gFT, V, act, BT, gV, Z, gW):
    """The backward pass of one block of neurons: :func:`_backward_rows` into ``BT`` (one block, in the cache)
    and the block's ``gV``, then ``gW = BT Z`` through BLAS."""
    _backward_rows(AT, gFT, V, act, BT, gV)
    np.dot(BT, Z, gW)


@njit(cache=True)
def _output_gradient(F, N, lam, gF, M):
    """``(loss, C, gFT)``: the loss, the cross-correlation and ``∂L/∂F`` (into ``gF``), and the gradient
    reaching the hidden layer's outputs, ``gFT = gFᵀ / √M`` (K, n)."""
    L, C = dloss_dF(F, N, lam, gF)
    gFT = np.ascontiguousarray(gF.T)
    gFT *= 1.0 / math.sqrt(M)
    return L, C, gFT


@njit(cache=True)
def _scaled_outputs(FT, M, F):
    """``F = FTᵀ / √M`` (n, K) from the outputs ``FT`` (K, n) accumulated over M neurons (one code for
    :func:`forward` and :func:`gd_steps`, whose steps must equal each other bit for bit)."""
    F[:] = FT.T
    F *= 1.0 / math.sqrt(M)


@njit(cache=True, nogil=True)
def forward(Z, W, V, act, AT, F):
    """Forward pass, block by block of neurons: activations ``AT = σ(W Zᵀ)`` (M, n) and outputs
    ``F = ATᵀ Vᵀ / √M`` (n, K) for inputs ``Z`` (n, d); the products ``W Zᵀ`` through BLAS."""
    M = W.shape[0]
    FT = np.zeros((V.shape[0], Z.shape[0]))
    block = _block(Z.shape[0], Z.shape[1])
    ZT = np.ascontiguousarray(Z.T)  # OpenBLAS multiplies by a stored Zᵀ a little faster than by a transposed Z
    H = np.empty((min(block, M), Z.shape[0]))
    for m0 in range(0, M, block):
        m1 = min(M, m0 + block)
        _forward_block(W[m0:m1], ZT, V[:, m0:m1], act, H[:m1 - m0], AT[m0:m1], FT, AT[:0])
    _scaled_outputs(FT, M, F)


@njit(cache=True, nogil=True)
def backprop(Z, W, V, N, lam, act, AT, F, gF, gW, gV, forward_done=False):
    """Loss and its gradient w.r.t. ``W`` and ``V`` on the 2N rows of ``Z`` (n, d); returns ``(loss, C)``.

    Backpropagation through ``F = σ(Z Wᵀ) Vᵀ / √M`` with the work arrays ``AT`` (M, n), ``F``, ``gF`` (n, K);
    the gradients go into ``gW`` (M, d) and ``gV`` (K, M). Neuron-major and block by block: each block's
    back-propagated rows ``BT`` (one block's worth, reused) are still in the cache for the BLAS product
    ``gW = BT Z``. ``forward_done``: ``AT`` and ``F`` already hold :func:`forward` of these ``Z``, ``W``, ``V``
    (it is not run again).
    """
    if not forward_done:
        forward(Z, W, V, act, AT, F)
    M = W.shape[0]
    L, C, gFT = _output_gradient(F, N, lam, gF, M)
    block = _block(Z.shape[0], Z.shape[1])
    BT = np.empty((min(block, M), Z.shape[0]))
    n_blocks = (M + block - 1) // block
    # last block first: the blocks the forward pass wrote last are the ones still in the cache (the blocks are
    # independent, so the order does not change a bit of the gradient)
    for j in range(n_blocks - 1, -1, -1):
        m0 = j * block
        m1 = min(M, m0 + block)
        _backward_block(AT[m0:m1], gFT, V[:, m0:m1], act, BT[:m1 - m0], gV[:, m0:m1], Z, gW[m0:m1])
    return L, C


@njit(cache=True, nogil=True)
def loss_and_grad(Z, W, V, N, lam, act, gW, gV):
    """:func:`backprop` with work arrays of its own."""
    n, M, K = Z.shape[0], W.shape[0], V.shape[0]
    return backprop(Z, W, V, N, lam, act, np.empty((M, n)), np.empty((n, K)), np.empty((n, K)), gW, gV)


@njit(cache=True, nogil=True)
def outputs(Z, W, V, act, out):
    """Network outputs ``out = σ(Z Wᵀ) Vᵀ / √M`` of shape (n, K)."""
    forward(Z, W, V, act, np.empty((W.shape[0], Z.shape[0])), out)


@njit(cache=True)
def _descend(W, V, gW, gV, lr):
    """``W -= lr gW``, ``V -= lr gV`` in place (``W``, ``gW`` C-contiguous, e.g. a block of rows; ``V``, ``gV``
    may be a block of columns)."""
    w, g = W.reshape(W.size), gW.reshape(gW.size)
    for i in range(w.size):
        w[i] -= lr * g[i]
    for k in range(V.shape[0]):
        for m in range(V.shape[1]):
            V[k, m] -= lr * gV[k, m]


@njit(cache=True, nogil=True)
def gd_steps(Z, W, V, N, lam, act, lr, n_steps, AT, F, gF, gW, gV, forward_done=False):
    """``n_steps`` steps of full-batch gradient descent on the 2N rows of ``Z``, in place on ``W``, ``V``, with
    the work arrays of :func:`backprop` (allocated once by the caller: they are large). ``forward_done``: ``AT``
    and ``F`` already hold the forward pass of the starting weights (a record made it), so it is not run twice.
    On return ``AT`` and ``F`` hold the forward pass of the final weights, and ``gW``, ``gV`` the last step's
    gradient.

    One sweep over the blocks of neurons per step: a block's backward pass, its update, and the next step's
    forward pass of the block while its weights are in the cache. The forward pass of a block prefetches the
    activations of the next block, which the sweep reads next, so that their trip from memory overlaps tanh's
    arithmetic (5.0-5.1 CPU ms per step against 5.9-6.0 with the backward and forward passes in separate
    sweeps, at N = 64 pairs, M = 16384). The blocks are independent within a step and the outputs accumulate in
    the order of :func:`forward`, so every step equals :func:`backprop` followed by the update, bit for bit."""
    M, n = W.shape[0], Z.shape[0]
    if not forward_done:
        forward(Z, W, V, act, AT, F)
    block = _block(n, Z.shape[1])
    H = np.empty((min(block, M), n))
    BT = np.empty((min(block, M), n))
    ZT = np.ascontiguousarray(Z.T)
    FT = np.empty((V.shape[0], n))
    for step in range(n_steps):
        gFT = _output_gradient(F, N, lam, gF, M)[2]
        FT[:] = 0.0
        for m0 in range(0, M, block):
            m1 = min(M, m0 + block)
            b = m1 - m0
            _backward_block(AT[m0:m1], gFT, V[:, m0:m1], act, BT[:b], gV[:, m0:m1], Z, gW[m0:m1])
            _descend(W[m0:m1], V[:, m0:m1], gW[m0:m1], gV[:, m0:m1], lr)
            _forward_block(W[m0:m1], ZT, V[:, m0:m1], act, H[:b], AT[m0:m1], FT, AT[m1:min(M, m1 + block)])
        _scaled_outputs(FT, M, F)


@njit(cache=True, nogil=True)
def sgd_steps(Z, W, V, N, lam, act, lr, batches, Zb, AT, F, gF, gW, gV):
    """``batches.shape[0]`` SGD steps in place on ``W``, ``V``: step ``s`` follows the loss of the pairs
    ``batches[s]`` (float64 (m, B), pair indices in ``0..N-1``), rows ``i`` and ``N + i`` of ``Z``, gathered
    into ``Zb`` (2B, d); the other work arrays as for :func:`backprop` with ``n = 2B``."""
    B = batches.shape[1]
    for step in range(batches.shape[0]):
        for b in range(B):
            i = int(batches[step, b])
            Zb[b] = Z[i]
            Zb[B + b] = Z[N + i]
        backprop(Zb, W, V, B, lam, act, AT, F, gF, gW, gV)
        _descend(W, V, gW, gV, lr)


@njit(cache=True, nogil=True)
def empirical_ntk(Z, W, V, act, out):
    """Empirical NTK Gram matrix ``out`` (n K, n K), index ``i*K + k`` for input i, output k.

    ``Θ_(i,k),(j,l) = (1/M) Σ_m ntk_neuron(σ(u_im), σ(u_jm), σ'(u_im), σ'(u_jm), V_km, V_lm, x_i·x_j, [k=l])``.
    """
    n = Z.shape[0]
    M = W.shape[0]
    K = V.shape[0]
    A = np.empty((n, M))
    hidden(Z, W, act, A)
    dA = np.empty((n, M))
    derivative_from_values(A, act, dA)
    acc = np.empty((K, K))
    for i in range(n):
        for j in range(i, n):
            acc[:] = 0.0
            xx = 0.0
            for a in range(Z.shape[1]):
                xx += Z[i, a] * Z[j, a]
            for m in range(M):
                a, b, da, db = A[i, m], A[j, m], dA[i, m], dA[j, m]
                for k in range(K):
                    for l in range(K):
                        acc[k, l] += G.ntk_neuron(a, b, da, db, V[k, m], V[l, m], xx, 1.0 if k == l else 0.0)
            for k in range(K):
                for l in range(K):
                    out[i * K + k, j * K + l] = acc[k, l] / M
                    out[j * K + l, i * K + k] = acc[k, l] / M


@njit(cache=True)
def kernel_flow_rhs(y, Theta, N, K, lam, out):
    """Right-hand side of the function-space flow ``ḟ = -Θ ∂L/∂f`` for the flattened outputs ``y`` (n K,)."""
    n = y.size // K
    F = y.reshape((n, K))
    g = np.empty((n, K))
    dloss_dF(F, N, lam, g)
    _matvec(Theta, g.ravel(), out)
    out *= -1.0


@njit("void(float64, float64[::1], float64[::1], float64[::1])", cache=True)
def kernel_flow_rhs_into(t, y, p, out):
    """:func:`kernel_flow_rhs` with the packed parameters ``p = [N, K, lam, Θ.ravel()]`` (theorykit.solve form)."""
    N = int(p[0])
    K = int(p[1])
    nk = y.size
    Theta = p[3:3 + nk * nk].reshape((nk, nk))
    kernel_flow_rhs(y, Theta, N, K, p[2], out)


@njit("void(float64, float64[::1], float64[::1], float64[::1])", cache=True)
def kernel_flow_loss_into(t, y, p, out):
    """``out[0]``: the loss of the flattened outputs ``y`` (packed parameters of :func:`kernel_flow_rhs_into`)."""
    K = int(p[1])
    out[0] = loss_of_outputs(y.reshape((y.size // K, K)), int(p[0]), p[2], np.empty((K, K)))


@njit(cache=True)
def kernel_coef_rhs(a, F0, Theta_tt, N, K, lam, out):
    """Flow of the coefficients ``α`` (2N K,) of ``f = f_0 + Θ α`` on the training rows: ``α̇ = -∂L/∂f``."""
    n = F0.shape[0]
    F = np.empty(n * K)
    _matvec(Theta_tt, a, F)
    F += F0.ravel()
    g = np.empty((n, K))
    dloss_dF(F.reshape((n, K)), N, lam, g)
    out[:] = -g.ravel()


@njit(cache=True, nogil=True)
def kernel_gd_steps(y, Theta, N, K, lam, lr, n_steps):
    """``n_steps`` steps of gradient descent of the linearised model in function space,
    ``f <- f - lr Θ ∂L/∂f``, in place on the flattened outputs ``y`` (n K,).

    The exact counterpart of network gradient descent with the same ``lr`` (no time-discretisation gap).
    """
    n = y.size // K
    g = np.empty((n, K))
    step_vec = np.empty(n * K)
    for _ in range(n_steps):
        dloss_dF(y.reshape((n, K)), N, lam, g)
        _matvec(Theta, g.ravel(), step_vec)
        y -= lr * step_vec
