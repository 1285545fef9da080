"""The report figures. Each ``draw_*`` fills the axes of a figure laid out by its ``*_LAYOUT`` (arguments of
:meth:`theorykit.validate.Study.figure` / :func:`theorykit.validate.report_figure`)."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

BASINS_LAYOUT = dict(figsize=(5.6, 4.0))
NOISE_LAYOUT = dict(ncols=2, figsize=(9.5, 3.8))
ODE_VS_SGD_LAYOUT = dict(ncols=2, figsize=(9.5, 3.8))
PDE_LAYOUT = dict(figsize=(5.6, 4.0))


def draw_basins(ax, basins: Mapping[str, Mapping[str, float]]) -> None:
    """Share of starts ending on a single feature against the excess kurtosis of the law of ``c``."""
    names = list(basins["pure"])
    k4 = [basins["kappa4"][k] for k in names]
    pure = [basins["pure"][k] for k in names]
    ax.plot(k4, pure, "o")
    for k, x, y in zip(names, k4, pure):
        ax.annotate(k, (x, y), fontsize=7)
    ax.set_xlabel("excess kurtosis <c^4> - 3<c^2>^2")
    ax.set_ylabel("fraction selecting a single feature")


def draw_cosine_vs_noise(axes, grid: Mapping[str, np.ndarray]) -> None:
    """Final cosine of the ODEs against the noise correlation (one line per sigma) and, at rho = 0, sigma."""
    for i, s in enumerate(grid["sigma"]):
        axes[0].plot(grid["rho"], grid["m"][i], "o-", label=f"sigma={s:g}")
    axes[0].set_xlabel("noise correlation rho")
    axes[0].set_ylabel("final cosine max|m_i| (t = 60)")
    axes[0].legend()
    i0 = list(grid["rho"]).index(0.0)
    axes[1].plot(grid["sigma"], grid["m"][:, i0], "o-")
    axes[1].set_xlabel("sigma (rho = 0)")
    axes[1].set_ylabel("final cosine")


def draw_ode_vs_sgd(axes, ode: Any, sgd: Mapping[str, Any] | None, n: np.ndarray, rms: np.ndarray,
                    fit: Any) -> None:
    """Left: cosines of the ODE solution ``ode`` and of one SGD run ``sgd`` (``t``, ``q``, ``Q``, ``n``; or
    ``None``). Right: root-mean-square ODE-vs-SGD error against ``n`` with the power-law fit."""
    axes[0].plot(ode.t, ode.observed("m_1"), "k-", label="ODE m1")
    axes[0].plot(ode.t, ode.observed("m_2"), "k--", label="ODE m2")
    if sgd is not None:
        m = sgd["q"][:, :, 0] / np.sqrt(sgd["Q"][:, :1])
        axes[0].plot(sgd["t"], m[:, 0], "o", ms=3, label=f"SGD n={sgd['n']} m1")
        axes[0].plot(sgd["t"], m[:, 1], "s", ms=3, label=f"SGD n={sgd['n']} m2")
    axes[0].set_xlabel("t = k/n")
    axes[0].legend()
    axes[1].loglog(n, rms, "o")
    nn = np.unique(n)
    axes[1].loglog(nn, fit.predict(nn), "-", label=f"slope {fit.slope:.2f}")
    axes[1].set_xlabel("n")
    axes[1].set_ylabel("rms_t |m_SGD - m_ODE|")
    axes[1].legend()


def draw_pde_route(ax, route: Mapping[str, Any]) -> None:
    """First cosine of the particle PDE against SGD (L1) and against the ODEs (L2)."""
    ax.plot(route["pde_l1"].t, route["pde_l1"].observable("m_1"), "b-", label="PDE L1 m1")
    ax.plot(route["sgd_l1"].t, route["sgd_l1"].observable("m_1"), "bo", ms=3, label="SGD L1 m1")
    ax.plot(route["ode_l2"].t, route["ode_l2"].observed("m_1"), "k-", label="ODE L2 m1")
    ax.plot(route["pde_l2"].t, route["pde_l2"].observable("m_1"), "k^", ms=3, label="PDE L2 m1")
    ax.set_xlabel("t")
    ax.legend()
