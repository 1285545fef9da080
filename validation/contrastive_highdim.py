"""Nonlinear contrastive learning in the high-dimensional limit: ODE vs online SGD across n, laws of c and rho.

Examples
--------
python validation/contrastive_highdim.py --quick --out out/contrastive_highdim
python validation/contrastive_highdim.py --full --out out/contrastive_highdim_full

All numerics live in ``theorykit.theories.contrastive_highdim``; this script chooses the settings, runs
the sweep (``sgd_errors`` for every law and rho), fits the error exponent with ``fit_power_law``, saves
the numbers and draws one figure.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from theorykit._io import save_result
from theorykit.theories.contrastive_highdim import ContrastiveODE, HiddenLaw, Hyper, sgd_errors
from theorykit.validate import experiment_parser, fit_power_law

BASE = Hyper(tau=0.5, lam=0.5, sigma=0.5)


def main(argv=None) -> int:
    ap = experiment_parser(__doc__.splitlines()[0], name="contrastive_highdim",
                           quick_help="n = 250..2000, 3 seeds, t <= 5",
                           full_help="n = 500..10000, 5 seeds, t <= 10")
    args = ap.parse_args(argv)

    ns = [250, 500, 1000, 2000] if args.quick else [500, 1000, 2000, 4000, 10000]
    seeds = [args.seed + i for i in range(3 if args.quick else 5)]
    t_final = 5.0 if args.quick else 10.0
    laws = {"rademacher": HiddenLaw.rademacher(), "gaussian": HiddenLaw.gaussian(),
            "sparse_0.25": HiddenLaw.sparse_ternary(0.25)}
    rhos = [-0.5, 0.0, 0.5] if args.quick else [-1.0, -0.5, 0.0, 0.5, 1.0]
    ode = ContrastiveODE(d=2, K=1, act="tanh")
    args.out.mkdir(parents=True, exist_ok=True)

    rows = {}
    for lname, law in laws.items():
        for rho in rhos:
            res = sgd_errors(ode, BASE.replace(rho=rho), law, ns, seeds, t_final=t_final)
            fit = fit_power_law(res["n"], res["rms_m"])
            key = f"{lname}_rho{rho:+.1f}"
            rows[key] = {"n": res["n"].tolist(), "rms_m": res["rms_m"].tolist(), "err_m": res["err_m"].tolist(),
                         "err_Q": res["err_Q"].tolist(), "slope": fit.slope, "slope_ci": list(fit.slope_ci)}
            print(f"{key:28s} exponent {fit.slope:+.3f}  95% CI [{fit.slope_ci[0]:+.3f}, {fit.slope_ci[1]:+.3f}]  "
                  f"max|m err| at n={max(ns)}: {np.max(res['err_m'][res['n'] == max(ns)]):.4f}")

    all_n = np.concatenate([r["n"] for r in rows.values()])
    all_e = np.concatenate([r["rms_m"] for r in rows.values()])
    pooled = fit_power_law(all_n, all_e)
    print(f"pooled exponent {pooled.slope:+.3f} (CI {pooled.slope_ci[0]:+.3f}, {pooled.slope_ci[1]:+.3f}) vs -0.5")
    summary = {"pooled_slope": pooled.slope, "pooled_ci": list(pooled.slope_ci), "rows": rows,
               "settings": {"ns": ns, "seeds": seeds, "t_final": t_final, "base": BASE.__dict__}}
    save_result(args.out / "contrastive_highdim_validation", {"n": all_n, "rms_m": all_e}, summary)

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.2))
    for key, r in rows.items():
        n = np.array(r["n"])
        e = np.array(r["rms_m"])
        nn = np.unique(n)
        ax.loglog(nn, [e[n == v].mean() for v in nn], "o-", ms=3, label=key)
    nn = np.unique(all_n)
    ax.loglog(nn, pooled.predict(nn), "k--", label=f"pooled slope {pooled.slope:.2f}")
    ax.set_xlabel("n")
    ax.set_ylabel("rms |m_SGD - m_ODE|")
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(args.out / "ode_vs_sgd_scaling.png", dpi=110)
    plt.close(fig)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
