"""Which local files make one snapshot, and holding them open for it.

A snapshot is one file, one folder (a SavedModel, a zip-less package), a checkpoint prefix
(``ckpt-3`` -> ``ckpt-3.index`` + ``ckpt-3.data-*``) or an explicit list of files. Their read handles
are taken right after the save, so a later rename or delete cannot lose the bytes (objects.py copies
and hashes them from those handles).
"""
from __future__ import annotations

import fnmatch
import glob
import logging
import os
import re
from dataclasses import dataclass

from .layout import display_path, real_path

logger = logging.getLogger("autolog")

# The files of a TF checkpoint prefix ("ckpt-3" -> ckpt-3.index, ckpt-3.data-00000-of-00001); other
# files that merely share the name ("ckpt-3.metrics.json") are not part of it.
_CHECKPOINT_PART = re.compile(r"\.(index|data-\d{5}-of-\d{5})")


@dataclass(frozen=True)
class Sources:
    """The local files of one snapshot.

    files: (absolute source path, name inside the snapshot) pairs.
    name:  last component of the stored URI under the snapshot key ("" = the key itself).
    entry: what to hand back inside that URI ("" = the URI itself; "ckpt-3" for a prefix).
    single: the snapshot is one plain file.

    Source paths are the real ones (what os.open needs, undecodable bytes as lone surrogates); names,
    name and entry become keys and rows, so they are display_path text (valid UTF-8).
    """

    files: tuple[tuple[str, str], ...]
    name: str
    entry: str = ""
    single: bool = False


def collect_sources(path: str | os.PathLike, exclude: tuple[str, ...] = (), companions: tuple[str, ...] = ()) -> Sources:
    """The snapshot for a saved path: a file, a folder, or a checkpoint prefix.

    A path read back from a row (display_path text) is resolved to the real file (real_path).
    exclude: globs of a folder's top-level names that are not part of it ("checkpoint-*"), or of paths
    inside it ("best/model.safetensors").
    companions: files that belong with a one-file path (ONNX external data), kept beside it.
    """
    path = os.path.abspath(os.fspath(path))
    is_file = os.path.isfile(path)  # a saved file, the common case, costs this one stat
    if not is_file and not os.path.lexists(path):
        path = real_path(path)
        is_file = os.path.isfile(path)
    if companions and is_file:
        return _with_companions(path, companions)
    if is_file:
        name = display_path(os.path.basename(path))
        return Sources(files=((path, name),), name=name, single=True)
    if os.path.isdir(path):
        files = tuple(_walk_folder(path, exclude))
        if not files:
            raise ValueError(f"Folder {path} holds no files: there is nothing to store.")
        return Sources(files=files, name=display_path(os.path.basename(path.rstrip(os.sep))) or "root")
    siblings = sorted(
        p for p in glob.glob(glob.escape(path) + ".*") if _CHECKPOINT_PART.fullmatch(p[len(path):]) and os.path.isfile(p)
    )
    if siblings:
        return Sources(files=tuple((p, display_path(os.path.basename(p))) for p in siblings), name="",
                       entry=display_path(os.path.basename(path)))
    raise FileNotFoundError(f"Nothing to store at {path}: no such file, folder or checkpoint prefix.")


def _with_companions(path: str, companions: tuple[str, ...]) -> Sources:
    """path and its companion files, named relative to path's folder, which must hold them all."""
    folder, name = os.path.split(path)
    files = [(path, display_path(name))]
    for companion in dict.fromkeys(os.path.abspath(c) for c in companions):
        rel = os.path.relpath(companion, folder)
        if rel.startswith(os.pardir + os.sep) or rel == os.pardir or os.path.isabs(rel):
            raise ValueError(f"{companion} belongs with {path} but is outside its folder: not stored.")
        if companion != path:
            files.append((companion, display_path(rel.replace(os.sep, "/"))))
    return Sources(files=tuple(files), name="", entry=display_path(name))


def collect_file_list(paths: list[str | os.PathLike]) -> Sources:
    """Several files stored side by side as one snapshot (update_weights_package)."""
    files = []
    for p in paths:
        p = os.path.abspath(os.fspath(p))
        if os.path.isdir(p):
            files += [(src, f"{display_path(os.path.basename(p))}/{rel}") for src, rel in _walk_folder(p)]
        else:
            files.append((p, display_path(os.path.basename(p))))
    names = [rel for _, rel in files]
    if len(set(names)) != len(names):
        raise ValueError(f"Files to package share names ({names}); give a folder (weights_path=) instead.")
    return Sources(files=tuple(files), name="")


def _walk_folder(root: str, exclude: tuple[str, ...] = ()):
    """root's files (source, name inside root). exclude: globs of top-level names; one with a "/" is a
    path inside root, matched at its own depth (a file half written in a subfolder: autolog.settling)."""
    real_root = os.path.realpath(root)
    top = tuple(g for g in exclude if "/" not in g)
    inside = tuple(g for g in exclude if "/" in g)
    for folder, dirs, names in os.walk(root):
        if top and folder == root:
            dirs[:] = [d for d in dirs if not _excluded(d, top)]
            names = [n for n in names if not _excluded(n, top)]
        if inside and folder != root:
            at = os.path.relpath(folder, root).replace(os.sep, "/") + "/"
            dirs[:] = [d for d in dirs if not _excluded(at + d, inside)]
            names = [n for n in names if not _excluded(at + n, inside)]
        dirs.sort()
        for name in sorted(names):
            src = os.path.join(folder, name)
            real = os.path.realpath(src)
            if os.path.commonpath([real, real_root]) != real_root:
                logger.warning("autolog: skipping %s: it links outside the folder being stored", src)
                continue
            if os.path.isfile(real):
                yield src, display_path(os.path.relpath(src, root).replace(os.sep, "/"))


def _excluded(name: str, globs: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(name, g) for g in globs)


class SourceChangedError(OSError):
    """A file changed while it was being read: the copy would not be what was saved."""


def check_unchanged(src: str, fd: int, before: os.stat_result, read: int,
                    outcome: str = "this snapshot was not stored, to avoid storing a mix of old and new bytes"
                    ) -> os.stat_result:
    """After reading `read` bytes of the file open as fd, whose stat was `before`: raise
    SourceChangedError unless it was all of it and it did not change meanwhile; else its stat now.
    (Not ctime: setting a file aside renames it, which moves its ctime and not its bytes.)"""
    after = os.fstat(fd)
    if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns) or read != before.st_size:
        raise SourceChangedError(
            f"{src} changed while autolog was reading it (modified in place by a write autolog does not "
            f"capture); {outcome}."
        )
    return after


@dataclass
class OpenedSources:
    """Read handles taken right after a save: a later rename or delete cannot lose these bytes."""

    sources: Sources
    handles: list[tuple[int, os.stat_result]]

    @property
    def size(self) -> int:
        return sum(st.st_size for _, st in self.handles)

    def close(self) -> None:
        for fd, _ in self.handles:
            try:
                os.close(fd)
            except OSError:
                pass
        self.handles = []


def open_sources(sources: Sources) -> OpenedSources:
    handles: list[tuple[int, os.stat_result]] = []
    try:
        for src, _ in sources.files:
            try:
                fd = os.open(src, os.O_RDONLY)
            except FileNotFoundError:  # a path read back from a row: display_path text of the real one
                if real_path(src) == src:
                    raise
                fd = os.open(real_path(src), os.O_RDONLY)
            handles.append((fd, os.fstat(fd)))
    except BaseException:
        OpenedSources(sources, handles).close()
        raise
    return OpenedSources(sources, handles)


def source_path(sources: Sources) -> str:
    """The path the user saved: the file, the folder, the checkpoint prefix, or the files' common folder.

    The real path (the names inside a snapshot are display_path text, which may be longer).
    """
    if sources.single:
        return sources.files[0][0]
    src, rel = sources.files[0]
    if sources.entry:
        suffix = rel[len(sources.entry):] if rel.startswith(sources.entry) else ""
        if suffix and src.endswith(suffix):  # ckpt-3.index -> ckpt-3, undecodable bytes and all
            return src[: len(src) - len(suffix)]
        return os.path.join(os.path.dirname(src), sources.entry)
    if sources.name:
        folder = src
        for _ in range(rel.count("/") + 1):  # rel is "a/b/file" below the folder saved
            folder = os.path.dirname(folder)
        return folder
    return os.path.commonpath([src for src, _ in sources.files])
