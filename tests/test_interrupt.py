"""Ctrl-C works: a long ``solve`` or ``solve_ensemble`` returns to Python often enough that SIGINT stops it
within a second or two (compiled drivers return about every 0.1 s of work; ensembles between chunks)."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time

import pytest

pytestmark = pytest.mark.numba

_CHILD = """
import signal, sys, time
# Ctrl-C raises KeyboardInterrupt here even when the test runs as a background job, whose shell hands
# its children SIGINT ignored (Python then leaves it ignored)
signal.signal(signal.SIGINT, signal.default_int_handler)
import numpy as np
sys.path.insert(0, {tests!r})
from solve_helpers import REFERENCES
from theorykit.solve import solve, solve_ensemble, _drivers, _solve

ref = REFERENCES["oscillator"]
csys = ref.compiled()
while _drivers.GENERIC.get("integrate") is None or _drivers.GENERIC.get("integrate_rows") is None:
    time.sleep(0.5)  # compiled drivers only (a cold cache fills in the background)
solve(csys, ref.y0, (0.0, 1.0), ref.p)
solve_ensemble(csys, ref.y0, (0.0, 1.0), ref.p)
fns = _solve.system_functions(csys)
for what in ("solve", "ensemble"):
    # what a failure needs to be understood: the measured cost of a step and the steps of one kernel call
    print(what, fns.seconds_per_attempt, fns.budget("compiled", 10**10), file=sys.stderr, flush=True)
    print(what, flush=True)
    try:
        if what == "solve":  # ~10^9 steps
            solve(csys, ref.y0, (0.0, 1e8), ref.p, t_eval=[1e8], max_steps=10**10)
        else:  # 4000 trajectories of ~10^5 steps each
            solve_ensemble(csys, np.tile(ref.y0, (4000, 1)), (0.0, 1e4), ref.p, max_steps=10**7, inline=False)
        print("finished", flush=True)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
"""


def _line_reader(proc) -> queue.Queue:
    """The child's output lines, read by a thread (select() on a buffered pipe can miss lines already read)."""
    lines: queue.Queue = queue.Queue()

    def read():
        for line in proc.stdout:
            lines.put(line.strip())

    threading.Thread(target=read, daemon=True).start()
    return lines


def _next_line(lines: queue.Queue, timeout: float) -> str:
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        return "<timeout>"


@pytest.mark.skipif(os.name != "posix", reason="SIGINT delivery as on POSIX")
def test_sigint_stops_long_solves_within_seconds():
    code = _CHILD.format(tests=os.path.dirname(__file__))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = _line_reader(proc)
    try:
        for what in ("solve", "ensemble"):
            assert _next_line(lines, 600) == what
            time.sleep(1.5)  # well into the integration
            sent = time.monotonic()
            proc.send_signal(signal.SIGINT)
            line = _next_line(lines, 10)
            waited = time.monotonic() - sent
            if line != "interrupted":  # say what the child was doing: its traceback or its state
                proc.kill()
                assert line == "interrupted", (what, line, proc.stderr.read()[-3000:])
            assert waited < 2.0, (what, waited)
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        proc.wait()
