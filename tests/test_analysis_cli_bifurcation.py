"""The ``continue`` command's bifurcation options: --switch, --from-hopf and --two-param."""

from __future__ import annotations

import numpy as np
import pytest

from theorykit.analysis import load_result
from theorykit.cli import main


def test_continue_switch_onto_the_pitchfork_branch(tmp_path, capsys):
    out = tmp_path / "pf"
    assert main(["continue", "reference.pitchfork", "--switch", "--out", str(out)]) == 0
    assert "switched at the branch point r = 0" in capsys.readouterr().out
    sym = load_result(out / "branch_1")
    np.testing.assert_allclose(sym.param_values, sym.states[:, 0] ** 2, atol=1e-9)
    assert (out / "bifurcation.png").exists()


def test_continue_from_hopf_and_two_parameters(tmp_path, capsys):
    out = tmp_path / "hopf"
    assert main(["continue", "reference.hopf", "-p", "omega=2", "--from-hopf", "--two-param", "mu,omega",
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "supercritical" in text and "hopf curve in (mu, omega)" in text
    cycles = load_result(out / "cycles_0")
    np.testing.assert_allclose(cycles.periods, np.pi, atol=1e-4)  # 2 pi / omega
    curve = load_result(out / "hopf_curve_0")
    np.testing.assert_allclose(curve.param_of("mu"), 0.0, atol=1e-9)
    np.testing.assert_allclose(curve.coefficients["omega2"], curve.param_of("omega") ** 2, atol=1e-9)
    assert (out / "curves.png").exists() and (out / "bifurcation.png").exists()


def test_continue_two_parameter_fold_curve(tmp_path, capsys):
    out = tmp_path / "fold"
    assert main(["continue", "reference.eigenmode_cubic", "--two-param", "eta,sigma2", "--out", str(out)]) == 0
    curve = load_result(out / "fold_curve_0")
    eta, sigma2 = curve.param_of("eta"), curve.param_of("sigma2")
    np.testing.assert_allclose(4 * eta * (1 + sigma2), 1.0, atol=1e-6)  # tau = 1


@pytest.mark.parametrize("argv, message", [
    (["--two-param", "eta"], "two different parameters"),
    (["--two-param", "eta,nope"], "not parameters"),
    (["--two-param", "eta,sigma2", "--in", "sigma2"], "continuation parameter"),
    (["--two-param", "eta,tau", "-p", "tau=1"], "--range2"),
])
def test_continue_bifurcation_option_errors(tmp_path, capsys, argv, message):
    assert main(["continue", "reference.eigenmode_cubic", "--out", str(tmp_path / "e"), *argv]) == 1
    assert message in capsys.readouterr().err
