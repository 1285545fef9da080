"""Which integration kernels run a solve, and getting them compiled without making anyone wait.

Three kinds of driver run the same algorithm (one source, :mod:`theorykit.solve._kernels`):

* the **compiled** drivers, numba machine code compiled once for every system (the right-hand side
  is called through a function pointer) and kept in numba's disk cache;
* the **plain-Python** flavour of the same source. It runs a numpy-backend solve, and a numba-backend
  solve while the compiled drivers are not yet in the disk cache (on a new installation compiling them
  takes far longer than a solve, see BENCHMARKS.md): the first solve is then answered at once, with the
  system's numba-compiled right-hand side, while a background process compiles the drivers into the
  cache. Every later call,
  in this process or another, loads them from the cache as soon as they are there. Both give the same
  numbers: same operations in the same order, IEEE arithmetic in both.
* **inlined** ensemble drivers, compiled per system with the right-hand side inlined, cached in a
  generated module next to the system's generated code: ``solve_ensemble(..., inline=True)``. They advance
  several Dormand–Prince trajectories per thread together (``_kernels.LANES``), which pays only when the
  right-hand side is inlined: on a 2-state system about 1.7x less CPU per trajectory than the generic
  driver (see BENCHMARKS.md). Compiling one takes about 20 s, so ``inline="auto"`` only uses one that is
  already in the cache.

``THEORYKIT_COMPILE=foreground`` compiles in the calling process instead of in the background (and never
runs the plain-Python flavour for a numba-backend system).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from .. import __version__
from .._cache import cache_dir
from .._sealed import load_generated_module
from ..errors import InvalidParameterError

_KERNELS_FILE = Path(__file__).with_name("_kernels.py")
#: the folder holding this theorykit package: background processes start there (``python -c`` imports
#: from its working folder first), so that they compile this very copy of the kernels
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
#: seconds between two looks into the disk cache while a background compilation runs
POLL_INTERVAL = 0.25
#: a background compilation that has held its lock this long is presumed dead
STALE_LOCK_SECONDS = 900.0

_lock = threading.RLock()
_flavours: dict[str, Any] = {}


def _execute_kernels(name: str, module_name: str | None = None, **module_globals):
    """Execute the kernels' source file as a new module with ``_FLAVOUR = name`` and ``module_globals``;
    with ``module_name`` it is registered in ``sys.modules`` (numba's cache looks functions' globals up there).

    The ``"inline"`` flavour calls the module globals ``RHS`` / ``DIFFUSION`` wherever the source calls
    ``rhs(...)`` / ``diffusion(...)``: numba then compiles direct (inlinable) calls of the system's
    functions, where passing them as arguments would make the compiled code uncacheable."""
    spec = importlib.util.spec_from_file_location(module_name or f"theorykit.solve._kernels_{name}", _KERNELS_FILE)
    mod = importlib.util.module_from_spec(spec)
    mod._FLAVOUR = name
    mod.__dict__.update(module_globals)
    if module_name:
        sys.modules[module_name] = mod
    source = _KERNELS_FILE.read_text()
    if name == "inline":
        source = re.sub(r"\brhs\(", "RHS(", re.sub(r"\bdiffusion\(", "DIFFUSION(", source))
    exec(compile(source, str(_KERNELS_FILE), "exec"), mod.__dict__)
    return mod


def python_kernels():
    """The kernels as the numba-free ``"python"`` flavour, executed once per process."""
    with _lock:
        if "python" not in _flavours:
            _flavours["python"] = _execute_kernels("python")
        return _flavours["python"]


def foreground() -> bool:
    """Whether drivers are compiled in the calling process (``THEORYKIT_COMPILE=foreground``)."""
    return os.environ.get("THEORYKIT_COMPILE", "background").strip().lower() == "foreground"


# ------------------------------------------------------------------------------------------------ numba cache
def load_cached(dispatcher, sig) -> bool:
    """Load ``dispatcher``'s machine code for ``sig`` from numba's disk cache without compiling.

    Mirrors the cache branch of ``numba.core.dispatcher.Dispatcher.compile``; returns False when the
    cache has no entry (or numba's internals differ from what this expects: then the caller compiles).
    """
    from numba.core import sigutils
    from numba.core.compiler_lock import global_compiler_lock

    try:
        with global_compiler_lock:
            args, _ = sigutils.normalize_signature(sig)
            if tuple(args) in dispatcher.overloads:
                return True
            cres = dispatcher._cache.load_overload(sig, dispatcher.targetctx)
            if cres is None:
                return False
            dispatcher._cache_hits[sig] += 1
            if not cres.objectmode:
                dispatcher.targetctx.insert_user_function(cres.entry_point, cres.fndesc, [cres.library])
            dispatcher.add_overload(cres)
            return True
    except Exception:  # pragma: no cover - depends on numba internals
        return False


def _entry(dispatcher, sig):
    """The compiled Python-callable entry point of ``dispatcher`` for ``sig`` (skips argument-type dispatch)."""
    from numba.core import sigutils

    args, _ = sigutils.normalize_signature(sig)
    return dispatcher.overloads[tuple(args)].entry_point


class _Background:
    """A compilation running in another process, guarded by a lock file so that one process compiles."""

    def __init__(self, name: str, key: str, argv: list[str]):
        self.lock = cache_dir("jit") / f"{name}-{key}.lock"
        self.argv = argv
        self.started = False

    def busy(self) -> bool:
        """Whether a compilation (started by this process or another one) is under way."""
        return self.lock.exists() and self._lock_alive()

    def start(self) -> bool:
        """Start the compilation in a detached process (once); False if it cannot be started or already ran."""
        if self.started:
            return False
        self.started = True
        self.lock.unlink(missing_ok=True)  # stale (busy() said so)
        try:
            fd = os.open(self.lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            return True  # another process took it just now
        except OSError:
            return False  # no lock possible (read-only cache): compile in this process
        try:
            pid = _spawn_detached([sys.executable, "-c", *self.argv, str(self.lock)],
                                  dict(os.environ, THEORYKIT_COMPILE="foreground"))
            os.write(fd, str(pid).encode())
        except (OSError, ValueError):
            self.lock.unlink(missing_ok=True)
            return False
        finally:
            os.close(fd)
        return True

    def _lock_alive(self) -> bool:
        try:
            pid = int(self.lock.read_text() or "0")
            age = time.time() - self.lock.stat().st_mtime
        except (OSError, ValueError):
            return False
        if age > STALE_LOCK_SECONDS or pid <= 0:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except OSError:
            pass
        return True


def _spawn_detached(argv: list[str], env: dict) -> int:
    """Start ``argv`` in a new session, not as a child of this process (it may outlive it, and it is never
    left as a zombie); returns its pid."""
    if os.name != "posix":  # pragma: no cover
        return subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, cwd=_PACKAGE_ROOT).pid
    sh = subprocess.run(["/bin/sh", "-c", '"$@" </dev/null >/dev/null 2>&1 & echo $!', "sh", *argv], env=env,
                        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                        start_new_session=True, check=True, timeout=30, cwd=_PACKAGE_ROOT)
    return int(sh.stdout.strip())


_last_look: dict = {}


def _due(what) -> bool:
    """Whether it is time to look into the disk cache for ``what`` again (every :data:`POLL_INTERVAL` s at most)."""
    now = time.monotonic()
    if now - _last_look.get(what, -POLL_INTERVAL) < POLL_INTERVAL:
        return False
    _last_look[what] = now
    return True


def _kernels_source() -> str:
    """The kernels' source with the hash of the theorykit modules it imports (constants and functions from them
    are compiled in), numba's, theorykit's and Python's versions: what the kernels' machine code depends on."""
    import numba

    from .._jit import dependency_digest

    return "\n".join([_KERNELS_FILE.read_text(), (dependency_digest(_KERNELS_FILE) or b"").hex(), numba.__version__,
                      __version__, sys.version])


def _kernels_key() -> str:
    return hashlib.sha256(_kernels_source().encode()).hexdigest()[:24]


def release_lock(path: str) -> None:
    """Remove a background compilation's lock file (the compiling child calls this when done)."""
    Path(path).unlink(missing_ok=True)


# ------------------------------------------------------------------------------------------------ generic drivers
class _Generic:
    """The compiled generic drivers of this process: loaded, being compiled in the background, or neither."""

    def __init__(self):
        self.kernels = None
        self.sigs: dict[str, Any] = {}
        self.entries: dict[str, Any] = {}
        self.background: _Background | None = None

    def get(self, name: str):
        """The compiled entry point ``name`` (``"integrate"`` / ``"integrate_rows"``) as a Python-callable,
        or None while a background process compiles it (the caller runs the plain-Python flavour)."""
        entry = self.entries.get(name)
        if entry is not None:
            return entry
        with _lock:
            if name in self.entries:
                return self.entries[name]
            if self.kernels is None:
                from . import _kernels

                self.kernels, self.sigs = _kernels, _kernels.signatures()
                self.background = _Background("solve-drivers", _kernels_key(),
                                              ["from theorykit.solve import _drivers; import sys; "
                                               "_drivers.compile_generic_main(sys.argv[1])"])
            fn, sig = getattr(self.kernels, name), self.sigs[name]
            if not foreground() and not _due(("generic", name)):
                return None
            if not load_cached(fn, sig):
                if not foreground():
                    if self.background.busy():
                        return None
                    if not load_cached(fn, sig) and self.background.start():
                        return None
                if not load_cached(fn, sig):
                    fn.compile(sig)  # foreground, or no background process possible, or it failed
            fn.disable_compile()  # any other argument types would compile a per-system copy: refuse them
            self.entries[name] = _entry(fn, sig)
            return self.entries[name]

    def compile_all(self) -> None:
        """Compile (or load) both entry points in this process."""
        from . import _kernels

        for name, sig in _kernels.signatures().items():
            fn = getattr(_kernels, name)
            if not load_cached(fn, sig):
                fn.compile(sig)


GENERIC = _Generic()


def compile_generic_main(lock: str) -> None:
    """Entry point of the background process: fill numba's cache with the generic drivers."""
    try:
        GENERIC.compile_all()
    finally:
        release_lock(lock)


# ------------------------------------------------------------------------------------------------ inlined drivers
_INLINE_SOURCE = '''"""Ensemble driver with the right-hand side of {module!r} inlined; generated by theorykit.solve.

Compiled from theorykit.solve._kernels (the "inline" flavour) around the functions of the generated module
{module!r} of the same folder; numba caches the machine code next to this file. Safe to delete.
"""
from numba import njit


@njit(cache=True, nogil=True, error_model="numpy")
def integrate_rows(prob, rows, res):
    kernels.integrate_rows(0, 0, prob, rows, res)  # kernels calls the system's functions as globals
'''


class _Inline:
    """One system's inlined ensemble driver: its generated module and signature."""

    def __init__(self, csys):
        self.path = _inline_path(csys)
        self.module = None
        self.sig = None
        self.entry = None
        self.background: _Background | None = None
        self.source_path = Path(csys.path)

    def load_module(self, rhs_into, diffusion_into):
        from numba import typeof, types as nt

        if self.module is None:
            if not self.path.exists():
                _write_once(self.path, _INLINE_SOURCE.format(module=self.source_path.stem))
            spec = importlib.util.spec_from_file_location(self.path.stem, self.path)
            mod = importlib.util.module_from_spec(spec)
            mod.kernels = _execute_kernels("inline", f"theorykit.solve._kernels_{spec.name}", RHS=rhs_into,
                                           DIFFUSION=diffusion_into)
            sys.modules[spec.name] = mod  # numba's cache finds the function's globals through its module name
            spec.loader.exec_module(mod)
            from . import _kernels

            prob, _, _, _, rows, res = (typeof(r) for r in _kernels._example_records())
            self.module, self.sig = mod, nt.void(prob, rows, res)
        return self.module

    def rows_function(self, csys):
        """The driver's numba dispatcher around the functions of ``csys`` (not compiled here)."""
        diffusion = getattr(csys, "diffusion_into", None) if csys.n_noise else None
        return self.load_module(csys.rhs_into, diffusion).integrate_rows


def _write_once(path: Path, text: str) -> None:
    """Create ``path`` with ``text`` unless it exists; never rewrites it (numba's cache is keyed on its mtime)."""
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
    finally:
        os.unlink(tmp)


def _inline_path(csys) -> Path:
    text = "\n".join([_kernels_source(), _INLINE_SOURCE, Path(csys.path).name])
    return cache_dir("generated") / f"theorykit_rows_{hashlib.sha256(text.encode()).hexdigest()[:32]}.py"


_inline: dict[str, _Inline] = {}


def _inline_of(csys) -> _Inline:
    """The :class:`_Inline` of ``csys`` in this process (made on first use; call with ``_lock`` held)."""
    drv = _inline.get(str(csys.path))
    if drv is None:
        drv = _inline[str(csys.path)] = _Inline(csys)
    return drv


def inline_supported(csys) -> bool:
    """Whether ``csys`` can have an inlined driver: numba code generated by ``compile_system`` into the cache."""
    return getattr(csys, "backend", None) == "numba" and getattr(csys, "path", None) is not None \
        and getattr(csys, "options", None) is not None


#: an ensemble expected to run at least this long (CPU seconds on the generic driver) starts compiling the
#: system's inlined driver in the background under ``inline="auto"``: about that compilation's own cost
INLINE_REPAY_SECONDS = 20.0


def compile_inline_in_background(csys) -> bool:
    """Start compiling the inlined ensemble driver of ``csys`` in a detached process, unless it is compiled,
    in numba's cache or being compiled already; returns whether a compilation was started or is running.

    Later ensembles of the system (in this process or any other) use it once it is in the cache. Never
    compiles in this process: with ``THEORYKIT_COMPILE=foreground``, or where no process can be started, it
    does nothing (``inline=True`` compiles in the foreground).
    """
    if not inline_supported(csys) or foreground():
        return False
    with _lock:
        drv = _inline_of(csys)
        if drv.entry is not None:
            return False
        if drv.background is None:
            drv.background = _Background(f"solve-inline-{drv.path.stem}", _kernels_key(),
                                         ["from theorykit.solve import _drivers; import sys; "
                                          "_drivers.compile_inline_main(sys.argv[1], sys.argv[2])", str(csys.path)])
        if drv.background.busy():
            return True
        if drv.path.exists() and load_cached(drv.rows_function(csys), drv.sig):
            return False
        return drv.background.start()


def compile_inline_main(system_path: str, lock: str) -> None:
    """Entry point of the background process: fill numba's cache with the inlined driver of the system whose
    generated module is ``system_path`` (loaded only if its seal is intact)."""
    try:
        module = load_generated_module(system_path)
        drv = _Inline(SimpleNamespace(path=system_path))
        fn = drv.load_module(module.rhs_into, getattr(module, "diffusion_into", None)).integrate_rows
        if not load_cached(fn, drv.sig):
            fn.compile(drv.sig)
    finally:
        release_lock(lock)


def inline_rows(csys, *, compile_now: bool):
    """The inlined ensemble driver of ``csys`` (callable ``(prob, rows, res)``), or None if not available.

    Loads it from numba's cache if it is there, else compiles it in this process when ``compile_now``.
    """
    if not inline_supported(csys):
        if compile_now:
            raise InvalidParameterError("inline=True needs a system compiled by compile_system(..., backend='numba', "
                                        "cache=True); hand-written or uncached systems run the generic driver")
        return None
    with _lock:
        drv = _inline_of(csys)
        if drv.entry is not None:
            return drv.entry
        if not compile_now and not (drv.path.exists() and _due(("inline", str(csys.path)))):
            return None  # never generated (nothing can be in the cache), or looked just now
        fn = drv.rows_function(csys)
        if not load_cached(fn, drv.sig):
            if not compile_now:
                return None
            fn.compile(drv.sig)
        drv.entry = _entry(fn, drv.sig)
        return drv.entry
