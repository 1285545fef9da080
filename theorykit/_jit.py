"""``njit`` with explicit flags, whose on-disk cache knows which theorykit modules a compiled function depends on.

numba keys a cached function on the content of its own source file only. A function that calls a jitted function
of another module compiles that callee into its own machine code, so after the callee's module changes the cache
still hands back code built with the old callee: an edit to a kernel helper, or checking out another commit of a
development install, would silently keep running the old helper. Importing this module (every theorykit module
that caches compiled code takes ``njit`` from here) puts a cache locator first in numba's list: for a function
whose module imports theorykit modules, the source stamp numba stores and compares is extended with the content
hashes of every theorykit source file its module reaches through ``import`` statements, transitively (read from
the source text, so the stamp is the same in every process, whatever was imported when). Functions that reach no
theorykit module keep numba's own locators and stamps.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from pathlib import Path

import numba
from numba.core import caching

__all__ = ["njit"]


def njit(*args, **options):
    """``numba.njit`` with ``error_model="numpy"`` (IEEE inf/nan instead of exceptions) and ``fastmath=False``
    unless given, always explicitly: numba compiles a function with the unset flags of the caller that first
    calls it, so a helper first called from a fastmath caller would be cached with contracted or reassociated
    arithmetic, and its numbers would depend on which caller came first (tests/test_jit_cache.py)."""
    options.setdefault("error_model", "numpy")
    options.setdefault("fastmath", False)
    return numba.njit(*args, **options)


_THIS_FILE = Path(__file__).resolve()
#: top-level package name -> its folder; the packages whose source files enter the stamp
_TRACKED: dict[str, Path] = {"theorykit": _THIS_FILE.parent}


def track_package(name: str, folder: str | os.PathLike) -> None:
    """Also follow imports of the package ``name`` (a top-level package in ``folder``) into the stamp."""
    _TRACKED[name] = Path(folder).resolve()
    _closure.cache_clear()


def _module_file(module: str) -> Path | None:
    """The source file of a module of a tracked package (``a/b.py`` or ``a/b/__init__.py``), else ``None``."""
    top, _, rest = module.partition(".")
    root = _TRACKED.get(top)
    if root is None:
        return None
    base = root.joinpath(*rest.split(".")) if rest else root
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _package_of(path: Path) -> str | None:
    """The dotted module name of a file inside a tracked package, else ``None``."""
    for top, root in _TRACKED.items():
        try:
            rel = path.relative_to(root)
        except ValueError:
            continue
        parts = [top, *rel.with_suffix("").parts]
        return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    return None


# import statements at the start of a line (also indented, e.g. in an ``if`` branch); a regular expression
# instead of ast.parse, which takes 30-50 ms on the solver's kernels at every first solve. A match inside a
# string only adds a dependency, never hides one.
_IMPORT = re.compile(r"^[ \t]*(?:from[ \t]+(\.*[\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[^\n#;]*)|import[ \t]+([^\n#;]*))",
                     re.MULTILINE)


def _names(text: str) -> list[str]:
    """``a as b, c`` (or a parenthesised list over several lines) -> ``["a", "c"]``."""
    return [part.split()[0] for part in text.strip("() \t\n\\").replace("\n", " ").split(",") if part.split()]


@functools.lru_cache(maxsize=None)
def _imports(path: Path, mtime_ns: int, size: int) -> tuple[str, ...]:
    """The modules the file at ``path`` imports, as absolute names: ``from X import y`` gives ``X.y`` where that
    is a module of a tracked package (``from . import _generated``), else ``X`` (where ``y`` is defined or
    re-exported)."""
    del mtime_ns, size  # part of the memo key only: a changed file is read again
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ()
    package = _package_of(path) or ""
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    names = []
    for match in _IMPORT.finditer(text):
        source, imported, plain = match.groups()
        if plain is not None:
            names += _names(plain)
            continue
        level = len(source) - len(source.lstrip("."))
        if level:
            parts = package.split(".") if package else []
            module = ".".join([*parts[: len(parts) - level + 1], *([source[level:]] if source[level:] else [])])
        else:
            module = source
        for name in _names(imported):
            sub = f"{module}.{name}"
            names.append(sub if name != "*" and _module_file(sub) is not None else module)
    return tuple(n for n in names if n)


def _stat_key(path: Path) -> tuple[Path, int, int]:
    st = path.stat()
    return path, st.st_mtime_ns, st.st_size


@functools.lru_cache(maxsize=None)
def _closure(path: Path) -> tuple[Path, ...]:
    """The tracked source files ``path`` reaches through imports, transitively (``path`` itself left out)."""
    seen, todo = {path}, [path]
    while todo:
        for module in _imports(*_stat_key(todo.pop())):
            dep = _module_file(module)
            if dep is not None and dep not in seen and dep != _THIS_FILE:  # this module compiles nothing in
                seen.add(dep)
                todo.append(dep)
    return tuple(sorted(seen - {path}))


@functools.lru_cache(maxsize=None)
def _file_digest(path: Path, mtime_ns: int, size: int) -> bytes:
    del mtime_ns, size
    return hashlib.sha256(path.read_bytes()).digest()


def dependency_digest(py_file: str | os.PathLike) -> bytes | None:
    """sha256 over the tracked files the module ``py_file`` imports, transitively; ``None`` if it imports none."""
    deps = _closure(Path(py_file).resolve())
    if not deps:
        return None
    h = hashlib.sha256()
    for dep in deps:
        h.update(str(dep).encode())
        h.update(_file_digest(*_stat_key(dep)))
    return h.digest()


class DependencyStampLocator(caching._CacheLocator):
    """numba's own locator for the function (same cache folder and file names) with the source stamp extended by
    :func:`dependency_digest` of its module."""

    def __init__(self, inner: caching._CacheLocator, py_file: str) -> None:
        self._inner, self._py_file = inner, py_file

    def ensure_cache_path(self) -> None:
        self._inner.ensure_cache_path()

    def get_cache_path(self) -> str:
        return self._inner.get_cache_path()

    def get_disambiguator(self) -> str:
        return self._inner.get_disambiguator()

    def get_source_stamp(self):
        return self._inner.get_source_stamp(), dependency_digest(self._py_file)

    @classmethod
    def from_function(cls, py_func, py_file):
        if not os.path.isfile(py_file) or dependency_digest(py_file) is None:
            return None
        for locator_class in _NUMBA_LOCATORS:
            inner = locator_class.from_function(py_func, py_file)
            if inner is not None:
                return cls(inner, py_file)
        return None


_IMPL = getattr(caching, "CacheImpl", None) or caching._CacheImpl  # renamed in numba 0.62
_NUMBA_LOCATORS = [c for c in _IMPL._locator_classes if c.__name__ != DependencyStampLocator.__name__]
_IMPL._locator_classes[:] = [DependencyStampLocator, *_NUMBA_LOCATORS]
