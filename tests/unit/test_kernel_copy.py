"""storage.objects.kernel_copy: copy_file_range first (a reflink where the filesystem shares extents),
then sendfile, then positional reads; each way that fails or stops short hands over from where it stopped."""
from __future__ import annotations

import errno
import os

import pytest

from autolog.storage import objects

DATA = os.urandom(3 * (1 << 20) + 12345)


def _copy(tmp_path) -> tuple[bytes, int, list[int]]:
    src, dst = tmp_path / "src.bin", tmp_path / "dst.bin"
    src.write_bytes(DATA)
    progress: list[int] = []
    src_fd = os.open(src, os.O_RDONLY)
    try:
        with open(dst, "wb") as out:
            copied = objects.kernel_copy(src_fd, out.fileno(), len(DATA), progress.append)
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
    calls = []
    real = os.copy_file_range
    monkeypatch.setattr(os, "copy_file_range", lambda *a: calls.append(a) or real(*a))
    monkeypatch.setattr(os, "sendfile", _failing("sendfile"))
    data, copied, progress = _copy(tmp_path)
    assert data == DATA and copied == len(DATA) == sum(progress)
    assert calls


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
