"""The report figures. Each ``draw_*`` fills the axes of a figure laid out by its ``*_LAYOUT`` (arguments of
:meth:`theorykit.validate.Study.figure` / :func:`theorykit.validate.report_figure`)."""

from __future__ import annotations

import warnings

import numpy as np

from ._analysis import neuron_trajectories

NEURON_LAYOUT = dict(figsize=(6.4, 4.2))
STAGE_TIMES_LAYOUT = dict(figsize=(6.8, 4.0))
SCALING_LAYOUT = dict(ncols=4, figsize=(18.0, 3.8))
#: the eps_min panels of the pruning sweep: file, metrics drawn, y label, caption
EPS_PANELS = (
    ("neuron_counts.png", ("count_major", "count_minor"), r"neurons with $|\cos(w_i,M_j)|\geq 0.3$",
     "Number of neurons per feature with |cos(w_i, M_j)| >= 0.3 vs eps_min, majority and minority features, with and "
     "without magnitude pruning."),
    ("max_cosine.png", ("maxcos_major", "maxcos_minor"), r"max$_i |\cos(w_i,M_j)|$",
     "Largest |cos(w_i, M_j)| per feature vs eps_min, with and without Algorithm 1's pruning."),
    ("positive_cosine.png", ("pos_cosine",), "mean cos(f(X), f(Y))",
     "Average cosine between the representations of positive pairs vs eps_min."),
    ("downstream_mse.png", ("mse",), "relative test MSE",
     "Downstream linear (ridge) regression on the learned representation: relative test MSE vs eps_min."))
NEURON_CAPTION = ("Projection of one neuron on its dominant feature, the largest non-dominant feature and the noise "
                  "subspace; dotted lines: detected stage boundaries T1, T2, T3; dashed: the population flow (with the "
                  "softmax saturation) from the same initial projections.")
STAGE_TIMES_CAPTION = ("Measured stage times of majority- and minority-feature neurons (and at half the step size) "
                       "next to the population-flow predictions, and Lemma 3.1's scale d1 log d/(eta log log d) of T1 "
                       "with a unit constant.")
SCALING_CAPTION = ("First: coefficient of the most specialised neuron of each minority feature over tau vs eps_min, "
                   "trained to convergence, with and without Algorithm 1's pruning. Second: specialised neurons per "
                   "minority feature vs the width m, pruned, with m/d. Third: median stage-1 time vs the ambient "
                   "dimension d1 at fixed d and fixed noise variance per coordinate, SGD and population flow, with "
                   "Lemma 3.1's linear scaling. "
                   "Fourth: the same coefficient (pruned, converged) vs the temperature tau at fixed L2 lam, next to "
                   "sqrt(tau) times the coefficient at temperature 1 with L2 lam tau (the loss's temperature "
                   "scaling) and to tau (the upper end of Theorem 3.2's range). Mean ± std over seeds.")


def panel_layout(n_nsr: int) -> dict:
    """Layout of the eps_min panels of :func:`draw_eps_panels`: one column per NSR."""
    return dict(ncols=n_nsr, figsize=(4.2 * n_nsr, 3.6), squeeze=False)


def _mean_sd(x: np.ndarray, axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation over seeds, ignoring failed (NaN) points without warnings."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(x, axis=axis)
        return mean, (np.nanstd(x, axis=axis, ddof=1) if x.shape[axis] > 1 else np.zeros(mean.shape))


def draw_neuron(ax, st) -> None:
    """One majority neuron (the first with all three stages) of a :class:`._studies.StageSummary`: SGD solid,
    population flow dashed, detected stage boundaries dotted."""
    pick = next((n for n, row in enumerate(st.measured_major) if np.all(np.isfinite(row))), 0)
    if st.neurons_major.size:
        i, j = int(st.neurons_major[pick]), int(st.features_major[pick])
        dom, nd, nz, _ = neuron_trajectories(st.proj, st.noise, i, dom=j)
        ax.plot(st.t, dom, label=f"dominant feature M{j + 1}", color="C0")
        ax.plot(st.t, nd, label="largest non-dominant feature", color="C1")
        ax.plot(st.t, nz, label="noise subspace", color="C2")
        if st.flow_proj is not None:
            for y_, c in zip(neuron_trajectories(st.flow_proj, st.flow_noise, i, dom=j)[:3], ("C0", "C1", "C2")):
                ax.plot(st.t, y_, ls="--", color=c, lw=1)
        for k, T_ in enumerate(st.measured_major[pick]):
            if np.isfinite(T_):
                ax.axvline(T_, color="k", ls=":", lw=1)
                ax.text(T_, ax.get_ylim()[1] * 0.95, f" T{k + 1}", fontsize=8, va="top")
        ax.legend(fontsize=8)
    ax.set_xlabel("SGD step")
    ax.set_ylabel("projection of $w_i$")
    ax.set_title("Neuron projections (solid: SGD, dashed: population flow)")


def draw_eps_panels(axes, sw: dict, keys: tuple[str, ...], ylabel: str) -> None:
    """``keys`` of the eps_min x NSR x prune-rate sweep ``sw`` against eps_min, one panel per NSR, mean ± std over
    seeds, unpruned (solid) and pruned (dashed)."""
    for b, nsr in enumerate(sw["nsr"]):
        ax = axes[0, b]
        for key in keys:
            for c, rate in enumerate(sw["prune_rate"]):
                m, s = _mean_sd(sw[key][:, b, c, :])
                lab = f"{key.split('_')[-1] if key.count('_') else key}, prune {rate:g}"
                ax.errorbar(sw["eps_min"], m, yerr=s, marker="o" if c == 0 else "s", ls="-" if c == 0 else "--",
                            capsize=3, label=lab)
        ax.set_xscale("log")
        ax.set_xlabel(r"$\varepsilon_{\min}$")
        ax.set_title(f"NSR = {nsr:g}")
        ax.set_ylabel(ylabel)
    axes[0, 0].legend(fontsize=7)


def draw_stage_times(ax, st, st_half, scales: dict[str, float], eta: float) -> None:
    """Median stage times (IQR bars) of SGD, SGD at eta/2 and the population flow, with Lemma 3.1's T1 scale."""
    groups = [("SGD, majority", st.measured_major, "C0"), ("SGD, minority", st.measured_minor, "C3"),
              ("SGD, majority, eta/2", st_half.measured_major, "C2"),
              ("population flow, majority", st.predicted_major, "C1"),
              ("population flow, minority", st.predicted_minor, "C4")]
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


def draw_scaling(axes, conv: dict | None, widths: dict | None, d1s: dict | None, temp: dict | None, tau: float,
                 d: int) -> None:
    """The minority coefficient over tau against eps_min (Theorem 3.2; ``conv`` maps each prune rate to its converged
    eps_min sweep), the specialised-neuron count against the width m (with m/d), T1 against d1 (SGD, population
    flow, the paper's d1 scaling) and the coefficient against the temperature (``temp``,
    :func:`._studies.temperature_study`); a missing study (its section failed) leaves its panel empty."""
    ax = axes[0]
    if conv is not None:
        for c, (rate, res) in enumerate(conv.items()):
            m, s = _mean_sd(res["magnitude_minor"][:, 0, 0, :] / tau)
            ax.errorbar(res["eps_min"], m, yerr=s, marker="os"[c % 2], capsize=3,
                        label="unpruned" if rate == 0 else f"forward mask, rate {rate:g}")
        ax.axhline(1.0, color="k", ls=":", lw=1, label=r"$\tau$ (Theorem 3.2's upper end)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.legend(fontsize=7)
    ax.set_xlabel(r"$\varepsilon_{\min}$")
    ax.set_ylabel(r"max$_i |\langle w_i, M_{j}\rangle| / \tau$, minority")
    ax = axes[1]
    if widths is not None:
        m, s = _mean_sd(widths["count_minor"][:, 0, :])
        ax.errorbar(widths["width"], m, yerr=s, marker="o", capsize=3, label="per minority feature")
        ax.plot(widths["width"], widths["width"] / d, "k:", label="m / d")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.legend(fontsize=7)
    ax.set_xlabel("width m")
    ax.set_ylabel(r"neurons with $|\cos(w_i,M_j)|\geq 0.3$")
    ax = axes[2]
    if d1s is not None:
        for key, label, marker in (("T1_sgd", "SGD", "o"), ("T1_flow", "population flow", "s")):
            m, s = _mean_sd(d1s[key])
            ax.errorbar(d1s["d1"], m, yerr=s, marker=marker, capsize=3, label=label)
        ref = np.nanmean(d1s["T1_sgd"][0])
        ax.plot(d1s["d1"], ref * d1s["d1"] / d1s["d1"][0], "k:", label=r"$\propto d_1$ (Lemma 3.1)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.legend(fontsize=7)
    ax.set_xlabel(r"ambient dimension $d_1$")
    ax.set_ylabel(r"median $T_1$ (SGD steps)")
    ax = axes[3]
    if temp is not None:
        t = temp["tau"]
        m, s = _mean_sd(temp["at_tau"]["magnitude_minor"])
        ax.errorbar(t, m, yerr=s, marker="o", capsize=3, label=rf"SGD at $\tau$, $\lambda$ = {temp['lam']:g}")
        m, s = _mean_sd(np.sqrt(t)[:, None] * temp["at_lam_tau"]["magnitude_minor"])
        ax.errorbar(t, m, yerr=s, marker="s", mfc="none", ls="--", capsize=3,
                    label=r"$\sqrt{\tau}\,\times$ SGD at $\tau = 1$, $\lambda\tau$")
        ax.plot(t, t, "k:", label=r"$\tau$ (Theorem 3.2's upper end)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.legend(fontsize=7)
    ax.set_xlabel(r"temperature $\tau$")
    ax.set_ylabel(r"max$_i |\langle w_i, M_{j}\rangle|$, minority")
