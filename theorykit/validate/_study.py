"""``Study``: the builder every theory's ``reproduce`` fills — timed sections, claims, figures, notes,
numbers, sweeps — and that turns into the :class:`TheoryReport`."""

from __future__ import annotations

import contextlib
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Collection, Iterator, Mapping, Sequence

from ..errors import InvalidParameterError
from ..sweep import PointFunction, SweepOptions, SweepResult
from ._claims import Claim, TheoryReport
from ._figures import report_figure


def crash_claim(name: str, what: str, exc: BaseException) -> Claim:
    """A failed claim recording an exception (its message and traceback in ``details``)."""
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return Claim(name, f"{what} runs to the end", 0.0, None, 0.0, kind="true",
                 details={"error": f"{type(exc).__name__}: {exc}", "traceback": tb})


class Study:
    """One theory's reproduction in progress.

    A theory's ``reproduce(study)`` runs its experiments in timed :meth:`section` blocks, states
    :meth:`claim` s, draws :meth:`figure` s, adds :meth:`note` s and :meth:`record` s numbers, and runs its
    sweeps through :meth:`sweep` (which applies the user's sweep options). A section that raises becomes a
    failed claim ``"<section>_runs"`` with the error, and the next section still runs. :meth:`report`
    returns the :class:`TheoryReport`.

    Parameters
    ----------
    theory : str
        The theory's key (claims are reported as ``theory.claim``).
    title : str
        The report heading.
    outdir : path
        Folder for the figures (created).
    quick : bool
        Small default settings (``False``: paper scale).
    seed : int
        Base random seed (non-negative).
    sweep_options : SweepOptions, optional
        Where the sweeps run (default: inline, no store).
    claim_names : collection of str, optional
        The claims the theory declares; a claim outside them is an error, so the declared list (used to
        check ``--tolerance`` names before running) stays true.
    """

    def __init__(self, theory: str, title: str, outdir: str | Path, *, quick: bool = True, seed: int = 0,
                 sweep_options: SweepOptions | None = None, claim_names: Collection[str] | None = None):
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise InvalidParameterError(f"seed must be a non-negative integer, got {seed!r}")
        self.theory = theory
        self.title = title
        self.outdir = Path(outdir)
        self.quick = bool(quick)
        self.seed = seed
        self.sweep_options = sweep_options or SweepOptions()
        self.claim_names = None if claim_names is None else frozenset(claim_names)
        self.outdir.mkdir(parents=True, exist_ok=True)
        self._report = TheoryReport(theory=theory, title=title)
        self._swept = False
        self._start = time.perf_counter()

    # ------------------------------------------------------------------ building blocks
    @contextlib.contextmanager
    def section(self, name: str) -> Iterator[None]:
        """Time a block as ``timings[name]``; an exception in it becomes the failed claim ``<name>_runs``."""
        start = time.perf_counter()
        try:
            yield
        except Exception as exc:  # reported as a failed claim; the next section still runs
            self._report.claims.append(crash_claim(f"{name}_runs", f"section {name!r}", exc))
            self._report.notes.append(f"section {name!r} crashed: {type(exc).__name__}: {exc}")
        finally:
            self._report.timings[name] = time.perf_counter() - start

    def claim(self, name: str, statement: str, measured: Any, predicted: Any, tolerance: float,
              kind: str = "abs", *, details: Mapping[str, Any] | None = None,
              figures: Sequence[str] = ()) -> Claim:
        """State a claim (see :class:`Claim` for ``kind``) and return it."""
        if self.claim_names is not None and name not in self.claim_names:
            raise InvalidParameterError(f"claim {name!r} is not among the claims {self.theory} declares "
                                        f"({sorted(self.claim_names)})")
        if any(c.name == name for c in self._report.claims):
            raise InvalidParameterError(f"claim {name!r} was stated twice")
        c = Claim(name, statement, measured, predicted, tolerance, kind,  # type: ignore[arg-type]
                  dict(details or {}), tuple(figures))
        self._report.claims.append(c)
        return c

    @contextlib.contextmanager
    def figure(self, name: str, caption: str, **layout: Any) -> Iterator[tuple[Any, Any]]:
        """Draw figure ``name`` (a PNG file name) in the report style; yields ``(fig, axes)``.

        ``layout`` goes to :func:`report_figure` (``nrows``, ``ncols``, ``figsize``, ``sharex``, ...).
        """
        with report_figure(self.outdir / name, **layout) as drawn:
            yield drawn
        self._report.figures[name] = caption

    def note(self, *lines: str) -> None:
        """Add lines to the report's notes."""
        self._report.notes.extend(lines)

    def record(self, **numbers: Any) -> None:
        """Keep numbers (scalars, arrays, dicts) in ``results.json``."""
        self._report.numbers.update(numbers)

    def parameters(self, **values: Any) -> None:
        """Record the settings the study used."""
        self._report.parameters.update(values)

    def sweep(self, fn: PointFunction, points: Sequence[Mapping[str, Any]], *, seed: Any,
              desc: str = "sweep") -> SweepResult:
        """:func:`theorykit.sweep.sweep` with the study's :class:`~theorykit.sweep.SweepOptions`."""
        self._swept = True
        return self.sweep_options.sweep(fn, points, seed=seed, desc=desc)

    # ------------------------------------------------------------------ result
    def absorb(self, report: TheoryReport) -> None:
        """Take over the contents of a report built elsewhere (claims, figures, numbers, notes, timings)."""
        self._report.claims.extend(report.claims)
        self._report.figures.update(report.figures)
        self._report.numbers.update(report.numbers)
        self._report.parameters.update(report.parameters)
        self._report.timings.update(report.timings)
        self._report.notes.extend(report.notes)
        self._swept = True

    def run(self, reproduce: Callable[["Study"], Any]) -> TheoryReport:
        """Run ``reproduce(self)``; a crash outside any section becomes the failed claim ``runs``."""
        try:
            reproduce(self)
        except Exception as exc:  # reported as a failed claim; the other theories still run
            self._report.claims.append(crash_claim("runs", "the theory's reproduction", exc))
            self._report.notes.append(f"crashed: {type(exc).__name__}: {exc}")
        return self.report()

    def report(self) -> TheoryReport:
        """The :class:`TheoryReport` so far (with ``timings["total_s"]``)."""
        self._report.timings["total_s"] = time.perf_counter() - self._start
        unused = f"store {self.sweep_options.store}: this theory runs no sweeps, so nothing was stored there"
        if self.sweep_options.store is not None and not self._swept and unused not in self._report.notes:
            self._report.notes.append(unused)
        return self._report
