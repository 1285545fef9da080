"""Version and commit: known from a checkout and from every installed copy (recorded at build time)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

import theorykit
from theorykit import _io
from theorykit.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _head(cwd: Path) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=30)
    except OSError:
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _is_checkout_top(path: Path) -> bool:
    out = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=path, capture_output=True, text=True)
    return out.returncode == 0 and Path(out.stdout.strip()).resolve() == path.resolve()


needs_checkout = pytest.mark.skipif(shutil.which("git") is None or not _is_checkout_top(ROOT),
                                    reason="the tests run from a git checkout of theorykit")


def test_version_is_a_version_string():
    assert theorykit.__version__ and theorykit.__version__ != "0+unknown"


@needs_checkout
def test_provenance_names_the_commit_of_this_copy():
    prov = _io.provenance()
    expected = _head(Path(theorykit.__file__).resolve().parents[1]) if prov["git_commit_from"] == "checkout" \
        else prov["git_commit"]
    assert prov["git_commit"] is not None and len(prov["git_commit"]) == 40
    assert prov["git_commit"] == expected
    assert prov["versions"]["theorykit"] == theorykit.__version__


def test_installed_copy_reports_the_commit_recorded_at_build(monkeypatch):
    """Outside a checkout the record that setup.py wrote answers, whatever git says about the folder."""
    monkeypatch.setattr(_io, "_git", lambda cwd, *args: None)  # no checkout around the package
    monkeypatch.delattr(theorykit, "_build_info", raising=False)  # a real record imported earlier
    monkeypatch.setitem(sys.modules, "theorykit._build_info", types.SimpleNamespace(commit="ab" * 20, dirty=False))
    assert _io.source_commit() == {"git_commit": "ab" * 20, "git_dirty": False, "git_commit_from": "build"}
    assert _io.version_text() == f"theorykit {theorykit.__version__} (commit {'ab' * 20}; recorded at build time)"


def test_unknown_commit_is_said_plainly(monkeypatch):
    monkeypatch.setattr(_io, "_git", lambda cwd, *args: None)
    monkeypatch.delattr(theorykit, "_build_info", raising=False)
    monkeypatch.setitem(sys.modules, "theorykit._build_info", None)  # no record: import fails
    assert _io.source_commit()["git_commit"] is None
    assert _io.version_text().endswith("(commit unknown)")


def test_version_flag_prints_version_and_commit(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    out = capsys.readouterr().out.strip()
    assert out == _io.version_text()
    assert out.startswith(f"theorykit {theorykit.__version__} (commit ")


def _clone(tmp_path: Path) -> tuple[Path, str]:
    clone = tmp_path / "src"
    subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(ROOT), str(clone)], check=True, timeout=300)
    return clone, _head(clone)


def _installed_provenance(site: Path, tmp_path: Path) -> tuple[dict, str]:
    """results.json's provenance and ``theorykit --version`` of the copy installed in ``site``."""
    script = ("import theorykit._io as io, theorykit.report as r\n"
              "io.write_json('results.json', r.results_record([], {'mode': 'quick', 'seed': 0}, 0.0))\n"
              "from theorykit.cli import main\n"
              "main(['--version'])\n")
    env = {**os.environ, "PYTHONPATH": str(site)}
    run = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    return json.loads((tmp_path / "results.json").read_text())["provenance"], run.stdout


def _pip_install(target: Path, what: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(what)],
                   check=True, timeout=600)
    assert (target / "theorykit" / "__init__.py").exists()


@pytest.mark.slow
@needs_checkout
def test_non_editable_install_records_the_commit(tmp_path):
    """``pip install .`` (not editable) from a clean clone: results and ``--version`` name its HEAD."""
    clone, head = _clone(tmp_path)
    _pip_install(tmp_path / "site", clone)
    prov, version = _installed_provenance(tmp_path / "site", tmp_path)
    assert prov["git_commit"] == head and prov["git_commit_from"] == "build" and prov["git_dirty"] is False
    assert f"(commit {head}; recorded at build time)" in version
    assert prov["versions"]["theorykit"] in version


@pytest.mark.slow
@needs_checkout
def test_install_from_an_sdist_keeps_the_commit(tmp_path):
    """An sdist carries the record, so a wheel built from it (where there is no git) still names the commit."""
    pytest.importorskip("build")
    clone, head = _clone(tmp_path)
    subprocess.run([sys.executable, "-m", "build", "--sdist", "--outdir", str(tmp_path / "dist"), str(clone)],
                   check=True, capture_output=True, timeout=600)
    (sdist,) = (tmp_path / "dist").glob("theorykit-*.tar.gz")
    shutil.rmtree(clone)  # nothing of the checkout is left to ask
    _pip_install(tmp_path / "site", sdist)
    prov, version = _installed_provenance(tmp_path / "site", tmp_path)
    assert prov["git_commit"] == head and prov["git_commit_from"] == "build"
    assert f"(commit {head}; recorded at build time)" in version
