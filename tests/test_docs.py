"""The documentation site builds with warnings as errors, and a broken cross-reference breaks the build."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from theorykit.cli import build_parser

pytest.importorskip("sphinx")
pytest.importorskip("myst_nb")
pytest.importorskip("numpydoc")

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def copy_settings(source: Path) -> None:
    """The site's configuration (conf.py and its local extensions) into the folder ``source``."""
    source.mkdir()
    shutil.copy(DOCS / "conf.py", source / "conf.py")
    shutil.copytree(DOCS / "_ext", source / "_ext")


def sphinx_build(source: Path, out: Path, **env: str) -> subprocess.CompletedProcess:
    """The README's build command (strict: -W -n), with the tutorials not executed (tests run them)."""
    environ = {**os.environ, "THEORYKIT_DOCS_EXECUTE": "off",
               "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])), **env}
    return subprocess.run([sys.executable, "-m", "sphinx", "-W", "-n", "--keep-going", "-q", "-b", "html",
                           str(source), str(out)], env=environ, capture_output=True, text=True, timeout=900)


@pytest.mark.slow  # about 20-40 s on 2 cores; the broken-reference test below checks the same settings fast
def test_docs_build_strictly_with_api_reference_and_tutorials(tmp_path):
    run = sphinx_build(DOCS, tmp_path / "html")
    assert run.returncode == 0, run.stderr[-5000:]
    html = tmp_path / "html"
    # the API reference comes from the docstrings: every stage's public names have an anchor
    anchors = {
        "solve": ("theorykit.solve.solve", "theorykit.solve.Solution", "theorykit.solve.Status"),
        "analysis": ("theorykit.analysis.phase_diagram", "theorykit.analysis.PhaseDiagram.to_xarray",
                     "theorykit.analysis.continue_branch", "theorykit.analysis.plot_bifurcation"),
        "simulate": ("theorykit.simulate.run_particles", "theorykit.simulate.ParticleRun",
                     "theorykit.simulate.NoiseStream", "theorykit.simulate.CHUNK_BYTES"),
        "validate": ("theorykit.validate.Study", "theorykit.validate.Study.claim", "theorykit.validate.compare",
                     "theorykit.validate.Comparison"),
        "theories": ("theorykit.theories.Theory", "theorykit.theories.register_theory",
                     "theorykit.theories.BuiltinSystem"),
        "report": ("theorykit.report.reproduce", "theorykit.seed_study.seed_study"),
    }
    for page, names in anchors.items():
        text = (html / "api" / f"{page}.html").read_text()
        assert [name for name in names if f'id="{name}"' not in text] == [], page
    # a constant re-exported by a stage shows its own comment, not the docstring of int
    assert "pre-drawn noise" in (html / "api" / "simulate.html").read_text()
    # the command-line page is the parser's help: a section per subcommand with every one of its options
    cli_page = (html / "cli.html").read_text()
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert len(commands) >= 9
    for name, sub in commands.items():
        assert f'id="theorykit-{name}"' in cli_page, name
        flags = [flag for action in sub._actions for flag in action.option_strings if flag.startswith("--")]
        assert [flag for flag in flags if flag not in cli_page] == [], name
    # the theory file template (theorykit/theories/README.md) is a page of the site
    assert "Changing a theory" in (html / "theory_template.html").read_text()
    # and so is the seed study's pass-rate table
    assert "claims pass at every seed" in (html / "pass_rates.html").read_text()
    # the tutorials are pages of the site, with their code
    for tutorial in sorted((DOCS / "tutorials").glob("*.ipynb")):
        page = (html / "tutorials" / f"{tutorial.stem}.html").read_text()
        assert "import" in page and "theorykit" in page


def test_a_broken_cross_reference_fails_the_build(tmp_path):
    """A reference to a name that does not exist, in a page or in a docstring, is an error."""
    source = tmp_path / "docs"
    copy_settings(source)
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

