"""Stage 4a — simulate: finite-width SGD / particle runs of a theory's model, recorded as :class:`ParticleRun`.

A theory keeps only its model's numba step kernel; :func:`run_particles` drives it (chunked noise draws,
recording, seeding, progress, cancellation, one BLAS thread); :func:`map_threads` runs replicates in parallel
threads. Never imports SymPy.
"""

from ._driver import (CHUNK_BYTES as CHUNK_BYTES, NoiseStream as NoiseStream,
                      SimulationCancelled as SimulationCancelled, noise_generators as noise_generators,
                      run_particles as run_particles, standard_normal as standard_normal)
from ._normal import standard_normal_compiled as standard_normal_compiled
from ._parallel import (default_threads as default_threads, map_threads as map_threads,
                        single_threaded_blas as single_threaded_blas)
from ._run import ParticleRun as ParticleRun

__all__ = ["ParticleRun", "run_particles", "NoiseStream", "SimulationCancelled", "noise_generators",
           "standard_normal", "standard_normal_compiled", "CHUNK_BYTES", "map_threads", "default_threads",
           "single_threaded_blas"]
