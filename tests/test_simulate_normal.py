"""The compiled standard normal draws give numpy's numbers: the same stream, bit for bit, and the same generator
state afterwards, so a particle run that draws with them equals one that draws with numpy."""

import numpy as np
import pytest

from theorykit.simulate import NoiseStream, run_particles, standard_normal, standard_normal_compiled


@pytest.mark.parametrize("seed", [0, 12345])
def test_compiled_draws_equal_numpy_bit_for_bit_including_the_ziggurat_tails(seed):
    ours, numpy_rng = np.random.default_rng(seed), np.random.default_rng(seed)
    for shape in [(1,), (3, 7, 5), (400_000, 3)]:  # 1.2 million numbers: about 300 beyond the ziggurat's last layer
        a, b = np.empty(shape), np.empty(shape)
        standard_normal_compiled(ours, a)
        numpy_rng.standard_normal(out=b)
        assert np.array_equal(a, b), shape
    assert np.abs(a).max() > 3.6554  # the tail branch (x > r of the 256-layer ziggurat) was taken
    assert ours.bit_generator.state == numpy_rng.bit_generator.state
    assert ours.standard_normal() == numpy_rng.standard_normal()


def test_compiled_draws_refuse_arrays_they_cannot_fill_in_place():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="C-contiguous float64"):
        standard_normal_compiled(rng, np.empty((4, 4))[:, ::2])
    with pytest.raises(ValueError, match="C-contiguous float64"):
        standard_normal_compiled(rng, np.empty(4, dtype=np.float32))


def test_a_particle_run_is_the_same_with_either_draw():
    def run(draw):
        seen = []
        run_particles(lambda draws, step0, values: seen.append(draws[0].copy()), dict, n_steps=7,
                      record_steps=[0, 3, 7], noise=[NoiseStream((2, 3), draw)], seed=3, step_time=1.0,
                      chunk_bytes=2 * 6 * 8)
        return np.concatenate(seen)

    assert np.array_equal(run(standard_normal_compiled), run(standard_normal))
