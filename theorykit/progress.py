"""A small dependency-free progress bar: drawn on a terminal with rate and ETA, silent otherwise.

It is quiet when stderr is not a TTY, when ``CI`` is set, or when ``THEORYKIT_PROGRESS=0``; setting
``THEORYKIT_PROGRESS=1`` forces it on.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")


def progress_enabled(stream=None) -> bool:
    """Whether a progress bar should be drawn on ``stream`` (default ``sys.stderr``)."""
    flag = os.environ.get("THEORYKIT_PROGRESS")
    if flag is not None:
        return flag not in ("0", "", "false", "no")
    if os.environ.get("CI"):
        return False
    stream = stream or sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)())


def _fmt_seconds(s: float) -> str:
    if not (s == s) or s == float("inf"):
        return "?"
    s = int(round(s))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h:d}:{m:02d}:{sec:02d}" if h else f"{m:02d}:{sec:02d}"


class Progress:
    """Progress over ``total`` units of work: ``update(n)`` advances it, ``close()`` ends the line.

    Use as a context manager. Redraws at most every ``min_interval`` seconds.
    """

    def __init__(self, total: int, desc: str = "", *, enabled: bool | None = None, stream=None,
                 min_interval: float = 0.2, width: int = 28):
        self.total = max(int(total), 0)
        self.desc = desc
        self.stream = stream or sys.stderr
        self.enabled = progress_enabled(self.stream) if enabled is None else enabled
        self.min_interval = min_interval
        self.width = width
        self.count = 0
        self._start = time.perf_counter()
        self._last_draw = 0.0

    def update(self, n: int = 1) -> None:
        self.count += n
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self._last_draw >= self.min_interval or self.count >= self.total:
            self._draw(now)

    def _draw(self, now: float) -> None:
        self._last_draw = now
        elapsed = now - self._start
        frac = self.count / self.total if self.total else 1.0
        filled = int(self.width * min(frac, 1.0))
        rate = self.count / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.count) / rate if rate > 0 else float("inf")
        bar = "#" * filled + "-" * (self.width - filled)
        line = (f"\r{self.desc} [{bar}] {self.count}/{self.total} "
                f"{frac * 100:5.1f}% {_fmt_seconds(elapsed)} elapsed, ETA {_fmt_seconds(eta)}")
        self.stream.write(line)
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self._draw(time.perf_counter())
            self.stream.write("\n")
            self.stream.flush()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def track(items: Iterable[T], desc: str = "", total: int | None = None, **kwargs) -> Iterator[T]:
    """Iterate over ``items`` while showing a :class:`Progress` bar."""
    if total is None:
        try:
            total = len(items)  # type: ignore[arg-type]
        except TypeError:
            total = 0
    with Progress(total, desc, **kwargs) as bar:
        for item in items:
            yield item
            bar.update(1)
