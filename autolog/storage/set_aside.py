"""Setting a file aside instead of waiting for its copy: the fence of a back-to-back save made free.

A save of a path whose previous snapshot is still being copied must not overwrite the bytes being
read. The copy reads through a handle it opened right after that save, so it needs the *inode*, not
the path: renaming the file away (same filesystem: one metadata operation) lets the new save write a
new file at once while the copy goes on from the old one. To the user's save, nothing differs: an
empty file with the old file's owner, group and permission bits stands at the path (their
`open(path, "wb")` keeps them, as it would have kept the old file's), and if their save fails before
writing anything, the old file is put back as it was.

The file keeps its name beside the staging folder (`<staging>.aside`) until its copy has been read
and the save is over: its blocks are held by the copy's open handle anyway, and a run killed before
the copy finished leaves the saved bytes where `autolog sync` finds them. Whichever of the two ends
last removes it; never the stager while the save is still running, which may yet raise unwritten and
need the old file back.

A Ctrl-C can land between any two calls of the save, the rename and its settle included. A set-aside
is therefore entered in `_unsettled` before the rename and leaves it only once settled: one that an
interruption left there (the checkpoint missing, or an empty placeholder) is settled as a failed
save at the next save of that thread, or at close().

Only a plain file with one name qualifies (a symlink or a hard link would be cut from what it points
to or shares), without an access list (ACL) and whose owner, group and extended attributes a new file
can be given; elsewhere, and when the rename fails (another filesystem), the save waits as before.
"""
from __future__ import annotations

import logging
import os
import stat
import threading
from dataclasses import dataclass, field
from typing import Callable

from ..forking import on_fork

logger = logging.getLogger("autolog")


# A placeholder being made: an empty file at the path is autolog's (an interruption may have come
# between its creation and SetAside.placeholder getting its identity).
_PLACING = (-1, -1)


@dataclass(eq=False)
class SetAside:
    """A file renamed to `aside` while a save writes `path` anew. Two parties end it: the save
    (`settle`) and the stager once its copy has read the old file (`copy_read`)."""

    path: str
    aside: str
    placeholder: tuple[int, int] | None  # (device, inode) of the empty file left at path
    source_read: Callable[[], bool] = lambda: True  # whether the old file's copy has been read
    thread: int = field(default_factory=threading.get_ident)  # the saving thread's
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _settled: bool = False
    _put_back: bool = False  # the old file went back to path: `aside` is no longer this one's to remove

    def settle(self, raised: bool) -> None:
        """After the save: the old file is put back when the save wrote nothing, having raised or
        returned without touching the path (Keras' `save(overwrite=False)` that the user told not to
        overwrite: the placeholder made the path exist, so it asked); else it stays aside until its
        copy has been read (copy_read removes it then), or is removed now if that happened already."""
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            st = None
        placeholder_left = st is not None and stat.S_ISREG(st.st_mode) and st.st_size == 0 and \
            self.placeholder in ((st.st_dev, st.st_ino), _PLACING)
        # A save that returned with the path gone removed it on purpose: only one that raised gets it back.
        unwritten = placeholder_left or (raised and st is None)
        with self._lock:  # a copy_read meanwhile waits: it must not remove the file being put back
            self._settled = True
            if unwritten:
                if os.path.lexists(self.aside):  # else gone already: nothing to put back
                    os.replace(self.aside, self.path)
                self._put_back = True
                _forget(self)
                return
            read = self.source_read()
        if read:  # read before, or while, this save: copy_read came first and left it to us
            remove_set_aside(self.aside)
        _forget(self)

    def copy_read(self) -> None:
        """The stager has read the old file: it is removed now if the save is over, else by settle
        (the save may still raise unwritten and need it back). Not once it was put back: a later
        save of the path may have set the same file aside again, under the same name, and that
        set-aside is the one to end it."""
        with self._lock:
            if not self._settled or self._put_back:
                return
        remove_set_aside(self.aside)


def set_aside(path: str, opened: os.stat_result, aside: str,
              source_read: Callable[[], bool] = lambda: True) -> SetAside | None:
    """Rename path to aside if it is still the file `opened` describes, a plain file with one name;
    None (nothing changed) otherwise or if the rename fails. source_read tells whether its copy has
    been read (then settle removes it)."""
    try:
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1 or (st.st_dev, st.st_ino) != (opened.st_dev, opened.st_ino):
            return None
        attributes = _attributes(path)
        if _ACL in attributes:  # a new file would not get the old one's access list
            return None
        os.makedirs(os.path.dirname(aside), exist_ok=True)
        entry = SetAside(path, aside, _PLACING, source_read)
        _unsettled[entry.thread] = entry  # before the rename: an interruption after it finds the entry
        os.rename(path, aside)
    except OSError as exc:  # EXDEV: another filesystem; then the save waits for the copy
        logger.debug("autolog: %s not set aside (%s); the save waits for its copy", path, exc)
        _unsettled.pop(threading.get_ident(), None)
        return None
    try:
        entry.placeholder = _placeholder(path, st, attributes)
    except OSError as exc:  # its owner or attributes cannot be kept: the old file goes back, the save waits
        logger.debug("autolog: %s not set aside (%s); the save waits for its copy", path, exc)
        os.rename(aside, path)
        _forget(entry)
        return None
    return entry


# Set-asides made and not yet settled, by saving thread (see the module's docstring).
_unsettled: dict[int, SetAside] = {}
# A forked child must not settle its parent's: the parent's save may be about to write the path.
on_fork("set_aside.unsettled", after_in_child=_unsettled.clear)


def _forget(entry: SetAside) -> None:
    if _unsettled.get(entry.thread) is entry:
        del _unsettled[entry.thread]


def unsettled_here() -> SetAside | None:
    """The set-aside this thread made and has not settled (its save was interrupted), if any."""
    return _unsettled.get(threading.get_ident()) if _unsettled else None


def settle_left_over() -> None:
    """At close(): settle, as failed saves, the set-asides of this thread and of threads that ended,
    left by interrupted saves. Another live thread's may belong to a save still running."""
    alive = {t.ident for t in threading.enumerate()} - {threading.get_ident()}
    for thread, entry in list(_unsettled.items()):
        if thread not in alive:
            entry.settle(raised=True)


def same_file_at(path: str, opened: os.stat_result) -> bool:
    """Whether path still leads to the file `opened` describes (True when that cannot be told)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    except OSError:
        return True
    return (st.st_dev, st.st_ino) == (opened.st_dev, opened.st_ino)


def remove_set_aside(aside: str) -> None:
    try:
        os.remove(aside)
    except FileNotFoundError:  # removed by the other party (settle or the stager) first
        pass


def _placeholder(path: str, old: os.stat_result, attributes: dict[str, bytes]) -> tuple[int, int] | None:
    """An empty file at path with the old file's owner, group, permission bits and extended attributes
    (which an open(path, "wb") keeps: in a shared folder, a group that lost its file would lose the
    checkpoint; a `user.*` attribute may say where it came from). Raises OSError, leaving nothing at
    path, when the owner, the group or an attribute cannot be given."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:  # something else created it meanwhile: the save writes over that
        logger.debug("autolog: no placeholder at %s (%s)", path, exc)
        return None
    try:
        st = os.fstat(fd)
        try:
            if (st.st_uid, st.st_gid) != (old.st_uid, old.st_gid):
                os.fchown(fd, old.st_uid, old.st_gid)
            _give_attributes(fd, attributes)
        except OSError:
            os.remove(path)
            raise
        try:
            os.fchmod(fd, stat.S_IMODE(old.st_mode))  # after fchown, which may clear setuid and setgid bits
        except OSError as exc:  # the placeholder keeps 0o600: stricter, never looser, than the old file
            logger.debug("autolog: mode of the placeholder at %s not set (%s)", path, exc)
        return st.st_dev, st.st_ino
    finally:
        os.close(fd)


_ACL = "system.posix_acl_access"


def _attributes(path: str) -> dict[str, bytes]:
    """The file's extended attributes. Raises OSError when one listed cannot be read (the file is then
    not set aside: its placeholder could not be given it)."""
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except (OSError, AttributeError):  # no extended attributes here (or not on this system)
        return {}
    return {name: os.getxattr(path, name, follow_symlinks=False) for name in names}


def _give_attributes(fd: int, attributes: dict[str, bytes]) -> None:
    """The attributes on the new file, but those it was given already (a security label the folder's
    policy gives every new file, which setting again may need a privilege)."""
    for name, value in attributes.items():
        try:
            if os.getxattr(fd, name) == value:
                continue
        except OSError:
            pass
        os.setxattr(fd, name, value)


def aside_path(staging: str) -> str:
    """Where the file of a snapshot staged at `staging` is set aside (beside its staging folder, so on
    the store's or the cache's filesystem)."""
    return staging.rstrip(os.sep) + ".aside"
