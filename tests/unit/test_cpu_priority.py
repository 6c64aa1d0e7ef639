"""cpu_priority.lower_this_thread on real threads (Linux: the nice value is per thread): a thread lowers
its own priority and nobody else's, never raises it, leaves the main thread alone, and a refusal is
logged, not raised; a worker restarted after its thread died lowers the new thread's priority too."""
from __future__ import annotations

import logging
import os
import sys
import threading
from typing import Callable

import pytest

from autolog.snapshots import cpu_priority
from autolog.snapshots.cpu_priority import lower_this_thread
from autolog.snapshots.worker import Supervisor, Worker

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a per-thread nice value is Linux's")

JOIN = 10.0  # seconds: a safety net, never a timing assertion


def nice_of(tid: int) -> int:
    return os.getpriority(os.PRIO_PROCESS, tid)


BASE = nice_of(threading.get_native_id())  # this test process's own priority (pytest may run under nice)


def in_thread(body: Callable[[], object]) -> object:
    """body's result, run on a new thread (which starts at its creator's priority)."""
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(body()))
    thread.start()
    thread.join(JOIN)
    return result[0]


def lowered_to(nice: int) -> int:
    lower_this_thread(nice)
    return nice_of(threading.get_native_id())


def test_a_thread_lowers_its_own_priority_and_nobody_elses():
    if BASE >= 10:
        pytest.skip(f"this process already runs at nice {BASE}")
    bystander_ready, bystander_may_end = threading.Event(), threading.Event()
    bystander_tid: list[int] = []

    def bystander() -> None:
        bystander_tid.append(threading.get_native_id())
        bystander_ready.set()
        bystander_may_end.wait(JOIN)

    other = threading.Thread(target=bystander)
    other.start()
    try:
        assert bystander_ready.wait(JOIN)
        assert in_thread(lambda: lowered_to(10)) == 10
        assert nice_of(bystander_tid[0]) == BASE
        assert nice_of(threading.get_native_id()) == BASE
    finally:
        bystander_may_end.set()
        other.join(JOIN)


def test_a_priority_lower_already_is_never_raised():
    if BASE >= 15:
        pytest.skip(f"this process already runs at nice {BASE}")

    def lowest_first() -> int:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 15)
        return lowered_to(10)

    assert in_thread(lowest_first) == 15


def test_zero_and_the_main_thread_are_left_as_they_are():
    assert in_thread(lambda: lowered_to(0)) == BASE
    assert threading.current_thread() is threading.main_thread()
    assert lowered_to(10) == BASE  # the main thread's id is the process's


def test_a_refusal_is_logged_and_the_thread_goes_on(monkeypatch, caplog):
    def refuse(*args: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(cpu_priority.os, "setpriority", refuse)
    with caplog.at_level(logging.DEBUG, logger="autolog"):
        assert in_thread(lambda: lowered_to(10)) == BASE
    assert "could not lower the priority" in caplog.text and "Operation not permitted" in caplog.text


def test_a_worker_lowers_its_thread_and_the_thread_that_replaces_a_dead_one():
    if BASE >= 10:
        pytest.skip(f"this process already runs at nice {BASE}")
    seen: list[int] = []  # each thread's priority when it takes its first job
    ended = threading.Event()

    def take() -> object:
        seen.append(nice_of(threading.get_native_id()))
        ended.set()
        raise RuntimeError("a bug in take: the thread ends")

    worker = Worker("autolog-test-bytes", take=take, run=lambda job: None, fail=lambda job, exc: None,
                    finish=lambda job: None, nice=10)
    supervisor = Supervisor([worker])
    supervisor.start_all()
    for _ in range(2):
        assert ended.wait(JOIN)
        worker.thread.join(JOIN)
        ended.clear()
        assert supervisor.check() is None  # found dead: restarted
    worker.thread.join(JOIN)
    assert seen[:2] == [10, 10]
    assert nice_of(threading.get_native_id()) == BASE
