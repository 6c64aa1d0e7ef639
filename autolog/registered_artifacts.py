"""Registered artifacts (ClearML's register_artifact): a pandas DataFrame the run keeps watching.

It is uploaded when registered, and again at every task.flush() and at close() when its content changed
since the last upload (a change in place, `df.loc[len(df)] = ...`, counts: the content is compared, not
the object). The comparison is a hash of the frame (pandas.util.hash_pandas_object, with the column
names and dtypes): cheap next to writing the CSV. Each upload replaces the artifact of that name, like
upload_artifact; the object it supersedes is deleted. Unregistering uploads a last change, then stops.

What is not stored: a change made after close(), or in a process that dies without closing its task.
"""
from __future__ import annotations

import hashlib
import logging
import sys
import threading
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

from . import artifacts as _artifacts
from .forking import on_fork
from .safety import shielded
from .storage import BlobStore

if TYPE_CHECKING:
    from .runtime import TaskRuntime

__all__ = ["ArtifactWatch", "watch_of"]

logger = logging.getLogger("autolog")


@dataclass
class _Watched:
    frame: Any  # the user's DataFrame, read at each flush
    metadata: dict | None
    columns: list  # uniqueness columns: the frame's unique rows by these are counted in the preview
    fingerprint: str | None = None  # of the content last uploaded
    uri: str | None = None  # where that upload is stored


class ArtifactWatch:
    """The registered artifacts of one run, by name."""

    def __init__(self, run: "TaskRuntime"):
        self._run = run
        self._watched: dict[str, _Watched] = {}
        self._lock = threading.Lock()  # flush (close, exit) and register may run in different threads

    def __contains__(self, name: str) -> bool:
        return name in self._watched

    def register(self, name: str, frame: Any, metadata: dict | None, uniqueness_columns: bool | Sequence[str]) -> None:
        """Watch frame under name and upload it now (a name registered before is replaced)."""
        pd = sys.modules.get("pandas")
        if pd is None or not isinstance(frame, pd.DataFrame):
            raise ValueError(f"register_artifact takes a pandas.DataFrame, got {type(frame).__name__}. Use "
                             "upload_artifact(name, obj) to store any other object once.")
        watched = _Watched(frame, metadata, _columns(frame, uniqueness_columns))
        with self._lock:
            if name in self._watched:
                logger.info("autolog: register_artifact replaces the registered artifact %r", name)
            self._watched[name] = watched
            self._upload_if_changed(name, watched)

    def unregister(self, name: str) -> None:
        """Store the last change of name, then stop watching it (its artifact stays)."""
        with self._lock:
            watched = self._watched.get(name)
            if watched is None:
                raise ValueError(f"No artifact named {name!r} is registered. Registered: {sorted(self._watched)}.")
            self._upload_if_changed(name, watched)
            del self._watched[name]

    def registered(self) -> dict[str, Any]:
        """{name: the DataFrame} of every registered artifact (the user's own objects, as in ClearML)."""
        return {name: watched.frame for name, watched in self._watched.items()}

    def flush(self, final: bool) -> None:
        """Upload every registered frame whose content changed since its last upload."""
        with self._lock:
            for name, watched in list(self._watched.items()):
                with shielded(f"registered artifact {name!r}"):
                    self._upload_if_changed(name, watched)

    def _upload_if_changed(self, name: str, watched: _Watched) -> None:
        fingerprint = frame_fingerprint(watched.frame)
        if fingerprint == watched.fingerprint:
            return
        artifact = _artifacts.upload_artifact(self._run, name, watched.frame, watched.metadata,
                                              _preview(watched.frame, watched.columns))
        previous, watched.fingerprint, watched.uri = watched.uri, fingerprint, artifact.url
        if previous is not None and previous != artifact.url:
            with shielded(f"deleting the superseded copy of registered artifact {name!r}"):
                BlobStore(self._run.artifact_store.root).delete(previous)


def frame_fingerprint(frame: Any) -> str:
    """A hash of a DataFrame's content: its values, index, column names and dtypes, in order."""
    pd = sys.modules["pandas"]
    digest = hashlib.sha256(repr((list(frame.columns), [str(t) for t in frame.dtypes])).encode())
    try:
        digest.update(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes())
    except TypeError:  # cells pandas cannot hash (lists, dicts): hash their text instead
        digest.update(frame.to_csv().encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def _columns(frame: Any, uniqueness_columns: bool | Sequence[str]) -> list:
    if uniqueness_columns is True:
        return list(frame.columns)
    if isinstance(uniqueness_columns, str):
        uniqueness_columns = [uniqueness_columns]
    if isinstance(uniqueness_columns, bool) or not isinstance(uniqueness_columns, Sequence):
        raise ValueError(f"uniqueness_columns must be True (every column) or a list of column names, got "
                         f"{uniqueness_columns!r}.")
    missing = [c for c in uniqueness_columns if c not in frame.columns]
    if missing:
        raise ValueError(f"uniqueness_columns names columns the DataFrame does not have: {missing}. "
                         f"Its columns: {list(frame.columns)[:20]}.")
    return list(uniqueness_columns)


def _preview(frame: Any, columns: list) -> str:
    """ClearML's data-audit summary: rows, and unique rows by the uniqueness columns."""
    try:
        unique = len(frame.drop_duplicates(subset=columns or None))
    except TypeError:  # unhashable cells: the count is not available
        unique = "?"
    head = frame.head().to_string(max_cols=10, max_colwidth=30)
    return f"{len(frame)} rows, {unique} unique (by {', '.join(map(str, columns)) or 'all columns'})\n{head}"


# One watch per run, created on first use and flushed by the run's flush() and close().
_watches: "weakref.WeakKeyDictionary[TaskRuntime, ArtifactWatch]" = weakref.WeakKeyDictionary()
_watches_lock = threading.Lock()


def _forget_after_fork() -> None:
    """A forked child logs with a runtime of its own: the parent's frames are the parent's to upload, and
    the lock may have been held by a thread that did not come along."""
    global _watches_lock
    _watches_lock = threading.Lock()
    _watches.clear()


on_fork("artifacts.registered", after_in_child=_forget_after_fork)


def watch_of(run: "TaskRuntime", create: bool = True) -> ArtifactWatch | None:
    """The run's registered artifacts (created, and hooked into flush and close, on first use)."""
    with _watches_lock:
        watch = _watches.get(run)
        if watch is None and create:
            watch = _watches[run] = ArtifactWatch(run)
            run.add_flusher("registered artifacts", watch.flush)
        return watch
