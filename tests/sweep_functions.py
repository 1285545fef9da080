"""Module-level functions for sweep tests (they must be importable by worker processes)."""

import numpy as np


def noisy_quadratic(params, seed):
    rng = np.random.default_rng(seed)
    x = params["x"]
    return {"y": x**2 + 0.01 * rng.normal(), "path": rng.normal(size=3)}


def sometimes_fails(params, seed):
    if params["x"] == 2.0:
        raise RuntimeError("diverged")
    if params["x"] == 3.0:
        return {"y": float("nan")}
    return {"y": params["x"]}


def count_calls(params, seed):
    from pathlib import Path

    log = Path(params["log"])
    with open(log, "a") as fh:
        fh.write(f"{params['x']}\n")
    return {"y": params["x"] * 10}


def dies_at_two(params, seed):
    """Kills its own worker process at x == 2 (as a crash in compiled code would)."""
    import os

    if params["x"] == 2.0:
        os._exit(3)
    return {"y": params["x"]}


def segfaults_at_two(params, seed):
    import ctypes

    if params["x"] == 2.0:
        ctypes.string_at(0)  # reads address 0: SIGSEGV
    return {"y": params["x"]}


def spin_forever(params, seed):
    """Writes its pid, then computes in C without releasing the GIL (no Python-level signal checks)."""
    import os
    from pathlib import Path

    Path(params["dir"], f"{os.getpid()}.pid").write_text("")
    sum(range(10**13))
    return {"y": 0.0}
