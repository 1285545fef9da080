r"""The experiments behind Tian, Chen & Ganguli 2021's remaining findings: the EMA target started at
:math:`W_a(0) = 0` (Eq. 15, the "automatic curriculum"), the alignment of the eigenspaces of :math:`W_p` and
:math:`F` (Eq. 7, Theorem 3, Eq. 17), and a symmetric predictor without EMA under separate weight decays.

Each study returns plain numbers and arrays for the claims and figures of :mod:`._claims`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..._random import spawn_seeds
from ...validate import compare
from . import _alignment as AL
from . import _analysis as A
from ._simulate import group_series, simulate_matrices, simulate_sgd

#: settings of the EMA study: weight decay, augmentation, EMA rate kappa (Tian's beta), the two groups
BYOL = dict(eta=0.1, sigma2=0.5, kappa=0.4, p0=(0.3, 0.14))
#: settings of the symmetric-predictor study: online weight decay, augmentation, start scale
SYMMETRIC = dict(eta_s=0.01, sigma2=0.5, eps=0.2, t_end=200.0)


def tian_p_minus(eta: float, sigma2: float, tau: float = 1.0) -> float:
    """Tian et al.'s Eq. 16: the unstable root :math:`p^*_-` (edge of the collapse basin) at fixed ``tau``
    (NaN if the non-collapsed roots do not exist)."""
    disc = tau ** 2 - 4 * eta * (1 + sigma2)
    return (tau - math.sqrt(disc)) / (2 * (1 + sigma2)) if disc >= 0 else float("nan")


# ------------------------------------------------------------------------------ EMA curriculum
def eq15_tau(t: np.ndarray, p: np.ndarray, kappa: float) -> np.ndarray:
    r"""Tian et al.'s Eq. 15 for :math:`\tau(0) = 0` on the invariant parabola:
    :math:`\tau(t) = p(t)^{-1}\kappa e^{-\kappa t}\int_0^t p(t')e^{\kappa t'}dt'` (trapezoid rule on ``t``)."""
    from scipy.integrate import cumulative_trapezoid  # here: scipy.integrate takes ~0.5 s to import

    return kappa * np.exp(-kappa * t) * cumulative_trapezoid(p * np.exp(kappa * t), t, initial=0.0) / p


def byol_collapse_edge(tau0: float, *, eta: float, sigma2: float, kappa: float, t_end: float = 200.0) -> float:
    """The smallest start ``p0`` (on the invariant parabola) from which the BYOL mode ODE does not collapse,
    target started at ``tau0``: bisection on ``p(t_end) > p*_-(tau = 1)``."""
    edge = tian_p_minus(eta, sigma2)
    lo, hi = 1e-3, 1.0
    for _ in range(30):
        mid = 0.5 * (lo + hi)
        p_end = A.ode_trajectory("euclidean", [mid], [0.0, t_end], eta=eta, sigma2=sigma2, beta=math.exp(-kappa),
                                 tau0=tau0)["p"][-1, 0]
        lo, hi = (lo, mid) if p_end > edge else (mid, hi)
    return 0.5 * (lo + hi)


def byol_study(seed: int, *, dim: int = 32, batch: int = 32, lr: float = 0.01, t_end: float = 60.0) -> dict[str, Any]:
    """BYOL with the target started at zero: Eq. 15 against the ODE, SGD against the ODE, and the collapse basin
    early (``tau0 = 0``) versus late (``tau0 = 1``) for a strong and a weak group of modes."""
    eta, sigma2, kappa, p0 = (BYOL[k] for k in ("eta", "sigma2", "kappa", "p0"))
    beta = math.exp(-kappa)
    dense = np.linspace(0.0, 40.0, 4001)
    one = A.ode_trajectory("euclidean", [p0[0]], dense, eta=eta, sigma2=sigma2, beta=beta, tau0=0.0)
    eq15_error = float(np.max(np.abs(one["tau"][:, 0] - eq15_tau(dense, one["p"][:, 0], kappa))))
    edge = tian_p_minus(eta, sigma2)
    runs, odes, outcome = {}, {}, {}
    for tau0, sd in zip((0.0, 1.0), spawn_seeds(seed, 2)):
        runs[tau0] = simulate_sgd("euclidean", dim=dim, batch=batch, lr=lr, t_end=t_end, p0=list(p0), eta=eta,
                                  sigma2=sigma2, beta=beta, tau0=tau0, n_record=31, seed=int(sd))
        odes[tau0] = A.ode_solution("euclidean", list(p0), runs[tau0].t, eta=eta, sigma2=sigma2, beta=beta, tau0=tau0)
        outcome[tau0] = {"sgd": (group_series(runs[tau0], "p")[-1] > edge).tolist(),
                         "ode": (np.array([odes[tau0].y_of(f"p{k}")[-1] for k in (1, 2)]) > edge).tolist()}
    # the weak group's target ratio is the ratio of two vanishing numbers once it has collapsed: p, s only there
    errors = compare(odes[0.0], runs[0.0], ("p1", "p2", "s1", "s2", "tau1")).errors
    return dict(eq15_error=eq15_error, edge_late=edge, edge_early=byol_collapse_edge(0.0, eta=eta, sigma2=sigma2,
                                                                                      kappa=kappa),
                errors=errors, outcome=outcome, runs=runs, odes=odes, dense_t=dense, dense=one,
                eq15=eq15_tau(dense, one["p"][:, 0], kappa))


# -------------------------------------------------------------------------------------- alignment
def _rotation(rng: np.random.Generator, n: int) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


def alignment_starts(seed: int, sigma2: float, n: int = 3) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Two unaligned starts ``(W0, Wp0)`` (random eigenbases): ``"stable"`` with a well-conditioned
    :math:`F = WW^\\top` (:math:`K` positive definite throughout) and ``"violated"`` with a small :math:`F` and
    predictor eigenvalues around :math:`1/(2(1+\\sigma^2))`, where Eq. 17 fails for every mode."""
    rng = np.random.default_rng(int(seed))
    U, V, R, Q = (_rotation(rng, n) for _ in range(4))
    c = 1 / (2 * (1 + sigma2))
    return {"stable": ((U * [0.9, 0.7, 0.55]) @ V.T, (R * [0.5, 0.3, 0.6]) @ R.T),
            "violated": ((V * [0.08, 0.05, 0.03]) @ U.T, (Q * [0.7 * c, c, 1.3 * c]) @ Q.T)}


def alignment_study(seed: int, *, sigma2: float = 0.5, eta: float = 0.01, batch: int = 256, lr: float = 0.005,
                    t_end: float = 20.0) -> dict[str, Any]:
    """The alignment system from the two starts of :func:`alignment_starts`: the commutator and Theorem 3's
    bounds along the ODE, and SGD on the 3 x 3 networks (symmetric predictor) from the same starts."""
    params = dict(eta_p=eta, eta_s=eta, sigma2=sigma2, alpha_p=1.0, tau=1.0)
    s_start, s_sgd = spawn_seeds(seed, 2)
    out: dict[str, Any] = {"identities": AL.identity_residuals(3, params, np.random.default_rng(int(s_start)))}
    for case, (W0, Wp0) in alignment_starts(int(s_start), sigma2).items():
        t = np.linspace(0.0, t_end, 801)
        sol = AL.alignment_solution(W0, Wp0, t, **params)
        rec = AL.commutator_record(sol.t, sol.y, 3, params)
        stable = rec["k_min"] > 0
        # the violated case: up to the first time K is positive definite again
        stop = int(np.argmax(stable)) if case == "violated" and stable.any() else len(t) - 1
        run = simulate_matrices(W0, Wp0, batch=batch, lr=lr, t_end=t[stop], sigma2=sigma2, eta_p=eta, eta_s=eta,
                                n_record=11, seed=int(s_sgd))
        sol_at_run = AL.alignment_solution(W0, Wp0, run.t, **params)
        comm_sgd = np.sqrt(run.observable("comm2"))
        weights = [name for name in run.names if name[:2] in ("W_", "P_")]
        out[case] = dict(record=rec, stop=stop, t_run=run.t, comm_sgd=comm_sgd,
                         sgd_error=compare(sol_at_run, run, weights).max_error(),
                         ratio_ode=float(rec["comm"][stop] / rec["comm"][0]),
                         peak_ode=float(rec["comm"][: stop + 1].max() / rec["comm"][0]),
                         ratio_sgd=float(comm_sgd[-1] / comm_sgd[0]),
                         bound_slack=float(max(np.max(rec["comm"] / rec["upper"]), np.max(rec["lower"] / rec["comm"]))))
    return out


# -------------------------------------------------------------------- symmetric predictor, no EMA
def symmetric_label(alpha_p: float, eta_p: float) -> bool:
    """Whether the negative-predictor mode collapses in the separate-decay ODE (see
    :func:`._analysis.symmetric_predictor_grid`)."""
    return A.symmetric_predictor_collapses(alpha_p, eta_p, **{k: SYMMETRIC[k] for k in ("eta_s", "sigma2", "eps",
                                                                                         "t_end")})


def symmetric_edge(*, alpha_p: float | None = None, ratio: float | None = None, lo: float, hi: float,
                   steps: int = 14) -> float:
    """Where the negative-predictor mode starts to survive along one line of the ``(alpha_p, eta_p/eta_s)``
    plane: in ``alpha_p`` at the fixed ``ratio``, or in the ratio at the fixed ``alpha_p`` (bisection on the ODE
    label between ``lo``, collapsing, and ``hi``, surviving)."""
    def collapses(x):
        a, r = (x, ratio) if alpha_p is None else (alpha_p, x)
        return symmetric_label(a, r * SYMMETRIC["eta_s"])

    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if collapses(mid) else (lo, mid)
    return 0.5 * (lo + hi)


def symmetric_point(params: dict, seed: int) -> dict[str, Any]:
    """SGD with a symmetric predictor and no EMA at one ``(alpha_p, eta_p)`` (sweep point function): two groups
    of modes started at ``p = +eps`` and ``-eps`` with ``s = eps^2``; the negative group's final ``s`` and
    whether it collapsed (below a tenth of its start), with the ODE's label for the same point."""
    eps, a, e_p = SYMMETRIC["eps"], float(params["alpha_p"]), float(params["eta_p"])
    run = simulate_sgd("euclidean", dim=int(params["dim"]), batch=int(params["batch"]), lr=float(params["lr"]),
                       t_end=SYMMETRIC["t_end"], p0=[eps, -eps], s0=[eps ** 2, eps ** 2], sigma2=SYMMETRIC["sigma2"],
                       alpha_p=a, eta_p=e_p, eta_s=SYMMETRIC["eta_s"], symmetric_predictor=True, n_record=5, seed=seed)
    s_end = float(group_series(run, "s")[-1, 1])
    return {"s_end": s_end, "sgd_collapsed": s_end < 0.1 * eps ** 2, "ode_collapsed": symmetric_label(a, e_p)}


def sample_symmetric_points(n: int, seed, margin: float = 0.15) -> np.ndarray:
    """``n`` points ``(alpha_p, eta_p/eta_s)``, log-uniform in ``[0.5, 2] x [0.25, 2]`` at least ``margin`` in
    ``|ln alpha_p|`` away from ``alpha_p = 1``, alternately below and above it (over this range of ratios the
    ODE's edge stays within 0.96 < alpha_p < 1.08, so every point is at least 8 % from it)."""
    rng = np.random.default_rng(int(seed))
    side = np.where(np.arange(n) % 2 == 0, -1.0, 1.0)
    la = side * rng.uniform(margin, np.log(2.0), n)
    return np.column_stack([np.exp(la), np.exp(rng.uniform(np.log(0.25), np.log(2.0), n))])


def symmetric_study(seed: int, sweeps: Any, *, n_grid: int = 9, n_points: int = 6, dim: int = 16, batch: int = 32,
                    lr: float = 0.02) -> dict[str, Any]:
    """The ODE phase diagram of the negative-predictor mode over ``alpha_p x eta_p/eta_s``, its edges along
    Tian et al.'s two settings (``eta_p = eta_s`` and ``alpha_p = 1``), and SGD at sampled points as one sweep."""
    eta_s = SYMMETRIC["eta_s"]
    alphas, ratios = np.geomspace(0.5, 2.0, n_grid), np.geomspace(0.25, 3.0, n_grid)
    grid = A.symmetric_predictor_grid(alphas, ratios * eta_s,
                                      **{k: SYMMETRIC[k] for k in ("eta_s", "sigma2", "eps", "t_end")})
    collapsed = grid.labels.astype(bool)
    quadrant = (alphas[:, None] <= 1.0) & (ratios[None, :] <= 1.0)
    s_pts, s_sgd = spawn_seeds(seed, 2)
    pts = sample_symmetric_points(n_points, s_pts)
    res = sweeps.sweep(symmetric_point, [{"sample": i, "alpha_p": float(a), "eta_p": float(r * eta_s), "dim": dim,
                                          "batch": batch, "lr": lr} for i, (a, r) in enumerate(pts)],
                       seed=int(s_sgd), desc="symmetric predictor: SGD at sampled points")
    on = {k: res.grid(("sample",), k, describe=("alpha_p", "eta_p")) for k in ("sgd_collapsed", "ode_collapsed")}
    ok = on["sgd_collapsed"].ok
    agree = (on["sgd_collapsed"].truth() == on["ode_collapsed"].truth())[ok]
    return dict(alphas=alphas, ratios=ratios, collapsed=collapsed, diagram=grid,
                quadrant_collapsed=float(np.mean(collapsed[quadrant])),
                edge_alpha=symmetric_edge(ratio=1.0, lo=0.8, hi=1.5),
                edge_ratio=symmetric_edge(alpha_p=1.0, lo=0.5, hi=3.0),
                points=pts, sgd_collapsed=on["sgd_collapsed"].truth(), ode_collapsed=on["ode_collapsed"].truth(), ok=ok,
                agreement=float(np.mean(agree)) if agree.size else float("nan"),
                failures=list(on["sgd_collapsed"].failures))


__all__ = ["BYOL", "SYMMETRIC", "tian_p_minus", "eq15_tau", "byol_collapse_edge", "byol_study", "alignment_starts",
           "alignment_study", "symmetric_label", "symmetric_edge", "symmetric_point",
           "sample_symmetric_points", "symmetric_study"]
