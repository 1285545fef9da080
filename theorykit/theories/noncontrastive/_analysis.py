r"""Numerics of the non-contrastive theory: compiled eigenmode systems, trajectories, equilibria and
their stability, collapse phase diagrams and continuation in the weight decay.

Collapse is judged in each loss's own terms:

* Euclidean: the representation collapses to a point when every eigenmode decays, ``p -> 0``; the
  reduced cubic :math:`\dot p = -p\,[(1+\sigma^2)p^2 - p + \eta]` has non-zero equilibria iff
  :math:`\eta \le 1/(4(1+\sigma^2))` (Tian et al. 2021), so stronger weight decay collapses it.
* Cosine: the loss is scale invariant, so the norms shrink under weight decay while the *normalised*
  representation ``q_k = p_k / sqrt(sum_k f_k p_k^2)`` is what the loss sees; it collapses when a group
  of modes dies relative to the others (``min q / max q -> 0``). With the norms frozen at their initial
  values the reduced sextic may have only the collapsed equilibrium (``eta > eta_fold``), but the
  shrinking norms raise ``eta_fold`` until a stable equilibrium emerges (Bao 2023).
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import sympy as sp

from ...compile import compile_system
from ...derive import cached_derivation
from ..._checks import check_range
from ...errors import InvalidParameterError
from . import _symbolic as S
from ._simulate import check_hyper


# ------------------------------------------------------------------------------- compiled systems
#: digest of the symbolic layer: part of the derivation cache key, so editing it re-derives
_SYMBOLIC_DIGEST = hashlib.sha256(Path(S.__file__).read_bytes()).hexdigest()[:16]


@lru_cache(maxsize=None)
def ode_system(loss: str, n_groups: int = 1, byol: bool = False, reduced: bool = False, shape: bool = False,
               separate_decays: bool = False):
    """The derived :class:`~theorykit.derive.ODESystem` (cached per process and on disk).

    ``reduced``: the one-dimensional per-mode flow; ``shape`` (cosine only): the normalised shape system;
    ``separate_decays``: weight decays ``eta_p``, ``eta_s`` of predictor and online network.
    """
    return _derive(S.check_loss(loss), int(n_groups), bool(byol), bool(reduced), bool(shape), _SYMBOLIC_DIGEST,
                   bool(separate_decays))


@cached_derivation
def _derive(loss: str, n_groups: int, byol: bool, reduced: bool, shape: bool, digest: str, separate: bool = False):
    if separate:
        return S.eigenmode_system(loss, n_groups, byol=byol, separate_decays=True)
    if shape:
        if loss != "cosine":
            raise InvalidParameterError("the shape system exists for the scale-invariant cosine loss only")
        return S.cosine_shape_system()
    if reduced:
        return S.reduce_mode(loss).system()
    return S.eigenmode_system(loss, n_groups, byol=byol)


@lru_cache(maxsize=None)
def compiled_ode(loss: str, n_groups: int = 1, byol: bool = False, reduced: bool = False, backend: str = "numba",
                 shape: bool = False, separate_decays: bool = False):
    """``compile_system`` of :func:`ode_system` (disk-cached by content hash)."""
    return compile_system(ode_system(loss, n_groups, byol, reduced, shape, separate_decays), backend=backend)


def pack(csys, values: Mapping[str, float]) -> np.ndarray:
    """Parameters by name, ignoring names the system does not use (e.g. ``dim`` for the Euclidean loss)."""
    return csys.pack_params({k: v for k, v in values.items() if k in csys.param_names})


def hyper(eta: float, sigma2: float, alpha_p: float = 1.0, beta: float = 0.0, dim: float = 1.0,
          fractions: Sequence[float] | None = None) -> dict[str, float]:
    """Validated parameter mapping for the eigenmode systems."""
    eta, sigma2, alpha_p, beta = check_hyper(eta, sigma2, alpha_p, beta)
    out = dict(eta=eta, sigma2=sigma2, alpha_p=alpha_p, beta=beta, dim=float(dim))
    for k, f in enumerate(() if fractions is None else fractions, 1):
        out[f"f{k}"] = float(f)
    return out


def ode_solution(loss: str, p0: Sequence[float], t_eval: Sequence[float], *, s0: Sequence[float] | None = None,
                 eta: float = 0.0, sigma2: float = 0.0, alpha_p: float = 1.0, beta: float = 0.0, dim: float = 1.0,
                 fractions: Sequence[float] | None = None, tau0: float = 1.0):
    """The eigenmode system of ``len(p0)`` mode groups (BYOL target if ``beta > 0``, started at the target
    ratio ``tau0``: 0 is Tian et al.'s :math:`W_a(0) = 0`) solved at ``t_eval``.

    Returns a :class:`theorykit.solve.Solution` with states ``p<k>``, ``s<k>`` (and ``tau<k>`` for BYOL) and
    the observable ``loss`` — the names :func:`simulate_sgd` records, so :func:`theorykit.validate.compare`
    pairs them. LSODA: the flows become stiff as they settle on an equilibrium (dopri5 is then
    stability-limited).
    """
    from ...solve import solve

    S.check_loss(loss)
    eta, sigma2, alpha_p, beta = check_hyper(eta, sigma2, alpha_p, beta)
    p0 = np.atleast_1d(np.asarray(p0, dtype=float))
    G = p0.size
    s0 = p0 ** 2 / alpha_p if s0 is None else np.atleast_1d(np.asarray(s0, dtype=float))
    fr = np.full(G, 1.0 / G) if fractions is None else np.asarray(fractions, dtype=float)
    byol = beta > 0
    csys = compiled_ode(loss, G, byol)
    prm = pack(csys, hyper(eta, sigma2, alpha_p, beta, dim, fr if G > 1 else None))
    per = 3 if byol else 2
    y0 = np.empty(per * G)
    y0[0::per], y0[1::per] = p0, s0
    if byol:
        y0[2::per] = check_range("tau0 (initial target ratio W_t / W)", tau0, 0.0)
    t_eval = np.asarray(t_eval, dtype=float)
    return solve(csys, y0, (float(t_eval[0]), float(t_eval[-1])), prm, t_eval=t_eval, rtol=1e-8, atol=1e-10,
                 method="lsoda", max_steps=1_000_000)


def ode_trajectory(loss: str, p0: Sequence[float], t_eval: Sequence[float], **settings) -> dict[str, np.ndarray]:
    """:func:`ode_solution` as arrays: ``t`` (n_t,), ``p``, ``s``, ``tau`` (n_t, n_groups) and ``loss`` (n_t,)."""
    sol = ode_solution(loss, p0, t_eval, **settings)
    per = 3 if "tau1" in sol.state_names else 2
    y = np.asarray(sol.y)
    tau = y[:, 2::per] if per == 3 else np.ones((y.shape[0], y.shape[1] // 2))
    return {"t": np.asarray(sol.t), "p": y[:, 0::per], "s": y[:, 1::per], "tau": tau, "loss": sol.observed("loss")}


# ------------------------------------------------------------------------ equilibria, closed forms
@lru_cache(maxsize=None)
def _euclid_root_fns():
    lo, hi = S.euclidean_roots()
    args = (S.eta, S.sigma2)
    return sp.lambdify(args, lo, "math"), sp.lambdify(args, hi, "math")


def euclidean_critical_eta(sigma2: float) -> float:
    r"""Largest weight decay with a non-collapsed Euclidean equilibrium, :math:`1/(4(1+\sigma^2))`,
    from the discriminant of the derived cubic (SimSiam, ``tau = 1``)."""
    return float(_euclid_critical_fn()(float(sigma2)))


@lru_cache(maxsize=None)
def _euclid_critical_fn():
    return sp.lambdify((S.sigma2,), S.euclidean_critical(), "math")


def euclidean_fixed_points(eta: float, sigma2: float) -> tuple[float, float] | None:
    """``(p_minus, p_plus)`` from the SymPy-solved roots of the derived cubic, or ``None`` if complex."""
    eta, sigma2, _, _ = check_hyper(eta, sigma2)
    if eta > euclidean_critical_eta(sigma2):
        return None
    lo, hi = _euclid_root_fns()
    return float(lo(eta, sigma2)), float(hi(eta, sigma2))


@lru_cache(maxsize=None)
def _reduced_poly(loss: str):
    red = S.reduce_mode(loss)
    syms = sorted(red.poly.free_symbols - {S.p}, key=lambda x: x.name)
    coeffs = red.poly.all_coeffs()
    return tuple(syms), sp.lambdify(syms, coeffs, "math")


def reduced_coefficients(loss: str, params: Mapping[str, float]) -> np.ndarray:
    """Coefficients (highest degree first) of the derived one-dimensional polynomial ``p' = P(p)``."""
    syms, fn = _reduced_poly(loss)
    try:
        vals = [float(params[s.name]) for s in syms]
    except KeyError as exc:
        raise InvalidParameterError(f"reduced {loss} polynomial needs parameters {[s.name for s in syms]}") from exc
    return np.asarray(fn(*vals), dtype=float)


def reduced_fixed_points(loss: str, params: Mapping[str, float]) -> list[tuple[float, bool]]:
    """Real equilibria ``(p*, stable)`` of the reduced per-mode polynomial, sorted by ``p*``.

    Stability: sign of ``P'(p*)`` (one-dimensional flow).
    """
    c = reduced_coefficients(loss, params)
    roots = np.roots(c)
    scale = max(1.0, float(np.max(np.abs(roots)))) if roots.size else 1.0
    real = sorted({round(float(r.real), 12) for r in roots if abs(r.imag) <= 1e-9 * scale} | {0.0})
    dc = np.polyder(c)
    return [(r, bool(np.polyval(dc, r) < 0)) for r in real]


def cosine_fold_eta(sigma2: float, alpha_p: float, dim: float, nu_u: float, nu_v: float) -> float:
    """The fold of the isolated reduced cosine mode: largest ``eta`` with a non-zero equilibrium."""
    _, ef = _cos_fold_fn()
    return float(ef(sigma2, alpha_p, dim, nu_u, nu_v))


@lru_cache(maxsize=None)
def _cos_fold_fn():
    pm, ef = S.cosine_fold()
    args = (S.sigma2, S.alpha_p, S.dim, S.nu_u, S.nu_v)
    return sp.lambdify(args, pm, "math"), sp.lambdify(args, ef, "math")


def frozen_norms(p0: float, sigma2: float, alpha_p: float = 1.0) -> tuple[float, float]:
    r"""Normalised concentration values of the feature norms of one isolated mode on the invariant
    manifold ``s = p^2 / alpha_p``: :math:`\nu_u^2 = (1+\sigma^2) p^2 s`, :math:`\nu_v^2 = (1+\sigma^2) s`."""
    s0 = p0 ** 2 / alpha_p
    return float(np.sqrt((1 + sigma2) * p0 ** 2 * s0)), float(np.sqrt((1 + sigma2) * s0))


def equilibria(loss: str, *, eta: float, sigma2: float, alpha_p: float = 1.0, beta: float = 0.0,
               nu_u: float | None = None, nu_v: float | None = None, rho: float = 0.0):
    """Equilibria and their linear stability as functions of ``(eta, sigma2, alpha_p, beta)``.

    Euclidean: the full one-mode system ``(p, s)`` (SimSiam, ``beta = 0``) or ``(p, s, tau)`` (BYOL), at the
    collapsed state and at ``p_-``, ``p_+`` with ``s = p^2/alpha_p``, ``tau = 1`` (Newton-polished by
    :func:`theorykit.analysis.find_fixed_points`). Cosine: the reduced sextic with the norms frozen at
    ``nu_u``, ``nu_v`` (default: the concentration values at ``p = 1``). Returns a list of
    :class:`theorykit.analysis.FixedPoint`.
    """
    from ...analysis import find_fixed_points

    eta, sigma2, alpha_p, beta = check_hyper(eta, sigma2, alpha_p, beta)
    if loss == "euclidean":
        byol = beta > 0
        csys = compiled_ode("euclidean", 1, byol)
        prm = pack(csys, hyper(eta, sigma2, alpha_p, beta))
        ps = [0.0] + list(euclidean_fixed_points(eta, sigma2) or ())
        guesses = [[p, p * p / alpha_p] + ([1.0] if byol else []) for p in ps]
    else:
        S.check_loss(loss)
        if nu_u is None or nu_v is None:
            nu_u, nu_v = frozen_norms(1.0, sigma2, alpha_p)
        csys = compiled_ode("cosine", reduced=True)
        prm = pack(csys, dict(eta=eta, sigma2=sigma2, alpha_p=alpha_p, nu_u=nu_u, nu_v=nu_v, rho=rho))
        guesses = [[r] for r, _ in reduced_fixed_points("cosine", dict(eta=eta, sigma2=sigma2, alpha_p=alpha_p,
                                                                        nu_u=nu_u, nu_v=nu_v, rho=rho))]
    # start Newton slightly off the closed-form roots: a start that is already an exact root gets an
    # infinite error estimate in find_fixed_points, which then merges it with every other root
    g = np.array(guesses, dtype=float) * (1 + 1e-6) + 1e-9
    fps = find_fixed_points(csys, prm, guesses=g, n_starts=0)
    return sorted(fps, key=lambda f: float(f.y[0]))


# ---------------------------------------------------------------------------------- phase diagrams
def predicted_euclidean_collapse(eta: float, sigma2: float, p0: float) -> bool:
    """Theory: the Euclidean mode started at ``p0`` (on the invariant manifold) decays to 0."""
    fp = euclidean_fixed_points(eta, sigma2)
    return fp is None or p0 < fp[0]


def normalised_ratio(p: np.ndarray) -> np.ndarray:
    """``min_k |p_k| / max_k |p_k|`` along a trajectory ``p`` (n_t, G): the ratio of the normalised group
    strengths ``q_k = p_k / r``, which does not depend on the overall scale ``r``."""
    p = np.atleast_2d(p)
    q = np.abs(p)
    return q.min(axis=1) / np.maximum(q.max(axis=1), 1e-300)


def _collapse_below(level: float):
    def classify(final):
        return (np.max(np.abs(final[:, 0::2]), axis=1) < level).astype(np.int64)
    return classify


def phase_grid(etas: np.ndarray, sigma2s: np.ndarray, *, p0: Sequence[float] = (1.0, 0.4), alpha_p: float = 1.0,
               t_end: float = 60.0, collapse_ratio: float = 0.1, collapse_level: float = 0.05) -> dict[str, np.ndarray]:
    """Collapse labels on an ``eta x sigma2`` grid for both losses, from the theory.

    Returns arrays of shape (len(sigma2s), len(etas)):

    * ``euclidean_collapse``: closed form (largest group started at ``max(p0)`` on the invariant manifold);
    * ``euclidean_ode_collapse``: the one-mode ODE from the same start integrated to ``t_end`` over the
      grid with :func:`theorykit.analysis.phase_diagram` (``p(t_end) < collapse_level``);
    * ``cosine_collapse``: the normalised shape system (weight decay drops out, so the label depends on
      ``sigma2`` only) started at the shape of ``p0``, integrated with
      :func:`theorykit.analysis.phase_diagram`; collapsed if ``min q / max q < collapse_ratio``;
    * ``cosine_initially_collapsed``: with the norms frozen at their initial values the isolated reduced
      sextic of the largest mode has only the collapsed equilibrium (``eta > eta_fold``) — the region where a
      stable equilibrium emerges later from the collapsed solution.
    """
    from ...analysis import phase_diagram

    etas = np.asarray(etas, dtype=float)
    sigma2s = np.asarray(sigma2s, dtype=float)
    for e in etas:
        check_hyper(e, 0.0, alpha_p)
    for s2 in sigma2s:
        check_hyper(0.0, s2, alpha_p)
    pmax = float(np.max(p0))
    e_cf = np.array([[predicted_euclidean_collapse(e, s2, pmax) for e in etas] for s2 in sigma2s])
    ce = compiled_ode("euclidean", 1)
    pd_e = phase_diagram(ce, {"eta": etas, "sigma2": sigma2s}, {"alpha_p": alpha_p}, [pmax, pmax ** 2 / alpha_p],
                         t_final=t_end, classify=_collapse_below(collapse_level), labels=("alive", "collapsed"),
                         progress=False)
    # shape of two equal groups started at p0: x = p1 / sqrt(mean p^2)
    p0a = np.asarray(p0, dtype=float)
    if p0a.size != 2:
        raise InvalidParameterError("phase_grid compares two mode groups: p0 must have two entries")
    x0 = p0a[0] / np.sqrt(np.mean(p0a ** 2))
    cs = compiled_ode("cosine", shape=True)

    def ratio_classify(final):
        x1 = final[:, 0]
        x2 = np.sqrt(np.clip(2.0 - x1 ** 2, 0.0, None))   # f1 = f2 = 1/2: x1^2 + x2^2 = 2
        q = np.minimum(x1, x2) / np.maximum(np.maximum(x1, x2), 1e-300)
        return (q < collapse_ratio).astype(np.int64)

    alphas = np.array([alpha_p, alpha_p * 1.0000001])  # phase_diagram needs a 2-D grid: a trivial second axis
    pd_c = phase_diagram(cs, {"sigma2": sigma2s, "alpha_p": alphas}, {"f1": 0.5}, [x0], t_final=t_end,
                         classify=ratio_classify, labels=("alive", "collapsed"), progress=False)
    c_col = np.repeat(pd_c.labels[:, :1].astype(bool), etas.size, axis=1)
    c_init = np.zeros_like(e_cf)
    for i, s2 in enumerate(sigma2s):
        nu_u, nu_v = frozen_norms(pmax, s2, alpha_p)
        c_init[i] = etas > cosine_fold_eta(s2, alpha_p, 1.0, nu_u, nu_v)
    return {"eta": etas, "sigma2": sigma2s, "euclidean_collapse": e_cf,
            "euclidean_ode_collapse": pd_e.labels.T.astype(bool), "cosine_collapse": c_col,
            "cosine_initially_collapsed": c_init}


# ------------------------------------------------------------------- symmetric predictor, no EMA
#: tolerances of the symmetric-predictor runs: the collapsed mode's s falls by many decades
_SYMMETRIC_TOL = dict(rtol=1e-9, atol=1e-14)


def symmetric_predictor_grid(alphas: np.ndarray, eta_ps: np.ndarray, *, eta_s: float, sigma2: float, eps: float,
                             t_end: float, collapse_ratio: float = 0.01):
    """Collapse of a mode whose predictor eigenvalue starts negative, ``(p, s) = (-eps, eps^2)`` (the same
    scale for predictor and network, as from a small random symmetric start), without EMA (``tau = 1``),
    on the grid ``alpha_p x eta_p`` at fixed ``eta_s``, from the separate-decay eigenmode ODE integrated
    with :func:`theorykit.analysis.phase_diagram`. Collapsed: ``s(t_end) < collapse_ratio * eps^2``.
    Returns the :class:`~theorykit.analysis.PhaseDiagram` (axes ``alpha_p``, ``eta_p``; labels
    ``"survives"``, ``"collapses"``)."""
    from ...analysis import phase_diagram

    csys = compiled_ode("euclidean", 1, separate_decays=True)
    level = collapse_ratio * eps ** 2

    def collapsed(final):
        return (final[:, 1] < level).astype(np.int64)

    return phase_diagram(csys, {"alpha_p": np.asarray(alphas, float), "eta_p": np.asarray(eta_ps, float)},
                         {"eta_s": eta_s, "sigma2": sigma2}, [-eps, eps ** 2], t_final=t_end, classify=collapsed,
                         labels=("survives", "collapses"), progress=False, **_SYMMETRIC_TOL)


def symmetric_predictor_collapses(alpha_p: float, eta_p: float, *, eta_s: float, sigma2: float, eps: float,
                                  t_end: float, collapse_ratio: float = 0.01) -> bool:
    """One point of :func:`symmetric_predictor_grid`: whether the negative-predictor mode collapses."""
    from ...solve import solve

    csys = compiled_ode("euclidean", 1, separate_decays=True)
    prm = pack(csys, dict(alpha_p=alpha_p, eta_p=eta_p, eta_s=eta_s, sigma2=sigma2))
    return bool(solve(csys, [-eps, eps ** 2], (0.0, t_end), prm, **_SYMMETRIC_TOL).final[1] < collapse_ratio * eps ** 2)


__all__ = ["ode_system", "compiled_ode", "hyper", "ode_solution", "ode_trajectory", "equilibria", "euclidean_critical_eta",
           "euclidean_fixed_points", "reduced_coefficients", "reduced_fixed_points", "cosine_fold_eta",
           "frozen_norms", "predicted_euclidean_collapse", "normalised_ratio", "phase_grid",
           "noncontrastive_systems", "symmetric_predictor_grid",
           "symmetric_predictor_collapses"]


def noncontrastive_systems():
    """The systems this theory offers to the CLI (``theorykit systems``)."""
    from .. import BuiltinSystem

    nu_u, nu_v = frozen_norms(1.0, 0.5)
    return {
        "euclidean_mode": BuiltinSystem(
            "euclidean_mode", lambda: ode_system("euclidean", 1), {"eta": 0.1, "sigma2": 0.5, "alpha_p": 1.0},
            {"p1": 1.0, "s1": 1.0}, "one eigenmode (p, s) of the Euclidean loss, SimSiam target",
            {"eta": (0.0, 0.3), "sigma2": (0.0, 2.0)}),
        "euclidean_byol": BuiltinSystem(
            "euclidean_byol", lambda: ode_system("euclidean", 1, True),
            {"eta": 0.1, "sigma2": 0.5, "alpha_p": 1.0, "beta": 0.5},
            {"p1": 1.0, "s1": 1.0, "tau1": 1.0}, "one eigenmode (p, s, tau) of the Euclidean loss, EMA target",
            {"eta": (0.0, 0.3), "beta": (0.01, 0.99)}),
        "euclidean_reduced": BuiltinSystem(
            "euclidean_reduced", lambda: ode_system("euclidean", reduced=True), {"eta": 0.1, "sigma2": 0.5},
            {"p": 1.0}, "cubic per-mode flow on the invariant manifold s = p^2/alpha_p",
            {"eta": (0.0, 0.3), "sigma2": (0.0, 2.0)}),
        "cosine_reduced": BuiltinSystem(
            "cosine_reduced", lambda: ode_system("cosine", reduced=True),
            {"eta": 0.1, "sigma2": 0.5, "alpha_p": 1.0, "nu_u": nu_u, "nu_v": nu_v, "rho": 0.0},
            {"p": 1.0}, "sextic per-mode flow of the cosine loss with frozen feature norms",
            {"eta": (0.0, 1.0), "sigma2": (0.0, 2.0)}),
        "cosine_modes": BuiltinSystem(
            "cosine_modes", lambda: ode_system("cosine", 2),
            {"eta": 0.05, "sigma2": 0.5, "alpha_p": 1.0, "f1": 0.5, "f2": 0.5},
            {"p1": 1.0, "s1": 1.0, "p2": 0.4, "s2": 0.16},
            "two mode groups of the cosine loss coupled through the concentrated norms",
            {"eta": (0.0, 0.3), "sigma2": (0.0, 2.0)}),
        "euclidean_2decays": BuiltinSystem(
            "euclidean_2decays", lambda: ode_system("euclidean", 1, separate_decays=True),
            {"eta_p": 0.02, "eta_s": 0.01, "sigma2": 0.5, "alpha_p": 1.0}, {"p1": -0.2, "s1": 0.04},
            "one eigenmode of the Euclidean loss with separate weight decays eta_p (predictor), eta_s (network)",
            {"alpha_p": (0.25, 4.0), "eta_p": (0.0, 0.05)}),
        "alignment_3x3": BuiltinSystem(
            "alignment_3x3", _alignment_system,
            {"eta_p": 0.01, "eta_s": 0.01, "sigma2": 0.5, "alpha_p": 1.0, "tau": 1.0},
            {**{f"W_{i}{j}": 0.5 * (i == j) + 0.1 * (i < j) for i in range(3) for j in range(3)},
             **{f"P_{i}{j}": 0.4 * (i == j) + 0.05 for i in range(3) for j in range(i, 3)}},
            "3 x 3 weights W and a symmetric predictor P, not aligned (Tian et al. Eq. 7 in the weights)",
            {"eta_p": (0.0, 0.1), "alpha_p": (0.25, 4.0)}),
        "cosine_shape": BuiltinSystem(
            "cosine_shape", lambda: ode_system("cosine", shape=True), {"sigma2": 0.5, "alpha_p": 1.0, "f1": 0.5},
            {"x": 1.2}, "normalised shape of two cosine mode groups in rescaled time (weight decay drops out)",
            {"sigma2": (0.0, 2.0), "alpha_p": (0.2, 3.0)}),
    }


def _alignment_system():
    from ._alignment import alignment_ode_system

    return alignment_ode_system(3)
