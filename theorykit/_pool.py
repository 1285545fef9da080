"""A local process pool for sweeps that survives dying workers and dies with its parent.

``concurrent.futures.ProcessPoolExecutor`` cannot tell which task killed a worker (every pending task
fails with ``BrokenProcessPool``), and its workers keep computing after their parent is killed. Here each
worker runs one task at a time over its own pipe: a worker that dies fails exactly its task and is
replaced, and workers end when the parent process ends, however it ends.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import time
from collections import deque
from multiprocessing.connection import Connection, wait
from typing import Any, Callable, Sequence

from .errors import InvalidParameterError

_PR_SET_PDEATHSIG = 1  # linux/prctl.h
_PARENT_POLL_S = 0.5


def _exit_with_parent(parent_pid: int) -> None:
    """Make this worker end when the process that started it ends, even if it is SIGKILLed.

    On Linux the kernel sends SIGKILL at the parent's death (``PR_SET_PDEATHSIG``), which stops a worker
    even inside compiled code that holds the GIL. Elsewhere a thread polls the parent's pid.
    """
    if sys.platform.startswith("linux"):
        try:
            if ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
                if os.getppid() != parent_pid:  # the parent died before the request took effect
                    os._exit(1)
                return
        except (OSError, AttributeError):
            pass
    if os.name != "posix":  # pragma: no cover - the pipe to the parent still ends idle workers
        return

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(_PARENT_POLL_S)
        os._exit(1)

    threading.Thread(target=watch, name="theorykit-parent-watch", daemon=True).start()


def _worker(conn: Connection, parent_pid: int, call: Callable) -> None:
    """Receive ``(task, fn_bytes)``, send back ``call(fn, *task)``, until told to stop or the pipe closes."""
    _exit_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it stops the workers itself
    loaded: dict[bytes, Any] = {}
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        task, fn_bytes = message
        try:
            if fn_bytes not in loaded:
                loaded = {fn_bytes: pickle.loads(fn_bytes)}
            result = call(loaded[fn_bytes], *task)
        except Exception as exc:  # the call itself records failures; this is a failure to load fn
            result = exc
        try:
            conn.send(result)
        except Exception as exc:  # e.g. a result that does not pickle
            conn.send(RuntimeError(f"the result cannot be sent back from the worker: {type(exc).__name__}: {exc}"))


def _how(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"


def run_pool(call: Callable, fn: Callable, tasks: Sequence[tuple], workers: int,
             on_result: Callable[[Any], None], on_death: Callable[[tuple, str, float], None],
             on_error: Callable[[tuple, Exception], None] | None = None) -> None:
    """Evaluate ``call(fn, *task)`` for every task on up to ``workers`` spawned processes.

    ``on_result(result)`` receives each result in completion order; ``on_death(task, how, seconds)`` is
    called for a task whose worker died (the worker is replaced); ``on_error(task, exc)`` for a task whose
    ``fn`` could not be loaded or whose result could not be sent back (default: raise).

    Raises
    ------
    InvalidParameterError
        If ``fn`` cannot be pickled (it must be a module-level function).
    """
    try:
        fn_bytes = pickle.dumps(fn)
    except Exception as exc:
        raise InvalidParameterError(f"a sweep on worker processes needs a module-level function, and {fn!r} "
                                    f"cannot be sent to one ({type(exc).__name__}: {exc}); use processes=1") from None
    # spawn, not fork: forking a process whose numba threads (OpenMP) are running is unsafe
    ctx = multiprocessing.get_context("spawn")
    pending = deque(tasks)
    running: dict[Connection, list] = {}  # pipe -> [process, task or None, start time]

    def start() -> None:
        here, there = ctx.Pipe()
        proc = ctx.Process(target=_worker, args=(there, os.getpid(), call), name="theorykit-sweep-worker")
        proc.start()
        there.close()
        running[here] = [proc, None, 0.0]
        give(here)

    def give(conn: Connection) -> None:
        if not pending:
            retire(conn)
            return
        task = pending.popleft()
        running[conn][1:] = [task, time.perf_counter()]
        try:
            conn.send((task, fn_bytes))
        except OSError:  # the worker is already gone: the task goes back, the worker is replaced
            pending.appendleft(task)
            running[conn][1] = None
            bury(conn)

    def retire(conn: Connection) -> None:
        proc = running.pop(conn)[0]
        try:
            conn.send(None)
        except OSError:
            pass
        conn.close()
        proc.join(timeout=5)
        if proc.is_alive():
            proc.kill()
            proc.join()

    def bury(conn: Connection) -> None:
        proc, task, started = running.pop(conn)
        conn.close()
        proc.join()
        if task is not None:
            on_death(task, _how(proc.exitcode), time.perf_counter() - started)
        if pending:
            start()

    try:
        for _ in range(min(workers, len(pending))):
            start()
        while running:
            sentinels = {running[c][0].sentinel: c for c in running}
            for ready in wait([*running, *sentinels]):
                conn = ready if isinstance(ready, Connection) else sentinels[ready]
                if conn not in running:  # handled already in this round
                    continue
                try:
                    result = conn.recv() if conn.poll() else None
                except (EOFError, OSError):
                    result = None
                if result is None:
                    if not running[conn][0].is_alive() or isinstance(ready, Connection):
                        bury(conn)
                    continue
                task = running[conn][1]
                if isinstance(result, Exception):
                    if on_error is None:
                        raise result
                    on_error(task, result)
                else:
                    on_result(result)
                give(conn)
    finally:
        for conn, (proc, _, _) in list(running.items()):
            conn.close()
            proc.kill()
            proc.join()
