"""Build hook: record the full git commit of the source in ``theorykit/_build_info.py``.

All metadata lives in pyproject.toml (setuptools-scm derives the version from git). This file only adds
what an installed copy cannot find out later: the exact commit it was built from and whether tracked files
had uncommitted changes, so that result files name the commit for every install path. An sdist carries
the record into wheels built from it; a build outside a git checkout writes none (the commit is unknown).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

ROOT = Path(__file__).resolve().parent
RECORD = Path("theorykit") / "_build_info.py"


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _write_record(folder: str | Path) -> None:
    """Write the record into ``folder`` if this source tree is the top of a git checkout."""
    top = _git("rev-parse", "--show-toplevel")
    if top is None or Path(top).resolve() != ROOT:  # not a checkout (or a folder inside another repository)
        return
    commit = _git("rev-parse", "HEAD")
    if not commit:
        return
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
    path = Path(folder) / RECORD
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('"""Written by setup.py when this copy of theorykit was built."""\n\n'
                    f"commit = {commit!r}\ndirty = {dirty!r}\n")


class BuildPyWithCommit(build_py):
    def run(self) -> None:
        super().run()
        if not getattr(self, "editable_mode", False):  # an editable install asks git at run time instead
            _write_record(self.build_lib)


class SdistWithCommit(sdist):
    def make_release_tree(self, base_dir, files) -> None:
        super().make_release_tree(base_dir, files)
        _write_record(base_dir)


setup(cmdclass={"build_py": BuildPyWithCommit, "sdist": SdistWithCommit})
