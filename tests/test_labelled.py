"""Labelled results: phase diagrams, basin maps and sweeps as xarray Datasets, and their NetCDF round trip."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from theorykit import make_system
from theorykit.analysis import basin_map, phase_diagram
from theorykit.compile import compile_system
from theorykit.errors import InvalidParameterError
from theorykit.sweep import grid_points, sweep

from sweep_functions import noisy_quadratic, sometimes_fails

xr = pytest.importorskip("xarray")


@pytest.fixture(scope="module")
def pitchfork():
    """x' = a x - b x^3: for a > 0 the state settles at sqrt(a / b), for a < 0 at 0."""
    return compile_system(make_system(["x"], ["a*x - b*x**3"], params=["a", "b"]))


@pytest.fixture(scope="module")
def small_diagram(pitchfork):
    return phase_diagram(pitchfork, {"a": [-1.0, -0.5, 0.5, 1.0], "b": [1.0, 4.0]}, {}, {"x": 0.3},
                         t_final=60.0, progress=False)


def test_phase_diagram_dataset_is_labelled_by_the_swept_parameters(small_diagram):
    ds = small_diagram.to_xarray()
    assert ds["label"].dims == ("a", "b")
    np.testing.assert_array_equal(ds["a"], [-1.0, -0.5, 0.5, 1.0])
    np.testing.assert_array_equal(ds["b"], [1.0, 4.0])
    assert list(ds["state"].values) == ["x"]
    # selection by value gives the closed-form long-time state sqrt(a/b), or 0 below the pitchfork
    assert float(ds["final_state"].sel(a=1.0, b=4.0, state="x")) == pytest.approx(0.5, abs=1e-6)
    assert float(ds["final_state"].sel(a=0.5, b=1.0, state="x")) == pytest.approx(np.sqrt(0.5), abs=1e-6)
    assert abs(float(ds["final_state"].sel(a=-1.0, b=1.0, state="x"))) < 1e-6
    names = ds["label_name"].values
    assert names[int(ds["label"].sel(a=1.0, b=1.0))] == "x"
    assert names[int(ds["label"].sel(a=-0.5, b=4.0))] == "collapse"
    assert float(ds["fraction"].sel(label_name="x")) == pytest.approx(0.5)
    assert json.loads(ds.attrs["base_params"]) == {}
    assert ds.attrs["t_final"] == 60.0 and ds.attrs["kind"] == "PhaseDiagram"
    prov = json.loads(ds.attrs["provenance"])
    assert {"git_commit", "versions", "created"} <= set(prov)


def test_phase_diagram_netcdf_round_trip(small_diagram, tmp_path):
    ds = small_diagram.to_xarray()
    path = tmp_path / "phase.nc"
    ds.to_netcdf(path, engine="scipy")  # NetCDF3 through SciPy: no extra dependency
    with xr.open_dataset(path, engine="scipy") as back:
        back = back.load()
    assert back["label"].dims == ("a", "b")
    for name in ("a", "b", "label", "final_state", "status", "fraction", "y0"):
        np.testing.assert_array_equal(back[name].values, ds[name].values, err_msg=name)
    assert list(back["label_name"].values) == list(small_diagram.label_names)
    assert list(back["state"].values) == ["x"]
    assert back.attrs == ds.attrs
    np.testing.assert_array_equal(back["label"].values, small_diagram.labels)


def test_basin_map_dataset_grid_and_samples():
    well = compile_system(make_system(["x", "y"], ["x - x**3", "-y"]))
    x = np.linspace(-1.5, 1.5, 7)
    y = np.linspace(-1.0, 1.0, 3)
    bm = basin_map(well, {}, {"x": x, "y": y}, t_final=30.0, progress=False)
    ds = bm.to_xarray()
    assert ds["label"].dims == ("x", "y") and ds["final_state"].dims == ("x", "y", "state")
    np.testing.assert_array_equal(ds["x"], x)
    np.testing.assert_array_equal(ds["y0"].sel(state="x").values, np.repeat(x[:, None], 3, axis=1))
    # the attractor is the sign of x0: -1, 0 (the saddle's stable manifold) or +1
    np.testing.assert_allclose(ds["final_state"].sel(state="x").values,
                               np.repeat(np.sign(x)[:, None], 3, axis=1), atol=1e-6)
    assert float(ds["fraction"].sum()) == pytest.approx(1.0)
    y0s = np.array([[0.5, 0.0], [-0.5, 0.0], [0.2, 1.0]])
    sampled = basin_map(well, {}, y0s, t_final=30.0, progress=False).to_xarray()
    assert sampled["label"].dims == ("sample",) and sampled["y0"].dims == ("sample", "state")
    np.testing.assert_array_equal(sampled["y0"].values, y0s)


def test_sweep_on_a_grid_has_one_dimension_per_parameter():
    res = sweep(noisy_quadratic, grid_points(x=[0.0, 1.0, 2.0], z=[5.0, 6.0]), seed=3, processes=1)
    ds = res.to_xarray()
    assert ds["y"].dims == ("x", "z") and ds["path"].dims == ("x", "z", "path_dim0")
    np.testing.assert_array_equal(ds["x"], [0.0, 1.0, 2.0])
    np.testing.assert_array_equal(ds["y"].values.reshape(-1), res.values("y"))
    np.testing.assert_allclose(ds["y"].sel(z=5.0).values, [0.0, 1.0, 4.0], atol=0.05)  # x^2 + 0.01 noise
    assert [int(s) for s in ds["sweep_seed"].values.reshape(-1)] == [p.seed for p in res.points]
    assert set(ds["sweep_status"].values.reshape(-1)) == {"ok"}
    assert ds.attrs["n_failed"] == 0 and json.loads(ds.attrs["parameters"]) == ["x", "z"]


def test_sweep_off_grid_uses_a_point_dimension_and_keeps_failures(tmp_path):
    res = sweep(sometimes_fails, [{"x": 1.0}, {"x": 2.0}, {"x": 3.0}, {"x": 1.0}], processes=1)
    ds = res.to_xarray()
    assert ds["y"].dims == ("point",)
    np.testing.assert_array_equal(ds["x"], [1.0, 2.0, 3.0, 1.0])
    assert list(ds["sweep_status"].values) == ["ok", "error", "non_finite", "ok"]
    assert np.isnan(ds["y"].values[1:3]).all() and ds["y"].values[0] == 1.0
    assert "diverged" in str(ds["sweep_error"].values[1])
    ds.to_netcdf(tmp_path / "sweep.nc", engine="scipy")  # 64-bit seeds are stored as text
    with xr.open_dataset(tmp_path / "sweep.nc", engine="scipy") as back:
        assert list(back["sweep_seed"].values) == [str(p.seed) for p in res.points]


def test_sweep_value_named_like_the_bookkeeping_is_refused():
    from theorykit.sweep import PointResult, SweepResult

    res = SweepResult((PointResult(0, {"x": 1.0}, 1, "ok", {"sweep_status": 1.0}),))
    with pytest.raises(InvalidParameterError, match="sweep_status"):
        res.to_xarray()


def test_missing_xarray_says_how_to_install(small_diagram, monkeypatch):
    monkeypatch.setitem(sys.modules, "xarray", None)  # makes "import xarray" raise ImportError
    with pytest.raises(ImportError, match=r"theorykit\[labels\]"):
        small_diagram.to_xarray()
