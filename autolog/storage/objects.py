"""Snapshot content: which local files make one snapshot, storing them, and fetching them back.

A snapshot is one file, one folder (a SavedModel, a zip-less package), a checkpoint prefix
(``ckpt-3`` -> ``ckpt-3.index`` + ``ckpt-3.data-*``) or an explicit list of files. Each is read
once, hashed and copied in the same pass, staged, then published under its key in one step.
"""
from __future__ import annotations

import glob
import logging
import os
import shutil
import uuid
from dataclasses import dataclass, field
from typing import Callable

from ..errors import IntegrityError
from .blobstore import BlobStore, download, is_local, normalize_uri
from .hashing import copy_and_hash, manifest_sha256, sha256_file

logger = logging.getLogger("autolog")


@dataclass(frozen=True)
class Sources:
    """The local files of one snapshot.

    files: (absolute source path, name inside the snapshot) pairs.
    name:  last component of the stored URI under the snapshot key ("" = the key itself).
    entry: what to hand back inside that URI ("" = the URI itself; "ckpt-3" for a prefix).
    single: the snapshot is one plain file.
    """

    files: tuple[tuple[str, str], ...]
    name: str
    entry: str = ""
    single: bool = False


@dataclass(frozen=True)
class Content:
    sha256: str
    size: int
    manifest: list = field(default_factory=list)  # [{"name", "size", "sha256"}]; [] for a single file


@dataclass(frozen=True)
class Published:
    uri: str
    entry: str
    content: Content
    deduplicated: bool


def collect_sources(path: str | os.PathLike) -> Sources:
    """The snapshot for a saved path: a file, a folder, or a checkpoint prefix."""
    path = os.path.abspath(os.fspath(path))
    if os.path.isfile(path):
        return Sources(files=((path, os.path.basename(path)),), name=os.path.basename(path), single=True)
    if os.path.isdir(path):
        return Sources(files=tuple(_walk_folder(path)), name=os.path.basename(path.rstrip(os.sep)) or "root")
    siblings = sorted(p for p in glob.glob(glob.escape(path) + ".*") if os.path.isfile(p))
    if siblings:
        return Sources(files=tuple((p, os.path.basename(p)) for p in siblings), name="", entry=os.path.basename(path))
    raise FileNotFoundError(f"Nothing to store at {path}: no such file, folder or checkpoint prefix.")


def collect_file_list(paths: list[str | os.PathLike]) -> Sources:
    """Several files stored side by side as one snapshot (update_weights_package)."""
    files = []
    for p in paths:
        p = os.path.abspath(os.fspath(p))
        if os.path.isdir(p):
            files += [(src, f"{os.path.basename(p)}/{rel}") for src, rel in _walk_folder(p)]
        else:
            files.append((p, os.path.basename(p)))
    names = [rel for _, rel in files]
    if len(set(names)) != len(names):
        raise ValueError(f"Files to package share names ({names}); give a folder (weights_path=) instead.")
    return Sources(files=tuple(files), name="")


def _walk_folder(root: str):
    real_root = os.path.realpath(root)
    for folder, dirs, names in os.walk(root):
        dirs.sort()
        for name in sorted(names):
            src = os.path.join(folder, name)
            real = os.path.realpath(src)
            if os.path.commonpath([real, real_root]) != real_root:
                logger.warning("autolog: skipping %s: it links outside the folder being stored", src)
                continue
            if os.path.isfile(real):
                yield src, os.path.relpath(src, root).replace(os.sep, "/")


def hash_sources(sources: Sources) -> Content:
    """Hash without copying (output_uri=None records path + hash only)."""
    manifest = []
    for src, rel in sources.files:
        with open(src, "rb") as f:
            sha, size = copy_and_hash(f, None)
        manifest.append({"name": rel, "size": size, "sha256": sha})
    return _content(sources, manifest)


def _content(sources: Sources, manifest: list) -> Content:
    size = sum(e["size"] for e in manifest)
    if sources.single:
        return Content(sha256=manifest[0]["sha256"], size=size)
    return Content(sha256=manifest_sha256(manifest), size=size, manifest=manifest)


def stage(sources: Sources, stage_dir: str) -> Content:
    """Copy and hash every file into stage_dir/<name>/ in a single read."""
    base = os.path.join(stage_dir, sources.name) if sources.name and not sources.single else stage_dir
    manifest = []
    for src, rel in sources.files:
        target = os.path.join(base, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(src, "rb") as f, open(target, "wb") as out:
            sha, size = copy_and_hash(f, out)
        manifest.append({"name": rel, "size": size, "sha256": sha})
    return _content(sources, manifest)


def publish(
    sources: Sources,
    store: BlobStore,
    key: str,
    cache_dir: str,
    find_copy: Callable[[str], tuple[str, str] | None],
) -> Published:
    """Store a snapshot at key, unless find_copy(sha256) names a stored copy of the same content."""
    uri = store.url(key) + (f"/{sources.name}" if sources.name else "")
    if store.local:
        # Stage next to the final key, so publishing is one rename on the same filesystem.
        final = store.url(key)
        staging = f"{final}.incomplete-{uuid.uuid4().hex}"
    else:
        staging = os.path.join(cache_dir, "staging", uuid.uuid4().hex)
    os.makedirs(staging, exist_ok=True)
    try:
        content = stage(sources, staging)
        existing = find_copy(content.sha256)
        if existing is not None:
            return Published(uri=existing[0], entry=existing[1], content=content, deduplicated=True)
        if store.local:
            os.makedirs(os.path.dirname(final), exist_ok=True)
            os.rename(staging, final)
        else:
            _upload_staged(staging, store, key)
            staged = os.path.join(staging, sources.name) if sources.name else staging
            _keep_in_cache(staged, cache_dir, content.sha256, uri.rsplit("/", 1)[-1])
        return Published(uri=uri, entry=sources.entry, content=content, deduplicated=False)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _upload_staged(staging: str, store: BlobStore, key: str) -> None:
    for folder, _, names in os.walk(staging):
        for name in names:
            local = os.path.join(folder, name)
            store.put_file(local, f"{key}/{os.path.relpath(local, staging).replace(os.sep, '/')}")


def _keep_in_cache(staged: str, cache_dir: str, sha256: str, uri_name: str) -> None:
    """The staged copy becomes the local cache entry, so get_local_copy needs no download."""
    target = os.path.join(cache_dir, "objects", sha256)
    if os.path.exists(target):
        return
    tmp = f"{target}.incomplete-{uuid.uuid4().hex}"
    os.makedirs(tmp)
    try:
        os.rename(staged, os.path.join(tmp, uri_name))
        os.rename(tmp, target)
    except OSError:  # another process cached the same content first
        shutil.rmtree(tmp, ignore_errors=True)


def fetch(uri: str, entry: str, sha256: str | None, manifest: list, cache_dir: str) -> str:
    """A local path holding the snapshot: the stored file itself when local, else a verified cached copy."""
    if is_local(uri):
        path = normalize_uri(uri)
        if not os.path.exists(path):
            raise FileNotFoundError(f"Stored snapshot {path} is missing (deleted by hand or by retention).")
        return os.path.join(path, entry) if entry else path
    uri_name = uri.rstrip("/").rsplit("/", 1)[-1]
    target = os.path.join(cache_dir, "objects", sha256 or uuid.uuid4().hex)
    local = os.path.join(target, uri_name)
    if not os.path.exists(local):
        tmp = f"{target}.incomplete-{uuid.uuid4().hex}"
        try:
            if manifest:
                for e in manifest:
                    download(f"{uri}/{e['name']}", os.path.join(tmp, uri_name, e["name"]))
            else:
                download(uri, os.path.join(tmp, uri_name))
            verify(os.path.join(tmp, uri_name), sha256, manifest, uri)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            try:
                os.rename(tmp, target)
            except OSError:  # another process cached it first
                pass
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return os.path.join(local, entry) if entry else local


def verify(local: str, sha256: str | None, manifest: list, what: str) -> None:
    if sha256 is None:
        return
    if manifest:
        got = manifest_sha256(
            {"name": e["name"], "sha256": sha256_file(os.path.join(local, e["name"]))} for e in manifest
        )
    else:
        got = sha256_file(local)
    if got != sha256:
        raise IntegrityError(
            f"Content of {what} does not match its recorded sha256 ({got[:12]} != {sha256[:12]}): "
            "the stored copy was altered or corrupted. Do not use it; re-upload from the source."
        )
