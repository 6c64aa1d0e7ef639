"""Database calls of the snapshot workers when the database may be down, frozen or slow.

The training thread makes no database call for a save: its rows are written by the pipeline's
recorder (pipeline.py). The workers are patient: they retry while the server is unreachable, so a
snapshot copied during an outage is still recorded when it comes back; a server that never answers
shows as a stall, and waits on the workers end (pipeline.py, stall_timeout).
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable, TypeVar

from ..errors import DatabaseUnreachableError

logger = logging.getLogger("autolog")
T = TypeVar("T")


def database_unreachable(exc: BaseException) -> bool:
    """SQLAlchemy's OperationalError or InterfaceError: the server refused, dropped or timed out the
    connection (checked by name: importing SQLAlchemy here would slow down `import autolog`); or the
    store could not open the database at all for that reason (its first connection, which sets up the
    schema, may be the one that meets the outage)."""
    if isinstance(exc, DatabaseUnreachableError):
        return True
    return type(exc).__module__.startswith("sqlalchemy") and type(exc).__name__ in ("OperationalError",
                                                                                     "InterfaceError")


def retry_while_unreachable(call: Callable[[], T], seconds: float, between_tries: threading.Event | None = None) -> T:
    """call(), retried with backoff while the database is unreachable, for `seconds`: the last try is
    made when they are up (a backoff step longer than what is left is cut short, not skipped).
    between_tries is set while it sleeps between two tries (holding nothing: a fork may go ahead)."""
    deadline, delay = time.monotonic() + seconds, 0.25
    while True:
        try:
            return call()
        except Exception as exc:  # noqa: BLE001
            left = deadline - time.monotonic()
            if not database_unreachable(exc) or left <= 0:
                raise
            logger.debug("autolog: database unreachable (%s), retrying in %.2fs", exc, min(delay, left))
            if between_tries is not None:
                between_tries.set()
            try:
                time.sleep(min(delay, left))
            finally:
                if between_tries is not None:
                    between_tries.clear()
            delay = min(delay * 2, 5.0)
