"""Keep logging failures away from the user's code.

Anything autolog does on the side of a user's call (registering a snapshot, closing at exit)
runs under ``shielded``: a failure is logged once per kind as a warning and swallowed, so the
user's call behaves exactly as without autolog. With ``AUTOLOG_STRICT=1`` (set by our tests)
the failure is raised instead, so bugs cannot hide.
"""
from __future__ import annotations

import contextlib
import logging
import threading
from typing import Iterator

from .config import env_flag, scrub

logger = logging.getLogger("autolog")

_reported: set[str] = set()
_lock = threading.Lock()


def strict() -> bool:
    return env_flag("AUTOLOG_STRICT")


def report_failure(what: str, exc: BaseException, kind: str | None = None) -> None:
    """Warn once per (kind, exception type); repeats go to debug so a training loop cannot flood the log.

    `what` names the thing not logged (shown); `kind` groups repeats of it (defaults to `what`).
    """
    kind = f"{kind or what}:{type(exc).__name__}"
    with _lock:
        first = kind not in _reported
        _reported.add(kind)
    if first:
        logger.warning("autolog: %s was not logged: %s: %s", what, type(exc).__name__, scrub(str(exc)))
    else:
        logger.debug("autolog: %s was not logged: %s", what, scrub(repr(exc)))


@contextlib.contextmanager
def shielded(what: str) -> Iterator[None]:
    """Run a side task; its exceptions are reported, never propagated (unless strict)."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - the whole point is to catch everything
        if strict():
            raise
        report_failure(what, exc)
