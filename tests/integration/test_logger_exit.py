"""Nothing Logger buffered is lost however the process ends: at exit without close(), after an
unhandled exception, on sys.exit, on SIGTERM, and in forked children (multiprocessing workers, which
end with os._exit). Each run is a real child interpreter on the test's own store."""
from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

import pytest

from autolog import Task

REPORT = """
import os, sys, time
from autolog import Task
task = Task.init(project_name="exit", task_name="run", auto_connect_frameworks=False)
logger = task.get_logger()
for i in range({n}):
    logger.report_scalar("loss", "train", 1.0 / (i + 1), i)
logger.report_scalar("loss", "nan", float("nan"), 0)
logger.report_single_value("accuracy", 0.875)
logger.report_text("about to end", print_console=False)
print(task.id, flush=True)
"""


def check_everything_recorded(task_id: str, n: int, status: str) -> None:
    task = Task.get_task(task_id=task_id)
    assert task.status == status
    scalars = task.get_reported_scalars()
    assert scalars["loss"]["train"]["x"] == list(range(n))  # every value, once, in order
    assert scalars["loss"]["train"]["y"] == [1.0 / (i + 1) for i in range(n)]
    assert scalars["loss"]["nan"]["y"][0] != scalars["loss"]["nan"]["y"][0]
    assert task.get_reported_single_values() == {"accuracy": 0.875}
    assert task.get_reported_console_output() == ["about to end"]


@pytest.mark.parametrize("ending, status, code", [
    ("", "completed", 0),  # the script just ends: no close(), no flush()
    ("raise RuntimeError('boom')", "failed", 1),
    ("sys.exit(3)", "failed", 3),
])
def test_everything_reported_is_written_however_the_script_ends(run_py, ending, status, code):
    n = 30_000  # more than one batch, reported in less time than the writer's period
    proc = run_py(REPORT.format(n=n) + ending)
    assert proc.returncode == code, proc.stderr
    check_everything_recorded(proc.stdout.split()[0], n, status)
    if status == "failed" and code == 1:
        assert "boom" in Task.get_task(task_id=proc.stdout.split()[0])._record.status_message


def test_everything_reported_is_written_on_sigterm(tmp_path, child_env):
    n = 20_000
    script = REPORT.format(n=n) + "time.sleep(120)\n"  # SIGTERM arrives while the values are buffered
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(script)], env=child_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    task_id = proc.stdout.readline().strip()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err
    check_everything_recorded(task_id, n, "failed")
    assert Task.get_task(task_id=task_id)._record.status_message == "terminated by SIGTERM"


FORKED_WORKERS = """
import multiprocessing as mp, os, threading
from autolog import Logger, Task

task = Task.init(project_name="exit", task_name="workers", auto_connect_frameworks=False)
logger = task.get_logger()
for i in range(1000):  # still buffered when the workers fork: the parent writes these, not the children
    logger.report_scalar("parent", "before", float(i), i)


def work(rank):
    for i in range(500):
        logger.report_scalar("worker", str(rank), float(i), i)  # the parent's Logger, inherited
    Logger.current_logger().report_single_value(f"rank{rank}", rank)
    assert [t.name for t in threading.enumerate() if t.name == "autolog-scalars"] == ["autolog-scalars"]


ctx = mp.get_context("fork")
procs = [ctx.Process(target=work, args=(r,)) for r in range(3)]
for p in procs:
    p.start()
for p in procs:
    p.join()
assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]
logger.report_scalar("parent", "after", 1.0, 0)
print(task.id)
"""


def test_forked_workers_report_through_the_parents_logger_once_each(run_py):
    proc = run_py(FORKED_WORKERS)
    assert proc.returncode == 0, proc.stderr
    task = Task.get_task(task_id=proc.stdout.split()[0])
    assert task.status == "completed"
    scalars = task.get_reported_scalars()
    assert scalars["parent"]["before"]["x"] == list(range(1000))
    assert scalars["parent"]["after"]["y"] == [1.0]
    assert sorted(scalars["worker"]) == ["0", "1", "2"]
    for rank in "012":
        assert scalars["worker"][rank]["x"] == list(range(500))
    assert task.get_reported_single_values() == {"rank0": 0.0, "rank1": 1.0, "rank2": 2.0}
    from autolog.db import open_store
    from autolog.db import reporting

    counts = {(s.title, s.series): s.count for s in reporting.scalar_summaries(task._ctx.store, task.id)}
    assert counts[("parent", "before")] == 1000  # not written again by a child


def test_the_writer_thread_starts_on_the_first_report_and_ends_at_close():
    import threading

    task = Task.init(project_name="exit", task_name="thread", auto_connect_frameworks=False)
    assert "autolog-scalars" not in [t.name for t in threading.enumerate()]
    task.get_logger().report_scalar("t", "s", 1.0, 0)
    [writer] = [t for t in threading.enumerate() if t.name == "autolog-scalars"]
    assert writer.daemon
    task.close()
    writer.join(timeout=10)
    assert not writer.is_alive()
    assert Task.get_task(task.id).get_reported_scalars()["t"]["s"]["y"] == [1.0]


def test_values_are_written_within_seconds_without_flush():
    task = Task.init(project_name="exit", task_name="period", auto_connect_frameworks=False)
    task.get_logger().report_scalar("t", "s", 1.0, 0)
    store = task._ctx.store
    from autolog.db import reporting

    deadline = time.monotonic() + 10
    while not reporting.scalar_points(store, task.id):  # reads the store directly: no flush on the way
        assert time.monotonic() < deadline, "the writer did not write within 10 s"
        time.sleep(0.05)
