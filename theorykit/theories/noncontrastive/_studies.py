"""The experiments behind the claims: ODE-vs-SGD convergence in the width, SGD outcomes against the collapse
phase diagram, the emergence of a stable equilibrium under the cosine loss, continuation in the weight decay,
and the checks of the equilibria against closed forms.

The SGD studies run as sweeps of module-level point functions through ``sweeps.sweep(...)``, where
``sweeps`` is the :class:`theorykit.validate.Study` of a report or a :class:`theorykit.sweep.SweepOptions`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import sympy as sp

from ..._checks import check_int
from ..._random import spawn_seeds
from ...errors import InvalidParameterError
from ...sweep import SweepOptions
from ...validate import compare
from . import _analysis as A
from . import _continuation as C
from . import _symbolic as S
from ._simulate import group_series, simulate_sgd

#: sizes (dim, batch, lr) of the ODE-vs-SGD convergence study: lr * dim / batch halves at each step
SIZES_QUICK = ((16, 8, 0.04), (32, 16, 0.02), (64, 32, 0.01))
SIZES_FULL = ((16, 8, 0.04), (32, 16, 0.02), (64, 32, 0.01), (128, 64, 0.005))
#: the trajectories a convergence point returns
TRAJECTORIES = ("t", "p_sgd", "p_ode", "s_sgd", "s_ode", "loss_sgd", "loss_ode")


def paper_euclidean_roots(eta: float, sigma2: float, tau: float = 1.0) -> tuple[float, float] | None:
    r"""Tian et al. (2021): non-zero equilibria on the invariant parabola, roots of
    :math:`(1+\sigma^2)p^2 - \tau p + \eta = 0` (typed from the paper, as an independent reference)."""
    disc = tau ** 2 - 4 * eta * (1 + sigma2)
    if disc < 0:
        return None
    r = math.sqrt(disc)
    return (tau - r) / (2 * (1 + sigma2)), (tau + r) / (2 * (1 + sigma2))


# ------------------------------------------------------------------------------- equilibria checks
def euclidean_equilibria_check() -> tuple[float, float]:
    """Over a grid of ``(eta, sigma2)`` below the fold: the largest difference between the derived non-zero
    Euclidean equilibria and :func:`paper_euclidean_roots`, and the fraction of grid points where the signs
    of the compiled Jacobian make 0 and p+ stable and p- unstable."""
    csys = A.compiled_ode("euclidean", reduced=True)
    worst, n_ok, n_tot = 0.0, 0, 0
    for s2 in (0.0, 0.5, 1.0, 2.0):
        for e in np.linspace(0.0, 0.98 * A.euclidean_critical_eta(s2), 7)[1:]:
            ref = paper_euclidean_roots(e, s2)
            fps = [r for r, _ in A.reduced_fixed_points("euclidean", {"eta": e, "sigma2": s2}) if abs(r) > 1e-12]
            worst = max(worst, max(abs(a - b) for a, b in zip(sorted(fps), ref)) if len(fps) == 2 else np.inf)
            prm = csys.pack_params({"eta": e, "sigma2": s2})
            stab = [csys.jac(0.0, np.array([y]), prm)[0, 0] < 0 for y in (0.0, ref[0], ref[1])]
            n_ok += int(stab == [True, False, True])
            n_tot += 1
    return worst, n_ok / n_tot


def byol_equilibrium_check(sigma2: float, eta: float = 0.1) -> tuple[bool, dict[str, list[float]]]:
    """Whether ``(p+, p+^2, tau = 1)`` is an equilibrium of the BYOL system with negative eigenvalues for
    several EMA momenta ``beta``; and the real parts of the eigenvalues per ``beta``."""
    cb = A.compiled_ode("euclidean", 1, True)
    _, pp = A.euclidean_fixed_points(eta, sigma2)
    ok, eigs = True, {}
    for b in (0.1, 0.5, 0.9, 0.99):
        prm = A.pack(cb, A.hyper(eta, sigma2, 1.0, b))
        y = np.array([pp, pp ** 2, 1.0])
        ev = np.linalg.eigvals(cb.jac(0.0, y, prm))
        eigs[str(b)] = [float(x.real) for x in ev]
        ok &= np.abs(cb.rhs(0.0, y, prm)).max() < 1e-12 and bool(np.all(ev.real < 0))
    return ok, eigs


def cosine_shape_check() -> tuple[float, str, bool]:
    """The largest ``eigenvalue * (1 + sigma2) / alpha_p`` of the cosine shape system at ``x = 1`` over a grid
    (theory: -1), the eigenvalue derived symbolically, and whether ``eta`` appears in the shape system."""
    shp = S.cosine_shape_system()
    x = shp.states[0]
    lam_sym = sp.simplify(sp.diff(shp.rhs[0], x).subs(x, 1))
    cs = A.compiled_ode("cosine", shape=True)
    worst = -np.inf
    for s2 in (0.0, 1.0, 3.0):
        for ap_ in (0.3, 1.0, 3.0):
            for f1 in (0.2, 0.5, 0.8):
                prm = cs.pack_params({"sigma2": s2, "alpha_p": ap_, "f1": f1})
                worst = max(worst, float(cs.jac(0.0, np.array([1.0]), prm)[0, 0]) * (1 + s2) / ap_)
    return worst, str(lam_sym), "eta" in shp.param_names


def bifurcation(loss: str, params: dict[str, float], eta_max: float) -> dict[str, Any]:
    """Branch of the non-collapsed equilibrium of the reduced flow in ``eta`` and its folds
    (pseudo-arclength continuation, :func:`theorykit.analysis.continue_branch`)."""
    eta_v, p_v, stable, folds = C.continue_in_eta(loss, params, (0.0, eta_max))
    return dict(eta=eta_v, p=p_v, stable=stable, folds=list(folds), method="pseudo-arclength continuation")


# --------------------------------------------------------------------------------- ODE vs SGD
def convergence_point(params: dict, seed: int) -> dict[str, Any]:
    """One SGD run against the eigenmode ODE (sweep point function, see :func:`convergence_study`).

    Returns ``error`` (max over the records and over ``p<k>``, ``s<k>`` of |SGD - ODE|), ``loss_error``
    (max over the intervals of |SGD interval-mean loss - ODE loss|; SGD records the mean minibatch loss over
    each interval, compared with the trapezoid-rule interval mean of the ODE loss) and the trajectories
    ``t`` float64[n_record], ``p_sgd``, ``p_ode``, ``s_sgd``, ``s_ode`` float64[n_record, n_groups],
    ``loss_sgd``, ``loss_ode`` float64[n_record].
    """
    loss, p0 = params["loss"], [float(v) for v in params["p0"]]
    hyper = dict(eta=float(params["eta"]), sigma2=float(params["sigma2"]), alpha_p=float(params["alpha_p"]))
    run = simulate_sgd(loss, dim=int(params["dim"]), batch=int(params["batch"]), lr=float(params["lr"]),
                       t_end=float(params["t_end"]), p0=p0, n_record=int(params["n_record"]), seed=seed, **hyper)
    sol = A.ode_solution(loss, p0, run.t, **hyper)
    groups = [f"{kind}{k + 1}" for kind in ("p", "s") for k in range(len(p0))]
    errors = compare(sol, run, (*groups, "loss"))
    ode = {kind: np.column_stack([sol.y_of(f"{kind}{k + 1}") for k in range(len(p0))]) for kind in ("p", "s")}
    return {"error": errors.max_error(groups), "loss_error": errors.errors["loss"], "t": run.t,
            "p_sgd": group_series(run, "p"), "p_ode": ode["p"], "s_sgd": group_series(run, "s"), "s_ode": ode["s"],
            "loss_sgd": run.observable("loss"), "loss_ode": sol.observed("loss")}


def convergence_study(loss: str, sizes, n_seeds: int, *, seed: int = 0, sweeps: Any = SweepOptions(),
                      t_end: float = 6.0, p0=(1.0, 0.4), eta: float = 0.05, sigma2: float = 0.5,
                      alpha_p: float = 1.0, n_record: int = 13) -> dict[str, Any]:
    """Max-in-time error of the group eigenvalues of SGD against the eigenmode ODE, for every size
    ``(dim, batch, lr)`` times ``n_seeds`` replicates, as one sweep (per-point seeds from ``seed``).

    Returns ``dims`` (n_sizes,), ``sizes`` (n_sizes, 3), ``errors`` and ``loss_errors`` (n_sizes, n_seeds,
    NaN where a point failed), ``ok`` bool (n_sizes, n_seeds), ``failures`` (one line per failed point) and
    the :data:`TRAJECTORIES` of the first successful replicate at the largest size with one, with its
    ``keep_size`` (absent if every point failed).
    """
    S.check_loss(loss)
    n_seeds = check_int("n_seeds", n_seeds, 1)
    if not len(sizes):
        raise InvalidParameterError("sizes must contain at least one (dim, batch, lr)")
    common = {"loss": loss, "t_end": float(t_end), "p0": [float(v) for v in np.ravel(p0)], "eta": float(eta),
              "sigma2": float(sigma2), "alpha_p": float(alpha_p), "n_record": int(n_record)}
    points = [{**common, "dim": int(d), "batch": int(b), "lr": float(lr), "replicate": r}
              for d, b, lr in sizes for r in range(n_seeds)]
    res = sweeps.sweep(convergence_point, points, seed=seed, desc=f"{loss}: ODE vs SGD")
    on_grid = {key: res.grid(("dim", "replicate"), key, describe=("loss", "dim", "batch", "lr", "replicate"))
               for key in ("error", "loss_error", *TRAJECTORIES)}
    ok = on_grid["error"].ok
    out = dict(dims=on_grid["error"].coords["dim"].astype(float), sizes=np.array(sizes, dtype=float),
               errors=on_grid["error"].values, loss_errors=on_grid["loss_error"].values, ok=ok,
               failures=list(on_grid["error"].failures))
    if ok.any():
        i = int(np.nonzero(ok.any(axis=1))[0][-1])
        j = int(np.nonzero(ok[i])[0][0])
        out.update({key: on_grid[key].values[i, j] for key in TRAJECTORIES}, keep_size=out["sizes"][i])
    return out


# ------------------------------------------------------------------------------ phase agreement
def sample_phase_points(n: int, seed, *, eta_range=(0.005, 0.5), sigma2_range=(0.0, 2.0), margin: float = 0.2,
                        p0: float = 1.0) -> np.ndarray:
    """``n`` points ``(eta, sigma2)`` at least ``margin`` (relative, in eta) away from the Euclidean boundary."""
    rng = np.random.default_rng(int(spawn_seeds(seed, 1)[0]))
    pts = []
    while len(pts) < n:
        e, s2 = rng.uniform(*eta_range), rng.uniform(*sigma2_range)
        ec = A.euclidean_critical_eta(s2)
        if abs(e - ec) < margin * ec:
            continue
        fp = A.euclidean_fixed_points(e, s2)
        if fp is not None and abs(p0 - fp[0]) < margin * fp[0]:
            continue
        pts.append((e, s2))
    return np.array(pts)


def phase_point(params: dict, seed: int) -> dict[str, Any]:
    """SGD outcome versus theory at one ``(eta, sigma2)`` for both losses (sweep point function).

    Euclidean: predicted collapse from the closed form (largest group), measured ``max_k |p_k(T)| <
    collapse_level``. Cosine: predicted from the concentrated two-group ODE (normalised ratio ``min q / max q``
    at ``T = min(t_end, 3/eta)`` below ``collapse_ratio``), measured the same way on SGD. The two SGD runs
    get independent seeds drawn from ``seed``. Returns the four outcomes ``euc_pred``, ``euc_sim``,
    ``cos_pred``, ``cos_sim`` (bool) and the measured ``euc_max_p``, ``cos_ratio_ode``, ``cos_ratio_sgd``
    (so that a diverged run shows up as a non-finite point).
    """
    e, s2, p0 = float(params["eta"]), float(params["sigma2"]), [float(v) for v in params["p0"]]
    dim, batch, lr, t_end = int(params["dim"]), int(params["batch"]), float(params["lr"]), float(params["t_end"])
    s_euc, s_cos = (int(s) for s in spawn_seeds(seed, 2))
    run = simulate_sgd("euclidean", dim=dim, batch=batch, lr=lr, t_end=t_end, p0=p0, eta=e, sigma2=s2,
                       n_record=5, seed=s_euc)
    euc_max = float(np.max(np.abs(group_series(run, "p")[-1])))
    tc = min(t_end, 3.0 / e)
    ode = A.ode_trajectory("cosine", p0, [0.0, tc], eta=e, sigma2=s2)
    ratio_ode = float(A.normalised_ratio(ode["p"][-1:])[0])
    runc = simulate_sgd("cosine", dim=dim, batch=batch, lr=lr, t_end=tc, p0=p0, eta=e, sigma2=s2, n_record=5,
                        seed=s_cos)
    ratio_sgd = float(A.normalised_ratio(group_series(runc, "p")[-1:])[0])
    return {"euc_pred": bool(A.predicted_euclidean_collapse(e, s2, max(p0))),
            "euc_sim": euc_max < float(params["collapse_level"]), "euc_max_p": euc_max,
            "cos_pred": ratio_ode < float(params["collapse_ratio"]), "cos_ratio_ode": ratio_ode,
            "cos_sim": ratio_sgd < float(params["collapse_ratio"]), "cos_ratio_sgd": ratio_sgd}


def phase_agreement(points: np.ndarray, seed, *, sweeps: Any = SweepOptions(), dim: int = 16, batch: int = 16,
                    lr: float = 0.05, t_end: float = 200.0, p0=(1.0, 0.4), collapse_level: float = 0.05,
                    collapse_ratio: float = 0.1) -> dict[str, Any]:
    """SGD outcome versus theory at sampled ``(eta, sigma2)`` points (n, 2), for both losses, as one sweep.

    Returns ``points``, bool arrays (n,) ``euc_pred``, ``euc_sim``, ``cos_pred``, ``cos_sim`` (False where a
    point failed), ``ok`` (n,), ``failures`` (one line per failed point) and ``agreement``, the fraction of
    agreeing outcomes over the successful points (NaN if none succeeded).
    """
    points = np.asarray(points, dtype=float).reshape(-1, 2)
    pts = [{"sample": i, "eta": float(e), "sigma2": float(s2), "dim": int(dim), "batch": int(batch), "lr": float(lr),
            "t_end": float(t_end), "p0": [float(v) for v in np.ravel(p0)], "collapse_level": float(collapse_level),
            "collapse_ratio": float(collapse_ratio)} for i, (e, s2) in enumerate(points)]
    res = sweeps.sweep(phase_point, pts, seed=seed, desc="phase diagram: SGD at sampled points")
    on_grid = {k: res.grid(("sample",), k, describe=("eta", "sigma2")) for k in ("euc_pred", "euc_sim", "cos_pred",
                                                                              "cos_sim")}
    out: dict[str, Any] = {k: g.truth() for k, g in on_grid.items()}
    ok = on_grid["euc_pred"].ok
    agree = np.concatenate([(out["euc_pred"] == out["euc_sim"])[ok], (out["cos_pred"] == out["cos_sim"])[ok]])
    out.update(points=points, ok=ok, agreement=float(np.mean(agree)) if agree.size else float("nan"),
               failures=list(on_grid["euc_pred"].failures))
    return out


# ------------------------------------------------------------------------------------ emergence
def emergence_study(eta: float, sigma2: float, seed, *, dim: int = 32, batch: int = 32, lr: float = 0.01,
                    t_end: float | None = None, p0: float = 1.0) -> dict[str, Any]:
    """Cosine loss, one group of modes: the fold ``eta_fold`` of the frozen-norm sextic along the run.

    The norms are measured from the SGD eigen-observables (concentration values); a stable equilibrium
    exists for the frozen-norm dynamics once ``eta_fold(t) > eta``.
    """
    t_end = t_end if t_end is not None else 2.5 / eta
    run = simulate_sgd("cosine", dim=dim, batch=batch, lr=lr, t_end=t_end, p0=[p0], eta=eta, sigma2=sigma2,
                       n_record=41, seed=seed)
    ode = A.ode_trajectory("cosine", [p0], run.t, eta=eta, sigma2=sigma2)

    def fold(p, s):
        nu_u = np.sqrt((1 + sigma2) * p ** 2 * s)
        nu_v = np.sqrt((1 + sigma2) * s)
        return np.array([A.cosine_fold_eta(sigma2, 1.0, 1.0, a, b) for a, b in zip(nu_u, nu_v)])

    def first_above(f):
        # linear interpolation of the first upward crossing of eta between records
        idx = np.nonzero(f > eta)[0]
        if not idx.size:
            return float("nan")
        i = int(idx[0])
        if i == 0:
            return float(run.t[0])
        t0_, t1_, f0, f1 = run.t[i - 1], run.t[i], f[i - 1], f[i]
        return float(t0_ + (eta - f0) / (f1 - f0) * (t1_ - t0_))

    f_sim = fold(run.observable("p1"), run.observable("s1"))
    f_ode = fold(ode["p"][:, 0], ode["s"][:, 0])
    return dict(t=run.t, fold_sim=f_sim, fold_ode=f_ode, eta=eta, t_emerge_sim=first_above(f_sim),
                t_emerge_ode=first_above(f_ode), p_sim=run.observable("p1"), p_ode=ode["p"][:, 0])


# ---------------------------------------------------------------- fold curves, self-consistent norms
def fold_curve_study(sigma2: float = 0.5, sigma2_bounds=(0.0, 2.0), nu_u_bounds=(0.2, 3.0)) -> dict[str, Any]:
    r"""Both collapse boundaries as fold curves (:func:`theorykit.analysis.continue_fold`) against their closed
    forms along the whole curve: Euclidean in ``(eta, sigma2)`` against :math:`\tau^2 = 4\eta(1+\sigma^2)`
    (``tau = 1``), the frozen-norm cosine fold in ``(nu_u, eta)`` against the SymPy-derived ``eta_fold(nu_u)``.
    A deviation is infinite unless the curve reached both ends of its box."""
    euc = C.euclidean_fold_curve(sigma2_bounds)
    cos = C.cosine_fold_curve(nu_u_bounds, sigma2)
    nu_v = A.frozen_norms(1.0, sigma2)[1]

    def eta_fold(nu):
        return np.array([A.cosine_fold_eta(sigma2, 1.0, 1.0, x, nu_v) for x in np.atleast_1d(nu)])

    def whole(cv, name, bounds):
        ends = np.sort(cv.param_of(name)[[0, -1]])
        return cv.stop_reason == "bounds / bounds" and np.allclose(ends, bounds, rtol=0, atol=1e-9)

    eta, s2 = euc.param_of("eta"), euc.param_of("sigma2")
    euc_dev = float(np.max(np.abs(1.0 - 4 * eta * (1 + s2)))) if whole(euc, "sigma2", sigma2_bounds) else np.inf
    nu = cos.param_of("nu_u")
    cos_dev = float(np.max(np.abs(cos.param_of("eta") / eta_fold(nu) - 1))) if whole(cos, "nu_u", nu_u_bounds) \
        else np.inf
    return dict(euclidean=euc, cosine=cos, euclidean_dev=euc_dev, cosine_dev=cos_dev, eta_fold=eta_fold)


def self_consistent_check(seed, n_points: int = 16) -> tuple[float, tuple[str, str]]:
    r"""The cosine loss with one group of modes carrying the whole spectrum: the SymPy residuals of
    ``p' + eta p`` and ``s' + 2 eta s`` (strings, both ``"0"``), and the largest of the same residuals of the
    compiled system at random points, relative to the size of the gradient terms that cancel
    (:math:`\alpha_p/((1+\sigma^2)|p|)` and :math:`2/(1+\sigma^2)`); infinite if SymPy left a residual."""
    residuals = S.cosine_self_consistent_drift()
    csys = A.compiled_ode("cosine", 1)
    rng = np.random.default_rng(int(spawn_seeds(seed, 1)[0]))
    worst = 0.0
    for _ in range(n_points):
        p, s = rng.choice([-1.0, 1.0]) * rng.uniform(0.1, 2.0), rng.uniform(0.05, 2.0)
        eta, s2, ap = rng.uniform(0.0, 0.5), rng.uniform(0.0, 2.0), rng.uniform(0.2, 3.0)
        f = csys.rhs(0.0, np.array([p, s]), A.pack(csys, A.hyper(eta, s2, ap)))
        worst = max(worst, abs(f[0] + eta * p) * (1 + s2) * abs(p) / ap, abs(f[1] + 2 * eta * s) * (1 + s2) / 2)
    return (worst if all(r == 0 for r in residuals) else np.inf), tuple(str(r) for r in residuals)
