"""storage.objects: a staged snapshot published (renamed into a local store, or put into a remote one and
kept as this host's cached copy) and fetched back (the stored file in place, else a verified download,
cached under its digest). Real files and fsspec's memory:// store; digests recomputed from the bytes."""
from __future__ import annotations

import hashlib
import os

import pytest

from autolog.errors import IntegrityError
from autolog.storage import BlobStore, blobstore, collect_sources, objects
from autolog.storage.hashing import SHA256
from autolog.storage.sources import Sources, open_sources

from test_staging import FILES, bytes_digest, folder_digest, write_folder

WEIGHTS = FILES["weights/part-0.bin"]


def never_stored(digest: str) -> None:
    return None


@pytest.fixture
def remote(memory_uri) -> BlobStore:
    return BlobStore(f"{memory_uri}/models")


@pytest.fixture
def folder(tmp_path):
    return write_folder(tmp_path / "saved_model")


@pytest.fixture
def cache(tmp_path) -> str:
    return str(tmp_path / "cache")


@pytest.fixture
def ckpt(tmp_path):
    path = tmp_path / "ckpt.pt"
    path.write_bytes(WEIGHTS)
    return path


def staged(path, staging) -> tuple[Sources, objects.Content]:
    sources = collect_sources(path)
    return sources, objects.stage(open_sources(sources), str(staging))


def cached_entries(cache: str) -> list[str]:
    root = os.path.join(cache, "objects")
    return sorted(os.path.relpath(os.path.join(d, n), root) for d, _, names in os.walk(root) for n in names)


def counting_downloads(monkeypatch) -> list[str]:
    calls: list[str] = []
    real = blobstore.download

    def download(uri: str, local: str) -> None:
        calls.append(uri)
        real(uri, local)

    monkeypatch.setattr(objects, "download", download)
    return calls


def counting_hashes(monkeypatch) -> list[tuple[str, ...]]:
    """The algorithms of each read that hashes a file."""
    calls: list[tuple[str, ...]] = []
    real = objects.file_digests

    def file_digests(path: str, algorithms: tuple[str, ...]) -> list[str]:
        calls.append(algorithms)
        return real(path, algorithms)

    monkeypatch.setattr(objects, "file_digests", file_digests)
    return calls


ALTERED = b"not the weights that were saved"


def alter(uri: str) -> None:
    fs, path = blobstore.filesystem(uri)
    fs.pipe_file(path, ALTERED)


# -- publishing ------------------------------------------------------------------------------------

def test_a_local_store_gets_the_staged_copy_by_rename_and_the_staging_folder_is_gone(ckpt, tmp_path, cache):
    store = BlobStore(str(tmp_path / "store"))
    sources, content = staged(ckpt, tmp_path / "staging")

    published = objects.publish_staged(str(tmp_path / "staging"), sources, content, store, "m/1", cache,
                                       find_copy=never_stored)

    assert published == objects.Published(uri=store.url("m/1") + "/ckpt.pt", entry="", content=content,
                                          deduplicated=False)
    assert (tmp_path / "store" / "m" / "1" / "ckpt.pt").read_bytes() == WEIGHTS
    assert not (tmp_path / "staging").exists()
    assert cached_entries(cache) == []  # the stored file itself is what a fetch hands back
    sources, content = staged(ckpt, tmp_path / "staging")  # the model's next snapshot: its folder exists
    objects.publish_staged(str(tmp_path / "staging"), sources, content, store, "m/2", cache, find_copy=never_stored)
    assert (tmp_path / "store" / "m" / "2" / "ckpt.pt").read_bytes() == WEIGHTS


def test_a_stored_copy_of_the_same_bytes_is_reused_and_the_staged_copy_dropped(ckpt, tmp_path, cache, remote):
    for store in (BlobStore(str(tmp_path / "store")), remote):
        sources, content = staged(ckpt, tmp_path / "staging")
        asked = []

        def find_copy(digest: str) -> tuple[str, str]:
            asked.append(digest)
            return ("s3://elsewhere/m/0/ckpt.pt", "inner")

        published = objects.publish_staged(str(tmp_path / "staging"), sources, content, store, "m/1", cache,
                                           find_copy=find_copy)

        assert asked == [bytes_digest(WEIGHTS)]
        assert published == objects.Published(uri="s3://elsewhere/m/0/ckpt.pt", entry="inner", content=content,
                                              deduplicated=True)
        assert not (tmp_path / "staging").exists()
    assert not (tmp_path / "store").exists() and cached_entries(cache) == []


def test_a_remote_store_gets_each_file_put_and_the_staged_copy_becomes_the_cached_copy(folder, tmp_path, cache,
                                                                                      remote, monkeypatch):
    sources, content = staged(folder, tmp_path / "staging")
    put = []

    def put_file(local: str, key: str) -> None:
        put.append(key)
        remote.put_file(local, key)

    published = objects.publish_staged(str(tmp_path / "staging"), sources, content, remote, "m/1", cache,
                                       find_copy=never_stored, put_file=put_file)

    assert sorted(put) == sorted(f"m/1/saved_model/{name}" for name in FILES)
    assert published == objects.Published(uri=remote.url("m/1") + "/saved_model", entry="", content=content,
                                          deduplicated=False)
    name = content.digest.replace(":", "-")
    assert cached_entries(cache) == sorted(f"{name}/saved_model/{n}" for n in FILES)
    assert not (tmp_path / "staging").exists()
    # A fetch on this host finds that cached copy: nothing is downloaded.
    downloads = counting_downloads(monkeypatch)
    local = objects.fetch(published.uri, "", content.digest, content.manifest, cache)
    assert downloads == []
    assert local == os.path.join(cache, "objects", name, "saved_model")
    assert {n: open(os.path.join(local, n), "rb").read() for n in FILES} == FILES


def test_a_failed_upload_keeps_the_staged_copy_for_sync_a_failed_local_publish_does_not(ckpt, tmp_path, cache,
                                                                                       remote):
    sources, content = staged(ckpt, tmp_path / "staging")

    def unreachable(local: str, key: str) -> None:
        raise OSError("the bucket is unreachable")

    with pytest.raises(OSError, match="unreachable"):
        objects.publish_staged(str(tmp_path / "staging"), sources, content, remote, "m/1", cache,
                               find_copy=never_stored, put_file=unreachable)
    assert (tmp_path / "staging" / "ckpt.pt").read_bytes() == WEIGHTS  # `autolog sync` publishes it later

    (tmp_path / "store").write_text("a file where the store's folder should be")
    with pytest.raises(OSError):
        objects.publish_staged(str(tmp_path / "staging"), sources, content, BlobStore(str(tmp_path / "store")),
                               "m/1", cache, find_copy=never_stored)
    assert not (tmp_path / "staging").exists()  # nothing resumes a local publish from it


def test_publishing_in_the_calling_thread_stages_then_publishes(ckpt, tmp_path, cache):
    store = BlobStore(str(tmp_path / "store"))
    published = objects.publish(collect_sources(ckpt), store, "a/1", cache, find_copy=never_stored)
    assert published.content.digest == bytes_digest(WEIGHTS)
    assert open(published.uri, "rb").read() == WEIGHTS
    assert os.listdir(tmp_path / "store" / ".autolog-staging") == []  # its staged copy became the stored one


def test_a_snapshot_held_in_memory_is_written_at_its_key(ckpt, tmp_path, remote):
    content = objects.Content(digest=bytes_digest(WEIGHTS), size=len(WEIGHTS))
    for store in (BlobStore(str(tmp_path / "store")), remote):
        published = objects.publish_bytes(WEIGHTS, collect_sources(ckpt), content, store, "m/1")
        assert published == objects.Published(uri=store.url("m/1") + "/ckpt.pt", entry="", content=content,
                                              deduplicated=False)
        with blobstore.open_for_read(published.uri) as f:
            assert f.read() == WEIGHTS
    nameless = Sources(files=((str(ckpt), "ckpt.pt"),), name="", single=True)  # the key is the object itself
    for store in (BlobStore(str(tmp_path / "store")), remote):
        published = objects.publish_bytes(WEIGHTS, nameless, content, store, "m/2")
        assert published.uri == store.url("m/2") == objects.snapshot_uri(store, "m/2", nameless)
        with blobstore.open_for_read(store.url("m/2")) as f:
            assert f.read() == WEIGHTS


def test_publishing_to_a_remote_store_stages_in_the_cache_and_hashes_as_asked(folder, cache, remote):
    published = objects.publish(collect_sources(folder), remote, "m/1", cache, find_copy=never_stored,
                                algorithm=SHA256)
    assert published.uri == remote.url("m/1") + "/saved_model"
    assert published.content.digest.startswith("sha256:")
    assert sorted(os.listdir(cache)) == ["objects", "staging"] and os.listdir(os.path.join(cache, "staging")) == []
    assert cached_entries(cache) == sorted(f"{published.content.digest.replace(':', '-')}/saved_model/{n}"
                                           for n in FILES)


def test_a_staging_that_fails_leaves_nothing_staged(ckpt, cache, remote, monkeypatch):
    def copy_out_then_fail(opened, staging, on_progress=None):
        os.makedirs(staging)
        open(os.path.join(staging, "ckpt.pt"), "wb").close()
        raise OSError("no space left on device")

    monkeypatch.setattr(objects, "copy_out", copy_out_then_fail)
    with pytest.raises(OSError, match="no space"):
        objects.publish(collect_sources(ckpt), remote, "m/1", cache, find_copy=never_stored)
    assert os.listdir(os.path.join(cache, "staging")) == []


def test_a_remote_objects_content_is_read_in_chunks_a_remote_folder_refused(folder, ckpt, remote):
    uri = remote.put_file(str(ckpt), "m/1/ckpt.pt")
    progress = []
    assert objects.object_content(uri, progress.append) == objects.Content(digest=bytes_digest(WEIGHTS),
                                                                           size=len(WEIGHTS))
    assert sum(progress) == len(WEIGHTS)
    assert objects.object_content(str(ckpt)) == objects.Content(digest=bytes_digest(WEIGHTS), size=len(WEIGHTS))
    remote.put_file(str(folder / "config.json"), "m/2/saved_model/config.json")
    with pytest.raises(IsADirectoryError, match="^" + remote.url("m/2/saved_model") + " is a folder"):
        objects.object_content(remote.url("m/2/saved_model"))


def test_the_copied_marker_sits_beside_the_staging_folder():
    assert objects.copied_marker("/cache/staging/abc/") == "/cache/staging/abc.copied"
    assert objects.copied_marker("/cache/staging/abc") == "/cache/staging/abc.copied"


# -- the cache -------------------------------------------------------------------------------------

def test_a_cache_entry_is_named_by_its_digest_else_by_a_fresh_name():
    assert objects._cache_name("blake3:ab12") == "blake3-ab12"
    first, second = objects._cache_name(None), objects._cache_name(None)
    assert first != second and len(first) == 32 and int(first, 16) >= 0

def test_moving_into_the_cache_keeps_an_entry_already_there(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    first.write_bytes(b"first")
    second.write_bytes(b"second")
    target = tmp_path / "cache" / "objects" / "blake3-ab" / "ckpt.pt"

    objects._move_into_cache(str(first), str(target))  # its folder is made
    objects._move_into_cache(str(second), str(target))  # another process cached the same content first

    assert target.read_bytes() == b"first" and second.exists() and not first.exists()


def test_moving_into_the_cache_raises_when_the_move_fails_and_no_entry_appeared(tmp_path):
    with pytest.raises(OSError):
        objects._move_into_cache(str(tmp_path / "not-there"), str(tmp_path / "cache" / "ckpt.pt"))


def test_a_discarded_cache_entry_is_gone_a_file_a_folder_or_a_link_without_what_it_points_to(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the cache is not found relative to the working folder
    objects_dir = tmp_path / "cache" / "objects"
    entry = objects_dir / "blake3-ab" / "ckpt.pt"
    entry.parent.mkdir(parents=True)
    entry.write_bytes(b"x")
    folder_entry = objects_dir / "blake3-cd" / "saved_model"
    (folder_entry / "weights").mkdir(parents=True)
    (folder_entry / "weights" / "part-0.bin").write_bytes(b"y")
    outside = tmp_path / "kept"
    (outside / "inner").mkdir(parents=True)
    link = objects_dir / "blake3-ef" / "linked"
    link.parent.mkdir()
    link.symlink_to(outside, target_is_directory=True)

    for path in (entry, folder_entry, link):
        objects.discard_cached(str(path), str(tmp_path / "cache"))
        assert not os.path.lexists(path)
    objects.discard_cached(str(entry), str(tmp_path / "cache"))  # already gone: nothing to do

    assert (outside / "inner").is_dir()
    assert sorted(os.listdir(objects_dir)) == ["blake3-ab", "blake3-cd", "blake3-ef"]  # nothing left beside them


# -- fetching --------------------------------------------------------------------------------------

def test_a_local_snapshot_is_fetched_in_place_and_a_missing_one_is_named(tmp_path, cache):
    stored = tmp_path / "store" / "m" / "1" / "ckpt-3"
    stored.mkdir(parents=True)
    (stored / "model.index").write_bytes(b"index")

    assert objects.fetch(str(stored), "", None, [], cache) == str(stored)
    assert objects.fetch(str(stored), "model.index", None, [], cache) == str(stored / "model.index")
    assert cached_entries(cache) == []
    with pytest.raises(FileNotFoundError, match=f"{tmp_path / 'store' / 'm' / '2'}.*missing"):
        objects.fetch(str(tmp_path / "store" / "m" / "2"), "", None, [], cache)


def test_a_remote_snapshot_is_downloaded_once_checked_and_kept_under_its_digest(ckpt, tmp_path, cache, remote,
                                                                              monkeypatch):
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")  # nothing is written relative to the working folder
    uri = remote.put_file(str(ckpt), "m/1/ckpt.pt")
    digest = bytes_digest(WEIGHTS)
    downloads = counting_downloads(monkeypatch)
    hashed = counting_hashes(monkeypatch)

    local = objects.fetch(uri, "", digest, [], cache)
    again = objects.fetch(uri, "", digest, [], cache)

    assert local == again == os.path.join(cache, "objects", digest.replace(":", "-"), "ckpt.pt")
    assert open(local, "rb").read() == WEIGHTS
    assert downloads == [uri]
    assert hashed == [("blake3",)]  # checked once, and no sha256 (slow where the CPU lacks SHA instructions)
    assert os.listdir(tmp_path / "cwd") == []
    assert cached_entries(cache) == [f"{digest.replace(':', '-')}/ckpt.pt"]  # no partial download left


def test_a_download_that_does_not_match_its_digest_is_refused_and_not_cached(ckpt, cache, remote):
    uri = remote.put_file(str(ckpt), "m/1/ckpt.pt")
    alter(uri)
    with pytest.raises(IntegrityError) as refused:
        objects.fetch(uri, "", bytes_digest(WEIGHTS), [], cache)
    found, recorded = (bytes_digest(data).split(":")[1][:12] for data in (ALTERED, WEIGHTS))
    assert str(refused.value) == (
        f"Content of {uri} does not match its recorded blake3 ({found} != {recorded}): the stored copy was "
        "altered or corrupted. Do not use it; re-upload from the source.")
    assert cached_entries(cache) == []


def test_verify_reads_a_sha256_only_when_asked(ckpt):
    assert objects.verify(str(ckpt), bytes_digest(WEIGHTS), [], "ckpt") is None
    assert objects.verify(str(ckpt), bytes_digest(WEIGHTS), [], "ckpt", with_sha256=True) == (
        hashlib.sha256(WEIGHTS).hexdigest())


def test_force_download_replaces_the_cached_copy_with_what_the_store_holds_now(ckpt, cache, remote, monkeypatch):
    uri = remote.put_file(str(ckpt), "m/1/ckpt.pt")
    digest = bytes_digest(WEIGHTS)
    objects.fetch(uri, "", digest, [], cache)
    downloads = counting_downloads(monkeypatch)

    objects.fetch(uri, "", digest, [], cache, force_download=True)
    assert downloads == [uri]
    alter(uri)  # the stored copy is now corrupt: the cached one is still used until asked for a new one
    assert open(objects.fetch(uri, "", digest, [], cache), "rb").read() == WEIGHTS
    with pytest.raises(IntegrityError):
        objects.fetch(uri, "", digest, [], cache, force_download=True)
    assert cached_entries(cache) == []


def test_a_remote_folder_is_downloaded_file_by_file_and_its_entry_handed_back(folder, tmp_path, cache, remote):
    sources, content = staged(folder, tmp_path / "staging")
    for name in FILES:
        remote.put_file(str(folder / name), f"m/1/saved_model/{name}")
    uri = remote.url("m/1/saved_model")

    local = objects.fetch(uri, "weights/part-0.bin", content.digest, content.manifest, cache)

    assert local == os.path.join(cache, "objects", content.digest.replace(":", "-"), "saved_model",
                                 "weights", "part-0.bin")
    assert open(local, "rb").read() == WEIGHTS
    root = os.path.dirname(os.path.dirname(local))
    assert {n: open(os.path.join(root, n), "rb").read() for n in FILES} == FILES


def test_fetch_sha256_hands_back_the_path_and_the_sha256_sha256sum_prints(ckpt, folder, tmp_path, cache, remote,
                                                                         monkeypatch):
    digest = bytes_digest(WEIGHTS)
    sha = hashlib.sha256(WEIGHTS).hexdigest()
    stored = tmp_path / "store" / "m" / "1"
    stored.mkdir(parents=True)
    (stored / "ckpt.pt").write_bytes(WEIGHTS)
    uri = remote.put_file(str(ckpt), "m/1/ckpt.pt")

    assert objects.fetch_sha256(str(stored / "ckpt.pt"), "", digest, [], cache) == (str(stored / "ckpt.pt"), sha)
    _, content = staged(folder, tmp_path / "staging")  # a folder: its entry, and the sha256 of its manifest
    manifest_sha = folder_digest(FILES, SHA256).split(":")[1]
    assert objects.fetch_sha256(str(folder), "config.json", content.digest, content.manifest, cache) == (
        str(folder / "config.json"), manifest_sha)
    cached = os.path.join(cache, "objects", digest.replace(":", "-"), "ckpt.pt")
    downloads = counting_downloads(monkeypatch)
    hashed = counting_hashes(monkeypatch)
    assert objects.fetch_sha256(uri, "", digest, [], cache) == (cached, sha)  # downloaded
    assert hashed == [("blake3", "sha256")]  # the download is read once for both
    assert objects.fetch_sha256(uri, "", digest, [], cache) == (cached, sha)  # from the cached copy
    assert downloads == [uri]
    for name in FILES:  # a remote folder: each file downloaded, the sha256 of its manifest
        remote.put_file(str(folder / name), f"m/2/saved_model/{name}")
    assert objects.fetch_sha256(remote.url("m/2/saved_model"), "config.json", content.digest, content.manifest,
                                cache)[1] == manifest_sha
    (stored / "ckpt.pt").write_bytes(b"altered in place")
    with pytest.raises(IntegrityError, match=str(stored / "ckpt.pt")):
        objects.fetch_sha256(str(stored / "ckpt.pt"), "", digest, [], cache)
