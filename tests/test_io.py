"""Atomic result files: complete or absent, never half-written, with the usual permissions."""

import json
import os
import stat

import numpy as np
import pytest

from theorykit._io import atomic_path, remove_stale_temporaries, save_result, write_json


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
    assert stat.S_IMODE(os.stat(js).st_mode) == 0o666 & ~_umask()  # not a temporary file's private 0600


def _umask():
    """The process umask, read without setting it (Linux)."""
    try:
        status = open("/proc/self/status").read()
    except OSError:
        pytest.skip("needs /proc/self/status")
    return int(status.split("Umask:")[1].split()[0], 8)


def test_data_reach_the_disk_before_the_rename(tmp_path, monkeypatch):
    if not os.path.exists("/proc/self/fd"):
        pytest.skip("needs /proc/self/fd")
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}"))),
                                                 real_fsync(fd)))
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append(("replace", str(a))), real_replace(a, b)))
    write_json(tmp_path / "r.json", {"a": 1})
    (replaced,) = [p for what, p in events if what == "replace"]
    assert events.index(("fsync", replaced)) < events.index(("replace", replaced))
    assert events[-1] == ("fsync", str(tmp_path))  # the rename itself is flushed too


def test_temporaries_of_dead_processes_are_removed(tmp_path):
    """A writer killed inside atomic_path leaves its temporary file; it is recognised and removed, while
    a live writer's file is kept."""
    import subprocess
    import sys

    code = ("import os, sys\nfrom theorykit._io import atomic_path\n"
            "with atomic_path(sys.argv[1]) as tmp:\n    tmp.write_text('half')\n    os._exit(9)\n")
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "r.json")])
    (left,) = tmp_path.iterdir()
    live = tmp_path / left.name.replace(left.name.split("-")[1], str(os.getpid()))
    live.write_text("being written")
    assert remove_stale_temporaries(tmp_path) == [left]
    assert list(tmp_path.iterdir()) == [live]
