"""The report figures. Each ``draw_*`` fills the axes of a figure laid out by its ``*_LAYOUT`` (arguments of
:meth:`theorykit.validate.Study.figure` / :func:`theorykit.validate.report_figure`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _analysis as A

TRAJECTORIES_LAYOUT = dict(nrows=2, ncols=2, figsize=(10, 6.4), sharex=True, gridspec_kw={"height_ratios": [2, 1]})
SCALING_LAYOUT = dict(figsize=(5, 3.8))
PHASE_LAYOUT = dict(ncols=2, figsize=(10, 4), sharey=True)
BIFURCATION_LAYOUT = dict(ncols=3, figsize=(15, 3.8))
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


def draw_phase(axes, grid: dict, pa: dict, fold=None) -> None:
    """Collapse phase diagrams with the SGD outcomes at sampled points: Euclidean, the ODE grid (shading) with
    the fold curve traced by continuation (``fold``, a :class:`~theorykit.analysis.BifurcationCurve` in
    ``(eta, sigma2)``) over it; cosine, the frozen-norm fold at the initial norms (Bao 2023's approximation)."""
    ext = [grid["eta"][0], grid["eta"][-1], grid["sigma2"][0], grid["sigma2"][-1]]
    s2 = np.linspace(ext[2], ext[3], 200)
    ef_ = np.linspace(ext[0], ext[1], 200)
    ec = np.array([A.euclidean_critical_eta(x) for x in s2])
    nu = [A.frozen_norms(1.0, x) for x in s2]
    ef = np.array([A.cosine_fold_eta(x, 1.0, 1.0, a, b) for x, (a, b) in zip(s2, nu)])
    for ax, loss in zip(axes, ("euclidean", "cosine")):
        if loss == "euclidean":
            ax.pcolormesh(grid["eta"], grid["sigma2"], grid["euclidean_ode_collapse"].astype(float), cmap="Greys",
                          vmin=0, vmax=1.5, alpha=0.7, shading="nearest")
            title = "Euclidean loss: collapse (shaded: ODE grid)\nfold curve eta = 1/(4(1+sigma2))"
        else:
            # the ODE grid found no collapse; light shading: only the collapsed equilibrium at the initial norms
            img = 0.5 * (ef_[None, :] > ef[:, None]) + 1.0 * np.any(grid["cosine_collapse"])
            title = "cosine loss: no collapse (ODE grid, SGD);\nshaded: equilibrium emerges only as norms shrink"
            ax.imshow(img, origin="lower", extent=ext, aspect="auto", cmap="Greys", vmin=0, vmax=1.5, alpha=0.7)
        if fold is not None and loss == "euclidean":
            ax.plot(fold.param_of("eta"), fold.param_of("sigma2"), "r-", lw=2, label="fold curve (continue_fold)")
            ax.plot(ec, s2, "k:", lw=1.2, label="closed form (Tian et al. 2021)")
        else:
            ax.plot(ec, s2, "r-", lw=1.5, label="Euclidean boundary (theory)")
        if loss == "cosine":
            ax.plot(ef, s2, "b--", lw=1.2, label="frozen-norm fold at initial norms (Bao's approximation)")
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


def draw_bifurcation(axes, bifs: dict[str, dict], cosine_fold=None, eta_fold=None) -> None:
    """Equilibria of the reduced per-mode flows against the weight decay, folds dotted; third panel: the fold of
    the frozen-norm cosine sextic followed in ``(nu_u, eta)`` (``cosine_fold``) against ``eta_fold(nu_u)``."""
    if cosine_fold is not None:
        ax = axes[2]
        nu = cosine_fold.param_of("nu_u")
        ax.plot(nu, cosine_fold.param_of("eta"), "o", ms=3, label="fold curve (continue_fold)")
        ax.plot(nu, eta_fold(nu), "k-", lw=1, label="SymPy eta_fold(nu_u)")
        ax.set_xlabel("frozen norm nu_u")
        ax.set_ylabel("eta at the fold")
        ax.set_yscale("log")
        ax.set_title("cosine, frozen norms (Bao's approximation)")
        ax.legend()
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


BYOL_LAYOUT = dict(ncols=2, figsize=(10, 3.8))
ALIGNMENT_LAYOUT = dict(nrows=2, ncols=2, figsize=(10, 6), sharex="col", gridspec_kw={"height_ratios": [2, 1]})
SYMMETRIC_LAYOUT = dict(figsize=(5.6, 4.2))


def draw_byol(axes, b: dict) -> None:
    """Left: the predictor eigenvalues of a strong and a weak group with the EMA target started at 0 and at 1
    (ODE lines, SGD dots) and the edges of the collapse basin. Right: the target ratio of the ODE against
    Tian et al.'s Eq. 15."""
    ax = axes[0]
    for tau0, ls in ((0.0, "-"), (1.0, "--")):
        run, sol = b["runs"][tau0], b["odes"][tau0]
        for k in (1, 2):
            ax.plot(run.t, sol.y_of(f"p{k}"), ls, color=f"C{k - 1}", label=f"ODE p{k}, W_a(0) = {tau0:g} W")
            ax.plot(run.t, run.observable(f"p{k}"), "o", color=f"C{k - 1}", ms=3, mfc="none" if tau0 else None)
    ax.axhline(b["edge_late"], color="k", ls=":", lw=1, label="p*_-(tau = 1), late basin edge")
    ax.axhline(b["edge_early"], color="r", ls=":", lw=1, label="basin edge from tau(0) = 0 (ODE)")
    ax.set_xlabel("t")
    ax.set_ylabel("p")
    ax.legend(fontsize=7)
    ax = axes[1]
    ax.plot(b["dense_t"], b["dense"]["tau"][:, 0], "-", label="ODE tau")
    ax.plot(b["dense_t"][::200], b["eq15"][::200], "o", ms=4, label="Eq. 15 from the ODE's p")
    ax.set_xlabel("t")
    ax.set_ylabel("tau = W_a / W")
    ax.legend()


def draw_alignment(axes, al: dict) -> None:
    """Top: the commutator norm along the ODE (line) within Theorem 3's bounds (band), and SGD on the
    networks (dots), for a start with K positive definite and one violating Eq. 17. Bottom: lambda_min(K)."""
    for col, case in enumerate(("stable", "violated")):
        c = al[case]
        rec, stop = c["record"], c["stop"]
        t = rec["t"][: stop + 1]
        ax = axes[0, col]
        ax.semilogy(t, rec["comm"][: stop + 1], "k-", label="ODE ||[F, W_p]||")
        ax.fill_between(t, rec["lower"][: stop + 1], rec["upper"][: stop + 1], color="C0", alpha=0.2,
                        label="Theorem 3 bounds")
        ax.semilogy(c["t_run"], c["comm_sgd"], "o", color="C1", ms=4, label="SGD on the networks")
        ax.set_title({"stable": "K positive definite: alignment", "violated": "Eq. 17 violated: no alignment"}[case])
        ax.legend(fontsize=7)
        ax = axes[1, col]
        ax.plot(t, rec["k_min"][: stop + 1], "C2-", label="lambda_min(K)")
        ax.axhline(0.0, color="k", lw=0.8)
        ax.set_xlabel("t")
        ax.legend(fontsize=7)


def draw_symmetric(ax, sym: dict) -> None:
    """The collapse of the negative-predictor mode without EMA over (alpha_p, eta_p/eta_s): ODE grid (shading)
    and SGD at sampled points."""
    ax.pcolormesh(sym["alphas"], sym["ratios"], sym["collapsed"].T.astype(float), cmap="Greys", vmin=0, vmax=1.5,
                  shading="nearest", alpha=0.7)
    pts, col, ok = sym["points"], sym["sgd_collapsed"], sym["ok"]
    ax.scatter(pts[col & ok, 0], pts[col & ok, 1], c="k", s=22, label="SGD: collapses")
    ax.scatter(pts[~col & ok, 0], pts[~col & ok, 1], facecolors="none", edgecolors="g", s=22, label="SGD: survives")
    ax.axvline(1.0, color="r", ls=":", lw=1, label="alpha_p = 1")
    ax.axhline(1.0, color="b", ls=":", lw=1, label="eta_p = eta_s")
    ax.plot([sym["edge_alpha"], 1.0], [1.0, sym["edge_ratio"]], "m^", ms=7, label="edges on these lines (ODE)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("predictor learning-rate ratio alpha_p")
    ax.set_ylabel("eta_p / eta_s")
    ax.set_title("symmetric predictor, no EMA (shaded: ODE collapse)")
    ax.legend(fontsize=7, loc="upper left")
