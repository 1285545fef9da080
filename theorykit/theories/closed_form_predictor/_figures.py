"""Figures of the studies in :mod:`._studies` (matplotlib, imported on first use)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _plt().close(fig)


def trajectories(path: Path, study: dict, kind: str = "lambda", title: str = "") -> None:
    """One panel per run of ``study`` (``runs`` and ``odes`` by the same key): group means of ``kind``
    (``s`` or ``lambda``) from SGD (dots) and the derived ODE (lines), and ``|W|_F^2/M`` (grey)."""
    plt = _plt()
    keys = list(study["runs"])
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.4), squeeze=False)
    for ax, key in zip(axes[0], keys):
        run, ode = study["runs"][key], study["odes"][key]
        for k in range(run.group(kind).shape[1]):
            ax.plot(run.t, ode[kind][:, k], "-", color=f"C{k}", label=f"ODE group {k + 1}")
            ax.plot(run.t, run.group(kind)[:, k], "o", color=f"C{k}", ms=2.5, label=f"SGD group {k + 1}")
        ax.plot(run.t, ode["mean_s"], "-", color="0.6", lw=1, label="|W|^2/M (ODE)")
        ax.plot(run.t, run.observables["mean_s"], ".", color="0.6", ms=2, label="|W|^2/M (SGD)")
        ax.set_title(f"{key} (M={run.params['dim']}, batch={run.params['batch']})", fontsize=9)
        ax.set(xlabel="t = lr x steps", ylabel=kind)
        ax.legend(fontsize=6)
    fig.suptitle(title, fontsize=10)
    _save(fig, path)


def width_scaling(path: Path, study: dict) -> None:
    """Max |s_SGD - s_ODE| against the width with the fitted power laws, one colour per loss."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.8, 3.6))
    dims = study["sizes"][:, 0]
    for k, loss in enumerate(key for key in study if isinstance(study[key], dict)):
        errors, fit = study[loss]["errors"], study[loss]["fit"]
        ax.loglog(np.repeat(dims, errors.shape[1]), errors.ravel(), "o", color=f"C{k}", alpha=0.6)
        ax.loglog(dims, fit.predict(dims), "-", color=f"C{k}", label=f"{loss}: slope {fit.slope:.2f} "
                  f"[{fit.slope_ci[0]:.2f}, {fit.slope_ci[1]:.2f}]")
    ax.set(xlabel="width M (batch = M/2, lr = 0.64/M)", ylabel="max |s_SGD - s_ODE|")
    ax.legend(fontsize=7)
    _save(fig, path)


__all__ = ["trajectories", "width_scaling"]
