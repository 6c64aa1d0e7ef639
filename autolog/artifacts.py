"""Artifacts: named objects a task uploads (files, folders, arrays, frames, images, dicts, anything
picklable) and reads back by name. Formats live in `serializers`; this module stores and fetches."""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from urllib.parse import urlsplit
from typing import TYPE_CHECKING, Any

from .config import redact_url
from .context import Context
from .db import ArtifactRecord, new_id
from .errors import IntegrityError
from .serializers import deserialize, extract_zip, serialize
from .storage import Sources, fetch, publish
from .storage.blobstore import download, is_local
from .storage.hashing import sha256_file
from .storage.layout import artifact_key, display_path, safe_component

if TYPE_CHECKING:
    from .runtime import TaskRuntime

# Kinds whose bytes are turned back into Python objects: verified against the recorded sha256 first.
_DECODED = {"numpy", "pandas", "image", "json", "pickle"}


class Artifact:
    """One uploaded artifact. `get()` returns the object, `get_local_copy()` a local path."""

    def __init__(self, ctx: Context, record: ArtifactRecord):
        self._ctx = ctx
        self._record = record

    name = property(lambda self: self._record.name)
    type = property(lambda self: self._record.kind, doc="file, folder, numpy, pandas, image, json, pickle or url")
    url = property(lambda self: self._record.uri)
    uri = url
    sha256 = property(lambda self: self._record.sha256)
    size = property(lambda self: self._record.size)
    preview = property(lambda self: self._record.preview)
    metadata = property(lambda self: dict(self._record.meta))
    task_id = property(lambda self: self._record.task_id)

    def __repr__(self) -> str:
        return f"<Artifact {self.name!r} type={self.type} size={self.size}>"

    def get_local_copy(self) -> str:
        """A local path: the stored file, a verified cached download, or an extracted folder."""
        rec = self._record
        if rec.kind == "url":
            return self._reference_copy()
        local = fetch(rec.uri, "", rec.sha256, [], self._ctx.cache_dir)
        if rec.kind == "folder":
            folder_name = rec.filename[: -len(".zip")] if rec.filename.endswith(".zip") else rec.filename
            return extract_zip(local, os.path.join(self._ctx.cache_dir, "extracted", rec.sha256 or rec.id, folder_name))
        return local

    def get(self) -> Any:
        """The object back: ndarray, DataFrame, PIL image, dict/list, unpickled object; a path for files/folders."""
        path = self.get_local_copy()
        if self._record.kind in _DECODED:
            got = sha256_file(path)
            if got != self._record.sha256:
                raise IntegrityError(
                    f"Artifact {self.name!r} at {self.url} does not match its recorded sha256 "
                    f"({got[:12]} != {(self._record.sha256 or '')[:12]}); refusing to load it. "
                    "The stored copy was altered: upload the artifact again."
                )
            return deserialize(self._record.kind, path)
        return path

    def _reference_copy(self) -> str:
        url = self._record.uri
        if is_local(url):
            return url.removeprefix("file://")
        digest = hashlib.sha256(url.encode()).hexdigest()
        local = os.path.join(self._ctx.cache_dir, "references", digest, os.path.basename(url.rstrip("/")) or "object")
        if not os.path.exists(local):
            download(url, local)
        return local


def upload_artifact(run: "TaskRuntime", name: str, artifact_object: Any, metadata: dict | None, preview: str | None) -> Artifact:
    """Serialize, store under the task's artifact key, and record; a name already used is replaced."""
    if not isinstance(name, str) or not name:
        raise ValueError("Artifact name must be a non-empty string.")
    ctx = run.ctx
    artifact_object = _check_path_or_url(artifact_object)
    if isinstance(artifact_object, str):  # a URL: recorded as a reference, nothing uploaded
        url = redact_url(artifact_object)
        record = ctx.store.put_artifact(
            run.task_id, name, kind="url", uri=url, filename=os.path.basename(urlsplit(url).path.rstrip("/")),
            sha256=None, size=None, preview=preview or url, meta=metadata or {},
        )
        return Artifact(ctx, record)
    store = run.artifact_store
    artifact_id = new_id()
    with tempfile.TemporaryDirectory(prefix="autolog-artifact-") as workdir:
        serialized = serialize(artifact_object, workdir, safe_component(name))
        filename = os.path.basename(serialized.path) if serialized.kind == "file" else safe_component(name) + serialized.extension
        if serialized.kind == "folder":
            filename = os.path.basename(os.path.abspath(os.fspath(artifact_object)).rstrip(os.sep)) + ".zip"
        filename = display_path(filename)  # object keys and rows are UTF-8 text
        sources = Sources(files=((serialized.path, filename),), name=filename, single=True)
        key = artifact_key(run.task_key, name, artifact_id)
        published = publish(sources, store, key, ctx.cache_dir, find_copy=lambda sha: None)
    record = ctx.store.put_artifact(
        run.task_id, name, id=artifact_id, kind=serialized.kind, uri=redact_url(published.uri), filename=filename,
        sha256=published.content.sha256, size=published.content.size, preview=preview or serialized.preview,
        meta=metadata or {},
    )
    return Artifact(ctx, record)


def _check_path_or_url(obj: Any) -> Any:
    """Strings must be an existing path or a URL: a typo must never be stored silently as text."""
    if isinstance(obj, Path):
        obj = str(obj)
    if not isinstance(obj, str):
        return obj
    if obj.startswith("file://"):
        obj = obj[len("file://"):]
    elif "://" in obj:
        return obj
    if os.path.exists(os.path.expanduser(obj)):
        return Path(os.path.expanduser(obj))
    raise ValueError(
        f"upload_artifact got the string {obj[:200]!r}, which is neither an existing file or folder nor a URL. "
        "Pass a path that exists, a URL (s3://..., https://...), or wrap text in a dict, e.g. {'text': ...}."
    )
