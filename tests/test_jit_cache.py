"""theorykit._jit: numba's disk cache of a function is invalidated when a module its module imports changes."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import theorykit
from theorykit import _jit

PACKAGE = Path(theorykit.__file__).resolve().parent

RUN = """
import json, sys
sys.path.insert(0, {root!r})
import theorykit._jit as J
J.track_package("depdemo", {root!r} + "/depdemo")
from depdemo.caller import g
value = g(1.0)
print(json.dumps({{"value": value, "hits": sum(g.stats.cache_hits.values()),
                   "misses": sum(g.stats.cache_misses.values())}}))
"""


def _write_demo(root: Path, increment: str) -> None:
    pkg = root / "depdemo"
    pkg.mkdir(exist_ok=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "callee.py").write_text(textwrap.dedent(f"""
        from numba import njit

        @njit
        def f(x):
            return x + {increment}
        """))
    (pkg / "caller.py").write_text(textwrap.dedent("""
        from numba import njit

        from .callee import f

        @njit(cache=True)
        def g(x):
            return f(x)
        """))


def _run(root: Path) -> dict:
    env = {**os.environ, "NUMBA_CACHE_DIR": ""}
    env.pop("NUMBA_CACHE_DIR")
    out = subprocess.run([sys.executable, "-c", RUN.format(root=str(root))], capture_output=True, text=True,
                         env=env, check=True, timeout=300)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.numba
def test_cached_caller_recompiles_when_an_imported_module_changes(tmp_path):
    # numba would reuse the caller's machine code, compiled with the old callee inside, since the caller's own
    # file did not change
    _write_demo(tmp_path, "1.0")
    first = _run(tmp_path)
    assert first["value"] == 2.0 and first["misses"] == 1
    again = _run(tmp_path)
    assert again["value"] == 2.0 and again["hits"] == 1  # unchanged sources: the cache is used
    (tmp_path / "depdemo" / "callee.py").write_text((tmp_path / "depdemo" / "callee.py").read_text()
                                                    .replace("x + 1.0", "x + 2.0"))
    changed = _run(tmp_path)
    assert changed["value"] == 3.0 and changed["misses"] == 1 and changed["hits"] == 0


def test_dependency_closure_follows_relative_and_absolute_imports():
    kernels = PACKAGE / "theories" / "barlow_ntk" / "_kernels.py"
    assert _jit._closure(kernels) == (PACKAGE / "_prefetch.py",  # from ..._prefetch import name
                                      PACKAGE / "theories" / "barlow_ntk" / "_generated.py")  # from . import X
    contrastive = _jit._closure(PACKAGE / "theories" / "contrastive_highdim" / "_kernels.py")
    assert PACKAGE / "theories" / "_quadrature.py" in contrastive  # from .._quadrature import name
    solve_kernels = _jit._closure(PACKAGE / "solve" / "_kernels.py")
    assert PACKAGE / "solve" / "_layout.py" in solve_kernels  # constants compiled into the kernels
    assert PACKAGE / "solve" / "_kernels.py" not in solve_kernels
    assert _jit.dependency_digest(PACKAGE / "theories" / "_quadrature.py") is None  # imports no theorykit module


def test_digest_changes_with_a_dependency(tmp_path):
    _write_demo(tmp_path, "1.0")
    _jit.track_package("depdemo", tmp_path / "depdemo")
    try:
        caller = tmp_path / "depdemo" / "caller.py"
        before = _jit.dependency_digest(caller)
        callee = tmp_path / "depdemo" / "callee.py"
        callee.write_text(callee.read_text().replace("x + 1.0", "x + 2.50"))  # another size: a new memo key
        assert _jit.dependency_digest(caller) != before
        assert _jit.dependency_digest(callee) is None  # imports only numba
    finally:
        del _jit._TRACKED["depdemo"]
        _jit._closure.cache_clear()


def _caches_compiled_code(tree: ast.AST) -> bool:
    return any(isinstance(node, ast.Call) and any(k.arg == "cache" and isinstance(k.value, ast.Constant)
                                                  and k.value.value is True for k in node.keywords)
               for node in ast.walk(tree))


def test_theorykit_code_takes_njit_from_the_jit_module():
    """Only the generated modules (explicit flags in every decorator) and the code templates import numba's njit
    directly; everything else takes theorykit._jit.njit (explicit IEEE flags, dependency stamps)."""
    direct = sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                    if any(line.strip() == "from numba import njit" for line in p.read_text().splitlines())
                    and p.name != "_jit.py")
    assert direct == ["solve/_drivers.py", "theories/barlow_ntk/_generated.py"]
    from theorykit.solve._drivers import _INLINE_SOURCE  # the template of the generated ensemble drivers

    assert "from numba import njit" in _INLINE_SOURCE


def test_modules_that_cache_compiled_code_use_the_dependency_stamps():
    """A module that caches numba code and imports theorykit modules takes njit from theorykit._jit, so that
    the locator is in place before its functions are decorated."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text()
        if _caches_compiled_code(ast.parse(text)) and _jit.dependency_digest(path) is not None \
                and "_jit import" not in text:
            offenders.append(str(path.relative_to(PACKAGE)))
    assert not offenders


ORDER = """
import sys
sys.path.insert(0, {root!r})
from theorykit._jit import njit

@njit(cache=True)
def helper(x, y, z):
    return x * y + z

@njit(cache=True, fastmath={{"contract"}})
def contracting_caller(x, y, z):
    return helper(x, y, z)

x, y, z = 0.1, 10.0, -1.0  # x * y rounds to 1.0 exactly; a fused multiply-add keeps the 5.55e-17
if {caller_first}:
    contracting_caller(x, y, z)
print(repr(helper(x, y, z)))
"""


@pytest.mark.numba
def test_a_helper_compiles_the_same_whichever_caller_comes_first(tmp_path):
    # numba compiles a function with the unset flags of its first caller and caches that version: without
    # explicit flags the helper would return 5.55e-17 (fused) after the contracting caller and 0.0 otherwise
    values = []
    for caller_first in (True, False):
        folder = tmp_path / f"caller_first_{caller_first}"
        folder.mkdir()
        script = folder / "order.py"
        script.write_text(ORDER.format(root=str(Path(theorykit.__file__).resolve().parents[1]),
                                       caller_first=caller_first))
        out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True,
                             timeout=300)
        values.append(float(out.stdout.strip().splitlines()[-1]))
    assert values[0] == values[1] == 0.0


def test_njit_makes_the_ieee_flags_explicit():
    fn = _jit.njit(lambda x: x)
    assert fn.targetoptions["fastmath"] is False and fn.targetoptions["error_model"] == "numpy"
    contracting = _jit.njit(fastmath={"contract"})(lambda x: x)
    assert contracting.targetoptions["error_model"] == "numpy" and contracting.targetoptions["fastmath"]
