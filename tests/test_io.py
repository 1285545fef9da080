"""Atomic result files: complete or absent, never half-written, with the usual permissions."""

import json
import os
import stat

import numpy as np
import pytest

from theorykit._io import atomic_path, save_result, write_json


def test_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("{half")
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_existing_file_survives_a_failed_rewrite(tmp_path):
    target = write_json(tmp_path / "r.json", {"a": 1})
    with pytest.raises(ValueError):
        with atomic_path(target) as tmp:
            tmp.write_text("garbage")
            raise ValueError
    assert json.loads(target.read_text()) == {"a": 1}


def test_save_result_writes_arrays_meta_and_provenance(tmp_path):
    npz, js = save_result(tmp_path / "run", {"y": np.arange(3.0)}, {"seed": 3, "x": np.float64(np.nan)})
    assert np.array_equal(np.load(npz)["y"], [0.0, 1.0, 2.0])
    meta = json.loads(js.read_text())
    assert meta["seed"] == 3 and meta["x"] == "nan" and "versions" in meta["provenance"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(js).st_mode) == 0o666 & ~umask  # not mkstemp's private 0600
