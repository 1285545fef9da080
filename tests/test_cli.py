"""The command line: useful help, one-line errors, the solve/derive/systems commands."""

import json
import subprocess
import sys

import numpy as np

from theorykit.cli import main


def run(*argv):
    return subprocess.run([sys.executable, "-m", "theorykit.cli", *argv], capture_output=True, text=True)


def test_help_lists_commands():
    proc = run("--help")
    assert proc.returncode == 0
    for cmd in ("reproduce", "solve", "systems", "derive"):
        assert cmd in proc.stdout


def test_solve_hopf_reaches_limit_cycle(tmp_path, capsys):
    assert main(["solve", "reference.hopf", "-p", "mu=0.3", "--t-final", "80", "--out", str(tmp_path)]) == 0
    data = np.load(tmp_path / "trajectory.npz")
    radius = np.hypot(*data["y"][-1])
    assert abs(radius - np.sqrt(0.3)) < 1e-4  # limit cycle radius sqrt(mu) of the normal form
    meta = json.loads((tmp_path / "trajectory.json").read_text())
    assert meta["status"] == "SUCCESS" and meta["params"]["mu"] == 0.3 and "provenance" in meta
    assert (tmp_path / "trajectory.png").exists()


def test_library_errors_are_one_line(tmp_path):
    for argv in (["solve", "reference.hopf", "-p", "bogus=1", "--out", str(tmp_path)],
                 ["solve", "reference.hopf", "-p", "mu", "--out", str(tmp_path)],
                 ["solve", "no_such_system", "--out", str(tmp_path)],
                 ["solve", "reference.hopf", "--t-final", "-1", "--out", str(tmp_path)]):
        proc = run(*argv)
        assert proc.returncode == 1, argv
        assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr


def test_derive_prints_latex(capsys):
    assert main(["derive", "reference.pitchfork", "--format", "latex"]) == 0
    assert r"\dot{x} &= r x - x^{3}" in capsys.readouterr().out


def test_validation_scripts_import_and_show_help():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    for script in sorted((root / "validation").glob("*.py")):
        proc = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True)
        assert proc.returncode == 0, (script.name, proc.stderr[-500:])
        assert "--quick" in proc.stdout and "--full" in proc.stdout and "--seed" in proc.stdout


def test_top_level_names_are_lazy_and_complete():
    code = ("import sys, theorykit; assert 'sympy' not in sys.modules and 'numba' not in sys.modules;"
            "[getattr(theorykit, n) for n in theorykit.__all__]; print('ok')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-800:]
