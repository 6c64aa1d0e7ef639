"""The process around a live run: how it ends, how it forks, and how a child finds its parent's run.

How the run ends, whatever ends the process:
- returns normally, or `sys.exit(0)`: `completed` at exit, after pending snapshots are stored; a
  `sys.exit()` that the script catches and goes on from (argparse's error, handled) does not count;
- an unhandled exception (`sys.excepthook`), `sys.exit(1)` or `sys.exit("msg")`: `failed`, with why;
- SIGTERM (torchrun, schedulers, `kill`), when nobody else handles it: unwinds like an exception,
  so pending snapshots are still stored; `failed`, exit code 143;
- Ctrl-C or SIGTERM while close() or the exit flush is waiting: `failed`, naming what was not
  stored, and the process exits non-zero (130 or 143) even when that happens at interpreter exit.
A `multiprocessing` child that calls `Task.init()` itself stores each save before it returns and
closes its task from multiprocessing's own exit hook, since such children end with `os._exit`.
"""
from __future__ import annotations

import atexit
import logging
import os
import signal
import sys
import threading
import time
import traceback
from typing import Any

from . import runtime
from .context import Context
from .db import TaskRecord
from .forking import on_fork
from .safety import shielded
from .snapshots.sync import pid_alive

logger = logging.getLogger("autolog")

_installed = False
_exit_code: Any = None  # the last sys.exit() argument, None when there was none
_exit_raised: int | None = None  # id() of the SystemExit that sys.exit raised last


def install() -> None:
    """Install the exit hooks (once per process; they act on whatever run is live)."""
    global _installed
    if _installed:
        return
    _installed = True
    previous_hook = sys.excepthook

    def excepthook(exc_type, exc, tb):  # type: ignore[no-untyped-def]
        run = runtime.live()
        if run is not None and not issubclass(exc_type, KeyboardInterrupt):
            run.mark_failed("".join(traceback.format_exception_only(exc_type, exc)).strip())
        elif run is not None:
            run.mark_failed("interrupted (Ctrl-C)")
        previous_hook(exc_type, exc, tb)

    sys.excepthook = excepthook
    _wrap_sys_exit()
    atexit.register(close_at_exit)
    _flush_on_sigterm()


def close_at_exit() -> None:
    run = runtime.live()
    if run is None:
        return
    if _exit_code not in (None, 0) and run.failure is None:
        run.mark_failed(f"exited with sys.exit({_exit_code!r})")
    try:
        with shielded("closing the task at exit"):
            run.close()
    except (KeyboardInterrupt, SystemExit) as exc:  # Ctrl-C / SIGTERM during the exit flush
        # An exception from an atexit hook cannot change the exit status, and a user who interrupted
        # the exit flush must see a failure: run the other exit hooks, then leave with the signal's code.
        code = 130 if isinstance(exc, KeyboardInterrupt) else (exc.code if isinstance(exc, SystemExit) else 1)
        logger.warning("autolog: %s", run.failure or f"close interrupted: {exc!r}")
        atexit.unregister(close_at_exit)
        atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            with shielded("flushing output at exit"):
                stream.flush()
        os._exit(code if isinstance(code, int) else 1)


def _wrap_sys_exit() -> None:
    """Remember sys.exit's argument: SystemExit never reaches sys.excepthook, and a non-zero exit is a
    failed run. (`raise SystemExit(1)` written by hand is not seen: it does not go through sys.exit.)"""
    original = sys.exit

    def exit(status: Any = None) -> None:  # noqa: A001 - stands in for sys.exit
        global _exit_code
        if not _ends_the_process():
            original(status)
        _exit_code = status
        raise _ProcessExit.of(status)  # not held in a local: this frame, in its traceback, would keep it alive

    exit.__wrapped__ = original  # type: ignore[attr-defined]
    exit.__doc__ = original.__doc__
    sys.exit = exit


class _ProcessExit(SystemExit):
    """sys.exit()'s SystemExit, which notices being caught. An atexit hook is not told the exit code, so
    a script that catches the exit itself (argparse's error, handled) and goes on must forget it.

    Caught, it is freed by the frame that caught it, while the script runs. Not caught, the interpreter
    frees it from C once the script's frames are gone, or (kept in a cycle: `except SystemExit as e:
    error = e; raise`) the garbage collector does, after the main thread stopped at exit or on another
    thread.
    Only the first case forgets the code: a doubt leaves the run failed, as before."""

    @classmethod
    def of(cls, status: Any) -> "_ProcessExit":
        """The exception sys.exit(status) makes: a tuple is its args, None none (PyErr_SetObject's rule)."""
        global _exit_raised
        exc = cls() if status is None else cls(*status) if type(status) is tuple else cls(status)
        _exit_raised = id(exc)
        return exc

    def __del__(self) -> None:
        global _exit_code
        if sys.is_finalizing():
            return
        if threading.current_thread() is not threading.main_thread() or not threading.main_thread().is_alive():
            return
        try:
            sys._getframe(1)
        except ValueError:  # no Python frame: the interpreter's own exit
            return
        if _exit_raised == id(self):
            _exit_code = None


_ProcessExit.__name__ = _ProcessExit.__qualname__ = "SystemExit"  # as tracebacks and reprs name it


def _ends_the_process() -> bool:
    """Whether a sys.exit() called here ends the process: not in a thread other than the main one
    (it ends that thread), nor in an IPython shell or notebook kernel, which catches the SystemExit
    of a cell (argparse's, on the kernel's own arguments) and goes on."""
    if threading.current_thread() is not threading.main_thread():
        return False
    get_ipython = getattr(sys.modules.get("IPython"), "get_ipython", None)
    return get_ipython is None or get_ipython() is None


def _flush_on_sigterm() -> None:
    """SIGTERM unwinds like an exception, so pending snapshots are stored at exit. Only when nobody else
    handles SIGTERM, and only from the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return

    def on_sigterm(signum, frame):  # type: ignore[no-untyped-def]
        run = runtime.live()
        if run is not None and run.failure is None:
            run.mark_failed("terminated by SIGTERM")
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_sigterm)


def close_in_multiprocessing_child(run: "runtime.TaskRuntime") -> None:
    """multiprocessing children end with os._exit after running multiprocessing's own finalizers:
    close the task from there (its saves were already stored as they returned)."""
    if not in_multiprocessing_child():
        return
    from multiprocessing import util

    util.Finalize(run, _close_quietly, args=(run,), exitpriority=100)


def _close_quietly(run: "runtime.TaskRuntime") -> None:
    with shielded("closing the task at the end of a multiprocessing child"):
        run.close()


def in_multiprocessing_child() -> bool:
    mp = sys.modules.get("multiprocessing")
    return mp is not None and mp.parent_process() is not None


# -- children of a live run --------------------------------------------------------------------
def export_for_children(run: "runtime.TaskRuntime") -> None:
    os.environ[runtime.TASK_ENV] = run.task_id
    os.environ[runtime.PID_ENV] = str(os.getpid())


def parent_task(ctx: Context) -> TaskRecord | None:
    """The running task of the process that started this one, found through the environment."""
    task_id, pid = os.environ.get(runtime.TASK_ENV), os.environ.get(runtime.PID_ENV)
    if not task_id or pid == str(os.getpid()):
        return None
    # The parent exports its id before its row exists (the row is written in a background thread):
    # a child started at once may look too early. Wait for the row while the parent is alive.
    deadline = time.monotonic() + PARENT_ROW_WAIT
    while True:
        try:
            record = ctx.store.get_task(task_id)
            break
        except LookupError:
            if time.monotonic() > deadline or not (pid and pid.isdigit() and pid_alive(int(pid))):
                return None
            time.sleep(0.02)
    return record if record.status == "running" else None


PARENT_ROW_WAIT = 10.0  # seconds; the row normally appears ~0.3 s after the parent's Task.init


def _attach_forked_child() -> None:
    """A forked child (multiprocessing, DataLoader worker) logs into the parent's task through a run of
    its own. The script's `task` object, copied by the fork, is re-bound to it: through the parent's
    copy, a child's close() ended the parent's task while it ran (a `with Task.init()` block left by
    the child, too), and its flush() restarted the parent's workers here, which stored the parent's
    snapshots a second time."""
    parent = runtime.live()
    if parent is None:
        return
    child = parent.child_copy()
    if parent.handle is not None and hasattr(parent.handle, "_runtime"):
        parent.handle._runtime = child  # type: ignore[attr-defined]
        child.handle = parent.handle
    parent.closed = True  # its threads and pending work stayed in the parent: nothing here may use them
    runtime.set_live(child)
    child.start_capture()


on_fork("runtime.child", after_in_child=_attach_forked_child)
