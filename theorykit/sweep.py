"""One sweep API for phase diagrams, basin maps and validation campaigns.

A sweep evaluates ``fn(params, seed) -> dict of numbers/arrays`` at many parameter points, on a local
process pool (default), inline (``processes=1``) or a ``dask.distributed`` cluster (``scheduler=``).
Every point gets its own seed derived from the sweep's seed and the point's index, so results do not
depend on the backend or the order of execution. With ``store=`` each finished point is written
atomically to its own file and a re-run skips points already there (resume after an interruption).
Failures (exceptions, non-finite values, a worker process that dies) are recorded per point and never
stop the sweep.
"""

from __future__ import annotations

import hashlib
import inspect
import io
import json
import os
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from . import __version__
from ._io import atomic_path, remove_stale_temporaries
from ._pool import run_pool
from ._random import SeedLike, as_generator
from .errors import CacheWarning, InvalidParameterError
from .progress import Progress

PointFunction = Callable[[dict, int], Mapping[str, Any]]


@dataclass(frozen=True)
class PointResult:
    """The outcome at one sweep point: ``status`` is ``"ok"``, ``"non_finite"`` or ``"error"``."""

    index: int
    params: dict
    seed: int
    status: str
    values: dict = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0
    resumed: bool = False


@dataclass(frozen=True)
class SweepResult:
    """All points of a sweep, in the order they were given."""

    points: tuple[PointResult, ...]

    def values(self, name: str, fill: float = np.nan) -> np.ndarray:
        """Stack value ``name`` over points (``fill`` where a point failed or lacks it)."""
        arrays = [np.asarray(p.values[name], dtype=float) for p in self.points if name in p.values]
        if not arrays:
            raise KeyError(f"no point produced a value named {name!r}")
        shape = arrays[0].shape
        out = np.full((len(self.points), *shape), fill, dtype=float)
        for i, p in enumerate(self.points):
            if name in p.values:
                out[i] = p.values[name]
        return out

    @property
    def statuses(self) -> list[str]:
        return [p.status for p in self.points]

    @property
    def failed(self) -> list[PointResult]:
        return [p for p in self.points if p.status != "ok"]

    def summary(self) -> str:
        """One line per failed point (status, parameters, message); empty if all succeeded."""
        return "\n".join(f"point {p.index} {p.params}: {p.status}" + (f": {p.error}" if p.error else "")
                         for p in self.failed)

    def to_xarray(self):
        """The sweep as an ``xarray.Dataset`` (needs ``theorykit[labels]``).

        Points that form a full grid (as :func:`grid_points` makes them) get one dimension per parameter,
        named after it; any other set of points gets a ``point`` dimension with the parameters as
        coordinates. Each value becomes a variable (extra dimensions of array values are named
        ``<value>_dim<k>``); failed points and points without the value hold nan (strings: empty).
        ``sweep_status``, ``sweep_error``, ``sweep_seed`` (decimal text: exact in NetCDF, which has no
        64-bit integers) and ``sweep_seconds`` describe each point; the attributes hold the provenance
        record as JSON text (``json.loads(ds.attrs["provenance"])``).
        """
        from ._labelled import sweep_dataset

        return sweep_dataset(self)
    def failure_lines(self, keys: Sequence[str] | None = None) -> tuple[str, ...]:
        """One line per failed point: ``"dim=16 lr=0.04: error: ValueError: ..."``, naming the point by the
        parameters ``keys`` (default: all of them) and giving its status and error."""
        return tuple(f"{_describe(p.params, keys)}: {p.status}" + (f": {p.error}" if p.error else "")
                     for p in self.failed)

    def grid(self, axes: Sequence[str], key: str, *, describe: Sequence[str] | None = None) -> "Grid":
        """Value ``key`` arranged on the grid of the point parameters ``axes``.

        Each axis takes the distinct values of its parameter in the order the points first use them; every
        point must sit at its own grid cell. Cells whose point failed (or that no point fills) are NaN.

        Parameters
        ----------
        axes : sequence of str
            Point parameters spanning the grid, e.g. ``("dim", "replicate")``.
        key : str
            A value the point function returns (scalar or array; arrays add trailing axes).
        describe : sequence of str, optional
            Parameters naming a failed point in ``Grid.failures`` (default: ``axes``).

        Raises
        ------
        KeyError
            If a successful point lacks ``key`` or an axis parameter.
        InvalidParameterError
            If two points share a grid cell.
        """
        axes = tuple(axes)
        coords: dict[str, list] = {a: [] for a in axes}
        cells = []
        for p in self.points:
            missing = [a for a in axes if a not in p.params]
            if missing:
                raise KeyError(f"sweep point {p.index} has no parameter {missing[0]!r} (grid axes {list(axes)})")
            cell = []
            for a in axes:
                if p.params[a] not in coords[a]:
                    coords[a].append(p.params[a])
                cell.append(coords[a].index(p.params[a]))
            cells.append(tuple(cell))
        if len(set(cells)) != len(cells):
            raise InvalidParameterError(f"the parameters {list(axes)} do not tell the sweep points apart")
        ok_points = [p for p in self.points if p.status == "ok"]
        lacking = [p.index for p in ok_points if key not in p.values]
        if lacking:
            raise KeyError(f"sweep point {lacking[0]} returned no value named {key!r}")
        value_shape = np.shape(ok_points[0].values[key]) if ok_points else ()
        shape = tuple(len(coords[a]) for a in axes)
        values = np.full(shape + value_shape, np.nan)
        ok = np.zeros(shape, dtype=bool)
        for p, cell in zip(self.points, cells):
            if p.status == "ok":
                values[cell] = p.values[key]
                ok[cell] = True
        return Grid(axes, {a: np.asarray(coords[a]) for a in axes}, values, ok,
                    self.failure_lines(axes if describe is None else describe))


@dataclass(frozen=True)
class Grid:
    """One sweep value on a grid of point parameters (see :meth:`SweepResult.grid`).

    Attributes
    ----------
    axes : tuple of str
        The parameters spanning the grid.
    coords : dict of str -> ndarray
        Each axis's values, in the order the points first use them.
    values : float64 ndarray
        Shape ``(len(coords[a]) for a in axes) + value shape``; NaN where the point failed.
    ok : bool ndarray
        Grid shape: the point there succeeded.
    failures : tuple of str
        One line per failed point of the sweep (all of them, not only this grid's cells).
    """

    axes: tuple[str, ...]
    coords: dict[str, np.ndarray]
    values: np.ndarray
    ok: np.ndarray
    failures: tuple[str, ...]

    def truth(self) -> np.ndarray:
        """The values as truth values: ``False`` where the point failed (NaN is not taken as true)."""
        return self.ok.reshape(self.ok.shape + (1,) * (self.values.ndim - self.ok.ndim)) & (
            np.nan_to_num(self.values) != 0)


def _describe(params: Mapping[str, Any], keys: Sequence[str] | None) -> str:
    """``"dim=16 lr=0.04"``: the parameters ``keys`` (default all) of a point, numbers in short form."""
    def fmt(v: Any) -> str:
        return f"{v:g}" if isinstance(v, float) else str(v)

    return " ".join(f"{k}={fmt(params[k])}" for k in (params if keys is None else keys) if k in params)


@dataclass(frozen=True)
class SweepOptions:
    """Where the points of :func:`sweep` run: one object instead of three keyword arguments.

    Attributes
    ----------
    processes : int or None
        Local worker processes (``1``: inline in this process; ``None``: one per CPU).
    scheduler : str or distributed.Client, optional
        A ``dask.distributed`` scheduler address or client (instead of local processes).
    store : path, optional
        Folder keeping every finished point, so that a re-run resumes.
    """

    processes: int | None = 1
    scheduler: Any = None
    store: Path | None = None

    def __post_init__(self) -> None:
        if self.processes is not None and (isinstance(self.processes, bool) or int(self.processes) < 1):
            raise InvalidParameterError(f"processes must be >= 1, got {self.processes}")
        if self.store is not None:
            object.__setattr__(self, "store", Path(self.store))

    def in_subfolder(self, name: str) -> "SweepOptions":
        """The same options with ``store`` (if any) narrowed to its subfolder ``name``."""
        return SweepOptions(self.processes, self.scheduler, None if self.store is None else self.store / name)

    def kwargs(self) -> dict[str, Any]:
        """``{"processes", "scheduler", "store"}`` for :func:`sweep`."""
        return {"processes": self.processes, "scheduler": self.scheduler, "store": self.store}

    def sweep(self, fn: PointFunction, points: Sequence[Mapping[str, Any]], *, seed: SeedLike = 0,
              desc: str = "sweep") -> "SweepResult":
        """:func:`sweep` with these options."""
        return sweep(fn, points, seed=seed, desc=desc, **self.kwargs())


def point_seeds(seed: SeedLike, n: int) -> list[int]:
    """Independent per-point seeds from one sweep seed (the same for every backend)."""
    ss = np.random.SeedSequence(int(as_generator(seed).integers(0, 2**63 - 1)))
    return [int(s.generate_state(1, np.uint64)[0] >> np.uint64(1)) for s in ss.spawn(n)]


def _function_identity(fn: Callable, version: str | None) -> dict[str, str]:
    """What a stored point's result depends on besides its parameters and seed: the function's name and
    source code (or the caller's ``version``) and the theorykit version."""
    name = f"{getattr(fn, '__module__', None)}.{getattr(fn, '__qualname__', type(fn).__qualname__)}"
    if version is None:
        try:
            code = inspect.getsource(fn)
        except (OSError, TypeError):
            raise InvalidParameterError(f"store= needs version= for {name}: its source code cannot be read, so "
                                        "a change of the function could not be detected") from None
    else:
        code = f"version {version}"
    return {"fn": name, "code": code, "theorykit": __version__}


def _recorded(params: Mapping) -> dict:
    """``params`` as a store file records them (a JSON round trip)."""
    return json.loads(json.dumps({str(k): v for k, v in params.items()}, default=repr))


def _point_key(identity: Mapping[str, str], params: Mapping, seed: int) -> str:
    text = json.dumps({**identity, "params": _recorded(params), "seed": seed}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _evaluate(fn: PointFunction, index: int, params: dict, seed: int) -> PointResult:
    """Run one point, turning exceptions and non-finite outputs into statuses (runs in a worker)."""
    start = time.perf_counter()
    try:
        raw = fn(dict(params), seed)
        if not isinstance(raw, Mapping):
            raise TypeError(f"sweep function must return a mapping of values, got {type(raw).__name__}")
        values = {str(k): np.asarray(v) if not np.isscalar(v) else v for k, v in raw.items()}
        finite = all(np.all(np.isfinite(np.asarray(v, dtype=float))) for v in values.values()
                     if np.asarray(v).dtype.kind in "fciub")
        status, error = ("ok", None) if finite else ("non_finite", "non-finite value(s): " + ", ".join(
            k for k, v in values.items()
            if np.asarray(v).dtype.kind in "fc" and not np.all(np.isfinite(np.asarray(v, dtype=float)))))
    except Exception as exc:  # recorded per point; the sweep goes on
        values, status = {}, "error"
        error = f"{type(exc).__name__}: {exc}"
        tb = traceback.extract_tb(exc.__traceback__)
        if tb:
            error += f" (at {Path(tb[-1].filename).name}:{tb[-1].lineno})"
    return PointResult(index, dict(params), seed, status, values, error, time.perf_counter() - start)


def _store_path(store: Path, index: int, key: str) -> Path:
    return store / f"point-{index:06d}-{key}.npz"


def _save_point(path: Path, res: PointResult, key: str) -> None:
    meta = {"index": res.index, "params": res.params, "seed": res.seed, "key": key, "status": res.status,
            "error": res.error, "seconds": res.seconds}
    buf = io.BytesIO()
    np.savez(buf, __meta__=np.array(json.dumps(meta, default=repr)),
             **{f"v_{k}": np.asarray(v) for k, v in res.values.items()})
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.getvalue())


def _load_point(path: Path) -> tuple[PointResult, str | None]:
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["__meta__"]))
        values = {k[2:]: (data[k].item() if data[k].ndim == 0 else data[k]) for k in data.files if k.startswith("v_")}
    return PointResult(meta["index"], meta["params"], meta["seed"], meta["status"], values, meta["error"],
                       meta["seconds"], resumed=True), meta.get("key")


def _load_stored(path: Path, index: int, params: Mapping, seed: int, key: str) -> PointResult | None:
    """The stored result of point ``index`` if its file records exactly this point; otherwise ``None``
    (with a warning: the point is recomputed)."""
    try:
        res, recorded_key = _load_point(path)
    except Exception as exc:  # truncated, foreign or unreadable: never trusted
        warnings.warn(f"store file {path} cannot be read ({type(exc).__name__}: {exc}); point {index} is "
                      "recomputed", CacheWarning, stacklevel=3)
        return None
    wrong = [what for what, want, got in (("index", index, res.index), ("seed", seed, res.seed),
                                          ("parameters", _recorded(params), res.params), ("key", key, recorded_key))
             if want != got]
    if wrong:
        warnings.warn(f"store file {path} records another {', '.join(wrong)} than point {index}; the point is "
                      "recomputed", CacheWarning, stacklevel=3)
        return None
    return res


def sweep(
    fn: PointFunction,
    points: Sequence[Mapping[str, Any]],
    *,
    seed: SeedLike = 0,
    processes: int | None = None,
    scheduler: Any = None,
    store: str | os.PathLike | None = None,
    retry_failed: bool = False,
    version: str | None = None,
    desc: str = "sweep",
) -> SweepResult:
    """Evaluate ``fn(params, seed)`` at every point.

    Parameters
    ----------
    fn : callable
        A module-level (picklable) function ``fn(params: dict, seed: int) -> Mapping[str, number | array]``.
    points : sequence of mappings
        Parameter sets, e.g. from :func:`grid_points`.
    seed : int or Generator
        Sweep seed; point ``i`` gets ``point_seeds(seed, n)[i]``.
    processes : int, optional
        Local worker processes (default: CPU count; ``1`` runs inline in this process). A worker that dies
        (a crash, ``os._exit``) makes its point a failure and is replaced; workers stop when this process
        ends, even if it is killed.
    scheduler : str or distributed.Client, optional
        Run on a ``dask.distributed`` cluster at this address (``tcp://host:port``) or client instead of
        locally (needs ``pip install theorykit[distributed]``).
    store : path, optional
        Folder for per-point result files; finished points found there are loaded, not recomputed. A file
        is keyed by ``fn``'s name and source code (or ``version``), the theorykit version, the point's
        parameters and seed; one whose recorded index, seed, parameters or key differ is recomputed with
        a :class:`~theorykit.errors.CacheWarning`. Temporary files left by a killed run are removed.
    retry_failed : bool
        With ``store``, recompute stored points whose status is not ``"ok"``.
    version : str, optional
        With ``store``, identifies the computation instead of ``fn``'s source code; change it when code
        that ``fn`` calls changes (the source of ``fn`` itself does not cover it).
    """
    points = [dict(p) for p in points]
    if not points:
        raise InvalidParameterError("points must contain at least one parameter set")
    if processes is not None and int(processes) < 1:
        raise InvalidParameterError(f"processes must be >= 1, got {processes}")
    seeds = point_seeds(seed, len(points))
    results: dict[int, PointResult] = {}
    store_dir = Path(store) if store is not None else None
    keys: list[str] = []
    if store_dir is not None:
        identity = _function_identity(fn, version)
        keys = [_point_key(identity, p, s) for p, s in zip(points, seeds)]
        store_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(store_dir)
        for i, key in enumerate(keys):
            path = _store_path(store_dir, i, key)
            res = _load_stored(path, i, points[i], seeds[i], key) if path.exists() else None
            if res is not None and (res.status == "ok" or not retry_failed):
                results[i] = res
    todo = [i for i in range(len(points)) if i not in results]

    def finish(res: PointResult) -> None:
        results[res.index] = res
        if store_dir is not None:
            _save_point(_store_path(store_dir, res.index, keys[res.index]), res, keys[res.index])

    with Progress(len(points), desc) as bar:
        bar.update(len(points) - len(todo))

        def record(res: PointResult) -> None:
            finish(res)
            bar.update()

        def failed(i: int, error: str, seconds: float = 0.0) -> None:
            record(PointResult(i, dict(points[i]), seeds[i], "error", {}, error, seconds))

        if scheduler is not None:
            _run_dask(fn, points, seeds, todo, scheduler, record, failed)
        elif (processes or os.cpu_count() or 1) == 1 or len(todo) <= 1:
            for i in todo:
                record(_evaluate(fn, i, points[i], seeds[i]))
        else:
            run_pool(_evaluate, fn, [(i, points[i], seeds[i]) for i in todo], processes or os.cpu_count() or 1,
                     record, on_death=lambda task, how, seconds: failed(
                         task[0], f"the worker process died ({how}) while evaluating this point", seconds),
                     on_error=lambda task, exc: failed(task[0], f"{type(exc).__name__}: {exc}"))
    return SweepResult(tuple(results[i] for i in range(len(points))))


def _run_dask(fn, points, seeds, todo, scheduler, record, failed) -> None:
    try:
        from distributed import Client, as_completed as dask_completed
    except ImportError:
        raise InvalidParameterError("scheduler= needs dask.distributed: pip install 'theorykit[distributed]'") from None
    client = scheduler if isinstance(scheduler, Client) else Client(scheduler)
    try:
        futures = {client.submit(_evaluate, fn, i, points[i], seeds[i], pure=False): i for i in todo}
        for fut in dask_completed(list(futures)):
            try:
                res = fut.result()
            except Exception as exc:  # e.g. the worker died (KilledWorker): a failed point, not a failed sweep
                failed(futures[fut], f"{type(exc).__name__}: {exc}")
            else:
                record(res)
    finally:
        if client is not scheduler:
            client.close()


def grid_points(**axes: Sequence[float]) -> list[dict[str, float]]:
    """The Cartesian product of named axes as a list of parameter dicts (last axis fastest)."""
    names = list(axes)
    arrays = [np.asarray(axes[n], dtype=float).ravel() for n in names]
    mesh = np.meshgrid(*arrays, indexing="ij")
    return [{n: float(m.flat[i]) for n, m in zip(names, mesh)} for i in range(mesh[0].size)]
