"""storage.objects: a snapshot's files staged (copied out, then hashed), hashed in place (output_uri=None,
loads) and a small one read into memory, each checked against a change made while it was read. Real files; the digests are recomputed here from
the bytes, not taken from the code under test."""
from __future__ import annotations

import hashlib
import os
import re

import pytest
from blake3 import blake3

from autolog.storage import collect_sources, objects
from autolog.storage.hashing import SHA256
from autolog.storage.sources import SourceChangedError, open_sources

def _hasher(algorithm: str):
    return blake3() if algorithm == "blake3" else hashlib.sha256()


def bytes_digest(data: bytes, algorithm: str = "blake3") -> str:
    hasher = _hasher(algorithm)
    hasher.update(data)
    return f"{algorithm}:{hasher.hexdigest()}"


def folder_digest(files: dict[str, bytes], algorithm: str = "blake3") -> str:
    """A folder's identity as rows hold it (a format: old rows must keep matching): a digest over the
    sorted "name NUL file-digest NL" lines, a sha256 manifest naming each file by its plain hex."""
    hasher = _hasher(algorithm)
    for name in sorted(files):
        digest = bytes_digest(files[name], algorithm)
        hasher.update(f"{name}\0{digest if algorithm == 'blake3' else digest.split(':')[1]}\n".encode())
    return f"{algorithm}:{hasher.hexdigest()}"


FILES = {"config.json": b'{"layers": 2}', "weights/part-0.bin": os.urandom(300_000),
         "weights/part-1.bin": b"\0" * 70_000}


def write_folder(root):
    """FILES written under root (a saved folder)."""
    for name, data in FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


@pytest.fixture
def folder(tmp_path):
    return write_folder(tmp_path / "saved_model")


def _stage(path, staging, **options):
    return objects.stage(open_sources(collect_sources(path)), str(staging), **options)


def test_a_file_is_staged_under_its_name_and_is_its_own_digest(tmp_path):
    path = tmp_path / "ckpt.pt"
    path.write_bytes(FILES["weights/part-0.bin"])
    content = _stage(path, tmp_path / "staging")

    assert (tmp_path / "staging" / "ckpt.pt").read_bytes() == FILES["weights/part-0.bin"]
    assert os.listdir(tmp_path / "staging") == ["ckpt.pt"]
    assert content == objects.Content(digest=bytes_digest(FILES["weights/part-0.bin"]), size=300_000, manifest=[])


def test_a_folder_is_staged_under_its_name_with_a_manifest_of_every_file(folder, tmp_path):
    content = _stage(folder, tmp_path / "staging")

    for name, data in FILES.items():
        assert (tmp_path / "staging" / "saved_model" / name).read_bytes() == data
    manifest = sorted(content.manifest, key=lambda e: e["name"])
    assert manifest == [{"name": name, "size": len(data), "digest": bytes_digest(data)}
                        for name, data in sorted(FILES.items())]
    assert content.size == sum(len(data) for data in FILES.values())
    assert content.digest == folder_digest(FILES)


def test_a_folder_hashed_with_sha256_is_a_sha256_manifest(folder, tmp_path):
    """What `autolog model sha256` answers for a folder snapshot: the same manifest, of plain sha256s."""
    content = _stage(folder, tmp_path / "staging", algorithm=SHA256)
    assert {e["name"]: e["digest"] for e in content.manifest} == {
        name: bytes_digest(data, SHA256) for name, data in FILES.items()}
    assert content.digest == folder_digest(FILES, SHA256)


def test_staging_reports_its_progress_as_the_copy_and_the_hash_move(folder, tmp_path):
    """Each step moves the heartbeat that tells a slow copy of a large snapshot from a stalled one."""
    progress: list[int] = []
    _stage(folder, tmp_path / "staging", on_progress=progress.append)
    assert sum(progress) == 2 * sum(len(data) for data in FILES.values())  # copied, then hashed


def test_two_folders_differing_in_one_file_differ_and_equal_ones_do_not(folder, tmp_path):
    first = _stage(folder, tmp_path / "a").digest
    assert _stage(folder, tmp_path / "b").digest == first
    (folder / "weights" / "part-1.bin").write_bytes(b"\1" * 70_000)
    assert _stage(folder, tmp_path / "c").digest != first


@pytest.mark.parametrize("change", ["grown", "rewritten in place"])
def test_a_file_changed_while_it_is_copied_is_refused(tmp_path, monkeypatch, change):
    path = tmp_path / "ckpt.pt"
    path.write_bytes(b"a" * 100_000)
    opened = open_sources(collect_sources(path))
    real_copy = objects.kernel_copy

    def copy_then_change(src_fd, dst_fd, size, on_progress=None, followed=None, handoff=None):
        copied = real_copy(src_fd, dst_fd, size, on_progress, followed, handoff)
        with open(path, "ab" if change == "grown" else "r+b") as f:
            f.write(b"b")
        if change != "grown":  # same size: only the mtime tells
            os.utime(path, ns=(opened.handles[0][1].st_atime_ns, opened.handles[0][1].st_mtime_ns + 1_000_000))
        return copied

    monkeypatch.setattr(objects, "kernel_copy", copy_then_change)
    with pytest.raises(SourceChangedError) as refused:
        objects.copy_out(opened, str(tmp_path / "staging"))
    opened.close()
    assert str(refused.value) == (
        f"{path} changed while autolog was reading it (modified in place by a write autolog does not capture); "
        "this snapshot was not stored, to avoid storing a mix of old and new bytes.")


def test_a_copy_that_came_out_short_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.pt"
    path.write_bytes(b"a" * 100_000)
    opened = open_sources(collect_sources(path))
    monkeypatch.setattr(objects, "kernel_copy", lambda src_fd, dst_fd, size, *_: size - 1)
    with pytest.raises(SourceChangedError):
        objects.copy_out(opened, str(tmp_path / "staging"))
    opened.close()


def test_a_small_file_is_read_whole_with_its_digest(tmp_path):
    path = tmp_path / "small.pt"
    path.write_bytes(b"small weights")
    opened = open_sources(collect_sources(path))
    os.lseek(opened.handles[0][0], 5, os.SEEK_SET)  # the handle's position does not matter
    data, content = objects.read_small(opened)
    opened.close()
    assert data == b"small weights"
    assert content == objects.Content(digest=bytes_digest(b"small weights"), size=13)


@pytest.mark.parametrize("change", ["grown", "rewritten in place"])
def test_a_small_file_changed_since_it_was_opened_is_refused(tmp_path, change):
    path = tmp_path / "small.pt"
    path.write_bytes(b"small weights")
    opened = open_sources(collect_sources(path))
    before = opened.handles[0][1]
    if change == "grown":
        with open(path, "ab") as f:
            f.write(b"+")  # read one byte past the size it had: caught even at the same mtime
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    else:
        path.write_bytes(b"SMALL WEIGHTS")
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000))
    with pytest.raises(SourceChangedError, match="^" + re.escape(f"{path} changed while autolog was reading it")):
        objects.read_small(opened)
    opened.close()


def test_hashing_in_place_gives_what_staging_gives_and_copies_nothing(folder, tmp_path):
    path = tmp_path / "ckpt.pt"
    path.write_bytes(FILES["weights/part-0.bin"])
    before = set(os.listdir(tmp_path))

    assert objects.hash_sources(collect_sources(path)) == objects.Content(
        digest=bytes_digest(FILES["weights/part-0.bin"]), size=300_000, manifest=[])
    content = objects.hash_sources(collect_sources(folder))
    assert content == _stage(folder, tmp_path / "staging")
    assert content.digest == folder_digest(FILES)
    sha = objects.hash_sources(collect_sources(folder), algorithm=SHA256)
    assert sha.digest == folder_digest(FILES, SHA256)
    assert sha == _stage(folder, tmp_path / "staging-sha256", algorithm=SHA256)
    assert set(os.listdir(tmp_path)) == before | {"staging", "staging-sha256"}  # only what _stage made


def test_a_file_changed_while_it_is_hashed_in_place_is_refused_and_its_handles_closed(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.pt"
    path.write_bytes(b"a" * 100_000)
    real_digest = objects.fd_digest
    opened_fds = []

    def digest_then_grow(fd, algorithm):
        opened_fds.append(fd)
        digest = real_digest(fd, algorithm)
        with open(path, "ab") as f:
            f.write(b"b")
        return digest

    monkeypatch.setattr(objects, "fd_digest", digest_then_grow)
    with pytest.raises(SourceChangedError, match="^" + re.escape(f"{path} changed while autolog was reading it")):
        objects.hash_sources(collect_sources(path))
    with pytest.raises(OSError):
        os.fstat(opened_fds[0])  # closed, though hashing failed
