"""The on-disk cache folder shared by generated code and cached derivations."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(sub: str = "") -> Path:
    """The cache folder: ``$THEORYKIT_CACHE_DIR``, else ``$XDG_CACHE_HOME/theorykit``, else ``~/.cache/theorykit``."""
    root = os.environ.get("THEORYKIT_CACHE_DIR")
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(xdg, "theorykit")
    path = Path(root) / sub if sub else Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path
