"""Non-contrastive dynamics: eigenmode ODE versus SGD on the linear networks, and the collapse phase diagram.

Examples
--------
python validation/noncontrastive.py --quick --out out/noncontrastive
python validation/noncontrastive.py --full --out out/noncontrastive_full --seed 1

All numerics live in ``theorykit.theories.noncontrastive``; this script chooses the settings, runs the
studies as sweeps (``theorykit.sweep``: ``--processes N`` for a local pool, ``--scheduler tcp://host:8786``
for a dask cluster, ``--store DIR`` to resume an interrupted run), saves the arrays (``.npz`` + ``.json``)
and figures, and prints the fitted rates and agreement. Failed points are listed and left out.
"""

from __future__ import annotations

import json

import numpy as np

from theorykit._io import save_result
from theorykit._random import spawn_seeds
from theorykit.cli import add_sweep_arguments, experiment_parser, sweep_options
from theorykit.sweep import SweepOptions
from theorykit.theories import noncontrastive as nc
from theorykit.theories.noncontrastive import _analysis as A
from theorykit.theories.noncontrastive import _figures as F
from theorykit.theories.noncontrastive._studies import (SIZES_FULL, SIZES_QUICK, convergence_study, phase_agreement,
                                                        sample_phase_points)
from theorykit.validate import fit_power_law, report_figure


def main(argv=None) -> int:
    ap = experiment_parser(__doc__.splitlines()[0], name="noncontrastive",
                           quick_help="d = 16..64, 3 seeds, 30 phase points, about a minute",
                           full_help="d = 16..128, 6 seeds, 120 phase points")
    ap.add_argument("--eta", type=float, default=0.05, help="weight decay of the convergence study")
    ap.add_argument("--sigma2", type=float, default=0.5, help="augmentation variance of the convergence study")
    ap.add_argument("--alpha-p", type=float, default=1.0, help="predictor learning-rate ratio")
    add_sweep_arguments(ap)
    args = ap.parse_args(argv)
    A.check_hyper(args.eta, args.sigma2, args.alpha_p)
    args.out.mkdir(parents=True, exist_ok=True)

    sizes = SIZES_QUICK if args.quick else SIZES_FULL
    n_seeds = 3 if args.quick else 6
    # the three sweeps may share one --store folder: a point's file name holds its function, parameters and seed
    opts = SweepOptions(**sweep_options(args))
    conv, fits, failures = {}, {}, []
    for loss, sd in zip(("euclidean", "cosine"), spawn_seeds(args.seed, 2)):
        conv[loss] = convergence_study(loss, sizes, n_seeds, seed=int(sd), sweeps=opts, eta=args.eta,
                                       sigma2=args.sigma2, alpha_p=args.alpha_p)
        fits[loss] = fit_power_law(conv[loss]["dims"], conv[loss]["errors"], nan_policy="omit")
        failures += conv[loss]["failures"]
    with report_figure(args.out / "trajectories.png", **F.TRAJECTORIES_LAYOUT) as (fig, axes):
        F.draw_trajectories(axes, conv)
    with report_figure(args.out / "error_scaling.png", **F.SCALING_LAYOUT) as (fig, ax):
        F.draw_scaling(ax, conv, fits)

    pts = sample_phase_points(30 if args.quick else 120, args.seed)
    pa = phase_agreement(pts, args.seed, sweeps=opts, t_end=150.0 if args.quick else 250.0)
    failures += pa["failures"]
    for line in failures:
        print(f"failed point (left out): {line}")
    n = 14 if args.quick else 40
    grid = A.phase_grid(np.linspace(0.01, 0.5, n), np.linspace(0.0, 2.0, n))
    with report_figure(args.out / "phase_diagram.png", **F.PHASE_LAYOUT) as (fig, axes):
        F.draw_phase(axes, grid, pa, nc.euclidean_fold_curve((float(grid["sigma2"][0]), float(grid["sigma2"][-1]))))

    summary = {
        "ode_vs_sgd": {loss: {"slope_in_d": f.slope, "slope_ci": f.slope_ci,
                              "mean_error_per_size": [float(np.mean(e[ok])) if ok.any() else float("nan")
                                                      for e, ok in zip(conv[loss]["errors"], conv[loss]["ok"])],
                              "sizes_dim_batch_lr": [list(s) for s in sizes]} for loss, f in fits.items()},
        "phase_agreement": pa["agreement"],
        "n_points": int(len(pts)),
        "n_points_ok": int(np.sum(pa["ok"])),
        "euclidean_collapsed_fraction_sgd": float(np.mean(pa["euc_sim"][pa["ok"]])) if pa["ok"].any() else None,
        "cosine_collapsed_fraction_sgd": float(np.mean(pa["cos_sim"][pa["ok"]])) if pa["ok"].any() else None,
        "failed_points": failures,
    }
    arrays = {f"{loss}_errors": c["errors"] for loss, c in conv.items()}
    arrays.update(points=pts, phase_ok=pa["ok"], euc_pred=pa["euc_pred"], euc_sim=pa["euc_sim"], cos_pred=pa["cos_pred"],
                  cos_sim=pa["cos_sim"], grid_eta=grid["eta"], grid_sigma2=grid["sigma2"],
                  grid_euclidean_collapse=grid["euclidean_collapse"], grid_cosine_collapse=grid["cosine_collapse"])
    save_result(args.out / "noncontrastive_validation", arrays,
                {"seed": args.seed, "quick": args.quick, "eta": args.eta, "sigma2": args.sigma2,
                 "alpha_p": args.alpha_p, "n_seeds": n_seeds, "summary": summary})
    print(json.dumps(summary, indent=2, default=float))
    return 0 if pa["agreement"] >= 0.95 and all(f.slope < 0 for f in fits.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
