"""Barlow Twins at infinite width: width sweep, NTK change, loss curves and representation gap.

Examples
--------
python validation/barlow_ntk.py --quick --out out/barlow_ntk
python validation/barlow_ntk.py --full --activation relu --data digits --out out/barlow_ntk_digits

All numerics live in ``theorykit.theories.barlow_ntk``; this script only chooses settings, runs the sweep,
draws the figures and prints the fitted rates. The width x seed sweep runs through ``theorykit.sweep``:
``--processes N`` for a local pool, ``--scheduler tcp://host:8786`` for a dask cluster, ``--store DIR`` to
keep finished points and resume an interrupted run.
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace

import numpy as np

from theorykit._io import save_result
from theorykit.sweep import SweepOptions
from theorykit.theories.barlow_ntk import FULL, QUICK, generalization_check, run_width_sweep
from theorykit.theories.barlow_ntk import _figures as F
from theorykit.cli import add_sweep_arguments, experiment_parser, sweep_options
from theorykit.validate import fit_power_law, report_figure


def main(argv=None) -> int:
    ap = experiment_parser(__doc__.splitlines()[0], name="barlow_ntk",
                           quick_help="widths 64..2048, 3 seeds",
                           full_help="widths 2^6..2^14, 5 seeds")
    ap.add_argument("--activation", choices=("tanh", "relu"), default=None)
    ap.add_argument("--data", choices=("gaussian", "digits"), default=None,
                    help="digits needs scikit-learn (pip install 'theorykit[digits]')")
    ap.add_argument("--lam", type=float, default=None, help="off-diagonal weight lambda")
    ap.add_argument("--batch-size", type=int, default=None, help="SGD pairs per step (default: full batch)")
    add_sweep_arguments(ap)
    args = ap.parse_args(argv)

    cfg = QUICK if args.quick else FULL
    changes = {k: v for k, v in (("activation", args.activation), ("data", args.data), ("lam", args.lam),
                                 ("batch_size", args.batch_size)) if v is not None}
    cfg = replace(cfg, **changes).check()
    args.out.mkdir(parents=True, exist_ok=True)

    res = run_width_sweep(cfg, args.seed, sweeps=SweepOptions(**sweep_options(args)))
    failures = res.pop("failures")
    for line in failures:
        print(f"failed point (left out of the fits): {line}")
    gen = generalization_check(cfg, args.seed)
    for name, draw, layout in (("ntk_change_vs_width.png", F.draw_ntk_change, F.NTK_CHANGE_LAYOUT),
                               ("loss_curves.png", F.draw_losses, F.LOSSES_LAYOUT),
                               ("representation_gap.png", F.draw_gap, F.GAP_LAYOUT),
                               ("ntk_change_over_time.png", F.draw_ntk_over_time, F.NTK_OVER_TIME_LAYOUT)):
        with report_figure(args.out / name, **layout) as (fig, axes):
            draw(axes, res)
    fits = {key: fit_power_law(res["widths"], res[key], nan_policy="omit")
            for key in ("ntk_change", "ntk_init_fluct", "weight_dist", "gap_eval", "gap_train")}
    summary = {key: {"slope": f.slope, "slope_ci": f.slope_ci} for key, f in fits.items()}
    summary["generalization"] = gen
    summary["failed_points"] = failures
    save_result(args.out / "barlow_ntk_sweep", {k: np.asarray(v) for k, v in res.items()},
                {"config": asdict(cfg), "seed": args.seed, "summary": summary})
    print(json.dumps(summary, indent=2, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
