"""Width sweeps, kernel-model comparison and the generalisation bound of the Barlow Twins NTK theory."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..._checks import check_int, check_range
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
    theorem's condition ``L(0) < 1``), ``None`` to keep the first draw.
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


def generalization_check(cfg: SweepConfig = QUICK, seed: int = 0, M_init: int | None = None) -> dict[str, float]:
    r"""Kernelised Barlow Twins: train the infinite-width kernel model, evaluate a uniform deviation bound.

    The model is :math:`f(x) = f_0(x) + \sum_j \Theta_\infty(x, z_j)\alpha_j` (``f_0`` the outputs of a
    width-``M_init`` network at initialisation, :math:`\Theta_\infty` the infinite-width NTK), trained by the
    coefficient flow :math:`\dot\alpha = -\partial L/\partial f` to ``t_end``. Writing
    :math:`f = \tilde W \psi(x)` with :math:`\psi = (\phi_\infty(x), f_0(x))`, :math:`\tilde W = [W, I_K]`,
    the cross-correlation is :math:`C = \tilde W \Sigma_\psi \tilde W^*`, so for every :math:`\tilde W`

    .. math:: \sqrt{L_{pop}} \le \sqrt{\hat L} + \max(1,\sqrt\lambda)\,\|\tilde W\|_{op}^2\,
              \|\hat\Sigma_\psi - \Sigma_\psi\|_{HS},\qquad
              \|\hat\Sigma_\psi - \Sigma_\psi\|_{HS} \le \kappa^2\,\frac{1 + \sqrt{2\log(1/\delta)}}{\sqrt N}

    with probability :math:`1-\delta` (McDiarmid), :math:`\kappa^2 \ge \sup_x \|\psi(x)\|^2`. ``kappa2`` is
    taken as the maximum over all sampled inputs (train and the population sample). Returns the bound, the
    training loss, the population loss measured on ``n_population`` fresh pairs, and the network's
    population loss at width ``M_init`` for reference.
    """
    cfg.check()
    M_init = M_init or max(cfg.widths)
    data_seed, pop_seed, init_seed = spawn_seeds(seed, 3)
    N = cfg.n_train
    tr = make_data(cfg, N, int(data_seed), "train")
    n_pop = cfg.n_population if cfg.data == "gaussian" else min(cfg.n_population, 590)
    pop = make_data(cfg, n_pop, int(pop_seed), "test")
    Ztr = np.vstack([tr.X, tr.Xp])
    d = Ztr.shape[1]
    W0, V0, F0, _ = _init(cfg, d, M_init, Ztr, N, int(init_seed))
    K = cfg.K
    th = np.kron(infinite_width_ntk(Ztr, activation=cfg.activation), np.eye(K))
    n_steps = cfg.n_steps
    # the coefficient flow, integrated with the same small steps as the network (Euler on alpha)
    a = np.zeros(2 * N * K)
    g = np.empty(2 * N * K)
    for _ in range(n_steps):
        _k.kernel_coef_rhs(a, F0, th, N, K, cfg.lam, g)
        a += cfg.lr * g
    Ftr = F0 + (th @ a).reshape(2 * N, K)
    L_train = barlow_loss(Ftr[:N].T @ Ftr[N:] / N, cfg.lam)
    A = a.reshape(2 * N, K)
    Zpop = np.vstack([pop.X, pop.Xp])
    kx = infinite_width_ntk(Zpop, Ztr, activation=cfg.activation)
    f0pop = network_outputs(Zpop, W0, V0, cfg.activation)
    Fpop = f0pop + kx @ A
    L_pop = barlow_loss(Fpop[:n_pop].T @ Fpop[n_pop:] / n_pop, cfg.lam)
    Wt2 = float(np.linalg.eigvalsh(A.T @ infinite_width_ntk(Ztr, activation=cfg.activation) @ A
                                   + np.eye(K)).max())
    diag_pop = infinite_width_ntk_diag(np.vstack([Zpop, Ztr]), activation=cfg.activation)
    f0all = np.vstack([f0pop, F0])
    kappa2 = float(np.max(diag_pop + np.sum(f0all ** 2, axis=1)))
    eps = kappa2 * (1 + np.sqrt(2 * np.log(1 / cfg.conf_delta))) / np.sqrt(N)
    bound = (np.sqrt(L_train) + max(1.0, np.sqrt(cfg.lam)) * Wt2 * eps) ** 2
    # the network itself at width M_init, same data and initialisation
    r = train_network(tr.X, tr.Xp, W0, V0, lam=cfg.lam, activation=cfg.activation, lr=cfg.lr,
                      n_steps=n_steps, record_every=n_steps)
    Fn = network_outputs(Zpop, r.W, r.V, cfg.activation)
    L_pop_net = barlow_loss(Fn[:n_pop].T @ Fn[n_pop:] / n_pop, cfg.lam)
    return {"bound": float(bound), "train_loss": float(L_train), "test_loss": float(L_pop),
            "test_loss_network": float(L_pop_net), "train_loss_network": float(r.loss[-1]),
            "kappa2": kappa2, "W_op2": Wt2, "epsilon": float(eps), "n_train": N, "n_population": n_pop,
            "M_init": M_init, "delta": cfg.conf_delta}


def config_dict(cfg: SweepConfig) -> dict:
    """The configuration as a plain dict (for reports)."""
    return asdict(cfg)


__all__ = ["SweepConfig", "QUICK", "FULL", "run_width_sweep", "width_sweep_points", "width_point",
           "collect_width_sweep", "generalization_check", "make_data"]
