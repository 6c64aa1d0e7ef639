"""Content identity: sha256 of a file, of a set of files, and the per-host stat cache."""
from __future__ import annotations

import hashlib
import os
from typing import BinaryIO, Callable, Iterable

from .layout import display_path

CHUNK = 1 << 20  # 1 MiB: memory stays bounded whatever the file size
# Bytes per read when hashing: each step takes the GIL once. With smaller steps (hashlib.file_digest
# reads 256 KiB) a hash beside a busy thread (the training thread, an import) waits up to the 5 ms
# switch interval per step: 10 MB took 240 ms instead of 5 ms.
HASH_STEP = 8 << 20


def sha256_file(path: str | os.PathLike, on_progress: Callable[[int], None] | None = None) -> str:
    """sha256 of a file; on_progress(bytes) is called after each step (a slow disk still shows progress)."""
    with open(path, "rb", buffering=0) as f:
        digest, buffer = hashlib.sha256(), bytearray(min(HASH_STEP, os.fstat(f.fileno()).st_size + 1))
        view = memoryview(buffer)
        while size := f.readinto(buffer):
            digest.update(view[:size])
            if on_progress is not None:
                on_progress(size)
        return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fd_sha256(fd: int) -> str:
    """sha256 of an open file from its start, without moving its offset."""
    digest, offset = hashlib.sha256(), 0
    while chunk := os.pread(fd, HASH_STEP, offset):
        digest.update(chunk)
        offset += len(chunk)
    return digest.hexdigest()


def stream_sha256(src: BinaryIO, on_progress: Callable[[int], None] | None = None) -> tuple[str, int]:
    """sha256 and size of a readable stream (a remote object opened through fsspec), read in chunks;
    on_progress(bytes) after each chunk."""
    digest, size = hashlib.sha256(), 0
    while chunk := src.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
        if on_progress is not None:
            on_progress(len(chunk))
    return digest.hexdigest(), size


def manifest_sha256(files: Iterable[dict]) -> str:
    """The identity of a multi-file snapshot: sha256 over its sorted (relative name, sha256) pairs.

    A single file's identity is its own sha256, so a TF checkpoint prefix or a SavedModel folder
    matches only when every file in it matches. Names count as display_path writes them (as they are
    stored), so a name that is not UTF-8 hashes alike before and after it was recorded.
    """
    digest = hashlib.sha256()
    for name, sha in sorted((display_path(e["name"]), e["sha256"]) for e in files):
        digest.update(f"{name}\0{sha}\n".encode("utf-8"))
    return digest.hexdigest()

