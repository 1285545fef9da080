"""Numba kernels of the contrastive model: Gauss-quadrature expectations of the derived loss derivatives,
the order-parameter right-hand side, and the step kernels of finite-n online SGD and of the McKean-Vlasov
particle method.

The quadrature kernels take the compiled integrand ``integrand(t, z[2], p[0], out[7])`` (the
``observed_into`` of :func:`._symbolic.integrand_system` through ``compile_system``) as an argument;
numba specialises them per integrand in each process (functions taking a dispatcher argument do not hit
numba's on-disk cache); the SGD kernels are cached. The step kernels take their random input pre-drawn by
the particle driver (:func:`theorykit.simulate.run_particles`, ``numpy.random.Generator`` streams) and only
do arithmetic; the driver records the observables (:func:`overlaps`, :func:`particle_moments`) between
chunks of steps.
"""

from __future__ import annotations

import math

import numpy as np

from ..._jit import njit
from .._quadrature import GAUSSIAN_RADIUS, gaussian_trapezoid

ACT_CODES = {"tanh": 0, "linear": 1}
#: the Gauss-Hermite rule serves while the Gaussian's scale max(a, b) (see :func:`expectations_into`) is at most
#: this: 12 nodes are then within ~1e-7 relative of the converged value for the tanh integrands; at larger scales
#: Gauss-Hermite converges slowly (12 nodes: 0.7% error in the uninformative Q* at sigma = 1, scale 0.67)
GAUSS_HERMITE_SCALE = 0.4
#: above GAUSS_HERMITE_SCALE the trapezoid rule, step min(1, TRAPEZOID_STEP / scale) in standard-normal units: the
#: integrands are analytic in a strip of half-width ~pi / (2 scale), so its error falls geometrically in
#: 1 / (step scale); this step gives ~1e-6 relative (tested against adaptive quadrature), the cap 1 resolves the
#: Gaussian weight itself
TRAPEZOID_STEP = math.pi ** 2 / 32.0
#: at most 2 TRAPEZOID_MAX_HALF + 1 nodes per coordinate: scales above ~6 (norms Q far beyond the fixed points,
#: e.g. the ends of a root bracket) are integrated less accurately rather than at unbounded cost
TRAPEZOID_MAX_HALF = 120


@njit
def scale_rule(scale, gx, gw):
    """The rule for ``E f(scale Z)``, ``Z ~ N(0, 1)``: ``(gx, gw)`` (Gauss-Hermite) up to
    :data:`GAUSS_HERMITE_SCALE`, else the trapezoid rule of step ``min(1, TRAPEZOID_STEP / scale)``."""
    if scale <= GAUSS_HERMITE_SCALE:
        return gx, gw
    n = min(int(math.ceil(GAUSSIAN_RADIUS / min(1.0, TRAPEZOID_STEP / scale))), TRAPEZOID_MAX_HALF)
    return gaussian_trapezoid(GAUSSIAN_RADIUS / n, n)


@njit
def _gaussian_average(integrand, h, a, b, s2, kap, gx, gw, buf):
    """Averages over ``z = (h + a g0 + b g1, h + a g0 - b g1)``, ``g0, g1 ~ N(0, 1)``, by the rule ``(gx, gw)``
    in each coordinate: ``E[∂1ℓ + ∂2ℓ]``, the same times ``g0``, the ``B`` and ``D`` integrands, ``E[f²]`` and
    ``E[f'²]``."""
    z = np.empty(2)
    p0 = np.empty(0)
    sA = 0.0
    sAg = 0.0
    sB = 0.0
    sD = 0.0
    sF = 0.0
    sFp = 0.0
    for i0 in range(gx.shape[0]):
        u = a * gx[i0]
        for i1 in range(gx.shape[0]):
            w = gw[i0] * gw[i1]
            v = b * gx[i1]
            z[0] = h + u + v
            z[1] = h + u - v
            integrand(0.0, z, p0, buf)
            sA += w * (buf[0] + buf[1])
            sAg += w * (buf[0] + buf[1]) * gx[i0]
            sB += w * (s2 * (buf[2] + buf[4]) + 2.0 * kap * buf[3])
            sD += w * (s2 * (buf[0] * buf[0] + buf[1] * buf[1]) + 2.0 * kap * buf[0] * buf[1])
            sF += w * buf[5] * buf[5]
            sFp += w * buf[6] * buf[6]
    return sA, sAg, sB, sD, sF, sFp


@njit
def expectations_into(integrand, q, Q, s2, kap, cx, cw, c_gauss, gx, gw, A):
    """Expectations of one neuron at the order parameters ``(q, Q)``.

    Parameters
    ----------
    integrand : numba dispatcher ``(t, z float64[2], p float64[0], out float64[7])`` writing
        ``(∂1ℓ, ∂2ℓ, ℓ11, ℓ12, ℓ22, f(z1), f'(z1))``.
    q : float64[d]; Q : float
    s2, kap : float
        ``η + σ²`` and ``η + ρσ²``.
    cx, cw : float64[L]
        One-coordinate quadrature rule of the law of ``c`` (zero weights are skipped); the rule for ``c``
        in ``R^d`` is its tensor product.
    c_gauss : float
        ``> 0`` for Gaussian ``c ~ N(0, c_gauss² I)``: then ``cx, cw`` are not used and the average over ``c``
        is exact: ``h = q·c`` joins the Gaussian part (variance ``a² + c_gauss² |q|²``) and
        ``E[F c_i] = c_gauss² q_i E[F y] / Var(y)`` with ``y = h + a g0`` (a Gauss rule over ``c`` was percent-level
        off at learned states, where ``h`` varies on the scale of the activation).
    gx, gw : float64[G]
        Gauss–Hermite rule for a standard normal (weights summing to 1), used while the Gaussian part's scale
        ``max(a, b)`` is at most :data:`GAUSS_HERMITE_SCALE`; above, a trapezoid rule (:func:`scale_rule`).
    A : float64[d]
        Output: ``A_i = E[(∂1ℓ + ∂2ℓ) c_i]``.

    Returns
    -------
    (B, D, Ef2, Efp2) : floats, ``Σ C_ab E[ℓ_ab]``, ``Σ C_ab E[∂aℓ ∂bℓ]`` (positive pair only),
        ``E[f(z)²]`` and ``E[f'(z)²]`` of one view (for the negative-pair term).
    """
    d = q.shape[0]
    L = cx.shape[0]
    a = math.sqrt(max(0.5 * (s2 + kap), 0.0) * max(Q, 0.0))
    b = math.sqrt(max(0.5 * (s2 - kap), 0.0) * max(Q, 0.0))
    buf = np.empty(7)
    if c_gauss > 0.0:
        qq = 0.0
        for i in range(d):
            qq += q[i] * q[i]
        a_eff = math.sqrt(a * a + c_gauss * c_gauss * qq)
        rx, rw = scale_rule(max(a_eff, b), gx, gw)
        sA, sAg, B, D, F2, Fp2 = _gaussian_average(integrand, 0.0, a_eff, b, s2, kap, rx, rw, buf)
        for i in range(d):
            A[i] = c_gauss * c_gauss * q[i] / a_eff * sAg if a_eff > 0.0 else 0.0
        return B, D, F2, Fp2
    gx, gw = scale_rule(max(a, b), gx, gw)
    idx = np.zeros(d, dtype=np.int64)
    c = np.empty(d)
    for i in range(d):
        A[i] = 0.0
    B = 0.0
    D = 0.0
    F2 = 0.0
    Fp2 = 0.0
    h_done = math.nan
    sA = sB = sD = sF = sFp = 0.0
    total = L ** d
    for flat in range(total):
        rem = flat
        wc = 1.0
        h = 0.0
        for i in range(d):
            idx[i] = rem % L
            rem //= L
            wc *= cw[idx[i]]
            c[i] = cx[idx[i]]
            h += q[i] * c[i]
        if wc == 0.0:
            continue
        if h != h_done:  # the Gaussian average depends on c only through h (all atoms alike at q = 0)
            h_done = h
            sA, _, sB, sD, sF, sFp = _gaussian_average(integrand, h, a, b, s2, kap, gx, gw, buf)
        for i in range(d):
            A[i] += wc * sA * c[i]
        B += wc * sB
        D += wc * sD
        F2 += wc * sF
        Fp2 += wc * sFp
    return B, D, F2, Fp2


@njit
def ode_rhs_into(integrand, y, d, tau, lam, s2, kap, beta, cx, cw, c_gauss, gx, gw, out):
    """Right-hand side of the closed ODEs for K independent neurons.

    ``y`` and ``out`` are float64[K (d + 1)], laid out ``[q_11..q_d1, Q_1, ..., q_1K..q_dK, Q_K]``:
    ``dq = -τ (A + (B + λ) q)``, ``dQ = -2τ (q·A + Q B + λ Q) + τ² D`` with the negative-pair weight
    ``beta`` adding ``2 β² s² E[f²] E[f'²]`` to ``D``.
    """
    K = y.shape[0] // (d + 1)
    A = np.empty(d)
    for k in range(K):
        o = k * (d + 1)
        q = y[o:o + d]
        Q = y[o + d]
        B, D, F2, Fp2 = expectations_into(integrand, q, Q, s2, kap, cx, cw, c_gauss, gx, gw, A)
        D += 2.0 * beta * beta * s2 * F2 * Fp2
        qa = 0.0
        for i in range(d):
            out[o + i] = -tau * (A[i] + (B + lam) * q[i])
            qa += q[i] * A[i]
        out[o + d] = -2.0 * tau * (qa + Q * B + lam * Q) + tau * tau * D



# ----------------------------------------------------------------------------------------- online SGD
#: activation codes of the SGD kernels
ACT_CODES = {"tanh": 0, "linear": 1}
#: regulariser codes: L2 step ``-(τ/n) λ w``, L1 step ``-(τ/n) (λ/√n) sign(w)``
REG_CODES = {"L2": 0, "L1": 1}
#: positions in the ``coeffs`` array of :func:`sgd_steps`
ETA, SIGMA, RHO, BETA, TAU, LAM = range(6)
#: positions in the ``rows`` array of :func:`sgd_steps` (noise rows other than row 0, the first view's)
ROW_E2, ROW_ETA1, ROW_E3, ROW_ETA3 = range(4)


@njit(cache=True, nogil=True)
def _act(code, z):
    if code == 0:
        return math.tanh(z)
    return z


@njit(cache=True, nogil=True)
def _dact(code, z):
    if code == 0:
        t = math.tanh(z)
        return 1.0 - t * t
    return 1.0


@njit(cache=True, nogil=True, fastmath={"reassoc", "nsz"})
def _dot(w, x):
    """``w · x`` of two float64[n], summed in whatever order vectorises: the only reassociated sums of the SGD
    step (a scalar sum waits on each addition; the timings are in BENCHMARKS.md)."""
    s = 0.0
    for j in range(w.shape[0]):
        s += w[j] * x[j]
    return s


@njit(cache=True, nogil=True)
def _signal_into(U, c, a, sq_eta, out):
    """``out = Uᵀ c + sqrt(η) a``: the clean input of a sample (``U`` float64[d, n], ``c`` float64[d], ``a``
    float64[n] its isotropic noise, zeros when ``η = 0``), accumulated feature by feature on contiguous rows."""
    d, n = U.shape
    for j in range(n):
        out[j] = U[0, j] * c[0]
    for i in range(1, d):
        ci = c[i]
        for j in range(n):
            out[j] += U[i, j] * ci
    for j in range(n):
        out[j] += sq_eta * a[j]


@njit(cache=True, nogil=True)
def overlaps(W, U, out_q, out_Q):
    """Order parameters of the weights ``W`` float64[K, n] (one row per neuron) with the features ``U``
    float64[d, n] (one row per feature): ``out_q = U Wᵀ`` float64[d, K] and ``out_Q`` float64[K] the squared
    norms of the rows of ``W``."""
    K, n = W.shape
    d = U.shape[0]
    for k in range(K):
        s = 0.0
        for j in range(n):
            s += W[k, j] * W[k, j]
        out_Q[k] = s
        for i in range(d):
            s = 0.0
            for j in range(n):
                s += U[i, j] * W[k, j]
            out_q[i, k] = s


@njit(cache=True, nogil=True)
def sgd_steps(W, U, C, Z, rows, coeffs, act, reg):
    """Online SGD of ``Σ_k [-f(z1k) f(z2k) + β f(z1k) f(z3k)]`` with fresh pre-drawn samples, in place on
    ``W``, for ``C.shape[0]`` steps (``z3`` a view of an independent sample; used only if ``β != 0``).

    Parameters
    ----------
    W : float64[K, n]
        Weights, one row per neuron (updated in place).
    U : float64[d, n]
        Orthonormal feature directions, one row per feature.
    C : float64[m, n_c, d]
        Hidden variables of each step: ``C[s, 0]`` for the positive pair, ``C[s, 1]`` for the negative
        sample (``n_c = 2`` when ``β != 0``).
    Z : float64[m, n_z, n]
        Standard normals of each step: row 0 the first view's noise, then the rows named by ``rows``.
    rows : int64[4]
        Rows of ``Z`` holding (:data:`ROW_E2`) the second view's noise (mixed with row 0 by ``ρ``),
        (:data:`ROW_ETA1`) the isotropic input noise of the pair, (:data:`ROW_E3`) the negative view's noise
        and (:data:`ROW_ETA3`) its input noise; ``-1`` means the row is not drawn (its term is zero).
    coeffs : float64[6]
        ``η, σ, ρ, β, τ, λ`` at the positions :data:`ETA` ... :data:`LAM`.
    act : int
        :data:`ACT_CODES` (0 tanh, 1 linear).
    reg : int
        :data:`REG_CODES` (0 L2, 1 L1).

    Notes
    -----
    Every loop runs over contiguous rows of length ``n`` (the views are built once per step and shared by
    the neurons), and the kernel releases the GIL, so replicates can run in threads.
    """
    K, n = W.shape
    m = C.shape[0]
    eta, sigma, rho, beta, tau, lam = (coeffs[ETA], coeffs[SIGMA], coeffs[RHO], coeffs[BETA], coeffs[TAU],
                                       coeffs[LAM])
    i_e2, i_eta1, i_e3, i_eta3 = rows[ROW_E2], rows[ROW_ETA1], rows[ROW_E3], rows[ROW_ETA3]
    neg = beta != 0.0
    x1 = np.empty(n)
    x2 = np.empty(n)
    x3 = np.zeros(n)
    zero = np.zeros(n)  # a noise row that is not drawn
    step = tau / n
    l1 = lam / math.sqrt(n)
    sq_eta = math.sqrt(eta)
    r2 = math.sqrt(max(1.0 - rho * rho, 0.0))
    for s in range(m):
        # the two views x1 = x + σ e1, x2 = x + σ (ρ e1 + sqrt(1 - ρ²) e2) of x = U c + sqrt(η) a
        _signal_into(U, C[s, 0], Z[s, i_eta1] if i_eta1 >= 0 else zero, sq_eta, x2)
        e1 = Z[s, 0]
        e2 = Z[s, i_e2] if i_e2 >= 0 else zero
        for j in range(n):
            base = x2[j]
            x1[j] = base + sigma * e1[j]
            x2[j] = base + sigma * (rho * e1[j] + r2 * e2[j])
        if neg:  # a view x3 of an independent sample
            _signal_into(U, C[s, 1], Z[s, i_eta3] if i_eta3 >= 0 else zero, sq_eta, x3)
            e3 = Z[s, i_e3]
            for j in range(n):
                x3[j] += sigma * e3[j]
        for k in range(K):
            w = W[k]
            z1 = _dot(w, x1)
            z2 = _dot(w, x2)
            z3 = _dot(w, x3) if neg else 0.0
            f1 = _act(act, z1)
            f2 = _act(act, z2)
            f3 = _act(act, z3)
            g1 = -_dact(act, z1) * (f2 - beta * f3)
            g2 = -f1 * _dact(act, z2)
            g3 = beta * f1 * _dact(act, z3)
            if reg == 0 and not neg:
                for j in range(n):
                    wj = w[j]
                    w[j] = wj - step * (g1 * x1[j] + g2 * x2[j] + lam * wj)
            elif reg == 0:
                for j in range(n):
                    wj = w[j]
                    w[j] = wj - step * (g1 * x1[j] + g2 * x2[j] + lam * wj + g3 * x3[j])
            else:
                for j in range(n):
                    wj = w[j]
                    r = l1 * (1.0 if wj > 0.0 else (-1.0 if wj < 0.0 else 0.0))
                    w[j] = wj - step * (g1 * x1[j] + g2 * x2[j] + r + g3 * x3[j])


# ------------------------------------------------------------------------------------ particle PDE
@njit(cache=True)
def particle_moments(xi, theta, out_q):
    """Empirical order parameters of the particles: ``out_q[i] = mean(ξ̄_i θ)`` (float64[d]); returns
    ``Q = mean(θ²)`` (``xi`` float64[N, d], ``theta`` float64[N])."""
    N, d = xi.shape
    for i in range(d):
        s = 0.0
        for j in range(N):
            s += xi[j, i] * theta[j]
        out_q[i] = s / N
    Q = 0.0
    for j in range(N):
        Q += theta[j] * theta[j]
    return Q / N


@njit
def particle_steps(integrand, xi, theta, coeffs, reg, cx, cw, c_gauss, gx, gw, E):
    """Euler–Maruyama steps of the McKean–Vlasov particle method of one neuron, in place on ``theta``.

    ``dθ = -τ (ξ̄·A + θ B + Γ'(θ)) dt + τ √D dW`` with ``A, B, D`` evaluated at the empirical
    ``q = mean(ξ̄ θ)``, ``Q = mean(θ²)``; ``Γ' = λθ`` (``reg = 0``) or ``λ sign θ`` (``reg = 1``).

    Parameters
    ----------
    integrand : numba dispatcher, as for :func:`expectations_into`
    xi : float64[N, d]
        Feature coordinates of the particles (fixed).
    theta : float64[N]
        Particle weights (updated in place).
    coeffs : float64[6]
        ``τ, λ, s², κ, β, dt``.
    cx, cw, c_gauss, gx, gw : float64[L], float64[L], float, float64[G], float64[G]
        The law of ``c`` and the quadrature rule, as for :func:`expectations_into`.
    E : float64[m, N]
        Standard normals of each of the ``m`` steps.
    """
    tau, lam, s2, kap, beta, dt = coeffs[0], coeffs[1], coeffs[2], coeffs[3], coeffs[4], coeffs[5]
    N, d = xi.shape
    q = np.empty(d)
    A = np.empty(d)
    for it in range(E.shape[0]):
        Q = particle_moments(xi, theta, q)
        B, D, F2, Fp2 = expectations_into(integrand, q, Q, s2, kap, cx, cw, c_gauss, gx, gw, A)
        D += 2.0 * beta * beta * s2 * F2 * Fp2
        amp = tau * math.sqrt(max(D, 0.0) * dt)
        for j in range(N):
            th = theta[j]
            drift = B * th
            for i in range(d):
                drift += xi[j, i] * A[i]
            if reg == 0:
                drift += lam * th
            else:
                drift += lam * (1.0 if th > 0.0 else (-1.0 if th < 0.0 else 0.0))
            theta[j] = th - tau * drift * dt + amp * E[it, j]
