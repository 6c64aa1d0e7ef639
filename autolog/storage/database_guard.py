"""Database calls the snapshot pipeline makes when the database may be down, frozen or slow.

The training thread must never hang on the database: its calls (a save's pending row, the first
save of a path creating its model) run in a helper thread and wait at most `timeout`. A database
that accepts connections but never answers is then skipped at once by every later call until a
probe gets an answer. Background threads instead are patient: they retry while the server is
unreachable, so a snapshot copied during an outage is still recorded when it comes back.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable, TypeVar

logger = logging.getLogger("autolog")
T = TypeVar("T")


class DatabaseNotAnswering(TimeoutError):
    """The metadata database accepted the connection but did not answer in time."""

    def __init__(self, what: str):
        super().__init__(f"{what}; this save was not recorded. Check the database server (is it frozen, "
                         "overloaded or locked?); saves are recorded again once it answers.")


def database_unreachable(exc: BaseException) -> bool:
    """SQLAlchemy's OperationalError or InterfaceError: the server refused, dropped or timed out the
    connection (checked by name: importing SQLAlchemy here would slow down `import autolog`)."""
    return type(exc).__module__.startswith("sqlalchemy") and type(exc).__name__ in ("OperationalError",
                                                                                     "InterfaceError")


def retry_while_unreachable(call: Callable[[], T], seconds: float) -> T:
    """call(), retried with backoff while the database is unreachable, for up to `seconds`."""
    deadline, delay = time.monotonic() + seconds, 0.25
    while True:
        try:
            return call()
        except Exception as exc:  # noqa: BLE001
            if not database_unreachable(exc) or time.monotonic() + delay > deadline:
                raise
            logger.debug("autolog: database unreachable (%s), retrying in %.2fs", exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


class BoundedCalls:
    """Training-thread database calls that wait at most a timeout each (see the module doc)."""

    def __init__(self, probe: Callable[[], object]):
        self._probe = probe  # a cheap query: returns once the database answers again
        self._stuck_since: float | None = None

    def call(self, fn: Callable[[], T], timeout: float, on_late: Callable[[T], None] | None = None) -> T:
        """fn() from a helper thread. On timeout, raise DatabaseNotAnswering; should fn still return,
        on_late(result) settles what it wrote (nobody is waiting for it any more)."""
        if self._stuck_since is not None:
            raise DatabaseNotAnswering(f"the database has not answered for {time.monotonic() - self._stuck_since:.0f} s")
        state: dict[str, object] = {"abandoned": False}
        lock, answered = threading.Lock(), threading.Event()

        def run() -> None:
            try:
                state["result"] = fn()
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting caller
                state["error"] = exc
            with lock:
                answered.set()
                late = state["abandoned"]
            if late:
                self._settle_late(state, on_late)

        threading.Thread(target=run, name="autolog-db-call", daemon=True).start()
        if not answered.wait(timeout):
            with lock:
                state["abandoned"] = not answered.is_set()
                if state["abandoned"]:
                    self._stuck_since = time.monotonic() - timeout
            if state["abandoned"]:
                raise DatabaseNotAnswering(f"the database did not answer within {timeout:.0f} s")
        if "error" in state:
            raise state["error"]  # type: ignore[misc]
        return state["result"]  # type: ignore[return-value]

    def _settle_late(self, state: dict, on_late: Callable | None) -> None:
        if "result" in state:
            if on_late is not None:
                on_late(state["result"])
        else:  # calls keep going on at once until the database answers again
            self._wait_until_answers()
        self._stuck_since = None

    def _wait_until_answers(self) -> None:
        while True:
            try:
                self._probe()
                return
            except Exception as exc:  # noqa: BLE001 - any failure means: not yet
                logger.debug("autolog: database still not answering (%s)", exc)
                time.sleep(1.0)
