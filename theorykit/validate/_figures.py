"""One figure style for every report figure."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Iterator

#: the report style: small legends and titles, 110 dpi PNGs
STYLE = {"savefig.dpi": 110, "legend.fontsize": 7, "axes.titlesize": 9, "axes.labelsize": 9,
         "xtick.labelsize": 8, "ytick.labelsize": 8}


@contextlib.contextmanager
def report_figure(path: str | Path, *, nrows: int = 1, ncols: int = 1, figsize: tuple[float, float] = (6.0, 3.6),
                  **subplots: Any) -> Iterator[tuple[Any, Any]]:
    """Draw a figure in the report style and save it to ``path`` (PNG) when the block ends.

    Yields ``(fig, axes)`` as ``Figure.subplots(nrows, ncols, **subplots)`` returns them. The figure is a
    bare :class:`matplotlib.figure.Figure` (no pyplot state, no GUI backend), laid out tightly and
    released after saving; nothing is written if the block raises.
    """
    import matplotlib
    from matplotlib.figure import Figure

    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=figsize)
        axes = fig.subplots(nrows, ncols, **subplots)
        yield fig, axes
        fig.tight_layout()
        fig.savefig(Path(path))
