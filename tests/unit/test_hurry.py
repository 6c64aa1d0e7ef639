"""While someone waits, a lowered thread's loop of copy or hash steps goes on at the waiter's priority
(storage/handoff.py's drive, snapshots/cpu_priority.py's Hurry), on real threads with real nice values:
the steps after the wait began run on a hurry thread at the waiter's priority, the result and any
exception come back to the lowered thread, nothing moves when nobody waits, when the thread is not
lowered or when the waiter is lowered itself, and the hurry threads serve the next waits, then end
once nobody has waited for a while."""
from __future__ import annotations

import os
import sys
import threading
import time
from typing import Callable, Generator

import pytest

from autolog.snapshots.cpu_priority import Hurry, lower_this_thread
from autolog.storage.copy_progress import CopyProgress, digest_behind
from autolog.storage.handoff import drive
from autolog.storage.hashing import HASH_STEP, file_digest
from autolog.storage.objects import kernel_copy

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a per-thread nice value is Linux's")

JOIN = 10.0  # seconds: a safety net, never a timing assertion
BASE = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())  # pytest may itself run under nice


def where() -> tuple[str, int]:
    return threading.current_thread().name, os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def steps(seen: list[tuple[str, int]], count: int, first_done: threading.Event | None = None,
          go_on: threading.Event | None = None, fail_at: int | None = None) -> Generator[None, None, str]:
    """count steps, each noting where it ran; after the first, waits for go_on (the test's cue)."""
    for step in range(count):
        if fail_at == step:
            raise OSError(f"injected at step {step}")
        seen.append(where())
        if step == 0 and first_done is not None:
            first_done.set()
            assert go_on is not None and go_on.wait(JOIN)
        yield
    return f"{count} steps"


def in_thread(body: Callable[[], object], nice: int = 10) -> threading.Thread:
    """body on a new thread that lowers itself to nice first, as the stager and the hasher do."""
    def run() -> None:
        lower_this_thread(nice)
        body()

    thread = threading.Thread(target=run, name="lowered", daemon=True)  # a hung one must not hang pytest
    thread.start()
    return thread


LINGER = 0.05  # seconds the tests' hurry threads wait for the next wait


def hurry_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("autolog-hurry")]


def wait_until(condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + JOIN
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_drive_runs_the_steps_here_without_a_handoff():
    seen: list[tuple[str, int]] = []
    assert drive(steps(seen, 3)) == "3 steps"
    assert seen == [where()] * 3


@pytest.mark.skipif(BASE >= 10, reason="this process already runs at nice 10 or more")
def test_once_someone_waits_the_rest_runs_at_the_waiters_priority_and_the_result_comes_back():
    hurry, seen, result = Hurry(linger=LINGER), [], []
    first_done, go_on = threading.Event(), threading.Event()
    lowered = in_thread(lambda: result.append(drive(steps(seen, 4, first_done, go_on), hurry)))
    assert first_done.wait(JOIN)
    with hurry.while_waiting():  # this thread waits, at the process's priority
        go_on.set()
        lowered.join(JOIN)
        assert not lowered.is_alive()
    assert result == ["4 steps"]
    # The step under way when the wait began ends where it was; the next ones run on a hurry thread.
    assert seen[0] == ("lowered", 10)
    assert {name.rsplit("-", 1)[0] for name, _ in seen[1:]} == {"autolog-hurry"}, seen
    assert {nice for _, nice in seen[1:]} == {BASE}, seen
    assert wait_until(lambda: hurry._running == 0), "the hurry threads outlived the wait"


@pytest.mark.skipif(BASE >= 10, reason="this process already runs at nice 10 or more")
def test_an_error_in_a_step_handed_over_is_raised_in_the_lowered_thread():
    hurry, seen, raised = Hurry(linger=LINGER), [], []
    first_done, go_on = threading.Event(), threading.Event()

    def body() -> None:
        try:
            drive(steps(seen, 4, first_done, go_on, fail_at=3), hurry)
        except OSError as exc:
            raised.append(str(exc))

    lowered = in_thread(body)
    assert first_done.wait(JOIN)
    with hurry.while_waiting():
        go_on.set()
        lowered.join(JOIN)
    assert raised == ["injected at step 3"]
    assert seen[-1][0].startswith("autolog-hurry")


def test_nothing_moves_when_nobody_waits_or_the_thread_is_not_lowered():
    hurry = Hurry(linger=LINGER)
    alone: list[tuple[str, int]] = []
    thread = in_thread(lambda: drive(steps(alone, 3), hurry))
    thread.join(JOIN)
    assert {name for name, _ in alone} == {"lowered"}
    not_lowered: list[tuple[str, int]] = []
    with hurry.while_waiting():
        thread = in_thread(lambda: drive(steps(not_lowered, 3), hurry), nice=0)
        thread.join(JOIN)
    assert {name for name, _ in not_lowered} == {"lowered"}


@pytest.mark.skipif(BASE >= 10, reason="this process already runs at nice 10 or more")
def test_a_lowered_waiter_starts_no_thread_and_hurries_nothing():
    hurry, seen = Hurry(linger=LINGER), []
    first_done, go_on = threading.Event(), threading.Event()
    started: list[int] = []

    def lowered_waiter() -> None:
        with hurry.while_waiting():
            started.append(hurry._running)
            go_on.set()
            worker.join(JOIN)

    worker = in_thread(lambda: drive(steps(seen, 3, first_done, go_on), hurry))
    assert first_done.wait(JOIN)
    in_thread(lowered_waiter).join(JOIN)
    assert started == [0]
    assert {name for name, _ in seen} == {"lowered"}


def test_threads_that_ended_leave_the_call_to_its_own_thread():
    """wanted() said yes, then the last waiter left and its threads ended: run() does the work itself."""
    hurry = Hurry(linger=LINGER)
    with hurry.while_waiting():
        assert hurry._running == 2
    assert wait_until(lambda: hurry._running == 0)
    assert hurry.run(lambda: where()[0]) == threading.current_thread().name


def test_the_threads_of_one_wait_serve_the_next_and_end_once_nobody_waited_for_a_while():
    hurry = Hurry(linger=1.0)
    before = set(hurry_threads())
    with hurry.while_waiting():
        started = set(hurry_threads()) - before
    assert len(started) == 2
    time.sleep(0.2)  # a thread that did not linger would have ended by now
    with hurry.while_waiting():  # no new thread to start (each start waits until the thread runs)
        assert set(hurry_threads()) - before == started
    assert wait_until(lambda: hurry._running == 0 and not any(t.is_alive() for t in started))


def test_hurry_with_no_threads_starts_none():
    hurry = Hurry(threads=0)
    with hurry.while_waiting():
        assert hurry._running == 0


@pytest.fixture
def hurry_starts(monkeypatch):
    """Which hurry threads may start: `refuse` names the starts (0, 1, ...) that raise as a full thread
    table does; `interrupt` those after which a Ctrl-C arrives (the thread started)."""
    plan = {"refuse": set(), "interrupt": set(), "count": 0}
    real_start = threading.Thread.start

    def start(thread: threading.Thread) -> None:
        if not thread.name.startswith("autolog-hurry"):
            return real_start(thread)
        number = plan["count"]
        plan["count"] += 1
        if number in plan["refuse"]:
            raise RuntimeError("can't start new thread")
        real_start(thread)
        if number in plan["interrupt"]:  # what Python's SIGINT handler raises, here (a real signal may
            raise KeyboardInterrupt      # find another handler installed by an earlier test)

    monkeypatch.setattr(threading.Thread, "start", start)
    return plan


@pytest.mark.skipif(BASE >= 10, reason="this process already runs at nice 10 or more")
def test_with_one_thread_to_be_had_a_copy_and_the_hash_behind_it_both_end(tmp_path, hurry_starts):
    """Only one hurry thread starts. The hash reading behind a copy is handed to it first and waits
    for the copy: the copy must not be queued behind it (both hung for good), but go on where it is."""
    hurry_starts["refuse"] = {1}
    source, target = tmp_path / "saved.pt", tmp_path / "staged.pt"
    source.write_bytes(os.urandom(4 * HASH_STEP))
    size = source.stat().st_size
    hurry, progress, results = Hurry(linger=LINGER), CopyProgress(), {}
    copy_paused, copy_go, hash_paused, hash_go = (threading.Event() for _ in range(4))

    def pause_once(paused: threading.Event, go: threading.Event) -> Callable[[int], None]:
        def on_step(count: int) -> None:
            if not paused.is_set():
                paused.set()
                assert go.wait(JOIN)
        return on_step

    def copy() -> None:
        pause = pause_once(copy_paused, copy_go)

        def copied(count: int) -> None:
            progress.advance(count)
            pause(count)

        with open(source, "rb") as src, open(target, "wb") as dst:
            results["copied"] = kernel_copy(src.fileno(), dst.fileno(), size, copied, lambda: True, hurry)
        progress.end(True)

    def hash_behind() -> None:
        results["digest"] = digest_behind(progress, str(target), 0, size,
                                          on_progress=pause_once(hash_paused, hash_go), handoff=hurry)

    handed_hash_waits = threading.Event()  # the hash, on the hurry thread, waits for the copy
    wait_copied = progress.wait_copied

    def noted_wait_copied(count: int) -> int:
        if threading.current_thread().name.startswith("autolog-hurry"):
            handed_hash_waits.set()
        return wait_copied(count)

    progress.wait_copied = noted_wait_copied  # type: ignore[method-assign]
    copier, hasher = in_thread(copy), in_thread(hash_behind)
    assert copy_paused.wait(JOIN) and hash_paused.wait(JOIN)
    with hurry.while_waiting():
        assert hurry._running == 1
        hash_go.set()
        assert handed_hash_waits.wait(JOIN), "the hash was not handed to the one thread"
        copy_go.set()
        hasher.join(JOIN)
        copier.join(JOIN)
        assert not hasher.is_alive() and not copier.is_alive(), "the copy waited behind the hash behind it"
    assert results["digest"] == file_digest(source)


def test_a_ctrl_c_while_a_wait_starts_its_threads_leaves_nothing_hurrying(hurry_starts):
    """The wait ends with the interruption; it is not counted as waiting for ever (every lowered copy
    and hash would go on at full priority, and the threads would never end)."""
    hurry_starts["interrupt"] = {0}
    hurry = Hurry(linger=LINGER)
    with pytest.raises(KeyboardInterrupt):
        with hurry.while_waiting():
            pass
    assert hurry._waiters == 0
    assert wait_until(lambda: not hurry_threads()), "the hurry threads outlived the interrupted wait"
    wanted: list[bool] = []
    in_thread(lambda: wanted.append(hurry.wanted())).join(JOIN)
    assert wanted == [False]
    hurry_starts["interrupt"] = set()
    with hurry.while_waiting():  # the next wait starts its two threads as usual
        assert hurry._running == 2
