"""Snapshot and artifact bytes for the browser, never other bytes than those recorded.

Where the bytes come from is read from the row the request's id names (no path or URI from a request
reaches a file system or an object store): a local store's object in place, a remote object through
the SDK's own verified download into the cache (`storage.fetch`, fsspec as everywhere else), or the
file a path-only snapshot was recorded from.

How they are checked against the sha256 recorded when they were saved:
- one file: hashed whole first (a mismatch answers an error and sends nothing), then sent from a new
  read that is hashed again as it goes, the last chunk held back until that hash matches too: a file
  changed after the first check ends the response short (the client sees a failed download), it never
  completes with other bytes;
- several files (a folder, a checkpoint prefix): each file hashed as it is copied into a zip (stored,
  not compressed: weights do not compress) in an anonymous temporary file; any mismatch answers an error
  before a byte is sent, and what is sent is that zip, which nothing else can write.
"""
from __future__ import annotations

import hashlib
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
from ..storage import fetch, is_local, normalize_uri
from ..storage.hashing import CHUNK, manifest_sha256
from ..storage.layout import real_path
from .http import UIError
from .rows import DOWNLOADABLE, downloadable


@dataclass
class Outgoing:
    """What a download sends: a readable file (at 0), its size and name, and the sha256 its bytes must
    have (None for a zip built here from verified files)."""

    file: IO[bytes]
    size: int
    filename: str
    sha256: str | None
    what: str


def snapshot_download(ctx: Context, snap: SnapshotRecord, model_name: str) -> Outgoing:
    """The snapshot's bytes: its one file, or a zip of its files; UIError(409) when none are kept."""
    if not downloadable(snap.status, snap.sha256):
        label = f"Snapshot {snap.seq} of {model_name!r}"
        if snap.status in DOWNLOADABLE:  # registered by URI: nothing recorded to check the bytes against
            raise UIError(409, f"{label} has no recorded sha256 to check its bytes against; it is not sent.")
        why = f" ({snap.reason})" if snap.reason else ""
        raise UIError(409, f"{label} is {snap.status}{why}: only stored snapshots can be downloaded.")
    what = f"snapshot {snap.seq} of model {model_name!r}"
    if snap.files:
        files = _snapshot_files(ctx, snap)
        name = (snap.entry or os.path.basename((snap.uri or "").rstrip("/")) or f"snapshot-{snap.seq}") + ".zip"
        return _verified_zip(files, snap.files, snap.sha256, name, what)
    path = _snapshot_file(ctx, snap)
    return _verified_file(path, snap.sha256, os.path.basename(path.rstrip("/")) or f"snapshot-{snap.seq}", what)


def artifact_download(ctx: Context, record: ArtifactRecord) -> Outgoing:
    """The artifact's stored file (a folder artifact is stored as a zip already)."""
    if record.kind == "url" or not record.sha256:
        raise UIError(409, f"Artifact {record.name!r} is a reference to {record.uri}: nothing was stored, "
                           "so there is nothing to download here.")
    path = _missing_as_404(lambda: fetch(record.uri, "", record.sha256, [], ctx.cache_dir), f"artifact {record.name!r}")
    return _verified_file(path, record.sha256, record.filename or os.path.basename(path), f"artifact {record.name!r}")


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
    digest = hashlib.sha256()
    with outgoing.file as f:
        held = f.read(CHUNK)
        while True:
            chunk = f.read(CHUNK)
            if not chunk:
                break
            digest.update(held)
            yield held
            held = chunk
        digest.update(held)
        if outgoing.sha256 is not None and digest.hexdigest() != outgoing.sha256:
            raise IntegrityError(f"{outgoing.what} changed while it was being sent: the download was stopped "
                                 "short, so that no altered copy completes.")
        if held:
            yield held


def _verified_file(path: str, sha256: str, filename: str, what: str) -> Outgoing:
    f = _missing_as_404(lambda: open(path, "rb"), what)
    try:
        digest = hashlib.sha256()
        while chunk := f.read(CHUNK * 8):
            digest.update(chunk)
        if digest.hexdigest() != sha256:
            raise IntegrityError(_altered(what, digest.hexdigest(), sha256))
        size = f.tell()
        f.seek(0)
    except BaseException:
        f.close()
        raise
    return Outgoing(f, size, filename, sha256, what)


def _verified_zip(files: list[tuple[str, str]], manifest: list, sha256: str, filename: str, what: str) -> Outgoing:
    """A zip of (path, name) files, each hashed as it is copied in and checked against the manifest."""
    expected = {entry["name"]: entry["sha256"] for entry in manifest}
    if manifest_sha256(manifest) != sha256 or sorted(expected) != sorted(name for _, name in files):
        raise IntegrityError(f"The file list recorded for {what} does not match its sha256; not sent.")
    out = tempfile.TemporaryFile(prefix="autolog-ui-")  # no name: deleted when closed, whatever happens
    try:
        with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
            for path, name in files:
                got = _copy_into(archive, path, name, what)
                if got != expected[name]:
                    raise IntegrityError(_altered(f"{name} of {what}", got, expected[name]))
        size = out.tell()
        out.seek(0)
    except BaseException:
        out.close()
        raise
    return Outgoing(out, size, filename, None, what)


def _copy_into(archive: zipfile.ZipFile, path: str, name: str, what: str) -> str:
    digest = hashlib.sha256()
    source = _missing_as_404(lambda: open(path, "rb"), f"{name} of {what}")
    with source, archive.open(name, "w", force_zip64=True) as target:
        while chunk := source.read(CHUNK * 8):
            digest.update(chunk)
            target.write(chunk)
    return digest.hexdigest()


def _snapshot_file(ctx: Context, snap: SnapshotRecord) -> str:
    """The local file of a one-file snapshot (remote ones fetched, verified, into the cache)."""
    uri = snap.uri or ""
    if snap.status == "local":
        return real_path(os.path.join(uri, snap.entry) if snap.entry else uri)
    return _missing_as_404(lambda: fetch(uri, "", snap.sha256, [], ctx.cache_dir), f"snapshot {snap.seq}")


def _snapshot_files(ctx: Context, snap: SnapshotRecord) -> list[tuple[str, str]]:
    """(local path, name in the snapshot) of each file of a multi-file snapshot."""
    uri = snap.uri or ""
    if snap.status == "local":
        from ..model import _recorded_sources  # the files a path-only snapshot was made of, as the SDK reads them

        path = real_path(os.path.join(uri, snap.entry) if snap.entry else uri)
        return [(src, name) for src, name in _missing_as_404(lambda: _recorded_sources(snap, path).files,
                                                             f"snapshot {snap.seq}")]
    folder = real_path(normalize_uri(uri)) if is_local(uri) else _missing_as_404(
        lambda: fetch(uri, "", snap.sha256, snap.files, ctx.cache_dir), f"snapshot {snap.seq}")
    return [(os.path.join(folder, entry["name"]), entry["name"]) for entry in snap.files]


def _missing_as_404(step, what: str):  # type: ignore[no-untyped-def]
    """step(), with a stored object that is gone answered as 404 (it was deleted by hand or by retention)."""
    try:
        return step()
    except FileNotFoundError:
        raise UIError(404, f"The stored bytes of {what} are missing (deleted by hand or by retention).") from None


def _altered(what: str, got: str, expected: str) -> str:
    return (f"The stored bytes of {what} do not match the sha256 recorded when it was saved ({got[:12]} != "
            f"{expected[:12]}): the stored copy was altered or corrupted, and is not sent.")
