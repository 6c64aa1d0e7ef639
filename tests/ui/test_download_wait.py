"""The browser tests' wait for a download (browser.wait_for_download), on real files written the way
Chromium writes a download: an empty file reserving the name, then `<name>.crdownload`, renamed over it
once complete. No browser needed."""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from browser import wait_for_download


def _chromium_writes(folder: Path, name: str, data: bytes, after: float) -> threading.Thread:
    def write() -> None:
        time.sleep(after)  # the reservation alone, with no .crdownload yet: the window a wait must not take
        partial = folder / f"{name}.crdownload"
        partial.write_bytes(data[: len(data) // 2])
        time.sleep(0.1)
        partial.write_bytes(data)
        os.replace(partial, folder / name)

    (folder / name).touch()
    thread = threading.Thread(target=write)
    thread.start()
    return thread


def test_a_download_is_taken_once_written_never_at_its_empty_reservation(tmp_path):
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    writer = _chromium_writes(downloads, "snapshot.pt", b"weights" * 1000, after=0.3)
    try:
        assert wait_for_download(downloads, timeout=10).read_bytes() == b"weights" * 1000
    finally:
        writer.join()


def test_files_there_before_the_click_are_not_the_download(tmp_path):
    (tmp_path / "lineage-1.svg").write_text("<svg/>")
    before = set(tmp_path.iterdir())
    writer = _chromium_writes(tmp_path, "lineage-2.svg", b"<svg>new</svg>", after=0.2)
    try:
        assert wait_for_download(tmp_path, "lineage-*.svg", timeout=10, before=before).name == "lineage-2.svg"
    finally:
        writer.join()
