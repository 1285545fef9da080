"""The particle driver: chunked noise draws, recording, seeding, progress and cancellation around a
theory's numba step kernel.

A theory supplies two callables over its own state (weights held in arrays it owns):

* ``advance(draws, step0, values)`` runs ``m`` steps in place, from global step ``step0``, consuming the
  pre-drawn noise ``draws`` (one array ``[m, *stream.shape]`` per :class:`NoiseStream`) and writing each
  step's per-step values (e.g. the minibatch loss) into ``values`` float64[n_values, m];
* ``observe()`` returns the named observables of the current state.

The driver draws the noise with ``numpy.random.Generator`` streams chunk by chunk (memory bounded by
``chunk_bytes``), cuts chunks at the record steps, records, averages the per-step values over each record
interval, draws a progress bar and checks for cancellation between chunks. Each step consumes its noise
in the same order whatever the chunking, so a run depends only on its seed. The steps and records run with
one BLAS thread (:func:`~theorykit.simulate.single_threaded_blas`; the products of a step are too small to
gain from more); several runs use the cores as parallel replicates
(:func:`~theorykit.simulate.map_threads`).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .._checks import check_int
from ..errors import InvalidParameterError, TheorykitError
from ..progress import Progress
from ._parallel import single_threaded_blas
from ._run import ParticleRun

#: default upper bound on the pre-drawn noise held at once (bytes)
CHUNK_BYTES = 32 * 2**20


class SimulationCancelled(TheorykitError):
    """A particle run was cancelled (its ``cancel`` flag was set) between two chunks of steps."""


def standard_normal(rng: np.random.Generator, out: np.ndarray) -> None:
    """Fill ``out`` with standard normals by numpy's ziggurat (the default draw of a :class:`NoiseStream`;
    :func:`~theorykit.simulate.standard_normal_compiled` gives the same numbers about twice as fast)."""
    rng.standard_normal(out=out)


@dataclass(frozen=True)
class NoiseStream:
    """One stream of per-step random input of a step kernel.

    ``shape`` is one step's draw (the chunk arrays are ``[m, *shape]``, float64); ``draw(rng, out)`` fills
    ``out`` in place and must consume the generator element by element in C order, so that chunking does
    not change the numbers.
    """

    shape: tuple[int, ...]
    draw: Callable[[np.random.Generator, np.ndarray], None] = standard_normal

    @property
    def size(self) -> int:
        return int(math.prod(self.shape))


def noise_generators(seed: int, n_streams: int) -> list[np.random.Generator]:
    """The generators of ``n_streams`` noise streams from one seed: ``default_rng(seed)`` for a single
    stream, independent children of ``SeedSequence(seed)`` for several."""
    if n_streams == 1:
        return [np.random.default_rng(seed)]
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(n_streams)]


def _cancelled(cancel: Any) -> bool:
    if cancel is None:
        return False
    is_set = getattr(cancel, "is_set", None)
    return bool(is_set() if is_set is not None else cancel())


def run_particles(advance: Callable[[tuple[np.ndarray, ...], int, np.ndarray], None],
                  observe: Callable[[], Mapping[str, Any]], *, n_steps: int, record_steps: Sequence[int],
                  noise: Sequence[NoiseStream], seed: int, step_time: float, params: Mapping[str, Any] | None = None,
                  step_values: Sequence[str] = (), chunk_bytes: int | None = None, desc: str = "SGD steps",
                  cancel: Any = None, single_blas_thread: bool = True) -> ParticleRun:
    """Run ``n_steps`` steps of a step kernel and record it (see the module docstring for the protocol).

    Parameters
    ----------
    advance, observe : callable
        The theory's step kernel wrapper and its observables.
    n_steps : int
        Number of steps (>= 1).
    record_steps : sequence of int
        Increasing step counts in ``[0, n_steps]`` at which ``observe()`` is recorded (0: before training).
    noise : sequence of NoiseStream
        The per-step random inputs, drawn from :func:`noise_generators` ``(seed, len(noise))``.
    seed : int
        Seed of the noise streams (kept as ``ParticleRun.seed``).
    step_time : float
        Training time per step; record times are ``record_steps * step_time``.
    params : mapping, optional
        Settings stored in the run.
    step_values : sequence of str
        Names of the per-step values ``advance`` writes; each is recorded as its mean over the interval
        since the previous record (at step 0: the first step's value).
    chunk_bytes : int, optional
        Upper bound on the noise drawn at once (default :data:`CHUNK_BYTES`).
    desc : str
        Progress bar label.
    cancel : threading.Event or callable, optional
        Checked between chunks; when set (or returning true) the run raises :class:`SimulationCancelled`.
    single_blas_thread : bool
        Run ``advance`` and ``observe`` with one BLAS thread in the calling thread (default; restored
        afterwards). ``False`` leaves the BLAS threading as it is, for step kernels with products large
        enough to gain from several threads on an otherwise idle machine. Results do not depend on it.

    Returns
    -------
    ParticleRun
    """
    n_steps = check_int("n_steps", n_steps, 1)
    steps = [int(s) for s in record_steps]
    if not steps or any(b <= a for a, b in zip(steps, steps[1:])) or steps[0] < 0 or steps[-1] > n_steps:
        raise InvalidParameterError(f"record_steps must increase within [0, {n_steps}], got {steps[:5]}...")
    seed = check_int("seed", seed, 0)
    per_step = 8 * sum(s.size for s in noise)
    limit = CHUNK_BYTES if chunk_bytes is None else check_int("chunk_bytes", chunk_bytes, 1)
    chunk = max(1, min(n_steps, limit // max(per_step, 1)))
    generators = noise_generators(seed, len(noise)) if noise else []
    buffers = [np.empty((chunk, *s.shape)) for s in noise]
    n_values = len(step_values)
    rows: list[Mapping[str, Any]] = []
    means: list[np.ndarray | None] = []
    acc, n_acc = np.zeros(n_values), 0
    blas = single_threaded_blas() if single_blas_thread else contextlib.nullcontext()
    with blas, Progress(n_steps, desc) as bar:
        if steps[0] == 0:
            rows.append(dict(observe()))
            means.append(None)  # the first step's values, filled in after it runs
        pending = [s for s in steps if s > 0]
        done = 0
        while done < n_steps:
            if _cancelled(cancel):
                raise SimulationCancelled(f"cancelled after {done} of {n_steps} steps")
            stop = pending[0] if pending else n_steps
            m = min(chunk, stop - done)
            draws = tuple(b[:m] for b in buffers)
            for stream, rng, out in zip(noise, generators, draws):
                stream.draw(rng, out)
            values = np.empty((n_values, m))
            advance(draws, done, values)
            if done == 0 and means and means[0] is None:
                means[0] = values[:, 0].copy()
            for i in range(n_values):  # a running sum in step order (accumulate is sequential)
                acc[i] = np.add.accumulate(np.concatenate(([acc[i]], values[i])))[-1]
            n_acc += m
            done += m
            bar.update(m)
            if pending and done == pending[0]:
                pending.pop(0)
                rows.append(dict(observe()))
                means.append(acc / n_acc)
                acc, n_acc = np.zeros(n_values), 0
    observables = {name: np.stack([np.asarray(r[name], dtype=float) for r in rows]) for name in rows[0]}
    for i, name in enumerate(step_values):
        observables[name] = np.array([np.nan if m is None else m[i] for m in means])
    return ParticleRun(np.asarray(steps) * float(step_time), observables, seed, dict(params or {}),
                       frozenset(step_values))
