"""The extension path: a complete theory written in this file against the public protocol — a one-state ODE
derived from a loss, a numba SGD step kernel driven by the simulate stage, two claims — shows up in
``theorykit systems`` and runs in ``theorykit reproduce --only``."""

import json

import numpy as np
import pytest
import sympy as sp
from numba import njit

from theorykit.cli import main
from theorykit.compile import compile_system
from theorykit.derive import Law, expectation, gradient_flow
from theorykit.simulate import NoiseStream, ParticleRun, run_particles
from theorykit.solve import solve
from theorykit.theories import BuiltinSystem, register_theory, unregister_theory
from theorykit.validate import compare


def shrinkage_system():
    """Gradient flow of the expected loss E[(w x)^2 / 2], x ~ N(0, 1), with weight decay: w' = -(1 + eta) w."""
    w, x, eta = sp.symbols("w x eta", real=True)
    loss = expectation((w * x) ** 2 / 2, {x: Law.gaussian(1)}) + eta * w**2 / 2
    return gradient_flow(loss, [w], params=[eta])


@njit(cache=True)
def shrinkage_steps(w, eta, lr, x, out_loss):
    """Minibatch SGD on ``w`` (float64[1]) with samples ``x`` float64[m, batch]; ``out_loss[s]``: batch loss."""
    batch = x.shape[1]
    for s in range(x.shape[0]):
        grad, loss = 0.0, 0.0
        for b in range(batch):
            grad += w[0] * x[s, b] * x[s, b]
            loss += 0.5 * (w[0] * x[s, b]) ** 2
        out_loss[s] = loss / batch + 0.5 * eta * w[0] * w[0]
        w[0] -= lr * (grad / batch + eta * w[0])


def simulate_shrinkage(*, eta, lr, batch, t_end, w0, n_record, seed) -> ParticleRun:
    w = np.array([w0])
    n_steps = int(round(t_end / lr))
    every = n_steps // (n_record - 1)

    def advance(draws, step0, values):
        shrinkage_steps(w, eta, lr, draws[0], values[0])

    return run_particles(advance, lambda: {"w": w[0]}, n_steps=every * (n_record - 1),
                         record_steps=range(0, every * (n_record - 1) + 1, every), noise=[NoiseStream((batch,))],
                         seed=seed, step_time=lr, step_values=("loss",), params={"eta": eta, "lr": lr})


class Shrinkage:
    """A theory: the ODE of the expected loss predicts minibatch SGD on the weight."""

    name = "shrinkage"
    title = "Weight shrinkage under noisy quadratic loss"
    sources = ("closed form w(t) = w0 exp(-(1 + eta) t)",)
    claim_names = ("ode_matches_closed_form", "sgd_follows_the_ode")

    def systems(self):
        return {"flow": BuiltinSystem("flow", shrinkage_system, {"eta": 0.1}, {"w": 1.0}, "w' = -(1 + eta) w")}

    def reproduce(self, study):
        eta, t_end = 0.1, 2.0
        with study.section("solve"):
            run = simulate_shrinkage(eta=eta, lr=0.002, batch=64, t_end=t_end, w0=1.0, n_record=11, seed=study.seed)
            sol = solve(compile_system(shrinkage_system()), {"w": 1.0}, (0.0, t_end), {"eta": eta}, t_eval=run.t,
                        rtol=1e-10, atol=1e-12)
            exact = np.exp(-(1 + eta) * run.t)
            study.claim("ode_matches_closed_form", "the derived flow integrates to w0 exp(-(1 + eta) t)",
                        float(np.max(np.abs(sol.y_of("w") - exact))), 0.0, 1e-7)
            errors = compare(sol, run, ("w", "loss"))
            study.claim("sgd_follows_the_ode", "max |SGD - ODE| of w and of the interval-mean loss",
                        errors.max_error(), 0.0, 0.03, figures=("shrinkage.png",))
        with study.figure("shrinkage.png", "SGD (dots) on the gradient-flow ODE (line).") as (fig, ax):
            ax.plot(sol.t, sol.y_of("w"), "-", run.t, run.observable("w"), "o")


@pytest.fixture
def shrinkage():
    theory = register_theory(Shrinkage())
    yield theory
    unregister_theory(theory.name)


def test_listed_by_systems_and_derivable(shrinkage, capsys):
    assert main(["systems"]) == 0
    assert "shrinkage.flow" in capsys.readouterr().out
    assert main(["derive", "shrinkage.flow"]) == 0
    assert "eta" in capsys.readouterr().out


def test_reproduces_through_the_command_line(shrinkage, tmp_path, capsys):
    assert main(["reproduce", "--only", "shrinkage", "--out", str(tmp_path / "r")]) == 0
    record = json.loads((tmp_path / "r" / "results.json").read_text())["theories"]["shrinkage"]
    assert record["title"] == Shrinkage.title
    assert [(c["name"], c["passed"]) for c in record["claims"]] == [("ode_matches_closed_form", True),
                                                                   ("sgd_follows_the_ode", True)]
    assert 0 < record["claims"][1]["measured"] < 0.03 and (tmp_path / "r" / "shrinkage" / "shrinkage.png").exists()
