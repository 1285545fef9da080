"""Disk cache for expensive derivations, so a second process skips the SymPy work entirely."""

from __future__ import annotations

import functools
import hashlib
import inspect
import pickle
from typing import Callable, TypeVar

from .. import __version__
from .._cache import cache_dir
from .._io import atomic_path

F = TypeVar("F", bound=Callable)


def cached_derivation(fn: F) -> F:
    """Decorate a function returning an ODESystem (or any picklable SymPy result) so that its result is
    stored on disk, keyed by the function's qualified name, its source code, its arguments' ``repr`` and
    the theorykit version. Editing the function's code invalidates its entries.

    Arguments must have a deterministic ``repr`` (numbers, strings, tuples). Set ``THEORYKIT_CACHE_DIR``
    to relocate the cache; delete the folder to clear it.
    """
    try:
        source = inspect.getsource(fn)
    except (OSError, TypeError):  # no source available: key on the bytecode instead
        source = repr(fn.__code__.co_code)
    base = f"{fn.__module__}.{fn.__qualname__}\n{source}\n{__version__}"

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        key_text = base + "\n" + repr(args) + "\n" + repr(sorted(kwargs.items()))
        key = hashlib.sha256(key_text.encode()).hexdigest()[:40]
        path = cache_dir("derivations") / f"{fn.__name__}-{key}.pkl"
        if path.exists():
            try:
                with open(path, "rb") as fh:
                    return pickle.load(fh)
            except Exception:  # a stale or unreadable entry is rebuilt, never trusted
                path.unlink(missing_ok=True)
        result = fn(*args, **kwargs)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                pickle.dump(result, fh, protocol=pickle.HIGHEST_PROTOCOL)
        return result

    wrapper.uncached = fn  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]
