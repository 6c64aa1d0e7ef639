"""When a wait calls the background work stalled (worker.Heartbeat, worker.Watch), on a clock the test
moves: quiet time counts against stall_timeout only once a wait has watched it end on time, a late poll
(the process was paused) means watching again, and a stall one wait confirmed ends later waits at once
until the work moves. (A restarted worker beats the heartbeat: test_supervisor.py.)"""
from __future__ import annotations

import math

import pytest

from autolog.snapshots import worker
from autolog.snapshots.worker import CONFIRM, LATE, Heartbeat
from worker_clock import Clock

PATIENCE = 5.0
POLL = 0.25


def look_after(watch: worker.Watch, clock: Clock, seconds: float, poll: float = POLL) -> float | None:
    """The wait sleeps `poll` (asked), and looks `seconds` later (on time, early or late)."""
    watch.poll(poll)
    clock.now += seconds
    return watch.stalled()


def test_quiet_shorter_than_the_patience_is_no_stall(clock: Clock) -> None:
    heartbeat = Heartbeat()
    watch = heartbeat.watch(PATIENCE)
    for _ in range(int(PATIENCE / POLL)):
        assert look_after(watch, clock, POLL) is None
    assert heartbeat.quiet_for() == pytest.approx(PATIENCE)
    assert heartbeat.stalled_since is None


def test_a_wait_watching_on_time_from_the_last_beat_gives_up_after_the_patience(clock: Clock) -> None:
    heartbeat = Heartbeat()
    watch = heartbeat.watch(PATIENCE)
    looks = [look_after(watch, clock, POLL) for _ in range(int(PATIENCE / POLL) + 1)]
    assert looks[:-1] == [None] * int(PATIENCE / POLL)
    assert looks[-1] == pytest.approx(PATIENCE + POLL)
    assert heartbeat.stalled_since == heartbeat.last


def test_a_wait_that_begins_after_a_quiet_spell_watches_confirm_seconds_first(clock: Clock) -> None:
    heartbeat = Heartbeat()
    clock.now += 10 * PATIENCE  # nobody waited meanwhile (or the process was paused)
    watch = heartbeat.watch(PATIENCE)
    seen = 0.0
    while seen + POLL < CONFIRM:
        assert look_after(watch, clock, POLL) is None, seen
        seen += POLL
    assert look_after(watch, clock, POLL) == pytest.approx(10 * PATIENCE + seen + POLL)


def test_a_beat_while_confirming_ends_the_quiet(clock: Clock) -> None:
    heartbeat = Heartbeat()
    clock.now += 10 * PATIENCE
    watch = heartbeat.watch(PATIENCE)
    assert look_after(watch, clock, CONFIRM / 2) is None
    heartbeat.beat()
    for _ in range(int(PATIENCE / POLL)):
        assert look_after(watch, clock, POLL) is None
    assert look_after(watch, clock, POLL) is not None  # the new quiet spell, watched on time all along


@pytest.mark.parametrize("late_by", [LATE * 1.5, 3 * PATIENCE])
def test_a_poll_that_comes_back_late_means_watching_again(clock: Clock, late_by: float) -> None:
    heartbeat = Heartbeat()
    watch = heartbeat.watch(PATIENCE)
    for _ in range(int(PATIENCE / POLL) - 1):
        assert look_after(watch, clock, POLL) is None
    # Paused (a full garbage collection, Ctrl-Z): the poll is back late and the quiet is past the patience.
    assert look_after(watch, clock, POLL + late_by) is None
    seen = 0.0
    while seen + POLL < CONFIRM:
        assert look_after(watch, clock, POLL) is None, seen
        seen += POLL
    assert look_after(watch, clock, POLL) is not None


def test_a_poll_back_early_or_within_late_of_its_time_is_on_time(clock: Clock) -> None:
    heartbeat = Heartbeat()
    clock.now += 10 * PATIENCE
    watch = heartbeat.watch(PATIENCE)
    assert look_after(watch, clock, POLL / 10) is None  # woken early: a notify
    assert look_after(watch, clock, POLL + LATE * 0.9) is None
    rest = CONFIRM - POLL / 10 - POLL - LATE * 0.9 + 0.01
    assert look_after(watch, clock, rest, poll=rest) is not None  # watched CONFIRM seconds, on time


def test_once_confirmed_later_waits_give_up_at_once_until_the_work_moves(clock: Clock) -> None:
    heartbeat = Heartbeat()
    clock.now += 10 * PATIENCE
    first = heartbeat.watch(PATIENCE)
    while look_after(first, clock, POLL) is None:
        pass
    assert heartbeat.watch(PATIENCE).stalled() == pytest.approx(heartbeat.quiet_for())  # no confirming again
    heartbeat.beat()
    clock.now += 10 * PATIENCE
    assert heartbeat.watch(PATIENCE).stalled() is None  # a new quiet spell: confirmed afresh


def test_a_patience_shorter_than_confirm_is_also_the_confirmation(clock: Clock) -> None:
    patience = CONFIRM / 4
    heartbeat = Heartbeat()
    clock.now += 10
    watch = heartbeat.watch(patience)
    assert look_after(watch, clock, patience / 2, poll=patience / 2) is None
    assert look_after(watch, clock, patience / 2 + 0.01, poll=patience / 2) is not None


def test_a_look_without_a_sleep_asked_before_it_counts_any_delay_as_a_pause(clock: Clock) -> None:
    """flush() looks once before its first sleep; a look after the wait's own work took long (a
    collection that its allocations started) restarts the confirmation like a late poll."""
    heartbeat = Heartbeat()
    clock.now += 10 * PATIENCE
    watch = heartbeat.watch(PATIENCE)
    clock.now += CONFIRM / 2
    assert watch.stalled() is None  # 0.5 s after the wait began, with no sleep asked: paused
    assert look_after(watch, clock, CONFIRM * 0.6, poll=CONFIRM * 0.6) is None  # 1.1 s in, 0.6 s on time
    clock.now += CONFIRM / 2
    assert watch.stalled() is None  # again: the last look asked for no sleep
    assert look_after(watch, clock, CONFIRM, poll=CONFIRM) is not None


def test_on_a_machine_so_loaded_that_every_poll_is_late_a_wait_still_ends(clock: Clock) -> None:
    """Each late poll restarts the confirmation, but the wait credits each look with the sleep it asked
    for (plus LATE): once that adds up to patience + CONFIRM of the quiet spell, it gives up."""
    heartbeat = Heartbeat()
    watch = heartbeat.watch(PATIENCE)
    late = POLL + 2 * LATE + 0.05  # every poll back this much after its time
    looks = 0
    while look_after(watch, clock, POLL + late) is None:
        looks += 1
        assert looks < 1000, "the wait never ends"
    credited = POLL + LATE
    assert looks + 1 == math.ceil((PATIENCE + CONFIRM) / credited - 1e-9)
    heartbeat.beat()  # the work moved: a new quiet spell, credited from nothing
    clock.now += 0.01
    assert watch.stalled() is None
    looks = 1
    while look_after(watch, clock, POLL + late) is None:
        looks += 1
    assert looks == math.ceil((PATIENCE + CONFIRM) / credited - 1e-9)


def test_a_pause_after_a_wait_watched_most_of_the_patience_is_still_excused(clock: Clock) -> None:
    heartbeat = Heartbeat()
    watch = heartbeat.watch(PATIENCE)
    for _ in range(int((PATIENCE - CONFIRM / 2) / POLL)):
        assert look_after(watch, clock, POLL) is None
    assert look_after(watch, clock, POLL + 2 * PATIENCE) is None  # a long pause: past patience, excused
    assert look_after(watch, clock, POLL) is None
    heartbeat.beat()  # the work moved once the process ran again
    assert look_after(watch, clock, POLL) is None
