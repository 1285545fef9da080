"""Stage boundaries T1, T2, T3 of neurons, from SGD records or from the population flow (same detector)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..._checks import check_int
from ...errors import InvalidParameterError
from . import _flow as fl
from ._model import Run


def detect_stages(t: np.ndarray, dom: np.ndarray, nondom: np.ndarray, noise: np.ndarray, *,
                  sep: float = 3.0, tol: float = 0.1, window: int = 5) -> tuple[float, float, float]:
    r"""Stage boundaries of one neuron from its projections over time.

    * :math:`T_1`: first time the dominant-feature projection exceeds the noise projection (end of the
      stage in which feature directions grow while noise is suppressed);
    * :math:`T_2`: first time after :math:`T_1` it exceeds ``sep`` times both the largest non-dominant
      projection and the noise projection (clear separation);
    * :math:`T_3`: first time after :math:`T_2` the dominant projection, smoothed by a running median over
      ``window`` records (SGD fluctuates), comes within ``tol`` (relative) of its plateau, the median of
      the last quarter of the record (convergence).

    ``nan`` where a criterion is never met. :math:`T_3` is ``nan`` when the record has not converged:
    the medians of its last two quarters differ by more than ``tol`` (relative).

    Parameters
    ----------
    t : float64[n_t]
    dom, nondom, noise : float64[n_t]
        ``|<w, M_dom>|``, ``max_{k != dom} |<w, M_k>|`` and the norm outside span(M).
    sep, tol : float
        Separation factor of :math:`T_2`, relative tolerance of :math:`T_3`.
    window : int
        Running-median window (records) of :math:`T_3`.
    """
    t = np.asarray(t, dtype=np.float64)
    dom, nondom, noise = (np.abs(np.asarray(x, dtype=np.float64)) for x in (dom, nondom, noise))
    if not (t.shape == dom.shape == nondom.shape == noise.shape) or t.ndim != 1:
        raise InvalidParameterError(f"t, dom, nondom and noise must be 1-d arrays of one length, got shapes "
                                    f"{t.shape}, {dom.shape}, {nondom.shape}, {noise.shape}")
    check_int("window", window, 1)

    def first(cond: np.ndarray, start: int = 0) -> int:
        idx = np.flatnonzero(cond[start:])
        return int(idx[0] + start) if idx.size else -1

    i1 = first(dom >= noise)
    i2 = first((dom >= sep * nondom) & (dom >= sep * noise), i1) if i1 >= 0 else -1
    i3 = -1
    quarter = t.size // 4
    if i2 >= 0 and quarter >= 1:
        plateau = float(np.median(dom[-quarter:]))
        before = float(np.median(dom[-2 * quarter:-quarter]))
        if abs(plateau - before) <= tol * plateau:
            half = window // 2
            padded = np.pad(dom, (half, window - 1 - half), mode="edge")
            smooth = np.median(np.lib.stride_tricks.sliding_window_view(padded, window), axis=1)
            i3 = first(np.abs(smooth - plateau) <= tol * plateau, i2)
    return tuple(float(t[i]) if i >= 0 else math.nan for i in (i1, i2, i3))  # type: ignore[return-value]


def neuron_trajectories(proj: np.ndarray, noise: np.ndarray, i: int, dom: int | None = None
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """``(dom, nondom, noise)`` trajectories of neuron ``i`` from records ``proj`` [n_t, m, K], ``noise`` [n_t, m].

    The dominant feature is the one with the largest final ``|<w_i, M_j>|`` unless ``dom`` is given.
    """
    P = np.abs(proj[:, i, :])
    j = int(np.argmax(P[-1])) if dom is None else int(dom)
    others = np.delete(P, j, axis=1)
    nd = others.max(axis=1) if others.shape[1] else np.zeros(P.shape[0])
    return P[:, j], nd, noise[:, i], j


def learned_neurons(proj: np.ndarray, noise: np.ndarray, *, min_growth: float = 2.0, min_cos: float = 0.5
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Neurons that learned a feature, and which one.

    A neuron learned its dominant feature ``j`` (largest final ``|<w_i, M_j>|``) when that projection ends
    at least ``min_growth`` times the neuron's initial norm (it grew along the feature beyond the random
    initialisation) and at cosine at least ``min_cos`` with ``M_j``. Pruned (zero) neurons never qualify.

    Parameters
    ----------
    proj : float64[n_t, m, K]
        Records of ``<w_i, M_k>``.
    noise : float64[n_t, m]
        Records of the norm outside span(M).

    Returns
    -------
    neurons, features : int64[n]
    """
    proj = np.asarray(proj, dtype=np.float64)
    noise = np.asarray(noise, dtype=np.float64)
    norm0 = np.sqrt(np.sum(proj[0] ** 2, axis=1) + noise[0] ** 2)
    norm1 = np.sqrt(np.sum(proj[-1] ** 2, axis=1) + noise[-1] ** 2)
    final = np.abs(proj[-1])
    feat = np.argmax(final, axis=1)
    top = final[np.arange(final.shape[0]), feat]
    with np.errstate(invalid="ignore", divide="ignore"):
        ok = (norm1 > 0) & (top >= min_growth * norm0) & (top >= min_cos * norm1)
    idx = np.flatnonzero(ok)
    return idx.astype(np.int64), feat[idx].astype(np.int64)


def stage_times(t: np.ndarray, proj: np.ndarray, noise: np.ndarray, neurons: np.ndarray, features: np.ndarray,
                **detect) -> np.ndarray:
    """float64[n, 3]: :func:`detect_stages` (``T1, T2, T3``) of each neuron with its given dominant feature,
    from records ``proj`` [n_t, m, K] and ``noise`` [n_t, m] (``detect`` is passed on)."""
    out = np.empty((len(neurons), 3))
    for n, (i, j) in enumerate(zip(neurons, features)):
        dom, nd, nz, _ = neuron_trajectories(proj, noise, int(i), dom=int(j))
        out[n] = detect_stages(t, dom, nd, nz, **detect)
    return out


@dataclass(frozen=True)
class StageSummary:
    """Stage times of the neurons that learned a feature (:func:`learned_neurons`).

    ``measured_*`` (SGD) and ``predicted_*`` (the saturating population flow started from the same initial
    projections) are float64[n, 3] with columns ``T1, T2, T3``, for majority- and minority-feature neurons;
    ``neurons_*`` and ``features_*`` (int64[n]) name each row's neuron and dominant feature. ``flow_proj``
    float64[n_t, m, K] and ``flow_noise`` float64[n_t, m] are the flow's records (``None`` without flow).
    """

    measured_major: np.ndarray
    measured_minor: np.ndarray
    predicted_major: np.ndarray
    predicted_minor: np.ndarray
    neurons_major: np.ndarray
    neurons_minor: np.ndarray
    features_major: np.ndarray
    features_minor: np.ndarray
    flow_proj: np.ndarray | None = None
    flow_noise: np.ndarray | None = None


def stage_summary(run: Run, *, with_flow: bool = True) -> StageSummary:
    """Detect the three stages of every neuron that learned a feature and, with ``with_flow``, in the
    population flow (:func:`._flow.population_flow`) integrated from the run's initial projections."""
    cfg = run.config
    t = run.steps.astype(np.float64)
    neurons, features = learned_neurons(run.proj, run.noise)
    major = features < cfg.n_major
    measured = stage_times(t, run.proj, run.noise, neurons, features)
    if with_flow:
        fp, fn = fl.population_flow(cfg, run.proj[0], run.noise[0], t)
        predicted = stage_times(t, fp, fn, neurons, features)
    else:
        fp = fn = None
        predicted = np.full_like(measured, np.nan)
    return StageSummary(measured[major], measured[~major], predicted[major], predicted[~major], neurons[major],
                        neurons[~major], features[major], features[~major], fp, fn)
