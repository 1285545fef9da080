"""Numba kernels of the Transformer-MLP contrastive simulator (arrays and scalars only).

Shapes: ``B`` batch, ``L`` tokens per sample, ``d`` input dimension, ``m`` MLP neurons, ``K`` features.
All floating arrays are float64 and C-contiguous; integer arrays are int64. Kernels write into their
``out``-style arguments; the public wrappers in :mod:`._model` validate, seed and allocate.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True)
def seed_numba(seed):
    """Seed numba's internal generator (used by :func:`sample_tokens` and :func:`train_chunk`)."""
    np.random.seed(seed)


@njit(cache=True)
def sample_tokens(M, cum_pi, sigma, X, Y, codes):
    """Draw ``B`` positive pairs of ``L``-token inputs from the sparse-coding data model.

    Each token independently carries feature ``j`` with probability ``pi_j`` (``cum_pi`` is the
    cumulative sum, length ``K``; the rest of the mass is a feature-free token), with a random sign,
    plus isotropic Gaussian noise of standard deviation ``sigma`` per coordinate. ``Y`` shares the
    signed features of ``X`` and carries independent noise.

    Parameters
    ----------
    M : float64[K, d]
        Orthonormal feature directions (rows).
    cum_pi : float64[K]
        Cumulative feature probabilities.
    sigma : float
        Noise standard deviation per coordinate.
    X, Y : float64[B, L, d]
        Output tokens of the two views.
    codes : int64[B, L]
        Output signed feature code: ``+-(j + 1)`` for feature ``j``, ``0`` for none.
    """
    B, L, d = X.shape
    K = M.shape[0]
    for n in range(B):
        for r in range(L):
            u = np.random.random()
            j = -1
            for k in range(K):
                if u < cum_pi[k]:
                    j = k
                    break
            s = 1.0 if np.random.random() < 0.5 else -1.0
            if j >= 0:
                codes[n, r] = int(s) * (j + 1)
                for c in range(d):
                    X[n, r, c] = s * M[j, c] + sigma * np.random.standard_normal()
                    Y[n, r, c] = s * M[j, c] + sigma * np.random.standard_normal()
            else:
                codes[n, r] = 0
                for c in range(d):
                    X[n, r, c] = sigma * np.random.standard_normal()
                    Y[n, r, c] = sigma * np.random.standard_normal()


@njit(cache=True)
def attention(X, beta, U):
    """Single-head self-attention with fixed weights ``W_Q^T W_K = beta I``, ``W_V = I``.

    ``U[n, r] = sum_s softmax_s(beta <x_r, x_s>) x_s`` for ``X``, ``U`` float64[B, L, d].
    """
    B, L, d = X.shape
    sc = np.empty(L)
    for n in range(B):
        for r in range(L):
            mx = -1e300
            for s in range(L):
                acc = 0.0
                for c in range(d):
                    acc += X[n, r, c] * X[n, s, c]
                sc[s] = beta * acc
                if sc[s] > mx:
                    mx = sc[s]
            tot = 0.0
            for s in range(L):
                sc[s] = math.exp(sc[s] - mx)
                tot += sc[s]
            for c in range(d):
                U[n, r, c] = 0.0
            for s in range(L):
                a = sc[s] / tot
                for c in range(d):
                    U[n, r, c] += a * X[n, s, c]


@njit(cache=True)
def attention_general(X, A, U, P):
    """Single-head self-attention with a general score matrix ``A = W_Q^T W_K`` and ``W_V = I``.

    ``P[n, r, s] = softmax_s(<x_r, A x_s>)`` and ``U[n, r] = sum_s P[n, r, s] x_s``. ``X``, ``U``
    float64[B, L, d], ``A`` float64[d, d], ``P`` float64[B, L, L] (kept for :func:`attention_grad`).
    With ``A = beta I`` this equals :func:`attention` up to rounding; the fixed-attention runs keep
    :func:`attention`, which is cheaper and whose numbers the stored results were made with.
    """
    B, L, d = X.shape
    V = np.empty((L, d))
    sc = np.empty(L)
    for n in range(B):
        # V[s] = A x_s once per sample: the L^2 scores then cost O(d) each instead of O(d^2)
        for s in range(L):
            for c in range(d):
                acc = 0.0
                for e in range(d):
                    acc += A[c, e] * X[n, s, e]
                V[s, c] = acc
        for r in range(L):
            mx = -1e300
            for s in range(L):
                acc = 0.0
                for c in range(d):
                    acc += X[n, r, c] * V[s, c]
                sc[s] = acc
                if acc > mx:
                    mx = acc
            tot = 0.0
            for s in range(L):
                sc[s] = math.exp(sc[s] - mx)
                tot += sc[s]
            for c in range(d):
                U[n, r, c] = 0.0
            for s in range(L):
                a = sc[s] / tot
                P[n, r, s] = a
                for c in range(d):
                    U[n, r, c] += a * X[n, s, c]


@njit(cache=True)
def forward(U, W, bias, S, H):
    """MLP of bilateral-ReLU neurons summed over tokens.

    ``S[n, r, i] = <w_i, U[n, r]>`` and ``H[n, i] = sum_r BReLU_{b_i}(S[n, r, i])`` with
    ``BReLU_b(s) = ReLU(s - b) - ReLU(-s - b)``. ``U`` float64[B, L, d], ``W`` float64[m, d],
    ``bias`` float64[m], ``S`` float64[B, L, m], ``H`` float64[B, m].
    """
    B, L, d = U.shape
    m = W.shape[0]
    for n in range(B):
        for i in range(m):
            H[n, i] = 0.0
        for r in range(L):
            for i in range(m):
                acc = 0.0
                for c in range(d):
                    acc += W[i, c] * U[n, r, c]
                S[n, r, i] = acc
                if acc > bias[i]:
                    H[n, i] += acc - bias[i]
                elif acc < -bias[i]:
                    H[n, i] += acc + bias[i]


@njit(cache=True)
def loss_grad(UX, UY, W, bias, Wsg, bias_sg, tau, lam, SX, HX, SY, HY, grad):
    """InfoNCE loss with a stop-gradient on the second view, plus ``lam/2 ||W||^2``, and its W-gradient.

    ``loss = (1/B) sum_n -log softmax_k(<f(X_n), sg f(Y_k)> / tau)[n] + lam/2 ||W||_F^2``; the
    negatives of ``X_n`` are the other ``Y_k`` in the batch. The biases are treated as constants. The
    stop-gradient branch ``f(Y)`` is computed with ``Wsg`` / ``bias_sg`` (pass ``W`` / ``bias`` in
    training; a frozen copy makes the loss a function whose derivative is the returned gradient).
    ``UX``, ``UY`` float64[B, L, d]; ``W``, ``Wsg``, ``grad`` float64[m, d]; work arrays ``SX``, ``SY``
    float64[B, L, m], ``HX``, ``HY`` float64[B, m]. Returns the loss (float).
    """
    B, L, d = UX.shape
    m = W.shape[0]
    forward(UX, W, bias, SX, HX)
    forward(UY, Wsg, bias_sg, SY, HY)
    logits = np.empty(B)
    G = np.empty(m)
    for i in range(m):
        for c in range(d):
            grad[i, c] = lam * W[i, c]
    loss = 0.0
    for n in range(B):
        mx = -1e300
        for k in range(B):
            acc = 0.0
            for i in range(m):
                acc += HX[n, i] * HY[k, i]
            logits[k] = acc / tau
            if logits[k] > mx:
                mx = logits[k]
        tot = 0.0
        for k in range(B):
            logits[k] = math.exp(logits[k] - mx)
            tot += logits[k]
        loss += -(math.log(logits[n] / tot)) / B
        # dl/dh(X_n) = (sum_k p_nk h(Y_k) - h(Y_n)) / tau
        for i in range(m):
            G[i] = -HY[n, i]
        for k in range(B):
            p = logits[k] / tot
            for i in range(m):
                G[i] += p * HY[k, i]
        for r in range(L):
            for i in range(m):
                s = SX[n, r, i]
                if s > bias[i] or s < -bias[i]:
                    g = G[i] / (tau * B)
                    for c in range(d):
                        grad[i, c] += g * UX[n, r, c]
    sq = 0.0
    for i in range(m):
        for c in range(d):
            sq += W[i, c] * W[i, c]
    return loss + 0.5 * lam * sq


@njit(cache=True)
def attention_grad(X, UX, P, W, bias, SX, HX, HY, tau, gradA):
    r"""Gradient of the InfoNCE loss in the attention matrix ``A`` through the ``X`` branch.

    Uses the forward state left by :func:`loss_grad` (``SX``, ``HX``, ``HY``) and by
    :func:`attention_general` on ``X`` (``UX``, ``P``). The ``Y`` branch is under the stop-gradient
    and the biases are constants, as for ``W``; there is no regularisation of ``A``. With
    :math:`a_{rs} = P[n, r, s]`, the InfoNCE softmax :math:`p_{nk}`, :math:`G_n = \sum_k p_{nk} h(Y_k) - h(Y_n)`
    and :math:`g_r = \partial\ell/\partial U_r = \sum_{i\ \mathrm{active}} G_{ni} w_i / (\tau B)`,

    .. math:: \partial\ell/\partial A = \sum_{n,r,s} a_{rs}\,(x_s\cdot g_r - U_r\cdot g_r)\, x_r x_s^\top,

    since :math:`U_r\cdot g_r = \sum_{s'} a_{rs'}\, x_{s'}\cdot g_r`. ``X``, ``UX`` float64[B, L, d],
    ``P`` float64[B, L, L], ``W`` float64[m, d], ``bias`` float64[m], ``SX`` float64[B, L, m], ``HX``,
    ``HY`` float64[B, m], output ``gradA`` float64[d, d].
    """
    B, L, d = X.shape
    m = W.shape[0]
    logits = np.empty(B)
    G = np.empty(m)
    g = np.empty(d)
    v = np.empty(d)
    for c in range(d):
        for e in range(d):
            gradA[c, e] = 0.0
    for n in range(B):
        # G = dl/dh(X_n) * (1 / (tau B)), recomputed from HX, HY as in loss_grad
        mx = -1e300
        for k in range(B):
            acc = 0.0
            for i in range(m):
                acc += HX[n, i] * HY[k, i]
            logits[k] = acc / tau
            if logits[k] > mx:
                mx = logits[k]
        tot = 0.0
        for k in range(B):
            logits[k] = math.exp(logits[k] - mx)
            tot += logits[k]
        for i in range(m):
            G[i] = -HY[n, i]
        for k in range(B):
            p = logits[k] / tot
            for i in range(m):
                G[i] += p * HY[k, i]
        for i in range(m):
            G[i] /= tau * B
        for r in range(L):
            for c in range(d):
                g[c] = 0.0
            for i in range(m):
                s = SX[n, r, i]
                if s > bias[i] or s < -bias[i]:
                    for c in range(d):
                        g[c] += G[i] * W[i, c]
            ug = 0.0
            for c in range(d):
                ug += UX[n, r, c] * g[c]
            # v = sum_s dl/dz_rs x_s with the softmax Jacobian dl/dz_rs = a_rs (x_s.g - U_r.g)
            for c in range(d):
                v[c] = 0.0
            for s in range(L):
                xg = 0.0
                for c in range(d):
                    xg += X[n, s, c] * g[c]
                coef = P[n, r, s] * (xg - ug)
                for c in range(d):
                    v[c] += coef * X[n, s, c]
            for c in range(d):
                xr = X[n, r, c]
                for e in range(d):
                    gradA[c, e] += xr * v[e]


@njit(cache=True)
def neuron_bias(W, kappa_sigma, bias):
    """``bias[i] = kappa * sigma * ||w_i||``: the threshold sits ``kappa`` noise standard deviations out."""
    m, d = W.shape
    for i in range(m):
        acc = 0.0
        for c in range(d):
            acc += W[i, c] * W[i, c]
        bias[i] = kappa_sigma * math.sqrt(acc)


@njit(cache=True)
def project(W, M, proj, noise):
    """``proj[i, j] = <w_i, M_j>`` (float64[m, K]) and ``noise[i]`` = norm of ``w_i`` outside span(M)."""
    m, d = W.shape
    K = M.shape[0]
    for i in range(m):
        tot = 0.0
        for c in range(d):
            tot += W[i, c] * W[i, c]
        fe = 0.0
        for j in range(K):
            acc = 0.0
            for c in range(d):
                acc += W[i, c] * M[j, c]
            proj[i, j] = acc
            fe += acc * acc
        noise[i] = math.sqrt(max(tot - fe, 0.0))


@njit(cache=True)
def train_chunk(W, A, mask, M, cum_pi, sigma, beta, tau, lam, eta, eta_A, kappa, B, L, n_steps, record_every,
                rec_proj, rec_noise, rec_loss, rec_start, train_attention):
    """Run ``n_steps`` of mini-batch SGD on fresh batches, recording every ``record_every`` steps.

    ``W`` float64[m, d] is updated in place and multiplied by ``mask`` (float64[m, d], 0 for pruned
    weights) after each step. With ``train_attention`` the attention score matrix ``A`` float64[d, d] is
    trained as well (both gradients at the same point, ``A <- A - eta_A grad_A``, never pruned, updated
    in place); otherwise the scores are ``beta <x_r, x_s>`` through :func:`attention` and ``A`` is not
    used. The data stream is the same either way. Records at local steps ``0, record_every, ...`` go to
    rows ``rec_start, rec_start + 1, ...`` of ``rec_proj`` float64[n_rec, m, K], ``rec_noise``
    float64[n_rec, m] and ``rec_loss`` float64[n_rec] (loss of the batch drawn at that step).
    Call :func:`seed_numba` first. Returns the number of rows written.
    """
    m, d = W.shape
    K = M.shape[0]
    X = np.empty((B, L, d))
    Y = np.empty((B, L, d))
    UX = np.empty((B, L, d))
    UY = np.empty((B, L, d))
    PX = np.empty((B, L, L))
    PY = np.empty((B, L, L))
    codes = np.empty((B, L), dtype=np.int64)
    SX = np.empty((B, L, m))
    SY = np.empty((B, L, m))
    HX = np.empty((B, m))
    HY = np.empty((B, m))
    grad = np.empty((m, d))
    gradA = np.empty((d, d))
    bias = np.empty(m)
    proj = np.empty((m, K))
    noise = np.empty(m)
    row = rec_start
    for step in range(n_steps):
        sample_tokens(M, cum_pi, sigma, X, Y, codes)
        if train_attention:
            attention_general(X, A, UX, PX)
            attention_general(Y, A, UY, PY)
        else:
            attention(X, beta, UX)
            attention(Y, beta, UY)
        neuron_bias(W, kappa * sigma, bias)
        loss = loss_grad(UX, UY, W, bias, W, bias, tau, lam, SX, HX, SY, HY, grad)
        if train_attention:
            attention_grad(X, UX, PX, W, bias, SX, HX, HY, tau, gradA)
        if step % record_every == 0 and row < rec_proj.shape[0]:
            project(W, M, proj, noise)
            rec_proj[row] = proj
            rec_noise[row] = noise
            rec_loss[row] = loss
            row += 1
        for i in range(m):
            for c in range(d):
                W[i, c] = (W[i, c] - eta * grad[i, c]) * mask[i, c]
        if train_attention:
            for c in range(d):
                for e in range(d):
                    A[c, e] -= eta_A * gradA[c, e]
    return row - rec_start


@njit(cache=True)
def encode(X, W, bias, beta, F):
    """Representations ``F[n] = f(X_n)`` (float64[N, m]) of inputs ``X`` float64[N, L, d]."""
    N, L, d = X.shape
    m = W.shape[0]
    U = np.empty((N, L, d))
    S = np.empty((N, L, m))
    attention(X, beta, U)
    forward(U, W, bias, S, F)


@njit(cache=True)
def encode_attention(X, W, bias, A, F):
    """:func:`encode` with the attention matrix ``A`` float64[d, d] (see :func:`attention_general`)."""
    N, L, d = X.shape
    m = W.shape[0]
    U = np.empty((N, L, d))
    P = np.empty((N, L, L))
    S = np.empty((N, L, m))
    attention_general(X, A, U, P)
    forward(U, W, bias, S, F)
