"""Artifacts: named objects a task uploads (files, folders, wildcards, arrays, frames, images, dicts,
anything picklable, or bytes of the user's own serialization) and reads back by name. Formats live in
`serializers`; this module stores and fetches."""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from urllib.parse import urlsplit
from typing import TYPE_CHECKING, Any, Callable

from .artifact_wildcard import Wildcard, is_wildcard, zip_wildcard
from .config import redact_url, scrub
from .context import Context
from .db import ArtifactRecord, new_id
from .errors import IntegrityError
from .serializers import PREVIEW_LIMIT, Serialized, deserialize, extract_zip, serialize
from .storage import Sources, fetch, publish
from .storage.blobstore import download, is_local
from .storage.hashing import SHA256, sha256_digest, sha256_file
from .storage.layout import artifact_key, display_path, safe_component

if TYPE_CHECKING:
    from .runtime import TaskRuntime

logger = logging.getLogger("autolog")

# Kinds whose bytes are turned back into Python objects: verified against the recorded sha256 first.
_DECODED = {"numpy", "pandas", "image", "json", "pickle"}


class Artifact:
    """One uploaded artifact. `get()` returns the object, `get_local_copy()` a local path."""

    def __init__(self, ctx: Context, record: ArtifactRecord):
        self._ctx = ctx
        self._record = record

    name = property(lambda self: self._record.name)
    type = property(lambda self: self._record.kind,
                    doc="file, folder (a zipped folder or wildcard), numpy, pandas, image, json, pickle, custom "
                        "(bytes of a serialization_function) or url")
    url = property(lambda self: self._record.uri)
    uri = url
    sha256 = property(lambda self: self._record.sha256)
    hash = sha256  # ClearML's name
    size = property(lambda self: self._record.size)
    preview = property(lambda self: self._record.preview)
    metadata = property(lambda self: dict(self._record.meta))
    task_id = property(lambda self: self._record.task_id)

    def __repr__(self) -> str:
        return f"<Artifact {self.name!r} type={self.type} size={self.size}>"

    def get_local_copy(self, extract_archive: bool = True, raise_on_error: bool = False,
                       force_download: bool = False) -> str | None:
        """A local path: the stored file, a verified cached download, or an extracted folder.

        extract_archive: a zipped folder or wildcard comes back extracted into the cache (True) or as the
        zip file itself (False). raise_on_error: a copy that cannot be had (the object is missing or
        unreachable) raises; by default it is logged as a warning and None returned, as in ClearML. A copy
        whose bytes do not match the recorded sha256 always raises IntegrityError. force_download: fetch
        it again even if the cache holds it.
        """
        try:
            return self._local_copy(extract_archive, force_download)
        except IntegrityError:
            raise
        except OSError as exc:
            if raise_on_error:
                raise
            logger.warning("autolog: no local copy of artifact %r (%s): %s: %s", self.name, redact_url(self.url),
                           type(exc).__name__, scrub(str(exc)))
            return None

    def _local_copy(self, extract_archive: bool, force_download: bool) -> str:
        rec = self._record
        if rec.kind == "url":
            return self._reference_copy(force_download)
        local = fetch(rec.uri, "", sha256_digest(rec.sha256), [], self._ctx.cache_dir, force_download=force_download)
        if rec.kind != "folder" or not extract_archive:
            return local
        folder_name = rec.filename[: -len(".zip")] if rec.filename.endswith(".zip") else rec.filename
        target = os.path.join(self._ctx.cache_dir, "extracted", rec.sha256 or rec.id, folder_name)
        if force_download and os.path.lexists(target):
            _remove_tree(target)
        return extract_zip(local, target)

    def get(self, force_download: bool = False,
            deserialization_function: Callable[[bytes], Any] | None = None) -> Any:
        """The object back: ndarray, DataFrame, PIL image, dict/list, unpickled object; a path for files,
        folders and custom bytes.

        deserialization_function: called with the stored bytes (a zip's for a folder), for an artifact
        uploaded with serialization_function; its result is returned. Bytes are checked against the
        recorded sha256 before anything decodes them.
        """
        if deserialization_function is not None:
            path = self.get_local_copy(extract_archive=False, raise_on_error=True, force_download=force_download)
            self._verify(path)
            with open(path, "rb") as f:
                return deserialization_function(f.read())
        path = self.get_local_copy(raise_on_error=True, force_download=force_download)
        if self._record.kind in _DECODED:
            self._verify(path)
            return deserialize(self._record.kind, path)
        return path

    def _verify(self, path: str | None) -> None:
        expected = self._record.sha256
        if expected is None or path is None:
            return  # a reference URL: nothing was recorded to check against
        got = sha256_file(path)
        if got != expected:
            raise IntegrityError(
                f"Artifact {self.name!r} at {self.url} does not match its recorded sha256 "
                f"({got[:12]} != {expected[:12]}); refusing to load it. "
                "The stored copy was altered: upload the artifact again."
            )

    def _reference_copy(self, force_download: bool = False) -> str:
        url = self._record.uri
        if is_local(url):
            return url.removeprefix("file://")
        digest = hashlib.sha256(url.encode()).hexdigest()
        local = os.path.join(self._ctx.cache_dir, "references", digest, os.path.basename(url.rstrip("/")) or "object")
        if force_download or not os.path.exists(local):
            download(url, local)  # temp + rename: replaces an older copy in one step
        return local


def upload_artifact(run: "TaskRuntime", name: str, artifact_object: Any, metadata: dict | None = None,
                    preview: Any = None, *, auto_pickle: bool = True, extension_name: str | None = None,
                    serialization_function: Callable[[Any], bytes] | None = None,
                    delete_after_upload: bool = False) -> Artifact:
    """Serialize, store under the task's artifact key, and record; a name already used is replaced."""
    if not isinstance(name, str) or not name:
        raise ValueError("Artifact name must be a non-empty string.")
    if metadata is not None and not isinstance(metadata, dict):
        raise ValueError(f"metadata must be a dict of key-value pairs, got {type(metadata).__name__}.")
    preview = None if preview is None or preview is False else str(preview)
    ctx = run.ctx
    if serialization_function is None:
        artifact_object = _check_path_or_url(artifact_object)
    if isinstance(artifact_object, str):  # a URL: recorded as a reference, nothing uploaded
        url = redact_url(artifact_object)
        record = ctx.store.put_artifact(
            run.task_id, name, kind="url", uri=url, filename=os.path.basename(urlsplit(url).path.rstrip("/")),
            sha256=None, size=None, preview=preview or url, meta=metadata or {},
        )
        return Artifact(ctx, record)
    artifact_id = new_id()
    with tempfile.TemporaryDirectory(prefix="autolog-artifact-") as workdir:
        serialized = _serialized(artifact_object, workdir, name, auto_pickle, extension_name, serialization_function)
        filename = display_path(_stored_filename(serialized, artifact_object, name))  # keys and rows are UTF-8
        sources = Sources(files=((serialized.path, filename),), name=filename, single=True)
        key = artifact_key(run.task_key, name, artifact_id)
        published = publish(sources, run.artifact_store, key, ctx.cache_dir, find_copy=lambda digest: None,
                            algorithm=SHA256)
    record = ctx.store.put_artifact(
        run.task_id, name, id=artifact_id, kind=serialized.kind, uri=redact_url(published.uri), filename=filename,
        sha256=published.content.sha256, size=published.content.size, preview=preview or serialized.preview,
        meta=metadata or {},
    )
    if delete_after_upload and serialized.kind == "file":
        os.remove(serialized.path)  # ClearML deletes the user's file once stored; zips and temp files are ours
    return Artifact(ctx, record)


def _serialized(obj: Any, workdir: str, name: str, auto_pickle: bool, extension_name: str | None,
                serialization_function: Callable[[Any], bytes] | None) -> Serialized:
    if serialization_function is not None:
        data = serialization_function(obj)
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise ValueError(f"serialization_function must return bytes, got {type(data).__name__}.")
        extension = extension_name or ""
        path = os.path.join(workdir, safe_component(name) + extension)
        Path(path).write_bytes(data)
        text = f"{type(obj).__module__}.{type(obj).__qualname__} ({len(data)} bytes)"
        return Serialized(path, "custom", extension, text[:PREVIEW_LIMIT])
    if isinstance(obj, Wildcard):
        return zip_wildcard(obj, workdir)
    return serialize(obj, workdir, safe_component(name), extension_name, auto_pickle)


def _stored_filename(serialized: Serialized, artifact_object: Any, name: str) -> str:
    if serialized.kind == "file":
        return os.path.basename(serialized.path)
    if serialized.kind == "folder":
        return os.path.basename(serialized.path) if isinstance(artifact_object, Wildcard) else \
            os.path.basename(os.path.abspath(os.fspath(artifact_object)).rstrip(os.sep)) + ".zip"
    return safe_component(name) + serialized.extension


def _check_path_or_url(obj: Any) -> Any:
    """Strings must be an existing path, a wildcard that matches files, or a URL: a typo must never be
    stored silently as text."""
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
    if is_wildcard(obj):
        return Wildcard.expand(obj)
    raise ValueError(
        f"upload_artifact got the string {obj[:200]!r}, which is neither an existing file or folder nor a URL. "
        "Pass a path that exists, a wildcard such as 'data/*.jpg', a URL (s3://..., https://...), or wrap text "
        "in a dict, e.g. {'text': ...}."
    )


def _remove_tree(path: str) -> None:
    """Move a cached folder aside, then delete it: a reader never finds it half deleted."""
    gone = f"{path}.discarded-{uuid.uuid4().hex}"
    try:
        os.rename(path, gone)
    except FileNotFoundError:
        return
    shutil.rmtree(gone, ignore_errors=True)
