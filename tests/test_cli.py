"""The command line: useful help, one-line errors, the solve/derive/systems commands."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

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
                 ["solve", "no_such_system", "--out", str(tmp_path)]):
        proc = run(*argv)
        assert proc.returncode == 1, argv
        assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr


def test_derive_prints_latex(capsys):
    assert main(["derive", "reference.pitchfork", "--format", "latex"]) == 0
    assert r"\dot{x} &= r x - x^{3}" in capsys.readouterr().out


@pytest.mark.parametrize("script", ["barlow_ntk.py", "contrastive_highdim.py", "imbalanced_pruning.py",
                                    "noncontrastive.py"])
def test_validation_scripts_share_the_experiment_options(script):
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, str(root / "validation" / script), "--help"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-500:]
    for opt in ("--quick", "--full", "--seed", "--out", "--processes", "--scheduler", "--store"):
        assert opt in proc.stdout, opt


def test_experiment_arguments_parse_and_pass_through(tmp_path):
    from theorykit.cli import add_sweep_arguments, experiment_parser, sweep_options

    ap = add_sweep_arguments(experiment_parser("x", name="x", quick_help="q", full_help="f"))
    assert sweep_options(ap.parse_args([])) == {"processes": 1, "scheduler": None, "store": None}
    args = ap.parse_args(["--processes", "3", "--scheduler", "tcp://127.0.0.1:8786", "--store", str(tmp_path)])
    assert sweep_options(args) == {"processes": 3, "scheduler": "tcp://127.0.0.1:8786", "store": tmp_path}
    for bad in (["--processes", "0"], ["--seed", "-1"]):
        with pytest.raises(SystemExit):
            ap.parse_args(bad)


def test_top_level_names_are_lazy_and_complete():
    code = ("import sys, theorykit; assert 'sympy' not in sys.modules and 'numba' not in sys.modules;"
            "[getattr(theorykit, n) for n in theorykit.__all__]; print('ok')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-800:]


@pytest.mark.parametrize("argv, flag", [
    (["reproduce", "--tolerance", "nonsense=1"], "--tolerance nonsense"),
    (["reproduce", "--tolerance", "reference.nonsense=1"], "--tolerance reference.nonsense"),
    (["reproduce", "--tolerance", "reference.stable_fixed_point=-1"], "--tolerance reference.stable_fixed_point"),
    (["reproduce", "--only", "noncontrastive", "--tolerance", "stable_fixed_point=1"], "--tolerance"),
    (["reproduce", "--tolerance", "stable_fixed_point=nan"], "--tolerance"),
    (["reproduce", "--seed", "-1"], "--seed"),
    (["reproduce", "--processes", "0"], "--processes"),
    (["reproduce", "--only", "bogus"], "--only"),
    (["reproduce", "--out", "{file}"], "--out"),
    (["reproduce", "--out", "{file}/sub"], "--out"),
    (["reproduce", "--store", "{file}"], "--store"),
    (["reproduce", "--out", "/proc/no/such"], "--out"),
    (["seed-study", "--seeds=-3:2"], "--seeds"),
    (["seed-study", "--seeds", "1,1"], "--seeds"),
    (["seed-study", "--tolerance", "nonsense=1"], "--tolerance"),
    (["seed-study", "--out", "{file}"], "--out"),
    (["solve", "reference.hopf", "--points", "1"], "--points"),
    (["solve", "reference.hopf", "--t-final", "-1"], "--t-final"),
    (["solve", "reference.hopf", "--y0", "q=1"], "--y0"),
    (["solve", "reference.hopf", "--out", "{file}"], "--out"),
    (["fixed-points", "reference.hopf", "--seed", "-2"], "--seed"),
    (["continue", "reference.hopf", "--out", "{file}"], "--out"),
])
def test_bad_values_are_rejected_before_any_work_naming_the_flag(argv, flag, tmp_path, monkeypatch, capsys):
    afile = tmp_path / "a_file"
    afile.write_text("")
    monkeypatch.chdir(tmp_path)
    try:
        rc = main([a.replace("{file}", str(afile)) for a in argv])
    except SystemExit as exc:  # rejected by the argument parser itself
        rc = exc.code
    err = capsys.readouterr().err
    assert rc in (1, 2) and err.count("\n") == 1 and flag in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"] and afile.read_text() == ""  # nothing written


def test_tolerance_help_names_a_claim_that_exists(capsys):
    from theorykit.cli._reproduce import TOLERANCE_EXAMPLE
    from theorykit.theories import get_theory

    theory, _, claim = TOLERANCE_EXAMPLE.partition("=")[0].partition(".")
    assert claim in get_theory(theory).claim_names
    with pytest.raises(SystemExit):
        main(["reproduce", "--help"])
    assert TOLERANCE_EXAMPLE in "".join(capsys.readouterr().out.split())  # the help text is wrapped
