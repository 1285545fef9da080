"""Disk cache for expensive derivations, so a second process skips the SymPy work entirely.

Entries are pickles. Unpickling runs code named in the file, so an entry is trusted no more than the
generated modules beside it, which theorykit executes anyway: the cache folder is used only while it is
private to the user (see :mod:`theorykit._cache`). Within it, an entry is checked before it is unpickled
(its header records the key and the SHA-256 of the payload, so a truncated, edited or misplaced file is
detected) and after (the result must have the recorded type, and an :class:`ODESystem` the recorded
content hash). A file that fails a check is recomputed with a :class:`~theorykit.errors.CacheWarning`.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import pickle
import warnings
from pathlib import Path
from typing import Any, Callable, TypeVar

from .. import __version__
from .._cache import usable_cache_dir
from .._io import atomic_path
from ..errors import CacheWarning
from ._system import ODESystem

F = TypeVar("F", bound=Callable)
_MAGIC = b"theorykit-derivation 1\n"


def _type_name(obj: Any) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def _header(key: str, result: Any, payload: bytes) -> dict[str, str]:
    return {"key": key, "type": _type_name(result), "sha256": hashlib.sha256(payload).hexdigest(),
            "content_hash": result.content_hash() if isinstance(result, ODESystem) else ""}


def _write_entry(path: Path, key: str, result: Any) -> None:
    payload = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
    with atomic_path(path, private=True) as tmp:
        tmp.write_bytes(_MAGIC + json.dumps(_header(key, result, payload)).encode() + b"\n" + payload)


def _read_entry(path: Path, key: str) -> tuple[bool, Any]:
    """``(True, result)`` for an intact entry of ``key``; ``(False, reason)`` otherwise."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return False, f"it cannot be read ({exc.strerror or exc})"
    if not data.startswith(_MAGIC):
        return False, "it is not a theorykit derivation file"
    header_line, _, payload = data[len(_MAGIC):].partition(b"\n")
    try:
        header = json.loads(header_line)
    except ValueError:
        return False, "its header is unreadable"
    if header.get("key") != key:
        return False, "it was stored for another derivation"
    if header.get("sha256") != hashlib.sha256(payload).hexdigest():
        return False, "its content does not match its recorded checksum"
    try:
        result = pickle.loads(payload)
    except Exception as exc:  # e.g. a class that no longer exists
        return False, f"it cannot be loaded ({type(exc).__name__}: {exc})"
    if _header(key, result, payload) != header:
        return False, f"it holds a {_type_name(result)}, not the recorded {header.get('type')}"
    return True, result


def cached_derivation(fn: F) -> F:
    """Decorate a function returning an ODESystem (or any picklable SymPy result) so that its result is
    stored on disk, keyed by the function's qualified name, its source code, its arguments' ``repr`` and
    the theorykit version. Editing the function's code invalidates its entries.

    Arguments must have a deterministic ``repr`` (numbers, strings, tuples). Set ``THEORYKIT_CACHE_DIR``
    to relocate the cache; delete the folder to clear it. Entries are checked when loaded (see the module
    documentation); without a usable cache folder the function simply runs.
    """
    try:
        source = inspect.getsource(fn)
    except (OSError, TypeError):  # no source available: key on the bytecode instead
        source = repr(fn.__code__.co_code)
    base = f"{fn.__module__}.{fn.__qualname__}\n{source}\n{__version__}\n{_MAGIC.decode()}"

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        key_text = base + "\n" + repr(args) + "\n" + repr(sorted(kwargs.items()))
        key = hashlib.sha256(key_text.encode()).hexdigest()[:40]
        folder = usable_cache_dir("derivations")
        path = folder / f"{fn.__name__}-{key}.pkl" if folder is not None else None
        if path is not None and path.exists():
            ok, result = _read_entry(path, key)
            if ok:
                return result
            warnings.warn(f"cached derivation {path} is not used: {result}; it is derived again",
                          CacheWarning, stacklevel=2)
        result = fn(*args, **kwargs)
        if path is not None:
            _write_entry(path, key, result)
        return result

    wrapper.uncached = fn  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]
