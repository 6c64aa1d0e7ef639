"""Background threads whose loop cannot die, and a supervisor that notices if one does anyway.

A worker loops: take a job, run it under a guard, settle it, repeat. Whatever the job raises
(BaseException included) settles that job as failed with the real cause; the job's cleanup runs in
`finally`, each effect on its own, so a cleanup that fails (a read-only folder, a path that became a
file) neither hides the cause nor ends the loop. The supervisor restarts a thread found dead and,
past a few restarts, gives up on the queue with a reason, so that no wait is left hanging on it.
"""
from __future__ import annotations

import functools
import logging
import threading
import time
from typing import Any, Callable, Iterable

from .cpu_priority import lower_this_thread

logger = logging.getLogger("autolog")

MAX_RESTARTS = 3
# Watch: a wait that saw no more than this of a quiet spell watches CONFIRM seconds (at most its
# patience) before calling it a stall; a poll back LATE seconds past its time found the process paused.
CONFIRM = 1.0
LATE = 0.1


class StopWorker(Exception):
    """Raised by a worker's take() when its pipeline is stopped and no job is left: the loop ends."""


def attempt(what: str, effect: Callable[[], Any]) -> None:
    """Run one cleanup effect; a failure is logged at debug and goes no further."""
    try:
        effect()
    except BaseException as exc:  # noqa: BLE001 - cleanup must never replace the real outcome
        logger.debug("autolog: %s failed: %s: %s", what, type(exc).__name__, exc)


def attempt_all(effects: Iterable[tuple[str, Callable[[], Any]]]) -> None:
    for what, effect in effects:
        attempt(what, effect)


class Worker:
    """One daemon thread running `take -> run -> settle` forever.

    take(): the next job (blocks while there is none).
    run(job): does the work; settles the job itself when it succeeds.
    fail(job, exc): settles a job whose run raised.
    finish(job): cleanup that runs after every job, whatever happened.
    nice: the thread's CPU priority, for workers that move bytes (cpu_priority.py); 0 keeps the process's.
    """

    def __init__(self, name: str, take: Callable[[], Any], run: Callable[[Any], None],
                 fail: Callable[[Any, BaseException], None], finish: Callable[[Any], None], nice: int = 0):
        self.name = name
        self.nice = nice
        self._take, self._run, self._fail, self._finish = take, run, fail, finish
        self.thread: threading.Thread | None = None
        self.restarts = 0
        self.death: str | None = None  # why the last thread ended, if it did
        self.stopped = False  # its thread ended on StopWorker: not dead, not to be restarted by check()
        self._current: Any = None  # the job it is on

    def start(self) -> None:
        self.thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self.thread.start()

    @property
    def current(self) -> str | None:
        """The job it is on, for a stall's message: its label now (its row may have been written since
        the worker took it)."""
        job = self._current
        return None if job is None else getattr(job, "label", None)

    def alive(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def _loop(self) -> None:
        try:
            lower_this_thread(self.nice)
            while True:
                self._one()
        except StopWorker:
            pass
        except BaseException as exc:  # noqa: BLE001 - only a bug in _one itself gets here
            self.death = f"{type(exc).__name__}: {exc}"
            logger.debug("autolog: worker %s ended: %s", self.name, self.death, exc_info=True)

    def _one(self) -> None:
        job = self._take()
        self._current = job
        try:
            self._run(job)
        except BaseException as exc:  # noqa: BLE001 - a worker survives any single job
            attempt(f"settling a failed job of {self.name}", functools.partial(self._fail, job, exc))
        finally:
            attempt(f"cleaning up after a job of {self.name}", lambda: self._finish(job))
            self._current = None


class Supervisor:
    """Restarts workers found dead; after MAX_RESTARTS of one, reports it as broken."""

    def __init__(self, workers: list[Worker], on_restart: Callable[[], None] = lambda: None):
        self.workers = workers
        self._on_restart = on_restart  # the heartbeat: a restarted thread's silence starts now
        self._lock = threading.Lock()
        self.broken: str | None = None

    def start_all(self) -> None:
        """Start every worker not started yet, or stopped (under the lock: check() must not take a
        worker being started for a dead one)."""
        with self._lock:
            for worker in self.workers:
                if worker.thread is None or worker.stopped:
                    worker.stopped = False
                    worker.start()

    def stopping(self, thread: threading.Thread) -> None:
        """The worker running `thread` is about to end on StopWorker (called before it raises)."""
        with self._lock:
            for worker in self.workers:
                if worker.thread is thread:
                    worker.stopped = True

    def check(self) -> str | None:
        """Revive dead workers; returns why the pipeline cannot go on, or None while it can."""
        with self._lock:
            for worker in self.workers:
                if worker.thread is None or worker.stopped or worker.alive():
                    continue
                if worker.restarts >= MAX_RESTARTS:
                    self.broken = (f"autolog's background worker {worker.name} stopped {worker.restarts + 1} times "
                                   f"(last: {worker.death or 'no reason given'})")
                    continue
                worker.restarts += 1
                logger.warning("autolog: background worker %s stopped (%s); restarted it", worker.name,
                               worker.death or "no reason given")
                worker.start()
                self._on_restart()
            return self.broken


class Heartbeat:
    """When background work last moved (a job settled, a chunk copied, hashed or uploaded, a dead worker
    restarted), and whether a wait already found it stalled since."""

    def __init__(self) -> None:
        self.last = time.monotonic()
        self.stalled_since: float | None = None  # the beat after which a wait confirmed a stall

    def beat(self, *_: Any) -> None:
        self.last = time.monotonic()

    def quiet_for(self) -> float:
        return time.monotonic() - self.last

    def watch(self, patience: float) -> "Watch":
        return Watch(self, patience)


class Watch:
    """One wait's look at the heartbeat: the work is stalled once it has been quiet for `patience`
    seconds, the last CONFIRM of them (at most `patience`) watched by this wait, running on time.

    Quiet time may be a pause of the whole process rather than of the work: a full garbage collection
    of a large heap (a second or more once TensorFlow or torch is imported, longer on a loaded machine),
    a C call holding the GIL, a process stopped by Ctrl-Z. The workers could not run then, and neither
    could the wait. So a wait that begins after a quiet spell, or whose poll comes back late, watches
    CONFIRM seconds more before it gives up. Once a wait has confirmed a stall, later waits give up at
    once until the work moves again: a stuck copy costs each later save nothing.
    """

    def __init__(self, heartbeat: Heartbeat, patience: float):
        self._heartbeat, self._patience = heartbeat, patience
        self._confirm = min(CONFIRM, patience)
        self._looked = self._on_time_since = time.monotonic()
        self._asked = 0.0
        # The quiet spell this wait is in (its beat) and how much of it the wait saw, crediting each look
        # at most the sleep it asked for plus LATE: on a machine so loaded that every poll is late, this
        # still reaches patience + CONFIRM, so no wait outlasts stalled work forever.
        self._spell, self._seen = heartbeat.last, 0.0

    def poll(self, seconds: float) -> float:
        """The wait's next sleep (returned as is): a look that comes later than this plus LATE found
        the process paused."""
        self._asked = seconds
        return seconds

    def stalled(self) -> float | None:
        """How long the work has been quiet, once that is a stall; None while it may still move."""
        now = time.monotonic()
        heartbeat = self._heartbeat
        last = heartbeat.last
        if last != self._spell:
            self._spell, self._seen = last, 0.0
        self._seen += max(0.0, min(now - max(self._looked, last), self._asked + LATE))
        if now - self._looked - self._asked > LATE:
            self._on_time_since = now
        self._looked, self._asked = now, 0.0
        quiet = now - last
        if quiet <= self._patience:
            return None
        if heartbeat.stalled_since != last:
            if now - self._on_time_since < self._confirm and self._seen < self._patience + self._confirm:
                return None
            heartbeat.stalled_since = last
        return quiet
