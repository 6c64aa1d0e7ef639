"""LazyEvent (snapshots/lazy_event.py), with real threads: it behaves as threading.Event for set, is_set
and wait; a set that races a waiter's first wait still wakes it; it makes no Event until a thread
waits; a forked child whose parent held the shared lock at the fork can still use one."""
from __future__ import annotations

import gc
import os
import threading
import time

import pytest

from autolog.snapshots import lazy_event
from autolog.snapshots.lazy_event import LazyEvent

JOIN = 10.0  # seconds: a safety net, never a timing assertion


def test_set_before_wait_returns_at_once_and_makes_no_event():
    flag = LazyEvent()
    assert flag.is_set() is False  # a bool, as threading.Event's
    flag.set()
    assert flag.is_set() is True
    assert flag.wait(0) is True
    assert flag.wait() is True
    assert flag._event is None  # nobody had to sleep on it


def test_a_wait_that_times_out_is_false_and_a_later_set_is_seen():
    flag = LazyEvent()
    started = time.monotonic()
    assert flag.wait(0.05) is False
    assert time.monotonic() - started >= 0.04
    flag.set()
    assert flag.wait(0) is True


def test_set_from_another_thread_wakes_every_waiter():
    flag = LazyEvent()
    results: list[bool] = []
    waiters = [threading.Thread(target=lambda: results.append(flag.wait(JOIN))) for _ in range(4)]
    for waiter in waiters:
        waiter.start()
    while flag._event is None:  # at least one sleeps on it before the set
        time.sleep(0.001)
    flag.set()
    for waiter in waiters:
        waiter.join(JOIN)
    assert results == [True] * 4


def test_a_set_racing_the_first_wait_is_never_missed():
    for _ in range(300):
        flag = LazyEvent()
        go = threading.Barrier(2)
        results: list[bool] = []

        def wait() -> None:
            go.wait()
            results.append(flag.wait(JOIN))

        waiter = threading.Thread(target=wait)
        waiter.start()
        go.wait()
        flag.set()
        waiter.join(JOIN)
        assert results == [True]


def test_fewer_objects_for_the_collector_than_an_event():
    """The point of it: a snapshot in flight holds two, most never waited for."""
    def tracked(make) -> int:
        gc.collect()
        before = len(gc.get_objects())
        kept = [make() for _ in range(1000)]
        count = len(gc.get_objects()) - before
        del kept
        return count

    assert tracked(LazyEvent) <= 1000 + 50
    assert tracked(threading.Event) >= 4000


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_child_forked_while_the_lock_was_held_can_use_one():
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with lazy_event._lock:
            holding.set()
            release.wait(JOIN)

    holder = threading.Thread(target=hold)
    holder.start()
    holding.wait(JOIN)
    try:
        pid = os.fork()
        if pid == 0:  # the child: the holder thread did not come along
            code = 1
            try:
                flag = LazyEvent()
                flag.set()
                code = 0 if flag.wait(1) and not LazyEvent().wait(0.01) else 1
            finally:
                os._exit(code)
        deadline = time.monotonic() + JOIN
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        if not done:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        assert done and os.waitstatus_to_exitcode(status) == 0, "the child hung or failed on the parent's lock"
    finally:
        release.set()
        holder.join(JOIN)
