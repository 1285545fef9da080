"""The import layers in pyproject.toml ([tool.importlinter]) hold, and the check is able to fail: an inverted
import or SymPy in a numeric stage, planted in a temporary copy of the package, breaks a contract."""

import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = "from importlinter.cli import lint_imports_command; lint_imports_command()"


def lint(root: Path) -> subprocess.CompletedProcess:
    pytest.importorskip("importlinter")
    return subprocess.run([sys.executable, "-c", LINT, "--config", str(root / "pyproject.toml"), "--no-cache"],
                          cwd=root, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(root)})


def planted_copy(tmp_path: Path, module: str, line: str) -> Path:
    """A copy of the package and pyproject.toml with ``line`` added at the top of ``module``."""
    shutil.copytree(ROOT / "theorykit", tmp_path / "theorykit", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    path = tmp_path / (module.replace(".", "/") + ".py")
    path.write_text(line + "\n" + path.read_text())
    return tmp_path


def test_the_contracts_hold():
    proc = lint(ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "2 kept, 0 broken" in proc.stdout


def test_an_inverted_import_breaks_the_layers(tmp_path):
    proc = lint(planted_copy(tmp_path, "theorykit.solve._solution", "import theorykit.cli  # planted"))
    assert proc.returncode != 0
    assert "Stages import one way" in proc.stdout and "BROKEN" in proc.stdout
    assert "theorykit.solve._solution -> theorykit.cli" in proc.stdout


def test_sympy_in_a_numeric_stage_breaks_the_contract(tmp_path):
    proc = lint(planted_copy(tmp_path, "theorykit.simulate._run", "import sympy  # planted"))
    assert proc.returncode != 0
    assert "never import SymPy" in proc.stdout and "BROKEN" in proc.stdout
    assert "theorykit.simulate is not allowed to import sympy" in proc.stdout


def test_phase_diagram_workers_run_without_sympy(tmp_path):
    """A distributed ensemble chunk rebuilds the compiled system from its generated module, not from SymPy."""
    from theorykit.analysis._phase import _ensemble_chunk, _numeric_recipe
    from theorykit.compile import compile_system
    from theorykit.solve import solve_ensemble
    from theorykit.theories.reference import eigenmode_cubic

    csys = compile_system(eigenmode_cubic())
    y0s, params = np.array([[0.9, 0.2], [0.3, 0.8]]), np.tile([0.05, 0.5, 1.0, 0.6], (2, 1))
    task = {"recipe": _numeric_recipe(csys), "y0s": y0s, "params": params, "t_final": 50.0, "options": {}}
    (tmp_path / "task.pkl").write_bytes(pickle.dumps(task))
    code = ("import pickle, sys, numpy as np; from theorykit.analysis._phase import _ensemble_chunk; "
            f"out = _ensemble_chunk(pickle.load(open({str(tmp_path / 'task.pkl')!r}, 'rb')), 0); "
            "assert 'sympy' not in sys.modules, 'sympy imported'; np.save(sys.argv[1], out['final'])")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "final.npy")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    expected = solve_ensemble(csys, y0s, (0.0, 50.0), params, progress=False).final
    assert np.array_equal(np.load(tmp_path / "final.npy"), expected)
    assert np.array_equal(_ensemble_chunk(task, 0)["final"], expected)
