r"""Numerics of weights that are not aligned: the compiled alignment system (:mod:`._matrix`), its
trajectories, Tian et al.'s Eq. 7 and the matrix :math:`K` of Theorem 3, and the commutator bounds.

With separate weight decays the theorem keeps its form,
:math:`\frac{d}{dt}[F, W_p] = -[F, W_p]K - K[F, W_p]`, with
:math:`K = (1+\sigma^2)[\tfrac{\alpha_p}{2}F + W_p^2 - \tfrac{\tau}{1+\sigma^2}W_p] + \tfrac{\eta_p + 2\eta_s}{2}I`
(Tian's :math:`\tfrac32\eta` when :math:`\eta_p = \eta_s = \eta`); so along any trajectory
:math:`e^{-2\int\lambda_{\max}(K)}\|L(0)\| \le \|L(t)\| \le e^{-2\int\lambda_{\min}(K)}\|L(0)\|` for
:math:`L = [F, W_p]`, :math:`F = WW^\top`.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from ...compile import compile_system
from ...derive import cached_derivation
from . import _matrix as Mx
from . import _symbolic as S

#: digest of the symbolic layers: part of the derivation cache key, so editing them re-derives
_DIGEST = hashlib.sha256(Path(Mx.__file__).read_bytes() + Path(S.__file__).read_bytes()).hexdigest()[:16]


@cached_derivation
def _derive_alignment(n: int, digest: str):
    return Mx.alignment_system(n)


def alignment_ode_system(n: int = 3):
    """:func:`._matrix.alignment_system` (the derivation cached on disk)."""
    return _derive_alignment(int(n), _DIGEST)


@lru_cache(maxsize=None)
def compiled_alignment(n: int = 3):
    """``compile_system`` of :func:`alignment_ode_system` (generated code cached on disk)."""
    return compile_system(alignment_ode_system(n))


def pack_weights(W: np.ndarray, Wp: np.ndarray) -> np.ndarray:
    """The state vector of the alignment system: every entry of ``W``, then the upper triangle of ``Wp``."""
    return np.concatenate([np.ravel(W), Wp[np.triu_indices(W.shape[0])]])


def unpack_weights(y: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(W, Wp)`` (n x n each, ``Wp`` symmetric) from a state vector of the alignment system."""
    W = np.asarray(y[: n * n], dtype=float).reshape(n, n)
    Wp = np.zeros((n, n))
    Wp[np.triu_indices(n)] = y[n * n:]
    return W, Wp + np.triu(Wp, 1).T


def alignment_solution(W0: np.ndarray, Wp0: np.ndarray, t_eval: Sequence[float], *, eta_p: float = 0.0,
                       eta_s: float = 0.0, sigma2: float = 0.0, alpha_p: float = 1.0, tau: float = 1.0):
    """The alignment system from ``(W0, Wp0)`` solved at ``t_eval`` (a :class:`theorykit.solve.Solution` with
    states ``W_ij``, ``P_ij`` and the observable ``comm2``, the names :func:`simulate_matrices` records)."""
    from ...solve import solve

    n = np.shape(W0)[0]
    csys = compiled_alignment(n)
    prm = csys.pack_params(dict(eta_p=eta_p, eta_s=eta_s, sigma2=sigma2, alpha_p=alpha_p, tau=tau))
    t_eval = np.asarray(t_eval, dtype=float)
    return solve(csys, pack_weights(np.asarray(W0, float), np.asarray(Wp0, float)), (t_eval[0], t_eval[-1]), prm,
                 t_eval=t_eval, rtol=1e-10, atol=1e-12, method="lsoda")


def tian_K(Wp: np.ndarray, F: np.ndarray, *, eta_p: float, eta_s: float, sigma2: float, alpha_p: float,
           tau: float = 1.0) -> np.ndarray:
    r"""The symmetric matrix :math:`K` of Theorem 3 (with the separate weight decays, see the module docstring)."""
    n = F.shape[0]
    return (1 + sigma2) * (0.5 * alpha_p * F + Wp @ Wp - tau * Wp / (1 + sigma2)) \
        + 0.5 * (eta_p + 2 * eta_s) * np.eye(n)


def tian_eq7(Wp: np.ndarray, F: np.ndarray, *, eta_p: float, eta_s: float, sigma2: float, alpha_p: float,
             tau: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    r"""Tian et al.'s Eq. 7, typed from the paper (decays :math:`\eta_p` on :math:`W_p`, :math:`2\eta_s` on
    :math:`F`): :math:`(\dot W_p, \dot F)`."""
    anti = lambda A, B: A @ B + B @ A  # noqa: E731
    dWp = -0.5 * alpha_p * (1 + sigma2) * anti(Wp, F) + alpha_p * tau * F - eta_p * Wp
    dF = -(1 + sigma2) * anti(Wp @ Wp, F) + tau * anti(Wp, F) - 2 * eta_s * F
    return dWp, dF


def identity_residuals(n: int, params: dict, rng: np.random.Generator, n_points: int = 8) -> dict[str, float]:
    r"""At random states: the largest relative difference between the derived flow and Tian's Eq. 7 (``eq7``), and
    between :math:`\frac{d}{dt}[F, W_p]` of the derived flow and :math:`-LK - KL` (``theorem3``)."""
    csys = compiled_alignment(n)
    prm = csys.pack_params(params)
    worst = {"eq7": 0.0, "theorem3": 0.0}
    rel = lambda a, b: float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))  # noqa: E731
    for _ in range(n_points):
        A = rng.standard_normal((n, n))
        W, Wp = rng.standard_normal((n, n)), (A + A.T) / 2
        dW, dWp = unpack_weights(csys.rhs(0.0, pack_weights(W, Wp), prm), n)
        F = W @ W.T
        dF = dW @ W.T + W @ dW.T
        ref_p, ref_f = tian_eq7(Wp, F, **params)
        worst["eq7"] = max(worst["eq7"], rel(dWp, ref_p), rel(dF, ref_f))
        L, K = F @ Wp - Wp @ F, tian_K(Wp, F, **params)
        worst["theorem3"] = max(worst["theorem3"], rel(dF @ Wp + F @ dWp - dWp @ F - Wp @ dF, -L @ K - K @ L))
    return worst


def commutator_record(t: np.ndarray, ys: np.ndarray, n: int, params: dict) -> dict[str, np.ndarray]:
    """Along a trajectory (states ``ys`` (n_t, n_states) at ``t``): ``comm`` :math:`\\|[F, W_p]\\|_F`, the extreme
    eigenvalues ``k_min``, ``k_max`` of :math:`K`, Theorem 3's bounds ``upper``, ``lower`` (trapezoid integrals
    of the eigenvalues from ``t[0]``) and the smallest ``eq17_margin`` over the modes of
    :math:`\\tfrac12[\\alpha_p(1+\\sigma^2)s_j + \\eta_p] - \\Delta_j` in the eigenbasis of :math:`W_p` (Eq. 17 holds
    where it is positive; :math:`s_j = u_j^\\top F u_j`)."""
    comm, kmin, kmax, margin = (np.empty(len(t)) for _ in range(4))
    for i, y in enumerate(ys):
        W, Wp = unpack_weights(y, n)
        F = W @ W.T
        comm[i] = np.linalg.norm(F @ Wp - Wp @ F)
        ev = np.linalg.eigvalsh(tian_K(Wp, F, **params))
        kmin[i], kmax[i] = ev[0], ev[-1]
        pj, U = np.linalg.eigh(Wp)
        sj = np.einsum("ij,ik,kj->j", U, F, U)
        delta = pj * (params.get("tau", 1.0) - (1 + params["sigma2"]) * pj) - params["eta_s"]
        margin[i] = np.min(0.5 * (params["alpha_p"] * (1 + params["sigma2"]) * sj + params["eta_p"]) - delta)
    from scipy.integrate import cumulative_trapezoid  # here: scipy.integrate takes ~0.5 s to import

    return dict(t=np.asarray(t), comm=comm, k_min=kmin, k_max=kmax, eq17_margin=margin,
                upper=comm[0] * np.exp(-2 * cumulative_trapezoid(kmin, t, initial=0.0)),
                lower=comm[0] * np.exp(-2 * cumulative_trapezoid(kmax, t, initial=0.0)))


__all__ = ["alignment_ode_system", "compiled_alignment", "pack_weights", "unpack_weights", "alignment_solution",
           "tian_K", "tian_eq7", "identity_residuals", "commutator_record"]
