"""The report figures: each ``draw_*`` fills the axes of a figure laid out by its ``*_LAYOUT`` (arguments of
:meth:`theorykit.validate.Study.figure`); :func:`draw_trajectories` takes one panel per run, ``squeeze=False``."""

from __future__ import annotations

import numpy as np

from ._simulate import group_series

WIDTH_LAYOUT = dict(figsize=(4.8, 3.6))


def draw_trajectories(axes, study: dict, kind: str = "lambda") -> None:
    """Per run of ``study`` (``runs`` and ``odes`` by the same key): group means of ``kind`` (``s`` or ``lambda``)
    from SGD (dots) and the derived ODE (lines), and ``|W|_F^2/M`` (grey)."""
    for ax, key in zip(axes[0], study["runs"]):
        run, sol = study["runs"][key], study["odes"][key]
        ode = sol.y if kind == "s" else np.column_stack([sol.observed(f"lambda{k + 1}") for k in range(sol.y.shape[1])])
        for k in range(ode.shape[1]):
            ax.plot(run.t, ode[:, k], "-", color=f"C{k}", label=f"ODE group {k + 1}")
            ax.plot(run.t, group_series(run, kind)[:, k], "o", color=f"C{k}", ms=2.5, label=f"SGD group {k + 1}")
        ax.plot(run.t, sol.observed("mean_s"), "-", color="0.6", lw=1, label="|W|^2/M (ODE)")
        ax.plot(run.t, run.observable("mean_s"), ".", color="0.6", ms=2, label="|W|^2/M (SGD)")
        ax.set_title(f"{key} (M={run.params['dim']}, batch={run.params['batch']})", fontsize=9)
        ax.set(xlabel="t = lr x steps", ylabel=kind)
        ax.legend(fontsize=6)


def draw_width_scaling(ax, study: dict) -> None:
    """Max |s_SGD - s_ODE| against the width with the fitted power laws, one colour per loss."""
    dims = study["sizes"][:, 0]
    for k, loss in enumerate(key for key in study if isinstance(study[key], dict)):
        errors, fit = study[loss]["errors"], study[loss]["fit"]
        ax.loglog(np.repeat(dims, errors.shape[1]), errors.ravel(), "o", color=f"C{k}", alpha=0.6)
        ax.loglog(dims, fit.predict(dims), "-", color=f"C{k}", label=f"{loss}: slope {fit.slope:.2f} "
                  f"[{fit.slope_ci[0]:.2f}, {fit.slope_ci[1]:.2f}]")
    ax.set(xlabel="width M (batch = M/2, lr = 0.64/M)", ylabel="max |s_SGD - s_ODE|")
    ax.legend(fontsize=7)
