"""BlobStore: the few operations autolog needs from an output_uri, over fsspec.

Local folders and ``file://`` are written with temp file + rename, so a reader never sees a
partial object at its final key; object stores (s3, gs, az, memory) publish a put atomically.
"""
from __future__ import annotations

import itertools
import os
import shutil
import uuid
from typing import TYPE_CHECKING, BinaryIO, Callable

from ..config import redact_url, scrub
from ..errors import StorageError


def normalize_uri(uri: str) -> str:
    """Absolute local path for local locations, the URL itself for everything else."""
    if uri.startswith("file://"):
        uri = uri[len("file://"):]
    if "://" not in uri:
        return os.path.abspath(os.path.expanduser(uri))
    return uri.rstrip("/")


def is_local(uri: str) -> bool:
    return "://" not in uri or uri.startswith("file://")


if TYPE_CHECKING:
    import fsspec


def filesystem(uri: str) -> "tuple[fsspec.AbstractFileSystem, str]":
    """The fsspec filesystem for uri and the path inside it, with errors that name the fix."""
    import fsspec  # only remote stores need it; local folders are plain os calls

    try:
        # No listing cache: other processes add and delete objects, and a listing this process cached
        # (fs.find, fs.rm) would make exists()/open() answer from the past.
        return fsspec.core.url_to_fs(uri, use_listings_cache=False)
    except ImportError as exc:
        raise StorageError(
            f"Storage {redact_url(uri)} needs a package that is not installed ({exc}). "
            "Install the matching extra, e.g. pip install 'autolog[s3]' (or [gcs], [azure])."
        ) from None
    except ValueError as exc:
        raise StorageError(
            f"Storage {redact_url(uri)} is not a location autolog can use: {scrub(str(exc))}. "
            "Use a local path, file://, or an fsspec URL such as s3://bucket/prefix."
        ) from None


class BlobStore:
    def __init__(self, uri: str):
        self.root = normalize_uri(uri)
        redact_url(self.root)  # remembers credentials in the URL, so that scrub() hides them in errors
        self.local = is_local(self.root)
        if not self.local:
            filesystem(self.root)  # an unknown scheme or a missing extra fails here, with the fix

    def __repr__(self) -> str:
        return f"BlobStore({redact_url(self.root)!r})"

    def url(self, key: str) -> str:
        return f"{self.root}/{key}"

    def check_writable(self) -> None:
        """Write and delete a probe object, so a bad output_uri fails at Task.init, not mid-training."""
        probe = self.url(f".autolog-write-test-{uuid.uuid4().hex}")
        try:
            if self.local:
                os.makedirs(self.root, exist_ok=True)
                with open(probe, "wb") as f:
                    f.write(b"ok")
                os.remove(probe)
            else:
                fs, path = filesystem(probe)
                _make_parent(fs, path)
                fs.pipe_file(path, b"ok")
                fs.rm_file(path)
        except StorageError:
            raise
        except Exception as exc:
            raise StorageError(
                f"output_uri '{redact_url(self.root)}' is not writable: {type(exc).__name__}: {scrub(str(exc))}. "
                "Set output_uri to a writable location, or output_uri=False to record paths only."
            ) from None

    def put_file(self, local_path: str, key: str, on_progress: Callable[..., None] | None = None) -> str:
        """Publish a local file at key; returns its URI. on_progress is called as bytes go out."""
        target = self.url(key)
        if self.local:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            tmp = f"{target}.incomplete-{uuid.uuid4().hex}"
            try:
                shutil.copyfile(local_path, tmp)
                os.replace(tmp, target)
            finally:
                remove_quietly(tmp)
        else:
            fs, path = filesystem(target)
            _make_parent(fs, path)
            if on_progress is None:
                fs.put_file(local_path, path)
            else:
                fs.put_file(local_path, path, callback=_progress_callback(on_progress))
        return target

    def put_bytes(self, data: bytes, key: str) -> str:
        """Publish bytes at key (temp file + rename for local folders); returns its URI."""
        target = self.url(key)
        if not self.local:
            fs, path = filesystem(target)
            _make_parent(fs, path)
            fs.pipe_file(path, data)
            return target
        _make_folder(os.path.dirname(target))
        tmp = f"{target}.incomplete-{os.getpid()}-{next(_tmp_names)}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            try:
                write_all(fd, data)
            finally:
                os.close(fd)
            os.replace(tmp, target)
        except BaseException:
            try:  # never let the cleanup replace the cause (a read-only or full filesystem fails both)
                os.remove(tmp)
            except OSError:
                pass
            raise
        return target

    def delete(self, uri: str) -> None:
        """Remove a stored file or folder, and the snapshot folder left empty by it."""
        if self.local:
            path = normalize_uri(uri)
            if os.path.isdir(path):
                shutil.rmtree(path)
            elif os.path.exists(path):
                os.remove(path)
            parent = os.path.dirname(path)
            while parent.startswith(self.root + os.sep) and not os.listdir(parent):
                os.rmdir(parent)
                parent = os.path.dirname(parent)
        else:
            fs, path = filesystem(uri)
            try:
                fs.rm(path, recursive=True)
            except FileNotFoundError:
                pass  # already gone: two uploaders' retention passes may pick the same snapshot

    def exists(self, uri: str) -> bool:
        if self.local:
            return os.path.exists(uri)
        fs, path = filesystem(uri)
        return fs.exists(path)


def open_for_read(uri: str) -> BinaryIO:
    if is_local(uri):
        return open(normalize_uri(uri), "rb")
    fs, path = filesystem(uri)
    return fs.open(path, "rb")


def download(uri: str, local_path: str) -> None:
    """Copy uri to local_path atomically (temp + rename)."""
    os.makedirs(os.path.dirname(local_path) or ".", exist_ok=True)
    tmp = f"{local_path}.incomplete-{uuid.uuid4().hex}"
    try:
        with open_for_read(uri) as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        os.replace(tmp, local_path)
    except FileNotFoundError:
        raise StorageError(
            f"Stored object {redact_url(uri)} is missing. It may have been deleted by retention or by hand; "
            "pick another snapshot (model.snapshots) or re-upload it."
        ) from None
    finally:
        remove_quietly(tmp)


def list_files(uri: str) -> list[str]:
    """Relative names of every file under a stored folder."""
    if is_local(uri):
        root = normalize_uri(uri)
        return sorted(
            os.path.relpath(os.path.join(d, f), root).replace(os.sep, "/") for d, _, fs in os.walk(root) for f in fs
        )
    fs, path = filesystem(uri)
    return sorted(p[len(path.rstrip("/")) + 1:] for p in fs.find(path))


# Object stores have no folders; there makedirs would create a missing (deleted, mistyped) bucket.
_BUCKET_PROTOCOLS = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl"})


def _make_parent(fs: "fsspec.AbstractFileSystem", path: str) -> None:
    """Create the parent folder where the filesystem has real folders (sftp, local://)."""
    protocols = fs.protocol if isinstance(fs.protocol, (tuple, list)) else (fs.protocol,)
    if not _BUCKET_PROTOCOLS.intersection(protocols):
        fs.makedirs(fs._parent(path), exist_ok=True)


def remove_quietly(path: str) -> None:
    """Delete a local file that may already be gone."""
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def _progress_callback(on_progress: Callable[..., None]) -> "fsspec.callbacks.Callback":
    """An fsspec callback that reports every update (fsspec calls it per uploaded part)."""
    from fsspec.callbacks import Callback

    class Reporting(Callback):
        def call(self, *args: object, **kwargs: object) -> None:
            on_progress()

    return Reporting()


# Temp names unique in this process (with the pid): cheaper than a uuid per snapshot.
_tmp_names = itertools.count()


def write_all(fd: int, data: bytes) -> None:
    """os.write may write less than asked (a disk filling up): the rest, or the error it then raises."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _make_folder(folder: str) -> None:
    """mkdir, and its parents only when missing (a snapshot's folder is new, its parent usually not)."""
    try:
        os.mkdir(folder)
    except FileExistsError:
        pass
    except FileNotFoundError:
        os.makedirs(folder, exist_ok=True)
