"""``theorykit seed-study``: how often each claim of ``reproduce`` passes across seeds.

A claim checked at one seed can pass or fail by chance when its measurement is statistical (a fitted
exponent, a count over a few runs). The seed study runs :func:`theorykit.report.reproduce` once per seed,
each in its own folder (a seed whose ``results.json`` already holds the same settings is not run again),
and tabulates per claim the number of passing seeds, the range of the measured values and the seeds that
failed, in ``pass_rates.md`` and ``pass_rates.json``.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from ._io import atomic_path, provenance, write_json
from .errors import InvalidParameterError
from .report import reproduce, select_theories
from .sweep import sweep


def _settings(names: list[str], quick: bool, seed: int, overrides: Mapping[str, float]) -> dict[str, Any]:
    """The parts of a seed's ``results.json`` settings that must match for it to be reused."""
    return {"mode": "quick" if quick else "full", "seed": int(seed), "theories": list(names),
            "tolerance_overrides": dict(overrides)}


def _reusable(path: Path, expected: Mapping[str, Any]) -> bool:
    try:
        settings = json.loads(path.read_text())["settings"]
    except (OSError, ValueError, KeyError):
        return False
    return all(settings.get(k) == v for k, v in expected.items())


def seed_point(params: dict, seed: int) -> dict[str, float]:
    """Sweep point: ``reproduce`` at ``params["seed"]`` into ``params["outdir"]`` (log in ``reproduce.log``),
    unless a matching ``results.json`` is there. Returns the numbers of passing claims and of claims."""
    del seed  # the study's seeds are the reproduce seeds themselves
    outdir = Path(params["outdir"])
    expected = _settings(params["only"], params["quick"], params["seed"], params["overrides"])
    if not _reusable(outdir / "results.json", expected):
        outdir.mkdir(parents=True, exist_ok=True)
        log = io.StringIO()
        try:
            reproduce(outdir, only=params["only"], quick=params["quick"], seed=params["seed"],
                      tolerance_overrides=params["overrides"], stream=log)
        finally:
            with atomic_path(outdir / "reproduce.log") as tmp:
                tmp.write_text(log.getvalue())
    record = json.loads((outdir / "results.json").read_text())
    claims = [c for t in record["theories"].values() for c in t["claims"]]
    return {"n_passed": float(sum(c["passed"] for c in claims)), "n_claims": float(len(claims))}


def _as_float(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return float("nan")


def tabulate(seed_dirs: Mapping[int, Path]) -> list[dict[str, Any]]:
    """One row per claim (theory order, then claim order) from the seeds' ``results.json``: ``theory``,
    ``claim``, ``criterion``, ``n_seeds``, ``n_passed``, ``pass_rate``, ``measured_min/median/max`` and
    ``failed_seeds``. A claim missing at a seed (its theory crashed there) counts as failed."""
    records = {s: json.loads((d / "results.json").read_text()) for s, d in sorted(seed_dirs.items())}
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for s, record in records.items():
        for theory, t in record["theories"].items():
            for c in t["claims"]:
                row = rows.setdefault((theory, c["name"]), {"theory": theory, "claim": c["name"],
                                                            "criterion": c["criterion"], "passed": {},
                                                            "measured": {}})
                row["passed"][s] = bool(c["passed"])
                row["measured"][s] = _as_float(c["measured"])
    out = []
    for row in rows.values():
        passed = [row["passed"].get(s, False) for s in records]
        measured = np.array([row["measured"].get(s, np.nan) for s in records])
        finite = measured[np.isfinite(measured)]
        out.append({"theory": row["theory"], "claim": row["claim"], "criterion": row["criterion"],
                    "n_seeds": len(records), "n_passed": int(sum(passed)), "pass_rate": sum(passed) / len(records),
                    "measured_min": float(finite.min()) if finite.size else None,
                    "measured_median": float(np.median(finite)) if finite.size else None,
                    "measured_max": float(finite.max()) if finite.size else None,
                    "failed_seeds": [s for s, ok in zip(records, passed) if not ok]})
    return out


def _g(x: float | None) -> str:
    return "—" if x is None else f"{x:.4g}"


def render(rows: Sequence[Mapping[str, Any]], seeds: Sequence[int], quick: bool,
           source: Mapping[str, Any] | None = None) -> str:
    """Markdown table of :func:`tabulate`'s rows, least robust claims first.

    ``source`` (optional) says where the numbers come from: ``commit``, ``created``, ``cpu_count`` and
    ``seconds`` (per seed) are printed above the table when given, with the command that regenerates it.
    """
    n_all = sum(r["n_passed"] == r["n_seeds"] for r in rows)
    mode = "quick" if quick else "full"
    lines = ["# theorykit seed study", "",
             f"`reproduce --{mode}` at seeds {', '.join(map(str, seeds))}: "
             f"{n_all}/{len(rows)} claims pass at every seed."]
    if source:
        seconds = [float(x) for x in source.get("seconds", ())]
        timing = (f", {min(seconds):.0f}–{max(seconds):.0f} s per seed on {source.get('cpu_count', '?')} cores"
                  if seconds else "")
        lines += ["", f"Commit `{source.get('commit') or 'n/a'}`, {source.get('created', '')}{timing}. Regenerate "
                  f"with `theorykit seed-study --{mode} --seeds {','.join(map(str, seeds))}` (add `--only THEORY` "
                  "for one theory)."]
    lines += ["", "Rows: least robust first; measured: the smallest, median and largest value over the seeds.", "",
              "| theory | claim | passed | measured (min / median / max) | criterion | failed at seeds |",
              "|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r["pass_rate"], r["theory"], r["claim"])):
        lines.append(f"| {r['theory']} | `{r['claim']}` | {r['n_passed']}/{r['n_seeds']} | "
                     f"{_g(r['measured_min'])} / {_g(r['measured_median'])} / {_g(r['measured_max'])} | "
                     f"{r['criterion'].replace('|', '&#124;')} | {', '.join(map(str, r['failed_seeds'])) or '—'} |")
    return "\n".join(lines) + "\n"


def source_of(seed_dirs: Mapping[int, Path]) -> dict[str, Any]:
    """Commit, date and per-seed wall times of the seeds' ``results.json`` (for :func:`render`); the commit is
    ``None`` unless every seed ran at the same one."""
    records = [json.loads((d / "results.json").read_text()) for _, d in sorted(seed_dirs.items())]
    commits = {r["provenance"].get("git_commit") for r in records}
    return {"commit": commits.pop() if len(commits) == 1 else None,
            "created": max(r["provenance"]["created"] for r in records)[:10],
            "cpu_count": records[0]["provenance"].get("cpu_count"),
            "seconds": [r.get("wall_time_s", float("nan")) for r in records]}


def seed_study(outdir: str | Path, seeds: Iterable[int], *, only: Iterable[str] | None = None, quick: bool = True,
               tolerance_overrides: Mapping[str, float] | None = None, processes: int | None = 1
               ) -> list[dict[str, Any]]:
    """Run ``reproduce`` at every seed (``processes`` seeds at a time) and write the pass rates.

    Each seed's report goes to ``outdir/seed_<n>``; seeds already there with the same settings are reused.
    Writes ``outdir/pass_rates.md`` and ``outdir/pass_rates.json`` and returns the rows of :func:`tabulate`.

    Raises
    ------
    InvalidParameterError
        If ``seeds`` is empty or repeats a seed, or a theory name is unknown.
    """
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise InvalidParameterError(f"seeds must be distinct and at least one, got {seeds}")
    names = select_theories(only)
    outdir = Path(outdir)
    overrides = dict(tolerance_overrides or {})
    dirs = {s: outdir / f"seed_{s}" for s in seeds}
    points = [{"seed": s, "outdir": str(dirs[s]), "only": names, "quick": bool(quick), "overrides": overrides}
              for s in seeds]
    result = sweep(seed_point, points, seed=0, processes=processes, desc="seed study")
    crashed = [f"seed {p.params['seed']}: {p.error}" for p in result.points if p.status != "ok"]
    if crashed:
        raise RuntimeError("reproduce did not finish at " + "; ".join(crashed))
    rows = tabulate(dirs)
    write_json(outdir / "pass_rates.json", {"seeds": seeds, "mode": "quick" if quick else "full", "theories": names,
                                             "tolerance_overrides": overrides, "claims": rows,
                                             "provenance": provenance()})
    with atomic_path(outdir / "pass_rates.md") as tmp:
        tmp.write_text(render(rows, seeds, quick, source_of(dirs)))
    return rows
