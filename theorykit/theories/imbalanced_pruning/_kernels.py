"""numba step kernels of the Transformer-MLP contrastive simulator (arrays and scalars only).

Layout: a batch of ``B`` inputs of ``L`` tokens in ambient dimension ``d1`` is a 2-d array float64[B L, d1]
whose row ``n L + r`` is token ``r`` of input ``n``; the views ``X`` and ``Y`` are stacked into one
float64[2 B L, d1] array, so that the two ``(B L) x d1`` by ``d1 x m`` products of the encoder are one
BLAS call (``np.dot`` inside numba) and the weight gradient is another. ``m`` is the number of MLP neurons
and ``K`` the number of features. Floating arrays are float64 and C-contiguous. Kernels write into their
``out``-style arguments; the random numbers are drawn outside (by :func:`theorykit.simulate.run_particles`)
and passed in, and the observables are recorded outside (:func:`project`) between chunks of steps.

Every kernel releases the GIL (``nogil=True``): replicates of one configuration train in parallel threads.
"""

from __future__ import annotations

import math
from collections import namedtuple

import numpy as np

from ..._jit import njit

#: pruning modes of :func:`sgd_steps`
PRUNE_NONE, PRUNE_FORWARD, PRUNE_HARD = 0, 1, 2

#: Scalars of one training run (a record, so the long argument list of :func:`sgd_steps` stays readable).
#: ``sigma`` noise per coordinate; ``beta`` attention score scale (fixed attention); ``tau``, ``lam``, ``eta``,
#: ``eta_A`` (attention step); ``kappa`` the bias in noise standard deviations; ``prune_rate``;
#: ``prune_start`` (first masked step); ``prune_every`` (steps between mask updates); ``prune_mode``
#: (``PRUNE_*``); ``neuron_level`` (1: mask whole neurons); ``train_attention`` (1: train ``A``);
#: ``n_tokens``.
Hyper = namedtuple("Hyper", ["sigma", "beta", "tau", "lam", "eta", "eta_A", "kappa", "prune_rate", "prune_start",
                             "prune_every", "prune_mode", "neuron_level", "train_attention", "n_tokens"])


# ------------------------------------------------------------------------------------------------ data
@njit(cache=True, nogil=True)
def tokens_from_draws(u, xi, M, pi, sigma, XY, Z):
    """Positive pairs of the sparse-coding model ``x = M z + xi`` from pre-drawn random numbers.

    Feature ``j`` of a token is ``+1`` if ``u < pi_j / 2``, ``-1`` if ``pi_j / 2 <= u < pi_j`` and ``0``
    otherwise (independently per feature, so a token can carry several); both views share ``z`` and get
    their own noise ``sigma * xi``.

    Parameters
    ----------
    u : float64[T, K]
        Uniforms on [0, 1), one per token and feature (``T = B L`` tokens).
    xi : float64[2, T, d1]
        Standard normals: the noise of the ``X`` view, then of the ``Y`` view.
    M : float64[K, d1]
        Orthonormal feature directions (rows: the columns of the paper's ``d1 x d`` matrix).
    pi : float64[K]
        ``Pr(z_j != 0)``.
    sigma : float
        Noise standard deviation per coordinate.
    XY : float64[2 T, d1]
        Output tokens: rows ``0..T-1`` the ``X`` view, rows ``T..2T-1`` the ``Y`` view.
    Z : float64[T, K]
        Output signed codes ``z``.
    """
    T, K = u.shape
    d1 = M.shape[1]
    for t in range(T):
        for c in range(d1):
            XY[t, c] = sigma * xi[0, t, c]
            XY[T + t, c] = sigma * xi[1, t, c]
        for j in range(K):
            uj = u[t, j]
            if uj < pi[j]:
                s = 1.0 if uj < 0.5 * pi[j] else -1.0
                Z[t, j] = s
                for c in range(d1):
                    XY[t, c] += s * M[j, c]
                    XY[T + t, c] += s * M[j, c]
            else:
                Z[t, j] = 0.0


# ------------------------------------------------------------------------------------------------ encoder
@njit(cache=True, nogil=True)
def brelu_sum(S, row0, L, bias, H):
    """``H[n, i] = sum_r BReLU_{b_i}(S[row0 + nL + r, i])``, ``BReLU_b(s) = ReLU(s - b) - ReLU(-s - b)``.

    ``S`` float64[*, m] pre-activations, ``bias`` float64[m], ``H`` float64[B, m].
    """
    B, m = H.shape
    for n in range(B):
        for i in range(m):
            H[n, i] = 0.0
        for r in range(L):
            t = row0 + n * L + r
            for i in range(m):  # branch-free, so that it vectorises; an inactive unit adds 0.0
                s = S[t, i]
                b = bias[i]
                H[n, i] += (s - b if s > b else 0.0) + (s + b if s < -b else 0.0)


@njit(cache=True, nogil=True)
def infonce(HX, HY, tau, G):
    """InfoNCE with a stop-gradient on the ``Y`` view and its gradient in ``f(X)``.

    ``loss = (1/B) sum_n -log softmax_k(<f(X_n), sg f(Y_k)> / tau)[n]`` (the other ``Y_k`` of the batch are
    the negatives). Writes ``G[n] = dloss/df(X_n) = (sum_k p_nk f(Y_k) - f(Y_n)) / (tau B)`` (float64[B, m])
    and returns the loss. ``HX``, ``HY`` float64[B, m].
    """
    B = HX.shape[0]
    P = np.dot(HX, HY.T)
    loss = 0.0
    for n in range(B):
        mx = -1e300
        for k in range(B):
            P[n, k] /= tau
            mx = max(mx, P[n, k])
        own = P[n, n]
        tot = 0.0
        for k in range(B):
            P[n, k] = math.exp(P[n, k] - mx)
            tot += P[n, k]
        loss += (mx + math.log(tot) - own) / B
        for k in range(B):
            P[n, k] = P[n, k] / tot / (tau * B)
        P[n, n] -= 1.0 / (tau * B)
    np.dot(P, HY, G)
    return loss


@njit(cache=True, nogil=True)
def loss_grad_core(UXY, Weff, bias, Wsg, bias_sg, shared, L, tau, S, HX, HY, G, gS, grad):
    """InfoNCE loss (no L2 term) and its gradient in the forward weights ``Weff`` (float64[m, d1]).

    ``UXY`` float64[2T, d1] are the attention outputs of both views (``X`` first). The ``Y`` view uses
    ``Wsg`` (float64[m, d1]) with ``bias_sg``; ``shared`` says they are ``Weff`` and ``bias`` (training),
    which does both views in one BLAS call. The biases are constants.
    Work arrays: ``S`` float64[2T, m] (pre-activations, ``X`` rows first), ``HX``, ``HY``, ``G``
    float64[B, m], ``gS`` float64[T, m]; output ``grad`` float64[m, d1]. Returns the loss.
    """
    T2 = UXY.shape[0]
    T = T2 // 2
    m = Weff.shape[0]
    if shared:
        np.dot(UXY, Weff.T, S)  # into S: no temporary of the size of S
    else:
        S[:T] = np.dot(UXY[:T], Weff.T)
        S[T:] = np.dot(UXY[T:], Wsg.T)
    brelu_sum(S, 0, L, bias, HX)
    brelu_sum(S, T, L, bias_sg, HY)
    loss = infonce(HX, HY, tau, G)
    for t in range(T):
        n = t // L
        for i in range(m):
            s = S[t, i]
            gS[t, i] = G[n, i] if (s > bias[i]) | (s < -bias[i]) else 0.0
    np.dot(gS.T, UXY[:T], grad)
    return loss

# ---------------------------------------------------------------------------------------------- attention
@njit(cache=True, nogil=True)
def softmax_mix(X, V, scale, L, U, P):
    """``P[nL + r, s] = softmax_s(scale <x_r, v_s>)`` and ``U[nL + r] = sum_s P[nL + r, s] x_{nL+s}`` within each
    input of ``L`` tokens; ``X``, ``V``, ``U`` float64[T, d1], ``P`` float64[T, L]."""
    T, d1 = X.shape
    for o in range(0, T, L):
        for r in range(L):
            # four scores at a time, each summed over c in order as a dot product of its own would be (the same
            # numbers), in four independent chains of additions instead of one chain after the other
            s0 = 0
            while s0 + 4 <= L:
                a0 = a1 = a2 = a3 = 0.0
                for c in range(d1):
                    x = X[o + r, c]
                    a0 += x * V[o + s0, c]
                    a1 += x * V[o + s0 + 1, c]
                    a2 += x * V[o + s0 + 2, c]
                    a3 += x * V[o + s0 + 3, c]
                P[o + r, s0] = scale * a0
                P[o + r, s0 + 1] = scale * a1
                P[o + r, s0 + 2] = scale * a2
                P[o + r, s0 + 3] = scale * a3
                s0 += 4
            for s in range(s0, L):
                acc = 0.0
                for c in range(d1):
                    acc += X[o + r, c] * V[o + s, c]
                P[o + r, s] = scale * acc
            mx = -1e300
            for s in range(L):
                mx = max(mx, P[o + r, s])
            tot = 0.0
            for s in range(L):
                P[o + r, s] = math.exp(P[o + r, s] - mx)
                tot += P[o + r, s]
            for c in range(d1):
                U[o + r, c] = 0.0
            for s in range(L):
                P[o + r, s] /= tot
                for c in range(d1):
                    U[o + r, c] += P[o + r, s] * X[o + s, c]


@njit(cache=True, nogil=True)
def attention_scaled(X, L, beta, U):
    """Self-attention with ``W_Q^T W_K = beta I`` and ``W_V = I`` (``beta = 1``: the identity initialisation).

    ``U[nL + r] = sum_s softmax_s(beta <x_r, x_s>) x_s`` within each input; ``X``, ``U`` float64[T, d1],
    ``T`` a multiple of ``L``.
    """
    softmax_mix(X, X, beta, L, U, np.empty((X.shape[0], L)))


@njit(cache=True, nogil=True)
def attention_general(X, L, A, U, P):
    """Self-attention with a general score matrix ``A = W_Q^T W_K`` and ``W_V = I``.

    ``P[nL + r, s] = softmax_s(<x_r, A x_s>)`` (float64[T, L], kept for :func:`attention_grad`) and
    ``U[nL + r] = sum_s P[nL + r, s] x_{nL+s}``; ``X``, ``U`` float64[T, d1], ``A`` float64[d1, d1].
    """
    softmax_mix(X, np.dot(X, A.T), 1.0, L, U, P)  # A x_t once per token: the L^2 scores then cost O(d1) each


@njit(cache=True, nogil=True)
def attention_grad(X, UX, P, W, bias, SX, G, L, gradA):
    r"""Gradient of the InfoNCE loss in ``A`` through the ``X`` view (the ``Y`` view is under the stop-gradient).

    With :math:`a_{rs} = P[nL+r, s]` and :math:`g_r = \partial\ell/\partial U_r = \sum_{i\ \mathrm{active}}
    G_{ni} w_i`, :math:`\partial\ell/\partial A = \sum_{n,r,s} a_{rs}(x_s\cdot g_r - U_r\cdot g_r)\,x_r x_s^\top`.
    ``X``, ``UX`` float64[T, d1], ``P`` float64[T, L], ``W`` float64[m, d1] (the weights of the forward
    pass), ``bias`` float64[m], ``SX`` float64[T, m] pre-activations, ``G`` float64[B, m] the loss gradient in
    the representation (from :func:`infonce`), output ``gradA`` float64[d1, d1]. No L2 term on ``A``.
    """
    T, d1 = X.shape
    m = W.shape[0]
    g = np.empty(d1)
    v = np.empty(d1)
    gradA[:] = 0.0
    for t in range(T):
        n = t // L
        o = n * L
        g[:] = 0.0
        for i in range(m):
            s = SX[t, i]
            if s > bias[i] or s < -bias[i]:
                for c in range(d1):
                    g[c] += G[n, i] * W[i, c]
        ug = 0.0
        for c in range(d1):
            ug += UX[t, c] * g[c]
        v[:] = 0.0
        for s in range(L):
            xg = 0.0
            for c in range(d1):
                xg += X[o + s, c] * g[c]
            coef = P[t, s] * (xg - ug)
            for c in range(d1):
                v[c] += coef * X[o + s, c]
        for c in range(d1):
            for e in range(d1):
                gradA[c, e] += X[t, c] * v[e]

# ------------------------------------------------------------------------------------------------ pruning
@njit(cache=True, nogil=True)
def magnitude_mask(W, rate, neuron_level, eligible, mask):
    """Magnitude-pruning mask: 0 for the ``floor(rate * n_eligible)`` smallest units among the eligible ones.

    A unit is an entry ``W[i, c]`` (``neuron_level = 0``) or a neuron ``w_i`` measured by the norm of its
    eligible weights (``neuron_level = 1``). ``eligible`` float64[m, d1] (1 = may be pruned; 0 stays 0 in
    ``mask``). The threshold is the k-th smallest magnitude (``np.partition``); units at it are masked too, so
    ties (of probability zero for continuous weights) can mask more than ``k``. Output ``mask`` float64[m, d1].
    """
    m, d1 = W.shape
    alive = np.zeros(m, dtype=np.bool_)
    norms = np.zeros(m)
    for i in range(m):
        for c in range(d1):
            if eligible[i, c] != 0.0:
                alive[i] = True
            norms[i] += (W[i, c] * eligible[i, c]) ** 2
        norms[i] = math.sqrt(norms[i])
    vals = norms[alive] if neuron_level else np.abs(W).ravel()[eligible.ravel() != 0.0]
    k = int(math.floor(rate * vals.size))
    thr = np.partition(vals, k - 1)[k - 1] if k > 0 else -1.0
    for i in range(m):
        for c in range(d1):
            if neuron_level:
                mask[i, c] = eligible[i, c] if (alive[i] and norms[i] > thr) else 0.0
            else:
                mask[i, c] = 1.0 if (eligible[i, c] != 0.0 and abs(W[i, c]) > thr) else 0.0


@njit(cache=True, nogil=True)
def neuron_bias(W, kappa_sigma, bias):
    """``bias[i] = kappa sigma ||w_i||``: the threshold sits ``kappa`` noise standard deviations out."""
    m, d1 = W.shape
    for i in range(m):
        acc = 0.0
        for c in range(d1):
            acc += W[i, c] * W[i, c]
        bias[i] = kappa_sigma * math.sqrt(acc)


@njit(cache=True, nogil=True)
def project(W, M, proj, noise):
    """``proj[i, j] = <w_i, M_j>`` (float64[m, K]) and ``noise[i]`` = norm of ``w_i`` outside span(M)."""
    proj[:] = np.dot(W, M.T)
    m, d1 = W.shape
    for i in range(m):
        tot = 0.0
        for c in range(d1):
            tot += W[i, c] * W[i, c]
        for j in range(M.shape[0]):
            tot -= proj[i, j] * proj[i, j]
        noise[i] = math.sqrt(max(tot, 0.0))

# ---------------------------------------------------------------------------------------------- training
@njit(cache=True, nogil=True)
def sgd_steps(W, A, mask, M, pi, u, xi, t0, h, out_loss):
    """Run ``u.shape[0]`` SGD steps from global step ``t0`` on the pre-drawn batches ``u``, ``xi``.

    One step (Algorithm 1 of the paper with ``prune_mode = PRUNE_FORWARD``): from step ``prune_start`` on, every
    ``prune_every`` steps, the mask ``M^(t)`` of the ``prune_rate`` smallest-magnitude weights is recomputed
    from ``W``; the forward pass uses ``W * M^(t)``; the gradient ``g`` of the InfoNCE loss in those forward
    weights is applied to every weight, ``W <- (1 - eta lam) W - eta g``. ``PRUNE_HARD`` computes the mask
    once, at ``prune_start``, and keeps the pruned weights at zero (``W <- ((1 - eta lam) W - eta g) * mask``).
    The biases are ``kappa sigma ||w_i||`` of the forward weights. With ``train_attention`` the score matrix
    ``A`` takes the step ``A <- A - eta_A grad_A`` at the same point; otherwise the scores are ``beta <x_r, x_s>``.

    Parameters
    ----------
    W : float64[m, d1]
        Weights, updated in place.
    A : float64[d1, d1]
        Attention score matrix (read and updated only with ``train_attention``).
    mask : float64[m, d1]
        Current mask (1 = kept), updated in place.
    M : float64[K, d1]
    pi : float64[K]
    u : float64[n_steps, B L, K]
    xi : float64[n_steps, 2, B L, d1]
        The random numbers of :func:`tokens_from_draws` for each step.
    t0 : int
        Global index of the first step.
    h : Hyper
    out_loss : float64[n_steps]
        Written with each step's batch loss plus ``lam/2 ||W||^2``, evaluated before the step's update.
    """
    n_steps, T, K = u.shape
    m, d1 = W.shape
    L = h.n_tokens
    B = T // L
    XY = np.empty((2 * T, d1))
    UXY = np.empty((2 * T, d1))
    P = np.empty((T, L))
    PY = np.empty((T, L))
    Z = np.empty((T, K))
    S = np.empty((2 * T, m))
    HX = np.empty((B, m))
    HY = np.empty((B, m))
    G = np.empty((B, m))
    gS = np.empty((T, m))
    grad = np.empty((m, d1))
    gradA = np.empty((d1, d1))
    Weff = np.empty((m, d1))
    bias = np.empty(m)
    ones = np.ones((m, d1))
    decay = 1.0 - h.eta * h.lam
    for k in range(n_steps):
        t = t0 + k
        if h.prune_mode == PRUNE_FORWARD and t >= h.prune_start and (t - h.prune_start) % h.prune_every == 0:
            magnitude_mask(W, h.prune_rate, h.neuron_level, ones, mask)
        elif h.prune_mode == PRUNE_HARD and t == h.prune_start:
            magnitude_mask(W, h.prune_rate, h.neuron_level, ones, mask)
            for i in range(m):
                for c in range(d1):
                    W[i, c] *= mask[i, c]
        sq = 0.0
        for i in range(m):
            for c in range(d1):
                Weff[i, c] = W[i, c] * mask[i, c]
                sq += W[i, c] * W[i, c]
        neuron_bias(Weff, h.kappa * h.sigma, bias)
        tokens_from_draws(u[k], xi[k], M, pi, h.sigma, XY, Z)
        if h.train_attention:
            attention_general(XY[:T], L, A, UXY[:T], P)
            attention_general(XY[T:], L, A, UXY[T:], PY)
        else:
            attention_scaled(XY[:T], L, h.beta, UXY[:T])
            attention_scaled(XY[T:], L, h.beta, UXY[T:])
        loss = loss_grad_core(UXY, Weff, bias, Weff, bias, True, L, h.tau, S, HX, HY, G, gS, grad)
        if h.train_attention:
            attention_grad(XY[:T], UXY[:T], P, Weff, bias, S, G, L, gradA)
        out_loss[k] = loss + 0.5 * h.lam * sq
        hard = h.prune_mode == PRUNE_HARD and t >= h.prune_start
        for i in range(m):
            for c in range(d1):
                w = decay * W[i, c] - h.eta * grad[i, c]
                W[i, c] = w * mask[i, c] if hard else w
        if h.train_attention:
            for c in range(d1):
                for e in range(d1):
                    A[c, e] -= h.eta_A * gradA[c, e]


@njit(cache=True, nogil=True)
def encode(X, W, bias, beta, L, F):
    """Representations ``F[n] = f(X_n)`` (float64[N, m]) of tokens ``X`` float64[N L, d1], attention ``beta I``."""
    U = np.empty_like(X)
    attention_scaled(X, L, beta, U)
    S = np.dot(U, W.T)
    brelu_sum(S, 0, L, bias, F)


@njit(cache=True, nogil=True)
def encode_attention(X, W, bias, A, L, F):
    """:func:`encode` with the attention score matrix ``A`` float64[d1, d1] (see :func:`attention_general`)."""
    U = np.empty_like(X)
    P = np.empty((X.shape[0], L))
    attention_general(X, L, A, U, P)
    S = np.dot(U, W.T)
    brelu_sum(S, 0, L, bias, F)
