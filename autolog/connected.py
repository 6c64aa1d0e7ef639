"""Dicts and lists connected to a running task keep being recorded (ClearML's connect(dict) and
connect_configuration(dict)): a change the script makes afterwards is stored too.

ClearML returns a dict subclass that writes to the server at every item set. Here the script keeps its
own object (`task.connect(d)` returns `d` itself: a plain dict, JSON- and pickle-able as before, whose
item sets cost nothing), and the run compares it with what it stored last, storing what changed:
- at every `task.flush()`, and at `close()`: also the close at exit, after an unhandled exception,
  and on SIGTERM (runtime.add_flusher);
- before the task's parameters or configuration are read or written through the running task, so
  that `task.get_parameters()` shows the change, as in ClearML, and a later `set_parameter()` of the
  same name still wins over an earlier change to the dict.
A training loop that sets a connected value a million times writes nothing until then.

Parameters: added and changed values are stored, nested dicts and lists changed in place included; a
key removed from the dict stays stored, as in ClearML (its writes add and update, never delete). A
configuration is stored again whole when it changed; a value that is not JSON cannot be stored: that
is reported, once, and the last stored version is kept. Not stored: a change made after close(), or in
a process killed without a chance to close (SIGKILL, os._exit).
"""
from __future__ import annotations

import json
import logging
import threading
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from . import configuration as config
from .forking import on_fork
from .parameters import flatten, full_name, parameter_value
from .safety import shielded

if TYPE_CHECKING:
    from .runtime import TaskRuntime

__all__ = ["ConnectedObjects", "connected_of"]

logger = logging.getLogger("autolog")
_READ_ATTEMPTS = 3  # another thread changing the dict while it is read: try again, then at the next sync


@dataclass
class _Connected:
    obj: Any  # the user's dict (or list), read at each sync
    what: str  # names it in a warning
    read: Callable[[Any], tuple[Any, Any]]  # obj -> (what is compared, what is written)
    write: Callable[[Any, Any], None]  # (what is written now, what was compared last) -> store it
    last: Any  # what was compared when it was stored last


class ConnectedObjects:
    """The objects connected to one run, each stored again when its content changed."""

    def __init__(self) -> None:
        self._entries: dict[tuple, _Connected] = {}
        self._lock = threading.RLock()  # sync runs in the training thread, at exit, and in argparse's
        self._syncing = False  # a store that reads the task during a sync must not start another one

    def parameters(self, obj: Any, section: str, store: Callable[[dict[str, Any]], None]) -> None:
        """Watch dict obj, connected to `section` (its values are stored already): store(values) gets
        {"Section/name": value} of the values added or changed since."""
        with self._lock:
            self._entries[("parameters", section, id(obj))] = _Connected(
                obj, f"a change to the dict connected to section {section!r}", _parameters_reader(section),
                _parameters_writer(store), _read(_parameters_reader(section), obj)[0])

    def configuration(self, obj: Any, name: str, store: Callable[[Any], None]) -> None:
        """Watch obj, connected as configuration `name` (stored already): store(value) gets its JSON
        value when it changed. A later connect of that name replaces the watch, as it replaces the value."""
        with self._lock:
            self._entries[("configuration", name)] = _Connected(
                obj, f"configuration {name!r} changed after connect_configuration", _configuration_read,
                lambda value, last: store(value), _read(_configuration_read, obj)[0])

    def sync(self) -> None:
        """Store what changed in each watched object since it was stored last."""
        with self._lock:
            if self._syncing:
                return
            self._syncing = True
            try:
                for entry in list(self._entries.values()):
                    with shielded(entry.what):
                        _sync_one(entry)
            finally:
                self._syncing = False

    def flush(self, final: bool) -> None:
        """The run's flusher: flush() and close() store the last changes."""
        self.sync()


def _sync_one(entry: _Connected) -> None:
    try:
        compared, value = _read(entry.read, entry.obj)
    except RuntimeError as exc:  # changed by another thread while being read, each time: the next sync
        logger.debug("autolog: %s is being changed; it is stored at the next flush: %s", entry.what, exc)
        return
    if compared != entry.last:
        entry.write(value, entry.last)
        entry.last = compared  # only once stored: a failed write is tried again at the next sync


def _read(read: Callable[[Any], tuple[Any, Any]], obj: Any) -> tuple[Any, Any]:
    for _ in range(_READ_ATTEMPTS - 1):
        try:
            return read(obj)
        except RuntimeError:  # "dictionary changed size during iteration": another thread is changing it
            continue
    return read(obj)


def _parameters_reader(section: str) -> Callable[[Any], tuple[dict[str, str], dict[str, Any]]]:
    def read(obj: Any) -> tuple[dict[str, str], dict[str, Any]]:
        """({"Section/name": fingerprint}, {"Section/name": value}) of the dict's flattened values."""
        values = {full_name(name, section): value for name, value in flatten(obj).items()}
        return {name: _fingerprint(value) for name, value in values.items()}, values
    return read


def _parameters_writer(store: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any], dict[str, str]], None]:
    def write(values: dict[str, Any], last: dict[str, str]) -> None:
        changed = {name: value for name, value in values.items() if last.get(name) != _fingerprint(value)}
        if changed:
            store(changed)
    return write


def _fingerprint(value: Any) -> str:
    """What a value is stored as, to compare: JSON tells 1 from 1.0 and True (== does not), and a NaN
    equals itself; a tuple is told from the list it is stored as, since its type is stored too."""
    return ("tuple:" if isinstance(value, tuple) else "") + json.dumps(parameter_value(value))


def _configuration_read(obj: Any) -> tuple[str, Any]:
    value = config.checked(obj, "configuration")  # TypeError naming a part that is not JSON
    return json.dumps(value), value


# One set per run, created on the first connect and synced by the run's flush() and close().
_connected: "weakref.WeakKeyDictionary[TaskRuntime, ConnectedObjects]" = weakref.WeakKeyDictionary()
_connected_lock = threading.Lock()


def _forget_after_fork() -> None:
    """A forked child logs with a runtime of its own: the parent's dicts are the parent's to store, and
    the lock may have been held by a thread that did not come along."""
    global _connected_lock
    _connected_lock = threading.Lock()
    _connected.clear()


on_fork("parameters.connected", after_in_child=_forget_after_fork)


def connected_of(run: "TaskRuntime", create: bool = True) -> ConnectedObjects | None:
    """The run's connected objects (created, and hooked into flush and close, on first use)."""
    with _connected_lock:
        watched = _connected.get(run)
        if watched is None and create:
            watched = _connected[run] = ConnectedObjects()
            run.add_flusher("dicts connected to the task", watched.flush)
        return watched
