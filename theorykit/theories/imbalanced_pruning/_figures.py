"""Figures of ``reproduce``: neuron stages, stage times, the eps_min x NSR x pruning panels, the scaling sweeps."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from ._model import Run
from ._stages import StageSummary, neuron_trajectories


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    """Lay out, write (110 dpi) and close a figure."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _plt().close(fig)


def _mean_sd(x: np.ndarray, axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation over seeds, ignoring failed (NaN) points without warnings."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(x, axis=axis)
        return mean, (np.nanstd(x, axis=axis, ddof=1) if x.shape[axis] > 1 else np.zeros(mean.shape))


def sweep_figures(outdir: Path, run: Run, stages: StageSummary, sw: dict[str, np.ndarray]) -> dict[str, str]:
    plt = _plt()
    figs: dict[str, str] = {}
    t = run.steps.astype(np.float64)
    # Figure 1: one majority neuron (the first with all three stages), with the population flow
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    pick = 0
    for n, row in enumerate(stages.measured_major):
        if np.all(np.isfinite(row)):
            pick = n
            break
    if stages.neurons_major.size:
        i, j = int(stages.neurons_major[pick]), int(stages.features_major[pick])
        dom, nd, nz, _ = neuron_trajectories(run.proj, run.noise, i, dom=j)
        ax.plot(t, dom, label=f"dominant feature M{j + 1}", color="C0")
        ax.plot(t, nd, label="largest non-dominant feature", color="C1")
        ax.plot(t, nz, label="noise subspace", color="C2")
        if stages.flow_proj is not None:
            d2, n2, z2, _ = neuron_trajectories(stages.flow_proj, stages.flow_noise, i, dom=j)
            for y_, c in ((d2, "C0"), (n2, "C1"), (z2, "C2")):
                ax.plot(t, y_, ls="--", color=c, lw=1)
        for k, T_ in enumerate(stages.measured_major[pick]):
            if np.isfinite(T_):
                ax.axvline(T_, color="k", ls=":", lw=1)
                ax.text(T_, ax.get_ylim()[1] * 0.95, f" T{k + 1}", fontsize=8, va="top")
    ax.set_xlabel("SGD step")
    ax.set_ylabel("projection of $w_i$")
    ax.set_title("Neuron projections (solid: SGD, dashed: population flow)")
    if stages.neurons_major.size:
        ax.legend(fontsize=8)
    _save(fig, outdir / "stages.png")
    figs["stages.png"] = ("Projection of one neuron on its dominant feature, the largest non-dominant feature and "
                          "the noise subspace; dotted lines: detected stage boundaries T1, T2, T3; dashed: the "
                          "population flow (with the softmax saturation) from the same initial projections.")

    eps = sw["eps_min"]
    rates = sw["prune_rate"]

    def panel(name: str, keys: tuple[str, ...], ylabel: str, caption: str) -> None:
        fig, axes = plt.subplots(1, sw["nsr"].size, figsize=(4.2 * sw["nsr"].size, 3.6), squeeze=False)
        for b, nsr in enumerate(sw["nsr"]):
            ax = axes[0, b]
            for key in keys:
                for c, rate in enumerate(rates):
                    m, s = _mean_sd(sw[key][:, b, c, :])
                    lab = f"{key.split('_')[-1] if key.count('_') else key}, prune {rate:g}"
                    ax.errorbar(eps, m, yerr=s, marker="o" if c == 0 else "s", ls="-" if c == 0 else "--",
                                capsize=3, label=lab)
            ax.set_xscale("log")
            ax.set_xlabel(r"$\varepsilon_{\min}$")
            ax.set_title(f"NSR = {nsr:g}")
            ax.set_ylabel(ylabel)
        axes[0, 0].legend(fontsize=7)
        _save(fig, outdir / name)
        figs[name] = caption + " Mean ± std over seeds."

    panel("neuron_counts.png", ("count_major", "count_minor"), r"neurons with $|\cos(w_i,M_j)|\geq 0.3$",
          "Number of neurons per feature with |cos(w_i, M_j)| >= 0.3 vs eps_min, majority and minority features, "
          "with and without magnitude pruning.")
    panel("max_cosine.png", ("maxcos_major", "maxcos_minor"), r"max$_i |\cos(w_i,M_j)|$",
          "Largest |cos(w_i, M_j)| per feature vs eps_min, with and without Algorithm 1's pruning.")
    panel("positive_cosine.png", ("pos_cosine",), "mean cos(f(X), f(Y))",
          "Average cosine between the representations of positive pairs vs eps_min.")
    panel("downstream_mse.png", ("mse",), "relative test MSE",
          "Downstream linear (ridge) regression on the learned representation: relative test MSE vs eps_min.")
    return figs


def stage_figure(outdir: Path, st: StageSummary, st_half: StageSummary, scales: dict[str, float],
                  eta: float) -> dict[str, str]:
    plt = _plt()
    groups = [("SGD, majority", st.measured_major, "C0"), ("SGD, minority", st.measured_minor, "C3"),
              ("SGD, majority, eta/2", st_half.measured_major, "C2"),
              ("population flow, majority", st.predicted_major, "C1"),
              ("population flow, minority", st.predicted_minor, "C4")]
    fig, ax = plt.subplots(figsize=(6.8, 4.0))
    width = 0.16
    for g, (label, T, color) in enumerate(groups):
        for k in range(T.shape[1]):
            col = T[:, k][np.isfinite(T[:, k])]
            if col.size == 0:
                continue
            med = np.median(col)
            lo, hi = np.percentile(col, [25, 75])
            ax.bar(k + (g - 2) * width, med, width, color=color, label=label if k == 0 else None,
                   yerr=[[med - lo], [hi - med]], capsize=3)
    for key, style in (("T1_major", "--"), ("T1_minor", ":")):
        ax.hlines(scales[key], -2.5 * width, 2.5 * width, colors="k", linestyles=style,
                  label=rf"Lemma 3.1 $\Theta$ scale of {key.replace('_', ', ')}, unit constant")
    ax.set_xticks(range(3), ["T1", "T2", "T3"])
    ax.set_ylabel("SGD steps (median, IQR over neurons)")
    ax.set_title(f"Stage times (eta = {eta:g})")
    ax.legend(fontsize=7)
    _save(fig, outdir / "stage_times.png")
    return {"stage_times.png": "Measured stage times of majority- and minority-feature neurons (and at half the "
                               "step size) next to the population-flow predictions, and Lemma 3.1's scale "
                               "d1 log d/(eta log log d) of T1 with a unit constant."}


def scaling_figure(outdir: Path, conv: dict, widths: dict, d1s: dict, tau: float, d: int) -> dict[str, str]:
    """Three panels: the minority coefficient over tau against eps_min (Theorem 3.2), the specialised-neuron count
    against the width m (with m/d), and T1 against d1 (SGD, population flow, the paper's d1 scaling)."""
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(13.5, 3.8))
    ax = axes[0]
    for c, rate in enumerate(conv["prune_rate"]):
        y = conv["magnitude_minor"][:, 0, c, :] / tau
        m, s = _mean_sd(y)
        ax.errorbar(conv["eps_min"], m, yerr=s, marker="os"[c % 2], capsize=3,
                    label="unpruned" if rate == 0 else f"forward mask, rate {rate:g}")
    ax.axhline(1.0, color="k", ls=":", lw=1, label=r"$\tau$ (Theorem 3.2's upper end)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"$\varepsilon_{\min}$")
    ax.set_ylabel(r"max$_i |\langle w_i, M_{j}\rangle| / \tau$, minority")
    ax.legend(fontsize=7)
    ax = axes[1]
    m, s = _mean_sd(widths["count_minor"][:, 0, :])
    ax.errorbar(widths["width"], m, yerr=s, marker="o", capsize=3, label="per minority feature")
    ax.plot(widths["width"], widths["width"] / d, "k:", label="m / d")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("width m")
    ax.set_ylabel(r"neurons with $|\cos(w_i,M_j)|\geq 0.3$")
    ax.legend(fontsize=7)
    ax = axes[2]
    for key, label, marker in (("T1_sgd", "SGD", "o"), ("T1_flow", "population flow", "s")):
        m, s = _mean_sd(d1s[key])
        ax.errorbar(d1s["d1"], m, yerr=s, marker=marker, capsize=3, label=label)
    ref = np.nanmean(d1s["T1_sgd"][0])
    ax.plot(d1s["d1"], ref * d1s["d1"] / d1s["d1"][0], "k:", label=r"$\propto d_1$ (Lemma 3.1)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"ambient dimension $d_1$")
    ax.set_ylabel(r"median $T_1$ (SGD steps)")
    ax.legend(fontsize=7)
    _save(fig, outdir / "scaling.png")
    return {"scaling.png": "Left: coefficient of the most specialised neuron of each minority feature over tau vs "
                           "eps_min, trained to convergence, with and without Algorithm 1's pruning. Middle: "
                           "specialised neurons per minority feature vs the width m, pruned, with m/d. Right: "
                           "median stage-1 time vs the ambient dimension d1 at fixed d, SGD and population flow, "
                           "with the paper's linear scaling for reference. Mean ± std over seeds."}
