"""A local cache of objects fetched by URL (StorageManager.get_local_copy), and what a URL points at.

    <cache_dir>/urls/<context>/<sha256 of the URL, 32 hex digits>/<object name>
    <cache_dir>/urls/<context>/<sha256 of the URL, 32 hex digits>/.source.json

An entry's `.source.json` says what the source looked like when it was fetched (its size, and the
ETag, modification time or creation time its store reports). A later request answers from the cache
only while the source still looks the same, so an object replaced at the same URL is fetched again
(ClearML's cache keeps answering with the old copy until force_download). Each download goes to a
temp file renamed into place, and is checked to hold as many bytes as the store said.
"""
from __future__ import annotations

import hashlib
import json
import os
import uuid
from urllib.parse import urlsplit

from ..config import redact_url
from ..errors import StorageError
from .blobstore import download, filesystem, is_local, normalize_uri, remove_quietly

__all__ = ["cached_copy", "source_info", "url_entry"]

SOURCE_FILE = ".source.json"
# What a store reports that changes when an object is replaced (the first one present is used).
_VERSION_KEYS = ("ETag", "etag", "md5Hash", "generation", "mtime", "LastModified", "last_modified", "created")


def url_entry(cache_root: str, url: str) -> str:
    """The cache folder of url (the URL as given: two spellings are two entries)."""
    return os.path.join(cache_root, hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()[:32])


def source_info(url: str) -> dict:
    """{"size", "version"} of the file at url; FileNotFoundError if there is none, IsADirectoryError for a
    folder."""
    if is_local(url):
        path = normalize_uri(url)
        stat = os.stat(path)  # FileNotFoundError names the path
        if os.path.isdir(path):
            raise IsADirectoryError(f"{path} is a folder, not a file.")
        return {"size": stat.st_size, "version": str(stat.st_mtime_ns)}
    fs, path = filesystem(url)
    info = fs.info(path)  # FileNotFoundError for a missing object
    if info.get("type") == "directory":
        raise IsADirectoryError(f"{redact_url(url)} is a folder, not a file.")
    version = next((info[k] for k in _VERSION_KEYS if info.get(k) is not None), None)
    return {"size": info.get("size"), "version": str(version) if version is not None else None}


def cached_copy(url: str, cache_root: str, force_download: bool = False) -> str:
    """A local copy of the remote file at url: the cached one while the source is unchanged, else a
    fresh download. Raises FileNotFoundError / StorageError when there is nothing to fetch."""
    entry = url_entry(cache_root, url)
    name = os.path.basename(urlsplit(url).path.rstrip("/")) or "object"
    local = os.path.join(entry, name)
    info = source_info(url)
    if not force_download and info["version"] is not None and os.path.isfile(local) and _recorded(entry) == info:
        return local
    download(url, local)
    got = os.path.getsize(local)
    if info["size"] is not None and got != info["size"]:
        remove_quietly(local)
        raise StorageError(f"Downloading {redact_url(url)} gave {got} bytes where the store reports "
                           f"{info['size']}: it changed while being read, or the transfer was cut. Try again.")
    _record(entry, info)
    return local


def _recorded(entry: str) -> dict | None:
    try:
        with open(os.path.join(entry, SOURCE_FILE), encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None  # never fetched, or written by an older layout: fetch again


def _record(entry: str, info: dict) -> None:
    target = os.path.join(entry, SOURCE_FILE)
    tmp = f"{target}.incomplete-{uuid.uuid4().hex}"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(info, f)
        os.replace(tmp, target)
    finally:
        remove_quietly(tmp)
