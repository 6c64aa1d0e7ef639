"""Snapshot and artifact bytes for the browser, never other bytes than those recorded.

Where the bytes come from is read from the row the request's id names (no path or URI from a request
reaches a file system or an object store): a local store's object in place, a remote object through
the SDK's own verified download into the cache (`storage.fetch`, fsspec as everywhere else), or the
file a path-only snapshot was recorded from.

How they are checked against the digest recorded when they were saved ("<algorithm>:<hex>",
storage/hashing.py): a snapshot against its own digest (BLAKE3, or sha256 on rows written before schema
4), an artifact against its plain sha256; the recorded algorithm is the one hashed with.
- one file: hashed whole first (a mismatch answers an error and sends nothing), then sent from a new
  read that is hashed again as it goes, the last chunk held back until that hash matches too: a file
  changed after the first check ends the response short (the client sees a failed download), it never
  completes with other bytes;
- several files (a folder, a checkpoint prefix): the recorded file list checked against the snapshot's
  digest (manifest_digest), then each file hashed as it is copied into a zip (stored, not compressed:
  weights do not compress) in an anonymous temporary file and checked against its entry's digest; any
  mismatch answers an error before a byte is sent, and what is sent is that zip, which nothing else can
  write.
"""
from __future__ import annotations

import mimetypes
import os
import tempfile
import zipfile
from dataclasses import dataclass
from typing import IO, Iterator
from urllib.parse import quote

from starlette.responses import StreamingResponse

from ..context import Context
from ..db.records import ArtifactRecord, SnapshotRecord
from ..errors import IntegrityError
from ..snapshots.in_place import local_location, recorded_sources
from ..storage import fetch, is_local, normalize_uri
from ..storage.hashing import CHUNK, algorithm_of, entry_digest, manifest_digest, new_hasher, sha256_digest, short
from ..storage.layout import real_path
from .http import UIError
from .rows import DOWNLOADABLE, downloadable


@dataclass
class Outgoing:
    """What a download sends: a readable file (at 0), its size and name, and the digest ("<algorithm>:<hex>")
    its bytes must have (None for a zip built here from verified files)."""

    file: IO[bytes]
    size: int
    filename: str
    digest: str | None
    what: str


def snapshot_download(ctx: Context, snap: SnapshotRecord, model_name: str) -> Outgoing:
    """The snapshot's bytes: its one file, or a zip of its files; UIError(409) when none are kept."""
    if not downloadable(snap.status, snap.digest):
        label = f"Snapshot {snap.seq} of {model_name!r}"
        if snap.status in DOWNLOADABLE:  # registered by URI: nothing recorded to check the bytes against
            raise UIError(409, f"{label} has no recorded content hash to check its bytes against; it is not sent.")
        why = f" ({snap.reason})" if snap.reason else ""
        raise UIError(409, f"{label} is {snap.status}{why}: only stored snapshots can be downloaded.")
    what = f"snapshot {snap.seq} of model {model_name!r}"
    if snap.files:
        files = _snapshot_files(ctx, snap)
        name = (snap.entry or os.path.basename((snap.uri or "").rstrip("/")) or f"snapshot-{snap.seq}") + ".zip"
        return _verified_zip(files, snap.files, snap.digest, name, what)
    path = _snapshot_file(ctx, snap)
    return _verified_file(path, snap.digest, os.path.basename(path.rstrip("/")) or f"snapshot-{snap.seq}", what)


def artifact_download(ctx: Context, record: ArtifactRecord) -> Outgoing:
    """The artifact's stored file (a folder artifact is stored as a zip already)."""
    if record.kind == "url" or not record.sha256:
        raise UIError(409, f"Artifact {record.name!r} is a reference to {record.uri}: nothing was stored, "
                           "so there is nothing to download here.")
    digest = sha256_digest(record.sha256)  # artifacts keep a plain sha256 (ClearML's artifact.hash)
    path = _missing_as_404(lambda: fetch(record.uri, "", digest, [], ctx.cache_dir), f"artifact {record.name!r}")
    return _verified_file(path, digest, record.filename or os.path.basename(path), f"artifact {record.name!r}")


def artifact_local_path(ctx: Context, record: ArtifactRecord) -> str:
    """A local file holding the artifact's bytes, checked whole against its sha256 (for previews)."""
    outgoing = artifact_download(ctx, record)
    path = outgoing.file.name
    outgoing.file.close()
    return path


def response(outgoing: Outgoing) -> StreamingResponse:
    """The bytes as an attachment; one file is checked again as it goes (see the module's docstring)."""
    kind = mimetypes.guess_type(outgoing.filename)[0] or "application/octet-stream"
    headers = {"Content-Disposition": content_disposition(outgoing.filename), "Content-Length": str(outgoing.size),
               "Content-Security-Policy": "sandbox", "Cache-Control": "no-store"}
    return StreamingResponse(_chunks(outgoing), media_type=kind, headers=headers)


def content_disposition(filename: str) -> str:
    """attachment with an ASCII name for old clients and the real one (RFC 5987) for the others."""
    plain = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in filename) or "download"
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _chunks(outgoing: Outgoing) -> Iterator[bytes]:
    """The file in chunks, the last held back until the whole hash matches (when one is expected)."""
    expected = outgoing.digest
    algorithm = algorithm_of(expected) if expected is not None else None
    hasher = new_hasher(algorithm) if algorithm is not None else None
    with outgoing.file as f:
        held = f.read(CHUNK)
        while True:
            chunk = f.read(CHUNK)
            if not chunk:
                break
            if hasher is not None:
                hasher.update(held)
            yield held
            held = chunk
        if hasher is not None:
            hasher.update(held)
            if f"{algorithm}:{hasher.hexdigest()}" != expected:
                raise IntegrityError(f"{outgoing.what} changed while it was being sent: the download was stopped "
                                     "short, so that no altered copy completes.")
        if held:
            yield held


def _verified_file(path: str, digest: str, filename: str, what: str) -> Outgoing:
    algorithm = algorithm_of(digest)
    f = _missing_as_404(lambda: open(path, "rb"), what)
    try:
        hasher = new_hasher(algorithm)
        while chunk := f.read(CHUNK * 8):
            hasher.update(chunk)
        got = f"{algorithm}:{hasher.hexdigest()}"
        if got != digest:
            raise IntegrityError(_altered(what, got, digest))
        size = f.tell()
        f.seek(0)
    except BaseException:
        f.close()
        raise
    return Outgoing(f, size, filename, digest, what)


def _verified_zip(files: list[tuple[str, str]], manifest: list, digest: str, filename: str, what: str) -> Outgoing:
    """A zip of (path, name) files, each hashed as it is copied in and checked against the manifest, whose
    own digest is the snapshot's (entries of rows before schema 4 hold a plain "sha256")."""
    expected = {entry["name"]: entry_digest(entry) for entry in manifest}
    if (manifest_digest(manifest, algorithm_of(digest)) != digest
            or sorted(expected) != sorted(name for _, name in files)):
        raise IntegrityError(f"The file list recorded for {what} does not match its digest; not sent.")
    out = tempfile.TemporaryFile(prefix="autolog-ui-")  # no name: deleted when closed, whatever happens
    try:
        with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
            for path, name in files:
                got = _copy_into(archive, path, name, algorithm_of(expected[name]), what)
                if got != expected[name]:
                    raise IntegrityError(_altered(f"{name} of {what}", got, expected[name]))
        size = out.tell()
        out.seek(0)
    except BaseException:
        out.close()
        raise
    return Outgoing(out, size, filename, None, what)


def _copy_into(archive: zipfile.ZipFile, path: str, name: str, algorithm: str, what: str) -> str:
    """Copy one file into the zip; its digest with this algorithm."""
    hasher = new_hasher(algorithm)
    source = _missing_as_404(lambda: open(path, "rb"), f"{name} of {what}")
    with source, archive.open(name, "w", force_zip64=True) as target:
        while chunk := source.read(CHUNK * 8):
            hasher.update(chunk)
            target.write(chunk)
    return f"{algorithm}:{hasher.hexdigest()}"


def _snapshot_file(ctx: Context, snap: SnapshotRecord) -> str:
    """The local file of a one-file snapshot (remote ones fetched, verified, into the cache)."""
    uri = snap.uri or ""
    if snap.status == "local":
        return real_path(local_location(snap))
    return _missing_as_404(lambda: fetch(uri, "", snap.digest, [], ctx.cache_dir), f"snapshot {snap.seq}")


def _snapshot_files(ctx: Context, snap: SnapshotRecord) -> list[tuple[str, str]]:
    """(local path, name in the snapshot) of each file of a multi-file snapshot."""
    uri = snap.uri or ""
    if snap.status == "local":
        path = real_path(local_location(snap))
        return [(src, name) for src, name in _missing_as_404(lambda: recorded_sources(snap, path).files,
                                                             f"snapshot {snap.seq}")]
    folder = real_path(normalize_uri(uri)) if is_local(uri) else _missing_as_404(
        lambda: fetch(uri, "", snap.digest, snap.files, ctx.cache_dir), f"snapshot {snap.seq}")
    return [(os.path.join(folder, entry["name"]), entry["name"]) for entry in snap.files]


def _missing_as_404(step, what: str):  # type: ignore[no-untyped-def]
    """step(), with a stored object that is gone answered as 404 (it was deleted by hand or by retention)."""
    try:
        return step()
    except FileNotFoundError:
        raise UIError(404, f"The stored bytes of {what} are missing (deleted by hand or by retention).") from None


def _altered(what: str, got: str, expected: str) -> str:
    """got, expected: digests of the same algorithm."""
    return (f"The stored bytes of {what} do not match the {algorithm_of(expected)} content hash recorded when it "
            f"was saved ({short(got)} != {short(expected)}): the stored copy was altered or corrupted, and is not "
            "sent.")
