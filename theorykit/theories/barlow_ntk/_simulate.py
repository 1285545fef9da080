r"""Finite-width simulation: the two-layer network and its linearisation trained by gradient descent, and the
data they are trained on.

Network (NTK parametrisation, Gaussian initialisation):

.. math:: f(x) = M^{-1/2} V \sigma(W x),\quad W\in\mathbb R^{M\times d},\ V\in\mathbb R^{K\times M},
          \ W_{md}, V_{km} \sim N(0, 1).

Loss on N positive pairs :math:`(x_i, x_i^+)`:

.. math:: C = \frac1N\sum_i f(x_i) f(x_i^+)^\top,\qquad
          L = \sum_k (1 - C_{kk})^2 + \lambda \sum_{k\ne l} C_{kl}^2 .

The public functions validate their arguments, allocate and call the numba kernels of ``_kernels``; the two
training loops run their step kernels inside :func:`theorykit.simulate.run_particles` and return
:class:`~theorykit.simulate.ParticleRun` s; :func:`simulate_network_replicates` runs several seeds of one
network in parallel threads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..._checks import check_finite_array, check_int, check_range
from ..._random import SeedLike, as_generator
from ...errors import InvalidParameterError, SolveError
from ...simulate import NoiseStream, ParticleRun, map_threads, run_particles
from . import _kernels as _k
from ._symbolic import ACTIVATIONS


def act_code(activation: str) -> int:
    """The kernels' code of ``activation`` (``"tanh"`` or ``"relu"``)."""
    if activation not in ACTIVATIONS:
        raise InvalidParameterError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    return ACTIVATIONS[activation]


def _array2d(name: str, Z) -> np.ndarray:
    """``Z`` as a finite C-contiguous float64 (n, d) array (``name`` for the error message)."""
    return np.ascontiguousarray(check_finite_array(name, Z, ndim=2))


def _check_pairs(X, Xp) -> tuple[np.ndarray, np.ndarray]:
    X, Xp = _array2d("X", X), _array2d("Xp", Xp)
    if X.shape != Xp.shape:
        raise InvalidParameterError(f"X and Xp (the two views) must have the same shape, got {X.shape} and {Xp.shape}")
    if X.shape[0] < 1 or X.shape[1] < 1:
        raise InvalidParameterError(f"X must have at least one row and one column, got shape {X.shape}")
    return X, Xp


def _check_weights(W, V, d: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    W, V = _array2d("W", W), _array2d("V", V)
    if V.shape[1] != W.shape[0]:
        raise InvalidParameterError(f"V must have shape (K, M) with M = W.shape[0] = {W.shape[0]}, got {V.shape}")
    if V.shape[0] < 1:
        raise InvalidParameterError(f"the number of outputs K must be >= 1, got V.shape = {V.shape}")
    if d is not None and W.shape[1] != d:
        raise InvalidParameterError(f"W must have shape (M, d) with d = {d} (the input dimension), got {W.shape}")
    return W, V


def _check_schedule(n_steps: int, record_every: int) -> tuple[int, int]:
    n_steps = check_int("n_steps", n_steps, 1)
    record_every = check_int("record_every", record_every, 1)
    if n_steps % record_every:
        raise InvalidParameterError(f"n_steps ({n_steps}) must be a multiple of record_every ({record_every})")
    return n_steps, record_every


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
    X = _array2d("X", X)
    W, V = _check_weights(W, V, X.shape[1])
    out = np.empty((X.shape[0], V.shape[0]))
    _k.outputs(X, W, V, act_code(activation), out)
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
    C = _array2d("C", C)
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
                            act_code(activation), gW, gV)
    return float(L), gW, gV


def empirical_ntk(Z, W, V, activation: str = "relu") -> np.ndarray:
    r"""Empirical NTK Gram matrix :math:`\Theta = J J^\top` of shape (n K, n K) on inputs ``Z`` (n, d).

    Row/column ``i*K + k`` is input i, output k; :math:`J` is the Jacobian of all outputs w.r.t. all
    parameters ``(W, V)``.
    """
    Z = _array2d("Z", Z)
    W, V = _check_weights(W, V, Z.shape[1])
    out = np.empty((Z.shape[0] * V.shape[0],) * 2)
    _k.empirical_ntk(Z, W, V, act_code(activation), out)
    return out


def relative_change(a: np.ndarray, b: np.ndarray) -> float:
    """``|a - b|_F / |b|_F``."""
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def simulate_network(X, Xp, W0, V0, *, lam: float = 1.0, activation: str = "relu", lr: float = 0.05,
                     n_steps: int = 1000, record_every: int = 10, batch_size: int | None = None, seed: int = 0,
                     probe=None, ntk_every: int | None = None) -> ParticleRun:
    """Train the network by small-step gradient descent (gradient flow at time ``n_steps * lr``) or SGD.

    Parameters
    ----------
    X, Xp : (N, d)
        The two views of the N training pairs.
    W0, V0 : (M, d), (K, M)
        Initial weights (not modified).
    n_steps, record_every : int
        Steps, and steps between records (``n_steps`` a multiple of it).
    batch_size : int, optional
        Pairs per SGD step, drawn without replacement (``numpy.random.default_rng(seed)``); the step follows
        the loss of the minibatch cross-correlation. ``None`` for full-batch gradient descent.
    probe : (n, d), optional
        Inputs whose outputs are recorded.
    ntk_every : int, optional
        Record the change of the empirical NTK on the 2N training inputs every ``ntk_every`` steps (a
        multiple of ``record_every``).

    Returns
    -------
    ParticleRun
        ``t = step * lr``; observables ``loss`` (n_rec,) the full-batch loss, ``C`` (n_rec, K, K) the
        cross-correlation, ``weight_dist`` (n_rec,) :math:`\\|\\theta - \\theta_0\\|`, with ``probe``
        ``F`` (n_rec, n, K) its outputs, with ``ntk_every`` ``ntk_change`` (n_rec,)
        :math:`\\|\\Theta_t - \\Theta_0\\|_F / \\|\\Theta_0\\|_F` (NaN at the records in between).

    Raises
    ------
    SolveError
        If the loss becomes non-finite (lower ``lr``).
    """
    X, Xp = _check_pairs(X, Xp)
    W0, V0 = _check_weights(W0, V0, X.shape[1])
    W, V = W0.copy(), V0.copy()
    lam = check_range("lam", lam, 0.0)
    code = act_code(activation)
    lr = check_range("lr", lr, 0.0, low_open=True)
    n_steps, record_every = _check_schedule(n_steps, record_every)
    seed = check_int("seed", seed, 0)
    N, K = X.shape[0], V.shape[0]
    Z = np.vstack([X, Xp])
    probe = None if probe is None else _array2d("probe", probe)
    if probe is not None and probe.shape[1] != X.shape[1]:
        raise InvalidParameterError(f"probe must have d = {X.shape[1]} columns, got shape {probe.shape}")
    if ntk_every is not None and check_int("ntk_every", ntk_every, 1) % record_every:
        raise InvalidParameterError(f"ntk_every ({ntk_every}) must be a multiple of record_every ({record_every})")
    ntk0 = empirical_ntk(Z, W, V, activation) if ntk_every is not None else None
    B = N if batch_size is None else check_int("batch_size", batch_size, 1, N)
    M, d = W.shape
    # the kernels' work arrays, allocated once (at large widths they are tens of MB)
    work = (np.empty((M, 2 * B)), np.empty((2 * B, K)), np.empty((2 * B, K)), np.empty_like(W), np.empty_like(V))
    full = (work[0], work[1]) if B == N else (np.empty((M, 2 * N)), np.empty((2 * N, K)))
    Zb = np.empty((2 * B, d))
    # forward_done: the work arrays hold the full-batch forward pass of the current weights (gradient descent's
    # steps leave it there; a record then uses it, and so does the next step)
    at = {"step": 0, "forward_done": False}

    def advance(draws, step0, values):
        if draws:
            _k.sgd_steps(Z, W, V, N, lam, code, lr, draws[0], Zb, *work)
        else:
            _k.gd_steps(Z, W, V, N, lam, code, lr, values.shape[1], *work, at["forward_done"])
        at["step"], at["forward_done"] = step0 + values.shape[1], not draws

    def observe():
        C = np.empty((K, K))
        if not at["forward_done"]:
            _k.forward(Z, W, V, code, *full)
            at["forward_done"] = B == N  # full-batch: the record's forward pass is the next step's
        out = {"loss": _k.loss_of_outputs(full[1], N, lam, C), "C": C,
               "weight_dist": float(np.sqrt(np.sum((W - W0) ** 2) + np.sum((V - V0) ** 2)))}
        if probe is not None:
            out["F"] = np.empty((probe.shape[0], K))
            _k.outputs(probe, W, V, code, out["F"])
        if ntk0 is not None and at["step"] % ntk_every:
            out["ntk_change"] = np.nan
        elif ntk0 is not None:
            out["ntk_change"] = relative_change(empirical_ntk(Z, W, V, activation), ntk0) if at["step"] else 0.0
        return out

    noise = []
    if batch_size is not None:
        def draw_pairs(rng: np.random.Generator, out: np.ndarray) -> None:
            for s in range(out.shape[0]):
                out[s] = rng.choice(N, size=B, replace=False)

        noise = [NoiseStream((B,), draw_pairs)]
    run = run_particles(advance, observe, n_steps=n_steps, record_steps=range(0, n_steps + 1, record_every),
                        noise=noise, seed=seed, step_time=lr, desc="network GD steps",
                        params=dict(N=N, d=X.shape[1], M=W.shape[0], K=K, lam=lam, activation=activation, lr=lr,
                                    batch_size=batch_size))
    if not np.all(np.isfinite(run.observable("loss"))):
        raise SolveError(f"training diverged (non-finite loss); lower lr (got {lr})")
    return run


def simulate_network_replicates(X, Xp, M: int, seeds: Sequence[int], *, K: int = 2, threads: int | None = None,
                                **options) -> list[ParticleRun]:
    """:func:`simulate_network` of width ``M`` from each seed of ``seeds``, the replicates in parallel threads.

    Replicate ``s`` starts from ``init_params(d, M, K, seed=s)`` and, with ``batch_size``, draws its minibatches
    with seed ``s``: it equals ``simulate_network(X, Xp, *init_params(d, M, K, seed=s), seed=s, **options)``, bit
    for bit. The step kernels release the GIL; ``threads`` defaults to one per CPU this process may use, at most
    one per seed (:func:`theorykit.simulate.map_threads`). ``options``: the keyword arguments of
    :func:`simulate_network` other than ``seed``. Returns the runs in the order of ``seeds``.

    Raises
    ------
    InvalidParameterError
        If ``seeds`` is empty, ``threads < 1``, or an argument of :func:`init_params` or
        :func:`simulate_network` is invalid.
    """
    seeds = [check_int("seeds", s, 0) for s in seeds]
    if not seeds:
        raise InvalidParameterError("seeds must list at least one seed")
    if "seed" in options:
        raise InvalidParameterError("seed: give the replicates' seeds in seeds")
    X, Xp = _check_pairs(X, Xp)
    inits = [init_params(X.shape[1], M, K, seed=s) for s in seeds]  # checks M and K before any thread starts
    return map_threads(lambda i: simulate_network(X, Xp, *inits[i], seed=seeds[i], **options), range(len(seeds)),
                       threads)


def check_kernel_model(F0, Theta, N: int) -> tuple[np.ndarray, np.ndarray, int]:
    """The kernel model's initial outputs ``F0`` (n, K), Gram matrix ``Theta`` (n K, n K) and number of pairs
    ``N`` (2N <= n), checked and as C-contiguous float64 arrays."""
    F0 = _array2d("F0", F0)
    n, K = F0.shape
    N = check_int("N", N, 1)
    if 2 * N > n:
        raise InvalidParameterError(f"F0 must have at least 2N = {2 * N} rows, got {n}")
    return F0, np.ascontiguousarray(check_finite_array("Theta", Theta, shape=(n * K, n * K))), N


def simulate_kernel_model(F0, Theta, N: int, *, lr: float, n_steps: int, record_every: int = 1,
                          lam: float = 1.0) -> ParticleRun:
    """Gradient descent of the linearised model in function space, ``F <- F - lr Θ ∂L/∂F``.

    With the same ``lr`` and ``n_steps`` as :func:`simulate_network` this is the linearisation of the
    network's own discrete training, so network–kernel differences measure the linearisation error alone.

    Parameters
    ----------
    F0 : (n, K)
        Outputs at initialisation; rows ``0..N-1`` first views, ``N..2N-1`` second views of the training
        pairs, further rows evaluation inputs that do not enter the loss.
    Theta : (n K, n K)
        NTK Gram matrix (index ``i*K + k``), e.g. :func:`empirical_ntk` at initialisation.

    Returns
    -------
    ParticleRun
        ``t = step * lr``; observables ``loss`` (n_rec,) and ``F`` (n_rec, n, K).
    """
    F0, Theta, N = check_kernel_model(F0, Theta, N)
    n, K = F0.shape
    lr = check_range("lr", lr, 0.0, low_open=True)
    lam = check_range("lam", lam, 0.0)
    n_steps, record_every = _check_schedule(n_steps, record_every)
    y = F0.ravel().copy()

    def advance(draws, step0, values):
        _k.kernel_gd_steps(y, Theta, N, K, lam, lr, values.shape[1])

    def observe():
        F = y.reshape(n, K).copy()
        return {"loss": _k.loss_of_outputs(F, N, lam, np.empty((K, K))), "F": F}

    return run_particles(advance, observe, n_steps=n_steps, record_steps=range(0, n_steps + 1, record_every),
                         noise=[], seed=0, step_time=lr, desc="kernel-model GD steps",
                         params=dict(N=N, n=n, K=K, lam=lam, lr=lr))


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
