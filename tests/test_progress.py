"""Progress bars: drawn with a count and an ETA when enabled, silent in CI / non-TTY output."""

import io

from theorykit.progress import Progress, progress_enabled, track


def test_enabled_bar_shows_count_percentage_and_eta():
    out = io.StringIO()
    with Progress(4, "sweep", enabled=True, stream=out, min_interval=0.0) as bar:
        for _ in range(4):
            bar.update()
    text = out.getvalue()
    assert "sweep [" in text and "4/4" in text and "100.0%" in text and "ETA" in text
    assert text.endswith("\n")


def test_silent_when_not_a_terminal_or_in_ci(monkeypatch):
    monkeypatch.delenv("THEORYKIT_PROGRESS", raising=False)
    monkeypatch.setenv("CI", "true")
    assert not progress_enabled(io.StringIO())
    monkeypatch.delenv("CI")
    assert not progress_enabled(io.StringIO())  # StringIO is not a TTY
    monkeypatch.setenv("THEORYKIT_PROGRESS", "1")
    assert progress_enabled(io.StringIO())
    out = io.StringIO()
    monkeypatch.setenv("THEORYKIT_PROGRESS", "0")
    assert list(track(range(3), "quiet", stream=out)) == [0, 1, 2]
    assert out.getvalue() == ""
