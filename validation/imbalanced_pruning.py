"""Measurements and figures for contrastive learning under imbalanced data with magnitude pruning.

Runs :func:`theorykit.theories.imbalanced_pruning.reproduce` in a :class:`theorykit.validate.Study` (stage
dynamics with automatic stage detection, neuron counts / maximum cosine / positive-pair cosine / downstream
regression MSE vs eps_min for several NSR, with and without pruning, mean ± std over seeds) and writes the figures, a
``results.json`` with every claim and number, and a one-line verdict per claim. The eps_min x NSR x
prune-rate x seed sweep runs through ``theorykit.sweep``: ``--processes N`` for a local pool,
``--scheduler tcp://host:8786`` for a dask cluster, ``--store DIR`` to keep finished points and resume an
interrupted run. Failed sweep points are printed and left out of the means.

    python validation/imbalanced_pruning.py --quick --out out/imbalanced_pruning --seed 0
"""

from __future__ import annotations

import sys

from theorykit._io import provenance, write_json
from theorykit.cli import add_sweep_arguments, experiment_parser, sweep_options
from theorykit.sweep import SweepOptions
from theorykit.theories import imbalanced_pruning as theory
from theorykit.validate import Study


def main(argv: list[str] | None = None) -> int:
    ap = experiment_parser(__doc__.splitlines()[0], name="imbalanced_pruning",
                           quick_help="small configuration, two to three minutes on two cores",
                           full_help="paper-scale sweep (more eps, NSR, seeds)")
    add_sweep_arguments(ap)
    args = ap.parse_args(argv)

    study = Study(theory.name, theory.title, args.out, quick=args.quick, seed=args.seed,
                  sweep_options=SweepOptions(**sweep_options(args)), claim_names=theory.claim_names)
    report = study.run(theory.reproduce)
    claims = [{"name": c.name, "statement": c.statement, "measured": c.measured, "predicted": c.predicted,
               "tolerance": c.tolerance, "kind": c.kind, "criterion": c.criterion(), "passed": c.passed,
               "details": c.details, "figures": list(c.figures)} for c in report.claims]
    write_json(args.out / "results.json", {"theory": report.theory, "title": report.title, "claims": claims,
                                           "figures": report.figures, "numbers": report.numbers,
                                           "parameters": report.parameters, "timings": report.timings,
                                           "notes": report.notes, "provenance": provenance()})
    for note in report.notes:
        if note.startswith("Sweep point failed"):
            print(note)
    for c in report.claims:
        pred = "-" if c.predicted is None else f"{c.predicted:.4g}"
        print(f"{'PASS' if c.passed else 'FAIL'}  {c.name}: measured {c.measured:.4g}, predicted {pred} "
              f"({c.criterion()})")
    print(f"figures and results.json in {args.out}  (total {report.timings.get('total_s', float('nan')):.0f} s)")
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
