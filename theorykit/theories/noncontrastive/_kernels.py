"""numba kernels: minibatch SGD on the linear non-contrastive networks, projected on a fixed eigenbasis.

All arrays are float64 and C-contiguous unless stated. The Gaussian samples are drawn in chunks of steps by
the particle driver (:func:`theorykit.simulate.run_particles`) and passed in, so the kernel only does
arithmetic; the driver also records the observables (:func:`project`) between chunks. Every kernel releases
the GIL, so replicates run in parallel threads.
"""

from __future__ import annotations

import numpy as np

from ..._jit import njit

EUCLIDEAN = 0
COSINE = 1

# Products go through BLAS (np.dot into preallocated outputs): at d = 128 this halves the time per
# step compared with plain triple loops, and is on par at d = 32 (benchmarks/bench_sgd.py).


@njit(cache=True, nogil=True)
def matmul_nt(A, B, out):
    """``out = A @ B.T`` for ``A`` (m, k), ``B`` (n, k), ``out`` (m, n)."""
    np.dot(A, B.T, out)


@njit(cache=True, nogil=True)
def matmul_tn(A, B, out):
    """``out = A.T @ B`` for ``A`` (k, m), ``B`` (k, n), ``out`` (m, n)."""
    np.dot(A.T, B, out)


@njit(cache=True, nogil=True)
def matmul_nn(A, B, out):
    """``out = A @ B`` for ``A`` (m, k), ``B`` (k, n), ``out`` (m, n)."""
    np.dot(A, B, out)


@njit(cache=True, nogil=True)
def project(W, Wp, Wt, U, group, n_groups, out_p, out_s, out_tau):
    """Group-averaged eigen-observables of one state.

    ``W, Wp, Wt``: (d, d); ``U``: (d, d) eigenbasis (columns); ``group``: int64 (d,) group of each mode.
    Writes ``out_p, out_s, out_tau`` (n_groups,): means over each group of ``u_j' Wp u_j``,
    ``|W' u_j|^2`` and ``u_j' Wt W' u_j / |W' u_j|^2``.
    """
    d = W.shape[0]
    B = np.empty((d, d))
    C = np.empty((d, d))
    T = np.empty((d, d))
    matmul_tn(U, W, B)
    matmul_tn(U, Wt, C)
    matmul_tn(U, Wp, T)
    counts = np.zeros(n_groups)
    for g in range(n_groups):
        out_p[g] = 0.0
        out_s[g] = 0.0
        out_tau[g] = 0.0
    for j in range(d):
        g = group[j]
        sj = 0.0
        cj = 0.0
        for i in range(d):
            sj += B[j, i] * B[j, i]
            cj += C[j, i] * B[j, i]
        ajj = 0.0
        for i in range(d):
            ajj += T[j, i] * U[i, j]
        out_p[g] += ajj
        out_s[g] += sj
        out_tau[g] += cj / sj if sj > 0 else 1.0
        counts[g] += 1.0
    for g in range(n_groups):
        if counts[g] > 0:
            out_p[g] /= counts[g]
            out_s[g] /= counts[g]
            out_tau[g] /= counts[g]


@njit(cache=True, nogil=True)
def sgd_steps(W, Wp, Wt, loss_code, eta_p, eta_s, sigma, alpha_p, keep, lr, symmetric, E, out_loss):
    """Run ``E.shape[0]`` steps of minibatch SGD in place on ``W, Wp, Wt`` ((d, d) each) with pre-drawn noise.

    ``E``: (m, n_draw, batch, d) standard normals, per step ``x = E[s, 0]`` and (``n_draw = 3``) the views
    ``x + sigma * E[s, 1]``, ``x + sigma * E[s, 2]``; with ``n_draw = 1`` both views are ``x`` (``sigma = 0``).
    ``u = Wp W x1``, ``v = Wt x2``; loss 0 (Euclidean) ``1/2 |u - v|^2`` or 1 (cosine) ``-d <u, v>/(|u||v|)``,
    ``v`` behind the stop-gradient. Updates ``Wp -= lr (alpha_p dL/dWp + eta_p Wp)``, ``W -= lr (dL/dW + eta_s W)``,
    then the target ``Wt = keep * Wt + (1 - keep) * W`` (``keep = 0``: SimSiam). ``symmetric``: the predictor
    gradient is symmetrised, ``(dL/dWp + dL/dWp^T) / 2``, so a symmetric ``Wp`` stays symmetric.

    ``out_loss``: (m,) float64, written with each step's mean minibatch loss per mode (loss / d: the per-mode
    Euclidean loss, or minus the cosine), evaluated before the step's update.
    """
    m, n_draw, batch, d = E.shape
    V1 = np.empty((batch, d))
    V2 = np.empty((batch, d))
    G = np.empty((batch, d))
    Z = np.empty((batch, d))
    Uo = np.empty((batch, d))
    V = np.empty((batch, d))
    H = np.empty((batch, d))
    gWp = np.empty((d, d))
    gW = np.empty((d, d))
    for s in range(m):
        if n_draw == 1:  # both views are the clean sample
            X1 = E[s, 0]
            X2 = X1
        else:
            X1 = V1
            X2 = V2
            for b in range(batch):
                for i in range(d):
                    xi = E[s, 0, b, i]
                    X1[b, i] = xi + sigma * E[s, 1, b, i]
                    X2[b, i] = xi + sigma * E[s, 2, b, i]
        matmul_nt(X1, W, Z)     # (batch, d) online features before the predictor
        matmul_nt(Z, Wp, Uo)    # (batch, d) predictor output u
        matmul_nt(X2, Wt, V)    # (batch, d) target v
        lsum = 0.0
        for b in range(batch):
            if loss_code == EUCLIDEAN:
                for i in range(d):
                    G[b, i] = Uo[b, i] - V[b, i]
                    lsum += 0.5 * G[b, i] * G[b, i]
            else:
                nu2 = 0.0
                nv2 = 0.0
                c = 0.0
                for i in range(d):
                    nu2 += Uo[b, i] * Uo[b, i]
                    nv2 += V[b, i] * V[b, i]
                    c += Uo[b, i] * V[b, i]
                nu = np.sqrt(nu2)
                nv = np.sqrt(nv2)
                if nu == 0.0 or nv == 0.0:
                    for i in range(d):
                        G[b, i] = 0.0
                    continue
                for i in range(d):
                    G[b, i] = d * (-V[b, i] / (nu * nv) + c * Uo[b, i] / (nu2 * nu * nv))
                lsum += -d * c / (nu * nv)
        out_loss[s] = lsum / (batch * d)
        matmul_tn(G, Z, gWp)    # batch * dL/dWp = G^T Z
        matmul_nn(G, Wp, H)     # H = G Wp, batch * dL/dW = H^T X1
        matmul_tn(H, X1, gW)
        if symmetric:
            for i in range(d):
                for k in range(i + 1, d):
                    gWp[i, k] = 0.5 * (gWp[i, k] + gWp[k, i])
                    gWp[k, i] = gWp[i, k]
        for i in range(d):  # Wt may be W itself (SimSiam target, keep = 0): it reads w after W is written
            for k in range(d):
                Wp[i, k] -= lr * (alpha_p * gWp[i, k] / batch + eta_p * Wp[i, k])
                w = W[i, k] - lr * (gW[i, k] / batch + eta_s * W[i, k])
                W[i, k] = w
                Wt[i, k] = keep * Wt[i, k] + (1.0 - keep) * w
