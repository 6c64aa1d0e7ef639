"""Snapshot content: storing a snapshot's files (sources.py says which they are) and fetching them back.

Each file is read once from the handle taken after the save, copied by the kernel, hashed, staged,
then published under its key in one step.
"""
from __future__ import annotations

import logging
import os
import shutil
import uuid
from dataclasses import dataclass, field
from typing import Callable, Generator

from ..errors import IntegrityError
from ..config import redact_url
from .blobstore import BlobStore, download, filesystem, is_local, normalize_uri, open_for_read, write_all
from .copy_progress import CopyProgress, digest_behind
from .filesystem_type import filesystem_type
from .handoff import Handoff, drive
from .hashing import (CHUNK, HASH_STEP, IDENTITY, SHA256, algorithm_of, bytes_digest, fd_digest, file_digest,
                      file_digests, hex_of, manifest_digest, short, stream_digests)
from .layout import real_path
from .sources import OpenedSources, Sources, check_unchanged, open_sources

logger = logging.getLogger("autolog")


@dataclass(frozen=True)
class Content:
    digest: str  # "<algorithm>:<hex>" (hashing.py)
    size: int
    manifest: list = field(default_factory=list)  # [{"name", "size", "digest"}]; [] for a single file

    @property
    def sha256(self) -> str | None:
        """The plain sha256, when that is what the digest is (artifacts)."""
        return hex_of(self.digest) if algorithm_of(self.digest) == SHA256 else None


@dataclass(frozen=True)
class Published:
    uri: str
    entry: str
    content: Content
    deduplicated: bool


def hash_opened(opened: OpenedSources, algorithm: str = IDENTITY) -> Content:
    """Hash without copying (output_uri=None records path + hash only)."""
    manifest = []
    for (src, rel), (fd, before) in zip(opened.sources.files, opened.handles):
        digest = fd_digest(fd, algorithm)
        check_unchanged(src, fd, before, before.st_size)
        manifest.append({"name": rel, "size": before.st_size, "digest": digest})
    return content_of(opened.sources, manifest, algorithm)


def hash_sources(sources: Sources, algorithm: str = IDENTITY) -> Content:
    opened = open_sources(sources)
    try:
        return hash_opened(opened, algorithm)
    finally:
        opened.close()


def content_of(sources: Sources, manifest: list, algorithm: str = IDENTITY) -> Content:
    """The content of a snapshot from its files' entries: a single file is its own digest."""
    size = sum(e["size"] for e in manifest)
    if sources.single:
        return Content(digest=manifest[0]["digest"], size=size)
    return Content(digest=manifest_digest(manifest, algorithm), size=size, manifest=manifest)


def staging_dir(store: BlobStore, cache_dir: str) -> str:
    """Where a snapshot is staged: inside a local store's folder (publishing is then one rename; the
    name is chosen before the snapshot's key is known, so copying need not wait for its row), else in
    the local cache (the staged copy then serves get_local_copy)."""
    if store.local:
        return os.path.join(store.root, LOCAL_STAGING, uuid.uuid4().hex)
    return os.path.join(cache_dir, "staging", uuid.uuid4().hex)


LOCAL_STAGING = ".autolog-staging"  # in a local output_uri: copies not yet renamed to their key


def stage(opened: OpenedSources, staging: str, on_progress: Callable[[int], None] | None = None,
          algorithm: str = IDENTITY) -> Content:
    """Copy every file into staging/<name>/ (kernel copy, no file contents in Python memory), checking
    that the source did not change meanwhile, then hash the copies (which nobody else writes).
    on_progress(bytes) is called as the copy and the hash move. (The pipeline runs the two halves on
    two threads: copy_out, then hash_copies.)"""
    sources = opened.sources
    try:
        targets = copy_out(opened, staging, on_progress)
    finally:
        try:
            opened.close()
        except Exception as exc:  # noqa: BLE001 - closing read handles never replaces the copy's outcome
            logger.debug("autolog: closing %s failed: %s: %s", sources.name, type(exc).__name__, exc)
    return hash_copies(sources, targets, on_progress, algorithm)


def object_content(uri: str, on_progress: Callable[[int], None] | None = None) -> Content:
    """Digest and size of one object at uri (a path or an fsspec URL), read in chunks; a remote folder
    is refused (saves and loads of remote folders are not captured). on_progress(bytes) per chunk."""
    if not is_local(uri):
        fs, path = filesystem(uri)
        if fs.isdir(path):
            raise IsADirectoryError(f"{redact_url(uri)} is a folder: saves and loads of remote folders are not captured.")
    with open_for_read(uri) as f:
        (digest,), size = stream_digests(f, (IDENTITY,), on_progress)
    return Content(digest=digest, size=size)


def read_small(opened: OpenedSources) -> tuple[bytes, Content]:
    """A small one-file snapshot read into memory at once, checked against in-place changes: once its
    bytes are held, the file may be overwritten."""
    ((src, _),), ((fd, before),) = opened.sources.files, opened.handles
    data = os.pread(fd, before.st_size + 1, 0)  # one byte more: a file still growing is caught
    check_unchanged(src, fd, before, len(data))
    return data, Content(digest=bytes_digest(data), size=len(data))


def publish_bytes(data: bytes, sources: Sources, content: Content, store: BlobStore, key: str) -> Published:
    """A snapshot held in memory, written at its final key (never seen partial there)."""
    store.put_bytes(data, f"{key}/{sources.name}" if sources.name else key)
    return Published(uri=snapshot_uri(store, key, sources), entry=sources.entry, content=content,
                     deduplicated=False)


def staged_targets(sources: Sources, stats: list[os.stat_result], staging: str) -> list[tuple[str, str, int]]:
    """(name, staged path, size) of each file a copy into staging writes, in the order it writes them."""
    base = os.path.join(staging, sources.name) if sources.name and not sources.single else staging
    return [(rel, os.path.join(base, rel), st.st_size) for (_, rel), st in zip(sources.files, stats)]


def copy_out(opened: OpenedSources, staging: str, on_progress: Callable[[int], None] | None = None,
             followed: Callable[[], bool] | None = None, handoff: Handoff | None = None) -> list[tuple[str, str, int]]:
    """The copy half of stage: (name, staged path, size) of each file, checked against in-place changes.
    followed, handoff: see kernel_copy."""
    sources = opened.sources
    targets = staged_targets(sources, [st for _, st in opened.handles], staging)
    for (src, _), (fd, before), (_, target, _) in zip(sources.files, opened.handles, targets):
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as out:
            copied = kernel_copy(fd, out.fileno(), before.st_size, on_progress, followed, handoff)
        check_unchanged(src, fd, before, copied)
    return targets


def hash_copies(sources: Sources, targets: list[tuple[str, str, int]],
                on_progress: Callable[[int], None] | None = None, algorithm: str = IDENTITY,
                behind: CopyProgress | None = None, handoff: Handoff | None = None) -> Content:
    """The hash half of stage: the staged copies' content (nobody else writes them). behind: the
    progress of the copy still writing them, read as it goes (copy_progress.py); CopyAbandoned if
    that copy fails. handoff: who may finish each file's hash (handoff.py)."""
    manifest, start = [], 0
    for rel, target, size in targets:
        digest = (file_digest(target, algorithm, on_progress, handoff) if behind is None
                  else digest_behind(behind, target, start, size, algorithm, on_progress, handoff))
        manifest.append({"name": rel, "size": size, "digest": digest})
        start += size
    if behind is not None:
        behind.wait_whole()  # every byte hashed was copied and checked against in-place changes
    return content_of(sources, manifest, algorithm)


def kernel_copy(src_fd: int, dst_fd: int, size: int, on_progress: Callable[[int], None] | None = None,
                followed: Callable[[], bool] | None = None, handoff: Handoff | None = None) -> int:
    """Copy size bytes from the start of src_fd to dst_fd's position, the bytes never in Python:
    copy_file_range (a server-side copy on NFS; btrfs shares the extents), else sendfile, else
    positional reads; on XFS, sendfile first (_copy_steps). Each way that fails, or stops short, hands
    over to the next from where it stopped. Returns the bytes copied. followed(): whether a hash reads
    behind the copy now (copy_progress.py); the copy then goes in smaller steps. handoff: who may
    finish the copy (handoff.py)."""
    return drive(_kernel_copy_steps(src_fd, dst_fd, size, on_progress, followed), handoff)


def _kernel_copy_steps(src_fd: int, dst_fd: int, size: int, on_progress: Callable[[int], None] | None,
                       followed: Callable[[], bool] | None) -> Generator[None, None, int]:
    offset = 0
    for step in _copy_steps(dst_fd):
        try:
            while offset < size:
                count = _FOLLOWED_COPY_STEP if followed is not None and followed() else _COPY_STEP
                sent = step(src_fd, dst_fd, offset, min(size - offset, count))
                if sent == 0:
                    break
                offset += sent
                if on_progress is not None:
                    on_progress(sent)
                yield
        except OSError:  # not for this pair of files (another filesystem, no support)
            continue
        if offset >= size:
            return offset
    while offset < size:
        chunk = os.pread(src_fd, min(CHUNK, size - offset), offset)
        if not chunk:
            break
        write_all(dst_fd, chunk)
        offset += len(chunk)
        if on_progress is not None:
            on_progress(len(chunk))
        yield
    return offset


def _copy_steps(dst_fd: int) -> tuple[Callable[[int, int, int, int], int], ...]:
    """XFS answers copy_file_range with a clone (shared extents), which for a file just saved first
    writes its dirty pages to disk, and leaves the hasher to read the clone back from disk: on a
    loop-mounted XFS, 1 GB x 3 saves persisted 3.2x slower and later save calls took 1.8x longer than
    with a copy into the page cache (bench/experiments/reflink_filesystems.sh). btrfs, whose own
    writes cost more, did better with the clone; elsewhere copy_file_range is a copy like sendfile."""
    if filesystem_type(os.fstat(dst_fd).st_dev) == "xfs":
        return _sendfile, _copy_file_range
    return _copy_file_range, _sendfile


def _copy_file_range(src_fd: int, dst_fd: int, offset: int, count: int) -> int:
    return os.copy_file_range(src_fd, dst_fd, count, offset)


def _sendfile(src_fd: int, dst_fd: int, offset: int, count: int) -> int:
    return os.sendfile(dst_fd, src_fd, offset, count)


# Bytes per copy call. Each call gives up the GIL and must take it back before the next one; beside a
# thread that runs Python (a training loop's own Python, an import), that waits for the switch
# interval (5 ms) every time, however fast the call: 1 GB in 8 MiB calls took 947 ms instead of
# 273 ms, in 64 MiB calls 344 ms (bench/experiments/gil_convoy.py). Progress is reported between calls.
_COPY_STEP = 64 << 20
# ... while a hash reads behind the copy (copy_progress.py), which reads each step once it is copied:
# smaller steps keep it close behind. Only while someone waits for stored snapshots, when the training
# thread does not run Python beside them.
_FOLLOWED_COPY_STEP = HASH_STEP


def snapshot_uri(store: BlobStore, key: str, sources: Sources) -> str:
    return store.url(key) + (f"/{sources.name}" if sources.name else "")


def publish_staged(
    staging: str,
    sources: Sources,
    content: Content,
    store: BlobStore,
    key: str,
    cache_dir: str,
    find_copy: Callable[[str], tuple[str, str] | None],
    put_file: Callable[[str, str], object] | None = None,
) -> Published:
    """Move a staged snapshot to its final key (or reuse a stored copy of the same content).

    A failed upload keeps the staged copy (the journal names it, `autolog sync` resumes from it).
    """
    published = False
    try:
        existing = find_copy(content.digest)
        if existing is not None:
            published = True
            return Published(uri=existing[0], entry=existing[1], content=content, deduplicated=True)
        uri = snapshot_uri(store, key, sources)
        if store.local:
            final = store.url(key)
            os.makedirs(os.path.dirname(final), exist_ok=True)
            os.rename(staging, final)
        else:
            put = put_file or store.put_file
            for folder, _, names in os.walk(staging):
                for name in names:
                    local = os.path.join(folder, name)
                    put(local, f"{key}/{os.path.relpath(local, staging).replace(os.sep, '/')}")
            staged = os.path.join(staging, sources.name) if sources.name else staging
            _keep_in_cache(staged, cache_dir, content.digest, uri.rsplit("/", 1)[-1])
        published = True
        return Published(uri=uri, entry=sources.entry, content=content, deduplicated=False)
    finally:
        if published or store.local:
            shutil.rmtree(staging, ignore_errors=True)


def publish(
    sources: Sources,
    store: BlobStore,
    key: str,
    cache_dir: str,
    find_copy: Callable[[str], tuple[str, str] | None],
    algorithm: str = IDENTITY,
) -> Published:
    """Stage and publish in the calling thread (artifacts). The staged copy goes whatever happens: no
    journal row names it for `autolog sync` (publish_staged keeps a snapshot's on a failed upload)."""
    staging = staging_dir(store, cache_dir)
    try:
        content = stage(open_sources(sources), staging, algorithm=algorithm)
        return publish_staged(staging, sources, content, store, key, cache_dir, find_copy)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _keep_in_cache(staged: str, cache_dir: str, digest: str, uri_name: str) -> None:
    """The staged copy becomes the local cache entry, so get_local_copy needs no download."""
    _move_into_cache(staged, os.path.join(cache_dir, "objects", _cache_name(digest), uri_name))


def _cache_name(digest: str | None) -> str:
    """Cache entries are <algorithm>-<hex>/<name>: the same content may be cached under several names."""
    return digest.replace(":", "-") if digest else uuid.uuid4().hex


def _move_into_cache(source: str, target: str) -> None:
    if os.path.exists(target):
        return
    os.makedirs(os.path.dirname(target), exist_ok=True)
    try:
        os.rename(source, target)
    except OSError:  # another process cached it first
        if not os.path.exists(target):
            raise


def fetch(uri: str, entry: str, digest: str | None, manifest: list, cache_dir: str,
          force_download: bool = False) -> str:
    """A local path holding the snapshot: the stored file itself when local, else a verified cached copy
    (downloaded again when force_download)."""
    root, _ = _fetched(uri, digest, manifest, cache_dir, force_download)
    return os.path.join(root, entry) if entry else root


def fetch_sha256(uri: str, entry: str, digest: str, manifest: list, cache_dir: str) -> tuple[str, str]:
    """fetch(), and the snapshot's sha256 (see verify), its bytes read once for both the digest check
    and the sha256: while verifying a new download, or from the copy already there."""
    root, sha = _fetched(uri, digest, manifest, cache_dir, with_sha256=True)
    if sha is None:  # nothing was downloaded: the stored file in place, or a cached copy
        sha = verify(root, digest, manifest, uri, with_sha256=True)
    return (os.path.join(root, entry) if entry else root), sha


def _fetched(uri: str, digest: str | None, manifest: list, cache_dir: str, force_download: bool = False,
             with_sha256: bool = False) -> tuple[str, str | None]:
    """(local root of the snapshot, the sha256 computed while verifying a download or None when nothing
    was downloaded)."""
    if is_local(uri):
        path = real_path(normalize_uri(uri))  # a path-only snapshot's uri is display_path text
        if not os.path.exists(path):
            raise FileNotFoundError(f"Stored snapshot {path} is missing (deleted by hand or by retention).")
        return path, None
    uri_name = uri.rstrip("/").rsplit("/", 1)[-1]
    local = os.path.join(cache_dir, "objects", _cache_name(digest), uri_name)
    if force_download and os.path.lexists(local):
        discard_cached(local, cache_dir)
    sha = None
    if not os.path.exists(local):
        tmp = os.path.join(cache_dir, "objects", f"incomplete-{uuid.uuid4().hex}")
        try:
            if manifest:
                for e in manifest:
                    download(f"{uri}/{e['name']}", os.path.join(tmp, uri_name, e["name"]))
            else:
                download(uri, os.path.join(tmp, uri_name))
            sha = verify(os.path.join(tmp, uri_name), digest, manifest, uri, with_sha256=with_sha256)
            _move_into_cache(os.path.join(tmp, uri_name), local)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return local, sha


def discard_cached(path: str, cache_dir: str) -> None:
    """Remove a cache entry: first renamed out of its place (a reader never sees it half deleted)."""
    gone = os.path.join(cache_dir, "objects", f"incomplete-{uuid.uuid4().hex}")
    try:
        os.rename(path, gone)
    except FileNotFoundError:
        return  # another process discarded it first
    if os.path.isdir(gone) and not os.path.islink(gone):
        shutil.rmtree(gone, ignore_errors=True)
    else:
        os.remove(gone)


def verify(local: str, digest: str | None, manifest: list, what: str, with_sha256: bool = False) -> str | None:
    """Raise IntegrityError unless local holds the content recorded as digest (with its files' manifest).
    with_sha256: also the content's sha256 hex from the same read (else None), to compare with `sha256sum`:
    a file's own, or for several files the sha256 over their sorted "name NUL file-sha256 LF" lines."""
    if digest is None:
        return None
    algorithm = algorithm_of(digest)
    algorithms = (algorithm, SHA256) if with_sha256 else (algorithm,)
    if manifest:
        # names are display_path text in the row: real_path finds a name that is not UTF-8
        per_file = [(e["name"], file_digests(real_path(os.path.join(local, e["name"])), algorithms)) for e in manifest]
        got, *sha = (manifest_digest(({"name": name, "digest": ds[i]} for name, ds in per_file), a)
                     for i, a in enumerate(algorithms))
    else:
        got, *sha = file_digests(local, algorithms)
    if got != digest:
        raise IntegrityError(
            f"Content of {what} does not match its recorded {algorithm} ({short(got)} != {short(digest)}): "
            "the stored copy was altered or corrupted. Do not use it; re-upload from the source."
        )
    return hex_of(sha[0]) if sha else None


def copied_marker(staging: str) -> str:
    """An empty file beside a snapshot's staging folder: its copy is complete and was checked against
    the source, so `autolog sync` may publish it even if the hash was never journaled."""
    return staging.rstrip(os.sep) + ".copied"


