"""Cold start: the first solve of a new system in a fresh environment (new venv, empty caches).

Run: python benchmarks/bench_cold_start.py [--baseline GIT_REF] [--workdir DIR]

For this checkout (and, with --baseline, for that git revision, extracted with git archive), it creates a
virtual environment in a temporary folder (python -m venv), installs theorykit into it the way a user
does (pip install <folder>, not editable), and runs three new processes, each with its own empty
NUMBA_CACHE_DIR and THEORYKIT_CACHE_DIR at first:

1. ``import theorykit.solve`` alone;
2. "first solve": derive the 2-state eigenmode system with SymPy, compile_system it and solve it once
   (rtol 1e-8, atol 1e-10, t in [0, 50]), then solve it a second time in the same process;
3. "second process": the same script once any background compilation has finished (caches warm).

Each process is timed from launch to exit (wall, and the CPU time of the process itself: a background
compilation it starts is not its child and is not counted); the script also reports its own breakdown. The
machine load (os.getloadavg) is printed before and after. If jax and diffrax are importable here, the first jit
solve of the same system in a new process is timed as the peer (JAX compiles in memory on first use).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_SCRIPT = r"""
import json, time
t0 = time.perf_counter()
from theorykit.derive import make_system
from theorykit.compile import compile_system
from theorykit.solve import solve
t1 = time.perf_counter()
csys = compile_system(make_system(["p1", "s1"], [
    "-alpha_p*p1*s1*sigma2 - alpha_p*p1*s1 + alpha_p*s1 - eta*p1",
    "-2*eta*s1 - 2*p1**2*s1*sigma2 - 2*p1**2*s1 + 2*p1*s1"], ["eta", "sigma2", "alpha_p"], name="cold_start"))
t2 = time.perf_counter()
params = {"eta": 0.1, "sigma2": 0.5, "alpha_p": 1.0}
first = solve(csys, {"p1": 0.5, "s1": 0.5}, (0.0, 50.0), params, rtol=1e-8, atol=1e-10)
t3 = time.perf_counter()
second = solve(csys, {"p1": 0.5, "s1": 0.5}, (0.0, 50.0), params, rtol=1e-8, atol=1e-10)
t4 = time.perf_counter()
assert first.success and (first.y == second.y).all()
print(json.dumps({"imports": t1 - t0, "derive_compile": t2 - t1, "first_solve": t3 - t2, "second_solve": t4 - t3,
                  "final": first.final.tolist()}))
"""

_DIFFRAX = r"""
import json, time
t0 = time.perf_counter()
import jax, jax.numpy as jnp
jax.config.update("jax_enable_x64", True)
import diffrax
t1 = time.perf_counter()
def f(t, y, a):
    p1, s1 = y[0], y[1]
    return jnp.stack([-a[2]*p1*s1*a[1] - a[2]*p1*s1 + a[2]*s1 - a[0]*p1,
                      -2*a[0]*s1 - 2*p1**2*s1*a[1] - 2*p1**2*s1 + 2*p1*s1])
@jax.jit
def solve(y0, a):
    return diffrax.diffeqsolve(diffrax.ODETerm(f), diffrax.Dopri5(), t0=0.0, t1=50.0, dt0=None, y0=y0, args=a,
                               stepsize_controller=diffrax.PIDController(rtol=1e-8, atol=1e-10),
                               saveat=diffrax.SaveAt(t1=True)).ys[-1]
a = jnp.array([0.1, 0.5, 1.0])
y = solve(jnp.array([0.5, 0.5]), a).block_until_ready()
t2 = time.perf_counter()
solve(jnp.array([0.5, 0.5]), a).block_until_ready()
t3 = time.perf_counter()
print(json.dumps({"imports": t1 - t0, "first_solve": t2 - t1, "second_solve": t3 - t2, "final": y.tolist()}))
"""


def run_timed(python: str, code: str, env: dict) -> tuple[float, dict]:
    """Run ``code`` in a new isolated process (-I: not importing from the current folder or PYTHONPATH);
    returns its wall time and its report, with the CPU time the process itself used under ``"cpu"``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run([python, "-I", "-c", code], env=env, capture_output=True, text=True,
                          cwd=tempfile.gettempdir())
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    report = json.loads(lines[-1]) if lines else {}
    report["cpu"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, report


def fresh_install(source: Path, workdir: Path) -> str:
    """A new venv in ``workdir`` with theorykit installed from ``source``; returns its python."""
    venv = workdir / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    subprocess.run([python, "-m", "pip", "install", "-q", str(source)], check=True)
    return python


def measure(label: str, source: Path, workdir: Path) -> list[dict]:
    python = fresh_install(source, workdir)
    caches = workdir / "caches"
    env = dict(os.environ, NUMBA_CACHE_DIR=str(caches / "numba"), THEORYKIT_CACHE_DIR=str(caches / "theorykit"),
               THEORYKIT_PROGRESS="0")
    for key in ("PYTHONPATH", "THEORYKIT_COMPILE"):
        env.pop(key, None)
    rows = []
    shutil.rmtree(caches, ignore_errors=True)
    wall, inner = run_timed(python, "import theorykit.solve", env)
    rows.append(dict(label=label, what="import theorykit.solve (new process)", wall=wall, **inner))
    shutil.rmtree(caches, ignore_errors=True)
    started = time.perf_counter()
    wall, inner = run_timed(python, _SCRIPT, env)
    rows.append(dict(label=label, what="first solve of a new system, empty caches (whole process)", wall=wall,
                     **inner))
    deadline = time.monotonic() + 1800  # let a background compilation fill the cache
    while time.monotonic() < deadline and list((caches / "theorykit").glob("jit/*.lock")):
        time.sleep(1.0)
    print(f"{label}: compiled drivers in the cache {time.perf_counter() - started:.0f} s after the first process "
          "started (a background compilation, if any, had finished)")
    wall, inner = run_timed(python, _SCRIPT, env)
    rows.append(dict(label=label, what="the same in a second process (warm caches)", wall=wall, **inner))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", metavar="GIT_REF", help="also measure this revision (e.g. main)")
    parser.add_argument("--workdir", help="folder for the venvs (default: a new temporary folder, removed after)")
    args = parser.parse_args()
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="theorykit-cold-"))
    print(f"load average before: {os.getloadavg()}")
    rows = measure("this checkout", ROOT, work / "current")
    if args.baseline:
        src = work / "baseline-src"
        src.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.baseline], check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", str(src)], input=archive.stdout, check=True)
        rows += measure(f"{args.baseline} (baseline)", src, work / "baseline")
    if importlib.util.find_spec("jax") and importlib.util.find_spec("diffrax"):
        wall, inner = run_timed(sys.executable, _DIFFRAX, dict(os.environ))
        rows.append(dict(label="diffrax (jax.jit)", what="first solve, new process (whole process)", wall=wall,
                         **inner))
    print(f"load average after: {os.getloadavg()}; {os.cpu_count()} cores\n")
    print("| theorykit | what | process wall (s) | process CPU (s) | imports (s) | derive + compile_system (s) "
          "| first solve (s) | second solve, same process (s) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")

    def cell(row, key, fmt="{:.3f}"):
        return fmt.format(row[key]) if key in row else "—"

    for r in rows:
        print(f"| {r['label']} | {r['what']} | {r['wall']:.2f} | {r['cpu']:.2f} | {cell(r, 'imports', '{:.2f}')} | "
              f"{cell(r, 'derive_compile', '{:.2f}')} | {cell(r, 'first_solve')} | {cell(r, 'second_solve', '{:.5f}')} |")
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
