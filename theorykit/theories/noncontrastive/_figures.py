"""The report figures. Each ``draw_*`` fills the axes of a figure laid out by its ``*_LAYOUT`` (arguments of
:meth:`theorykit.validate.Study.figure` / :func:`theorykit.validate.report_figure`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _analysis as A

TRAJECTORIES_LAYOUT = dict(nrows=2, ncols=2, figsize=(10, 6.4), sharex=True, gridspec_kw={"height_ratios": [2, 1]})
SCALING_LAYOUT = dict(figsize=(5, 3.8))
PHASE_LAYOUT = dict(ncols=2, figsize=(10, 4), sharey=True)
BIFURCATION_LAYOUT = dict(ncols=2, figsize=(10, 3.8))
EMERGENCE_LAYOUT = dict(figsize=(5, 3.8))


def draw_trajectories(axes, conv: dict[str, dict]) -> None:
    """Group eigenvalues and loss of SGD on the eigenmode ODE, one column per loss."""
    conv = {loss: c for loss, c in conv.items() if "t" in c}  # a study whose points all failed has none
    for col, (loss, c) in enumerate(conv.items()):
        lax = axes[1, col]
        tm = 0.5 * (c["t"][1:] + c["t"][:-1])
        lax.plot(c["t"], c["loss_ode"], "k-", label="ODE loss per mode")
        lax.plot(tm, c["loss_sgd"][1:], "ks", ms=3, label="SGD minibatch loss (interval mean)")
        lax.set_xlabel("t = lr x steps")
        lax.legend()
    for ax, (loss, c) in zip(axes[0], conv.items()):
        for k in range(c["p_sgd"].shape[1]):
            ax.plot(c["t"], c["p_ode"][:, k], "-", color=f"C{k}", label=f"ODE p{k + 1}")
            ax.plot(c["t"], c["p_sgd"][:, k], "o", color=f"C{k}", ms=4, label=f"SGD p{k + 1}")
            ax.plot(c["t"], c["s_ode"][:, k], "--", color=f"C{k}", alpha=0.6)
            ax.plot(c["t"], c["s_sgd"][:, k], "x", color=f"C{k}", ms=4, alpha=0.6)
        d, b, lr = c["keep_size"]
        ax.set_title(f"{loss}: d={int(d)}, batch={int(b)}, lr={lr:g} (dashed/x: s)")
        ax.legend()


def draw_scaling(ax, conv: dict[str, dict], fits: dict[str, Any]) -> None:
    """ODE-vs-SGD errors against the dimension with the fitted power laws."""
    for k, (loss, c) in enumerate(conv.items()):
        d = np.repeat(c["dims"], c["errors"].shape[1])
        ax.loglog(d, c["errors"].ravel(), "o", color=f"C{k}", alpha=0.6)  # failed points are NaN: not drawn
        ax.loglog(c["dims"], fits[loss].predict(c["dims"]), "-", color=f"C{k}",
                  label=f"{loss}: slope {fits[loss].slope:.2f}")
    ax.set_xlabel("dimension d (batch = d/2, lr = 0.64/d)")
    ax.set_ylabel("max |ODE - SGD| over t of p, s")
    ax.legend()


def draw_phase(axes, grid: dict, pa: dict) -> None:
    """Collapse phase diagrams (theory shading and boundaries) with the SGD outcomes at sampled points."""
    ext = [grid["eta"][0], grid["eta"][-1], grid["sigma2"][0], grid["sigma2"][-1]]
    s2 = np.linspace(ext[2], ext[3], 200)
    ef_ = np.linspace(ext[0], ext[1], 200)
    ec = np.array([A.euclidean_critical_eta(x) for x in s2])
    nu = [A.frozen_norms(1.0, x) for x in s2]
    ef = np.array([A.cosine_fold_eta(x, 1.0, 1.0, a, b) for x, (a, b) in zip(s2, nu)])
    for ax, loss in zip(axes, ("euclidean", "cosine")):
        if loss == "euclidean":
            # closed form on a fine grid (the coarse ODE grid is checked in a claim)
            img = (ef_[None, :] > ec[:, None]).astype(float)
            title = "Euclidean loss: collapse (shaded)\nfor eta > 1/(4(1+sigma2))"
        else:
            # the ODE grid found no collapse; light shading: only the collapsed equilibrium at the initial norms
            img = 0.5 * (ef_[None, :] > ef[:, None]) + 1.0 * np.any(grid["cosine_collapse"])
            title = "cosine loss: no collapse (ODE grid, SGD);\nshaded: equilibrium emerges only as norms shrink"
        ax.imshow(img, origin="lower", extent=ext, aspect="auto", cmap="Greys", vmin=0, vmax=1.5, alpha=0.7)
        ax.plot(ec, s2, "r-", lw=1.5, label="Euclidean boundary (theory)")
        if loss == "cosine":
            ax.plot(ef, s2, "b--", lw=1.2, label="frozen-norm fold at initial norms")
        key = "euc" if loss == "euclidean" else "cos"
        pts, ok = pa["points"], pa["ok"]
        col = pa[f"{key}_sim"] & ok
        ax.scatter(pts[col, 0], pts[col, 1], marker="o", c="k", s=18, label="SGD collapsed")
        ax.scatter(pts[~col & ok, 0], pts[~col & ok, 1], marker="o", facecolors="none", edgecolors="g", s=18,
                   label="SGD not collapsed")
        if not ok.all():
            ax.scatter(pts[~ok, 0], pts[~ok, 1], marker="x", c="r", s=18, label="SGD run failed")
        ax.set_xlim(ext[0], ext[1])
        ax.set_title(title)
        ax.set_xlabel("weight decay eta")
        ax.legend(loc="upper right")
    axes[0].set_ylabel("augmentation variance sigma2")


def draw_bifurcation(axes, bifs: dict[str, dict]) -> None:
    """Equilibria of the reduced per-mode flows against the weight decay, folds dotted."""
    for ax, (loss, b) in zip(axes, bifs.items()):
        st = np.asarray(b["stable"], bool)
        ax.plot(b["eta"][st], b["p"][st], "b.", ms=3, label="stable")
        ax.plot(b["eta"][~st], b["p"][~st], "r.", ms=3, label="unstable")
        ax.axhline(0, color="b", lw=2, label="collapsed p = 0 (stable)")
        for f in b["folds"]:
            ax.axvline(f, color="k", ls=":", lw=1)
        ax.set_title(f"{loss} reduced flow ({b['method']})")
        ax.set_xlabel("eta")
        ax.set_ylabel("p*")
        ax.legend()


def draw_emergence(ax, em: dict) -> None:
    """The frozen-norm fold along a cosine-loss run (ODE and SGD norms) against the weight decay."""
    ax.plot(em["t"], em["fold_ode"], "-", label="fold of frozen-norm sextic (ODE norms)")
    ax.plot(em["t"], em["fold_sim"], "o", ms=3, label="same, norms measured in SGD")
    ax.axhline(em["eta"], color="r", ls="--", label=f"eta = {em['eta']:g}")
    ax.set_xlabel("t")
    ax.set_ylabel("eta_fold")
    ax.set_yscale("log")
    ax.legend()
