"""The report figures. Each ``draw_*`` fills the axes of a figure laid out by its ``*_LAYOUT`` (arguments of
:meth:`theorykit.validate.Study.figure` / :func:`theorykit.validate.report_figure`); ``res`` is the result of
:func:`._studies.run_width_sweep`."""

from __future__ import annotations

import numpy as np

from ...validate import fit_power_law

NTK_CHANGE_LAYOUT = dict(ncols=2, figsize=(10, 4))
LOSSES_LAYOUT = dict(figsize=(6, 4))
GAP_LAYOUT = dict(figsize=(6, 4))
NTK_OVER_TIME_LAYOUT = dict(figsize=(6, 4))


def draw_ntk_change(axes, res: dict) -> None:
    """NTK change and initial NTK fluctuation vs width (log–log, fitted slopes), and weight distance vs width."""
    M = res["widths"]
    ax = axes[0]
    for key, lab, c in (("ntk_change", r"$\|\Theta_T-\Theta_0\|_F/\|\Theta_0\|_F$", "C0"),
                        ("ntk_init_fluct", r"$\|\Theta_0-\Theta_\infty\|_F/\|\Theta_\infty\|_F$", "C1")):
        v = res[key]
        fit = fit_power_law(M, v, nan_policy="omit")
        for s in range(v.shape[1]):
            ax.loglog(M, v[:, s], "o", color=c, alpha=0.4, ms=4)
        ax.loglog(M, fit.predict(M), "-", color=c, label=f"{lab}: slope {fit.slope:.2f}")
    ax.loglog(M, np.nanmean(res["ntk_change"][0]) * (M / M[0]) ** -0.5, "k--", lw=1,
              label=r"$M^{-1/2}$ (theorem's rate)")
    ax.set_xlabel("width M")
    ax.set_title("NTK change during training / at initialisation")
    ax.legend()
    ax = axes[1]
    v = res["weight_dist"]
    for s in range(v.shape[1]):
        ax.semilogx(M, v[:, s], "o-", alpha=0.6, ms=4)
    ax.set_ylim(0, 1.3 * np.nanmax(v))
    ax.set_xlabel("width M")
    ax.set_ylabel(r"$\|\theta_T-\theta_0\|$")
    ax.set_title("distance from initialisation (one line per seed)")


def draw_losses(ax, res: dict, seed_index: int = 0) -> None:
    """Network loss (solid) and kernel-model ODE loss (dashed) vs time for every width."""
    t = res["t"]
    for w, M in enumerate(res["widths"]):
        c = f"C{w % 10}"
        ax.semilogy(t, res["loss_net"][w, seed_index], "-", color=c, label=f"M={int(M)} network")
        ax.semilogy(t, res["loss_ode"][w, seed_index], "--", color=c, lw=1)
    ax.set_xlabel("gradient-flow time t")
    ax.set_ylabel("Barlow Twins loss")
    ax.set_title("network (solid) vs kernel model ODE (dashed)")
    ax.legend()


def draw_gap(ax, res: dict) -> None:
    """Relative network–kernel-model output gap at the end of training vs width."""
    M = res["widths"]
    for key, lab, c in (("gap_eval", "held-out inputs", "C0"), ("gap_train", "training inputs", "C1")):
        v = res[key]
        fit = fit_power_law(M, v, nan_policy="omit")
        ax.loglog(np.repeat(M, v.shape[1]), v.ravel(), "o", color=c, alpha=0.4, ms=4)
        ax.loglog(M, fit.predict(M), "-", color=c, label=f"{lab}: slope {fit.slope:.2f}")
    ax.loglog(M, np.nanmean(res["gap_eval"][0]) * (M / M[0]) ** -0.5, "k--", lw=1, label=r"$M^{-1/2}$")
    ax.set_xlabel("width M")
    ax.set_ylabel(r"$\|f_T - f^{lin}_T\|/\|f^{lin}_T\|$")
    ax.set_title("network vs kernel-model representations")
    ax.legend()


def draw_ntk_over_time(ax, res: dict) -> None:
    """Relative NTK change at each checkpoint, one line per width (mean over seeds)."""
    ch = np.nanmean(res["ntk_change_t"], axis=1)
    tc = np.linspace(0, res["t"][-1], ch.shape[1])
    for w, M in enumerate(res["widths"]):
        ax.semilogy(tc[1:], ch[w, 1:], "o-", label=f"M={int(M)}")
    ax.set_xlabel("gradient-flow time t")
    ax.set_ylabel(r"$\|\Theta_t-\Theta_0\|_F/\|\Theta_0\|_F$")
    ax.set_title("NTK change during training")
    ax.legend()
