"""The experiments behind the claims: SGD from a small cosine on either side of the learnability threshold,
basins of feature selection against the law of ``c``, ODE-vs-SGD errors across ``n`` (a sweep), and the
McKean–Vlasov particle route (PDE vs ODE under L2, PDE vs SGD under L1).

The ODE-vs-SGD study runs as a sweep of the module-level point function :func:`sgd_error_point` through
``sweeps.sweep(...)``, where ``sweeps`` is the :class:`theorykit.validate.Study` of a report or a
:class:`theorykit.sweep.SweepOptions`, and reduces itself with :meth:`SweepResult.grid`.
"""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any, Mapping, Sequence

import numpy as np

from ..._checks import check_int
from ...errors import InvalidParameterError
from ...sweep import SweepOptions
from ...validate import compare
from ._analysis import ContrastiveODE, basin_fractions, compiled_ode, ode_solution, uninformative_state
from ._simulate import HiddenLaw, order_parameter_names, simulate_pde, simulate_sgd
from ._symbolic import Hyper

#: the SGD trajectory every ODE-vs-SGD point returns
TRAJECTORY = ("t", "q", "Q")


# ------------------------------------------------------------------------------ threshold and basins
def threshold_growth(ode: ContrastiveODE, hyper: Hyper, ratios: Sequence[float], *, n: int, seed: int,
                     t_final: float = 15.0) -> dict[str, Any]:
    """Online SGD from the cosine ``m_1 = 0.2`` at the uninformative norm ``Q_star``, for Rademacher laws with
    ``<c²> = ratio * <c²>_c`` (the linearisation's threshold at ``hyper``).

    Returns ``threshold_m2`` (``<c²>_c``) and ``growth`` (ratio -> ``|m_1|`` averaged over the last three
    records (one per unit of time), divided by its start 0.2).
    """
    u = uninformative_state(ode, hyper, HiddenLaw.rademacher())
    q0 = np.zeros(ode.d)
    q0[0] = 0.2
    growth = {}
    for r in ratios:
        run = simulate_sgd(n, t_final, hyper, HiddenLaw.rademacher(r * u.threshold_m2), q0 * np.sqrt(u.Q_star),
                           u.Q_star, record_dt=1.0, seed=seed)
        growth[r] = float(np.mean(np.abs(run.observable("m_1")[-3:])) / 0.2)
    return {"threshold_m2": u.threshold_m2, "growth": growth}


def basin_study(ode: ContrastiveODE, hyper: Hyper, laws: Mapping[str, HiddenLaw], *, n_init: int, seed: int,
                t_final: float = 40.0) -> dict[str, dict[str, float]]:
    """For each law: the share of ``n_init`` starts (``|m0| = 0.3``, random directions, the same for every
    law) that end on a single feature (``pure``), and the law's excess kurtosis (``kappa4``)."""
    pure = {k: float(np.sum(basin_fractions(ode, hyper, law, n_init=n_init, t_final=t_final,
                                            seed=seed)["fractions"][:ode.d])) for k, law in laws.items()}
    return {"pure": pure, "kappa4": {k: law.kappa4 for k, law in laws.items()}}


# --------------------------------------------------------------------------------------- ODE vs SGD
def sgd_error_points(ode: ContrastiveODE, hyper: Hyper, law: HiddenLaw, ns: Sequence[int], n_seeds: int, *,
                     case: str | None = None, q0=(0.3, 0.2), Q0: float = 1.0, t_final: float = 10.0,
                     record_dt: float = 0.5) -> list[dict]:
    """Sweep points of the ODE-vs-SGD study: every ``n`` times ``n_seeds`` replicates of one setting.

    Each point carries plain values only (the law as its :class:`HiddenLaw` fields, the hyper-parameters,
    the ODE's ``d``, ``K``, activation and quadrature size) so it can be evaluated by
    :func:`sgd_error_point` in any process; ``case`` labels the setting (default ``"<law>_rho<rho>"``).
    Concatenate the lists of several settings (with the same ``t_final`` and ``record_dt``) to run them in
    one sweep.
    """
    check_int("n_seeds", n_seeds, 1)
    if not len(ns):
        raise InvalidParameterError("ns must contain at least one dimension n")
    case = case or f"{law.name}_rho{hyper.rho:+g}"
    common = {"case": case, "law": asdict(law), **asdict(hyper), "q0": [float(v) for v in np.ravel(q0)],
              "Q0": float(Q0), "t_final": float(t_final), "record_dt": float(record_dt), "d": ode.d, "K": ode.K,
              "act": ode.act, "gh_points": ode.gh_points}
    return [{**common, "n": int(n), "replicate": r} for n in ns for r in range(n_seeds)]


def sgd_error_point(params: dict, seed: int) -> dict[str, Any]:
    """One online-SGD run at dimension ``params["n"]`` against the ODEs (sweep point function, see
    :func:`sgd_error_points`), seeded by the point's ``seed``; compared with :func:`theorykit.validate.compare`.

    Returns ``err_m = max_t |m_SGD - m_ODE|_inf``, ``err_Q = max_t |Q_SGD - Q_ODE|``, ``rms_m`` (root mean
    square over the records at ``t > 0`` and the cosines) and the SGD trajectory ``t`` float64[n_t], ``q``
    float64[n_t, d, K], ``Q`` float64[n_t, K].
    """
    law = dict(params["law"])
    law = HiddenLaw(law["name"], tuple(law["nodes"]), tuple(law["weights"]), law["sampler"], float(law["scale"]))
    hyper = Hyper(**{f.name: float(params[f.name]) for f in fields(Hyper)})
    d, K = int(params["d"]), int(params["K"])
    q0, Q0 = [float(v) for v in params["q0"]], float(params["Q0"])
    run = simulate_sgd(params["n"], float(params["t_final"]), hyper, law, q0, Q0, K=K, act=params["act"],
                       record_dt=float(params["record_dt"]), seed=seed)
    sol = ode_solution(compiled_ode(d, K, params["act"], int(params["gh_points"])), hyper, law, q0, Q0, run.t)
    _, Q_names, m_names = order_parameter_names(d, K)
    m_names = [s for row in m_names for s in row]
    errors = compare(sol, run, (*m_names, *Q_names))
    m_curves = np.column_stack([errors.curves[s] for s in m_names])[1:]
    q_names = [s for row in order_parameter_names(d, K)[0] for s in row]
    return {"err_m": errors.max_error(m_names), "err_Q": errors.max_error(Q_names),
            "rms_m": float(np.sqrt(np.mean(m_curves**2))), "t": run.t,
            "q": run.stack(*q_names).reshape(-1, d, K), "Q": run.stack(*Q_names)}


def sgd_error_study(points: Sequence[Mapping[str, Any]], *, seed: int, sweeps: Any = SweepOptions(),
                    desc: str = "ODE vs SGD") -> dict[str, Any]:
    """Run :func:`sgd_error_point` over ``points`` (from :func:`sgd_error_points`) as one sweep (per-point
    seeds from ``seed``) and arrange the results on the grid ``case x n x replicate``.

    Returns ``case`` (n_case,), ``n`` int64 (n_n,), ``err_m``, ``err_Q``, ``rms_m`` float64[n_case, n_n,
    n_rep] and the trajectories :data:`TRAJECTORY` (trailing axes added), NaN where a point failed or none
    sits; ``ok`` bool[n_case, n_n, n_rep]; ``failures`` (one line per failed point).
    """
    res = sweeps.sweep(sgd_error_point, points, seed=seed, desc=desc)
    grids = {k: res.grid(("case", "n", "replicate"), k) for k in ("err_m", "err_Q", "rms_m", *TRAJECTORY)}
    first = grids["err_m"]
    return {"case": first.coords["case"], "n": first.coords["n"].astype(np.int64), "ok": first.ok,
            "failures": list(first.failures), **{k: g.values for k, g in grids.items()}}


def case_errors(errs: Mapping[str, Any], case: str) -> dict[str, np.ndarray]:
    """The successful points of one setting of :func:`sgd_error_study`, flat in point order (``n`` major,
    replicate minor): ``n`` int64, ``err_m``, ``err_Q``, ``rms_m`` float64, and ``index`` (their grid cells)."""
    i = list(errs["case"]).index(case)
    ok = errs["ok"][i]
    cells = np.argwhere(ok)
    return {"n": errs["n"][cells[:, 0]], **{k: errs[k][i][ok] for k in ("err_m", "err_Q", "rms_m")},
            "index": [(i, a, b) for a, b in cells]}


# ------------------------------------------------------------------------------------------ PDE route
def pde_route(ode: ContrastiveODE, hyper: Hyper, law: HiddenLaw, *, n_particles: int, seed: int,
              t_final: float = 5.0, q0=(0.3, 0.2), lam_l1: float = 0.3, n_sgd: int = 2000,
              dt: float = 0.01) -> dict[str, Any]:
    """The McKean–Vlasov particle method against the closed ODEs under L2 (``hyper``) and, where no closed ODEs
    exist, against online SGD at ``n_sgd`` under L1 (``hyper`` with ``lam = lam_l1``).

    Returns the runs ``pde_l2``, ``pde_l1``, ``sgd_l1``, the ODE solution ``ode_l2`` at the PDE's records, and
    the largest cosine errors ``err_l2`` (PDE vs ODE) and ``err_l1`` (PDE vs SGD).
    """
    m_names = [s for row in order_parameter_names(ode.d)[2] for s in row]
    pde_l2 = simulate_pde(ode, n_particles, t_final, hyper, law, q0, 1.0, reg="L2", dt=dt, seed=seed)
    ode_l2 = ode_solution(ode, hyper, law, q0, 1.0, pde_l2.t)
    l1 = hyper.replace(lam=lam_l1)
    pde_l1 = simulate_pde(ode, n_particles, t_final, l1, law, q0, 1.0, reg="L1", dt=dt, seed=seed)
    sgd_l1 = simulate_sgd(n_sgd, t_final, l1, law, q0, 1.0, reg="L1", record_dt=0.5, seed=seed)
    return {"pde_l2": pde_l2, "ode_l2": ode_l2, "pde_l1": pde_l1, "sgd_l1": sgd_l1,
            "err_l2": compare(ode_l2, pde_l2, m_names).max_error(),
            "err_l1": compare(pde_l1, sgd_l1, m_names).max_error()}


__all__ = ["threshold_growth", "basin_study", "sgd_error_points", "sgd_error_point", "sgd_error_study",
           "case_errors", "pde_route"]
