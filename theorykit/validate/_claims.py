"""Named, checkable claims: a measured figure next to the theory's figure, a tolerance and a verdict."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

Comparison = Literal["abs", "rel", "le", "ge", "true"]


@dataclass(frozen=True)
class Claim:
    """One checked statement of a theory.

    Parameters
    ----------
    name : str
        Short identifier, e.g. ``"ntk_change_slope"``.
    statement : str
        The claim in words, as the report prints it.
    measured : float
        The figure measured numerically (simulation, integration, ...).
    predicted : float or None
        The theory's figure (``None`` for pure inequalities / boolean claims).
    tolerance : float
        Allowed deviation; its meaning depends on ``kind``.
    kind : {"abs", "rel", "le", "ge", "true"}
        ``abs``: ``|measured - predicted| <= tolerance``; ``rel``: the same relative to ``|predicted|``;
        ``le`` / ``ge``: ``measured <= predicted + tolerance`` / ``measured >= predicted - tolerance``;
        ``true``: ``measured`` is a truth value (1/0) that must be 1.
    details : dict
        Extra numbers kept in ``results.json`` (seeds, per-point values, confidence intervals).
    figures : tuple of str
        File names (relative to the report folder) of figures supporting the claim.
    """

    name: str
    statement: str
    measured: float
    predicted: float | None
    tolerance: float
    kind: Comparison = "abs"
    details: dict[str, Any] = field(default_factory=dict)
    figures: tuple[str, ...] = ()

    @property
    def deviation(self) -> float:
        """How far ``measured`` is from ``predicted`` in the claim's own sense (positive = worse)."""
        m = float(self.measured)
        p = None if self.predicted is None else float(self.predicted)
        if self.kind == "true":
            return 0.0 if m >= 0.5 else 1.0
        assert p is not None, f"claim {self.name!r} of kind {self.kind!r} needs a predicted value"
        if self.kind == "abs":
            return abs(m - p)
        if self.kind == "rel":
            return abs(m - p) / max(abs(p), 1e-300)
        if self.kind == "le":
            return m - p
        if self.kind == "ge":
            return p - m
        raise ValueError(f"unknown claim kind {self.kind!r}")

    @property
    def margin(self) -> float | None:
        """How far inside its tolerance the claim lies (``tolerance - deviation``; negative: it fails by that
        much), in the units of the deviation. ``None`` for a ``true`` claim."""
        return None if self.kind == "true" else float(self.tolerance - self.deviation)

    @property
    def bound(self) -> float | None:
        """The bound of an inequality: ``predicted + tolerance`` (``le``) or ``predicted - tolerance`` (``ge``)."""
        if self.kind not in ("le", "ge") or self.predicted is None:
            return None
        return float(self.predicted) + (self.tolerance if self.kind == "le" else -self.tolerance)

    @property
    def bound_over_measured(self) -> float | None:
        """How loose an inequality between positive numbers is: the bound over the measured value (``le``) or
        the measured value over the bound (``ge``); ``inf`` for a measured zero under a positive bound.
        ``None`` where that ratio says nothing (other kinds, or a sign, slope or difference claim whose
        bound or measured value is not positive). A claim of this kind with a ratio above ~100 cannot fail in
        practice unless its bound is a rounding tolerance on an exact identity."""
        bound, m = self.bound, float(self.measured)
        if bound is None or not math.isfinite(m) or bound <= 0.0 or m < 0.0 or (self.kind == "ge" and m == 0.0):
            return None
        if self.kind == "le":
            return math.inf if m == 0.0 else bound / m
        return m / bound

    @property
    def passed(self) -> bool:
        if not math.isfinite(float(self.measured)):
            return False
        if self.kind == "true":
            return self.deviation == 0.0
        return self.deviation <= self.tolerance

    def describe_failure(self) -> str:
        """One line saying by how much the claim missed its tolerance."""
        return (f"{self.name}: measured {self.measured:.6g} vs predicted {self.predicted} "
                f"({self.kind}); deviation {self.deviation:.3g} exceeds tolerance {self.tolerance:.3g}")

    def criterion(self) -> str:
        """The pass criterion in words, e.g. ``|m - p| <= 0.05``."""
        return {
            "abs": f"|measured - predicted| <= {self.tolerance:g}",
            "rel": f"|measured - predicted| / |predicted| <= {self.tolerance:g}",
            "le": f"measured <= predicted + {self.tolerance:g}",
            "ge": f"measured >= predicted - {self.tolerance:g}",
            "true": "holds",
        }[self.kind]


@dataclass
class TheoryReport:
    """What one theory's ``reproduce`` returns: its claims, figures and every number behind them.

    ``figures`` maps a file name (inside the theory's output folder) to a caption; ``numbers`` holds
    arrays/scalars worth keeping in ``results.json``; ``parameters`` the settings and seeds used.
    """

    theory: str
    title: str
    claims: list[Claim] = field(default_factory=list)
    figures: dict[str, str] = field(default_factory=dict)
    numbers: dict[str, Any] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.claims)

    def _repr_html_(self) -> str:
        """The claim table with PASS/FAIL per claim as HTML (Jupyter's rich display)."""
        from .._display import report_html

        return report_html(self)
