"""``theorykit reproduce``: run every theory's checks and write report.md, report.html and results.json.

Each theory (:class:`theorykit.theories.Theory`) fills a :class:`~theorykit.validate.Study`, which returns its
:class:`~theorykit.validate.TheoryReport`. A theory that crashes becomes one failed claim with the error; the
others still run.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import sys
import time
from pathlib import Path
from typing import Any, Iterable, Mapping, TextIO

from ._io import atomic_path, provenance, write_json
from .errors import InvalidParameterError
from .sweep import SweepOptions
from .theories import get_theory, theory_names
from .validate import Claim, Study, TheoryReport, crash_claim


def select_theories(only: Iterable[str] | None) -> list[str]:
    """The theories to run, in report order: all of them, or those named in ``only`` (comma-separated
    entries allowed)."""
    order = theory_names()
    if not only:
        return list(order)
    chosen = [o for name in only for o in name.split(",") if o]
    unknown = [o for o in chosen if o not in order]
    if unknown:
        raise InvalidParameterError(f"only: unknown theory {unknown}; choose from {', '.join(order)}")
    return [o for o in order if o in chosen]


def _apply_overrides(report: TheoryReport, overrides: Mapping[str, float]) -> None:
    for i, claim in enumerate(report.claims):
        for key in (f"{report.theory}.{claim.name}", claim.name):
            if key in overrides:
                report.claims[i] = dataclasses.replace(claim, tolerance=float(overrides[key]))
                break


def run_theory(name: str, outdir: Path, *, quick: bool, seed: int, sweep_options: SweepOptions,
               stream: TextIO) -> TheoryReport:
    """One theory's report (a crash, even on import, is one failed claim ``runs``); progress on ``stream``."""
    try:
        theory = get_theory(name)
    except Exception as exc:  # reported as a failed claim; the other theories still run
        print(f"== {name}", file=stream, flush=True)
        return TheoryReport(theory=name, title=name, claims=[crash_claim("runs", "the theory's reproduction", exc)],
                            notes=[f"crashed: {type(exc).__name__}: {exc}"])
    print(f"== {name}: {theory.title}", file=stream, flush=True)
    study = Study(name, theory.title, outdir, quick=quick, seed=seed, sweep_options=sweep_options.in_subfolder(name),
                  claim_names=theory.claim_names)
    return study.run(theory.reproduce)


def run_theories(outdir: Path, names: list[str], *, quick: bool, seed: int,
                 overrides: Mapping[str, float], stream: TextIO,
                 sweep_options: SweepOptions | None = None) -> list[TheoryReport]:
    reports = []
    for name in names:
        report = run_theory(name, outdir / name, quick=quick, seed=seed, sweep_options=sweep_options or SweepOptions(),
                            stream=stream)
        _apply_overrides(report, overrides)
        for c in report.claims:
            verdict = "PASS" if c.passed else "FAIL"
            print(f"   [{verdict}] {c.name}: measured {_fmt(c.measured)}, theory {_fmt(c.predicted)} "
                  f"({c.criterion()})", file=stream, flush=True)
            if not c.passed:
                print(f"          {c.describe_failure()}", file=stream)
                if "error" in c.details:
                    print(f"          {c.details['error']}", file=stream)
        reports.append(report)
    return reports


def _fmt(x: Any) -> str:
    if x is None:
        return "—"
    try:
        return f"{float(x):.4g}"
    except (TypeError, ValueError):
        return str(x)


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _claim_record(c: Claim) -> dict[str, Any]:
    return {"name": c.name, "statement": c.statement, "measured": c.measured, "predicted": c.predicted,
            "tolerance": c.tolerance, "kind": c.kind, "criterion": c.criterion(), "deviation": c.deviation,
            "margin": c.margin, "bound_over_measured": c.bound_over_measured, "passed": c.passed,
            "details": c.details, "figures": list(c.figures)}


def results_record(reports: list[TheoryReport], settings: Mapping[str, Any], seconds: float) -> dict[str, Any]:
    return {
        "passed": all(r.passed for r in reports),
        "settings": dict(settings),
        "provenance": provenance(),
        "wall_time_s": seconds,
        "theories": {r.theory: {"title": r.title, "passed": r.passed, "claims": [_claim_record(c) for c in r.claims],
                                "figures": r.figures, "parameters": r.parameters, "numbers": r.numbers,
                                "timings": r.timings, "notes": r.notes} for r in reports},
    }


def render_markdown(reports: list[TheoryReport], record: Mapping[str, Any]) -> str:
    prov = record["provenance"]
    n_claims = sum(len(r.claims) for r in reports)
    n_pass = sum(c.passed for r in reports for c in r.claims)
    lines = ["# theorykit validation report", "",
             f"**{n_pass}/{n_claims} claims pass** — mode `{record['settings']['mode']}`, seed "
             f"{record['settings']['seed']}, {record['wall_time_s']:.1f} s on {prov['cpu_count']} cores; "
             f"theorykit {prov['versions'].get('theorykit')}, commit `{prov.get('git_commit') or 'n/a'}`, "
             f"{prov['created']}.", "",
             "| theory | claims passed | time (s) |", "|---|---|---|"]
    for r in reports:
        lines.append(f"| [{r.title}](#{r.theory}) | {sum(c.passed for c in r.claims)}/{len(r.claims)} "
                     f"| {r.timings.get('total_s', 0):.1f} |")
    for r in reports:
        lines += ["", f"## <a id=\"{r.theory}\"></a>{r.title}", "",
                  "| | claim | measured | theory | criterion |", "|---|---|---|---|---|"]
        for c in r.claims:
            mark = "PASS" if c.passed else "**FAIL**"
            lines.append(f"| {mark} | {_cell(c.statement)} (`{c.name}`) | {_fmt(c.measured)} | {_fmt(c.predicted)} "
                         f"| {_cell(c.criterion())} |")
        for c in r.claims:
            if not c.passed:
                lines.append(f"\n> FAIL {c.describe_failure()}" + (f" — {c.details['error']}" if "error" in c.details else ""))
        for note in r.notes:
            lines.append(f"\n{note}")
        for fig, caption in r.figures.items():
            lines += ["", f"![{caption}]({r.theory}/{fig})", "", f"*{caption}*"]
    return "\n".join(lines) + "\n"


def render_html(reports: list[TheoryReport], record: Mapping[str, Any], outdir: Path) -> str:
    """A self-contained HTML page: the same content as report.md with figures embedded as base64."""
    e = html.escape
    prov = record["provenance"]
    n_claims = sum(len(r.claims) for r in reports)
    n_pass = sum(c.passed for r in reports for c in r.claims)
    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>theorykit validation report</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}"
             ".PASS{color:#176f2c;font-weight:bold}.FAIL{color:#b00020;font-weight:bold}"
             "figure{margin:1em 0}img{max-width:100%}figcaption{font-style:italic;color:#444}</style></head><body>",
             "<h1>theorykit validation report</h1>",
             f"<p><b>{n_pass}/{n_claims} claims pass</b> — mode <code>{e(record['settings']['mode'])}</code>, "
             f"seed {record['settings']['seed']}, {record['wall_time_s']:.1f} s on {prov['cpu_count']} cores; "
             f"theorykit {e(str(prov['versions'].get('theorykit')))}, commit <code>{e(str(prov.get('git_commit')))}</code>, "
             f"{e(prov['created'])}.</p>"]
    for r in reports:
        parts.append(f"<h2 id='{e(r.theory)}'>{e(r.title)}</h2><table><tr><th></th><th>claim</th>"
                     "<th>measured</th><th>theory</th><th>criterion</th></tr>")
        for c in r.claims:
            v = "PASS" if c.passed else "FAIL"
            parts.append(f"<tr><td class='{v}'>{v}</td><td>{e(c.statement)} (<code>{e(c.name)}</code>)</td>"
                         f"<td>{e(_fmt(c.measured))}</td><td>{e(_fmt(c.predicted))}</td><td>{e(c.criterion())}</td></tr>")
        parts.append("</table>")
        for c in r.claims:
            if not c.passed:
                parts.append(f"<p class='FAIL'>FAIL {e(c.describe_failure())}</p>")
        for note in r.notes:
            parts.append(f"<p>{e(note)}</p>")
        for fig, caption in r.figures.items():
            path = outdir / r.theory / fig
            if path.exists():
                data = base64.b64encode(path.read_bytes()).decode()
                parts.append(f"<figure><img alt='{e(caption)}' src='data:image/png;base64,{data}'>"
                             f"<figcaption>{e(caption)}</figcaption></figure>")
    parts.append("</body></html>")
    return "\n".join(parts)


def reproduce(outdir: str | Path, *, only: Iterable[str] | None = None, quick: bool = True, seed: int = 0,
              tolerance_overrides: Mapping[str, float] | None = None, stream: TextIO | None = None,
              sweep_options: SweepOptions | None = None) -> tuple[list[TheoryReport], dict[str, Any]]:
    """Run the selected theories and write ``report.md``, ``report.html`` and ``results.json`` in ``outdir``.

    ``sweep_options`` (processes, a dask.distributed scheduler, a store folder of finished points for
    resuming; default: inline, no store) go to the theories' sweeps; each theory stores its points in
    its own subfolder of the store."""
    stream = stream or sys.stdout
    outdir = Path(outdir)
    names = select_theories(only)
    options = sweep_options or SweepOptions()
    outdir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    reports = run_theories(outdir, names, quick=quick, seed=seed, overrides=tolerance_overrides or {}, stream=stream,
                           sweep_options=options)
    settings = {"mode": "quick" if quick else "full", "seed": seed, "theories": names,
                "tolerance_overrides": dict(tolerance_overrides or {}),
                "sweep": {k: (str(v) if v is not None else None) for k, v in options.kwargs().items()}}
    record = results_record(reports, settings, time.perf_counter() - start)
    write_json(outdir / "results.json", record)
    with atomic_path(outdir / "report.md") as tmp:
        tmp.write_text(render_markdown(reports, record))
    with atomic_path(outdir / "report.html") as tmp:
        tmp.write_text(render_html(reports, record, outdir))
    return reports, record
