"""Numba kernels of the self-attention layer: fixed scores ``beta <x_r, x_s>`` and a trained score matrix ``A``
(``attention="trained"``) with its gradient; layout as in :mod:`._kernels`."""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def softmax_mix(X, V, scale, L, U, P):
    """``P[nL + r, s] = softmax_s(scale <x_r, v_s>)`` and ``U[nL + r] = sum_s P[nL + r, s] x_{nL+s}`` within each
    input of ``L`` tokens; ``X``, ``V``, ``U`` float64[T, d1], ``P`` float64[T, L]."""
    T, d1 = X.shape
    for o in range(0, T, L):
        for r in range(L):
            mx = -1e300
            for s in range(L):
                acc = 0.0
                for c in range(d1):
                    acc += X[o + r, c] * V[o + s, c]
                P[o + r, s] = scale * acc
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
