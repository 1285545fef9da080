"""Rich display in Jupyter: HTML summaries of results and LaTeX of symbolic systems.

The result classes call these from their ``_repr_html_`` / ``_repr_latex_`` methods. Every piece of text
that can come from a user (names, claim statements, notes) is HTML-escaped; numbers are formatted with
``format_number``. The functions read only public attributes, so they work on results loaded from disk.
"""

from __future__ import annotations

import html
from typing import Any, Iterable, Sequence

import numpy as np

_PASS_STYLE = "color:#176f2c;font-weight:bold"
_FAIL_STYLE = "color:#b00020;font-weight:bold"
_TABLE_STYLE = "border-collapse:collapse;margin:0.3em 0"
_CELL_STYLE = "border:1px solid #ccc;padding:2px 6px;text-align:left"


def format_number(x: Any) -> str:
    """A number for a table cell: ``"—"`` for ``None``, 6 significant digits, complex as ``a+bj``."""
    if x is None:
        return "—"
    if isinstance(x, (complex, np.complexfloating)):
        return f"{x.real:.6g}{x.imag:+.6g}j" if x.imag else f"{x.real:.6g}"
    if isinstance(x, (bool, np.bool_)):
        return str(bool(x))
    try:
        return f"{float(x):.6g}"
    except (TypeError, ValueError):
        return str(x)


def _escape(text: Any) -> str:
    return html.escape(str(text))


def table(header: Sequence[str], rows: Iterable[Sequence[str]], *, escape: bool = True) -> str:
    """An HTML table; cells are escaped unless ``escape=False`` (for cells built from escaped parts)."""
    cell = _escape if escape else str
    head = "".join(f"<th style='{_CELL_STYLE}'>{_escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td style='{_CELL_STYLE}'>{cell(c)}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table style='{_TABLE_STYLE}'><tr>{head}</tr>{body}</table>"


def card(title: str, facts: Sequence[tuple[str, str]], *parts: str) -> str:
    """A titled block: ``facts`` (label, already escaped HTML) on one line each, then ``parts`` (HTML)."""
    lines = "".join(f"<div><b>{_escape(label)}:</b> {value}</div>" for label, value in facts)
    return f"<div class='theorykit-repr'><b>{_escape(title)}</b>{lines}{''.join(parts)}</div>"


def verdict(passed: bool) -> str:
    """``PASS`` or ``FAIL`` as coloured HTML."""
    return f"<span style='{_PASS_STYLE}'>PASS</span>" if passed else f"<span style='{_FAIL_STYLE}'>FAIL</span>"


def _state_table(names: Sequence[str], values: np.ndarray) -> str:
    return table(["state", "value"], [(n, format_number(v)) for n, v in zip(names, values)])


def _status_html(ok: bool, name: str, message: str) -> str:
    style = _PASS_STYLE if ok else _FAIL_STYLE
    return f"<span style='{style}'>{_escape(name)}</span> — {_escape(message)}"


# --------------------------------------------------------------------------------------------- systems
def system_latex(system) -> str:
    """The equations of an :class:`~theorykit.derive.ODESystem` as a displayed LaTeX block."""
    return "$$" + system.to_latex(environment="aligned") + "$$"


# --------------------------------------------------------------------------------------------- solve
def solution_html(sol) -> str:
    """Status, integration statistics and final state of a :class:`~theorykit.solve.Solution`."""
    t0 = float(sol.t[0]) if sol.t.size else float("nan")
    stats = ", ".join(f"{k} {v}" for k, v in sol.stats.items())
    facts = [("status", _status_html(sol.success, sol.status.name, sol.status.message)),
             ("method", _escape(sol.method)),
             ("time", f"{format_number(t0)} → {format_number(sol.t_final)} ({sol.t.shape[0]} saved points)"),
             ("steps", _escape(stats))]
    return card("Solution", facts, _state_table(sol.state_names, sol.y_final))


def ensemble_html(ens) -> str:
    """Status counts, integration statistics and final-state ranges of an
    :class:`~theorykit.solve.EnsembleSolution`."""
    counts = table(["status", "trajectories", "meaning"],
                   [(s.name, str(n), s.message) for s, n in ens.counts().items()])
    ok = ens.success
    final = ens.final[ok]
    rows = []
    for j, name in enumerate(ens.state_names):
        col = final[:, j] if final.size else np.full(1, np.nan)
        rows.append((name, format_number(np.min(col)), format_number(np.median(col)), format_number(np.max(col))))
    n_ok = int(np.sum(ok))
    facts = [("trajectories", f"{len(ens)} ({n_ok} reached t_final or a terminal event)"),
             ("method", _escape(ens.method)),
             ("output times", f"{format_number(ens.t[0])} → {format_number(ens.t[-1])} ({ens.t.shape[0]} points)"
              if ens.t.size else "none"),
             ("steps", f"{int(np.sum(ens.n_steps))} accepted, {int(np.sum(ens.n_rejected))} rejected in total")]
    return card("EnsembleSolution", facts, counts,
                "<div>final state over the successful trajectories:</div>",
                table(["state", "min", "median", "max"], rows))


# --------------------------------------------------------------------------------------------- analysis
def _names(obj, n: int) -> tuple[str, ...]:
    return tuple(obj.state_names) or tuple(f"y{i}" for i in range(n))


def fixed_point_html(fp) -> str:
    """Location, stability class and eigenvalues of a :class:`~theorykit.analysis.FixedPoint`."""
    facts = [("kind", _escape(fp.kind)), ("stable", "yes" if fp.stable else "no"),
             ("residual max |f(y)|", format_number(fp.residual)),
             ("eigenvalues", _escape(", ".join(format_number(e) for e in fp.eigenvalues)))]
    return card("FixedPoint", facts, _state_table(_names(fp, fp.y.size), fp.y))


def _stability_segments(param_values: np.ndarray, stable: np.ndarray) -> list[tuple[str, str, str, str]]:
    """Maximal runs of equal stability along a branch: (from, to, points, stability)."""
    rows = []
    start = 0
    for i in range(1, len(stable) + 1):
        if i == len(stable) or stable[i] != stable[start]:
            rows.append((format_number(param_values[start]), format_number(param_values[i - 1]),
                         str(i - start), "stable" if stable[start] else "unstable"))
            start = i
    return rows


def branch_html(br) -> str:
    """Parameter range, stability along the branch and special points of a :class:`~theorykit.analysis.Branch`."""
    names = _names(br, br.states.shape[1] if br.states.ndim == 2 else 0)
    n = len(br.param_values)
    rng = (f"{format_number(np.min(br.param_values))} … {format_number(np.max(br.param_values))}" if n else "empty")
    fixed = ", ".join(f"{k}={format_number(v)}" for k, v in br.params.items() if k != br.param)
    facts = [("parameter", f"{_escape(br.param)} in {rng} ({n} points)"),
             ("fixed parameters", _escape(fixed) or "none"), ("stopped", _escape(br.stop_reason))]
    specials = table([br.param, "kind", *names],
                     [(format_number(s.param_value), s.kind, *(format_number(v) for v in s.y))
                      for s in br.special_points]) if br.special_points else "<div>no special points</div>"
    return card("Branch", facts, "<div>stability along the branch:</div>",
                table([f"{br.param} from", "to", "points", "stability"],
                      _stability_segments(np.asarray(br.param_values), np.asarray(br.stable, dtype=bool))),
                "<div>special points:</div>", specials)


# --------------------------------------------------------------------------------------------- validate
def report_html(report) -> str:
    """The claim table of a :class:`~theorykit.validate.TheoryReport` with PASS/FAIL per claim."""
    n_pass = sum(c.passed for c in report.claims)
    rows = [(verdict(c.passed), f"{_escape(c.statement)} (<code>{_escape(c.name)}</code>)",
             _escape(format_number(c.measured)), _escape(format_number(c.predicted)), _escape(c.criterion()))
            for c in report.claims]
    failures = "".join(f"<div style='{_FAIL_STYLE}'>FAIL {_escape(c.describe_failure())}</div>"
                       for c in report.claims if not c.passed)
    notes = "".join(f"<div>{_escape(note)}</div>" for note in report.notes)
    facts = [("theory", f"<code>{_escape(report.theory)}</code>"),
             ("claims", f"{n_pass}/{len(report.claims)} pass")]
    return card(report.title, facts, table(["", "claim", "measured", "theory", "criterion"], rows, escape=False),
                failures, notes)
