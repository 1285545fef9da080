r"""Model, data and numerics of two-layer networks trained with the Barlow Twins loss.

Network (NTK parametrisation, Gaussian initialisation):

.. math:: f(x) = M^{-1/2} V \sigma(W x),\quad W\in\mathbb R^{M\times d},\ V\in\mathbb R^{K\times M},
          \ W_{md}, V_{km} \sim N(0, 1).

Loss on N positive pairs :math:`(x_i, x_i^+)`:

.. math:: C = \frac1N\sum_i f(x_i) f(x_i^+)^\top,\qquad
          L = \sum_k (1 - C_{kk})^2 + \lambda \sum_{k\ne l} C_{kl}^2 .

Public functions validate their arguments, seed, allocate and call the numba kernels of ``_kernels``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..._checks import check_finite_array, check_int, check_range
from ..._random import SeedLike, as_generator
from ...errors import InvalidParameterError, SolveError
from ...solve import solve
from . import _kernels as _k
from ._symbolic import ACTIVATIONS


def _act_code(activation: str) -> int:
    if activation not in ACTIVATIONS:
        raise InvalidParameterError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    return ACTIVATIONS[activation]


def _check_pairs(X, Xp) -> tuple[np.ndarray, np.ndarray]:
    X = check_finite_array("X", X, ndim=2)
    Xp = check_finite_array("Xp", Xp, ndim=2)
    if X.shape != Xp.shape:
        raise InvalidParameterError(f"X and Xp (the two views) must have the same shape, got {X.shape} and {Xp.shape}")
    if X.shape[0] < 1 or X.shape[1] < 1:
        raise InvalidParameterError(f"X must have at least one row and one column, got shape {X.shape}")
    return np.ascontiguousarray(X), np.ascontiguousarray(Xp)


def _check_weights(W, V, d: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    W = np.ascontiguousarray(check_finite_array("W", W, ndim=2))
    V = np.ascontiguousarray(check_finite_array("V", V, ndim=2))
    if V.shape[1] != W.shape[0]:
        raise InvalidParameterError(f"V must have shape (K, M) with M = W.shape[0] = {W.shape[0]}, got {V.shape}")
    if V.shape[0] < 1:
        raise InvalidParameterError(f"the number of outputs K must be >= 1, got V.shape = {V.shape}")
    if d is not None and W.shape[1] != d:
        raise InvalidParameterError(f"W must have shape (M, d) with d = {d} (the input dimension), got {W.shape}")
    return W, V


# ---------------------------------------------------------------------------------------------- network
def init_params(d: int, M: int, K: int, seed: SeedLike = 0) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian initialisation: ``W`` (M, d) and ``V`` (K, M) with i.i.d. N(0, 1) entries.

    Raises
    ------
    InvalidParameterError
        If ``d, M < 1`` or ``K < 1``.
    """
    d = check_int("d", d, 1)
    M = check_int("M", M, 1)
    K = check_int("K", K, 1)
    rng = as_generator(seed)
    W = rng.standard_normal((M, d))
    V = rng.standard_normal((K, M))
    return W, V


def network_outputs(X, W, V, activation: str = "relu") -> np.ndarray:
    """Outputs ``f(X) = σ(X Wᵀ) Vᵀ / √M`` of shape (n, K) for inputs ``X`` (n, d)."""
    X = np.ascontiguousarray(check_finite_array("X", X, ndim=2))
    W, V = _check_weights(W, V, X.shape[1])
    out = np.empty((X.shape[0], V.shape[0]))
    _k.outputs(X, W, V, _act_code(activation), out)
    return out


def cross_correlation(FA, FB) -> np.ndarray:
    """``C = FAᵀ FB / N`` (K, K) from the embeddings of the two views, each (N, K)."""
    FA = check_finite_array("FA", FA, ndim=2)
    FB = check_finite_array("FB", FB, ndim=2)
    if FA.shape != FB.shape:
        raise InvalidParameterError(f"FA and FB must have the same shape, got {FA.shape} and {FB.shape}")
    return FA.T @ FB / FA.shape[0]


def barlow_loss(C, lam: float = 1.0) -> float:
    r"""Barlow Twins loss :math:`\sum_k (1-C_{kk})^2 + \lambda\sum_{k\ne l} C_{kl}^2` of a (K, K) matrix."""
    C = np.ascontiguousarray(check_finite_array("C", C, ndim=2))
    if C.shape[0] != C.shape[1] or C.shape[0] < 1:
        raise InvalidParameterError(f"C must be a square (K, K) matrix with K >= 1, got {C.shape}")
    return float(_k.loss_of_C(C, check_range("lam", lam, 0.0)))


def loss_and_gradient(X, Xp, W, V, *, lam: float = 1.0, activation: str = "relu"):
    """Loss and analytic gradient on the pairs ``(X, Xp)``.

    Returns
    -------
    loss : float
    gW : ndarray (M, d)
    gV : ndarray (K, M)
    """
    X, Xp = _check_pairs(X, Xp)
    W, V = _check_weights(W, V, X.shape[1])
    gW = np.empty_like(W)
    gV = np.empty_like(V)
    L, _ = _k.loss_and_grad(np.vstack([X, Xp]), W, V, X.shape[0], check_range("lam", lam, 0.0),
                            _act_code(activation), gW, gV)
    return float(L), gW, gV


def empirical_ntk(Z, W, V, activation: str = "relu") -> np.ndarray:
    r"""Empirical NTK Gram matrix :math:`\Theta = J J^\top` of shape (n K, n K) on inputs ``Z`` (n, d).

    Row/column ``i*K + k`` is input i, output k; :math:`J` is the Jacobian of all outputs w.r.t. all
    parameters ``(W, V)``.
    """
    Z = np.ascontiguousarray(check_finite_array("Z", Z, ndim=2))
    W, V = _check_weights(W, V, Z.shape[1])
    out = np.empty((Z.shape[0] * V.shape[0],) * 2)
    _k.empirical_ntk(Z, W, V, _act_code(activation), out)
    return out


def infinite_width_ntk(Z1, Z2=None, activation: str = "relu", *, method: str = "auto",
                       quadrature: int = 64) -> np.ndarray:
    r"""Infinite-width NTK :math:`\Theta_\infty(x, x') = \Sigma(x,x') + (x\cdot x')\dot\Sigma(x,x')` per output.

    The full kernel is :math:`\Theta_\infty \otimes I_K` (outputs decouple at infinite width).

    Parameters
    ----------
    Z1 : (n1, d), Z2 : (n2, d), optional (default ``Z1``)
    method : {"auto", "closed", "quadrature"}
        ``closed``: arc-cosine formulas (ReLU only); ``quadrature``: Gauss–Hermite with ``quadrature``
        nodes per dimension; ``auto``: closed form where it exists.
    """
    Z1 = np.ascontiguousarray(check_finite_array("Z1", Z1, ndim=2))
    Z2 = Z1 if Z2 is None else np.ascontiguousarray(check_finite_array("Z2", Z2, ndim=2))
    if Z1.shape[1] != Z2.shape[1]:
        raise InvalidParameterError(f"Z1 and Z2 must have the same input dimension, got {Z1.shape} and {Z2.shape}")
    code = _act_code(activation)
    if method not in ("auto", "closed", "quadrature"):
        raise InvalidParameterError(f"method must be 'auto', 'closed' or 'quadrature', got {method!r}")
    if method == "closed" and activation != "relu":
        raise InvalidParameterError(f"no closed form for activation {activation!r}; use method='quadrature'")
    Sig = np.empty((Z1.shape[0], Z2.shape[0]))
    dSig = np.empty_like(Sig)
    if activation == "relu" and method != "quadrature":
        _k.relu_kernels(Z1, Z2, Sig, dSig)
    else:
        q = check_int("quadrature", quadrature, 2, 400)
        x, w = np.polynomial.hermite_e.hermegauss(q)
        _k.gh_kernels(Z1, Z2, code, x, w / w.sum(), Sig, dSig)
    return Sig + (Z1 @ Z2.T) * dSig


def infinite_width_ntk_diag(Z, activation: str = "relu", *, quadrature: int = 128) -> np.ndarray:
    r"""Diagonal :math:`\Theta_\infty(z_i, z_i)` (n,) of :func:`infinite_width_ntk`, in O(n)."""
    Z = np.ascontiguousarray(check_finite_array("Z", Z, ndim=2))
    code = _act_code(activation)
    if activation == "relu":
        # arc-cosine at theta = 0: Sigma = |z|^2 / 2, Sigmadot = 1/2
        return np.sum(Z * Z, axis=1)
    q = check_int("quadrature", quadrature, 2, 400)
    x, w = np.polynomial.hermite_e.hermegauss(q)
    Sig = np.empty(Z.shape[0])
    dSig = np.empty_like(Sig)
    _k.gh_diag(Z, code, x, w / w.sum(), Sig, dSig)
    return Sig + np.sum(Z * Z, axis=1) * dSig


# ---------------------------------------------------------------------------------------------- training
@dataclass(frozen=True)
class TrainResult:
    """Outcome of :func:`train_network`.

    ``t`` (n_rec,) gradient-flow times (step × lr) of the records, ``loss`` (n_rec,) full-batch losses,
    ``C`` (n_rec, K, K) cross-correlations, ``W``/``V`` the final weights.
    """

    t: np.ndarray
    loss: np.ndarray
    C: np.ndarray
    W: np.ndarray
    V: np.ndarray


def train_network(X, Xp, W0, V0, *, lam: float = 1.0, activation: str = "relu", lr: float = 0.05,
                  n_steps: int = 1000, record_every: int = 10, batch_size: int | None = None,
                  seed: SeedLike = 0) -> TrainResult:
    """Train by small-step gradient descent (gradient flow at time ``n_steps * lr``) or SGD.

    Parameters
    ----------
    X, Xp : (N, d)
        The two views of the N training pairs.
    W0, V0 : (M, d), (K, M)
        Initial weights (not modified).
    batch_size : int, optional
        Pairs per SGD step, drawn without replacement with ``seed``; the step follows the loss of the
        minibatch cross-correlation. ``None`` for full-batch gradient descent.
    """
    X, Xp = _check_pairs(X, Xp)
    W, V = _check_weights(W0, V0, X.shape[1])
    W, V = W.copy(), V.copy()
    lr = check_range("lr", lr, 0.0, low_open=True)
    n_steps = check_int("n_steps", n_steps, 0)
    record_every = check_int("record_every", record_every, 1)
    if n_steps % record_every:
        raise InvalidParameterError(f"n_steps ({n_steps}) must be a multiple of record_every ({record_every})")
    N = X.shape[0]
    if batch_size is None:
        batches = np.zeros((0, 0), dtype=np.int64)
    else:
        B = check_int("batch_size", batch_size, 1, N)
        rng = as_generator(seed)
        batches = np.stack([rng.choice(N, size=B, replace=False) for _ in range(n_steps)]) if n_steps else \
            np.zeros((0, 0), dtype=np.int64)
        batches = np.ascontiguousarray(batches, dtype=np.int64)
    n_rec = n_steps // record_every + 1
    K = V.shape[0]
    loss = np.empty(n_rec)
    C = np.empty((n_rec, K, K))
    _k.train(np.vstack([X, Xp]), W, V, N, check_range("lam", lam, 0.0), _act_code(activation), lr, n_steps,
             batches, record_every, loss, C)
    if not np.all(np.isfinite(loss)):
        raise SolveError(f"training diverged (non-finite loss); lower lr (got {lr})")
    return TrainResult(t=np.arange(n_rec) * record_every * lr, loss=loss, C=C, W=W, V=V)


# ---------------------------------------------------------------------------------------------- kernel model
class KernelFlowSystem:
    """The function-space flow as a compiled system for :func:`theorykit.solve.solve`.

    Its right-hand side is the numba kernel ``kernel_flow_rhs_into`` (matrix form of the SymPy-derived
    flow, checked against it in the tests); parameters are packed as ``[N, K, lambda, Θ.ravel()]``.
    """

    backend = "numba"
    n_noise = 0

    def __init__(self, n: int, K: int):
        self.n, self.K = n, K
        self.n_states = n * K
        self.n_params = 3 + (n * K) ** 2
        self.state_names = tuple(f"f_{i}_{k}" for i in range(n) for k in range(K))
        self.param_names = ("N", "K", "lambda") + tuple(f"Theta_{a}" for a in range((n * K) ** 2))
        self.rhs_into = _k.kernel_flow_rhs_into

    def pack(self, N: int, lam: float, Theta: np.ndarray) -> np.ndarray:
        return np.concatenate([[float(N), float(self.K), float(lam)], np.ravel(Theta)])

    def pack_state(self, value) -> np.ndarray:
        return np.asarray(value, dtype=np.float64)

    def pack_params(self, value) -> np.ndarray:
        return np.asarray(value, dtype=np.float64)


@dataclass(frozen=True)
class KernelFlowResult:
    """Function-space trajectory of the linearised model: ``F`` (n_t, n, K) on all n inputs, ``loss`` (n_t,)."""

    t: np.ndarray
    F: np.ndarray
    loss: np.ndarray


def kernel_flow(F0, Theta, N: int, t_eval, *, lam: float = 1.0, rtol: float = 1e-8,
                atol: float = 1e-10) -> KernelFlowResult:
    r"""Integrate :math:`\dot f = -\Theta\,\partial L/\partial f` (the linearised network) in function space.

    Parameters
    ----------
    F0 : (n, K)
        Outputs at initialisation; rows ``0..N-1`` first views, ``N..2N-1`` second views of the training
        pairs, further rows evaluation inputs that do not enter the loss.
    Theta : (n K, n K)
        NTK Gram matrix (index ``i*K + k``), e.g. :func:`empirical_ntk` at initialisation or
        ``np.kron(infinite_width_ntk(Z), np.eye(K))``.
    t_eval : (n_t,) increasing times starting at 0.
    """
    F0 = np.ascontiguousarray(check_finite_array("F0", F0, ndim=2))
    n, K = F0.shape
    N = check_int("N", N, 1)
    if 2 * N > n:
        raise InvalidParameterError(f"F0 must have at least 2N = {2 * N} rows, got {n}")
    Theta = np.ascontiguousarray(check_finite_array("Theta", Theta, shape=(n * K, n * K)))
    t_eval = check_finite_array("t_eval", t_eval, ndim=1)
    lam = check_range("lam", lam, 0.0)
    csys = KernelFlowSystem(n, K)
    sol = solve(csys, F0.ravel(), (float(t_eval[0]), float(t_eval[-1])), csys.pack(N, lam, Theta),
                method="dopri5", t_eval=t_eval, rtol=rtol, atol=atol, blow_up=np.inf)
    F = sol.y.reshape(len(t_eval), n, K)
    loss = np.array([barlow_loss(Fi[:N].T @ Fi[N:2 * N] / N, lam) for Fi in F])
    return KernelFlowResult(t=sol.t, F=F, loss=loss)


def kernel_gd(F0, Theta, N: int, *, lr: float, n_steps: int, record_every: int = 1,
              lam: float = 1.0) -> KernelFlowResult:
    """Gradient descent of the linearised model, ``F <- F - lr Θ ∂L/∂F`` (same arguments as :func:`kernel_flow`).

    With the same ``lr`` and ``n_steps`` as :func:`train_network` this is the linearisation of the network's
    own discrete training, so network–kernel differences measure the linearisation error alone.
    """
    F0 = np.ascontiguousarray(check_finite_array("F0", F0, ndim=2))
    n, K = F0.shape
    N = check_int("N", N, 1)
    if 2 * N > n:
        raise InvalidParameterError(f"F0 must have at least 2N = {2 * N} rows, got {n}")
    Theta = np.ascontiguousarray(check_finite_array("Theta", Theta, shape=(n * K, n * K)))
    lr = check_range("lr", lr, 0.0, low_open=True)
    n_steps = check_int("n_steps", n_steps, 0)
    record_every = check_int("record_every", record_every, 1)
    if n_steps % record_every:
        raise InvalidParameterError(f"n_steps ({n_steps}) must be a multiple of record_every ({record_every})")
    n_rec = n_steps // record_every + 1
    F = np.empty((n_rec, n, K))
    loss = np.empty(n_rec)
    _k.kernel_gd(F0, Theta, N, check_range("lam", lam, 0.0), lr, n_steps, record_every, F, loss)
    return KernelFlowResult(t=np.arange(n_rec) * record_every * lr, F=F, loss=loss)


# ---------------------------------------------------------------------------------------------- data
def _project(X: np.ndarray, radius: float) -> np.ndarray:
    nrm = np.linalg.norm(X, axis=1, keepdims=True)
    return radius * X / np.maximum(nrm, 1e-300)


def augment(X, rng, *, noise: float = 0.3, mask: float = 0.0, radius: float = np.sqrt(2.0)) -> np.ndarray:
    """One augmented view: additive Gaussian noise (std ``noise`` per unit-norm input), random masking of a
    fraction ``mask`` of coordinates, then projection back to the sphere of radius ``radius``."""
    X = np.asarray(X, dtype=float)
    d = X.shape[1]
    Y = _project(X, 1.0) + noise / np.sqrt(d) * rng.standard_normal(X.shape)
    if mask > 0:
        Y = Y * (rng.random(X.shape) >= mask)
    return _project(Y, radius)


@dataclass(frozen=True)
class PairData:
    """Positive pairs: ``X``, ``Xp`` (n, d) the two views, ``labels`` (n,) the source cluster/class."""

    X: np.ndarray
    Xp: np.ndarray
    labels: np.ndarray


def gaussian_pairs(n: int, d: int, *, n_clusters: int = 4, spread: float = 0.6, noise: float = 0.3,
                   mask: float = 0.0, radius: float = np.sqrt(2.0), seed: SeedLike = 0,
                   centers_seed: int = 12345) -> PairData:
    """Synthetic Gaussian-mixture data on the sphere of radius ``radius``, two augmented views per point.

    Base points ``c_j + spread * g / sqrt(d)`` (``c_j`` unit cluster centres fixed by ``centers_seed``, so
    train and test sets share the distribution), each giving two independent views via :func:`augment`.
    """
    n = check_int("n", n, 1)
    d = check_int("d", d, 1)
    n_clusters = check_int("n_clusters", n_clusters, 1)
    spread = check_range("spread", spread, 0.0)
    noise = check_range("noise", noise, 0.0)
    mask = check_range("mask", mask, 0.0, 1.0, high_open=True)
    radius = check_range("radius", radius, 0.0, low_open=True)
    centers = _project(np.random.default_rng(centers_seed).standard_normal((n_clusters, d)), 1.0)
    rng = as_generator(seed)
    labels = rng.integers(0, n_clusters, size=n)
    base = centers[labels] + spread / np.sqrt(d) * rng.standard_normal((n, d))
    X = augment(base, rng, noise=noise, mask=mask, radius=radius)
    Xp = augment(base, rng, noise=noise, mask=mask, radius=radius)
    return PairData(X=X, Xp=Xp, labels=labels)


def digits_pairs(n: int, *, noise: float = 0.3, mask: float = 0.1, radius: float = np.sqrt(2.0),
                 seed: SeedLike = 0, subset: str = "train") -> PairData:
    """Handwritten 8x8 digits (scikit-learn's bundled ``load_digits``, no download), two augmented views each.

    Images are centred by the mean image; ``subset`` ``"train"`` draws from the first 1200 images,
    ``"test"`` from the rest, so the two never overlap. Needs ``pip install theorykit[digits]``.
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:  # optional extra
        raise ImportError("the digits data set needs scikit-learn: pip install 'theorykit[digits]'") from exc
    n = check_int("n", n, 1)
    if subset not in ("train", "test"):
        raise InvalidParameterError(f"subset must be 'train' or 'test', got {subset!r}")
    data = load_digits()
    Xall = data.data.astype(float)
    Xall = Xall - Xall.mean(axis=0)
    idx = np.arange(1200) if subset == "train" else np.arange(1200, Xall.shape[0])
    if n > idx.size:
        raise InvalidParameterError(f"n must be <= {idx.size} for the {subset!r} digits subset, got {n}")
    rng = as_generator(seed)
    pick = rng.choice(idx, size=n, replace=False)
    base = Xall[pick]
    X = augment(base, rng, noise=noise, mask=mask, radius=radius)
    Xp = augment(base, rng, noise=noise, mask=mask, radius=radius)
    return PairData(X=X, Xp=Xp, labels=data.target[pick])
