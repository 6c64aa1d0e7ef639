"""The background writer of Logger's reports survives failures and loses nothing it can still write.

Failures are injected into the one function that inserts scalar rows (everything else is the real
store): a round that fails keeps its rows for the next; an unreachable database is retried; a batch
that keeps failing for another reason is given up, said so, and does not hold up later values.
"""
from __future__ import annotations

import logging
import threading
import time

import pytest
import sqlalchemy as sa

from autolog import Task, report_writer
from autolog.db import reporting


class Failing:
    """Wraps reporting.insert_scalars: the first `times` calls raise `error`; later calls insert."""

    def __init__(self, error: Exception, times: int):
        self.original, self.error, self.times, self.calls = reporting.insert_scalars, error, times, 0

    def __call__(self, store, rows):
        self.calls += 1
        if self.calls <= self.times:
            raise self.error
        return self.original(store, rows)


@pytest.fixture
def task():
    task = Task.init(project_name="writer", task_name="faults", auto_connect_frameworks=False)
    yield task
    task.close()


@pytest.fixture
def flush_only(monkeypatch):
    """The writer's rounds never come (an hour apart): only the test's flush() writes, in its order."""
    monkeypatch.setattr(report_writer, "PERIOD", 3600.0)


def stored(task: Task) -> list[float]:
    """The values in the database, read without flushing anything."""
    points = reporting.scalar_points(task._ctx.store, task.id)
    return [value for _, value, _ in points.get(("t", "s"), [])]


def writer_thread() -> threading.Thread:
    [thread] = [t for t in threading.enumerate() if t.name == "autolog-scalars"]
    return thread


def test_a_failed_background_round_keeps_its_rows_and_the_thread_goes_on(task, monkeypatch, caplog):
    failing = Failing(RuntimeError("disk hiccup"), times=1)
    monkeypatch.setattr(reporting, "insert_scalars", failing)
    logger = task.get_logger()
    with caplog.at_level(logging.WARNING, logger="autolog"):
        for i in range(10):
            logger.report_scalar("t", "s", float(i), i)
        deadline = time.monotonic() + 15
        while failing.calls < 2:  # the thread's round failed, and its next round wrote the same rows
            assert time.monotonic() < deadline, "the writer did not retry within 15 s"
            time.sleep(0.05)
    assert "reported scalars and reports was not logged: RuntimeError: disk hiccup" in caplog.text
    assert writer_thread().is_alive()
    deadline = time.monotonic() + 15
    while len(stored(task)) < 10:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert stored(task) == [float(i) for i in range(10)]  # each once


def test_flush_raises_a_failed_write_and_the_next_flush_writes_the_rows_once(flush_only, task, monkeypatch):
    monkeypatch.setattr(reporting, "insert_scalars", Failing(RuntimeError("injected"), times=1))
    logger = task.get_logger()
    logger.report_scalar("t", "s", 1.0, 0)
    with pytest.raises(RuntimeError, match="injected"):
        logger.flush()
    logger.report_scalar("t", "s", 2.0, 1)
    logger.flush()
    assert stored(task) == [1.0, 2.0]


def test_an_unreachable_database_is_retried_within_the_same_flush(flush_only, task, monkeypatch):
    unreachable = sa.exc.OperationalError("INSERT", {}, Exception("server closed the connection unexpectedly"))
    failing = Failing(unreachable, times=2)
    monkeypatch.setattr(reporting, "insert_scalars", failing)
    logger = task.get_logger()
    logger.report_scalar("t", "s", 1.0, 0)
    logger.flush()  # retried with backoff (0.25 s, 0.5 s), well within [db] retry_seconds
    assert failing.calls == 3 and stored(task) == [1.0]


def test_a_batch_that_keeps_failing_is_given_up_with_an_error_and_later_values_are_recorded(flush_only, task,
                                                                                            monkeypatch, caplog):
    monkeypatch.setattr(reporting, "insert_scalars", Failing(ValueError("row rejected"), times=3))
    logger = task.get_logger()
    logger.report_scalar("t", "s", 1.0, 0)
    for _ in range(2):
        with pytest.raises(ValueError, match="row rejected"):
            logger.flush()
    logger.report_scalar("t", "s", 2.0, 1)
    with caplog.at_level(logging.ERROR, logger="autolog"):
        logger.flush()  # the third failure of the first batch: given up; the next batch goes in
    assert f"1 scalars of task {task.id[:8]} were not recorded (writing them failed 3 times)" in caplog.text
    assert "row rejected" in caplog.text
    assert stored(task) == [2.0]


def test_what_cannot_be_written_at_close_is_named_and_the_task_still_ends(flush_only, task, monkeypatch, caplog):
    monkeypatch.setenv("AUTOLOG_STRICT", "0")  # as a user runs: close() reports the failure, never raises it
    monkeypatch.setattr(reporting, "insert_scalars", Failing(ValueError("row rejected"), times=100))
    task.get_logger().report_scalar("t", "s", 1.0, 0)
    task.get_logger().report_text("kept", print_console=False)
    with caplog.at_level(logging.WARNING, logger="autolog"):
        task.close()
    assert f"task {task.id[:8]} ends with 1 scalars and 0 reports not recorded" in caplog.text
    assert "reported scalars and reports was not logged: ValueError: row rejected" in caplog.text
    assert task.status == "completed" and stored(task) == []
    assert task.get_reported_console_output() == ["kept"]  # the reports were written all the same
