"""How a run ends, whatever ends it: multiprocessing children with a task of their own, a Pool whose
jobs each start a task, Ctrl-C or SIGTERM while close() or the exit flush waits, sys.exit codes, and
writes to tasks this process is not running. Each case runs the way a user meets it: a real script
in a fresh interpreter, real saves, the outcome read back from the store."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from autolog import Task
from autolog.errors import TaskNotRunningError
from pipeline_helpers import WAIT, assert_stored_tensor, snapshots_by_task, tensor

CHILD_WITH_ITS_OWN_TASK = """
import multiprocessing as mp
import os
import sys

import torch

import pipeline_helpers as h


def child(work, output_uri):
    from autolog import Task

    Task.init(project_name="lifecycle", task_name="child", output_uri=output_uri)
    torch.save(h.tensor(7), os.path.join(work, "child.pt"))
    # no close(): a multiprocessing child ends with os._exit, no atexit hook runs


if __name__ == "__main__":
    method, work, output_uri = sys.argv[1:4]
    proc = mp.get_context(method).Process(target=child, args=(work, output_uri))
    proc.start()
    proc.join(120)
    print("exitcode", proc.exitcode, flush=True)
"""


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_multiprocessing_child_with_its_own_task_stores_before_it_exits(method, spawn, local_store, work):
    proc = spawn(CHILD_WITH_ITS_OWN_TASK, method, work, local_store)
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0 and "exitcode 0" in out, (out, err)
    (task,) = Task.get_tasks(project_name="lifecycle", task_name="child")
    assert task.status == "completed", task._record
    (snap,) = snapshots_by_task(task.id)["child.pt"]
    assert_stored_tensor(snap, tensor(7))


POOL_OF_TASKS = """
import multiprocessing as mp
import os
import sys

import torch

import pipeline_helpers as h


def job(args):
    index, work, output_uri = args
    from autolog import Task

    task = Task.init(project_name="lifecycle", task_name=f"job-{index}", output_uri=output_uri)
    torch.save(h.tensor(index), os.path.join(work, f"job-{index}.pt"))
    return task.name


if __name__ == "__main__":
    work, output_uri = sys.argv[1:3]
    pool = mp.get_context("fork").Pool(2)
    print(pool.map(job, [(i, work, output_uri) for i in range(4)], chunksize=1), flush=True)
    pool.close()
    pool.join()
"""


def test_each_job_of_a_pool_logs_into_its_own_task(spawn, local_store, work):
    proc = spawn(POOL_OF_TASKS, work, local_store)
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    assert "['job-0', 'job-1', 'job-2', 'job-3']" in out, (out, err)
    tasks = {t.name: t for t in Task.get_tasks(project_name="lifecycle")}
    assert sorted(tasks) == ["job-0", "job-1", "job-2", "job-3"]
    for index in range(4):
        task = tasks[f"job-{index}"]
        assert task.status == "completed", (task.name, task._record)
        (snap,) = snapshots_by_task(task.id)[f"job-{index}.pt"]
        assert_stored_tensor(snap, tensor(index))


STUCK_AT_CLOSE = """
import os
import signal
import sys

# Ctrl-C as a user's terminal delivers it: a child started from a background job (nohup, `cmd &` in a
# script) inherits SIGINT ignored, and Python then installs no KeyboardInterrupt handler at all.
signal.signal(signal.SIGINT, signal.default_int_handler)

import torch

import pipeline_helpers as h
from autolog import Task

output_uri, work, where = sys.argv[1:4]
h.install_put_control().block()  # uploads never finish: close() and the exit flush wait
from autolog.snapshots.pipeline import wait_for_journal
task = Task.init(project_name="lifecycle", task_name=where, output_uri=output_uri)
torch.save(h.tensor(1), os.path.join(work, "model.pt"))
wait_for_journal()  # the case is a journaled snapshot left unstored, whatever the load on the machine
if where == "close":
    task.close()
print("end of script", flush=True)
"""


def _interrupt_while_waiting(proc: subprocess.Popen, signum: int) -> str:
    """Send signum once the child says it is waiting for snapshots (its first progress line)."""
    deadline, err = time.monotonic() + WAIT, ""
    while "autolog: storing snapshots" not in err:
        line = proc.stderr.readline()
        if not line and proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"the child never started waiting for its snapshots:\n{err}")
        err += line
    proc.send_signal(signum)
    out, rest = proc.communicate(timeout=WAIT)
    return err + rest


@pytest.mark.parametrize("where, signum, code", [
    ("close", signal.SIGTERM, 128 + signal.SIGTERM),
    ("close", signal.SIGINT, -signal.SIGINT),  # the script's own KeyboardInterrupt, as Python ends on it
    ("exit", signal.SIGTERM, 128 + signal.SIGTERM),
    ("exit", signal.SIGINT, 130),
])
def test_an_interrupted_close_ends_the_task_failed_naming_what_is_left(where, signum, code, spawn, remote_store,
                                                                      work):
    proc = spawn(STUCK_AT_CLOSE, remote_store, work, where)
    err = _interrupt_while_waiting(proc, signum)
    assert proc.returncode == code, (proc.returncode, err)
    (task,) = Task.get_tasks(project_name="lifecycle", task_name=where)
    assert task.status == "failed", task._record
    message = task._record.status_message
    assert "while close() was storing snapshots" in message and "model.pt #1" in message, message
    assert "autolog sync" in message
    (snap,) = snapshots_by_task(task.id)["model.pt"]
    assert snap.status == "pending"  # journaled: `autolog sync` finishes it


EXITS_WITH = """
import os
import sys

import torch

import pipeline_helpers as h
from autolog import Task

output_uri, work, how = sys.argv[1:4]
Task.init(project_name="lifecycle", task_name=how, output_uri=output_uri)
torch.save(h.tensor(3), os.path.join(work, "model.pt"))
if how == "in a thread":  # ends that thread only: the script goes on to its end
    import threading
    thread = threading.Thread(target=sys.exit, args=(1,))
    thread.start()
    thread.join()
elif how == "in a notebook cell":  # the kernel catches a cell's SystemExit (argparse's) and goes on
    import types
    ipython = types.ModuleType("IPython")  # IPython's own API for "inside a shell or kernel"
    ipython.get_ipython = lambda: object()
    sys.modules["IPython"] = ipython
    try:
        sys.exit(2)
    except SystemExit:
        pass
elif how == "caught by the script":  # argparse's error, which the script handles and goes on
    import argparse
    import gc
    gc.disable()  # freed as the except block ends, not by a collection
    parser = argparse.ArgumentParser()
    parser.add_argument("--lr", type=float)
    try:
        parser.parse_args(["--lr", "fast"])
    except SystemExit:
        parser.parse_args([])
elif how == "caught, then raised again":  # still leaves the process with 2
    import atexit
    import gc
    atexit.register(lambda: gc.collect())  # Python code, run before autolog's hook, that frees the exception

    def main():
        try:
            sys.exit(2)
        except SystemExit as exc:
            error = exc  # a cycle (error, its traceback, this frame): only a collection frees it
            print("exiting with", error.code)
            raise
    main()
else:
    sys.exit({"one": 1, "message": "bad input", "zero": 0, "none": None}[how])
"""


@pytest.mark.parametrize("how, status, code", [
    ("one", "failed", 1), ("message", "failed", 1), ("zero", "completed", 0), ("none", "completed", 0),
    ("in a thread", "completed", 0), ("in a notebook cell", "completed", 0),
    ("caught by the script", "completed", 0), ("caught, then raised again", "failed", 2),
])
def test_sys_exit_codes_decide_the_status(how, status, code, spawn, local_store, work):
    proc = spawn(EXITS_WITH, local_store, work, how)
    out, err = proc.communicate(timeout=WAIT)
    assert proc.returncode == code, err
    (task,) = Task.get_tasks(project_name="lifecycle", task_name=how)
    assert task.status == status
    if status == "failed":
        assert "sys.exit(" in task._record.status_message, task._record
    (snap,) = snapshots_by_task(task.id)["model.pt"]
    assert_stored_tensor(snap, tensor(3))


def test_a_fetched_task_that_is_not_running_refuses_writes(local_store, work, tmp_path):
    import torch

    from autolog import OutputModel

    done = Task.init(project_name="lifecycle", task_name="done", output_uri=local_store)
    done.close()
    fetched = Task.get_task(task_id=done.id)
    (tmp_path / "notes.txt").write_text("notes")
    torch.save(tensor(1), work / "w.pt")
    writes = {
        "upload_artifact": lambda: fetched.upload_artifact("notes", str(tmp_path / "notes.txt")),
        "update_output_model": lambda: fetched.update_output_model(work / "w.pt"),
        "connect": lambda: fetched.connect({"lr": 0.1}),
        "OutputModel": lambda: OutputModel(task=fetched),
        "closed handle": lambda: done.upload_artifact("notes", str(tmp_path / "notes.txt")),
    }
    for what, write in writes.items():
        with pytest.raises(TaskNotRunningError, match="Task.init") as caught:
            write()
        assert "completed" in str(caught.value) or "closed" in str(caught.value), (what, caught.value)
    assert fetched.artifacts == {} and fetched.models["output"] == [] and fetched.get_parameters() == {}


def test_a_fetched_handle_on_the_running_task_writes_into_it(local_store, tmp_path):
    task = Task.init(project_name="lifecycle", task_name="live", output_uri=local_store)
    (tmp_path / "notes.txt").write_text("notes")
    Task.get_task(task_id=task.id).upload_artifact("notes", str(tmp_path / "notes.txt"))
    assert list(task.artifacts) == ["notes"]


def test_init_again_returns_the_running_task_or_starts_the_one_asked_for(local_store):
    first = Task.init(project_name="lifecycle", task_name="first", output_uri=local_store)
    assert Task.init() is first
    assert Task.init(project_name="lifecycle", task_name="first") is first
    second = Task.init(project_name="lifecycle", task_name="second", output_uri=local_store)
    assert second is not first and Task.current_task() is second
    assert first.status == "completed"
    assert second.status == "running"
    third = Task.init(project_name="lifecycle", task_name="second", output_uri=os.path.join(local_store, "other"))
    assert third.id != second.id and second.status == "completed"
    assert third.output_uri == os.path.join(local_store, "other")


def test_import_autolog_loads_no_framework_and_no_sqlalchemy(run_py):
    proc = run_py("""
        import sys
        import autolog
        from autolog import Task
        heavy = ("torch", "tensorflow", "keras", "sklearn", "xgboost", "lightgbm", "sqlalchemy", "pandas")
        print(sorted(m for m in sys.modules if m.split(".")[0] in heavy))
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]", proc.stdout


def test_after_close_the_database_file_alone_holds_the_run(run_py, autolog_home, local_store, work, tmp_path):
    """close() checkpoints the write-ahead log: a copy of autolog.db alone (no -wal) is a usable backup."""
    import shutil
    import sqlite3

    proc = run_py(f"""
        import torch
        from autolog import Task
        task = Task.init(project_name="lifecycle", task_name="backup", output_uri={local_store!r})
        torch.save(torch.ones(3), {str(work / "w.pt")!r})
        task.close()
        print(task.id)
    """)
    assert proc.returncode == 0, proc.stderr
    task_id = proc.stdout.split()[-1]
    backup = tmp_path / "backup.db"
    shutil.copyfile(autolog_home / "autolog.db", backup)  # the .db file only
    with sqlite3.connect(backup) as conn:
        assert conn.execute("SELECT status FROM tasks WHERE id = ?", (task_id,)).fetchone() == ("completed",)
        statuses = conn.execute("SELECT s.status FROM snapshots s JOIN models m ON m.id = s.model_id "
                                "WHERE m.task_id = ?", (task_id,)).fetchall()
    assert statuses == [("stored",)]
