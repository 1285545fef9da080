"""The documentation site builds with warnings as errors, and a broken cross-reference breaks the build."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sphinx")
pytest.importorskip("myst_nb")
pytest.importorskip("numpydoc")

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def sphinx_build(source: Path, out: Path, **env: str) -> subprocess.CompletedProcess:
    """The README's build command (strict: -W -n), with the tutorials not executed (tests run them)."""
    environ = {**os.environ, "THEORYKIT_DOCS_EXECUTE": "off",
               "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])), **env}
    return subprocess.run([sys.executable, "-m", "sphinx", "-W", "-n", "--keep-going", "-q", "-b", "html",
                           str(source), str(out)], env=environ, capture_output=True, text=True, timeout=900)


@pytest.mark.slow  # about 15-30 s on 2 cores; the broken-reference test below checks the same settings fast
def test_docs_build_strictly_with_api_reference_and_tutorials(tmp_path):
    run = sphinx_build(DOCS, tmp_path / "html")
    assert run.returncode == 0, run.stderr[-5000:]
    html = tmp_path / "html"
    # the API reference comes from the docstrings: every stage's public names have an anchor
    solve_page = (html / "api" / "solve.html").read_text()
    for name in ("theorykit.solve.solve", "theorykit.solve.Solution", "theorykit.solve.Status"):
        assert f'id="{name}"' in solve_page
    analysis_page = (html / "api" / "analysis.html").read_text()
    for name in ("theorykit.analysis.phase_diagram", "theorykit.analysis.PhaseDiagram.to_xarray",
                 "theorykit.analysis.continue_branch", "theorykit.analysis.plot_bifurcation"):
        assert f'id="{name}"' in analysis_page
    # the tutorials are pages of the site, with their code
    for tutorial in sorted((DOCS / "tutorials").glob("*.ipynb")):
        page = (html / "tutorials" / f"{tutorial.stem}.html").read_text()
        assert "import" in page and "theorykit" in page


def test_a_broken_cross_reference_fails_the_build(tmp_path):
    """A reference to a name that does not exist, in a page or in a docstring, is an error."""
    source = tmp_path / "docs"
    source.mkdir()
    shutil.copy(DOCS / "conf.py", source / "conf.py")
    (tmp_path / "mod").mkdir()
    (tmp_path / "mod" / "refs_in_docstrings.py").write_text(
        '"""A module whose docstring points at :class:`theorykit.solve.NoSuchSolution`."""\n')
    (source / "index.rst").write_text(
        "Broken\n======\n\nSee :func:`theorykit.analysis.no_such_function`.\n\n"
        ".. automodule:: refs_in_docstrings\n")
    run = sphinx_build(source, tmp_path / "html",
                       PYTHONPATH=os.pathsep.join([str(ROOT), str(tmp_path / "mod")]))
    assert run.returncode != 0
    missing = set(re.findall(r"reference target not found: (\S+)", run.stderr))
    assert missing == {"theorykit.analysis.no_such_function", "theorykit.solve.NoSuchSolution"}, run.stderr
