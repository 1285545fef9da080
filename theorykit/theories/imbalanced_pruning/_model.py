"""Data model, Transformer-MLP encoder, SGD training with magnitude pruning, and the paper's metrics.

The public functions validate their arguments, draw seeds and allocate; the numerical work happens in
:mod:`._kernels`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Literal

import numpy as np

from ..._checks import check_int, check_range
from ..._random import SeedLike, as_generator, spawn_seeds
from ...errors import InvalidParameterError
from . import _kernels as K

COS_THRESHOLD = 0.3  #: the paper's threshold on |cos(w_i, M_j)| for counting a neuron as learning M_j


@dataclass(frozen=True)
class Config:
    r"""Settings of one training run.

    Parameters
    ----------
    d : int
        Input (token) dimension.
    n_major, n_minor : int
        Numbers of majority and minority features; ``n_major + n_minor <= d``.
    p : float
        Per-token probability of each majority feature, in (0, 1).
    eps_min : float
        Minority frequency ratio :math:`\varepsilon_{\min}\in(0,1)`: each minority feature appears in a
        token with probability ``eps_min * p``.
    nsr : float
        Noise-to-signal ratio :math:`\ge 0`: the noise of a token has expected norm ``nsr`` (features
        have unit norm), i.e. standard deviation ``nsr / sqrt(d)`` per coordinate.
    n_tokens : int
        Tokens per input ``L``.
    width : int
        MLP neurons ``m``.
    beta : float
        Attention inverse temperature: the score matrix is ``A = W_Q^T W_K = beta I`` (``W_V = I``), fixed
        or, with ``attention="trained"``, the initial value of ``A``.
    tau : float
        InfoNCE temperature.
    lam : float
        L2 regularisation :math:`\lambda`.
    eta : float
        SGD step size :math:`\eta`.
    kappa : float
        BReLU threshold in units of the noise standard deviation of a neuron's pre-activation:
        :math:`b_i = \kappa\,\sigma\,\|w_i\|`.
    batch : int
        Batch size (the other ``batch - 1`` second views are the negatives).
    steps : int
        SGD steps.
    init_scale : float
        Initial weights are i.i.d. ``N(0, init_scale^2 / d)``.
    record_every : int
        Record projections every this many steps.
    prune_rate : float
        Fraction of MLP neurons removed by magnitude pruning, in [0, 1).
    prune_at : float
        Point of training (fraction of ``steps``) at which pruning happens, in (0, 1).
    prune_mode : {"neuron", "weight"}
        ``neuron``: remove the neurons with the smallest norms :math:`\|w_i\|`; ``weight``: zero the
        entries of the MLP weight matrix with the smallest magnitudes.
    basis : {"coordinate", "random"}
        Feature directions: the first ``K`` coordinate vectors, or ``K`` random orthonormal vectors.
    attention : {"fixed", "trained"}
        ``fixed``: the attention scores are :math:`\beta\,x_r^\top x_s` throughout (the setting of
        the population gradient). ``trained``: the score matrix :math:`A` in :math:`x_r^\top A x_s`
        (``d x d``, started at :math:`\beta I`, ``W_V = I``) is trained by SGD together with the MLP,
        through the first view only (stop-gradient on the second, biases held constant, no L2 term);
        pruning still acts on the MLP weights only.
    eta_attention : float or None
        SGD step size of :math:`A` when ``attention="trained"``, > 0; ``None`` uses ``eta``.
    """

    d: int = 32
    n_major: int = 4
    n_minor: int = 4
    p: float = 0.1
    eps_min: float = 0.2
    nsr: float = 1.0
    n_tokens: int = 3
    width: int = 48
    beta: float = 4.0
    tau: float = 0.5
    lam: float = 1e-3
    eta: float = 0.05
    kappa: float = 1.5
    batch: int = 32
    steps: int = 3000
    init_scale: float = 0.1
    record_every: int = 20
    prune_rate: float = 0.0
    prune_at: float = 0.3
    prune_mode: Literal["neuron", "weight"] = "neuron"
    basis: Literal["coordinate", "random"] = "coordinate"
    attention: Literal["fixed", "trained"] = "fixed"
    eta_attention: float | None = None

    def __post_init__(self) -> None:
        check_int("d", self.d, 2)
        check_int("n_major", self.n_major, 1)
        check_int("n_minor", self.n_minor, 0)
        if self.n_major + self.n_minor > self.d:
            raise InvalidParameterError(
                f"n_major + n_minor must be <= d (orthonormal features), got {self.n_major + self.n_minor} > {self.d}")
        check_range("p", self.p, 0.0, 1.0, low_open=True, high_open=True)
        check_range("eps_min", self.eps_min, 0.0, 1.0, low_open=True, high_open=True)
        check_range("nsr", self.nsr, 0.0)
        check_int("n_tokens", self.n_tokens, 1)
        check_int("width", self.width, 1)
        check_range("beta", self.beta, 0.0)
        check_range("tau", self.tau, 0.0, low_open=True)
        check_range("lam", self.lam, 0.0)
        check_range("eta", self.eta, 0.0, low_open=True)
        check_range("kappa", self.kappa, 0.0)
        check_int("batch", self.batch, 2)
        check_int("steps", self.steps, 1)
        check_range("init_scale", self.init_scale, 0.0, low_open=True)
        check_int("record_every", self.record_every, 1)
        check_range("prune_rate", self.prune_rate, 0.0, 1.0, high_open=True)
        check_range("prune_at", self.prune_at, 0.0, 1.0, low_open=True, high_open=True)
        if self.prune_mode not in ("neuron", "weight"):
            raise InvalidParameterError(f"prune_mode must be 'neuron' or 'weight', got {self.prune_mode!r}")
        if self.basis not in ("coordinate", "random"):
            raise InvalidParameterError(f"basis must be 'coordinate' or 'random', got {self.basis!r}")
        if self.attention not in ("fixed", "trained"):
            raise InvalidParameterError(f"attention must be 'fixed' or 'trained', got {self.attention!r}")
        if self.eta_attention is not None:
            check_range("eta_attention", self.eta_attention, 0.0, math.inf, low_open=True, high_open=True)
        total = self.p * (self.n_major + self.eps_min * self.n_minor)
        if total > 1.0:
            raise InvalidParameterError(
                f"feature probabilities must sum to <= 1 per token: p*(n_major + eps_min*n_minor) = {total:.3g}")

    @property
    def n_features(self) -> int:
        return self.n_major + self.n_minor

    @property
    def sigma(self) -> float:
        """Noise standard deviation per coordinate, ``nsr / sqrt(d)``."""
        return self.nsr / math.sqrt(self.d)

    @property
    def attention_step(self) -> float:
        """Step size of the attention matrix: ``eta_attention``, or ``eta`` when that is ``None``."""
        return self.eta if self.eta_attention is None else float(self.eta_attention)

    def initial_attention(self) -> np.ndarray:
        """float64[d, d]: the attention score matrix ``beta I`` (fixed, or the start of training)."""
        return self.beta * np.eye(self.d)

    def feature_probs(self) -> np.ndarray:
        """float64[K]: per-token probability of each feature (majority first, then minority)."""
        return np.array([self.p] * self.n_major + [self.eps_min * self.p] * self.n_minor)

    def with_(self, **changes) -> "Config":
        return replace(self, **changes)

    def as_dict(self) -> dict:
        return asdict(self)


def feature_matrix(cfg: Config, seed: SeedLike = 0) -> np.ndarray:
    """float64[K, d] orthonormal feature directions ``M_j`` (rows), majority features first."""
    if cfg.basis == "coordinate":
        return np.ascontiguousarray(np.eye(cfg.d)[: cfg.n_features])
    q, _ = np.linalg.qr(as_generator(seed).standard_normal((cfg.d, cfg.d)))
    return np.ascontiguousarray(q[:, : cfg.n_features].T)


def sample_pairs(cfg: Config, n: int, seed: SeedLike, *, M: np.ndarray | None = None,
                 probs: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw ``n`` positive pairs ``(X, Y)`` float64[n, L, d] and signed codes int64[n, L].

    ``probs`` (float64[K]) overrides the per-token feature probabilities (e.g. a balanced test set).
    """
    n = check_int("n", n, 1)
    M = feature_matrix(cfg) if M is None else M
    probs = cfg.feature_probs() if probs is None else np.asarray(probs, dtype=np.float64)
    if probs.shape != (cfg.n_features,) or np.any(probs < 0) or probs.sum() > 1 + 1e-12:
        raise InvalidParameterError(f"probs must be {cfg.n_features} non-negative numbers summing to <= 1")
    X = np.empty((n, cfg.n_tokens, cfg.d))
    Y = np.empty_like(X)
    codes = np.empty((n, cfg.n_tokens), dtype=np.int64)
    K.seed_numba(int(spawn_seeds(seed, 1)[0] % (2**32)))
    K.sample_tokens(M, np.cumsum(probs), cfg.sigma, X, Y, codes)
    return X, Y, codes


def bias_of(cfg: Config, W: np.ndarray) -> np.ndarray:
    """float64[m] BReLU thresholds ``b_i = kappa sigma ||w_i||``."""
    b = np.empty(W.shape[0])
    K.neuron_bias(np.ascontiguousarray(W, dtype=np.float64), cfg.kappa * cfg.sigma, b)
    return b


def _attention_arg(cfg: Config, A: np.ndarray | None, name: str = "A") -> np.ndarray | None:
    """``None`` (the fixed ``beta I`` kernels) or ``A`` as a C-contiguous float64[d, d] array."""
    if A is None:
        return None
    A = np.ascontiguousarray(A, dtype=np.float64)
    if A.shape != (cfg.d, cfg.d):
        raise InvalidParameterError(f"{name} must have shape {(cfg.d, cfg.d)}, got {A.shape}")
    return A


def encode(cfg: Config, W: np.ndarray, X: np.ndarray, A: np.ndarray | None = None) -> np.ndarray:
    """Representations ``f(X)`` float64[N, m] of inputs ``X`` float64[N, L, d].

    ``A`` float64[d, d] is the attention score matrix; ``None`` (default) means the fixed ``beta I``,
    computed by the cheaper fixed-attention kernel.
    """
    W = np.ascontiguousarray(W, dtype=np.float64)
    X = np.ascontiguousarray(X, dtype=np.float64)
    A = _attention_arg(cfg, A)
    F = np.empty((X.shape[0], W.shape[0]))
    if A is None:
        K.encode(X, W, bias_of(cfg, W), cfg.beta, F)
    else:
        K.encode_attention(X, W, bias_of(cfg, W), A, F)
    return F


def loss_and_grad(cfg: Config, W: np.ndarray, X: np.ndarray, Y: np.ndarray,
                  bias: np.ndarray | None = None, *, W_sg: np.ndarray | None = None,
                  bias_sg: np.ndarray | None = None, A: np.ndarray | None = None,
                  A_sg: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """InfoNCE loss (stop-gradient on ``Y``, biases held fixed) and its gradient float64[m, d] in ``W``.

    ``W_sg`` / ``bias_sg`` (default ``W`` / ``bias``) are the frozen weights of the stop-gradient branch.
    ``A`` / ``A_sg`` (float64[d, d]) are the attention score matrices of the two branches; ``A=None``
    (default) means the fixed ``beta I`` for both, computed by the fixed-attention kernel, and ``A_sg``
    defaults to ``A``. For the gradient in ``A`` as well see :func:`loss_and_attention_grad`.
    """
    loss, grad, _ = _loss_grads(cfg, W, X, Y, bias, W_sg, bias_sg, A, A_sg, False)
    return loss, grad


def loss_and_attention_grad(cfg: Config, W: np.ndarray, A: np.ndarray, X: np.ndarray, Y: np.ndarray,
                            bias: np.ndarray | None = None, *, W_sg: np.ndarray | None = None,
                            bias_sg: np.ndarray | None = None, A_sg: np.ndarray | None = None
                            ) -> tuple[float, np.ndarray, np.ndarray]:
    r"""InfoNCE loss and its gradients in ``W`` (float64[m, d]) and in the attention matrix ``A`` (float64[d, d]).

    The loss is the one of :func:`loss_and_grad` with scores :math:`x_r^\top A x_s`; the ``Y`` branch uses
    the frozen ``W_sg`` / ``bias_sg`` / ``A_sg`` (default ``W`` / ``bias`` / ``A``), so with frozen copies the
    returned gradients are the derivatives of the returned loss. This is the update of a trained-attention
    run (``Config.attention="trained"``).

    Raises
    ------
    InvalidParameterError
        If ``A`` or ``A_sg`` is not ``d x d``.
    """
    if A is None:
        raise InvalidParameterError("A must be a (d, d) attention matrix, got None")
    return _loss_grads(cfg, W, X, Y, bias, W_sg, bias_sg, A, A_sg, True)


def _loss_grads(cfg, W, X, Y, bias, W_sg, bias_sg, A, A_sg, want_A):
    """Shared body of :func:`loss_and_grad` and :func:`loss_and_attention_grad`: ``(loss, grad_W, grad_A)``,
    ``grad_A`` None unless ``want_A``; ``A=None`` runs the fixed ``beta I`` kernels."""
    W = np.ascontiguousarray(W, dtype=np.float64)
    X = np.ascontiguousarray(X, dtype=np.float64)
    Y = np.ascontiguousarray(Y, dtype=np.float64)
    B, L, d = X.shape
    m = W.shape[0]
    A = _attention_arg(cfg, A)
    A_sg = A if A_sg is None else _attention_arg(cfg, A_sg, "A_sg")
    if A is None and A_sg is not None:
        raise InvalidParameterError("A_sg needs A (the attention matrix of the first branch)")
    bias = bias_of(cfg, W) if bias is None else np.ascontiguousarray(bias, dtype=np.float64)
    UX = np.empty_like(X)
    UY = np.empty_like(Y)
    PX = np.empty((B, L, L))
    if A is None:
        K.attention(X, cfg.beta, UX)
        K.attention(Y, cfg.beta, UY)
    else:
        K.attention_general(X, A, UX, PX)
        K.attention_general(Y, A_sg, UY, np.empty((Y.shape[0], L, L)))
    W_sg = W if W_sg is None else np.ascontiguousarray(W_sg, dtype=np.float64)
    bias_sg = bias if bias_sg is None else np.ascontiguousarray(bias_sg, dtype=np.float64)
    grad = np.empty_like(W)
    SX, HX, SY, HY = np.empty((B, L, m)), np.empty((B, m)), np.empty((Y.shape[0], L, m)), np.empty((Y.shape[0], m))
    loss = K.loss_grad(UX, UY, W, bias, W_sg, bias_sg, cfg.tau, cfg.lam, SX, HX, SY, HY, grad)
    grad_A = None
    if want_A:
        grad_A = np.empty((d, d))
        K.attention_grad(X, UX, PX, W, bias, SX, HX, HY, cfg.tau, grad_A)
    return float(loss), grad, grad_A


def magnitude_prune(W: np.ndarray, rate: float, mode: str = "neuron",
                    mask: np.ndarray | None = None) -> np.ndarray:
    """Mask float64[m, d] (1 = kept) removing the fraction ``rate`` of smallest-magnitude units.

    ``mode="neuron"`` removes ``floor(rate * m_alive)`` whole neurons with the smallest ``||w_i||``;
    ``mode="weight"`` zeroes ``floor(rate * n_alive)`` entries with the smallest ``|W_ik|``. Units
    already removed by ``mask`` are not counted again. Ties are broken by index (stable sort).

    Raises
    ------
    InvalidParameterError
        If ``rate`` is outside [0, 1) or ``mode`` is unknown.
    """
    rate = check_range("prune_rate", rate, 0.0, 1.0, high_open=True)
    W = np.asarray(W, dtype=np.float64)
    mask = np.ones_like(W) if mask is None else np.array(mask, dtype=np.float64)
    if mode == "neuron":
        alive = np.flatnonzero(mask.any(axis=1))
        k = int(math.floor(rate * alive.size))
        norms = np.linalg.norm(W[alive] * mask[alive], axis=1)
        drop = alive[np.argsort(norms, kind="stable")[:k]]
        mask[drop] = 0.0
    elif mode == "weight":
        flat = mask.reshape(-1)
        alive = np.flatnonzero(flat)
        k = int(math.floor(rate * alive.size))
        mags = np.abs(W.reshape(-1)[alive])
        flat[alive[np.argsort(mags, kind="stable")[:k]]] = 0.0
    else:
        raise InvalidParameterError(f"prune mode must be 'neuron' or 'weight', got {mode!r}")
    return mask


@dataclass(frozen=True)
class Run:
    """One training run: recorded projections and the final weights.

    Attributes
    ----------
    steps : int64[n_rec]
        SGD steps of the records.
    proj : float64[n_rec, m, K]
        ``<w_i, M_j>`` over training.
    noise : float64[n_rec, m]
        Norm of ``w_i`` outside span(M) over training.
    loss : float64[n_rec]
        Batch loss at the recorded steps.
    W : float64[m, d]
        Final weights (pruned entries are 0).
    mask : float64[m, d]
        1 for kept weights.
    M : float64[K, d]
        Feature directions.
    prune_step : int or None
        Step at which pruning happened.
    seed : int
        The integer seed of :func:`train` (``-1`` for a Generator).
    attention_matrix : float64[d, d]
        Final attention score matrix ``A`` (``beta I`` when ``config.attention == "fixed"``).
    W_at_prune : float64[m, d] or None
        The weights just before pruning (``None`` without pruning): the common state of a pruned run and
        its unpruned twin of the same seed.
    """

    config: Config
    steps: np.ndarray
    proj: np.ndarray
    noise: np.ndarray
    loss: np.ndarray
    W: np.ndarray
    mask: np.ndarray
    M: np.ndarray
    prune_step: int | None
    seed: int
    attention_matrix: np.ndarray
    W_at_prune: np.ndarray | None = None

    @property
    def alive(self) -> np.ndarray:
        """bool[m]: neurons not removed by pruning."""
        return self.mask.any(axis=1)

    @property
    def attention(self) -> np.ndarray | None:
        """The attention argument of :func:`encode`: ``None`` (fixed ``beta I``) or the trained ``A``."""
        return self.attention_matrix if self.config.attention == "trained" else None


def init_weights(cfg: Config, seed: SeedLike) -> np.ndarray:
    """float64[m, d] initial MLP weights, i.i.d. ``N(0, init_scale^2 / d)``."""
    return as_generator(seed).standard_normal((cfg.width, cfg.d)) * (cfg.init_scale / math.sqrt(cfg.d))


def train(cfg: Config, seed: SeedLike = 0, *, W0: np.ndarray | None = None) -> Run:
    """Train the Transformer-MLP encoder by SGD on the InfoNCE loss, pruning once if ``prune_rate > 0``.

    Parameters
    ----------
    cfg : Config
        Settings.
    seed : int or Generator
        Seeds the features (random basis), initial weights and the data stream.
    W0 : float64[m, d], optional
        Initial weights (default :func:`init_weights`); the same ``seed`` with and without pruning gives
        the same run up to the pruning step.

    Returns
    -------
    Run

    Notes
    -----
    With ``cfg.attention == "trained"`` the attention matrix ``A`` (from ``beta I``) takes SGD steps of
    size ``cfg.attention_step`` on the same batches; the data stream is that of the fixed-attention run with the
    same seed. Fixed attention computes the scores as ``beta <x_r, x_s>`` (no matrix product with ``A``).
    """
    seeds = spawn_seeds(seed, 4)
    M = feature_matrix(cfg, int(seeds[0]))
    W = init_weights(cfg, int(seeds[1])) if W0 is None else np.array(W0, dtype=np.float64)
    if W.shape != (cfg.width, cfg.d):
        raise InvalidParameterError(f"W0 must have shape {(cfg.width, cfg.d)}, got {W.shape}")
    W = np.ascontiguousarray(W)
    mask = np.ones_like(W)
    n_rec = (cfg.steps + cfg.record_every - 1) // cfg.record_every + 1
    rec_proj = np.zeros((n_rec, cfg.width, cfg.n_features))
    rec_noise = np.zeros((n_rec, cfg.width))
    rec_loss = np.zeros(n_rec)
    prune_step = None
    W_at_prune = None
    if cfg.prune_rate > 0:
        # prune on a recording boundary so the record grid is the same with and without pruning
        prune_step = max(cfg.record_every, int(round(cfg.prune_at * cfg.steps / cfg.record_every)) * cfg.record_every)
        prune_step = min(prune_step, cfg.steps)
    cum_pi = np.cumsum(cfg.feature_probs())
    A = cfg.initial_attention()
    trained = cfg.attention == "trained"
    K.seed_numba(int(seeds[2] % (2**32)))
    row = 0
    chunks = [cfg.steps] if prune_step is None else [prune_step, cfg.steps - prune_step]
    for ci, n in enumerate(chunks):
        if ci == 1:
            W_at_prune = W.copy()
            mask = magnitude_prune(W, cfg.prune_rate, cfg.prune_mode)
            W *= mask
        if n > 0:
            row += K.train_chunk(W, A, mask, M, cum_pi, cfg.sigma, cfg.beta, cfg.tau, cfg.lam, cfg.eta,
                                 cfg.attention_step, cfg.kappa, cfg.batch, cfg.n_tokens, n, cfg.record_every,
                                 rec_proj, rec_noise, rec_loss, row, trained)
    # final state as the last record
    proj = np.empty((cfg.width, cfg.n_features))
    noise = np.empty(cfg.width)
    K.project(W, M, proj, noise)
    rec_proj[row], rec_noise[row] = proj, noise
    rec_loss[row] = rec_loss[row - 1] if row > 0 else np.nan
    row += 1
    steps = np.minimum(np.arange(row) * cfg.record_every, cfg.steps)
    steps[-1] = cfg.steps
    return Run(cfg, steps.astype(np.int64), rec_proj[:row], rec_noise[:row], rec_loss[:row], W, mask, M,
               prune_step, int(seed) if isinstance(seed, (int, np.integer)) else -1, A, W_at_prune)


# ---------------------------------------------------------------------------------------------- metrics
def cosines(W: np.ndarray, M: np.ndarray) -> np.ndarray:
    """float64[m_alive, K]: ``|<w_i, M_j>| / (||w_i|| ||M_j||)`` over non-zero neurons."""
    W = np.asarray(W, dtype=np.float64)
    norms = np.linalg.norm(W, axis=1)
    keep = norms > 0
    return np.abs(W[keep] @ M.T) / (norms[keep, None] * np.linalg.norm(M, axis=1)[None, :])


def feature_metrics(run: Run, threshold: float = COS_THRESHOLD) -> dict[str, float]:
    """Neuron-level statistics of the final weights, split into majority and minority features.

    Returns ``count_major`` / ``count_minor`` (mean over features of the number of neurons with
    cosine >= ``threshold``), ``maxcos_major`` / ``maxcos_minor`` (mean over features of the largest
    cosine), ``magnitude_major`` / ``magnitude_minor`` (mean over features of the largest
    ``|<w_i, M_j>|``) and ``n_alive``.
    """
    return projection_metrics(run.W @ run.M.T, np.linalg.norm(run.W, axis=1), run.config.n_major, threshold)


def projection_metrics(proj: np.ndarray, norms: np.ndarray, n_major: int, threshold: float = COS_THRESHOLD
                       ) -> dict[str, float]:
    """:func:`feature_metrics` from the projections ``proj`` float64[m, K] (``<w_i, M_j>``, unit ``M_j``, majority
    features first) and the norms ``norms`` float64[m] of the neurons; zero neurons (pruned) are left out."""
    proj = np.asarray(proj, dtype=np.float64)
    norms = np.asarray(norms, dtype=np.float64)
    keep = norms > 0
    P = np.abs(proj[keep])
    C = P / norms[keep, None]
    maj, mino = slice(0, n_major), slice(n_major, proj.shape[1])
    out = {"n_alive": float(C.shape[0])}
    for name, sl in (("major", maj), ("minor", mino)):
        if sl.stop - sl.start <= 0 or C.shape[0] == 0:
            out |= {f"count_{name}": 0.0, f"maxcos_{name}": 0.0, f"magnitude_{name}": 0.0}
            continue
        out[f"count_{name}"] = float(np.mean(np.sum(C[:, sl] >= threshold, axis=0)))
        out[f"maxcos_{name}"] = float(np.mean(C[:, sl].max(axis=0)))
        out[f"magnitude_{name}"] = float(np.mean(P[:, sl].max(axis=0)))
    return out


def positive_pair_cosine(run: Run, n: int = 512, seed: SeedLike = 1) -> float:
    """Mean of ``cos(f(X_n), f(Y_n))`` over ``n`` fresh positive pairs from the training distribution.

    The encoder uses the run's attention (``run.attention_matrix`` when it was trained).
    """
    X, Y, _ = sample_pairs(run.config, n, seed, M=run.M)
    FX, FY = encode(run.config, run.W, X, run.attention), encode(run.config, run.W, Y, run.attention)
    nx, ny = np.linalg.norm(FX, axis=1), np.linalg.norm(FY, axis=1)
    ok = (nx > 0) & (ny > 0)
    if not np.any(ok):
        return 0.0
    c = np.zeros(n)
    c[ok] = np.sum(FX[ok] * FY[ok], axis=1) / (nx[ok] * ny[ok])
    return float(np.mean(c))


def downstream_mse(run: Run, n_train: int = 1000, n_test: int = 1000, ridge: float = 1e-3,
                   seed: SeedLike = 2) -> float:
    r"""Relative test MSE of a ridge regression on the learned representation.

    The downstream task is balanced: every feature appears with the majority probability ``p``, and the
    target is :math:`y = \sum_r \sum_j \beta_j z_j^{(r)}` with fixed :math:`\beta_j \sim N(0,1)` so that
    every feature matters. Returns ``mean((y - yhat)^2) / var(y)`` on the test set (0 = perfect,
    about 1 = nothing learned). The encoder uses the run's attention (``run.attention_matrix`` when it
    was trained).
    """
    cfg = run.config
    rng = as_generator(seed)
    s = spawn_seeds(rng, 3)
    probs = np.full(cfg.n_features, min(cfg.p, 1.0 / cfg.n_features))
    beta = as_generator(int(s[0])).standard_normal(cfg.n_features)

    def data(n, sd):
        X, _, codes = sample_pairs(cfg, n, int(sd), M=run.M, probs=probs)
        z = np.zeros((n, cfg.n_features))
        nz = codes != 0
        rows = np.nonzero(nz)[0]
        np.add.at(z, (rows, np.abs(codes[nz]) - 1), np.sign(codes[nz]).astype(np.float64))
        F = encode(cfg, run.W, X, run.attention)
        return F, z @ beta

    Ftr, ytr = data(n_train, s[1])
    Fte, yte = data(n_test, s[2])
    scale = np.sqrt(np.mean(Ftr**2, axis=0)) + 1e-12
    A = Ftr / scale
    coef = np.linalg.solve(A.T @ A + ridge * n_train * np.eye(A.shape[1]), A.T @ ytr)
    resid = yte - (Fte / scale) @ coef
    return float(np.mean(resid**2) / np.var(yte))
