"""Analysis of the contrastive ODEs: the uninformative state and its stability (learnability threshold),
basins of feature selection, final cosines against the augmentation noise, and ODE-vs-SGD errors (of our
reconstructed model, see ``derivations/contrastive_highdim.md`` §0)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from typing import Any, Sequence

import numpy as np
from scipy.optimize import brentq

from ..._checks import check_int
from ..._random import SeedLike, as_generator
from ...analysis import linearize
from ...errors import InvalidParameterError
from ...solve import solve, solve_ensemble
from ...sweep import SweepResult, sweep
from ._model import ContrastiveODE, HiddenLaw, Hyper, Trajectory, simulate_sgd


def ode_trajectory(ode: ContrastiveODE, hyper: Hyper, law: HiddenLaw, q0: Any, Q0: float,
                   t_eval: Sequence[float]) -> Trajectory:
    """Integrate the closed ODEs (Dormand–Prince) and return the order parameters at ``t_eval``."""
    t_eval = np.asarray(t_eval, dtype=float)
    y0 = ode.state(q0, Q0)
    sol = solve(ode.csys, y0, (0.0, float(t_eval[-1])), ode.pack(hyper, law), t_eval=t_eval[t_eval > 0],
                rtol=1e-8, atol=1e-10)
    y = np.vstack([y0[None, :], sol.y]) if t_eval[0] == 0 else sol.y
    d, K = ode.d, ode.K
    y = y.reshape(len(t_eval), K, d + 1)
    return Trajectory(t_eval, np.transpose(y[:, :, :d], (0, 2, 1)), y[:, :, d])


@dataclass(frozen=True)
class Uninformative:
    """The uninformative fixed point ``q = 0, Q = Q_star`` and its linear stability.

    ``growth`` is the cosine growth rate ``d log m_i / dt`` (the q-block eigenvalue); ``eigenvalues`` of
    the full Jacobian; ``G1``, ``B0``, ``D0`` the Gaussian coefficients at the point (``A_i ≈ G1 <c²> q_i``);
    ``threshold_m2`` the ``<c²>`` at which ``growth`` changes sign, ``-(B0 + λ) / G1`` (``Q_star`` does not
    depend on the law).
    """

    Q_star: float
    eigenvalues: np.ndarray
    growth: float
    G1: float
    B0: float
    D0: float
    threshold_m2: float

    @property
    def learnable(self) -> bool:
        return self.growth > 0


def uninformative_state(ode: ContrastiveODE, hyper: Hyper, law: HiddenLaw, *, Q_bounds=(1e-6, 1e4)) -> Uninformative:
    """Solve ``dQ/dt = 0`` at ``q = 0`` (``τ D0(Q) / (2Q) = B0(Q) + λ``; the largest root) and linearise there.

    Raises ``ValueError`` if there is no positive root in ``Q_bounds`` (the norm collapses to 0).
    """
    zero = np.zeros(ode.d)

    def g(Q: float) -> float:
        _, B, D = ode.expectations(zero, Q, hyper, law)
        return hyper.tau * D / (2 * Q) - B - hyper.lam

    grid = np.geomspace(*Q_bounds, 80)
    vals = np.array([g(Q) for Q in grid])
    sign = np.where(np.sign(vals[:-1]) * np.sign(vals[1:]) < 0)[0]
    if sign.size == 0:
        raise ValueError(f"no uninformative fixed point with Q > 0 at {hyper} (the weights collapse)")
    i = sign[-1]
    Q_star = brentq(g, grid[i], grid[i + 1], xtol=1e-13, rtol=1e-12)
    y = ode.state(zero, Q_star)
    fp = linearize(ode.csys, y, ode.pack(hyper, law))
    growth = float(fp.jacobian[0, 0])
    _, B0, D0 = ode.expectations(zero, Q_star, hyper, law)
    G1 = float((-growth / hyper.tau - B0 - hyper.lam) / law.m2)
    return Uninformative(float(Q_star), np.asarray(fp.eigenvalues), growth, G1, float(B0), float(D0),
                         float(-(B0 + hyper.lam) / G1))


def learnability_threshold(ode: ContrastiveODE, hyper: Hyper) -> float:
    """The critical ``<c²>`` above which features grow from the uninformative state:
    ``<c²>_c = -(B0 + λ) / G1`` at ``Q_star`` (which does not depend on the law)."""
    return uninformative_state(ode, hyper, HiddenLaw.rademacher(1.0)).threshold_m2


def classify_selection(m_final: np.ndarray, *, pure: float = 0.9, tol: float = 0.1) -> np.ndarray:
    """Label final cosines float64[n, d]: index ``i`` if only feature ``i`` is learned (``|m_i| >= pure``,
    the others ``< tol``), ``d`` for mixtures, ``d + 1`` if nothing is learned (``max |m| < tol``)."""
    m = np.abs(np.asarray(m_final, dtype=float))
    n, d = m.shape
    lab = np.full(n, d, dtype=np.int64)
    top = np.argmax(m, axis=1)
    others = np.sort(m, axis=1)[:, -2] if d > 1 else np.zeros(n)
    lab[(m[np.arange(n), top] >= pure) & (others < tol)] = top[(m[np.arange(n), top] >= pure) & (others < tol)]
    lab[m.max(axis=1) < tol] = d + 1
    return lab


def basin_fractions(ode: ContrastiveODE, hyper: Hyper, law: HiddenLaw, *, n_init: int = 64, radius: float = 0.3,
                    Q0: float = 1.0, t_final: float = 40.0, seed: SeedLike = 0) -> dict[str, Any]:
    """Integrate the ODEs from ``n_init`` initial cosines spread uniformly on the circle/sphere of
    ``radius`` (same seed, same points for every law) and count where they end.

    Returns ``{"labels", "fractions" (float64[d + 2]: feature 1..d, mixed, none), "m_final"}``.
    """
    rng = as_generator(seed)
    dirs = rng.standard_normal((n_init, ode.d))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    Y0 = np.array([ode.state(radius * np.sqrt(Q0) * u, Q0) for u in dirs])
    ens = solve_ensemble(ode.csys, Y0, (0.0, t_final), ode.pack(hyper, law), rtol=1e-6, atol=1e-9)
    yf = np.asarray(ens.final).reshape(n_init, ode.K, ode.d + 1)[:, 0, :]
    m_final = yf[:, :ode.d] / np.sqrt(np.maximum(yf[:, ode.d:], 1e-300))
    lab = classify_selection(m_final)
    frac = np.bincount(lab, minlength=ode.d + 2) / n_init
    return {"labels": lab, "fractions": frac, "m_final": m_final, "initial": Y0}


def final_cosine_grid(ode: ContrastiveODE, law: HiddenLaw, base: Hyper, sigmas: Sequence[float],
                      rhos: Sequence[float], *, q0=(0.3, 0.2), Q0: float = 1.0, t_final: float = 60.0) -> dict[str, np.ndarray]:
    """Final ``max_i |m_i|``, ``Q`` and the diffusion ``D`` at the end, on a ``sigma × rho`` grid
    (one ensemble integration). Returns float64[n_sigma, n_rho] arrays ``m``, ``Q``, ``D``."""
    sig = np.asarray(sigmas, dtype=float)
    rh = np.asarray(rhos, dtype=float)
    P = np.array([ode.pack(base.replace(sigma=s, rho=r), law) for s in sig for r in rh])
    ens = solve_ensemble(ode.csys, ode.state(q0, Q0), (0.0, t_final), P, rtol=1e-7, atol=1e-10)
    yf = np.asarray(ens.final)[:, :ode.d + 1]
    Q = yf[:, ode.d]
    m = np.max(np.abs(yf[:, :ode.d]), axis=1) / np.sqrt(np.maximum(Q, 1e-300))
    D = np.array([ode.expectations(y[:ode.d], max(y[ode.d], 1e-12), base.replace(sigma=s, rho=r), law)[2]
                  for y, (s, r) in zip(yf, [(s, r) for s in sig for r in rh])])
    shape = (sig.size, rh.size)
    return {"sigma": sig, "rho": rh, "m": m.reshape(shape), "Q": Q.reshape(shape), "D": D.reshape(shape)}


def sgd_error_points(ode: ContrastiveODE, hyper: Hyper, law: HiddenLaw, ns: Sequence[int], n_seeds: int, *,
                     case: str | None = None, q0=(0.3, 0.2), Q0: float = 1.0, t_final: float = 10.0,
                     record_dt: float = 0.5) -> list[dict]:
    """Sweep points of the ODE-vs-SGD study: every ``n`` times ``n_seeds`` replicates of one setting.

    Each point carries plain values only (the law as its :class:`HiddenLaw` fields, the hyper-parameters,
    the ODE's ``d``, ``K``, activation and quadrature size) so it can be evaluated by
    :func:`sgd_error_point` in any process; ``case`` labels the setting (default ``"<law>_rho<rho>"``).
    Concatenate the lists of several settings to run them in one sweep.
    """
    check_int("n_seeds", n_seeds, 1)
    if not len(ns):
        raise InvalidParameterError("ns must contain at least one dimension n")
    case = case or f"{law.name}_rho{hyper.rho:+g}"
    common = {"case": case, "law": asdict(law), **asdict(hyper), "q0": [float(v) for v in np.ravel(q0)],
              "Q0": float(Q0), "t_final": float(t_final), "record_dt": float(record_dt), "d": ode.d, "K": ode.K,
              "act": ode.act, "gh_points": ode.gh_points}
    return [{**common, "n": int(n), "replicate": r} for n in ns for r in range(n_seeds)]


@lru_cache(maxsize=None)
def _reference(d: int, K: int, act: str, gh_points: int, hyper: Hyper, law: HiddenLaw, q0: tuple, Q0: float,
               t_final: float, record_dt: float) -> Trajectory:
    """The ODE trajectory a point is compared with (cached: all points of a setting share it)."""
    t_eval = np.arange(0.0, t_final + 1e-9, record_dt)
    return ode_trajectory(_ode(d, K, act, gh_points), hyper, law, q0, Q0, t_eval)


@lru_cache(maxsize=None)
def _ode(d: int, K: int, act: str, gh_points: int) -> ContrastiveODE:
    return ContrastiveODE(d=d, K=K, act=act, gh_points=gh_points)


def sgd_error_point(params: dict, seed: int) -> dict[str, Any]:
    """One online-SGD run at dimension ``params["n"]`` against the ODEs (sweep point function, see
    :func:`sgd_error_points`), seeded by the point's ``seed``.

    Returns ``err_m = max_t |m_SGD - m_ODE|_inf``, ``err_Q = max_t |Q_SGD - Q_ODE|``, ``rms_m`` (root mean
    square over time and features, ``t > 0``) and the SGD trajectory ``t`` float64[n_t], ``q``
    float64[n_t, d, K], ``Q`` float64[n_t, K].
    """
    law = dict(params["law"])
    law = HiddenLaw(law["name"], tuple(law["nodes"]), tuple(law["weights"]), law["sampler"], float(law["scale"]))
    hyper = Hyper(**{f.name: float(params[f.name]) for f in fields(Hyper)})
    q0 = tuple(float(v) for v in params["q0"])
    t_final, record_dt = float(params["t_final"]), float(params["record_dt"])
    ref = _reference(int(params["d"]), int(params["K"]), params["act"], int(params["gh_points"]), hyper, law, q0,
                     float(params["Q0"]), t_final, record_dt)
    tr = simulate_sgd(params["n"], t_final, hyper, law, q0, float(params["Q0"]), K=int(params["K"]),
                      act=params["act"], record_dt=record_dt, seed=seed)
    k = min(len(tr.t), len(ref.t))
    return {"err_m": float(np.max(np.abs(tr.m[:k] - ref.m[:k]))), "err_Q": float(np.max(np.abs(tr.Q[:k] - ref.Q[:k]))),
            "rms_m": float(np.sqrt(np.mean((tr.m[1:k] - ref.m[1:k]) ** 2))), "t": tr.t, "q": tr.q, "Q": tr.Q}


def collect_sgd_errors(result: SweepResult) -> dict[str, Any]:
    """Per-point arrays from a sweep of :func:`sgd_error_point`: ``case`` (str), ``n`` int64, ``replicate``
    int64, ``err_m``, ``err_Q``, ``rms_m`` float64 (NaN where the point failed), ``ok`` bool, ``runs``
    (:class:`Trajectory` or ``None``) and ``failures`` (one line per failed point)."""
    pts = result.points
    out: dict[str, Any] = {"case": np.array([p.params["case"] for p in pts]),
                           "n": np.array([int(p.params["n"]) for p in pts], dtype=np.int64),
                           "replicate": np.array([int(p.params["replicate"]) for p in pts], dtype=np.int64),
                           "ok": np.array([p.status == "ok" for p in pts])}
    for key in ("err_m", "err_Q", "rms_m"):
        out[key] = result.values(key) if out["ok"].any() else np.full(len(pts), np.nan)
    out["runs"] = [Trajectory(p.values["t"], p.values["q"], p.values["Q"]) if p.status == "ok" else None
                   for p in pts]
    out["failures"] = [f"{p.params['case']} n={p.params['n']} replicate {p.params['replicate']}: {p.status}: "
                       f"{p.error}" for p in result.failed]
    return out


def sgd_errors(ode: ContrastiveODE, hyper: Hyper, law: HiddenLaw, ns: Sequence[int], n_seeds: int = 3, *,
               seed: SeedLike = 0, q0=(0.3, 0.2), Q0: float = 1.0, t_final: float = 10.0, record_dt: float = 0.5,
               processes: int | None = 1, scheduler: Any = None, store: str | os.PathLike | None = None,
               ) -> dict[str, Any]:
    """Errors of online SGD against the ODEs at each ``n`` (``n_seeds`` runs each), as a sweep.

    Runs :func:`sgd_error_point` over :func:`sgd_error_points` with :func:`theorykit.sweep.sweep` (per-point
    seeds from ``seed``; ``processes``, ``scheduler``, ``store`` as there) and returns
    :func:`collect_sgd_errors` plus ``"ode"``, the reference :class:`Trajectory`.
    """
    pts = sgd_error_points(ode, hyper, law, ns, n_seeds, q0=q0, Q0=Q0, t_final=t_final, record_dt=record_dt)
    res = sweep(sgd_error_point, pts, seed=seed, processes=processes, scheduler=scheduler, store=store,
                desc="SGD runs")
    out = collect_sgd_errors(res)
    out["ode"] = ode_trajectory(ode, hyper, law, q0, Q0, np.arange(0.0, t_final + 1e-9, record_dt))
    return out


def gaussian_coefficients(ode: ContrastiveODE, hyper: Hyper, Q: float, *, x_max: float = 0.05) -> dict[str, float]:
    """The Gaussian coefficients of :func:`._symbolic.small_q_expansion` at norm ``Q``, by a polynomial fit
    of the quadrature expectations along ``q = (x, 0, ...)`` for Rademacher ``c`` (``<c^2> = <c^4> = 1``):
    ``A_1 = G1 x + G3 x^3 / 6``, ``B = B0 + B2 x^2 / 2``, ``D = D0 + D2 x^2 / 2`` (+ O(x^4))."""
    law = HiddenLaw.rademacher()
    xs = np.linspace(-x_max, x_max, 9)
    vals = []
    for x in xs:
        q = np.zeros(ode.d)
        q[0] = x
        A, B, D = ode.expectations(q, Q, hyper, law)
        vals.append((A[0], B, D))
    A1, B, D = (np.array(v) for v in zip(*vals))
    a = np.polyfit(xs, A1, 5)[::-1]
    b = np.polyfit(xs, B, 4)[::-1]
    dd = np.polyfit(xs, D, 4)[::-1]
    return {"G_1": float(a[1]), "G_3": float(6 * a[3]), "B_0": float(b[0]), "B_2": float(2 * b[2]),
            "D_0": float(dd[0]), "D_2": float(2 * dd[2])}
