"""storage.objects.kernel_copy: copy_file_range first (a reflink where the filesystem shares extents),
then sendfile, then positional reads; each way that fails or stops short hands over from where it stopped."""
from __future__ import annotations

import errno
import os

import pytest

from autolog.storage import objects

DATA = os.urandom(3 * (1 << 20) + 12345)


def _copy(tmp_path, content: bytes = DATA, size: int = len(DATA), position: int = 0,
          followed=None) -> tuple[bytes, int, list[int]]:
    """kernel_copy of `size` bytes from a file holding `content`, its handle at `position`."""
    src, dst = tmp_path / "src.bin", tmp_path / "dst.bin"
    src.write_bytes(content)
    progress: list[int] = []
    src_fd = os.open(src, os.O_RDONLY)
    try:
        os.lseek(src_fd, position, os.SEEK_SET)
        with open(dst, "wb") as out:
            copied = objects.kernel_copy(src_fd, out.fileno(), size, progress.append, followed)
    finally:
        os.close(src_fd)
    return dst.read_bytes(), copied, progress


def _failing(name: str, after_bytes: int | None = None):
    """A copy call that raises EXDEV (at once, or once after_bytes were copied by the real call)."""
    real = getattr(os, name)
    moved = [0]

    def call(*args):
        if after_bytes is None or moved[0] >= after_bytes:
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        count = min(args[2] if name == "copy_file_range" else args[3], after_bytes - moved[0])
        n = real(*args[:2], count, *args[3:]) if name == "copy_file_range" else real(*args[:3], count)
        moved[0] += n
        return n

    return call


def test_copy_file_range_copies_it_all(tmp_path, monkeypatch):
    """Every byte through copy_file_range (what XFS and btrfs answer with shared extents), none left to
    the ways after it."""
    copied_by_it = []
    real = os.copy_file_range
    monkeypatch.setattr(os, "copy_file_range", lambda *a: copied_by_it.append(real(*a)) or copied_by_it[-1])
    monkeypatch.setattr(os, "sendfile", _failing("sendfile"))
    data, copied, progress = _copy(tmp_path)
    assert data == DATA and copied == len(DATA) == sum(progress)
    assert sum(copied_by_it) == len(DATA)


WAYS = {"copy_file_range": (), "sendfile": ("copy_file_range",), "positional reads": ("copy_file_range", "sendfile")}


@pytest.mark.parametrize("way", WAYS)
def test_each_way_copies_size_bytes_from_the_start_whatever_the_handles_position(tmp_path, monkeypatch, way):
    """The snapshot is the file's first `size` bytes (its size when its handle was opened), in steps,
    also when the handle was read from meanwhile or the file has grown since."""
    for name in WAYS[way]:
        monkeypatch.setattr(os, name, _failing(name))
    monkeypatch.setattr(objects, "_COPY_STEP", 1 << 20)
    data, copied, progress = _copy(tmp_path, content=DATA + b"grown since", position=1000)
    assert data == DATA and copied == len(DATA) == sum(progress)


@pytest.mark.parametrize("fails", ["copy_file_range at once", "copy_file_range midway", "both"])
def test_a_failing_way_hands_over_from_where_it_stopped(tmp_path, monkeypatch, fails):
    monkeypatch.setattr(os, "copy_file_range", _failing("copy_file_range", 1 << 20 if "midway" in fails else None))
    if fails == "both":
        monkeypatch.setattr(os, "sendfile", _failing("sendfile"))
    data, copied, progress = _copy(tmp_path)
    assert data == DATA and copied == len(DATA) == sum(progress)


def test_a_way_that_stops_short_hands_over_too(tmp_path, monkeypatch):
    """Some filesystems answer copy_file_range with 0 bytes before the end: sendfile finishes the copy."""
    monkeypatch.setattr(os, "copy_file_range", lambda *a: 0)
    data, copied, _ = _copy(tmp_path)
    assert data == DATA and copied == len(DATA)


@pytest.mark.parametrize("way", WAYS)
def test_a_file_shorter_than_size_is_copied_as_far_as_it_goes_and_says_so(tmp_path, monkeypatch, way):
    """Truncated after its handle was opened: the bytes copied are returned (the caller then refuses
    the snapshot: fewer bytes than the save wrote)."""
    for name in WAYS[way]:
        monkeypatch.setattr(os, name, _failing(name))
    data, copied, _ = _copy(tmp_path, content=DATA[:5000])
    assert copied == 5000 and data == DATA[:5000]


def _spied(monkeypatch) -> dict[str, int]:
    """Bytes each way copied (the real calls, counted)."""
    moved = {"copy_file_range": 0, "sendfile": 0}
    for name in moved:
        real = getattr(os, name)

        def call(*args, name=name, real=real):
            n = real(*args)
            moved[name] += n
            return n

        monkeypatch.setattr(os, name, call)
    return moved


@pytest.mark.parametrize("fstype, first", [("xfs", "sendfile"), ("ext4", "copy_file_range"),
                                           ("btrfs", "copy_file_range"), ("nfs4", "copy_file_range"),
                                           (None, "copy_file_range")])
def test_the_way_tried_first_depends_on_the_target_filesystem(tmp_path, monkeypatch, fstype, first):
    """On XFS a real copy goes first (copy_file_range would clone a file just saved: its dirty pages
    written to disk first, then the hash reads the clone from disk); elsewhere copy_file_range (NFS's
    server-side copy, btrfs's shared extents)."""
    devices = []
    monkeypatch.setattr(objects, "filesystem_type", lambda device: devices.append(device) or fstype)
    moved = _spied(monkeypatch)
    data, copied, _ = _copy(tmp_path)
    assert data == DATA and copied == len(DATA)
    assert moved == {name: len(DATA) if name == first else 0 for name in moved}
    assert devices == [os.stat(tmp_path).st_dev]  # the target's filesystem, looked up once per copy


def test_on_xfs_a_failing_sendfile_hands_over_to_copy_file_range(tmp_path, monkeypatch):
    monkeypatch.setattr(objects, "filesystem_type", lambda device: "xfs")
    moved = _spied(monkeypatch)
    monkeypatch.setattr(os, "sendfile", _failing("sendfile", 1 << 20))  # its first MiB, then EXDEV
    data, copied, progress = _copy(tmp_path)
    assert data == DATA and copied == len(DATA) == sum(progress)
    assert moved == {"sendfile": 1 << 20, "copy_file_range": len(DATA) - (1 << 20)}


@pytest.mark.parametrize("way", ["copy_file_range", "sendfile"])
def test_the_copy_goes_in_large_steps_and_in_the_hashs_steps_once_a_hash_follows_it(tmp_path, monkeypatch, way):
    """Each step must take the GIL back before the next (bench/experiments/gil_convoy.py): large ones
    while nothing reads behind the copy, the hash's once a hash does, from the next step on."""
    for name in WAYS[way]:
        monkeypatch.setattr(os, name, _failing(name))
    monkeypatch.setattr(objects, "_COPY_STEP", 1 << 20)
    monkeypatch.setattr(objects, "_FOLLOWED_COPY_STEP", 256 << 10)
    steps: list[int] = []

    def followed() -> bool:
        return len(steps) >= 2  # a hash starts following after two steps

    def progress(count: int) -> None:
        steps.append(count)

    src, dst = tmp_path / "src.bin", tmp_path / "dst.bin"
    src.write_bytes(DATA)
    with open(src, "rb") as f, open(dst, "wb") as out:
        copied = objects.kernel_copy(f.fileno(), out.fileno(), len(DATA), progress, followed)
    assert dst.read_bytes() == DATA and copied == len(DATA)
    rest = len(DATA) - 2 * (1 << 20)
    assert steps == [1 << 20] * 2 + [256 << 10] * (rest // (256 << 10)) + [rest % (256 << 10)], steps


def test_positional_reads_write_all_of_each_chunk_when_a_write_writes_less(tmp_path, monkeypatch):
    """A write into a filling disk may write part of what it was given: the rest is written (or the
    disk's error raised), never counted as copied while missing from the copy."""
    monkeypatch.setattr(os, "copy_file_range", _failing("copy_file_range"))
    monkeypatch.setattr(os, "sendfile", _failing("sendfile"))
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, bytes(data[:1000])))
    data, copied, progress = _copy(tmp_path)
    assert data == DATA and copied == len(DATA) == sum(progress)
