"""Folders that several calls write, snapshotted once as a whole.

`model.save_pretrained(d)` then `tokenizer.save_pretrained(d)` is one user action in two calls: the
folder is complete only after the second. Such saves (declared `settle=True`) are not snapshotted
when they return; the folder waits here and is snapshotted once, whole:
- when no such call wrote it for `settle_seconds` (a timer thread, holding the folder's path lock so
  a save into it cannot run while its files are opened);
- before the folder is written again by a call that already wrote it (the second model save of a
  folder must not overwrite the first one's weights before they were read), or by any other save of
  the folder, or by a declared write of a file that is not the model's (binding.spec.Writes);
- before it, or a file inside it, is loaded (by its name, or through a symlink that leads into it),
  and at every flush (so close() and exit store it).
A process killed (SIGKILL) within `settle_seconds` of such a save loses that snapshot; ARCHITECTURE
and the README say so.

Any other captured save of a file inside a waiting folder joins it (the pre-Trainer Hugging Face
checkpoint: save_pretrained, then torch.save of the optimizer and scheduler into the same folder),
holding the folder's lock while it writes, and is also its own snapshot; a second save of the same
file within one wait takes the folder first (it would overwrite what the folder's snapshot holds).
So does a settle save of a folder inside another waiting one (tokenizer.save_pretrained(out/tokenizer)
after model.save_pretrained(out)), whose files then join every waiting folder around them, locked
outermost first; the inner folder's next part (its tokenizer after its model) continues its own wait
and takes neither. Such a save that raises is left out of the folder, as below.

A call that raises may have written part of its files (tokenizer.save_pretrained stopped by a full
disk after model.save_pretrained returned): what it changed among the folder's top-level files is
left out of the folder's snapshots, and reported, until a call that returns writes those names again.
The snapshot is then the completed saves; a file they wrote that the failed call overwrote is lost
with it (the warning names it). A file saved into the folder, or into a folder inside it, by another
save that raised is left out the same way, if it changed. What is left out of a folder is left out
of every folder around it too (by its path inside each).
"""
from __future__ import annotations

import glob
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from .binding.core import path_lock
from .safety import shielded
from .storage.layout import folders_above, within

logger = logging.getLogger("autolog")


@dataclass
class SettlingSave:
    """What the calls that wrote one folder asked for; the snapshot takes the latest of each."""

    framework: str
    model_path: str | None
    iteration: int | None
    exclude: tuple[str, ...]
    parts: set[str] = field(default_factory=set)
    inner: set[str] = field(default_factory=set)  # files inside it that other saves wrote while it waited
    due: float = 0.0


class SettlingFolders:
    def __init__(self, take: Callable[[str, SettlingSave], None], settle_seconds: float):
        self._take = take  # snapshots the folder now (opens its files, queues the snapshot)
        self._seconds = settle_seconds
        self._pending: dict[str, SettlingSave] = {}
        # Folders taken out of _pending whose snapshot is being queued now. Whoever takes one holds its
        # path lock until the snapshot is queued, so take_all waits for it by taking that lock.
        self._taking: set[str] = set()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopped = False
        # The folder's top-level files when the settle call writing it now began (its path lock makes it
        # the only one), and per folder what calls that raised left written.
        self._before: dict[str, dict[str, tuple]] = {}
        self._broken: dict[str, set[str]] = {}
        # a save now writing a file inside waiting folders -> each folder, and its wait when this save had
        # to take it first (the save starts the folder's next wait); and what path held before the save
        self._joining: dict[str, tuple[list[tuple[str, SettlingSave | None]], object]] = {}

    def wrote(self, path: str, part: str, framework: str, model_path: str | None, iteration: int | None,
              exclude: tuple[str, ...]) -> None:
        """A settle save of path returned (its path lock is still held by the caller)."""
        with self._cond:
            save = self._pending.get(path)
            if save is None:
                save = self._pending[path] = SettlingSave(framework, model_path, iteration, exclude)
            else:
                save.model_path = model_path or save.model_path
                save.iteration = save.iteration if iteration is None else iteration
                save.exclude = tuple(sorted(set(save.exclude) | set(exclude)))
            save.parts.add(part)
            save.due = time.monotonic() + self._seconds
            self._ensure_thread()
            self._cond.notify()

    def folders_around(self, path: str) -> tuple[str, ...]:
        """The waiting folders path is inside, outermost first: the save of path takes their locks too,
        in that order. Those whose snapshot is being queued now too (the timer holds their lock until
        it is: the save's fence then finds it)."""
        if not self._pending and not self._taking:  # the common case, without a lock
            return ()
        with self._cond:
            return _folders_holding(path, self._pending.keys() | self._taking)

    def before_write(self, path: str, part: str | None, write: bool = False, held: tuple[str, ...] = ()) -> None:
        """A save of path is about to run (holding its path lock, and held's: the folders_around it had):
        a pending snapshot the save would overwrite is taken first. part: the settle call about to write,
        None for any other save; write: a declared write of a file that is not the model's."""
        if part is not None:
            self._before[path] = _top_level_files(path)
        with self._cond:
            save = self._pending.get(path)
            around = [(folder, self._pending[folder]) for folder in held if folder in self._pending]
        # a waiting folder's next part (tokenizer after model) is the same user action: it overwrites nothing
        continuing = save is not None and part is not None and part not in save.parts
        joining = []
        for folder, waiting in around:
            overwrites = write or (path in waiting.inner and not continuing)
            if overwrites:
                self._take_now(folder, waiting)
            if not write:
                joining.append((folder, waiting if overwrites else None))
        if joining:
            self._joining[path] = (joining, _state(path) if part is None else None)
        # (A folder that began waiting after this save looked for one is left as it is: its lock cannot
        # be taken while path's is held, and the save joins it unprotected for that once.)
        if save is None or (part is not None and part not in save.parts):
            return
        self._take_now(path, save)

    def after_save(self, path: str, raised: bool, part: str | None = None) -> None:
        """A save of path ended (its locks still held): the folders it joined wait from now on holding
        the file; or, the save having raised, without what it changed (and say so). A save that returns
        makes its file part of its folder's snapshots again, joined or not. part: a settle call's
        (finished() keeps what it left out in path itself)."""
        joined, was = self._joining.pop(path, ([], None))
        for folder, taken in () if raised else joined:
            with self._cond:
                save = self._pending.get(folder)
                if save is None and taken is not None:  # taken first: the next wait begins
                    save = self._pending[folder] = SettlingSave(taken.framework, taken.model_path, taken.iteration,
                                                                taken.exclude, set(taken.parts))
                    self._ensure_thread()
                if save is not None:
                    save.inner.add(path)
                    save.due = time.monotonic() + self._seconds
                    self._cond.notify()
        if part is not None:
            return
        parent, name = os.path.split(path)
        if raised and joined and _state(path) != was:
            self._leave_out(parent, {name}, raised=True)
            logger.warning("autolog: the save of %s raised: the snapshots of folder %s leave it out until a save "
                           "that returns writes it again", path, ", ".join(folder for folder, _ in joined))
        elif not raised and self._broken:
            self._leave_out(parent, {name}, raised=False)

    def finished(self, path: str, part: str, raised: bool) -> None:
        """A settle call of path ended (its path lock still held): what a call that raised changed is
        left out of the folder's snapshots; a call that returned makes what it wrote part of them again."""
        before = self._before.pop(path, None)
        if before is None or (not raised and path not in self._broken):
            return
        after = _top_level_files(path)
        changed = {name for name, key in after.items() if before.get(name) != key}
        self._leave_out(path, changed, raised)
        # What the call removed (save_pretrained cleans out an earlier save's shards) is nothing to leave out.
        gone = {name for name in self._broken.get(path, set()) if not os.path.lexists(os.path.join(path, name))}
        self._leave_out(path, gone, raised=False)
        if raised and changed:
            overwritten = sorted(changed & set(before))
            logger.warning("autolog: %s(%s) raised after writing %s: the folder's snapshots leave %s out until a "
                           "save that returns writes %s again%s", part, path, ", ".join(sorted(changed)),
                           "it" if len(changed) == 1 else "them", "it" if len(changed) == 1 else "them",
                           f" (overwritten, so lost from the completed saves too: {', '.join(overwritten)})"
                           if overwritten else "")

    def _leave_out(self, folder: str, names: set[str], raised: bool) -> None:
        """names in folder, written by a call that raised, are left out of its snapshots; written by one
        that returned, they are back in."""
        with self._cond:
            broken = self._broken.get(folder, set())
            broken = broken | names if raised else broken - names
            if broken:
                self._broken[folder] = broken
            else:
                self._broken.pop(folder, None)

    def left_out(self, path: str) -> tuple[str, ...]:
        """Exclude globs (storage.sources) for what calls that raised left written in the folder path:
        its own files, and those of folders inside it by their path inside it."""
        with self._cond:
            broken = [(folder, set(names)) for folder, names in self._broken.items() if within(folder, path)]
        globs = []
        for folder, names in broken:
            at = "" if folder == path else os.path.relpath(folder, path).replace(os.sep, "/") + "/"
            globs += [glob.escape(at + name) for name in names]
        return tuple(sorted(globs))

    def take(self, path: str) -> None:
        """Snapshot path, and the folders around it, now if they are waiting (before a load of path: its
        lineage is then linked once their snapshots are recorded), found by path's name and by the file
        it leads to (`latest -> checkpoint-6`)."""
        for folder in self._waiting_holding(path):
            if folder in self._pending:
                self._take_locked(folder, only_if_due=False)
            elif folder in self._taking:  # the timer is queueing its snapshot: the load's lineage comes after
                with path_lock(folder):
                    pass

    def _waiting_holding(self, path: str) -> list[str]:
        """The waiting folders that are path or hold it, by name or once resolved, outermost first.
        For take() only, which holds one folder's lock at a time: a save's locks go by name
        (folders_around), whose order a resolved path need not keep."""
        if not self._pending and not self._taking:
            return []
        with self._cond:
            waiting = self._pending.keys() | self._taking
        holding = {folder: folder for folder in waiting if within(path, folder)}
        if "://" not in path:
            try:
                real = os.path.realpath(path)
                holding.update((folder, resolved) for folder, resolved in
                               ((folder, os.path.realpath(folder)) for folder in waiting) if within(real, resolved))
            except (OSError, ValueError):  # a name no file can have (a NUL byte): by name only
                pass
        return sorted(holding, key=lambda folder: len(holding[folder]))

    def take_all(self) -> None:
        """Snapshot every waiting folder now (flush, close), and wait for those another thread (the
        timer, a save) is taking: the flush after this must find their snapshots queued. A folder that
        cannot be snapshotted (deleted before it settled) is reported once all are taken: raised, it
        had left the others unsnapshotted, and close() had raised it."""
        with self._cond:
            paths = list(self._pending)
            taking = list(self._taking)
        failed: list[tuple[str, Exception]] = []
        for path in paths:
            try:
                self._take_locked(path, only_if_due=False)
            except Exception as exc:  # noqa: BLE001 - reported below, after the other folders
                failed.append((path, exc))
        for path in taking:
            with path_lock(path):
                pass
        for path, exc in failed:
            with shielded(f"the snapshot of folder {path}"):
                raise exc

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()

    def _take_locked(self, path: str, only_if_due: bool) -> None:
        with path_lock(path):
            with self._cond:
                save = self._pending.get(path)
                if save is None or (only_if_due and save.due > time.monotonic()):
                    return  # taken meanwhile, or written again while this waited for the lock
            self._take_now(path, save)

    def _take_now(self, path: str, save: SettlingSave) -> None:
        """Called holding path's lock: snapshot the folder now. A Ctrl-C before its snapshot was queued
        puts it back to wait (the next take, or the flush, queues it): a Ctrl-C is raised where a call
        returns, and each step from taking it out of _pending to queueing it is inside this `try`."""
        try:
            with self._cond:
                if self._pending.get(path) is not save:
                    return
                del self._pending[path]
                self._taking.add(path)
            self._take(path, save)
        except BaseException as exc:
            if not isinstance(exc, Exception):
                with self._cond:
                    self._pending.setdefault(path, save)
            raise
        finally:
            with self._cond:
                self._taking.discard(path)

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="autolog-settle", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                due: list[str] = []
                while not self._stopped and not due:
                    now = time.monotonic()
                    due = [p for p, s in self._pending.items() if s.due <= now]
                    if not due:
                        wait = min((s.due for s in self._pending.values()), default=now + 3600) - now
                        self._cond.wait(max(wait, 0.001))
                if self._stopped:
                    return
            for path in due:
                with shielded(f"the snapshot of folder {path}"):
                    self._take_locked(path, only_if_due=True)


def _folders_holding(path: str, folders) -> tuple[str, ...]:
    """The waiting folders path is inside, outermost first (a save_pretrained folder, then
    torch.save(extra, folder/x))."""
    return tuple(reversed([folder for folder in folders_above(path) if folder in folders]))


def _state(path: str) -> object:
    """What a save into a waiting folder may change at path: a file's (size, mtime_ns, inode), or those
    of every file of a folder; None where nothing is."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not os.path.isdir(path):
        return (st.st_size, st.st_mtime_ns, st.st_ino)
    files = []
    for folder, _, names in os.walk(path):
        for name in names:
            try:
                st = os.stat(os.path.join(folder, name))
            except OSError:
                continue
            files.append((os.path.relpath(os.path.join(folder, name), path), st.st_size, st.st_mtime_ns, st.st_ino))
    return sorted(files)


def _top_level_files(folder: str) -> dict[str, tuple]:
    """name -> (size, mtime_ns, inode) of the folder's top-level files: what a save_pretrained writes."""
    files = {}
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                try:
                    if entry.is_file():
                        st = entry.stat()
                        files[entry.name] = (st.st_size, st.st_mtime_ns, st.st_ino)
                except OSError:
                    continue
    except OSError:  # not there yet: the call makes it
        pass
    return files
