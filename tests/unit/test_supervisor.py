"""The pipeline's threads (worker.Worker, worker.Supervisor), real ones: a job is settled and cleaned up
whatever raises; a thread found dead is restarted and beats the heartbeat, past MAX_RESTARTS the
pipeline is broken with the last cause; a thread that ended on StopWorker (its task closed) is neither
dead nor restarted until start_all(); threads are daemons named after their worker."""
from __future__ import annotations

import logging
import threading
from typing import Callable

import pytest

from autolog.snapshots.worker import MAX_RESTARTS, Heartbeat, StopWorker, Supervisor, Worker
from worker_clock import Clock

JOIN = 10.0  # seconds: a safety net, never a timing assertion


def make_worker(name: str, take: Callable[[], object]) -> Worker:
    return Worker(name, take=take, run=lambda job: None, fail=lambda job, exc: None, finish=lambda job: None)


def dies(message: str) -> Callable[[], object]:
    """A take() that raises: only a bug in the loop itself (not in a job) ends a worker's thread."""
    def take() -> object:
        raise RuntimeError(message)

    return take


def run_to_end(*workers: Worker) -> None:
    for w in workers:
        w.thread.join(JOIN)
        assert not w.alive(), f"{w.name} still runs"


def test_a_dead_thread_is_restarted_and_beats_the_heartbeat_until_it_has_died_too_often(
        clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    heartbeat = Heartbeat()
    dying = make_worker("autolog-dying", dies("a bug in take"))
    supervisor = Supervisor([dying], on_restart=heartbeat.beat)
    supervisor.start_all()
    with caplog.at_level(logging.WARNING, logger="autolog"):
        for restart in range(1, MAX_RESTARTS + 1):
            run_to_end(dying)
            clock.now += 10
            assert supervisor.check() is None
            assert dying.restarts == restart
            assert heartbeat.quiet_for() == 0.0  # the restarted thread's silence starts now
        run_to_end(dying)
        clock.now += 10
        broken = supervisor.check()
    assert broken == (f"autolog's background worker autolog-dying stopped {MAX_RESTARTS + 1} times "
                      "(last: RuntimeError: a bug in take)")
    assert supervisor.broken == broken
    assert dying.restarts == MAX_RESTARTS and not dying.alive()  # given up: no restart, no beat
    assert heartbeat.quiet_for() == 10.0
    assert [r.getMessage() for r in caplog.records] == [
        "autolog: background worker autolog-dying stopped (RuntimeError: a bug in take); restarted it"
    ] * MAX_RESTARTS


def ended_without_a_cause(name: str) -> Worker:
    """A worker whose thread ended but whose loop never ran: no death recorded."""
    ended = make_worker(name, lambda: None)
    ended.thread = threading.Thread(target=lambda: None)
    ended.thread.start()
    run_to_end(ended)
    return ended


def test_a_thread_that_ended_without_a_recorded_cause_is_reported_as_such(
        clock: Clock, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(Worker, "start", lambda self: None)  # the restart "dies" at once, again without a cause
    ended = ended_without_a_cause("autolog-ended")
    supervisor = Supervisor([ended])
    with caplog.at_level(logging.WARNING, logger="autolog"):
        assert supervisor.check() is None
    assert [r.getMessage() for r in caplog.records] == [
        "autolog: background worker autolog-ended stopped (no reason given); restarted it"]
    ended.restarts = MAX_RESTARTS
    assert supervisor.check() == (f"autolog's background worker autolog-ended stopped {MAX_RESTARTS + 1} times "
                                  "(last: no reason given)")


def test_a_broken_worker_does_not_keep_the_others_from_being_restarted(clock: Clock,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Worker, "start", lambda self: None)
    broken, dead = ended_without_a_cause("autolog-broken"), ended_without_a_cause("autolog-dead")
    broken.restarts = MAX_RESTARTS
    supervisor = Supervisor([broken, dead])
    assert "autolog-broken" in supervisor.check()
    assert dead.restarts == 1


def test_a_thread_ended_by_stop_worker_is_not_restarted_until_start_all(clock: Clock) -> None:
    release = threading.Event()
    supervisor: Supervisor

    def stop_at_once() -> object:
        supervisor.stopping(threading.current_thread())
        raise StopWorker

    def idle() -> object:
        release.wait(JOIN)
        raise StopWorker  # ends without saying so first: dead, not stopped

    heartbeat = Heartbeat()
    stopping, running = make_worker("autolog-stopping", stop_at_once), make_worker("autolog-running", idle)
    supervisor = Supervisor([stopping, running], on_restart=heartbeat.beat)
    supervisor.start_all()
    run_to_end(stopping)
    assert stopping.stopped and not running.stopped  # only the thread that ended is marked
    clock.now += 10
    assert supervisor.check() is None
    assert stopping.restarts == 0 and not stopping.alive()
    assert heartbeat.quiet_for() == 10.0
    first_thread = stopping.thread
    supervisor.start_all()  # a job after the task's close: the stopped worker starts again
    assert stopping.thread is not first_thread and stopping.stopped is False
    run_to_end(stopping)
    release.set()
    run_to_end(running)
    assert not running.stopped
    assert supervisor.check() is None
    assert running.restarts == 1  # ended without stopping(): found dead, restarted


def test_a_worker_runs_on_a_daemon_thread_named_after_it() -> None:
    """Named: a stack dump (py-spy, faulthandler) says which worker is where. A daemon: a script that
    never calls close() still exits (Python joins other threads before its atexit hooks, where the
    task's close runs)."""
    release = threading.Event()

    def take() -> object:
        release.wait(JOIN)
        raise StopWorker

    running = make_worker("autolog-named", take)
    running.start()
    try:
        assert running.thread.name == "autolog-named"
        assert running.thread.daemon is True
    finally:
        release.set()
        run_to_end(running)


def test_a_worker_settles_and_cleans_up_after_every_job_whatever_raises() -> None:
    """run() raising settles the job through fail() with the real cause; finish() runs after every job,
    also when fail() or finish() itself raises; the loop goes on to the next job."""
    jobs = ["ok", "run fails", "fail fails too", "finish fails", "ok again"]
    queue = list(jobs)
    seen: list[tuple[str, str]] = []
    current: list[object] = []
    worker_ref: list[Worker] = []

    def take() -> str:
        if not queue:
            raise StopWorker
        return queue.pop(0)

    def run(job: str) -> None:
        current.append(worker_ref[0].current)
        seen.append(("run", job))
        if job != "ok" and job != "ok again" and job != "finish fails":
            raise ValueError(job)

    def fail(job: str, exc: BaseException) -> None:
        seen.append(("fail", f"{job}: {exc}"))
        if job == "fail fails too":
            raise OSError("fail() broke")

    def finish(job: str) -> None:
        seen.append(("finish", job))
        if job == "finish fails":
            raise OSError("finish() broke")

    class Labelled(str):
        @property
        def label(self) -> str:
            return f"label of {self}"

    queue[:] = [Labelled(job) for job in jobs]
    looping = Worker("autolog-steps", take, run, fail, finish)
    worker_ref.append(looping)
    looping.start()
    run_to_end(looping)
    assert looping.death is None  # ended on StopWorker, not by a failure
    assert seen == [
        ("run", "ok"), ("finish", "ok"),
        ("run", "run fails"), ("fail", "run fails: run fails"), ("finish", "run fails"),
        ("run", "fail fails too"), ("fail", "fail fails too: fail fails too"), ("finish", "fail fails too"),
        ("run", "finish fails"), ("finish", "finish fails"),
        ("run", "ok again"), ("finish", "ok again"),
    ]
    assert current == [f"label of {job}" for job in jobs]  # what a stall's message names
    assert looping.current is None  # between jobs: on none
