"""The experiments behind the claims: the width sweep (NTK change, weight distance, network against the kernel
model), kernelised Barlow Twins and its generalisation bound, and the check of the numba gradient against the
SymPy gradient flow.

The width sweep runs its module-level point function through ``sweeps.sweep(...)``, where ``sweeps`` is the
:class:`theorykit.validate.Study` of a report or a :class:`theorykit.sweep.SweepOptions`, and reduces the
points with :meth:`theorykit.sweep.SweepResult.grid`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import sympy as sp

from ..._checks import check_int, check_range
from ..._random import SeedLike, spawn_seeds
from ...errors import InvalidParameterError
from ...sweep import SweepOptions
from ...validate import compare
from . import _kernels as _k
from . import _symbolic as S
from ._analysis import deviation_bound, feature_kernel_diag, infinite_width_ntk, ode_solution, pair_rademacher_trace
from ._simulate import (PairData, barlow_loss, cross_correlation, digits_pairs, empirical_ntk, gaussian_pairs,
                        init_params, loss_and_gradient, network_outputs, relative_change, simulate_kernel_model,
                        simulate_network)


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

    @property
    def t(self) -> np.ndarray:
        """The record times of a training run, float64[n_steps // record_every + 1]."""
        return np.arange(self.n_steps // self.record_every + 1) * self.record_every * self.lr

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
    return gaussian_pairs(n, cfg.d, n_clusters=cfg.n_clusters, spread=cfg.spread, noise=cfg.noise,
                          radius=cfg.radius, seed=seed)


def _init(cfg: SweepConfig, d: int, M: int, Z: np.ndarray, N: int, seed: int, tries: int = 50):
    """Initial weights, redrawn (up to ``tries`` times) until L(0) < ``cfg.init_loss_below``."""
    for s in spawn_seeds(seed, tries):
        W, V = init_params(d, M, cfg.K, seed=int(s))
        F = network_outputs(Z, W, V, cfg.activation)
        L0 = barlow_loss(cross_correlation(F[:N], F[N:2 * N]), cfg.lam)
        if cfg.init_loss_below is None or L0 < cfg.init_loss_below:
            break
    return W, V, F, L0


# ---------------------------------------------------------------------------------------------- width sweep
def width_sweep_points(cfg: SweepConfig = QUICK, seed: int = 0) -> list[dict]:
    """The points of a width sweep, replicate-major.

    Replicate ``s`` takes its training and evaluation pairs and its initialisation seed from
    ``spawn_seeds(seed, n_seeds)[s]``, so all widths of one replicate see the same data (a paired design
    for the width fits; initial weights are drawn from ``init_seed + M``); the minibatch sampling of SGD
    (``batch_size``) uses each point's own sweep seed. ``config`` is the whole configuration as a plain
    dict, so stored points are only reused for the same settings.
    """
    cfg.check()
    conf = asdict(cfg)
    points = []
    for s, sd in enumerate(spawn_seeds(seed, cfg.n_seeds)):
        data_seed, eval_seed, init_seed = (int(v) for v in spawn_seeds(int(sd), 3))
        points += [{"M": int(M), "replicate": s, "data_seed": data_seed, "eval_seed": eval_seed,
                    "init_seed": init_seed, "config": conf} for M in cfg.widths]
    return points


def width_point(params: dict, seed: int) -> dict[str, Any]:
    """Train one network of width ``params["M"]`` against its kernel model (sweep point function, see
    :func:`width_sweep_points`).

    Returns ``ntk_change_t`` float64[n_checkpoints + 1], ``loss_net`` / ``loss_lin`` / ``loss_ode``
    float64[n_rec] (the network, the kernel model's gradient descent and its gradient-flow ODE), the scalars
    ``ntk_init_fluct``, ``weight_dist``, ``gap_eval``, ``gap_train``, ``L0``, ``kernel_loss_gap``
    (``max_t |L_net - L_ode| / L(0)``, from :func:`theorykit.validate.compare`) and ``hit_index`` (first
    record with loss <= ``delta``, ``-1`` if none; an index, not a time, so a run that never converges is
    still a finite, successful point).
    """
    conf = dict(params["config"])
    cfg = SweepConfig(**{**conf, "widths": tuple(conf["widths"])})
    M = check_int("M", params["M"], 1)
    N, n_steps = cfg.n_train, cfg.n_steps
    tr = make_data(cfg, N, int(params["data_seed"]), "train")
    ev = make_data(cfg, cfg.n_eval, int(params["eval_seed"]), "test")
    Z = np.vstack([tr.X, tr.Xp, ev.X])
    ntr = 2 * N * cfg.K  # training rows of the NTK
    th_inf = np.kron(infinite_width_ntk(Z[:2 * N], activation=cfg.activation), np.eye(cfg.K))
    W0, V0, F0, L0 = _init(cfg, Z.shape[1], M, Z, N, int(params["init_seed"]) + M)
    th0 = empirical_ntk(Z, W0, V0, cfg.activation)
    seg = n_steps // cfg.n_checkpoints
    net = simulate_network(tr.X, tr.Xp, W0, V0, lam=cfg.lam, activation=cfg.activation, lr=cfg.lr, n_steps=n_steps,
                           record_every=cfg.record_every, batch_size=cfg.batch_size, seed=seed, probe=Z,
                           ntk_every=seg)
    lin = simulate_kernel_model(F0, th0, N, lr=cfg.lr, n_steps=n_steps, record_every=cfg.record_every, lam=cfg.lam)
    ode = ode_solution(F0[:2 * N], th0[:ntr, :ntr], N, net.t, lam=cfg.lam, rtol=1e-6, atol=1e-9)
    loss_net = net.observable("loss")
    FT, FL = net.observable("F")[-1], lin.observable("F")[-1]
    hit = np.nonzero(loss_net <= cfg.delta)[0]
    return {"ntk_change_t": net.observable("ntk_change")[::seg // cfg.record_every],
            "ntk_init_fluct": relative_change(th0[:ntr, :ntr], th_inf),
            "weight_dist": float(net.observable("weight_dist")[-1]),
            "gap_eval": relative_change(FT[2 * N:], FL[2 * N:]), "gap_train": relative_change(FT[:2 * N], FL[:2 * N]),
            "L0": float(L0), "hit_index": int(hit[0]) if hit.size else -1,
            "kernel_loss_gap": compare(ode, net, ("loss",)).errors["loss"] / float(loss_net[0]),
            "loss_net": loss_net, "loss_lin": lin.observable("loss"), "loss_ode": ode.observed("loss")}


#: the values of :func:`width_point` that :func:`run_width_sweep` arranges on the (width, replicate) grid
WIDTH_POINT_KEYS = ("ntk_change_t", "ntk_init_fluct", "weight_dist", "gap_eval", "gap_train", "L0", "hit_index",
                    "kernel_loss_gap", "loss_net", "loss_lin", "loss_ode")


def run_width_sweep(cfg: SweepConfig = QUICK, seed: int = 0, *, sweeps: Any = SweepOptions()) -> dict[str, Any]:
    r"""Train networks at every width and seed; measure NTK change, weight distance and the kernel-model gap.

    Runs :func:`width_point` over :func:`width_sweep_points` with ``sweeps.sweep`` (a
    :class:`~theorykit.sweep.SweepOptions` or the report's :class:`~theorykit.validate.Study`: inline, a local
    pool, a dask cluster, a store of finished points for resuming).

    Returns a dict of arrays indexed ``[width, seed, ...]``: ``ntk_change`` (final relative Frobenius change
    of the training-set NTK), ``ntk_change_t`` (at each checkpoint), ``ntk_init_fluct``
    (:math:`\|\Theta_0-\Theta_\infty\|_F/\|\Theta_\infty\|_F`), ``weight_dist``
    (:math:`\|\theta_T-\theta_0\|`), ``gap_eval`` / ``gap_train`` (relative distance of network and
    linearised-model outputs on evaluation / training inputs at ``t_end``), ``kernel_loss_gap``, ``loss_net``,
    ``loss_lin`` (GD of the linearised model), ``loss_ode`` (its gradient-flow ODE), ``L0`` and ``t_hit``
    (first record time with loss <= ``delta``, ``inf`` if never), plus ``t``, ``widths`` and ``failures``
    (one line per failed point; its entries are NaN).

    Raises
    ------
    InvalidParameterError
        If every point failed (the lines of the failures are in the message).
    """
    res = sweeps.sweep(width_point, width_sweep_points(cfg, seed), seed=seed, desc="barlow_ntk width sweep")
    grids = {key: res.grid(("M", "replicate"), key) for key in WIDTH_POINT_KEYS}
    ok = grids["L0"].ok
    if not ok.any():
        raise InvalidParameterError("every point of the width sweep failed:\n" + "\n".join(grids["L0"].failures))
    out: dict[str, Any] = {key: g.values for key, g in grids.items()}
    t, hit = cfg.t, out.pop("hit_index")
    out["t_hit"] = np.full(hit.shape, np.nan)
    out["t_hit"][ok] = np.where(hit[ok] >= 0, t[np.maximum(hit[ok], 0).astype(int)], np.inf)
    out.update(ntk_change=out["ntk_change_t"][:, :, -1], t=t, widths=np.asarray(cfg.widths, dtype=float),
               failures=list(grids["L0"].failures))
    return out


# ---------------------------------------------------------------------------------------------- generalisation
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
    C_train = cross_correlation(fit.F_train[:N], fit.F_train[N:])
    L_train = barlow_loss(C_train, cfg.lam)
    Zpop = np.vstack([pop.X, pop.Xp])
    kx = infinite_width_ntk(Zpop, Ztr, activation=cfg.activation)
    Fpop = network_outputs(Zpop, W0, V0, cfg.activation) + kx @ A
    prod = Fpop[:n_pop, :, None] * Fpop[n_pop:, None, :]  # f_k(x) f_l(x+) per population pair
    C_pop = prod.mean(axis=0)
    L_pop = barlow_loss(C_pop, cfg.lam)
    weights = np.where(np.eye(K) > 0, 1.0, cfg.lam)
    deviation = float(np.sqrt(np.sum(weights * (C_pop - C_train) ** 2)))
    deviation_se = float(np.sqrt(np.sum(weights * prod.var(axis=0, ddof=1)) / n_pop))
    W_op2 = float(np.linalg.eigvalsh(A.T @ theta @ A + np.eye(K)).max())
    n_mom = cfg.n_moment if cfg.data == "gaussian" else min(cfg.n_moment, 590)
    mom = make_data(cfg, n_mom, fit.moment_seed, "test")
    kk = feature_kernel_diag(mom.X, W0, V0, cfg.activation) * feature_kernel_diag(mom.Xp, W0, V0, cfg.activation)
    second_moment = float(kk.mean())
    eps = deviation_bound(W_op2, second_moment, N, cfg.conf_delta, cfg.lam)
    bound = (np.sqrt(L_train) + eps) ** 2
    # the network itself at width M_init, same data and initialisation
    net = simulate_network(tr.X, tr.Xp, W0, V0, lam=cfg.lam, activation=cfg.activation, lr=cfg.lr,
                           n_steps=cfg.n_steps, record_every=cfg.n_steps, probe=Zpop)
    Fn = net.observable("F")[-1]
    L_pop_net = barlow_loss(cross_correlation(Fn[:n_pop], Fn[n_pop:]), cfg.lam)
    return {"deviation": deviation, "deviation_se": deviation_se, "deviation_bound": eps,
            "deviation_ratio": eps / deviation if deviation > 0 else float("inf"),
            "train_loss": float(L_train), "test_loss": float(L_pop),
            "bound": float(bound), "bound_ratio": float(bound / L_pop) if L_pop > 0 else float("inf"),
            "test_loss_network": float(L_pop_net), "train_loss_network": float(net.observable("loss")[-1]),
            "W_op2": W_op2, "second_moment": second_moment,
            "second_moment_se": float(kk.std(ddof=1) / np.sqrt(kk.size)),
            "rademacher_rms": float(np.sqrt(second_moment / N)),
            "rademacher_trace": pair_rademacher_trace(feature_kernel_diag(tr.X, W0, V0, cfg.activation),
                                                      feature_kernel_diag(tr.Xp, W0, V0, cfg.activation)),
            "n_train": N, "n_population": n_pop, "n_moment": n_mom, "M_init": fit.W0.shape[0],
            "delta": cfg.conf_delta}


# ---------------------------------------------------------------------------------------------- derivation
def symbolic_gradient_check(seed: int = 0, activation: str = "tanh") -> float:
    """Largest difference between the SymPy gradient flow of a tiny network and the numba gradient.

    Builds :func:`._symbolic.network_flow_system` (d = 2, M = 3, K = 2, N = 2), evaluates its right-hand
    side with ``lambdify`` at random weights and data and compares with ``-loss_and_gradient``.
    """
    d, M, K, N = 2, 3, 2, 2
    sysm = S.network_flow_system(d, M, K, N, activation, expand=False)
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((M, d))
    V = rng.standard_normal((K, M))
    X = rng.standard_normal((N, d))
    Xp = X + 0.3 * rng.standard_normal((N, d))
    lam = 0.7
    f = sp.lambdify([sysm.states, sysm.params], list(sysm.rhs), "numpy")
    y = np.concatenate([W.ravel(), V.ravel()])
    p = np.concatenate([[lam], X.ravel(), Xp.ravel()])
    sym = np.asarray(f(y, p), dtype=float)
    _, gW, gV = loss_and_gradient(X, Xp, W, V, lam=lam, activation=activation)
    num = -np.concatenate([gW.ravel(), gV.ravel()])
    return float(np.max(np.abs(sym - num)))
