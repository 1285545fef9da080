"""numba kernels: SGD steps of the linear encoder with a closed-form (or DirectPred) predictor on pre-drawn data,
and its eigen-observables. All arrays float64, C-contiguous; shapes in the docstrings."""

from __future__ import annotations

import numpy as np
from numba import njit

#: loss codes, in the order of ``_symbolic.LOSSES``
EUCLIDEAN, COSINE, ISO_EUCLIDEAN, ISO_COSINE = 0, 1, 2, 3


@njit(cache=True)
def predictor(F, alpha, epsilon):
    """``(P, lam)``: ``P = U diag(|d|**alpha + epsilon * max d) U^T`` from ``F = U diag(d) U^T`` ((M, M))."""
    d, U = np.linalg.eigh(F)
    lam = np.abs(d) ** alpha + epsilon * d.max()
    return (U * lam) @ U.T, lam


@njit(cache=True)
def sgd_step(W, Wt, F, X1, X2, loss_code, alpha, epsilon, rho, running, lr, eta, keep, scale):
    """One minibatch step in place on ``W``, ``Wt`` ((M, N)) and, if ``running``, ``F`` ((M, M)).

    ``X1, X2``: (B, N) online and target views. The predictor is built from ``F <- rho F + (1 - rho)
    Z1^T Z1 / B`` (``running``: DirectPred) or from ``W W^T``, and gets no gradient. Per-sample loss of
    ``p = P z1`` and ``z2 = Wt x2`` (stop-gradient): 0 ``|p - z2|^2/2``; 1 ``-scale cos(p, z2)``; 2
    ``|z1 - sg(z2 + z1 - p)|^2/2``; 3 ``-scale [<z1, z2>/sg(|p||z2|) - sg(<p, z2>/(|p|^3|z2|)) z1^T P z1/2]``.
    Then ``W -= lr (grad + eta W)``, ``Wt = keep Wt + (1 - keep) W``. Returns ``<grad, W>/(|grad||W|)`` at
    the old ``W`` (0 for a zero gradient).
    """
    B = X1.shape[0]
    Z1 = X1 @ W.T
    Z2 = X2 @ Wt.T
    if running:
        F[:, :] = rho * F + (1.0 - rho) * (Z1.T @ Z1) / B
    else:
        F[:, :] = W @ W.T
    P, _ = predictor(F, alpha, epsilon)
    Pz = Z1 @ P
    G = Pz - Z2
    if loss_code == COSINE or loss_code == ISO_COSINE:
        for b in range(B):
            n_p = np.sqrt(np.sum(Pz[b] ** 2))
            n_z = np.sqrt(np.sum(Z2[b] ** 2))
            if n_p == 0.0 or n_z == 0.0:  # an undefined cosine contributes no gradient
                G[b] = 0.0
                continue
            c = np.sum(Pz[b] * Z2[b])
            G[b] = -scale * (Z2[b] / (n_p * n_z) - c * Pz[b] / (n_p ** 3 * n_z))
    if loss_code == EUCLIDEAN or loss_code == COSINE:
        G = G @ P
    grad = G.T @ X1 / B
    gn, wn = np.sqrt(np.sum(grad ** 2)), np.sqrt(np.sum(W ** 2))
    inner = np.sum(grad * W) / (gn * wn) if gn > 0.0 and wn > 0.0 else 0.0
    W -= lr * (grad + eta * W)
    Wt[:, :] = keep * Wt + (1.0 - keep) * W
    return inner


@njit(cache=True)
def observe(W, Wt, F, U, group, n_groups, alpha, epsilon, out_s, out_lam, out_tau):
    """Group means of ``s_j = |W^T u_j|^2``, ``lambda_j = u_j^T P u_j`` (``P`` from ``F``) and
    ``tau_j = u_j^T Wt W^T u_j / s_j`` over the fixed basis ``U`` ((M, M) columns), modes grouped by
    ``group`` (int64 (M,)); writes ``out_*`` ((n_groups,)); returns ``|W|_F^2 / M``."""
    P, _ = predictor(F, alpha, epsilon)
    A, C = U.T @ W, U.T @ Wt
    s = np.sum(A ** 2, axis=1)
    lam = np.sum(U * (P @ U), axis=0)
    tau = np.sum(C * A, axis=1) / s
    for k in range(n_groups):
        m = group == k
        out_s[k], out_lam[k], out_tau[k] = s[m].mean(), lam[m].mean(), tau[m].mean()
    return np.sum(W ** 2) / W.shape[0]


@njit(cache=True)
def sgd_chunk(W, Wt, F, E, sigma_o, sigma_t, loss_code, alpha, epsilon, rho, running, lr, eta, keep, scale):
    """:func:`sgd_step` over ``E.shape[0]`` steps; ``E``: (m, 3, B, N) standard normals, per step ``x = E[i, 0]``
    and the views ``x + sigma_o E[i, 1]``, ``x + sigma_t E[i, 2]``. Returns the largest ``|<grad, W>|/(|grad||W|)``."""
    worst = 0.0
    for i in range(E.shape[0]):
        inner = sgd_step(W, Wt, F, E[i, 0] + sigma_o * E[i, 1], E[i, 0] + sigma_t * E[i, 2], loss_code, alpha,
                         epsilon, rho, running, lr, eta, keep, scale)
        worst = max(worst, abs(inner))
    return worst
