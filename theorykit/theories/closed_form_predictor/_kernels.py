"""numba kernels: SGD steps of the linear encoder with a closed-form (or DirectPred) predictor on pre-drawn data,
and its eigen-observables. All arrays float64, C-contiguous; shapes in the docstrings.

The kernels keep the predictor ``P`` of the current state in an array of the caller's (:func:`prepare` before
the first step, then each step), so a step does one eigen-decomposition (none for ``alpha = 1``; for ``alpha =
1/2`` at small ``M`` the square root comes from the polar factor of ``W``, :func:`sqrt_gram_by_polar`, two to
three times faster than LAPACK's ``eigh`` there) and a record none. Products go through
BLAS (``np.dot`` into preallocated arrays), elementwise work is plain loops (they compile in a fraction of the
time of array expressions), and every kernel releases the GIL, so replicates run in parallel threads.
"""

from __future__ import annotations

import numpy as np

from ..._jit import njit

#: loss codes, in the order of ``_symbolic.LOSSES``
EUCLIDEAN, COSINE, ISO_EUCLIDEAN, ISO_COSINE = 0, 1, 2, 3


@njit(cache=True, nogil=True)
def predictor(F, alpha, epsilon, P, lam):
    """``P = U diag(lam) U^T`` with ``lam = |d|**alpha + epsilon * max d`` from ``F = U diag(d) U^T``.

    ``F``, ``P``: (M, M); ``lam``: (M,), in the order of ascending ``d``. Writes ``P`` and ``lam``.
    """
    d, U = np.linalg.eigh(F)
    top = d.max()
    M = d.shape[0]
    for k in range(M):
        lam[k] = np.abs(d[k]) ** alpha + epsilon * top
    UL = np.empty((M, M))
    for i in range(M):
        for k in range(M):
            UL[i, k] = U[i, k] * lam[k]
    np.dot(UL, U.T, P)


@njit(cache=True, nogil=True)
def sqrt_gram_by_polar(W, F, P, X, Y, G, max_iter):
    """``P = (W W^T)^(1/2)`` without an eigen-decomposition: ``P = W Q^T`` with ``Q`` the polar factor of ``W``
    (``W = P Q``), by Newton-Schulz iterations ``X <- (3 I - X X^T) X / 2`` from ``X = W / c``.

    ``W``: (M, N), M <= N; ``F = W W^T`` (M, M), given; ``P``, ``G``: (M, M) and ``X``, ``Y``: (M, N) are written.
    ``c^2`` is the largest row sum of ``|F|`` (at least the largest eigenvalue of ``F``), so every singular value
    of ``X`` starts in (0, 1] and goes to 1 (quadratically near 1); a zero singular value stays 0, as its
    square root should. The iterations stop after the step whose change is at most 1e-9 (the error left is about
    the square of it). Returns False, with ``P`` untouched, for a non-finite or zero ``F`` or without convergence
    in ``max_iter`` iterations (singular values far below the largest: the caller decomposes ``F`` instead).
    """
    M, N = W.shape
    c2 = 0.0
    for a in range(M):
        row = 0.0
        for b in range(M):
            row += abs(F[a, b])
        c2 = max(c2, row)
    if not (c2 > 0.0 and np.isfinite(c2)):
        return False
    c = np.sqrt(c2)
    for a in range(M):
        for n in range(N):
            X[a, n] = W[a, n] / c
        for b in range(M):
            G[a, b] = F[a, b] / c2
    for _ in range(max_iter):
        for a in range(M):
            for b in range(M):
                G[a, b] = -0.5 * G[a, b]
            G[a, a] += 1.5
        np.dot(G, X, Y)
        change = 0.0
        for a in range(M):
            for n in range(N):
                change = max(change, abs(Y[a, n] - X[a, n]))
        X, Y = Y, X
        if change <= 1e-9:
            np.dot(W, X.T, G)
            for a in range(M):
                for b in range(M):
                    P[a, b] = 0.5 * (G[a, b] + G[b, a])
            return True
        np.dot(X, X.T, G)
    return False


@njit(cache=True, nogil=True)
def gram_predictor(F, alpha, epsilon, P, lam):
    """:func:`predictor` of a positive semi-definite ``F`` (a Gram matrix ``W W^T``, or DirectPred's running mean
    of Gram matrices): for ``alpha = 1, epsilon = 0`` that is ``F`` itself (``|d| = d``), copied into ``P``
    without an eigen-decomposition (``lam`` is left as it is). Raises ``LinAlgError`` for a non-finite ``F``,
    as the eigen-decomposition does."""
    if alpha != 1.0 or epsilon != 0.0:
        predictor(F, alpha, epsilon, P, lam)
        return
    M = F.shape[0]
    for a in range(M):
        for c in range(M):
            f = F[a, c]
            if not np.isfinite(f):
                raise np.linalg.LinAlgError("Array must not contain infs or NaNs.")
            P[a, c] = f


@njit(cache=True, nogil=True)
def prepare(W, F, P, lam, running, alpha, epsilon):
    """Before the first step: ``F = W W^T`` unless ``running`` (DirectPred keeps its estimate ``F``), then
    ``P`` from ``F`` (:func:`gram_predictor`). ``W``: (M, N); ``F, P``: (M, M); ``lam``: (M,)."""
    if not running:
        np.dot(W, W.T, F)
    gram_predictor(F, alpha, epsilon, P, lam)


@njit(cache=True, nogil=True)
def sgd_chunk(W, Wt, F, P, lam, E, sigma_o, sigma_t, loss_code, alpha, epsilon, rho, running, lr, eta, keep,
              scale, polar_iter):
    """``E.shape[0]`` minibatch steps in place on ``W``, ``Wt`` ((M, N)), ``F``, ``P`` ((M, M)) and ``lam`` ((M,)).

    ``E``: (m, 3, B, N) standard normals, per step ``x = E[i, 0]`` and the views ``x1 = x + sigma_o E[i, 1]``,
    ``x2 = x + sigma_t E[i, 2]``, with ``z1 = W x1``, ``z2 = Wt x2``. On entry ``P`` is the predictor of the
    current state (:func:`prepare`, or the previous chunk). The predictor (:func:`gram_predictor`) is built
    from ``F <- rho F + (1 - rho) Z1^T Z1 / B`` (``running``: DirectPred, updated at the start of the step) or
    from ``F = W W^T`` (updated after the step, for the next one), and gets no gradient. Per-sample loss of
    ``p = P z1`` and ``z2`` (stop-gradient): 0 ``|p - z2|^2/2``; 1 ``-scale cos(p, z2)``; 2 ``|z1 - sg(z2 + z1 -
    p)|^2/2``; 3 ``-scale [<z1, z2>/sg(|p||z2|) - sg(<p, z2>/(|p|^3|z2|)) z1^T P z1/2]``. Then ``W -= lr (grad +
    eta W)``, ``Wt = keep Wt + (1 - keep) W``. Returns the largest ``|<grad, W>|/(|grad||W|)`` at the step's old ``W``
    (0 for a zero gradient).

    ``polar_iter > 0`` (used only for ``alpha = 1/2``, ``epsilon = 0`` from ``F = W W^T``): the predictor is
    :func:`sqrt_gram_by_polar` with at most that many iterations, ``lam`` left as it is; where that does not
    converge, this step and the rest of the chunk decompose ``F``.
    """
    m, _, B, N = E.shape
    M = W.shape[0]
    X1 = np.empty((B, N))
    X2 = np.empty((B, N))
    Z1 = np.empty((B, M))
    Z2 = np.empty((B, M))
    Pz = np.empty((B, M))
    G = np.empty((B, M))
    GP = np.empty((B, M))
    PW = np.empty((M, N))
    GX = np.empty((M, N))
    grad = np.empty((M, N))
    ZZ = np.empty((M, M))
    X = np.empty((M, N))
    Y = np.empty((M, N))
    MM = np.empty((M, M))
    polar = polar_iter > 0 and alpha == 0.5 and epsilon == 0.0 and not running and M <= N
    project = loss_code == EUCLIDEAN or loss_code == COSINE  # the gradient reaches z1 through p = P z1
    cosine = loss_code == COSINE or loss_code == ISO_COSINE
    # With a batch larger than the input width, P acts on the weights instead of the batch: p = X1 (P W)^T and
    # the gradient P (G^T X1) cost B M N + M^2 N flops each, against B M N + B M^2 for (X1 W^T) P and
    # (G P)^T X1 (P is symmetric). DirectPred's running estimate needs Z1 = X1 W^T itself.
    predictor_on_weights = project and B > N
    worst = 0.0
    for i in range(m):
        for b in range(B):
            for n in range(N):
                x = E[i, 0, b, n]
                X1[b, n] = x + sigma_o * E[i, 1, b, n]
                X2[b, n] = x + sigma_t * E[i, 2, b, n]
        np.dot(X2, Wt.T, Z2)
        if running or not predictor_on_weights:
            np.dot(X1, W.T, Z1)
        if running:
            np.dot(Z1.T, Z1, ZZ)
            for a in range(M):
                for c in range(M):
                    F[a, c] = rho * F[a, c] + (1.0 - rho) * ZZ[a, c] / B
            gram_predictor(F, alpha, epsilon, P, lam)
        if predictor_on_weights and not running:
            np.dot(P, W, PW)
            np.dot(X1, PW.T, Pz)
        else:
            np.dot(Z1, P, Pz)
        for b in range(B):
            for k in range(M):
                G[b, k] = Pz[b, k] - Z2[b, k]
        if cosine:
            for b in range(B):
                sp = 0.0
                sz = 0.0
                c = 0.0
                for k in range(M):
                    sp += Pz[b, k] ** 2
                    sz += Z2[b, k] ** 2
                    c += Pz[b, k] * Z2[b, k]
                n_p = np.sqrt(sp)
                n_z = np.sqrt(sz)
                if n_p == 0.0 or n_z == 0.0:  # an undefined cosine contributes no gradient
                    for k in range(M):
                        G[b, k] = 0.0
                    continue
                for k in range(M):
                    G[b, k] = -scale * (Z2[b, k] / (n_p * n_z) - c * Pz[b, k] / (n_p ** 3 * n_z))
        if predictor_on_weights:
            np.dot(G.T, X1, GX)
            np.dot(P, GX, grad)
        elif project:
            np.dot(G, P, GP)
            np.dot(GP.T, X1, grad)
        else:
            np.dot(G.T, X1, grad)
        # one pass: the minibatch mean, the diagnostic <grad, W> at the old W, the step and the target
        g2 = 0.0
        w2 = 0.0
        gw = 0.0
        for a in range(M):
            for n in range(N):
                g = grad[a, n] / B
                w = W[a, n]
                g2 += g ** 2
                w2 += w ** 2
                gw += g * w
                w = w - lr * (g + eta * w)
                W[a, n] = w
                Wt[a, n] = keep * Wt[a, n] + (1.0 - keep) * w
        gn, wn = np.sqrt(g2), np.sqrt(w2)
        inner = gw / (gn * wn) if gn > 0.0 and wn > 0.0 else 0.0
        worst = max(worst, abs(inner))
        if not running:
            np.dot(W, W.T, F)
            if polar:
                polar = sqrt_gram_by_polar(W, F, P, X, Y, MM, polar_iter)
            if not polar:
                gram_predictor(F, alpha, epsilon, P, lam)
    return worst


@njit(cache=True, nogil=True)
def observe(W, Wt, P, U, group, n_groups, out_s, out_lam, out_tau):
    """Group means of ``s_j = |W^T u_j|^2``, ``lambda_j = u_j^T P u_j`` and ``tau_j = u_j^T Wt W^T u_j / s_j``
    over the fixed basis ``U`` ((M, M) columns), modes grouped by ``group`` (int64 (M,)); writes ``out_*``
    ((n_groups,)); returns ``|W|_F^2 / M``. ``W, Wt``: (M, N); ``P``: (M, M)."""
    M, N = W.shape
    A = np.empty((M, N))
    C = np.empty((M, N))
    PU = np.empty((M, M))
    np.dot(U.T, W, A)
    np.dot(U.T, Wt, C)
    np.dot(P, U, PU)
    counts = np.zeros(n_groups)
    for g in range(n_groups):
        out_s[g] = 0.0
        out_lam[g] = 0.0
        out_tau[g] = 0.0
    for j in range(M):
        s = 0.0
        ct = 0.0
        lam = 0.0
        for n in range(N):
            s += A[j, n] ** 2
            ct += C[j, n] * A[j, n]
        for i in range(M):
            lam += U[i, j] * PU[i, j]
        g = group[j]
        out_s[g] += s
        out_lam[g] += lam
        out_tau[g] += ct / s
        counts[g] += 1.0
    for g in range(n_groups):
        out_s[g] /= counts[g]
        out_lam[g] /= counts[g]
        out_tau[g] /= counts[g]
    w2 = 0.0
    for a in range(M):
        for n in range(N):
            w2 += W[a, n] ** 2
    return w2 / M
