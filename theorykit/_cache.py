"""The on-disk cache folder shared by generated code and cached derivations.

The cache holds code that theorykit runs: generated modules, numba's compiled functions and pickled
derivations. It is therefore used only while it is private to the user: created with mode 0700, owned
by the user and not writable by anyone else. A folder that fails these checks, is read-only or cannot be
created is not used: theorykit warns once and works in memory instead.
"""

from __future__ import annotations

import os
import stat
import warnings
from pathlib import Path

from .errors import CacheWarning


class CacheUnavailable(OSError):
    """The cache folder cannot be used safely (the message says why)."""


_warned: set[str] = set()


def cache_root() -> Path:
    """``$THEORYKIT_CACHE_DIR``, else ``$XDG_CACHE_HOME/theorykit``, else ``~/.cache/theorykit``."""
    root = os.environ.get("THEORYKIT_CACHE_DIR")
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(xdg, "theorykit")
    return Path(root)


def _private_folder(folder: Path) -> None:
    """Create ``folder`` with mode 0700 if missing, then check that it is a folder only its owner, this
    user, can write to; raise :class:`CacheUnavailable` otherwise."""
    try:
        if not folder.is_dir():
            folder.parent.mkdir(parents=True, exist_ok=True)  # parents get the usual permissions
            os.mkdir(folder, 0o700)
        info = os.stat(folder)
    except OSError as exc:  # e.g. a file in the way, no permission, a read-only file system
        raise CacheUnavailable(f"cannot create {folder}: {exc.strerror or exc}") from None
    if os.name == "posix":
        if info.st_uid != os.getuid():
            raise CacheUnavailable(f"{folder} belongs to another user (uid {info.st_uid})")
        if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise CacheUnavailable(f"{folder} is writable by other users (mode {stat.S_IMODE(info.st_mode):o})")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise CacheUnavailable(f"{folder} is read-only")


def cache_dir(sub: str = "") -> Path:
    """The cache folder (or its subfolder ``sub``), created private to the user if missing.

    Raises
    ------
    CacheUnavailable
        If the folder cannot be created, is read-only, belongs to another user or is writable by others.
    """
    root = cache_root()
    _private_folder(root)
    if not sub:
        return root
    _private_folder(root / sub)
    return root / sub


def usable_cache_dir(sub: str) -> Path | None:
    """:func:`cache_dir`, or ``None`` with a :class:`~theorykit.errors.CacheWarning` (once per reason)
    when the cache cannot be used, so that callers work in memory instead."""
    try:
        return cache_dir(sub)
    except CacheUnavailable as exc:
        if str(exc) not in _warned:
            _warned.add(str(exc))
            warnings.warn(f"theorykit's disk cache is not used: {exc}; generated code is compiled in memory and "
                          "derivations are recomputed (set THEORYKIT_CACHE_DIR to a folder of your own)",
                          CacheWarning, stacklevel=3)
        return None
