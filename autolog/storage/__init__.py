"""Bytes: fsspec-backed blob stores, content hashing, snapshot staging/publishing, local cache."""
from .blobstore import BlobStore, download, is_local, normalize_uri
from .hashing import file_digest, sha256_file
from .objects import Content, Published, fetch, hash_sources, publish
from .sources import Sources, collect_file_list, collect_sources

__all__ = [
    "BlobStore", "Content", "Published", "Sources", "collect_file_list", "collect_sources", "download",
    "fetch", "file_digest", "hash_sources", "is_local", "normalize_uri", "publish", "sha256_file",
]
