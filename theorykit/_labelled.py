"""Results as labelled ``xarray.Dataset`` objects (the optional ``labels`` extra).

Dimensions and coordinates are named after the swept parameters (or gridded states), so a result can be
selected by value (``ds.sel(eta=0.1)``), plotted with labelled axes and written to NetCDF
(``ds.to_netcdf(path, engine="scipy")`` needs nothing beyond SciPy). Attributes carry the provenance
record, taken when the Dataset is made (time, versions, git commit). Attributes that are not a string or
a number (mappings, lists, ``None``, booleans) are stored as JSON text, which NetCDF accepts:
``json.loads(ds.attrs["provenance"])`` reads one back.
"""

from __future__ import annotations

import itertools
import json
from typing import Any, Mapping, Sequence

import numpy as np

from .errors import InvalidParameterError


def require_xarray():
    """Import xarray, or raise an ImportError that says how to install it."""
    try:
        import xarray
    except ImportError:
        raise ImportError("to_xarray() needs xarray, an optional dependency: "
                          "pip install 'theorykit[labels]' (or pip install xarray)") from None
    return xarray


def _attr_value(value: Any) -> str | int | float:
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return value
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    from ._io import _jsonable

    return json.dumps(_jsonable(value))


def attributes(kind: str, **meta: Any) -> dict[str, str | int | float]:
    """Dataset attributes: ``kind``, the given metadata and the provenance record, NetCDF-safe."""
    from ._io import provenance

    return {k: _attr_value(v) for k, v in {"kind": kind, **meta, "provenance": provenance()}.items()}


def _label_coords(label_names: Sequence[str]) -> dict[str, Any]:
    return {"label_name": ("label_name", np.asarray(label_names, dtype=str))}


def _label_attrs(label_names: Sequence[str]) -> dict[str, str]:
    return {"description": "index into the label_name coordinate", "label_names": json.dumps(list(label_names))}


# ----------------------------------------------------------------------------------------- analysis
def phase_diagram_dataset(pd):
    """A :class:`~theorykit.analysis.PhaseDiagram` as a Dataset over its two grid parameters."""
    xr = require_xarray()
    dims = tuple(pd.axes)
    if dims[0] == dims[1]:
        raise InvalidParameterError(f"a phase diagram's two axes must differ, got {dims}")
    state = np.asarray(pd.state_names or [f"y{i}" for i in range(pd.final_states.shape[-1])], dtype=str)
    fractions = pd.fractions()
    ds = xr.Dataset(
        {"label": (dims, np.asarray(pd.labels), _label_attrs(pd.label_names)),
         "final_state": ((*dims, "state"), np.asarray(pd.final_states)),
         "status": (dims, np.asarray(pd.status), {"description": "theorykit.solve.Status code"}),
         "fraction": ("label_name", np.array([fractions[n] for n in pd.label_names]),
                      {"description": "share of grid points per label"}),
         "y0": ("state", np.asarray(pd.y0) if np.size(pd.y0) else np.full(state.size, np.nan))},
        coords={dims[0]: np.asarray(pd.x), dims[1]: np.asarray(pd.y), "state": state,
                **_label_coords(pd.label_names)},
        attrs=attributes("PhaseDiagram", base_params=dict(pd.base_params), t_final=float(pd.t_final)),
    )
    return ds


def basin_map_dataset(bm):
    """A :class:`~theorykit.analysis.BasinMap` as a Dataset: over its two gridded states, or over
    ``sample`` for sampled initial conditions."""
    xr = require_xarray()
    n_states = bm.y0s.shape[1]
    state = np.asarray(bm.state_names or [f"y{i}" for i in range(n_states)], dtype=str)
    if bm.axes:
        dims = tuple(bm.axes)  # the initial values of the two gridded states
        shape = bm.labels.shape
        coords = {d: np.asarray(g) for d, g in zip(dims, bm.grid)}
    else:
        dims, shape, coords = ("sample",), (bm.labels.size,), {}
    ds = xr.Dataset(
        {"label": (dims, np.asarray(bm.labels).reshape(shape), _label_attrs(bm.label_names)),
         "y0": ((*dims, "state"), np.asarray(bm.y0s).reshape(*shape, n_states)),
         "final_state": ((*dims, "state"), np.asarray(bm.final_states).reshape(*shape, n_states)),
         "status": (dims, np.asarray(bm.status).reshape(shape), {"description": "theorykit.solve.Status code"}),
         "fraction": ("label_name", np.asarray(bm.fractions), {"description": "share of initial conditions"}),
         "stderr": ("label_name", np.asarray(bm.stderr), {"description": "binomial standard error of fraction"})},
        coords={**coords, "state": state, **_label_coords(bm.label_names)},
        attrs=attributes("BasinMap", params=dict(bm.params), t_final=float(bm.t_final),
                         gridded_states=list(bm.axes)),
    )
    return ds


# ----------------------------------------------------------------------------------------- sweeps
def _grid_axes(points: Sequence[Mapping[str, Any]], names: Sequence[str]) -> list[np.ndarray] | None:
    """The axes if ``points`` are their Cartesian product in :func:`theorykit.sweep.grid_points` order."""
    uniques = []
    for n in names:
        seen: dict[Any, None] = {}
        try:
            for p in points:
                seen.setdefault(p[n], None)
        except TypeError:  # unhashable parameter values: not a grid
            return None
        uniques.append(list(seen))
    if int(np.prod([len(u) for u in uniques])) != len(points):
        return None
    expected = itertools.product(*uniques)
    if any(tuple(p[n] for n in names) != e for p, e in zip(points, expected)):
        return None
    return [np.asarray(u) for u in uniques]


def _stack(result, name: str) -> np.ndarray:
    """Value ``name`` stacked over points: numbers as float (nan where missing), strings as str ('')."""
    present = [p.values[name] for p in result.points if name in p.values]
    kinds = {np.asarray(v).dtype.kind for v in present}
    if kinds <= set("biufc"):
        return result.values(name)
    if kinds <= set("US") and all(np.ndim(v) == 0 for v in present):
        return np.asarray([str(p.values.get(name, "")) for p in result.points], dtype=str)
    raise InvalidParameterError(f"sweep value {name!r} is neither numeric nor a string (dtype kinds {sorted(kinds)}): "
                                "it has no place in a Dataset")


def sweep_dataset(result):
    """A :class:`~theorykit.sweep.SweepResult` as a Dataset (see ``SweepResult.to_xarray``)."""
    xr = require_xarray()
    points = [p.params for p in result.points]
    names = list(points[0]) if points else []
    if any(list(p) != names for p in points):
        raise InvalidParameterError("sweep points do not all have the same parameter names: "
                                    f"{sorted({tuple(p) for p in points})}")
    axes = _grid_axes(points, names) if names else None
    if axes is not None:
        dims = tuple(names)
        shape = tuple(a.size for a in axes)
        coords: dict[str, Any] = dict(zip(names, axes))
    else:
        dims, shape = ("point",), (len(points),)
        coords = {n: ("point", np.asarray([p[n] for p in points])) for n in names}
        for n, (_, values) in coords.items():
            if values.ndim != 1:
                raise InvalidParameterError(f"sweep parameter {n!r} is not a scalar at every point: "
                                            "it cannot be a coordinate")
    value_names = sorted({k for p in result.points for k in p.values})
    data: dict[str, Any] = {}
    for name in value_names:
        stacked = _stack(result, name)
        extra = tuple(f"{name}_dim{k}" for k in range(stacked.ndim - 1))
        data[name] = ((*dims, *extra), stacked.reshape(*shape, *stacked.shape[1:]))
    # seeds as decimal text: exact in every format (NetCDF3 has no 64-bit integers)
    per_point = {"sweep_status": np.asarray(result.statuses, dtype=str),
                 "sweep_error": np.asarray([p.error or "" for p in result.points], dtype=str),
                 "sweep_seed": np.asarray([str(p.seed) for p in result.points], dtype=str),
                 "sweep_seconds": np.asarray([p.seconds for p in result.points], dtype=float)}
    for name, arr in per_point.items():
        if name in data:
            raise InvalidParameterError(f"a sweep value is named {name!r}, which the Dataset uses for the points' "
                                        "bookkeeping: rename that value")
        data[name] = (dims, arr.reshape(shape))
    return xr.Dataset(data, coords=coords,
                      attrs=attributes("SweepResult", n_points=len(points), n_failed=len(result.failed),
                                       parameters=names))
