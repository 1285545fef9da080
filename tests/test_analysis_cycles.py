"""Limit cycles continued from Hopf points by collocation, against closed forms."""

from __future__ import annotations

import numpy as np
import pytest

from theorykit.analysis import CycleBranch, continue_branch, continue_cycles, hopf_normal_form, load_result
from theorykit.compile import compile_system
from theorykit.derive import make_system
from theorykit.errors import InvalidParameterError
from theorykit.theories import reference as R


@pytest.fixture(scope="module")
def stuart_landau():
    return compile_system(R.hopf())  # x' = mu x - omega y - x r^2, y' = omega x + mu y - y r^2


@pytest.fixture(scope="module")
def brusselator():
    return compile_system(make_system(["x", "y"], ["a - (b + 1)*x + x**2*y", "b*x - x**2*y"], ["a", "b"],
                                      name="brusselator"))


def test_stuart_landau_radius_and_period(stuart_landau):
    omega = 1.5
    br = continue_branch(stuart_landau, [0.0, 0.0], {"mu": -0.5, "omega": omega}, "mu", (-0.5, 1.0))
    cb = continue_cycles(stuart_landau, br, param="mu", bounds=(-1.0, 1.0), ntst=20)
    mu, T = cb.param_values, cb.periods
    radius = np.hypot(cb.profiles[:, :, 0], cb.profiles[:, :, 1])
    np.testing.assert_allclose(radius, np.sqrt(mu)[:, None] * np.ones_like(radius), atol=1e-4)
    np.testing.assert_allclose(T, 2 * np.pi / omega, atol=1e-4)
    assert mu[0] == pytest.approx(0.0, abs=1e-9) and mu[-1] == pytest.approx(1.0) and cb.stop_reason == "bounds"
    # Floquet multipliers: the trivial 1 and exp(-2 mu T) (radial contraction at rate 2 mu)
    np.testing.assert_allclose(np.sort(np.abs(cb.multipliers[1:]), axis=1),
                               np.column_stack([np.exp(-2 * mu[1:] * T[1:]), np.ones(len(cb) - 1)]), atol=1e-4)
    assert np.all(cb.stable[1:]) and np.max(cb.trivial_error) < 1e-6 and not cb.special_points


def test_brusselator_cycles_from_the_hopf_point(brusselator):
    a = 1.5
    br = continue_branch(brusselator, [a, 1.0 / a], {"a": a, "b": 1.0}, "b", (0.5, 5.0))
    (h,) = br.special("hopf")
    cb = continue_cycles(brusselator, br, param="b", bounds=(3.0, 3.6), ds=0.002, ds_max=0.05)
    b, T = cb.param_values[1:], cb.periods[1:]
    assert np.all(b > h.param_value) and cb.stop_reason == "bounds"  # supercritical: cycles for b > 1 + a^2
    assert np.all(cb.stable[1:])
    # the period of the small cycles tends to 2 pi / a at the Hopf point (quadratic fit of T(b) on the first
    # cycles with non-zero amplitude, evaluated at b_H)
    near = slice(0, 5)
    T_H = np.polyval(np.polyfit(b[near] - h.param_value, T[near], 2), 0.0)
    assert T_H == pytest.approx(2 * np.pi / a, abs=1e-4)
    # the cycles' amplitude against the first Lyapunov coefficient: with x - x* = z q + conj(z q), |q| = 1,
    # |z|^2 = -Re(lambda) / (omega l1) and Re(lambda) = (b - b_H) / 2, the mean of |x - x*|^2 over a cycle is
    # 2 |z|^2 = -(b - b_H) / (omega l1) + O((b - b_H)^2)
    nf = hopf_normal_form(brusselator, br)
    for i in np.flatnonzero(cb.param_values - h.param_value < 1e-4)[1:]:
        x_eq = np.array([a, cb.param_values[i] / a])
        msq = np.mean(np.sum((cb.profiles[i, :-1] - x_eq) ** 2, axis=1))
        assert msq / (cb.param_values[i] - h.param_value) == pytest.approx(-1 / (nf.frequency * nf.l1), rel=1e-4)


def test_fold_of_cycles():
    # subcritical Hopf with a quintic term: r' = r (mu + r^2 - r^4) has cycles mu = r^4 - r^2, folding at
    # mu = -1/4, r^2 = 1/2 (period 2 pi throughout)
    c = compile_system(make_system(["x", "y"], ["mu*x - y + x*(x**2 + y**2) - x*(x**2 + y**2)**2",
                                                "x + mu*y + y*(x**2 + y**2) - y*(x**2 + y**2)**2"], ["mu"],
                                   name="bautin_cycles"))
    cb = continue_cycles(c, [0.0, 0.0], {"mu": 0.0}, "mu", (-1.0, 0.5), ntst=20)
    (lpc,) = cb.special_points
    assert lpc.kind == "fold_cycle" and lpc.param_value == pytest.approx(-0.25, abs=1e-4)
    r2 = np.sum(cb.profiles ** 2, axis=2)
    np.testing.assert_allclose(r2[lpc.index], 0.5, atol=1e-4)
    np.testing.assert_allclose(np.broadcast_to(cb.param_values[:, None], r2.shape), r2 ** 2 - r2, atol=1e-4)
    np.testing.assert_allclose(cb.periods, 2 * np.pi, atol=1e-4)
    # small cycles (inside the fold) are unstable, large ones stable
    mean_r2 = np.mean(r2, axis=1)
    assert not np.any(cb.stable[mean_r2 < 0.5 - 1e-3]) and np.all(cb.stable[mean_r2 > 0.5 + 1e-3])


def test_period_doubling_of_a_twisted_cycle():
    # (x, y): Stuart-Landau cycle of radius sqrt(mu), period 2 pi. (u, v) = R(theta/2) w with w' = diag(-1 + 2r,
    # -1 - 2r) w in the frame turning by half the cycle's angle; after one period the frame has turned by pi,
    # so the (u, v) multipliers are -exp((-1 ± 2 sqrt(mu)) 2 pi): one passes -1 at mu = 1/4
    c = compile_system(make_system(["x", "y", "u", "v"], [
        "mu*x - y - x*(x**2 + y**2)", "x + mu*y - y*(x**2 + y**2)",
        "-u + 2*(x*u + y*v) - v/2", "-v + 2*(y*u - x*v) + u/2"], ["mu"], name="twisted_cycle"))
    cb = continue_cycles(c, np.zeros(4), {"mu": 0.0}, "mu", (-1.0, 0.6), ntst=20)
    (pd,) = cb.special_points
    assert pd.kind == "period_doubling" and pd.param_value == pytest.approx(0.25, abs=1e-4)
    assert np.min(np.abs(pd.multipliers + 1.0)) < 1e-4
    mu = cb.param_values[1:]
    want = -np.exp((-1 + 2 * np.sqrt(mu)) * 2 * np.pi)
    got = cb.multipliers[1:][np.arange(len(mu)), np.argmin(np.abs(cb.multipliers[1:] - want[:, None]), axis=1)]
    np.testing.assert_allclose(got, want, atol=1e-4)
    assert np.all(cb.stable[1:][mu < 0.25 - 1e-6]) and not np.any(cb.stable[1:][mu > 0.25 + 1e-6])


def test_cycle_branch_save_load_and_plot(stuart_landau, tmp_path):
    from theorykit.analysis import plot_bifurcation

    br = continue_branch(stuart_landau, [0.0, 0.0], {"mu": -0.5, "omega": 1.0}, "mu", (-0.5, 0.5))
    cb = continue_cycles(stuart_landau, br, param="mu", bounds=(-1.0, 0.5), ntst=10, ncol=3)
    cb.save(tmp_path / "cycles")
    back = load_result(tmp_path / "cycles")
    assert isinstance(back, CycleBranch) and back.ntst == 10 and back.ncol == 3
    np.testing.assert_array_equal(back.profiles, cb.profiles)
    np.testing.assert_array_equal(back.multipliers, cb.multipliers)
    fig = plot_bifurcation(br, "x", cycles=cb, path=tmp_path / "bif.png")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "mu" and ax.get_ylabel() == "x"
    assert any(np.allclose(ln.get_ydata(), cb.max_states[:, 0]) for ln in ax.get_lines()
               if len(ln.get_ydata()) == len(cb))


def test_cycles_bad_inputs(stuart_landau):
    p = {"mu": -0.5, "omega": 1.0}
    with pytest.raises(InvalidParameterError, match="not a Hopf point"):
        continue_cycles(stuart_landau, [0.0, 0.0], p, "mu")
    with pytest.raises(InvalidParameterError, match="not a parameter"):
        continue_cycles(stuart_landau, [0.0, 0.0], {"mu": 0.0, "omega": 1.0}, "nu")
    with pytest.raises(InvalidParameterError, match="ntst"):
        continue_cycles(stuart_landau, [0.0, 0.0], {"mu": 0.0, "omega": 1.0}, "mu", ntst=1)
    with pytest.raises(InvalidParameterError, match="bounds"):
        continue_cycles(stuart_landau, [0.0, 0.0], {"mu": 0.0, "omega": 1.0}, "mu", (0.5, 1.0))
    with pytest.raises(InvalidParameterError, match="no complex"):
        continue_cycles(compile_system(R.saddle_node()), [0.0], {"r": 0.0}, "r")
