"""A file's identity is its digest (BLAKE3); the stat cache avoids hashing a file this host already knows.

(device, inode, size, mtime_ns, ctime_ns) -> digest, kept in memory and in the database (per host),
so a file that was stored or loaded before is never hashed again while it looks the same. ctime is
part of the key because a rewrite can keep size and mtime (a copy with preserved times) but never
the inode's change time.
"""
from __future__ import annotations

import os
import threading
from typing import Callable

from ..context import Context
from ..run_info import host_name
from ..storage.hashing import fd_digest
from ..storage.objects import Content, content_of
from ..storage.sources import OpenedSources, Sources, check_unchanged, open_sources

# (device, inode) -> (stat_key, digest): one entry per file, so a run that rewrites one path many
# times keeps one entry, not one per save (a file's ctime never goes back, so older keys are dead).
_memory: dict[tuple, tuple[tuple, str]] = {}
_memory_lock = threading.Lock()
_HOST = host_name()


def stat_key(st: os.stat_result) -> tuple:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def file_identity(ctx: Context, fd: int, st: os.stat_result, src: str) -> str:
    """Digest of the file src, open as fd, whose stat is st: from the cache when it has not changed.
    Raises SourceChangedError when it changed since st or while it was hashed: the digest would be
    of bytes that were never the file's as a whole."""
    key = stat_key(st)
    known = _memory.get(key[:2])
    digest = known[1] if known is not None and known[0] == key else None
    if digest is None:
        digest = ctx.store.cached_digest(_HOST, st)
        if digest is None:
            digest = fd_digest(fd)
            after = check_unchanged(src, fd, st, st.st_size, outcome="its digest was not recorded: it would "
                                    "be of a mix of old and new bytes")
            if stat_key(after) == key:  # nor renamed (ctime): the cache's key still finds it
                ctx.store.remember_digest(_HOST, st, digest)
        with _memory_lock:
            _memory[key[:2]] = (key, digest)
    return digest


def remember_many(ctx: Context, known: list[tuple[os.stat_result, str]], write: Callable[[list], None]) -> None:
    """Record the hashes of files read to store them, through write(rows) (the caller's transaction).
    Only the newest stat of each file is written: a batch of saves of one path is one row, not many."""
    newest: dict[tuple, tuple] = {}
    for st, digest in known:
        key = stat_key(st)
        held = newest.get(key[:2])
        if held is None or (key[4], key[3]) >= (held[0][4], held[0][3]):  # ctime, then mtime; ties: later
            newest[key[:2]] = (key, st, digest)
    write([(_HOST, st, digest) for _, st, digest in newest.values()])
    with _memory_lock:
        for file, (key, _, digest) in newest.items():
            _memory[file] = (key, digest)


def opened_content(ctx: Context, opened: OpenedSources) -> Content:
    manifest = [
        {"name": rel, "size": st.st_size, "digest": file_identity(ctx, fd, st, src)}
        for (src, rel), (fd, st) in zip(opened.sources.files, opened.handles)
    ]
    return content_of(opened.sources, manifest)


def identify(ctx: Context, sources: Sources) -> Content:
    opened = open_sources(sources)
    try:
        return opened_content(ctx, opened)
    finally:
        opened.close()
