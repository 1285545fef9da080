"""The data model and the encoder: feature directions, positive pairs of sparse-coded tokens, the Transformer-MLP
forward pass, the InfoNCE loss with its gradients, and magnitude-pruning masks.

The public functions validate their arguments, draw and allocate; the numerical work happens in
:mod:`._kernels`.
"""

from __future__ import annotations

import numpy as np

from ..._checks import check_int, check_range
from ..._random import SeedLike, as_generator, spawn_seeds
from ...errors import InvalidParameterError
from ...simulate import single_threaded_blas
from . import _kernels as K
from ._config import Config


# ------------------------------------------------------------------------------------------------ data
def feature_matrix(cfg: Config, seed: SeedLike = 0) -> np.ndarray:
    """float64[d, d1]: the orthonormal feature directions ``M_j`` as rows (the columns of the paper's
    ``d1 x d`` matrix), majority features first."""
    if cfg.basis == "coordinate":
        return np.ascontiguousarray(np.eye(cfg.d1)[: cfg.d])
    q, _ = np.linalg.qr(as_generator(seed).standard_normal((cfg.d1, cfg.d1)))
    return np.ascontiguousarray(q[:, : cfg.d].T)


def uniform(rng: np.random.Generator, out: np.ndarray) -> None:
    """Fill ``out`` with uniforms on [0, 1) (the draw of the feature codes' stream)."""
    rng.random(out=out)


def sample_pairs(cfg: Config, n: int, seed: SeedLike, *, M: np.ndarray | None = None,
                 probs: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw ``n`` positive pairs ``(X, Y)`` float64[n, L, d1] and their signed codes ``z`` float64[n, L, d].

    ``probs`` (float64[d], each in [0, 1]) overrides :math:`\\Pr(z_j\\ne0)` (e.g. a balanced test set).
    """
    n = check_int("n", n, 1)
    M = feature_matrix(cfg) if M is None else M
    probs = cfg.feature_probs() if probs is None else np.asarray(probs, dtype=np.float64)
    if probs.shape != (cfg.d,) or np.any(probs < 0) or np.any(probs > 1):
        raise InvalidParameterError(f"probs must be {cfg.d} probabilities in [0, 1], got {probs!r}")
    s = spawn_seeds(seed, 2)
    T = n * cfg.n_tokens
    u, xi = as_generator(int(s[0])).random((T, cfg.d)), as_generator(int(s[1])).standard_normal((2, T, cfg.d1))
    XY, Z = np.empty((2 * T, cfg.d1)), np.empty((T, cfg.d))
    K.tokens_from_draws(u, xi, np.ascontiguousarray(M, dtype=np.float64), probs, cfg.sigma, XY, Z)
    shape = (n, cfg.n_tokens)
    return XY[:T].reshape(*shape, cfg.d1), XY[T:].reshape(*shape, cfg.d1), Z.reshape(*shape, cfg.d)


# ------------------------------------------------------------------------------------------------ encoder
def bias_of(cfg: Config, W: np.ndarray) -> np.ndarray:
    """float64[m] BReLU thresholds ``bias_scale * sigma * ||w_i||`` of the forward weights ``W``."""
    b = np.empty(W.shape[0])
    K.neuron_bias(np.ascontiguousarray(W, dtype=np.float64), cfg.bias_scale * cfg.sigma, b)
    return b


def _attention_arg(cfg: Config, A: np.ndarray | None, name: str = "A") -> np.ndarray | None:
    """``None`` (the fixed ``beta I`` kernels) or ``A`` as a C-contiguous float64[d1, d1] array."""
    if A is None:
        return None
    A = np.ascontiguousarray(A, dtype=np.float64)
    if A.shape != (cfg.d1, cfg.d1):
        raise InvalidParameterError(f"{name} must have shape {(cfg.d1, cfg.d1)}, got {A.shape}")
    return A


def _tokens(cfg: Config, X: np.ndarray, name: str = "X") -> np.ndarray:
    """``X`` float64[N, L, d1] as the 2-d token array float64[N L, d1] of the kernels."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 3 or X.shape[1:] != (cfg.n_tokens, cfg.d1):
        raise InvalidParameterError(f"{name} must have shape (N, {cfg.n_tokens}, {cfg.d1}), got {X.shape}")
    return np.ascontiguousarray(X.reshape(-1, cfg.d1))


def encode(cfg: Config, W: np.ndarray, X: np.ndarray, A: np.ndarray | None = None) -> np.ndarray:
    """Representations ``f(X)`` float64[N, m] of inputs ``X`` float64[N, L, d1] with forward weights ``W``.

    ``A`` float64[d1, d1] is the attention score matrix; ``None`` (default) means the fixed ``beta I``.
    """
    W = np.ascontiguousarray(W, dtype=np.float64)
    X2 = _tokens(cfg, X)
    A = _attention_arg(cfg, A)
    F = np.empty((X2.shape[0] // cfg.n_tokens, W.shape[0]))
    with single_threaded_blas():
        if A is None:
            K.encode(X2, W, bias_of(cfg, W), cfg.beta, cfg.n_tokens, F)
        else:
            K.encode_attention(X2, W, bias_of(cfg, W), A, cfg.n_tokens, F)
    return F


def loss_and_grad(cfg: Config, W: np.ndarray, X: np.ndarray, Y: np.ndarray,
                  bias: np.ndarray | None = None, *, W_sg: np.ndarray | None = None,
                  bias_sg: np.ndarray | None = None, A: np.ndarray | None = None,
                  A_sg: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """InfoNCE loss (stop-gradient on ``Y``, biases held fixed) plus ``lam/2 ||W||^2``, and its gradient
    float64[m, d1] in the forward weights ``W``.

    ``W_sg`` / ``bias_sg`` (default ``W`` / ``bias``) are the frozen weights of the stop-gradient branch.
    ``A`` / ``A_sg`` (float64[d1, d1]) are the attention score matrices of the two branches; ``A=None``
    (default) means the fixed ``beta I`` for both, and ``A_sg`` defaults to ``A``. For the gradient in ``A``
    as well see :func:`loss_and_attention_grad`.
    """
    loss, grad, _ = _loss_grads(cfg, W, X, Y, bias, W_sg, bias_sg, A, A_sg, False)
    return loss, grad


def loss_and_attention_grad(cfg: Config, W: np.ndarray, A: np.ndarray, X: np.ndarray, Y: np.ndarray,
                            bias: np.ndarray | None = None, *, W_sg: np.ndarray | None = None,
                            bias_sg: np.ndarray | None = None, A_sg: np.ndarray | None = None
                            ) -> tuple[float, np.ndarray, np.ndarray]:
    """The loss of :func:`loss_and_grad` with scores ``x_r^T A x_s`` and its gradients in ``W`` (float64[m, d1])
    and in ``A`` (float64[d1, d1]); with frozen copies for the ``Y`` branch they are the derivatives of the
    returned loss.

    Raises
    ------
    InvalidParameterError
        If ``A`` or ``A_sg`` is not ``d1 x d1``.
    """
    if A is None:
        raise InvalidParameterError("A must be a (d1, d1) attention matrix, got None")
    return _loss_grads(cfg, W, X, Y, bias, W_sg, bias_sg, A, A_sg, True)


def _loss_grads(cfg, W, X, Y, bias, W_sg, bias_sg, A, A_sg, want_A):
    """Shared body of :func:`loss_and_grad` and :func:`loss_and_attention_grad`: ``(loss, grad_W, grad_A)``."""
    W = np.ascontiguousarray(W, dtype=np.float64)
    X2, Y2 = _tokens(cfg, X), _tokens(cfg, Y, "Y")
    L, T, m = cfg.n_tokens, X2.shape[0], W.shape[0]
    if Y2.shape != X2.shape:
        raise InvalidParameterError(f"X and Y must have the same shape, got {X.shape} and {Y.shape}")
    A = _attention_arg(cfg, A)
    A_sg = A if A_sg is None else _attention_arg(cfg, A_sg, "A_sg")
    if A is None and A_sg is not None:
        raise InvalidParameterError("A_sg needs A (the attention matrix of the first branch)")
    bias = bias_of(cfg, W) if bias is None else np.ascontiguousarray(bias, dtype=np.float64)
    W_sg = W if W_sg is None else np.ascontiguousarray(W_sg, dtype=np.float64)
    bias_sg = bias if bias_sg is None else np.ascontiguousarray(bias_sg, dtype=np.float64)
    XY = np.concatenate([X2, Y2])
    UXY = np.empty_like(XY)
    P = np.empty((T, L))
    B = T // L
    S, HX, HY, G = np.empty((2 * T, m)), np.empty((B, m)), np.empty((B, m)), np.empty((B, m))
    gS, grad = np.empty((T, m)), np.empty_like(W)
    grad_A = np.empty((cfg.d1, cfg.d1)) if want_A else None
    with single_threaded_blas():
        if A is None:
            K.attention_scaled(XY[:T], L, cfg.beta, UXY[:T])
            K.attention_scaled(XY[T:], L, cfg.beta, UXY[T:])
        else:
            K.attention_general(XY[:T], L, A, UXY[:T], P)
            K.attention_general(XY[T:], L, A_sg, UXY[T:], np.empty((T, L)))
        loss = K.loss_grad_core(UXY, W, bias, W_sg, bias_sg, False, L, cfg.tau, S, HX, HY, G, gS, grad)
        if want_A:
            K.attention_grad(XY[:T], UXY[:T], P, W, bias, S, G, L, grad_A)
    grad += cfg.lam * W
    return float(loss + 0.5 * cfg.lam * np.sum(W * W)), grad, grad_A


def magnitude_prune(W: np.ndarray, rate: float, mode: str = "weight", mask: np.ndarray | None = None) -> np.ndarray:
    """Mask float64[m, d1] (1 = kept) removing the fraction ``rate`` of smallest-magnitude units.

    ``mode="weight"`` masks ``floor(rate * n_alive)`` entries with the smallest ``|W_ic|``; ``mode="neuron"``
    masks ``floor(rate * m_alive)`` whole neurons with the smallest ``||w_i||``. Units already removed by
    ``mask`` are not counted again. The mask of every step of Algorithm 1 (:func:`._simulate.simulate_sgd`) is this one.

    Raises
    ------
    InvalidParameterError
        If ``rate`` is outside [0, 1) or ``mode`` is unknown.
    """
    rate = check_range("prune_rate", rate, 0.0, 1.0, high_open=True)
    if mode not in ("weight", "neuron"):
        raise InvalidParameterError(f"prune mode must be 'weight' or 'neuron', got {mode!r}")
    W = np.ascontiguousarray(W, dtype=np.float64)
    eligible = np.ones_like(W) if mask is None else np.ascontiguousarray(mask, dtype=np.float64)
    out = np.empty_like(W)
    K.magnitude_mask(W, rate, mode == "neuron", eligible, out)
    return out


__all__ = ["feature_matrix", "uniform", "sample_pairs", "bias_of", "encode", "loss_and_grad", "loss_and_attention_grad",
           "magnitude_prune"]
