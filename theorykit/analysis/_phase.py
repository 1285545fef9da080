"""Phase diagrams over two parameters and basins of attraction, both as one ensemble integration.

Every grid point (or initial condition) is one trajectory of :func:`theorykit.solve.solve_ensemble`,
integrated to ``t_final`` in chunks under a progress bar; a ``classify`` callable turns the final states
``[n, n_states]`` into integer labels that index ``labels``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .._checks import check_finite_array, check_int, check_range
from ..errors import InvalidParameterError
from ._fixed_points import _frozen

Classifier = Callable[[np.ndarray], np.ndarray]


# ---------------------------------------------------------------------------------------------- classifiers
def support_classifier(state_names: Sequence[str], *, tol: float = 1e-3, max_abs: float = 1e6,
                       coarse: bool = False) -> tuple[Classifier, tuple[str, ...]]:
    """Label final states by which states are non-negligible (``|y_i| > tol``).

    Labels: ``"collapse"`` (every ``|y_i| <= tol``), the ``+``-joined names of the non-negligible states
    (``"p1"``, ``"p1+p2"``, ...), and ``"diverged"`` (non-finite, ``max |y| > max_abs``, or a failed run). With
    ``coarse=True``, and always for more than 8 states, the labels are ``("collapse", "nonzero",
    "diverged")`` (use it for oscillating attractors, whose final state has a phase-dependent support).

    Returns
    -------
    (classify, labels)
        ``classify(final_states: float64[n, n_states]) -> int64[n]`` indexes ``labels``.
    """
    names = tuple(state_names)
    tol = check_range("tol", tol, 0.0, low_open=True)
    max_abs = check_range("max_abs", max_abs, tol, low_open=True)
    n = len(names)
    fine = n <= 8 and not coarse
    if fine:
        labels = ["collapse"] + ["+".join(nm for j, nm in enumerate(names) if mask >> j & 1)
                                 for mask in range(1, 2 ** n)] + ["diverged"]
    else:
        labels = ["collapse", "nonzero", "diverged"]
    diverged = len(labels) - 1
    weights = 1 << np.arange(n, dtype=np.int64)

    def classify(final: np.ndarray) -> np.ndarray:
        final = np.asarray(final, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            big = ~np.all(np.isfinite(final), axis=1) | (np.nanmax(np.abs(final), axis=1, initial=0.0) > max_abs)
            on = np.abs(np.nan_to_num(final)) > tol
        out = (on.astype(np.int64) @ weights) if fine else on.any(axis=1).astype(np.int64)
        out[big] = diverged
        return out

    return classify, tuple(labels)


def nearest_attractor_classifier(points: Any, names: Sequence[str] | None = None, *, tol: float = 1e-2,
                                 max_abs: float = 1e6) -> tuple[Classifier, tuple[str, ...]]:
    """Label final states by the attractor (e.g. a stable fixed point) they ended next to.

    Parameters
    ----------
    points : float64[k, n_states]
        The attractors.
    names : sequence of k str, optional
        Their labels (default ``"A0"``, ``"A1"``, ...).
    tol : float
        A final state within ``tol * (1 + |point|)`` (max norm) of a point gets its label; otherwise
        ``"other"`` (``"diverged"`` when non-finite, ``max |y| > max_abs``, or the run failed).
    """
    pts = check_finite_array("points", points, ndim=2)
    names = tuple(names) if names is not None else tuple(f"A{i}" for i in range(pts.shape[0]))
    if len(names) != pts.shape[0]:
        raise InvalidParameterError(f"names has {len(names)} entries for {pts.shape[0]} points")
    tol = check_range("tol", tol, 0.0, low_open=True)
    labels = names + ("other", "diverged")
    radius = tol * (1.0 + np.max(np.abs(pts), axis=1)) if pts.size else np.empty(0)

    def classify(final: np.ndarray) -> np.ndarray:
        final = np.asarray(final, dtype=np.float64)
        out = np.full(final.shape[0], len(names), dtype=np.int64)
        if pts.shape[0]:
            with np.errstate(invalid="ignore"):
                d = np.max(np.abs(final[:, None, :] - pts[None, :, :]), axis=2)
            d = np.where(np.isfinite(d), d, np.inf)
            k = np.argmin(d, axis=1)
            hit = d[np.arange(final.shape[0]), k] <= radius[k]
            out[hit] = k[hit]
        with np.errstate(invalid="ignore"):
            big = ~np.all(np.isfinite(final), axis=1) | (np.nanmax(np.abs(final), axis=1, initial=0.0) > max_abs)
        out[big] = len(names) + 1
        return out

    return classify, labels


# ---------------------------------------------------------------------------------------------- results
def _label_meta(labels: np.ndarray, names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    counts = np.bincount(labels.reshape(-1), minlength=len(names)).astype(np.float64)
    n = labels.size
    frac = counts / n
    se = np.sqrt(frac * (1.0 - frac) / max(n, 1))
    return frac, se


@dataclass(frozen=True, eq=False)
class PhaseDiagram:
    """Labels of the long-time state over a 2-D parameter grid.

    Arrays use ``"ij"`` indexing: axis 0 runs over ``x`` (the first grid parameter), axis 1 over ``y``.

    Attributes
    ----------
    axes : (str, str)
        The two grid parameters.
    x : float64[n_x]
    y : float64[n_y]
    labels : int64[n_x, n_y]
        Index into ``label_names``.
    label_names : tuple of str
    final_states : float64[n_x, n_y, n_states]
    status : int64[n_x, n_y]
        Solver status codes (:class:`theorykit.solve.Status`).
    base_params : dict
        The other parameters.
    y0 : float64[n_states]
    t_final : float
    state_names : tuple of str
    """

    axes: tuple[str, str]
    x: np.ndarray
    y: np.ndarray
    labels: np.ndarray
    label_names: tuple[str, ...]
    final_states: np.ndarray
    status: np.ndarray
    base_params: Mapping[str, float] = field(default_factory=dict)
    y0: np.ndarray = field(default_factory=lambda: np.empty(0))
    t_final: float = np.nan
    state_names: tuple[str, ...] = ()

    def fractions(self) -> dict[str, float]:
        """Share of grid points per label."""
        frac, _ = _label_meta(self.labels, self.label_names)
        return dict(zip(self.label_names, frac.tolist()))

    def mask(self, label: str) -> np.ndarray:
        """bool[n_x, n_y]: where the label is ``label``."""
        if label not in self.label_names:
            raise KeyError(f"unknown label {label!r}; labels are {list(self.label_names)}")
        return self.labels == self.label_names.index(label)

    def save(self, stem) -> tuple[Path, Path]:
        """Write ``<stem>.npz`` (arrays) and ``<stem>.json`` (axes, labels, parameters, provenance)."""
        from .._io import save_result

        arrays = {"x": self.x, "y": self.y, "labels": self.labels, "final_states": self.final_states,
                  "status": self.status, "y0": self.y0}
        meta = {"kind": "PhaseDiagram", "axes": list(self.axes), "label_names": list(self.label_names),
                "fractions": self.fractions(), "base_params": dict(self.base_params), "t_final": self.t_final,
                "state_names": list(self.state_names)}
        return save_result(stem, arrays, meta)

    def to_xarray(self):
        """An ``xarray.Dataset`` with dimensions named after ``axes`` (needs ``theorykit[labels]``).

        Variables: ``label`` (index into the ``label_name`` coordinate), ``final_state`` (over ``state``),
        ``status``, ``fraction`` (per label) and ``y0``; attributes: ``base_params``, ``t_final`` and the
        provenance record (JSON text: ``json.loads(ds.attrs["provenance"])``).
        """
        from .._labelled import phase_diagram_dataset

        return phase_diagram_dataset(self)


@dataclass(frozen=True, eq=False)
class BasinMap:
    """Which attractor (label) each initial condition ends in, with each label's share.

    Attributes
    ----------
    labels : int64[n_a, n_b] (grid over two states) or int64[n] (sampled initial conditions)
    label_names : tuple of str
    y0s : float64[n, n_states]
        The initial conditions, in ``labels.reshape(-1)`` order.
    fractions : float64[n_labels]
        Share of initial conditions per label.
    stderr : float64[n_labels]
        Binomial standard error ``sqrt(f (1 - f) / n)`` of each share.
    final_states : float64[n, n_states]
    status : int64[n]
    axes : tuple of str
        The two gridded states (empty for sampled initial conditions).
    grid : tuple of float64 arrays
        Their values (``labels`` axis 0 over ``grid[0]``, axis 1 over ``grid[1]``).
    params : dict
    t_final : float
    state_names : tuple of str
    """

    labels: np.ndarray
    label_names: tuple[str, ...]
    y0s: np.ndarray
    fractions: np.ndarray
    stderr: np.ndarray
    final_states: np.ndarray
    status: np.ndarray
    axes: tuple[str, ...] = ()
    grid: tuple[np.ndarray, ...] = ()
    params: Mapping[str, float] = field(default_factory=dict)
    t_final: float = np.nan
    state_names: tuple[str, ...] = ()

    def fraction(self, label: str) -> tuple[float, float]:
        """(share, standard error) of ``label``."""
        if label not in self.label_names:
            raise KeyError(f"unknown label {label!r}; labels are {list(self.label_names)}")
        k = self.label_names.index(label)
        return float(self.fractions[k]), float(self.stderr[k])

    def save(self, stem) -> tuple[Path, Path]:
        """Write ``<stem>.npz`` (arrays) and ``<stem>.json`` (labels, shares, parameters, provenance)."""
        from .._io import save_result

        arrays = {"labels": self.labels, "y0s": self.y0s, "fractions": self.fractions, "stderr": self.stderr,
                  "final_states": self.final_states, "status": self.status}
        arrays.update({f"grid{i}": g for i, g in enumerate(self.grid)})
        meta = {"kind": "BasinMap", "label_names": list(self.label_names), "axes": list(self.axes),
                "fractions": dict(zip(self.label_names, self.fractions.tolist())),
                "stderr": dict(zip(self.label_names, self.stderr.tolist())),
                "params": dict(self.params), "t_final": self.t_final, "state_names": list(self.state_names)}
        return save_result(stem, arrays, meta)

    def to_xarray(self):
        """An ``xarray.Dataset`` (needs ``theorykit[labels]``): over the initial values of the two gridded
        states (dimensions named after them), or over ``sample`` for sampled initial conditions.

        Variables: ``label`` (index into the ``label_name`` coordinate), ``y0`` and ``final_state`` (over
        ``state``), ``status``, ``fraction`` and ``stderr`` (per label); attributes: ``params``,
        ``t_final`` and the provenance record (JSON text).
        """
        from .._labelled import basin_map_dataset

        return basin_map_dataset(self)


def load_result(stem):
    """Load a :class:`PhaseDiagram`, :class:`BasinMap`, :class:`~theorykit.analysis.Branch`,
    :class:`~theorykit.analysis.BifurcationCurve` or :class:`~theorykit.analysis.CycleBranch` saved with
    ``.save(stem)``."""
    stem = Path(stem)
    js = stem.with_suffix(".json")
    if not js.exists():
        raise InvalidParameterError(f"no result file {js}")
    meta = json.loads(js.read_text())
    kind = meta.get("kind")
    if kind == "Branch":
        from ._continuation import Branch

        return Branch.load(stem)
    if kind == "BifurcationCurve":
        from ._curves import BifurcationCurve

        return BifurcationCurve.load(stem)
    if kind == "CycleBranch":
        from ._cycles import CycleBranch

        return CycleBranch.load(stem)
    with np.load(stem.with_suffix(".npz")) as z:
        a = {k: z[k] for k in z.files}
    if kind == "PhaseDiagram":
        return PhaseDiagram(tuple(meta["axes"]), _frozen(a["x"]), _frozen(a["y"]), _frozen(a["labels"], np.int64),
                            tuple(meta["label_names"]), _frozen(a["final_states"]), _frozen(a["status"], np.int64),
                            meta["base_params"], _frozen(a["y0"]), float(meta["t_final"]), tuple(meta["state_names"]))
    if kind == "BasinMap":
        grid = tuple(_frozen(a[f"grid{i}"]) for i in range(len(meta["axes"])))
        return BasinMap(_frozen(a["labels"], np.int64), tuple(meta["label_names"]), _frozen(a["y0s"]),
                        _frozen(a["fractions"]), _frozen(a["stderr"]), _frozen(a["final_states"]),
                        _frozen(a["status"], np.int64), tuple(meta["axes"]), grid, meta["params"],
                        float(meta["t_final"]), tuple(meta["state_names"]))
    raise InvalidParameterError(f"{js} holds no analysis result (kind={kind!r})")


# ---------------------------------------------------------------------------------------------- drivers
def _grid_axes(grid: Mapping[str, Any], allowed: Sequence[str], what: str) -> tuple[tuple[str, str], list[np.ndarray]]:
    if not isinstance(grid, Mapping) or len(grid) != 2:
        raise InvalidParameterError(f"grid must map exactly two {what} names to 1-d arrays, got "
                                    f"{list(grid) if isinstance(grid, Mapping) else type(grid).__name__}")
    names = tuple(str(k) for k in grid)
    unknown = [k for k in names if k not in allowed]
    if unknown:
        raise InvalidParameterError(f"grid: {unknown} are not {what}s; choose from {list(allowed)}")
    arrays = []
    for k in names:
        arr = check_finite_array(f"grid[{k!r}]", grid[k], ndim=1)
        if arr.size < 1:
            raise InvalidParameterError(f"grid[{k!r}] must not be empty")
        arrays.append(arr)
    return names, arrays  # type: ignore[return-value]


def _run(csys, y0s, params, t_final: float, classify: Classifier | None, labels: Sequence[str] | None,
         chunk_size: int | None, progress: bool, solve_options: Mapping[str, Any], scheduler: Any = None,
         processes: int | None = None):
    """Integrate the ensemble, classify its final states; returns (labels, names, final, status)."""
    from ..solve import Status, solve_ensemble

    t_final = check_range("t_final", t_final, 0.0, low_open=True)
    if classify is None:
        classify, default = support_classifier(csys.state_names)
        labels = tuple(labels) if labels is not None else default
    elif not callable(classify):
        raise InvalidParameterError(f"classify must be a callable(final_states) -> int labels, got {classify!r}")
    n = max(np.shape(y0s)[0] if np.ndim(y0s) == 2 else 1, np.shape(params)[0] if np.ndim(params) == 2 else 1)
    if chunk_size is None:
        chunk_size = max(1, min(n, max(1000, -(-n // 20))))
    chunk_size = check_int("chunk_size", chunk_size, 1)
    opts = {"rtol": 1e-6, "atol": 1e-9, **dict(solve_options)}
    if scheduler is None and (processes is None or processes == 1):
        ens = solve_ensemble(csys, y0s, (0.0, t_final), params, chunk_size=chunk_size, progress=progress, **opts)
        final, status = np.asarray(ens.final, dtype=np.float64), np.asarray(ens.status, dtype=np.int64)
    else:
        final, status = _run_distributed(csys, y0s, params, n, t_final, chunk_size, opts, scheduler, processes)
    # a run that failed (non-finite values, step-size underflow, ...) has no long-time state to classify:
    # the classifiers see nan and label it "diverged"; ``status`` says what happened
    failed = (status != Status.SUCCESS) & (status != Status.EVENT)
    lab = np.asarray(classify(np.where(failed[:, None], np.nan, final)))
    if lab.shape != (final.shape[0],) or not np.issubdtype(lab.dtype, np.integer):
        raise InvalidParameterError(f"classify must return an int array of shape ({final.shape[0]},), "
                                    f"got dtype {lab.dtype} shape {lab.shape}")
    if labels is None:
        labels = tuple(str(i) for i in range(int(lab.max(initial=-1)) + 1))
    labels = tuple(str(x) for x in labels)
    if lab.size and (lab.min() < 0 or lab.max() >= len(labels)):
        raise InvalidParameterError(f"classify returned labels in [{lab.min()}, {lab.max()}] but only "
                                    f"{len(labels)} label names {list(labels)} were given")
    return lab.astype(np.int64), labels, final, status


@dataclass(frozen=True)
class _NumericSystem:
    """The numeric interface of a compiled system, rebuilt in a worker from its generated module: no SymPy,
    no derivation, only the functions :func:`~theorykit.solve.solve_ensemble` calls."""

    backend: str
    state_names: tuple[str, ...]
    param_names: tuple[str, ...]
    n_noise: int
    rhs_into: Any
    jac_into: Any
    observed_into: Any
    diffusion_into: Any

    @property
    def n_states(self) -> int:
        return len(self.state_names)

    @property
    def n_params(self) -> int:
        return len(self.param_names)


_loaded: dict[str, _NumericSystem] = {}


def _numeric_recipe(csys) -> dict[str, Any]:
    """What a worker needs to rebuild ``csys``'s numeric interface: its generated module (name and source)."""
    if getattr(csys, "path", None) is None:
        csys.rebuild_recipe()  # hand-written functions: raises the error that says to run in this process
        raise InvalidParameterError(f"{csys!r} has no generated module to send to other processes")
    return {"module": Path(csys.path).stem, "source": csys.source, "backend": csys.backend,
            "state_names": tuple(csys.state_names), "param_names": tuple(csys.param_names),
            "n_noise": int(getattr(csys, "n_noise", 0) or 0)}


def _load_numeric(recipe: Mapping[str, Any]) -> _NumericSystem:
    """Import the generated module of ``recipe`` from this process's code cache (writing the shipped source
    there first if the file is missing or differs) and wrap its functions; memoised per process."""
    import importlib.util
    import sys

    from .._cache import cache_dir
    from .._io import atomic_path

    name = recipe["module"]
    if name not in _loaded:
        path = cache_dir("generated") / f"{name}.py"
        if not path.exists() or path.read_text() != recipe["source"]:
            with atomic_path(path) as tmp:
                tmp.write_text(recipe["source"])
        module = sys.modules.get(name)
        if module is None:
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
        _loaded[name] = _NumericSystem(recipe["backend"], recipe["state_names"], recipe["param_names"],
                                       recipe["n_noise"], module.rhs_into, getattr(module, "jac_into", None),
                                       module.observed_into, getattr(module, "diffusion_into", None))
    return _loaded[name]


def _ensemble_chunk(task: Mapping[str, Any], seed: int) -> dict[str, np.ndarray]:
    """One chunk of a distributed ensemble (runs in a worker, from the generated module; no SymPy there)."""
    from ..solve import solve_ensemble

    ens = solve_ensemble(_load_numeric(task["recipe"]), task["y0s"], (0.0, task["t_final"]), task["params"],
                         progress=False, **task["options"])
    return {"final": np.asarray(ens.final, dtype=np.float64), "status": np.asarray(ens.status, dtype=np.int64)}


def _run_distributed(csys, y0s, params, n: int, t_final: float, chunk_size: int, opts: Mapping[str, Any],
                     scheduler: Any, processes: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Split the ensemble into chunks and run them through :func:`theorykit.sweep.sweep` (process pool
    or dask cluster); results are identical to the single-process ensemble."""
    from ..sweep import sweep

    recipe = _numeric_recipe(csys)
    Y = np.broadcast_to(np.asarray(y0s, dtype=np.float64).reshape(-1, csys.n_states), (n, csys.n_states))
    P = np.broadcast_to(np.asarray(params, dtype=np.float64).reshape(-1, csys.n_params), (n, csys.n_params))
    tasks = [{"recipe": recipe, "y0s": np.array(Y[i:i + chunk_size]), "params": np.array(P[i:i + chunk_size]),
              "t_final": t_final, "options": dict(opts)} for i in range(0, n, chunk_size)]
    res = sweep(_ensemble_chunk, tasks, processes=processes, scheduler=scheduler, desc="ensemble chunks")
    if res.failed:
        raise InvalidParameterError("distributed ensemble failed: " + res.summary())
    return (np.concatenate([p.values["final"] for p in res.points]),
            np.concatenate([p.values["status"] for p in res.points]))


def _check_grid_memory(n: int, csys, solve_options: Mapping[str, Any]) -> None:
    """Refuse a grid whose ensemble would not fit in memory before building its inputs."""
    from ..solve import check_memory, ensemble_bytes

    n_t = np.size(solve_options["t_eval"]) if solve_options.get("t_eval") is not None else 2
    check_memory(ensemble_bytes(n, n_t, csys.n_states, csys.n_params), solve_options.get("max_memory"),
                 f"a grid of {n} points", "use a coarser grid or split it into several calls")


def phase_diagram(csys, grid: Mapping[str, Any], base_params: Any = None, y0: Any = None, *, t_final: float,
                  classify: Classifier | None = None, labels: Sequence[str] | None = None,
                  chunk_size: int | None = None, progress: bool = True, scheduler: Any = None,
                  processes: int | None = None, **solve_options: Any) -> PhaseDiagram:
    """Classify the long-time state over a 2-D parameter grid with one ensemble integration.

    Parameters
    ----------
    csys : CompiledSystem
    grid : mapping of two parameter names -> float64[n_x], float64[n_y]
        The first name is the x axis (array axis 0), the second the y axis (axis 1).
    base_params : mapping or float64[n_params]
        Values of every parameter (the gridded ones are overwritten); a mapping may omit the gridded ones.
    y0 : mapping or float64[n_states]
        The initial state of every run (required).
    t_final : float
        Integration time.
    classify : callable ``final_states[n, n_states] -> int64[n]``, optional
        Default :func:`support_classifier` (which states survive).
    labels : sequence of str, optional
        Names of the classify's integer labels (default ``"0"``, ``"1"``, ... or the default classifier's).
    chunk_size : int, optional
        Trajectories per ensemble kernel call (progress granularity; default about 20 chunks).
    progress : bool
        Draw a progress bar (on a terminal).
    scheduler, processes : optional
        Run the chunks through :func:`theorykit.sweep.sweep` on a ``dask.distributed`` scheduler (address or
        client) or a local pool of ``processes`` workers instead of in this process; same results.
    **solve_options
        Passed to :func:`~theorykit.solve.solve_ensemble` (``method``, ``rtol`` (default 1e-6), ``atol``
        (default 1e-9), ``max_steps``, ``blow_up``, ``max_memory``, ...). A grid whose ensemble would not fit
        in memory is refused before anything is allocated.

    Returns
    -------
    PhaseDiagram
    """
    (ax, ay), (x, y) = _grid_axes(grid, csys.param_names, "parameter")
    if ax == ay:
        raise InvalidParameterError("grid needs two different parameters")
    if y0 is None:
        raise InvalidParameterError("y0: give the initial state of the runs (mapping by state name or array)")
    y0v = csys.pack_state(y0)
    _check_grid_memory(x.size * y.size, csys, solve_options)
    if isinstance(base_params, Mapping):
        base = {**{ax: float(x[0]), ay: float(y[0])}, **dict(base_params)}
        p0 = csys.pack_params(base)
    else:
        p0 = csys.pack_params(base_params)
    P = np.tile(p0, (x.size * y.size, 1))
    X, Y = np.meshgrid(x, y, indexing="ij")
    P[:, csys.param_names.index(ax)] = X.reshape(-1)
    P[:, csys.param_names.index(ay)] = Y.reshape(-1)
    lab, names, final, status = _run(csys, y0v, P, t_final, classify, labels, chunk_size, progress, solve_options,
                                     scheduler, processes)
    shape = (x.size, y.size)
    others = {k: float(v) for k, v in zip(csys.param_names, p0) if k not in (ax, ay)}
    return PhaseDiagram((ax, ay), _frozen(x), _frozen(y), _frozen(lab.reshape(shape), np.int64), names,
                        _frozen(final.reshape(shape + (csys.n_states,))), _frozen(status.reshape(shape), np.int64),
                        others, _frozen(y0v), float(t_final), csys.state_names)


def basin_map(csys, params: Any, grid: Any, *, t_final: float, classify: Classifier | None = None,
              labels: Sequence[str] | None = None, base_y0: Any = None, chunk_size: int | None = None,
              progress: bool = True, scheduler: Any = None, processes: int | None = None,
              **solve_options: Any) -> BasinMap:
    """Basins of attraction: integrate many initial conditions and classify where each one ends.

    Parameters
    ----------
    csys : CompiledSystem
    params : mapping or float64[n_params]
    grid : mapping of two state names -> float64[n_a], float64[n_b], or float64[n, n_states]
        A grid over two states (the others from ``base_y0``), or sampled initial conditions.
    t_final : float
    classify : callable ``final_states[n, n_states] -> int64[n]``, optional
        E.g. :func:`nearest_attractor_classifier` of the stable fixed points; default
        :func:`support_classifier`.
    labels : sequence of str, optional
    base_y0 : mapping or float64[n_states], optional
        The non-gridded states (default zeros).
    chunk_size, progress, scheduler, processes, **solve_options
        As in :func:`phase_diagram`.

    Returns
    -------
    BasinMap
        With each label's share and its binomial standard error.
    """
    p = csys.pack_params(params)
    if isinstance(grid, Mapping):
        (sa, sb), (a, b) = _grid_axes(grid, csys.state_names, "state")
        if sa == sb:
            raise InvalidParameterError("grid needs two different states")
        base = np.zeros(csys.n_states) if base_y0 is None else csys.pack_state(base_y0)
        _check_grid_memory(a.size * b.size, csys, solve_options)
        A, B = np.meshgrid(a, b, indexing="ij")
        Y0 = np.tile(base, (A.size, 1))
        Y0[:, csys.state_names.index(sa)] = A.reshape(-1)
        Y0[:, csys.state_names.index(sb)] = B.reshape(-1)
        shape: tuple[int, ...] = A.shape
        axes: tuple[str, ...] = (sa, sb)
        gvals: tuple[np.ndarray, ...] = (_frozen(a), _frozen(b))
    else:
        Y0 = check_finite_array("grid (initial conditions)", grid, ndim=2)
        if Y0.shape[1] != csys.n_states or Y0.shape[0] < 1:
            raise InvalidParameterError(f"initial conditions must have shape [n >= 1, {csys.n_states}], got {Y0.shape}")
        shape, axes, gvals = (Y0.shape[0],), (), ()
    lab, names, final, status = _run(csys, Y0, p, t_final, classify, labels, chunk_size, progress, solve_options,
                                     scheduler, processes)
    frac, se = _label_meta(lab, names)
    return BasinMap(_frozen(lab.reshape(shape), np.int64), names, _frozen(Y0), _frozen(frac), _frozen(se),
                    _frozen(final), _frozen(status, np.int64), axes, gvals,
                    dict(zip(csys.param_names, p.tolist())), float(t_final), csys.state_names)


__all__ = ["PhaseDiagram", "BasinMap", "phase_diagram", "basin_map", "load_result", "support_classifier",
           "nearest_attractor_classifier"]
