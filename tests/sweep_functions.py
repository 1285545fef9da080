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
