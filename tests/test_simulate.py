"""The simulate stage: the particle driver (chunked noise, records, interval means, seeding, cancellation, one
BLAS thread), replicates in threads, ParticleRun, and compare() against an ODE solution."""

import threading

import numpy as np
import pytest
from numba import njit

from theorykit.errors import InvalidParameterError
from theorykit.simulate import (NoiseStream, ParticleRun, SimulationCancelled, map_threads, run_particles,
                                single_threaded_blas)
from theorykit.simulate._parallel import _thread_count_setters
from theorykit.validate import compare


@njit(cache=True)
def _noisy_decay_steps(x, rate, lr, noise, out_loss):
    """Langevin steps of x' = -rate x with noise; per-step loss x^2 / 2 before the step."""
    for s in range(noise.shape[0]):
        out_loss[s] = 0.5 * x[0] * x[0]
        x[0] += lr * (-rate * x[0]) + np.sqrt(lr) * 0.01 * noise[s, 0]


def _run(seed=4, chunk_bytes=1 << 20, n_steps=50, every=10, cancel=None):
    x = np.array([1.0])

    def advance(draws, step0, values):
        _noisy_decay_steps(x, 0.5, 0.01, draws[0], values[0])

    return run_particles(advance, lambda: {"x": x[0], "pair": np.array([x[0], -x[0]])}, n_steps=n_steps,
                         record_steps=range(0, n_steps + 1, every), noise=[NoiseStream((1,))], seed=seed,
                         step_time=0.01, params={"rate": 0.5}, step_values=("loss",), chunk_bytes=chunk_bytes,
                         cancel=cancel)


def _by_hand(seed, n_steps=50, every=10):
    noise = np.random.default_rng(seed).standard_normal((n_steps, 1))
    x, xs, losses = 1.0, [1.0], []
    for s in range(n_steps):
        losses.append(0.5 * x * x)
        x += 0.01 * (-0.5 * x) + np.sqrt(0.01) * 0.01 * noise[s, 0]
        if (s + 1) % every == 0:
            xs.append(x)
    means = [losses[0]] + [np.mean(losses[i:i + every]) for i in range(0, n_steps, every)]
    return np.array(xs), np.array(means)


def test_records_equal_a_plain_loop_and_do_not_depend_on_chunking():
    run = _run()
    xs, means = _by_hand(4)
    assert isinstance(run, ParticleRun) and run.seed == 4 and run.params == {"rate": 0.5}
    np.testing.assert_allclose(run.t, np.arange(6) * 0.1)
    np.testing.assert_allclose(run.observable("x"), xs, rtol=1e-14)
    np.testing.assert_allclose(run.observable("loss"), means, rtol=1e-14)
    assert run.observable("pair").shape == (6, 2) and run.interval_means == {"loss"}
    small = _run(chunk_bytes=3 * 8)  # three steps per chunk, cut again at every record
    for name in run.names:
        assert np.array_equal(small.observable(name), run.observable(name)), name
    assert not np.array_equal(_run(seed=5).observable("x"), run.observable("x"))
    with pytest.raises(ValueError):
        run.observable("x")[0] = 2.0  # results are read-only
    with pytest.raises(KeyError, match="recorded"):
        run.observable("nope")


def test_several_noise_streams_are_independent_children_of_the_seed():
    seen = []

    def advance(draws, step0, values):
        seen.append([d.copy() for d in draws])

    run_particles(advance, lambda: {}, n_steps=4, record_steps=[0, 4], seed=9, step_time=1.0,
                  noise=[NoiseStream((2,)), NoiseStream((3,), lambda rng, out: rng.random(out=out))])
    a, b = (np.random.default_rng(s) for s in np.random.SeedSequence(9).spawn(2))
    assert np.array_equal(seen[0][0], a.standard_normal((4, 2))) and np.array_equal(seen[0][1], b.random((4, 3)))


def test_cancellation_and_bad_arguments():
    flag = threading.Event()
    flag.set()
    with pytest.raises(SimulationCancelled, match="after 0 of 50"):
        _run(cancel=flag)
    with pytest.raises(InvalidParameterError, match="record_steps"):
        run_particles(lambda *a: None, dict, n_steps=5, record_steps=[0, 6], noise=[], seed=0, step_time=1.0)
    with pytest.raises(InvalidParameterError, match="seed"):
        _run(seed=-1)
    with pytest.raises(InvalidParameterError, match="records"):
        ParticleRun(np.arange(3.0), {"x": np.zeros(2)}, seed=0)


def test_compare_pairs_states_observables_and_interval_means():
    from theorykit.compile import compile_system
    from theorykit.derive import make_system
    from theorykit.solve import solve

    run = _run()
    csys = compile_system(make_system(["x"], ["-rate*x"], ["rate"], observed={"loss": "x**2/2"}), backend="numpy")
    sol = solve(csys, {"x": 1.0}, (0.0, 0.5), {"rate": 0.5}, t_eval=run.t, rtol=1e-10, atol=1e-12)
    cmp = compare(sol, run, ("x", "loss"))
    np.testing.assert_allclose(cmp.curves["x"], np.abs(run.observable("x") - sol.y_of("x")))
    ode_loss = sol.observed("loss")
    np.testing.assert_allclose(cmp.curves["loss"], np.abs(run.observable("loss")[1:]
                                                          - 0.5 * (ode_loss[1:] + ode_loss[:-1])))
    assert cmp.max_error() == max(cmp.errors.values()) and 0 < cmp.errors["x"] < 0.01
    with pytest.raises(InvalidParameterError, match="record times"):
        compare(solve(csys, {"x": 1.0}, (0.0, 0.5), {"rate": 0.5}, t_eval=np.linspace(0, 0.5, 4)), run, ("x",))


def _blas_counts():
    """The current OpenBLAS thread counts (read by setting one and putting the old count back)."""
    counts = [fn(1) for fn in _thread_count_setters()]
    for fn, n in zip(_thread_count_setters(), counts):
        fn(n)
    return counts


def test_blas_limit_holds_while_any_block_is_open_and_comes_back_after_the_last():
    if not _thread_count_setters():
        pytest.skip("no OpenBLAS with openblas_set_num_threads_local in this process")
    original = [fn(3) for fn in _thread_count_setters()]
    try:
        inside, first_left, seen = threading.Barrier(2), threading.Event(), {}

        def first():
            with single_threaded_blas():
                inside.wait()
            first_left.set()

        def second():
            with single_threaded_blas():
                inside.wait()
                first_left.wait()
                seen["after the first left"] = _blas_counts()

        threads = [threading.Thread(target=f) for f in (first, second)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert set(seen["after the first left"]) == {1}
        assert set(_blas_counts()) == {3}
        # the driver holds the limit during a run, also one that fails, and restores it afterwards
        counts = []
        with pytest.raises(SimulationCancelled):
            run_particles(lambda d, s, v: counts.append(_blas_counts()), lambda: {"x": 0.0}, n_steps=4,
                          record_steps=[0, 2, 4], noise=[], seed=0, step_time=1.0, chunk_bytes=16,
                          cancel=lambda: len(counts) > 0)
        assert counts and set(counts[0]) == {1} and set(_blas_counts()) == {3}
    finally:
        for fn, n in zip(_thread_count_setters(), original):
            fn(n)


def test_map_threads_keeps_the_order_and_checks_threads():
    assert map_threads(lambda x: x * x, range(7), threads=3) == [x * x for x in range(7)]
    assert map_threads(lambda x: x, [], threads=2) == []
    assert map_threads(lambda x: -x, [4]) == [-4]
    with pytest.raises(InvalidParameterError, match="threads"):
        map_threads(lambda x: x, [1], threads=0)
    with pytest.raises(ZeroDivisionError):
        map_threads(lambda x: 1 / x, [1, 0], threads=2)
