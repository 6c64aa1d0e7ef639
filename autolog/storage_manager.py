"""StorageManager: ClearML's static helper for files in storage, over fsspec.

Any location autolog can store to works: a local path, file://, s3://, gs://, az://, memory://, sftp://
(with the matching fsspec package installed). Credentials come from the storage library's usual places
(for S3 the AWS_* variables); a URL that carries them is shown redacted in every message.

- Downloads are cached under $AUTOLOG_HOME/cache/urls/<cache_context> (storage/url_cache.py): a cached
  copy is used while the source is unchanged (its size and ETag/mtime), so a replaced object is fetched
  again. A local path is returned as is (no copy), as in ClearML.
- Uploads are atomic: a local target is written as a temp file renamed into place; object stores publish
  a put whole.
- As in ClearML, get_local_copy, download_file, download_folder, list and get_file_size_bytes return None
  when they fail, with a warning (silence_errors=True: without it). Unlike ClearML, uploads raise: a
  missing local file or folder raises FileNotFoundError naming it, and an upload that still fails after
  its retries raises StorageError naming the file and the URL.
"""
from __future__ import annotations

import builtins
import fnmatch
import logging
import os
import shutil
import tarfile
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

from .config import redact_url, scrub
from .context import default_context
from .errors import StorageError
from .serializers import extract_zip
from .storage.blobstore import BlobStore, download, filesystem, is_local, normalize_uri, remove_quietly
from .storage.layout import safe_component
from .storage.url_cache import cached_copy, source_info, url_entry

__all__ = ["StorageManager"]

logger = logging.getLogger("autolog")

_ARCHIVES = (".zip", ".tar.gz", ".tgz")
# Background uploads (upload_file(wait_for_upload=False)); its threads are joined at interpreter exit,
# so a queued upload still completes when the script ends.
_background: ThreadPoolExecutor | None = None


class StorageManager:
    """Download, upload and list files in any storage location, with a local cache for downloads."""

    @classmethod
    def get_local_copy(cls, remote_url: str, cache_context: str | None = None, extract_archive: bool = True,
                       name: str | None = None, force_download: bool = False) -> str | None:
        """A local path holding the file at remote_url: the path itself when it is local, else a cached
        download (fetched again when the source changed, or with force_download). extract_archive: a .zip,
        .tar.gz or .tgz comes back as a cached folder of its content. name: names that folder. None, with a
        warning, when the file cannot be had."""
        try:
            local = normalize_uri(remote_url) if is_local(remote_url) else \
                cached_copy(remote_url, _cache_root(cache_context), force_download)
            if is_local(remote_url) and not os.path.isfile(local):
                raise FileNotFoundError(f"No file at {local}.")
        except (OSError, ValueError) as exc:
            _warn(f"cannot get a local copy of {redact_url(remote_url)}", exc)
            return None
        if not extract_archive or not local.lower().endswith(_ARCHIVES):
            return local
        try:
            return _extract(local, remote_url, _cache_root(cache_context), name)
        except (OSError, ValueError, zipfile.BadZipFile, tarfile.TarError) as exc:
            _warn(f"cannot extract {redact_url(remote_url)}; returning the archive itself", exc)
            return local

    @classmethod
    def upload_file(cls, local_file: str, remote_url: str, wait_for_upload: bool = True,
                    retries: int | None = None) -> str:
        """Upload local_file to remote_url (the full destination, file name included; a URL ending in "/"
        gets the file's own name). Returns the destination URL. wait_for_upload=False: returns at once and
        uploads in a background thread (finished before the interpreter exits; a failure is logged).
        retries: tries after the first failed one (default: [pipeline] upload_retries - 1)."""
        source = _local_file(local_file, "local_file")
        target = remote_url + os.path.basename(source) if remote_url.endswith("/") else remote_url
        attempts = _attempts(retries)
        if wait_for_upload:
            _with_retries(lambda: _put(source, target), attempts, f"{source} to {redact_url(target)}")
            return target
        _executor().submit(_upload_in_background, source, target, attempts)
        return target

    @classmethod
    def upload_folder(cls, local_folder: str, remote_url: str, match_wildcard: str | None = None,
                      retries: int | None = None) -> str:
        """Upload every file under local_folder (or those whose name matches match_wildcard, e.g. "*.json")
        to remote_url, keeping the sub folders: ~/folder/sub/file.ext goes to <remote_url>/sub/file.ext.
        Returns remote_url."""
        folder = Path(os.path.expanduser(local_folder))
        if not folder.is_dir():
            raise FileNotFoundError(f"local_folder {local_folder!r} is not a folder. Pass an existing folder.")
        files = sorted(p for p in folder.rglob(match_wildcard or "*") if p.is_file())
        attempts = _attempts(retries)
        base = remote_url.rstrip("/")
        jobs = [(str(p), f"{base}/{p.relative_to(folder).as_posix()}") for p in files]
        with ThreadPoolExecutor(max_workers=4, thread_name_prefix="autolog-upload") as pool:
            futures = [pool.submit(_with_retries, (lambda s=s, t=t: _put(s, t)), attempts,
                                   f"{s} to {redact_url(t)}") for s, t in jobs]
            failed = [str(exc) for exc in (f.exception() for f in futures) if exc is not None]
        if failed:
            raise StorageError(f"{len(failed)} of {len(jobs)} files from {local_folder} were not uploaded to "
                               f"{redact_url(remote_url)}: {failed[0]}")
        return remote_url

    @classmethod
    def download_file(cls, remote_url: str, local_folder: str | None = None, overwrite: bool = False,
                      skip_zero_size_check: bool = False, silence_errors: bool = False) -> str | None:
        """Download remote_url into local_folder (default: the cache), keeping its path: s3://bucket/sub/f.ext
        goes to <local_folder>/sub/f.ext. An existing file is kept unless overwrite. A file of 0 bytes is a
        failure unless skip_zero_size_check. Returns the local path, or None (with a warning unless
        silence_errors) on failure."""
        folder = os.path.abspath(os.path.expanduser(local_folder)) if local_folder else _download_root()
        try:
            local = _local_target(folder, remote_url)
            if os.path.exists(local) and not overwrite:
                return local
            download(remote_url, local)
            if not skip_zero_size_check and os.path.getsize(local) == 0:
                remove_quietly(local)
                raise StorageError(f"{redact_url(remote_url)} is empty (0 bytes). Pass skip_zero_size_check=True "
                                   "to accept empty files.")
            return local
        except (OSError, ValueError) as exc:
            if not silence_errors:
                _warn(f"cannot download {redact_url(remote_url)}", exc)
            return None

    @classmethod
    def download_folder(cls, remote_url: str, local_folder: str | None = None, match_wildcard: str | None = None,
                        overwrite: bool = False, skip_zero_size_check: bool = False,
                        silence_errors: bool = False) -> str | None:
        """Download every file under remote_url (those whose full URL matches match_wildcard, e.g. "*.json")
        into local_folder (default: the cache), keeping their paths as download_file does. Returns
        local_folder; None (with a warning unless silence_errors) when some file could not be downloaded."""
        folder = os.path.abspath(os.path.expanduser(local_folder)) if local_folder else _download_root()
        urls = cls.list(remote_url, return_full_path=True)
        if urls is None:
            return None
        urls = [u for u in urls if not match_wildcard or fnmatch.fnmatch(u, match_wildcard)]
        if not urls and not silence_errors:
            logger.warning("autolog: no file to download under %s%s", redact_url(remote_url),
                           f" matching {match_wildcard!r}" if match_wildcard else "")
        results = [cls.download_file(u, folder, overwrite, skip_zero_size_check, silence_errors) for u in urls]
        return folder if all(r is not None for r in results) else None

    @classmethod
    def list(cls, remote_url: str, return_full_path: bool = False,
             with_metadata: bool = False) -> builtins.list[str] | builtins.list[dict[str, Any]] | None:
        """The files under remote_url, recursively: a folder, or a prefix ("s3://bucket/runs_" lists every
        file whose key starts with it). Names are relative to the bucket on object stores and to the folder
        on local paths (as ClearML's do); return_full_path gives full URLs / paths. with_metadata: dicts
        {"name", "size"}. None, with a warning, when listing fails."""
        try:
            found = _list_local(remote_url) if is_local(remote_url) else _list_remote(remote_url)
        except (OSError, ValueError) as exc:
            _warn(f"cannot list {redact_url(remote_url)}", exc)
            return None
        if with_metadata:
            return [{"name": full if return_full_path else name, "size": size} for name, full, size in found]
        return [full if return_full_path else name for name, full, _ in found]

    @classmethod
    def exists_file(cls, remote_url: str) -> bool:
        """Whether remote_url is a file (False for a folder, a URL ending in "/", or anything unreachable)."""
        if remote_url.endswith("/"):
            return False
        try:
            source_info(remote_url)
            return True
        except Exception:  # noqa: BLE001 - "no", whatever the reason, as in ClearML
            return False

    @classmethod
    def get_file_size_bytes(cls, remote_url: str, silence_errors: bool = False) -> int | None:
        """The size in bytes of the file at remote_url; None (with a warning unless silence_errors) if there
        is none or it cannot be reached."""
        try:
            return source_info(remote_url)["size"]
        except (OSError, ValueError) as exc:
            if not silence_errors:
                _warn(f"cannot get the size of {redact_url(remote_url)}", exc)
            return None


# -- helpers ---------------------------------------------------------------------------------
def _warn(what: str, exc: BaseException) -> None:
    logger.warning("autolog: %s: %s: %s", what, type(exc).__name__, scrub(str(exc)))


def _cache_root(cache_context: str | None) -> str:
    if cache_context is not None and not isinstance(cache_context, str):
        raise ValueError(f"cache_context must be a string, got {cache_context!r}.")
    return os.path.join(default_context().cache_dir, "urls", safe_component(cache_context or "global"))


def _download_root() -> str:
    return os.path.join(default_context().cache_dir, "downloads")


def _local_file(path: str, what: str) -> str:
    source = os.path.abspath(os.path.expanduser(os.fspath(path)))
    if not os.path.isfile(source):
        raise FileNotFoundError(f"{what} {os.fspath(path)!r} is not a file. Pass the path of an existing file.")
    return source


def _attempts(retries: int | None) -> int:
    if retries is None:
        return default_context().settings.upload_retries
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError(f"retries must be a whole number of at least 0 (or None for the default), got {retries!r}.")
    return retries + 1


def _put(source: str, target: str) -> None:
    """Publish source at target in one step (temp + rename on a local path; a whole put elsewhere)."""
    parent, _, name = normalize_uri(target).rpartition("/")
    if not name:
        raise ValueError(f"remote_url {redact_url(target)!r} names no file. Give the full destination.")
    BlobStore(parent or "/").put_file(source, name)


def _with_retries(action: Callable[[], None], attempts: int, what: str) -> None:
    for attempt in range(1, attempts + 1):
        try:
            action()
            return
        except (OSError, ValueError) as exc:
            if isinstance(exc, ValueError) or attempt == attempts:
                raise StorageError(f"Uploading {what} failed after {attempt} attempt(s): {type(exc).__name__}: "
                                   f"{scrub(str(exc))}. Check the location and its credentials.") from None
            time.sleep(min(0.5 * 2 ** (attempt - 1), 5.0))  # a store that is briefly unreachable


def _upload_in_background(source: str, target: str, attempts: int) -> None:
    try:
        _with_retries(lambda: _put(source, target), attempts, f"{source} to {redact_url(target)}")
    except Exception as exc:  # noqa: BLE001 - nobody waits on this future: the log is where it is seen
        logger.error("autolog: background upload failed: %s", scrub(str(exc)))


def _executor() -> ThreadPoolExecutor:
    global _background
    if _background is None:
        _background = ThreadPoolExecutor(max_workers=2, thread_name_prefix="autolog-upload")
    return _background


def _local_target(folder: str, remote_url: str) -> str:
    """<folder>/<the URL's path>, refused when '..' would take it out of folder."""
    path = urlsplit(remote_url).path if "://" in remote_url else os.path.abspath(os.path.expanduser(remote_url))
    target = os.path.normpath(os.path.join(folder, path.lstrip("/")))
    if os.path.commonpath([target, folder]) != folder or target == folder:
        raise ValueError(f"{redact_url(remote_url)} has no file path to download into {folder}.")
    return target


def _extract(archive: str, remote_url: str, cache_root: str, name: str | None) -> str:
    """The archive's content in a cache folder tied to the archive's current version."""
    info = source_info(archive)
    stem = os.path.basename(archive)
    for suffix in _ARCHIVES:
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
    folder = safe_component(name) if name else safe_component(stem)
    target = os.path.join(url_entry(cache_root, remote_url), f"extracted-{info['size']}-{info['version']}", folder)
    if archive.lower().endswith(".zip"):
        return extract_zip(archive, target)
    if os.path.isdir(target):
        return target
    os.makedirs(os.path.dirname(target), exist_ok=True)
    tmp = f"{target}.incomplete-{os.getpid()}-{time.monotonic_ns()}"
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")  # "data": no absolute paths, no '..', no devices
        os.rename(tmp, target)
    except OSError:
        if not os.path.isdir(target):  # else a concurrent extraction won: its copy is as good
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # a no-op once renamed
    return target


def _list_local(remote_url: str) -> builtins.list[tuple[str, str, int]]:
    path = normalize_uri(remote_url)
    base, prefix = (path, "") if os.path.isdir(path) else os.path.split(path)
    found = []
    for folder, _, names in os.walk(base):
        for file_name in names:
            full = os.path.join(folder, file_name)
            rel = os.path.relpath(full, base).replace(os.sep, "/")
            if rel.startswith(prefix):
                shown = "file://" + full if remote_url.startswith("file://") else full  # in the caller's spelling
                found.append((rel, shown, os.path.getsize(full)))
    return sorted(found)


def _list_remote(remote_url: str) -> builtins.list[tuple[str, str, int]]:
    fs, path = filesystem(remote_url)
    scheme = urlsplit(remote_url).scheme
    bucket = path.lstrip("/").split("/", 1)[0]  # memory:// paths start with "/", s3 ones with the bucket
    if fs.isdir(path):
        entries = fs.find(path, detail=True)
    else:  # a prefix: the files under its folder whose key starts with it
        entries = {k: v for k, v in fs.find(fs._parent(path), detail=True).items() if k.startswith(path)}
    found = []
    for key, info in entries.items():
        rel = key.lstrip("/")[len(bucket) + 1:]
        found.append((rel, f"{scheme}://{bucket}/{rel}", info.get("size")))
    return sorted(found)
