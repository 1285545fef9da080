"""First-call versus cached cost of the derive -> compile -> solve pipeline, each in a fresh process.

Run: python benchmarks/bench_compile.py
Prints a Markdown table: process 1 starts with an empty cache (generates code, JIT-compiles), process 2
re-uses the disk cache of the generated module and of numba's machine code.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap

CHILD = textwrap.dedent("""
    import json, time
    t0 = time.perf_counter()
    from theorykit.theories.reference import eigenmode_cubic
    from theorykit.compile import compile_system
    from theorykit.solve import solve
    t_import = time.perf_counter()
    system = eigenmode_cubic()
    csys = compile_system(system)
    t_compile = time.perf_counter()
    sol = solve(csys, {"p1": 0.9, "p2": 0.3}, (0.0, 100.0), {"eta": 0.05, "sigma2": 0.5, "tau": 1.0, "tau2": 0.6})
    t_first = time.perf_counter()
    sol = solve(csys, {"p1": 0.9, "p2": 0.3}, (0.0, 100.0), {"eta": 0.05, "sigma2": 0.5, "tau": 1.0, "tau2": 0.6})
    t_second = time.perf_counter()
    print(json.dumps({"import": t_import - t0, "derive_compile": t_compile - t_import,
                      "first_solve": t_first - t_compile, "warm_solve": t_second - t_first}))
""")


def run_child(cache: str) -> dict:
    env = {**os.environ, "THEORYKIT_CACHE_DIR": cache, "THEORYKIT_PROGRESS": "0"}
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    with tempfile.TemporaryDirectory() as cache:
        first = run_child(cache)
        second = run_child(cache)
    print("| process | import (s) | derive + compile_system (s) | first solve incl. JIT (s) | warm solve (s) | total (s) |")
    print("|---|---|---|---|---|---|")
    for label, r in (("1st, empty cache", first), ("2nd, cached", second)):
        total = r["import"] + r["derive_compile"] + r["first_solve"]
        print(f"| {label} | {r['import']:.2f} | {r['derive_compile']:.2f} | {r['first_solve']:.2f} "
              f"| {r['warm_solve'] * 1e3:.2f} ms | {total:.2f} |")


if __name__ == "__main__":
    main()
