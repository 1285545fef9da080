"""The disk cache: private to the user, checked before anything in it is used, never trusted blindly."""

import hashlib
import json
import os
import pickle
import stat

import numpy as np
import pytest

from theorykit import _cache
from theorykit._io import write_json
from theorykit.compile import _compiled, compile_system
from theorykit.derive import cached_derivation, make_system
from theorykit.derive._cached import _MAGIC
from theorykit.errors import CacheWarning
from theorykit.sweep import grid_points, sweep

from sweep_functions import noisy_quadratic

CALLS = []


@cached_derivation
def derived(order):
    CALLS.append(order)
    return make_system(["x"], [f"-k*x**{order}"], ["k"], name=f"derived_{order}")


@pytest.fixture
def fresh(tmp_path, monkeypatch):
    """An empty cache folder, no compiled system remembered in this process, no warning given yet."""
    root = tmp_path / "cache"
    monkeypatch.setenv("THEORYKIT_CACHE_DIR", str(root))
    monkeypatch.setattr(_compiled, "_memo", {})
    monkeypatch.setattr(_cache, "_warned", set())
    CALLS.clear()
    return root


def _decay(name="decay_cached"):
    return make_system(["x"], ["-k*x"], ["k"], name=name)


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_cache_folders_and_files_are_private(fresh):
    csys = compile_system(_decay(), backend="numpy")
    derived(2)
    assert _mode(fresh) == _mode(fresh / "generated") == _mode(fresh / "derivations") == 0o700
    assert _mode(csys.path) == 0o600
    assert {_mode(p) for p in (fresh / "derivations").iterdir()} == {0o600}


def test_an_edited_generated_module_is_generated_again(fresh):
    csys = compile_system(_decay(), backend="numpy")
    text = csys.path.read_text()
    assert "out[0] = -p_k*y_x" in text
    csys.path.write_text(text.replace("out[0] = -p_k*y_x", "out[0] = 42.0"))
    _compiled._memo.clear()
    with pytest.warns(CacheWarning, match="edited"):
        again = compile_system(_decay(), backend="numpy")
    np.testing.assert_allclose(again.rhs(0.0, [2.0], [3.0]), [-6.0])
    assert again.path.read_text() == text


def test_a_module_of_another_system_under_the_name_is_not_used(fresh):
    a = compile_system(make_system(["x"], ["-k*x"], ["k"], name="first"), backend="numpy")
    b = compile_system(make_system(["x"], ["k*x"], ["k"], name="second"), backend="numpy")
    b.path.write_text(a.path.read_text())  # intact, sealed, but for the other system
    _compiled._memo.clear()
    with pytest.warns(CacheWarning, match="another system"):
        again = compile_system(make_system(["x"], ["k*x"], ["k"], name="second"), backend="numpy")
    np.testing.assert_allclose(again.rhs(0.0, [2.0], [3.0]), [6.0])


def _entry(order):
    (path,) = [p for p in (_cache.cache_root() / "derivations").iterdir() if f"-k*x**{order}" in str(
        pickle.loads(p.read_bytes().split(b"\n", 2)[2]).rhs)]
    return path


def test_a_corrupt_cached_derivation_is_derived_again(fresh):
    first = derived(3)
    path = _entry(3)
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.warns(CacheWarning, match="checksum"):
        assert derived(3) == first
    assert CALLS == [3, 3]
    assert derived(3) == first and CALLS == [3, 3]  # rewritten intact


def test_a_foreign_cached_derivation_is_not_used(fresh):
    derived(3)
    five = derived(5)
    _entry(5).write_bytes(_entry(3).read_bytes())  # another derivation's (intact) file under this name
    with pytest.warns(CacheWarning, match="another derivation"):
        assert derived(5) == five
    assert CALLS == [3, 5, 5]


def test_a_cached_derivation_of_the_wrong_type_is_not_used(fresh):
    good = derived(4)
    path = _entry(4)
    header = json.loads(path.read_bytes()[len(_MAGIC):].split(b"\n", 1)[0])
    payload = pickle.dumps({"not": "a system"})
    header["sha256"] = hashlib.sha256(payload).hexdigest()
    path.write_bytes(_MAGIC + json.dumps(header).encode() + b"\n" + payload)
    with pytest.warns(CacheWarning, match="holds a builtins.dict"):
        assert derived(4) == good
    assert CALLS == [4, 4]


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_an_uncreatable_cache_falls_back_to_memory(backend, fresh, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("THEORYKIT_CACHE_DIR", str(blocker / "cache"))
    with pytest.warns(CacheWarning, match="cannot create"):
        csys = compile_system(_decay(f"uncreatable_{backend}"), backend=backend)
    assert csys.path is None
    np.testing.assert_allclose(csys.rhs(0.0, [2.0], [3.0]), [-6.0])
    assert derived(2) == derived(2) and CALLS == [2, 2]  # no disk cache: derived each time, no error


def test_a_cache_others_can_write_to_is_not_used(fresh):
    fresh.mkdir()
    os.chmod(fresh, 0o777)
    with pytest.warns(CacheWarning, match="writable by other users"):
        csys = compile_system(_decay("shared_cache"), backend="numpy")
    assert csys.path is None and list(fresh.iterdir()) == [] and _mode(fresh) == 0o777


def test_a_cache_of_another_user_is_not_used(fresh, monkeypatch):
    if os.geteuid() == 0:
        fresh.mkdir(mode=0o700)
        os.chown(fresh, 65534, 65534)
    else:
        monkeypatch.setenv("THEORYKIT_CACHE_DIR", "/")
    with pytest.warns(CacheWarning, match="belongs to another user"):
        assert compile_system(_decay("foreign_cache"), backend="numpy").path is None


def test_a_read_only_cache_falls_back_to_memory(fresh, monkeypatch):
    fresh.mkdir(mode=0o700)
    if os.geteuid() == 0:  # root may write anywhere: make the check see what a user would
        real_access = os.access
        monkeypatch.setattr(os, "access", lambda p, mode: False if mode & os.W_OK else real_access(p, mode))
    else:
        os.chmod(fresh, 0o500)
    with pytest.warns(CacheWarning, match="read-only"):
        csys = compile_system(_decay("read_only_cache"), backend="numpy")
    assert csys.path is None
    np.testing.assert_allclose(csys.rhs(0.0, [2.0], [3.0]), [-6.0])


def test_the_process_umask_is_never_changed(fresh, tmp_path, monkeypatch):
    """Setting the umask to read it races with other threads creating files: it is never called."""
    def no_umask(*args):
        raise AssertionError("os.umask was called")

    monkeypatch.setattr(os, "umask", no_umask)
    compile_system(_decay("umask_check"), backend="numpy")
    derived(6)
    write_json(tmp_path / "result.json", {"a": 1})
    sweep(noisy_quadratic, grid_points(x=[1.0, 2.0]), processes=1, store=tmp_path / "store")
