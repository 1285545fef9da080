"""Settings of one training run of the imbalanced-data contrastive simulator, and the names of the network's
projections shared by the population flow and the SGD runs."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Literal

import numpy as np

from ..._checks import check_int, check_range
from ...errors import InvalidParameterError

_CHOICES = {"prune": ("forward_mask", "hard"), "prune_mode": ("weight", "neuron"), "bias": ("schedule", "norm"),
            "basis": ("coordinate", "random"), "attention": ("fixed", "trained")}


@dataclass(frozen=True)
class Config:
    r"""Settings of one training run (notation of Liao et al.: ``d`` features in ambient dimension ``d1``).

    Parameters
    ----------
    d1 : int
        Ambient (token) dimension :math:`d_1`: tokens are :math:`x = Mz + \xi\in\mathbb R^{d_1}` with
        :math:`M` a :math:`d_1\times d` matrix of orthonormal columns (Assumption 3.1).
    n_major, n_minor : int
        Numbers of majority and minority features; the paper's :math:`d` is their sum, ``<= d1``.
    p : float
        :math:`\Pr(z_j \ne 0)` of a majority feature, in (0, 1) (Definition 3.1:
        :math:`\Theta(\varepsilon_j\log\log d/d)` with :math:`\varepsilon_{\max} = 1`; ``0.1`` is
        :math:`\log\log d/d` for :math:`d = 6`). Features are independent, so a token can carry several.
    eps_min : float
        Minority frequency ratio :math:`\varepsilon_{\min}/\varepsilon_{\max}\in(0,1)`: a minority feature
        has :math:`\Pr(z_j\ne0) = \varepsilon_{\min} p`.
    nsr : float
        Noise-to-signal ratio :math:`\ge 0`: the noise of a token has expected norm ``nsr`` (features have
        unit norm), i.e. standard deviation ``nsr / sqrt(d1)`` per coordinate.
    n_tokens : int
        Tokens per input ``L``.
    width : int
        MLP neurons ``m``.
    beta : float
        Attention scores :math:`\beta\langle x_r, x_s\rangle` (``W_Q^T W_K = beta I``, ``W_V = I``); the
        default ``1`` is the paper's identity attention, fixed or, with ``attention="trained"``, the start
        of training.
    tau, lam, eta : float
        InfoNCE temperature, L2 regularisation :math:`\lambda`, SGD step :math:`\eta`.
    bias : {"schedule", "norm"}
        BReLU thresholds :math:`b_i^{(t)} = k\,\sigma\|w_i^{(t)}\|` (of the weights of the forward pass) with
        :math:`k = \sqrt{2\ln d}` (``schedule``: the level above which the noise part of a pre-activation
        lies with probability :math:`O(1/d)`; see :attr:`bias_scale`) or :math:`k = \kappa` (``norm``).
    kappa : float
        The threshold in noise standard deviations for ``bias="norm"``.
    batch : int
        Batch size (the other ``batch - 1`` second views are the negatives).
    steps : int
        SGD steps.
    init_scale : float
        Initial weights are i.i.d. ``N(0, init_scale^2 / d1)``.
    record_every : int
        Record projections every this many steps.
    prune : {"forward_mask", "hard"}
        ``forward_mask`` (Algorithm 1): from ``prune_at`` on, every ``prune_every`` steps, the mask of the
        ``prune_rate`` smallest-magnitude weights is recomputed; it acts in the forward pass only and the
        gradient (taken in the masked weights) updates every weight, :math:`\theta\leftarrow(1-\eta\lambda)
        \theta - \eta g(\theta, M^{(t)})`. ``hard``: one mask at ``prune_at``, pruned weights held at zero.
    prune_rate : float
        Fraction :math:`\alpha` of the units masked, in [0, 1).
    prune_at : float
        Point of training (fraction of ``steps``) of the first mask, in (0, 1).
    prune_every : int
        Steps between mask updates of ``forward_mask`` (1: every step; with fresh batches every step there
        are no epochs).
    prune_mode : {"weight", "neuron"}
        Units: the entries of the MLP weight matrix (the paper's parameters) or whole neurons by
        :math:`\|w_i\|`.
    basis : {"coordinate", "random"}
        Feature directions: the first ``d`` coordinate vectors, or ``d`` random orthonormal vectors.
    attention : {"fixed", "trained"}
        ``trained``: the score matrix :math:`A` in :math:`x_r^\top A x_s` (from :math:`\beta I`) is trained
        by SGD with the MLP, through the first view only (stop-gradient on the second, biases constant, no
        L2 term); pruning acts on the MLP weights only.
    eta_attention : float or None
        SGD step of :math:`A` with ``attention="trained"``, > 0; ``None`` uses ``eta``.
    """

    d1: int = 32
    n_major: int = 3
    n_minor: int = 3
    p: float = 0.1
    eps_min: float = 0.2
    nsr: float = 1.0
    n_tokens: int = 3
    width: int = 48
    beta: float = 1.0
    tau: float = 1.0
    lam: float = 1e-2
    eta: float = 0.05
    bias: Literal["schedule", "norm"] = "schedule"
    kappa: float = 1.5
    batch: int = 32
    steps: int = 2400
    init_scale: float = 0.1
    record_every: int = 20
    prune: Literal["forward_mask", "hard"] = "forward_mask"
    prune_rate: float = 0.0
    prune_at: float = 0.2
    prune_every: int = 1
    prune_mode: Literal["weight", "neuron"] = "weight"
    basis: Literal["coordinate", "random"] = "coordinate"
    attention: Literal["fixed", "trained"] = "fixed"
    eta_attention: float | None = None

    def __post_init__(self) -> None:
        check_int("d1", self.d1, 2)
        check_int("n_major", self.n_major, 1)
        check_int("n_minor", self.n_minor, 0)
        if self.d > self.d1:
            raise InvalidParameterError(
                f"n_major + n_minor (the number of features d) must be <= d1 (orthonormal features), got "
                f"{self.d} > {self.d1}")
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
        check_int("prune_every", self.prune_every, 1)
        for name, allowed in _CHOICES.items():
            if getattr(self, name) not in allowed:
                raise InvalidParameterError(f"{name} must be {' or '.join(map(repr, allowed))}, "
                                            f"got {getattr(self, name)!r}")
        if self.bias == "schedule" and self.d < 2:
            raise InvalidParameterError("bias='schedule' (threshold sqrt(2 ln d)) needs at least d = 2 features; "
                                        "use bias='norm' with kappa for one feature")
        if self.eta_attention is not None:
            check_range("eta_attention", self.eta_attention, 0.0, math.inf, low_open=True, high_open=True)

    @property
    def d(self) -> int:
        """Number of features (the paper's :math:`d`), ``n_major + n_minor``."""
        return self.n_major + self.n_minor

    n_features = d

    @property
    def sigma(self) -> float:
        """Noise standard deviation per coordinate, ``nsr / sqrt(d1)``."""
        return self.nsr / math.sqrt(self.d1)

    @property
    def bias_scale(self) -> float:
        r"""Threshold in noise standard deviations: :math:`\sqrt{2\ln d}` (``schedule``) or ``kappa`` (``norm``)."""
        return math.sqrt(2.0 * math.log(self.d)) if self.bias == "schedule" else float(self.kappa)

    @property
    def attention_step(self) -> float:
        """Step size of the attention matrix: ``eta_attention``, or ``eta`` when that is ``None``."""
        return self.eta if self.eta_attention is None else float(self.eta_attention)

    @property
    def prune_step(self) -> int | None:
        """First pruned step (``None`` without pruning), on a recording boundary so that the record grid is
        the same with and without pruning."""
        if self.prune_rate <= 0:
            return None
        step = max(self.record_every, int(round(self.prune_at * self.steps / self.record_every)) * self.record_every)
        return min(step, self.steps)

    def initial_attention(self) -> np.ndarray:
        """float64[d1, d1]: the attention score matrix ``beta I`` (fixed, or the start of training)."""
        return self.beta * np.eye(self.d1)

    def feature_probs(self) -> np.ndarray:
        r"""float64[d]: :math:`\Pr(z_j\ne0)` of each feature (majority first, then minority)."""
        return np.array([self.p] * self.n_major + [self.eps_min * self.p] * self.n_minor)

    def with_(self, **changes) -> "Config":
        return replace(self, **changes)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_mapping(cls, values) -> "Config":
        """The settings among the entries of ``values`` (e.g. a run's ``params``); other entries are ignored."""
        return cls(**{name: values[name] for name in cls.__dataclass_fields__})


def network_state_names(width: int, n_features: int) -> tuple[str, ...]:
    """``a_{i}_{k}`` (the projection of neuron ``i`` on feature ``k``, both from 1, neuron-major), then ``r_{i}`` (the
    norm of neuron ``i`` outside span(M)): the states of the population flow and the observables of an SGD run, so
    that :func:`theorykit.validate.compare` pairs them."""
    return (*(f"a_{i + 1}_{k + 1}" for i in range(width) for k in range(n_features)),
            *(f"r_{i + 1}" for i in range(width)))
