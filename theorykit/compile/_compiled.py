"""``compile_system``: an :class:`ODESystem` into a :class:`CompiledSystem` with a fixed numeric interface."""

from __future__ import annotations

import hashlib
import threading
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Mapping

import numpy as np

from .. import __version__
from .._cache import usable_cache_dir
from .._io import atomic_path
from ..derive import ODESystem
from ..errors import CacheWarning, CompileError, IncompleteSystemError, InvalidParameterError
from .._sealed import exec_module, unseal
from ._codegen import CODEGEN_VERSION, generate_source
from ._ieee import make_ieee

BACKENDS = ("numba", "numpy")
_memo: dict[str, "CompiledSystem"] = {}
_lock = threading.Lock()


def _pack(kind: str, names: tuple[str, ...], values: Any) -> np.ndarray:
    """Pack a mapping keyed by name (or an array in order) into a float64 vector, with clear errors."""
    if isinstance(values, Mapping):
        keys = {str(getattr(k, "name", k)): v for k, v in values.items()}
        missing = [n for n in names if n not in keys]
        unknown = [k for k in keys if k not in names]
        if missing or unknown:
            msg = []
            if missing:
                msg.append(f"missing {missing}")
            if unknown:
                msg.append(f"unknown {unknown}")
            raise InvalidParameterError(f"{kind}: {'; '.join(msg)}; expected exactly {list(names)}")
        arr = np.array([float(keys[n]) for n in names], dtype=np.float64)
    else:
        arr = np.array(values if values is not None else [], dtype=np.float64).reshape(-1)
        if arr.size != len(names):
            raise InvalidParameterError(f"{kind} must have {len(names)} entries {list(names)}, got {arr.size}")
    if not np.all(np.isfinite(arr)):
        bad = [n for n, v in zip(names, arr) if not np.isfinite(v)]
        raise InvalidParameterError(f"{kind} {bad} must be finite")
    return arr


class CompiledSystem:
    """Fast numeric functions of one :class:`~theorykit.derive.ODESystem`, the same for every backend.

    All ``*_into`` functions have the signature ``(t: float, y: float64[n_states], p: float64[n_params],
    out)`` and write into ``out``: ``rhs_into`` (``out[n_states]``), ``jac_into`` (``out[n_states,
    n_states]``), ``observed_into`` (``out[n_observables]``), ``diffusion_into`` (``out[n_states, n_noise]``,
    ``None`` without noise). For ``backend="numba"`` they are ``numba.njit`` dispatchers that other
    kernels can call; for ``"numpy"`` plain Python functions. Both compute in IEEE arithmetic: bad arithmetic
    (``x/0``, ``sqrt(-1)``, overflow) gives inf/nan, never an exception (numpy-backend modules are adapted by
    ``theorykit.compile._ieee``).

    Attributes
    ----------
    system : ODESystem
        The system this was compiled from.
    source : str
        The generated Python source (readable; print it to debug a right-hand side).
    """

    def __init__(self, system: ODESystem, backend: str, module: Any, source: str, path: Path | None,
                 options: Mapping[str, Any] | None = None):
        self.system = system
        self.backend = backend
        self.source = source
        self.path = path
        #: the compile_system options that rebuild this object from ``system`` (None: hand-written functions)
        self.options = dict(options) if options is not None else None
        self.rhs_into: Callable = module.rhs_into
        self.jac_into: Callable | None = getattr(module, "jac_into", None)
        self.observed_into: Callable = module.observed_into
        self.diffusion_into: Callable | None = getattr(module, "diffusion_into", None)
        self.state_names: tuple[str, ...] = system.state_names
        self.param_names: tuple[str, ...] = system.param_names
        self.observable_names: tuple[str, ...] = tuple(system.observed)
        self.n_states = system.n_states
        self.n_params = system.n_params
        self.n_noise = system.n_noise

    @classmethod
    def from_functions(cls, system: ODESystem, *, rhs_into: Callable, jac_into: Callable | None = None,
                       observed_into: Callable | None = None, diffusion_into: Callable | None = None,
                       backend: str = "numba", source: str = "") -> "CompiledSystem":
        """Wrap hand-written numeric functions with the ``(t, y, p, out)`` convention as a compiled system.

        For right-hand sides that are not flat SymPy expressions (e.g. quadratures over a data law),
        ``system`` still names the states, parameters and observables, and supplies the provenance;
        the functions implement it. ``source`` should say what the functions compute.
        """
        if backend not in BACKENDS:
            raise InvalidParameterError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if system.observed and observed_into is None:
            raise CompileError(f"system {system.name!r} has observables {list(system.observed)}: pass observed_into")
        if system.noise is not None and diffusion_into is None:
            raise CompileError(f"system {system.name!r} has a noise matrix: pass diffusion_into")

        def no_observables(t, y, p, out):
            return None

        module = SimpleNamespace(rhs_into=rhs_into, jac_into=jac_into, diffusion_into=diffusion_into,
                                 observed_into=observed_into if observed_into is not None else no_observables)
        return cls(system, backend, module, source or f"hand-written functions for {system.name!r}", None)

    def rebuild_recipe(self) -> tuple[ODESystem, dict[str, Any]]:
        """``(system, kwargs)`` such that ``compile_system(system, **kwargs)`` rebuilds this object in another
        process (from the disk cache); hand-written systems (:meth:`from_functions`) cannot be rebuilt."""
        if self.options is None:
            raise CompileError(f"{self.system.name!r} wraps hand-written functions and cannot be rebuilt in "
                               "another process; run it in this process (processes=1, no scheduler)")
        return self.system, {"backend": self.backend, **self.options}

    def __repr__(self) -> str:
        return (f"CompiledSystem({self.system.name!r}, backend={self.backend!r}, states={list(self.state_names)}, "
                f"params={list(self.param_names)})")

    # ------------------------------------------------------------------ packing
    def pack_params(self, values: Mapping[str, float] | np.ndarray | None) -> np.ndarray:
        """Parameters by name (mapping) or in order (array) -> float64[n_params]."""
        return _pack("params", self.param_names, {} if values is None and not self.param_names else values)

    def pack_state(self, values: Mapping[str, float] | np.ndarray) -> np.ndarray:
        """State by name (mapping) or in order (array) -> float64[n_states]."""
        return _pack("y0", self.state_names, values)

    # ------------------------------------------------------------------ evaluation
    def rhs(self, t: float, y, p) -> np.ndarray:
        """``f(t, y; p)`` as a new float64[n_states] array."""
        out = np.empty(self.n_states)
        self.rhs_into(float(t), self.pack_state(y), self.pack_params(p), out)
        return out

    def jac(self, t: float, y, p) -> np.ndarray:
        """``∂f/∂y`` as a new float64[n_states, n_states] array."""
        if self.jac_into is None:
            raise CompileError("this system was compiled with jac=False")
        out = np.empty((self.n_states, self.n_states))
        self.jac_into(float(t), self.pack_state(y), self.pack_params(p), out)
        return out

    def diffusion(self, t: float, y, p) -> np.ndarray:
        """The diffusion matrix ``G`` as float64[n_states, n_noise]."""
        if self.diffusion_into is None:
            raise CompileError(f"system {self.system.name!r} has no noise matrix")
        out = np.empty((self.n_states, self.n_noise))
        self.diffusion_into(float(t), self.pack_state(y), self.pack_params(p), out)
        return out

    def observed(self, name: str, t, y, p) -> np.ndarray | float:
        """Observable ``name`` at one point (``y`` [n_states]) or along a trajectory (``t`` [n_t], ``y`` [n_t, n_states])."""
        if name not in self.observable_names:
            raise KeyError(f"unknown observable {name!r}; available: {list(self.observable_names)}")
        k = self.observable_names.index(name)
        p = self.pack_params(p)
        y = np.asarray(y, dtype=np.float64)
        buf = np.empty(len(self.observable_names))
        if y.ndim == 1:
            self.observed_into(float(np.asarray(t).reshape(-1)[0]), self.pack_state(y), p, buf)
            return float(buf[k])
        ts = np.broadcast_to(np.asarray(t, dtype=np.float64), (y.shape[0],))
        res = np.empty(y.shape[0])
        for i in range(y.shape[0]):
            self.observed_into(ts[i], np.ascontiguousarray(y[i]), p, buf)
            res[i] = buf[k]
        return res


def _cache_key(system: ODESystem, backend: str, jac: bool, cse: bool) -> str:
    text = "\n".join([system.canonical(), backend, f"jac={jac}", f"cse={cse}", CODEGEN_VERSION, __version__])
    return hashlib.sha256(text.encode()).hexdigest()


def _cached_source(path: Path, system: ODESystem, generate: Callable[[], str]) -> str:
    """The generated module stored at ``path`` if it is intact and belongs to ``system``; otherwise a
    freshly generated one, written there (an edited or corrupt file is replaced, with a warning)."""
    if path.exists():
        text = path.read_text(encoding="utf-8", errors="replace")
        body = unseal(text)
        if body is not None and f"SYSTEM_HASH = {system.content_hash()!r}\n" in body:
            return text
        warnings.warn(f"cached generated module {path} was edited, truncated or belongs to another system; "
                      "it is generated again", CacheWarning, stacklevel=4)
    source = generate()
    with atomic_path(path, private=True) as tmp:
        tmp.write_text(source, encoding="utf-8")
    return source


def load_generated(module_name: str, system: ODESystem, generate: Callable[[bool], str],
                   cache: bool) -> tuple[Any, str, Path | None]:
    """``(module, source, path)`` of the generated module ``module_name`` of ``system``.

    With ``cache`` and a usable cache folder, the module is the intact file there (see
    :func:`_cached_source`), else ``generate(True)`` written there; otherwise ``generate(False)`` runs in
    memory (``path`` is ``None``). ``generate(numba_cache)`` returns sealed source (:func:`seal`).
    """
    folder = usable_cache_dir("generated") if cache else None
    if folder is None:
        source = generate(False)
        return exec_module(source, module_name, f"<theorykit generated {module_name}>"), source, None
    path = folder / f"{module_name}.py"
    source = _cached_source(path, system, lambda: generate(True))
    return exec_module(source, module_name, str(path)), source, path


def compile_system(system: ODESystem, backend: str = "numba", *, jac: bool = True, cse: bool = True,
                   cache: bool = True) -> CompiledSystem:
    """Generate, cache and load fast numeric code for ``system``.

    Parameters
    ----------
    system : ODESystem
        A complete system (checked again here).
    backend : {"numba", "numpy"}
        ``numba`` JIT-compiles every function with ``njit``; ``numpy`` leaves them as plain Python (useful
        for debugging and for tiny problems). Both give inf/nan for bad arithmetic, never an exception.
    jac : bool
        Also generate the Jacobian.
    cse : bool
        Common-subexpression elimination over rhs, Jacobian, observables and diffusion together.
    cache : bool
        Keep the generated module on disk keyed by the content hash of the system and options, so that a
        second process loads it (and numba's compiled machine code) instead of generating it again. A
        cached module is used only if its recorded SHA-256 matches its text and it names this system;
        otherwise it is generated again (with a :class:`~theorykit.errors.CacheWarning`). If the cache
        folder is not private to the user, read-only or cannot be created, the code is compiled in
        memory (with a warning once).

    Raises
    ------
    IncompleteSystemError
        If the system is incomplete (stray symbols, leftover expectations).
    CompileError
        If generation or loading fails, or an expression cannot be compiled safely.
    """
    if backend not in BACKENDS:
        raise InvalidParameterError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if not isinstance(system, ODESystem):
        raise IncompleteSystemError(f"compile_system needs an ODESystem, got {type(system).__name__}: "
                                    "build one with theorykit.derive.ODESystem or gradient_flow")
    system.check()
    key = _cache_key(system, backend, jac, cse)
    with _lock:
        if cache and key in _memo:
            return _memo[key]
        module, source, path = load_generated(
            f"theorykit_generated_{key[:32]}", system, cache=cache,
            generate=lambda numba_cache: generate_source(system, backend=backend, jac=jac, cse=cse,
                                                         numba_cache=numba_cache))
        if backend == "numpy":
            make_ieee(module)
        csys = CompiledSystem(system, backend, module, source, path, {"jac": jac, "cse": cse})
        if cache:
            _memo[key] = csys
        return csys
