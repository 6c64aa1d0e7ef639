"""The threads that copy and hash snapshot bytes give the CPU to the training first.

A training job that computes on the CPU runs one thread per core (torch's OpenMP team, XGBoost,
LightGBM). A copy or a hash beside it takes one of those cores, and each parallel region of the
training then waits at its barrier for the thread that lost its core: one training step of a small
MLP on 2 cores took as long as the whole 200 MB copy and hash beside it (50-165 ms instead of 3 ms),
and the training ran at 0.73-0.80x its speed (`bench/experiments/train_between_saves.py --training
torch`). At a lower priority ([pipeline] worker_nice, 10 by default) those threads run when a core is
free: between steps, during a save, while the training waits on the GPU, the data or autolog itself
(a wait on the pipeline leaves the training's cores free), and at close(). A machine with idle cores
(a GPU job) sees no difference.

Only threads that spend their time in calls outside the GIL get it: one of them preempted while it
holds the GIL for the few microseconds between two such calls stalls the training only until a core
frees up. The recorder and Task.init's background start run Python for milliseconds at a time and keep
the process's priority; so do the uploaders, since the fsspec event-loop thread one of them may start
would inherit theirs, and a script's own fsspec reads go through that thread.

A thread cannot raise its priority again without CAP_SYS_NICE (RLIMIT_NICE is 0 by default, and
leaving SCHED_IDLE needs the same). So while someone waits for their work (close(), the fence, room
in the backlog), the rest of the copy or hash a lowered thread is in moves, at its next step, to a
`Hurry` thread that the waiting thread starts and that therefore has its priority (storage/handoff.py).
Without that, with other busy processes of the same scheduling group on the cores, close() waited on
work done at the lowered share: 10x longer at nice 10 (ARCHITECTURE.md, "The bytes' threads yield the
CPU to the training").

Linux only: there the nice value belongs to each thread, and a thread may lower its own priority
without privileges. Elsewhere `setpriority` acts on the whole process, so nothing is done.
"""
from __future__ import annotations

import collections
import contextlib
import itertools
import logging
import os
import sys
import threading
from typing import Any, Callable, Iterator, TypeVar

logger = logging.getLogger("autolog")
T = TypeVar("T")
_this_thread = threading.local()  # .lowered: this thread's priority was lowered here


def lowers(nice: int) -> bool:
    """Whether lower_this_thread(nice) lowers a thread here."""
    return nice > 0 and sys.platform.startswith("linux")


def lower_this_thread(nice: int) -> None:
    """Give the calling thread at least `nice` (0-19). Never raises its priority, never touches the
    main thread (whose id is the process's), and a refusal (a sandbox) leaves it as it was."""
    if not lowers(nice):
        return
    tid = threading.get_native_id()
    if tid == os.getpid():
        return
    try:
        if os.getpriority(os.PRIO_PROCESS, tid) < nice:
            os.setpriority(os.PRIO_PROCESS, tid, nice)
        _this_thread.lowered = True
    except OSError as exc:
        logger.debug("autolog: could not lower the priority of %s: %s", threading.current_thread().name, exc)


def is_lowered() -> bool:
    """Whether lower_this_thread lowered the calling thread."""
    return getattr(_this_thread, "lowered", False)


class _Call:
    def __init__(self, work: Callable[[], Any]):
        self.work = work
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self.work()
        except BaseException as exc:  # noqa: BLE001 - raised again in the thread that handed it over
            self.error = exc
        finally:
            self.done.set()


class Hurry:
    """Threads at the waiting thread's priority that finish a lowered thread's copy or hash while
    someone waits (a storage.handoff.Handoff). The waiting thread starts them (a new thread gets its
    creator's priority); they end once no one has waited for `linger` seconds and nothing is left to
    run. Starting one waits until it runs, milliseconds on a loaded machine: saves that each wait
    (a stuck stager with the backlog full, a fence after each save) reuse them.

    Work is handed only to an idle thread, never queued behind another call: a hash reading behind a
    copy waits for that copy, which would never come if it were queued behind the hash (one thread,
    when the second could not be started). With no idle thread the lowered thread goes on itself."""

    def __init__(self, threads: int = 2, linger: float = 5.0):
        self._threads = threads  # one per lowered worker (the stager and the hasher)
        self._linger = linger
        self._cond = threading.Condition()
        self._waiters = 0
        self._starting = 0  # started, not yet counted in by the thread itself
        self._running = 0  # hurry threads alive
        self._idle = 0  # ... of which waiting for a call
        self._calls: collections.deque[_Call] = collections.deque()
        self._names = itertools.count()

    @contextlib.contextmanager
    def while_waiting(self) -> Iterator[None]:
        """Around a wait for the lowered threads' work. A lowered waiter starts nothing: its threads
        would be lowered too."""
        if is_lowered():
            yield
            return
        counted = False
        try:  # a Ctrl-C while a thread starts must not leave this wait counted: hurrying for ever
            with self._cond:
                self._waiters += 1
                counted = True
                self._start_threads()
            yield
        finally:
            if counted:
                with self._cond:
                    self._waiters -= 1
                    self._cond.notify_all()

    def _start_threads(self) -> None:
        """Holding the lock: start the missing threads, then let them count themselves in (so that a
        lowered thread's next step finds them idle)."""
        counted_in: list[threading.Event] = []
        while self._running + self._starting < self._threads:
            counted_in.append(threading.Event())
            thread = threading.Thread(target=self._serve, args=(counted_in[-1],),
                                      name=f"autolog-hurry-{next(self._names)}", daemon=True)
            self._starting += 1
            try:
                thread.start()
            except RuntimeError as exc:  # no thread to be had: the lowered ones go on alone
                self._starting -= 1
                counted_in.pop()
                logger.debug("autolog: no thread to hurry the snapshots' copy and hash: %s", exc)
                break
        self._cond.wait_for(lambda: all(event.is_set() for event in counted_in), timeout=_COUNT_IN_SECONDS)

    def wanted(self) -> bool:
        return self._waiters > 0 and self._idle > len(self._calls) and is_lowered()

    def run(self, work: Callable[[], T]) -> T:
        call = _Call(work)
        with self._cond:
            handed = self._idle > len(self._calls)  # else none is free since wanted(): do it here
            if handed:
                self._calls.append(call)
                self._cond.notify_all()
        if not handed:
            call.run()
        call.done.wait()
        if call.error is not None:
            raise call.error
        return call.result

    def _serve(self, counted_in: threading.Event) -> None:
        with self._cond:
            self._starting -= 1
            self._running += 1
            self._idle += 1
            counted_in.set()
            self._cond.notify_all()
        while True:
            with self._cond:
                while not self._calls:
                    if self._waiters:
                        self._cond.wait()
                    elif not self._cond.wait(self._linger) and not self._calls and not self._waiters:
                        self._running -= 1
                        self._idle -= 1
                        return
                call = self._calls.popleft()
                self._idle -= 1
            call.run()  # catches everything: the exception goes back to the lowered thread
            with self._cond:
                self._idle += 1


# A thread that started counts itself in at once; this bounds the wait should it not (a Ctrl-C in start()).
_COUNT_IN_SECONDS = 1.0
