"""Bytes: fsspec-backed blob stores, content hashing, snapshot staging/publishing, local cache."""
from .blobstore import BlobStore, download, is_local, normalize_uri
from .hashing import file_digest, sha256_file
from .objects import Content, Published, fetch, fetch_sha256, hash_sources, publish, verify
from .sources import Sources, collect_file_list, collect_sources

__all__ = [
    "BlobStore", "Content", "Published", "Sources", "collect_file_list", "collect_sources", "download",
    "fetch", "fetch_sha256", "file_digest", "hash_sources", "is_local", "normalize_uri", "publish", "sha256_file",
    "verify",
]
