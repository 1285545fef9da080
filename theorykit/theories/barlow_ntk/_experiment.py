"""Width sweeps, kernel-model comparison and the generalisation bound of the Barlow Twins NTK theory."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..._checks import check_finite_array, check_int, check_range
from ..._random import SeedLike, spawn_seeds
from ...errors import InvalidParameterError
from ...sweep import SweepResult, sweep
from ._model import (PairData, barlow_loss, digits_pairs, empirical_ntk, gaussian_pairs, infinite_width_ntk, infinite_width_ntk_diag,
                     init_params, kernel_flow, kernel_gd, network_outputs, train_network)
from . import _kernels as _k


@dataclass(frozen=True)
class SweepConfig:
    """Settings of a width sweep (defaults: the quick configuration).

    ``t_end`` is the gradient-flow time (``n_steps = t_end / lr``); NTKs are taken at ``n_checkpoints``
    equally spaced times; ``init_loss_below`` redraws an initialisation until ``L(0)`` is below it (the
    theorem's condition ``L(0) < 1``), ``None`` to keep the first draw. The generalisation check
    (:func:`generalization_check`) trains on ``n_train`` pairs, measures the population cross-correlation
    on ``n_population`` fresh pairs, estimates the second moment of its bound on ``n_moment`` fresh pairs
    and states the bound at confidence ``1 - conf_delta``.
    """

    widths: tuple[int, ...] = (64, 128, 256, 512, 1024, 2048)
    n_seeds: int = 3
    n_train: int = 24
    n_eval: int = 16
    d: int = 16
    K: int = 2
    lam: float = 1.0
    activation: str = "tanh"
    data: str = "gaussian"
    radius: float = 2.0
    n_clusters: int = 8
    spread: float = 1.0
    noise: float = 0.3
    lr: float = 0.05
    t_end: float = 15.0
    n_checkpoints: int = 3
    record_every: int = 10
    delta: float = 1e-2
    init_loss_below: float | None = 1.0
    n_population: int = 500
    n_moment: int = 10000
    batch_size: int | None = None
    conf_delta: float = 0.05

    @property
    def n_steps(self) -> int:
        steps = int(round(self.t_end / self.lr))
        per = self.record_every * self.n_checkpoints
        return max(per, (steps // per) * per)

    def check(self) -> "SweepConfig":
        if len(self.widths) < 2 or len(set(self.widths)) < 2:
            raise InvalidParameterError(f"widths needs at least two distinct values, got {self.widths}")
        for M in self.widths:
            check_int("widths", M, 1)
        check_int("n_seeds", self.n_seeds, 1)
        check_int("n_train", self.n_train, 2)
        check_int("n_eval", self.n_eval, 1)
        check_int("d", self.d, 1)
        check_int("K", self.K, 1)
        check_range("lam", self.lam, 0.0)
        check_range("lr", self.lr, 0.0, low_open=True)
        check_range("t_end", self.t_end, 0.0, low_open=True)
        check_int("n_population", self.n_population, 2)
        check_int("n_moment", self.n_moment, 2)
        check_range("conf_delta", self.conf_delta, 0.0, 1.0, low_open=True, high_open=True)
        if self.data not in ("gaussian", "digits"):
            raise InvalidParameterError(f"data must be 'gaussian' or 'digits', got {self.data!r}")
        return self


QUICK = SweepConfig()
FULL = SweepConfig(widths=tuple(2 ** k for k in range(6, 15)), n_seeds=5, n_train=64, n_eval=32, t_end=20.0,
                   n_checkpoints=5, n_population=10000)


def make_data(cfg: SweepConfig, n: int, seed: SeedLike, subset: str = "train") -> PairData:
    """Pairs from the configured data set (``gaussian`` or ``digits``)."""
    if cfg.data == "digits":
        return digits_pairs(n, noise=cfg.noise, mask=0.1, radius=cfg.radius, seed=seed, subset=subset)
    d = gaussian_pairs(n, cfg.d, n_clusters=cfg.n_clusters, spread=cfg.spread, noise=cfg.noise,
                       radius=cfg.radius, seed=seed)
    return d


def _init(cfg: SweepConfig, d: int, M: int, Z: np.ndarray, N: int, seed: int, tries: int = 50):
    """Initial weights, redrawn (up to ``tries`` times) until L(0) < ``cfg.init_loss_below``."""
    seeds = spawn_seeds(seed, tries)
    for s in seeds:
        W, V = init_params(d, M, cfg.K, seed=int(s))
        F = network_outputs(Z, W, V, cfg.activation)
        L0 = barlow_loss(F[:N].T @ F[N:2 * N] / N, cfg.lam)
        if cfg.init_loss_below is None or L0 < cfg.init_loss_below:
            break
    return W, V, F, L0


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def width_sweep_points(cfg: SweepConfig = QUICK, seed: int = 0) -> list[dict]:
    """The points of a width sweep, replicate-major (``index = replicate * len(widths) + width_index``).

    Replicate ``s`` takes its training and evaluation pairs and its initialisation seed from
    ``spawn_seeds(seed, n_seeds)[s]``, so all widths of one replicate see the same data (a paired design
    for the width fits; initial weights are drawn from ``init_seed + M``); the minibatch sampling of SGD
    (``batch_size``) uses each point's own sweep seed. ``config`` is the whole configuration as a plain
    dict, so stored points are only reused for the same settings.
    """
    cfg.check()
    conf = config_dict(cfg)
    points = []
    for s, sd in enumerate(spawn_seeds(seed, cfg.n_seeds)):
        data_seed, eval_seed, init_seed = (int(v) for v in spawn_seeds(int(sd), 3))
        points += [{"M": int(M), "replicate": s, "data_seed": data_seed, "eval_seed": eval_seed,
                    "init_seed": init_seed, "config": conf} for M in cfg.widths]
    return points


def width_point(params: dict, seed: int) -> dict[str, np.ndarray]:
    """Train one network of width ``params["M"]`` (sweep point function, see :func:`width_sweep_points`).

    Returns ``ntk_change_t`` float64[n_checkpoints + 1], ``loss_net`` / ``loss_lin`` / ``loss_ode``
    float64[n_rec], the scalars ``ntk_init_fluct``, ``weight_dist``, ``gap_eval``, ``gap_train``, ``L0``
    and ``hit_index`` (first record with loss <= ``delta``, ``-1`` if none; an index, not a time, so a run
    that never converges is still a finite, successful point).
    """
    conf = dict(params["config"])
    cfg = SweepConfig(**{**conf, "widths": tuple(conf["widths"])})
    M = check_int("M", params["M"], 1)
    N = cfg.n_train
    n_steps = cfg.n_steps
    seg = n_steps // cfg.n_checkpoints
    tr = make_data(cfg, N, int(params["data_seed"]), "train")
    ev = make_data(cfg, cfg.n_eval, int(params["eval_seed"]), "test")
    Z = np.vstack([tr.X, tr.Xp, ev.X])
    t = np.arange(n_steps // cfg.record_every + 1) * cfg.record_every * cfg.lr
    ntr = 2 * N * cfg.K  # training rows of the NTK
    th_inf = np.kron(infinite_width_ntk(Z[:2 * N], activation=cfg.activation), np.eye(cfg.K))
    W0, V0, F0, L0 = _init(cfg, Z.shape[1], M, Z, N, int(params["init_seed"]) + M)
    th0 = empirical_ntk(Z, W0, V0, cfg.activation)
    change = np.zeros(cfg.n_checkpoints + 1)
    Wc, Vc = W0, V0
    losses = [np.array([L0])]
    for c, sc in enumerate(spawn_seeds(seed, cfg.n_checkpoints)):
        r = train_network(tr.X, tr.Xp, Wc, Vc, lam=cfg.lam, activation=cfg.activation, lr=cfg.lr,
                          n_steps=seg, record_every=cfg.record_every, batch_size=cfg.batch_size, seed=int(sc))
        Wc, Vc = r.W, r.V
        losses.append(r.loss[1:])
        change[c + 1] = _rel(empirical_ntk(Z[:2 * N], Wc, Vc, cfg.activation), th0[:ntr, :ntr])
    loss_net = np.concatenate(losses)
    FT = network_outputs(Z, Wc, Vc, cfg.activation)
    lin = kernel_gd(F0, th0, N, lr=cfg.lr, n_steps=n_steps, record_every=cfg.record_every, lam=cfg.lam)
    FL = lin.F[-1]
    ode = kernel_flow(F0[:2 * N], th0[:ntr, :ntr], N, t, lam=cfg.lam, rtol=1e-6, atol=1e-9)
    hit = np.nonzero(loss_net <= cfg.delta)[0]
    return {"ntk_change_t": change, "ntk_init_fluct": _rel(th0[:ntr, :ntr], th_inf),
            "weight_dist": float(np.sqrt(np.sum((Wc - W0) ** 2) + np.sum((Vc - V0) ** 2))),
            "gap_eval": _rel(FT[2 * N:], FL[2 * N:]), "gap_train": _rel(FT[:2 * N], FL[:2 * N]),
            "L0": float(L0), "hit_index": int(hit[0]) if hit.size else -1,
            "loss_net": loss_net, "loss_lin": lin.loss, "loss_ode": ode.loss}


def collect_width_sweep(cfg: SweepConfig, result: SweepResult) -> dict[str, Any]:
    """Arrays indexed ``[width, replicate, ...]`` from the points of :func:`width_sweep_points`.

    A failed point (exception or non-finite value) leaves NaN in every array at its ``[width, replicate]``
    and one line in ``failures`` (list of str).
    """
    W_, S_ = len(cfg.widths), cfg.n_seeds
    if len(result.points) != W_ * S_:
        raise InvalidParameterError(f"expected {W_ * S_} sweep points for {cfg.widths} x {S_} seeds, "
                                    f"got {len(result.points)}")
    n_rec = cfg.n_steps // cfg.record_every + 1
    t = np.arange(n_rec) * cfg.record_every * cfg.lr
    shapes = {"ntk_change_t": (cfg.n_checkpoints + 1,), "loss_net": (n_rec,), "loss_lin": (n_rec,),
              "loss_ode": (n_rec,), "ntk_init_fluct": (), "weight_dist": (), "gap_eval": (), "gap_train": (),
              "L0": (), "t_hit": ()}
    out: dict[str, Any] = {k: np.full((W_, S_, *sh), np.nan) for k, sh in shapes.items()}
    failures = []
    for p in result.points:
        w, s = p.index % W_, p.index // W_
        if p.status != "ok":
            failures.append(f"width M={p.params.get('M')}, replicate {s}: {p.status}: {p.error}")
            continue
        for k in shapes:
            if k != "t_hit":
                out[k][w, s] = p.values[k]
        h = int(p.values["hit_index"])
        out["t_hit"][w, s] = t[h] if h >= 0 else np.inf
    out["ntk_change"] = out["ntk_change_t"][:, :, -1]
    out["t"] = t
    out["widths"] = np.asarray(cfg.widths, dtype=float)
    out["failures"] = failures
    return out


def run_width_sweep(cfg: SweepConfig = QUICK, seed: int = 0, *, processes: int | None = 1, scheduler: Any = None,
                    store: str | os.PathLike | None = None) -> dict[str, Any]:
    """Train networks at every width and seed; measure NTK change, weight distance and the kernel-model gap.

    Runs :func:`width_point` over :func:`width_sweep_points` with :func:`theorykit.sweep.sweep`
    (``processes``, ``scheduler`` and ``store`` are passed on: inline by default, a local pool, a dask
    cluster; ``store`` keeps finished points for resuming).

    Returns a dict of arrays indexed ``[width, seed, ...]``: ``ntk_change`` (final relative Frobenius change
    of the training-set NTK), ``ntk_change_t`` (at each checkpoint), ``ntk_init_fluct``
    (:math:`\\|\\Theta_0-\\Theta_\\infty\\|_F/\\|\\Theta_\\infty\\|_F`), ``weight_dist``
    (:math:`\\|\\theta_T-\\theta_0\\|`), ``gap_eval`` / ``gap_train`` (relative distance of network and
    linearised-model outputs on evaluation / training inputs at ``t_end``), ``loss_net``, ``loss_lin``
    (GD of the linearised model), ``loss_ode`` (its gradient-flow ODE), ``L0`` and ``t_hit`` (first record
    time with loss <= ``delta``, ``inf`` if never), plus ``t``, ``widths`` and ``failures`` (one line per
    failed point; its entries are NaN).
    """
    result = sweep(width_point, width_sweep_points(cfg, seed), seed=seed, processes=processes,
                   scheduler=scheduler, store=store, desc="barlow_ntk width sweep")
    return collect_width_sweep(cfg, result)


@dataclass(frozen=True)
class KernelModelFit:
    r"""The trained kernel model :math:`f(x) = f_0(x) + \Theta_\infty(x, Z)\,A` of :func:`fit_kernel_model`.

    ``train`` / ``population`` the training pairs and fresh pairs from the same distribution; ``W0``, ``V0``
    the width-M network whose outputs at initialisation are :math:`f_0`; ``theta`` (2N, 2N) the
    infinite-width NTK on the training inputs :math:`Z` (first views, then second views); ``A`` (2N, K) the
    trained coefficients; ``F_train`` (2N, K) the outputs on :math:`Z`; ``moment_seed`` the seed of the
    fresh pairs used for the bound's second moment.
    """

    train: PairData
    population: PairData
    W0: np.ndarray
    V0: np.ndarray
    theta: np.ndarray
    A: np.ndarray
    F_train: np.ndarray
    moment_seed: int


def fit_kernel_model(cfg: SweepConfig = QUICK, seed: int = 0, M_init: int | None = None) -> KernelModelFit:
    r"""Train kernelised Barlow Twins: the coefficient flow :math:`\dot\alpha = -\partial L/\partial f` of
    :math:`f = f_0 + \Theta_\infty(\cdot, Z)\alpha`, Euler steps of size ``lr`` to ``t_end`` (the network's
    steps), ``f_0`` a width-``M_init`` network (default: the largest width) at initialisation."""
    cfg.check()
    M_init = M_init or max(cfg.widths)
    data_seed, pop_seed, init_seed, moment_seed = spawn_seeds(seed, 4)
    N = cfg.n_train
    tr = make_data(cfg, N, int(data_seed), "train")
    n_pop = cfg.n_population if cfg.data == "gaussian" else min(cfg.n_population, 590)
    pop = make_data(cfg, n_pop, int(pop_seed), "test")
    Ztr = np.vstack([tr.X, tr.Xp])
    W0, V0, F0, _ = _init(cfg, Ztr.shape[1], M_init, Ztr, N, int(init_seed))
    K = cfg.K
    theta = infinite_width_ntk(Ztr, activation=cfg.activation)
    th = np.kron(theta, np.eye(K))
    a = np.zeros(2 * N * K)
    g = np.empty(2 * N * K)
    for _ in range(cfg.n_steps):
        _k.kernel_coef_rhs(a, F0, th, N, K, cfg.lam, g)
        a += cfg.lr * g
    return KernelModelFit(train=tr, population=pop, W0=W0, V0=V0, theta=theta, A=a.reshape(2 * N, K),
                          F_train=F0 + (th @ a).reshape(2 * N, K), moment_seed=int(moment_seed))


def generalization_check(cfg: SweepConfig = QUICK, seed: int = 0, M_init: int | None = None) -> dict[str, float]:
    r"""Kernelised Barlow Twins: train the infinite-width kernel model and evaluate our generalisation bound.

    The model is :math:`f(x) = f_0(x) + \sum_j \Theta_\infty(x, z_j)\alpha_j` (``f_0`` the outputs of a
    width-``M_init`` network at initialisation, :math:`\Theta_\infty` the infinite-width NTK), trained by the
    coefficient flow :math:`\dot\alpha = -\partial L/\partial f` to ``t_end``. It is linear in the feature map
    :math:`\psi(x) = (\phi_\infty(x), f_0(x))` with kernel :math:`\kappa(x, y) = \Theta_\infty(x, y) +
    f_0(x)\cdot f_0(y)`, with weights of Gram matrix :math:`G = A^\top\Theta_\infty(Z, Z)A + I_K`
    (:math:`A` the (2N, K) coefficients). Our derivation (``derivations/barlow_ntk.md`` §5, following the
    form of the paper's Theorem 6.1 and Lemma 6.2 as summarised) gives, with probability :math:`1-\delta`,

    .. math:: \|C_{pop} - \hat C\|_\Lambda \le \varepsilon = \max(1,\sqrt\lambda)\,\lambda_{\max}(G)\,
              \sqrt{\frac{E[\kappa(x,x)\,\kappa(x^+,x^+)]}{N\delta}},\qquad
              \sqrt{L_{pop}} \le \sqrt{\hat L} + \varepsilon ,

    uniformly over the weights, hence for the trained model (:math:`\|\cdot\|_\Lambda` the Frobenius norm
    with weight :math:`\lambda` off the diagonal, so that :math:`L = \|C - I\|_\Lambda^2`). The second
    moment is estimated on ``n_moment`` fresh pairs (independent of the training pairs).

    Returns
    -------
    dict
        ``deviation`` (measured :math:`\|C_{pop}-\hat C\|_\Lambda`, :math:`C_{pop}` on ``n_population``
        fresh pairs; ``deviation_se`` its Monte-Carlo standard error), ``deviation_bound``
        (:math:`\varepsilon`) and ``deviation_ratio`` (bound / measured); ``train_loss``, ``test_loss``
        (:math:`L_{pop}`), ``bound`` (:math:`(\sqrt{\hat L}+\varepsilon)^2`) and ``bound_ratio``
        (bound / ``test_loss``); the pieces ``W_op2`` (:math:`\lambda_{\max}(G)`), ``second_moment``
        (with ``second_moment_se``), ``rademacher_rms`` (:math:`\sqrt{E[\kappa\kappa]/N}`, the
        root-mean-square Rademacher average of the unit ball) and ``rademacher_trace`` (its empirical
        form on the training pairs, :func:`pair_rademacher_trace`); the network's own train and population
        losses at width ``M_init`` for reference; ``n_train``, ``n_population``, ``n_moment``, ``M_init``,
        ``delta``.
    """
    fit = fit_kernel_model(cfg, seed, M_init)
    N, K, n_pop = cfg.n_train, cfg.K, fit.population.X.shape[0]
    tr, pop, A, theta, W0, V0 = fit.train, fit.population, fit.A, fit.theta, fit.W0, fit.V0
    Ztr = np.vstack([tr.X, tr.Xp])
    C_train = fit.F_train[:N].T @ fit.F_train[N:] / N
    L_train = barlow_loss(C_train, cfg.lam)
    Zpop = np.vstack([pop.X, pop.Xp])
    kx = infinite_width_ntk(Zpop, Ztr, activation=cfg.activation)
    f0pop = network_outputs(Zpop, W0, V0, cfg.activation)
    Fpop = f0pop + kx @ A
    prod = Fpop[:n_pop, :, None] * Fpop[n_pop:, None, :]  # f_k(x) f_l(x+) per population pair
    C_pop = prod.mean(axis=0)
    L_pop = barlow_loss(C_pop, cfg.lam)
    weights = np.where(np.eye(K) > 0, 1.0, cfg.lam)
    deviation = float(np.sqrt(np.sum(weights * (C_pop - C_train) ** 2)))
    deviation_se = float(np.sqrt(np.sum(weights * prod.var(axis=0, ddof=1)) / n_pop))
    W_op2 = float(np.linalg.eigvalsh(A.T @ theta @ A + np.eye(K)).max())
    n_mom = cfg.n_moment if cfg.data == "gaussian" else min(cfg.n_moment, 590)
    mom = make_data(cfg, n_mom, fit.moment_seed, "test")
    kk = (feature_kernel_diag(mom.X, W0, V0, cfg.activation)
          * feature_kernel_diag(mom.Xp, W0, V0, cfg.activation))
    second_moment = float(kk.mean())
    eps = deviation_bound(W_op2, second_moment, N, cfg.conf_delta, cfg.lam)
    bound = (np.sqrt(L_train) + eps) ** 2
    # the network itself at width M_init, same data and initialisation
    r = train_network(tr.X, tr.Xp, W0, V0, lam=cfg.lam, activation=cfg.activation, lr=cfg.lr,
                      n_steps=cfg.n_steps, record_every=cfg.n_steps)
    Fn = network_outputs(Zpop, r.W, r.V, cfg.activation)
    L_pop_net = barlow_loss(Fn[:n_pop].T @ Fn[n_pop:] / n_pop, cfg.lam)
    return {"deviation": deviation, "deviation_se": deviation_se, "deviation_bound": eps,
            "deviation_ratio": eps / deviation if deviation > 0 else float("inf"),
            "train_loss": float(L_train), "test_loss": float(L_pop),
            "bound": float(bound), "bound_ratio": float(bound / L_pop) if L_pop > 0 else float("inf"),
            "test_loss_network": float(L_pop_net), "train_loss_network": float(r.loss[-1]),
            "W_op2": W_op2, "second_moment": second_moment,
            "second_moment_se": float(kk.std(ddof=1) / np.sqrt(kk.size)),
            "rademacher_rms": float(np.sqrt(second_moment / N)),
            "rademacher_trace": pair_rademacher_trace(feature_kernel_diag(tr.X, W0, V0, cfg.activation),
                                                      feature_kernel_diag(tr.Xp, W0, V0, cfg.activation)),
            "n_train": N, "n_population": n_pop, "n_moment": n_mom, "M_init": fit.W0.shape[0],
            "delta": cfg.conf_delta}


def feature_kernel_diag(X, W0, V0, activation: str) -> np.ndarray:
    r""":math:`\kappa(x, x) = \Theta_\infty(x, x) + \|f_0(x)\|^2` (n,) for inputs ``X`` (n, d): the diagonal of
    the kernel of the feature map :math:`\psi(x) = (\phi_\infty(x), f_0(x))` of the kernel model, ``f_0`` the
    outputs of the network ``(W0, V0)``."""
    return infinite_width_ntk_diag(X, activation) + np.sum(network_outputs(X, W0, V0, activation) ** 2, axis=1)


def pair_rademacher_trace(kdiag_first, kdiag_second) -> float:
    r"""Trace bound on the empirical Rademacher complexity of the unit ball of the pair RKHS.

    The pair kernel is :math:`k((x, x^+), (y, y^+)) = \kappa(x, y)\,\kappa(x^+, y^+)`; for N pairs

    .. math:: \hat R_S = \frac1N E_\sigma \Big\|\sum_i \sigma_i\,\psi(x_i)\otimes\psi(x_i^+)\Big\|
              \le \frac1N\sqrt{\sum_i \kappa(x_i, x_i)\,\kappa(x_i^+, x_i^+)} ,

    the form :math:`B\sqrt{\mathrm{tr}\,K}/n` of Lemma 6.2 (as summarised) with B = 1.

    Parameters
    ----------
    kdiag_first, kdiag_second : (N,)
        :math:`\kappa(x_i, x_i)` and :math:`\kappa(x_i^+, x_i^+)`, non-negative.
    """
    ka = check_finite_array("kdiag_first", kdiag_first, ndim=1)
    kb = check_finite_array("kdiag_second", kdiag_second, ndim=1)
    if ka.shape != kb.shape or ka.size < 1:
        raise InvalidParameterError(f"kdiag_first and kdiag_second must have the same length >= 1, got "
                                    f"{ka.shape} and {kb.shape}")
    if np.any(ka < 0) or np.any(kb < 0):
        raise InvalidParameterError("kernel diagonals must be non-negative")
    return float(np.sqrt(np.sum(ka * kb)) / ka.size)


def deviation_bound(gram_max_eig: float, second_moment: float, n: int, delta: float, lam: float = 1.0) -> float:
    r"""Our uniform bound on :math:`\|C_{pop} - \hat C\|_\Lambda` for kernelised Barlow Twins.

    .. math:: \varepsilon = \max(1, \sqrt\lambda)\;\lambda_{\max}(G)\;
              \sqrt{\frac{E[\kappa(x,x)\kappa(x^+,x^+)]}{n\,\delta}}

    holds with probability at least :math:`1-\delta` over the n training pairs, for every weight operator
    with Gram matrix G (derivation: ``derivations/barlow_ntk.md`` §5).

    Parameters
    ----------
    gram_max_eig : float >= 0
        :math:`\lambda_{\max}(G)`, G the Gram matrix of the K output weights.
    second_moment : float >= 0
        :math:`E[\kappa(x,x)\,\kappa(x^+,x^+)]` over positive pairs.
    n : int >= 1
    delta : float in (0, 1)
    lam : float >= 0
        Off-diagonal weight of the loss.
    """
    gram_max_eig = check_range("gram_max_eig", gram_max_eig, 0.0)
    second_moment = check_range("second_moment", second_moment, 0.0)
    n = check_int("n", n, 1)
    delta = check_range("delta", delta, 0.0, 1.0, low_open=True, high_open=True)
    lam = check_range("lam", lam, 0.0)
    return float(max(1.0, np.sqrt(lam)) * gram_max_eig * np.sqrt(second_moment / (n * delta)))


def config_dict(cfg: SweepConfig) -> dict:
    """The configuration as a plain dict (for reports)."""
    return asdict(cfg)


__all__ = ["SweepConfig", "QUICK", "FULL", "run_width_sweep", "width_sweep_points", "width_point",
           "collect_width_sweep", "generalization_check", "fit_kernel_model", "KernelModelFit",
           "feature_kernel_diag", "pair_rademacher_trace", "deviation_bound", "make_data"]
