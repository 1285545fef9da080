"""The analysis CLI commands on reference systems: files written, summaries printed, one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from theorykit.analysis import load_result
from theorykit.cli import main


def test_fixed_points_command(tmp_path, capsys):
    out = tmp_path / "fp"
    assert main(["fixed-points", "reference.double_well", "--out", str(out), "--symbolic"]) == 0
    text = capsys.readouterr().out
    assert "3 fixed point(s)" in text and "saddle" in text and "degree" in text
    meta = json.loads((out / "fixed_points.json").read_text())
    assert sorted(fp["kind"] for fp in meta["fixed_points"]) == ["saddle", "stable node", "stable node"]
    assert "provenance" in meta
    with np.load(out / "fixed_points.npz") as z:
        assert z["y"].shape == (3, 2) and z["stable"].sum() == 2
    assert (out / "phase_portrait.png").stat().st_size > 5000


def test_continue_command(tmp_path, capsys):
    out = tmp_path / "cont"
    assert main(["continue", "reference.hopf", "--out", str(out), "-p", "omega=2"]) == 0
    text = capsys.readouterr().out
    assert "hopf" in text
    br = load_result(out / "branch_0")
    (h,) = br.special("hopf")
    assert abs(h.param_value) < 1e-6
    assert br.params == {"omega": 2.0}
    assert (out / "bifurcation.png").exists()


def test_phase_diagram_command(tmp_path, capsys):
    out = tmp_path / "pd"
    assert main(["phase-diagram", "reference.eigenmode_cubic", "--out", str(out), "--nx", "12", "--ny", "8",
                 "--t-final", "100"]) == 0
    text = capsys.readouterr().out
    assert "collapse" in text
    pd = load_result(out / "phase_diagram")
    assert pd.labels.shape == (12, 8) and pd.axes == ("eta", "sigma2")
    assert (out / "phase_diagram.png").exists()


def test_basins_command(tmp_path, capsys):
    out = tmp_path / "b"
    assert main(["basins", "reference.double_well", "--out", str(out), "--n", "21", "--t-final", "30"]) == 0
    text = capsys.readouterr().out
    assert "2 stable fixed point(s)" in text
    bm = load_result(out / "basins")
    assert bm.labels.shape == (21, 21)
    assert (out / "basins.png").exists()
    # a one-state system: sampled initial conditions along the line
    assert main(["basins", "reference.pitchfork", "-p", "r=1", "--out", str(tmp_path / "b1"), "--n", "10"]) == 0
    bm = load_result(tmp_path / "b1" / "basins")
    assert bm.labels.shape == (100,)


@pytest.mark.parametrize("argv, message", [
    (["fixed-points", "reference.nope"], "unknown system"),
    (["fixed-points", "reference.saddle_node", "-p", "q=1"], "not parameters"),
    (["fixed-points", "reference.saddle_node", "--n-starts", "0"], "--n-starts"),
    (["continue", "reference.saddle_node", "--in", "q"], "--in"),
    (["continue", "reference.saddle_node", "--range", "1"], "--range"),
    (["continue", "reference.double_well"], "no parameters"),
    (["phase-diagram", "reference.saddle_node"], "two parameters"),
    (["phase-diagram", "reference.eigenmode_cubic", "--x", "eta", "--y", "eta"], "different"),
    (["phase-diagram", "reference.eigenmode_cubic", "--x-range", "1,0"], "--x-range"),
    (["phase-diagram", "reference.eigenmode_cubic", "--t-final", "-3"], "--t-final"),
    (["basins", "reference.double_well", "--x", "z"], "--x"),
])
def test_bad_arguments_print_one_line(tmp_path, capsys, argv, message):
    try:
        rc = main(argv + ["--out", str(tmp_path / "x")])
    except SystemExit as exc:  # rejected by the argument parser itself
        rc = exc.code
    assert rc in (1, 2) and not (tmp_path / "x").exists()
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
