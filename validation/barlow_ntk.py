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
from dataclasses import replace
from pathlib import Path

import numpy as np

from theorykit._io import save_result
from theorykit.theories.barlow_ntk import FULL, QUICK, generalization_check, run_width_sweep
from theorykit.theories.barlow_ntk._reproduce import _fit, plot_gap, plot_losses, plot_ntk_change
from theorykit.cli import add_sweep_arguments, experiment_parser, sweep_options


def plot_ntk_over_time(res: dict, path: Path) -> None:
    """Relative NTK change at each checkpoint, one line per width (mean over seeds)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ch = np.nanmean(res["ntk_change_t"], axis=1)
    tc = np.linspace(0, res["t"][-1], ch.shape[1])
    fig, ax = plt.subplots(figsize=(6, 4))
    for w, M in enumerate(res["widths"]):
        ax.semilogy(tc[1:], ch[w, 1:], "o-", label=f"M={int(M)}")
    ax.set_xlabel("gradient-flow time t")
    ax.set_ylabel(r"$\|\Theta_t-\Theta_0\|_F/\|\Theta_0\|_F$")
    ax.set_title("NTK change during training")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


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

    res = run_width_sweep(cfg, args.seed, **sweep_options(args))
    failures = res.pop("failures")
    for line in failures:
        print(f"failed point (left out of the fits): {line}")
    gen = generalization_check(cfg, args.seed)
    plot_ntk_change(res, args.out / "ntk_change_vs_width.png")
    plot_losses(res, args.out / "loss_curves.png")
    plot_gap(res, args.out / "representation_gap.png")
    plot_ntk_over_time(res, args.out / "ntk_change_over_time.png")
    M = res["widths"]
    summary = {key: {"slope": _fit(M, res[key]).slope, "slope_ci": _fit(M, res[key]).slope_ci}
               for key in ("ntk_change", "ntk_init_fluct", "weight_dist", "gap_eval", "gap_train")}
    summary["generalization"] = gen
    summary["failed_points"] = failures
    save_result(args.out / "barlow_ntk_sweep", {k: np.asarray(v) for k, v in res.items()},
                {"config": {**cfg.__dict__}, "seed": args.seed, "summary": summary})
    print(json.dumps({k: v for k, v in summary.items()}, indent=2, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
