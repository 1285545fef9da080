"""Nonlinear contrastive learning in the high-dimensional limit: ODE vs online SGD across n, laws of c and rho.

Examples
--------
python validation/contrastive_highdim.py --quick --out out/contrastive_highdim
python validation/contrastive_highdim.py --full --out out/contrastive_highdim_full

All numerics live in ``theorykit.theories.contrastive_highdim``; this script chooses the settings, runs
one sweep over law x rho x n x seed (``theorykit.sweep``: ``--processes N`` for a local pool,
``--scheduler tcp://host:8786`` for a dask cluster, ``--store DIR`` to resume an interrupted run), fits
the error exponent with ``fit_power_law``, saves the numbers and draws one figure.
"""

from __future__ import annotations

import numpy as np

from theorykit._io import save_result
from theorykit.sweep import SweepOptions
from theorykit.theories.contrastive_highdim import (HiddenLaw, Hyper, case_errors, compiled_ode, sgd_error_points,
                                                    sgd_error_study)
from theorykit.cli import add_sweep_arguments, experiment_parser, sweep_options
from theorykit.validate import fit_power_law

BASE = Hyper(tau=0.5, lam=0.5, sigma=0.5)


def main(argv=None) -> int:
    ap = experiment_parser(__doc__.splitlines()[0], name="contrastive_highdim",
                           quick_help="n = 250..2000, 3 seeds, t <= 5",
                           full_help="n = 500..10000, 5 seeds, t <= 10")
    add_sweep_arguments(ap)
    args = ap.parse_args(argv)

    ns = [250, 500, 1000, 2000] if args.quick else [500, 1000, 2000, 4000, 10000]
    n_seeds = 3 if args.quick else 5
    t_final = 5.0 if args.quick else 10.0
    laws = {"rademacher": HiddenLaw.rademacher(), "gaussian": HiddenLaw.gaussian(),
            "sparse_0.25": HiddenLaw.sparse_ternary(0.25)}
    rhos = [-0.5, 0.0, 0.5] if args.quick else [-1.0, -0.5, 0.0, 0.5, 1.0]
    ode = compiled_ode(d=2, K=1, act="tanh")
    args.out.mkdir(parents=True, exist_ok=True)

    # every law x rho x n x seed in one sweep
    points = [p for lname, law in laws.items() for rho in rhos
              for p in sgd_error_points(ode, BASE.replace(rho=rho), law, ns, n_seeds, case=f"{lname}_rho{rho:+.1f}",
                                        t_final=t_final)]
    errs = sgd_error_study(points, seed=args.seed, sweeps=SweepOptions(**sweep_options(args)))
    for line in errs["failures"]:
        print(f"failed point (left out of the fits): {line}")
    rows = {}
    for key in errs["case"].tolist():
        c = case_errors(errs, key)
        n, rms = c["n"], c["rms_m"]
        rows[key] = {"n": n.tolist(), "rms_m": rms.tolist(), "err_m": c["err_m"].tolist(), "err_Q": c["err_Q"].tolist()}
        if np.unique(n).size < 2:
            print(f"{key:28s} too few finished points for a fit")
            continue
        fit = fit_power_law(n, rms)
        rows[key].update(slope=fit.slope, slope_ci=list(fit.slope_ci))
        print(f"{key:28s} exponent {fit.slope:+.3f}  95% CI [{fit.slope_ci[0]:+.3f}, {fit.slope_ci[1]:+.3f}]  "
              f"max|m err| at n={n.max()}: {np.max(c['err_m'][n == n.max()]):.4f}")

    all_n = np.concatenate([r["n"] for r in rows.values()]).astype(np.int64)
    all_e = np.concatenate([r["rms_m"] for r in rows.values()])
    pooled = fit_power_law(all_n, all_e)
    print(f"pooled exponent {pooled.slope:+.3f} (CI {pooled.slope_ci[0]:+.3f}, {pooled.slope_ci[1]:+.3f}) vs -0.5")
    summary = {"pooled_slope": pooled.slope, "pooled_ci": list(pooled.slope_ci), "rows": rows,
               "failed_points": errs["failures"],
               "settings": {"ns": ns, "n_seeds": n_seeds, "seed": args.seed, "t_final": t_final,
                            "base": BASE.__dict__}}
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
