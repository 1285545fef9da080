"""Atomic result files with provenance: nothing half-written is ever left on disk."""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import re
import secrets
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

#: who writes a temporary file: a hash of the host name, so that only this host judges whether its writer lives
_HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]
_TEMPORARY = re.compile(r"^\..+\.(?P<host>[0-9a-f]{8})-(?P<pid>\d+)-[0-9a-f]{8}\.tmp")
STALE_AFTER_S = 24 * 3600  # a temporary file this old is a leftover whoever wrote it


def _create_temporary(path: Path, mode: int) -> Path:
    """Create an empty file next to ``path`` named after this host and process. The kernel applies the
    umask to ``mode`` as for any new file, so the process umask is never read or changed."""
    while True:
        tmp = path.parent / f".{path.name}.{_HOST}-{os.getpid()}-{secrets.token_hex(4)}.tmp{path.suffix}"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode))
            return tmp
        except FileExistsError:
            continue


def _fsync(path: Path, *, folder: bool = False) -> None:
    """Flush a file's (or a folder's entries') data to disk; folders cannot be flushed on some systems."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        if folder:
            return
        raise
    try:
        os.fsync(fd)
    except OSError:
        if not folder:
            raise
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | os.PathLike, *, private: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success flush it to disk and rename it over ``path``,
    on error delete it.

    The file gets the permissions of any new file (``0666`` less the umask), or ``0600`` if ``private``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = _create_temporary(path, 0o600 if private else 0o666)
    try:
        yield tmp_path
        _fsync(tmp_path)  # the data is on disk before the name points at it
        os.replace(tmp_path, path)
        _fsync(path.parent, folder=True)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _process_gone(pid: int) -> bool:
    if os.name != "posix":  # os.kill(pid, 0) would end the process on Windows
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete temporary files that :func:`atomic_path` left in ``folder`` when its process was killed:
    those written on this host by a process that no longer runs, and any older than a day. Returns them."""
    removed = []
    now = time.time()
    for entry in Path(folder).glob(".*.tmp*"):
        match = _TEMPORARY.match(entry.name)
        try:
            old = now - entry.stat().st_mtime > STALE_AFTER_S
        except FileNotFoundError:
            continue
        dead = match is not None and match["host"] == _HOST and _process_gone(int(match["pid"]))
        if old or dead:
            entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        x = float(obj)
        return x if np.isfinite(x) else repr(x)
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    if isinstance(obj, Path):
        return str(obj)
    if obj is None or isinstance(obj, (str, int, bool)):
        return obj
    return repr(obj)


def write_json(path: str | os.PathLike, data: Mapping[str, Any]) -> Path:
    """Write ``data`` as indented JSON atomically (numpy values converted, non-finite floats as strings)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(_jsonable(data), indent=2, sort_keys=False) + "\n")
    return Path(path)


def write_npz(path: str | os.PathLike, **arrays: np.ndarray) -> Path:
    """Write arrays to a compressed ``.npz`` atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
    return Path(path)


def git_commit(cwd: str | os.PathLike | None = None) -> str | None:
    """The current git commit of ``cwd`` (default: this package's folder), or ``None`` outside a checkout."""
    return _git(cwd or Path(__file__).resolve().parent, "rev-parse", "HEAD") or None


def _git(cwd: str | os.PathLike, *args: str) -> str | None:
    """Output of ``git ARGS`` in ``cwd`` (stripped), or ``None`` if git is missing or fails."""
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def source_commit() -> dict[str, Any]:
    """Which commit this copy of theorykit is, and how that is known.

    Imported from a git checkout (an editable install, or the source folder on ``sys.path``), the
    checkout itself answers; an installed copy answers with the record its build wrote
    (``theorykit/_build_info.py``, see ``setup.py``).

    Returns
    -------
    dict
        ``git_commit`` (full hash or ``None``), ``git_dirty`` (tracked files differed from that commit;
        ``None`` if unknown) and ``git_commit_from`` (``"checkout"``, ``"build"`` or ``"unknown"``).
    """
    package = Path(__file__).resolve().parent
    top = _git(package, "rev-parse", "--show-toplevel")
    # the package must be the checkout's own source, not a copy installed in a folder inside some repository
    if top is not None and Path(top).resolve() == package.parent:
        changes = _git(package, "status", "--porcelain", "--untracked-files=no")
        return {"git_commit": _git(package, "rev-parse", "HEAD") or None,
                "git_dirty": None if changes is None else bool(changes), "git_commit_from": "checkout"}
    try:
        from . import _build_info
    except ImportError:
        return {"git_commit": None, "git_dirty": None, "git_commit_from": "unknown"}
    return {"git_commit": _build_info.commit, "git_dirty": _build_info.dirty, "git_commit_from": "build"}


def version_text() -> str:
    """``theorykit VERSION (commit HASH[, modified])`` as ``theorykit --version`` prints it."""
    from . import __version__

    src = source_commit()
    if src["git_commit"] is None:
        return f"theorykit {__version__} (commit unknown)"
    modified = " with uncommitted changes" if src["git_dirty"] else ""
    how = {"checkout": "git checkout", "build": "recorded at build time"}[src["git_commit_from"]]
    return f"theorykit {__version__} (commit {src['git_commit']}{modified}; {how})"


def provenance(**extra: Any) -> dict[str, Any]:
    """A provenance record: time, versions of Python and the scientific stack, platform, git commit.

    ``git_commit`` is known for every install path (see :func:`source_commit`); ``versions["theorykit"]``
    is the version of the imported copy.
    """
    import importlib.metadata as md

    from . import __version__

    versions = {"theorykit": __version__}
    for pkg in ("numpy", "scipy", "sympy", "numba", "mpmath", "matplotlib"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None
    rec = {
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "versions": versions,
        **source_commit(),
    }
    rec.update(extra)
    return rec


def save_result(path_stem: str | os.PathLike, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> tuple[Path, Path]:
    """Save ``arrays`` to ``<stem>.npz`` and ``meta`` + provenance to ``<stem>.json``, both atomically."""
    stem = Path(path_stem)
    npz = write_npz(stem.with_suffix(".npz"), **dict(arrays))
    js = write_json(stem.with_suffix(".json"), {**dict(meta), "provenance": provenance()})
    return npz, js
