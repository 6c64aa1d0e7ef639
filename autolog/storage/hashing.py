"""Content identity: sha256 of a file, of a set of files, and the per-host stat cache."""
from __future__ import annotations

import hashlib
import os
import socket
from typing import BinaryIO, Iterable

CHUNK = 1 << 20  # 1 MiB: memory stays bounded whatever the file size


def sha256_file(path: str | os.PathLike) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def fd_sha256(fd: int) -> str:
    """sha256 of an open file from its start, without moving its offset."""
    digest, offset = hashlib.sha256(), 0
    while chunk := os.pread(fd, CHUNK, offset):
        digest.update(chunk)
        offset += len(chunk)
    return digest.hexdigest()


def stream_sha256(src: BinaryIO) -> tuple[str, int]:
    """sha256 and size of a readable stream (a remote object opened through fsspec), read in chunks."""
    digest, size = hashlib.sha256(), 0
    while chunk := src.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def manifest_sha256(files: Iterable[dict]) -> str:
    """The identity of a multi-file snapshot: sha256 over its sorted (relative name, sha256) pairs.

    A single file's identity is its own sha256, so a TF checkpoint prefix or a SavedModel folder
    matches only when every file in it matches.
    """
    digest = hashlib.sha256()
    for entry in sorted(files, key=lambda e: e["name"]):
        digest.update(f"{entry['name']}\0{entry['sha256']}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def host_name() -> str:
    return socket.gethostname()
