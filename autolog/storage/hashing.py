"""Content identity: the digest of a file, of a stream, of a set of files.

A digest is written "<algorithm>:<hex>", so a row says how to check it. Snapshots are identified by
BLAKE3 (IDENTITY): one core hashes it at 3-4 GB/s, faster than a disk or the page cache delivers
bytes, where sha256 runs at 0.2-2 GB/s depending on the CPU's SHA extensions and so became the
slowest step between a save and its stored copy. Rows written before schema 4 carry "sha256:<hex>"
(the migration prefixes them) and are checked with sha256. Artifacts keep a plain sha256 (ClearML's
`artifact.hash`), and a snapshot's sha256 is computed on demand (`autolog model sha256`).
"""
from __future__ import annotations

import hashlib
import os
from typing import BinaryIO, Callable, Generator, Iterable

from blake3 import blake3

from .handoff import Handoff, drive
from .layout import display_path

CHUNK = 1 << 20  # 1 MiB: memory stays bounded whatever the file size
# Bytes per read when hashing: each step takes the GIL once. With smaller steps (hashlib.file_digest
# reads 256 KiB) a hash beside a busy thread (the training thread, an import) waits up to the 5 ms
# switch interval per step: 10 MB took 240 ms instead of 5 ms.
HASH_STEP = 8 << 20

IDENTITY = "blake3"
SHA256 = "sha256"


def new_hasher(algorithm: str = IDENTITY):
    if algorithm == IDENTITY:
        return blake3()
    if algorithm == SHA256:
        return hashlib.sha256()
    raise ValueError(f"unknown digest algorithm {algorithm!r} (known: {IDENTITY}, {SHA256})")


def algorithm_of(digest: str) -> str:
    algorithm, sep, _ = digest.partition(":")
    if not sep:
        raise ValueError(f"not a digest (expected '<algorithm>:<hex>'): {digest[:80]!r}")
    return algorithm


def hex_of(digest: str) -> str:
    return digest.partition(":")[2]


def short(digest: str | None) -> str:
    """What people read: the first 12 hex digits ("" for none)."""
    return hex_of(digest)[:12] if digest else ""


def sha256_digest(sha256_hex: str | None) -> str | None:
    """A plain sha256 (an artifact's, an old row's) as a digest."""
    return f"{SHA256}:{sha256_hex}" if sha256_hex else None


def file_digest(path: str | os.PathLike, algorithm: str = IDENTITY,
                on_progress: Callable[[int], None] | None = None, handoff: Handoff | None = None) -> str:
    """Digest of a file; on_progress(bytes) is called after each step (a slow disk still shows progress).
    handoff: who may finish the hash (handoff.py)."""
    return file_digests(path, (algorithm,), on_progress, handoff)[0]


def file_digests(path: str | os.PathLike, algorithms: tuple[str, ...],
                 on_progress: Callable[[int], None] | None = None, handoff: Handoff | None = None) -> list[str]:
    """Digests of a file, one per algorithm, from one read."""
    return drive(_file_digests_steps(path, algorithms, on_progress), handoff)


def _file_digests_steps(path: str | os.PathLike, algorithms: tuple[str, ...],
                        on_progress: Callable[[int], None] | None) -> Generator[None, None, list[str]]:
    with open(path, "rb", buffering=0) as f:
        hashers = [new_hasher(a) for a in algorithms]
        buffer = bytearray(min(HASH_STEP, os.fstat(f.fileno()).st_size + 1))
        view = memoryview(buffer)
        while size := f.readinto(buffer):
            for hasher in hashers:
                hasher.update(view[:size])
            if on_progress is not None:
                on_progress(size)
            yield
        return [f"{a}:{h.hexdigest()}" for a, h in zip(algorithms, hashers)]


def fd_digest(fd: int, algorithm: str = IDENTITY) -> str:
    """Digest of an open file from its start, without moving its offset."""
    digest, offset = new_hasher(algorithm), 0
    while chunk := os.pread(fd, HASH_STEP, offset):
        digest.update(chunk)
        offset += len(chunk)
    return f"{algorithm}:{digest.hexdigest()}"


def bytes_digest(data: bytes, algorithm: str = IDENTITY) -> str:
    hasher = new_hasher(algorithm)
    hasher.update(data)
    return f"{algorithm}:{hasher.hexdigest()}"


def stream_digests(src: BinaryIO, algorithms: tuple[str, ...] = (IDENTITY,),
                   on_progress: Callable[[int], None] | None = None) -> tuple[list[str], int]:
    """Digests (one per algorithm, in one read) and size of a readable stream (a remote object opened
    through fsspec), read in chunks; on_progress(bytes) after each chunk."""
    hashers, size = [new_hasher(a) for a in algorithms], 0
    while chunk := src.read(CHUNK):
        for hasher in hashers:
            hasher.update(chunk)
        size += len(chunk)
        if on_progress is not None:
            on_progress(len(chunk))
    return [f"{a}:{h.hexdigest()}" for a, h in zip(algorithms, hashers)], size


def entry_digest(entry: dict) -> str | None:
    """The digest of one file of a multi-file snapshot (entries written before schema 4 hold "sha256");
    None when none was recorded."""
    return entry.get("digest") or sha256_digest(entry.get("sha256"))


def manifest_digest(files: Iterable[dict], algorithm: str = IDENTITY) -> str:
    """The identity of a multi-file snapshot: a digest over its sorted (relative name, file digest) pairs.

    A single file's identity is its own digest, so a TF checkpoint prefix or a SavedModel folder
    matches only when every file in it matches. Names count as display_path writes them (as they are
    stored), so a name that is not UTF-8 hashes alike before and after it was recorded. A sha256
    manifest (rows before schema 4) hashes the files' plain sha256, as it was written then.
    """
    if algorithm == SHA256:
        pairs = sorted((display_path(e["name"]), hex_of(entry_digest(e))) for e in files)
    else:
        pairs = sorted((display_path(e["name"]), entry_digest(e)) for e in files)
    hasher = new_hasher(algorithm)
    for name, digest in pairs:
        hasher.update(f"{name}\0{digest}\n".encode("utf-8"))
    return f"{algorithm}:{hasher.hexdigest()}"


# -- plain sha256 (artifacts, push's checks of them, a snapshot's sha256 on demand) ---------------
def sha256_file(path: str | os.PathLike, on_progress: Callable[[int], None] | None = None) -> str:
    return hex_of(file_digest(path, SHA256, on_progress))


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def stream_sha256(src: BinaryIO, on_progress: Callable[[int], None] | None = None) -> tuple[str, int]:
    (digest,), size = stream_digests(src, (SHA256,), on_progress)
    return hex_of(digest), size
