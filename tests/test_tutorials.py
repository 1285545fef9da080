"""The tutorials in docs/tutorials execute from a clean kernel, and are stored without outputs."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = sorted((ROOT / "docs" / "tutorials").glob("*.ipynb"))
#: tutorials that run a built-in theory's whole reproduce (about half a minute each on 2 cores)
SLOW = {"noncontrastive_collapse.ipynb"}
#: figures each tutorial draws (at least)
FIGURES = {"quickstart.ipynb": 3, "noncontrastive_collapse.ipynb": 2, "own_theory.ipynb": 2}
#: the tutorial that writes a theory from scratch, and the most lines of code it may take
OWN_THEORY, MAX_LINES = ROOT / "docs" / "tutorials" / "own_theory.ipynb", 150

nbformat = pytest.importorskip("nbformat")


def test_there_are_tutorials():
    assert {p.name for p in TUTORIALS} == set(FIGURES)


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_is_stored_without_outputs(path):
    """Outputs belong in the rendered documentation, not in the repository (clean diffs)."""
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: clear the outputs"


@pytest.mark.parametrize("path", [pytest.param(p, id=p.stem, marks=[pytest.mark.slow] if p.name in SLOW else [])
                                  for p in TUTORIALS])
def test_tutorial_executes(path, tmp_path, monkeypatch):
    nbclient = pytest.importorskip("nbclient")
    # the kernel imports this checkout's theorykit, and draws figures inline as in Jupyter
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    monkeypatch.delenv("MPLBACKEND", raising=False)
    nb = nbformat.read(path, as_version=4)
    # raises CellExecutionError, naming the cell, if any cell fails
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    figures = sum("image/png" in o.get("data", {}) for o in outputs)
    assert figures >= FIGURES[path.name], f"{path.name} drew {figures} figures"
    assert not [o for o in outputs if o.output_type == "error"]


def test_own_theory_takes_the_lines_it_says_and_well_under_the_limit():
    """The line count stated in the last cell is the notebook's (non-blank lines of code)."""
    nb = nbformat.read(OWN_THEORY, as_version=4)
    lines = sum(1 for cell in nb.cells if cell.cell_type == "code" for line in cell.source.splitlines() if line.strip())
    stated = re.search(r"The whole notebook is (\d+) lines of code", nb.cells[-1].source)
    assert stated and int(stated.group(1)) == lines
    assert lines < MAX_LINES
