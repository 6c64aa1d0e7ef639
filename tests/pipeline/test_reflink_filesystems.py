"""Snapshots on filesystems whose copy_file_range shares extents, each a real loop-mounted image: on
XFS the stager makes a real copy (a clone of a file just saved would first write its dirty pages to
disk, then be hashed from disk), on btrfs it still clones. Either way every snapshot holds exactly the
bytes of its save.

Needs root, a loop device, mkfs.xfs and mkfs.btrfs (.ci/run installs xfsprogs and btrfs-progs), and
filefrag (e2fsprogs) to see shared extents; skipped, saying why, on a machine that cannot mount one.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from autolog import Task
from pipeline_helpers import assert_stored_tensor, object_path, output_snapshots

IMAGE_BYTES = 512 << 20  # XFS needs 300 MB at least
MKFS = {"xfs": ["mkfs.xfs", "-q", "-m", "reflink=1"], "btrfs": ["mkfs.btrfs", "-q"]}


def _tensor(step: int) -> torch.Tensor:
    """~2 MB: above inline_bytes, so the stager copies it (small ones are read on the training thread)."""
    return torch.arange(500_000, dtype=torch.float32) + 1000.0 * step


@pytest.fixture
def mounted(tmp_path: Path):
    """mounted(fstype): a fresh filesystem of that type, loop-mounted under tmp_path; unmounted after."""
    mounts: list[Path] = []

    def mount(fstype: str) -> Path:
        missing = [tool for tool in (MKFS[fstype][0], "mount", "umount", "filefrag") if shutil.which(tool) is None]
        if not sys.platform.startswith("linux") or os.geteuid() != 0 or missing:
            pytest.skip(f"needs Linux, root and {', '.join(missing) or 'the tools'} to mount a {fstype} image")
        image, point = tmp_path / f"{fstype}.img", tmp_path / fstype
        with open(image, "wb") as f:
            f.truncate(IMAGE_BYTES)
        subprocess.run([*MKFS[fstype], str(image)], check=True, capture_output=True)
        point.mkdir()
        done = subprocess.run(["mount", "-o", "loop", str(image), str(point)], capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"this machine cannot loop-mount a {fstype} image: {done.stderr.strip()}")
        mounts.append(point)
        return point

    yield mount
    for point in mounts:
        subprocess.run(["umount", str(point)], check=False)


def _shares_extents(path: Path) -> bool:
    os.sync()  # extents still delayed in the page cache are not reported as shared yet
    report = subprocess.run(["filefrag", "-v", str(path)], capture_output=True, text=True, check=True).stdout
    return "shared" in report


@pytest.mark.parametrize("fstype, cloned", [("xfs", False), ("btrfs", True)])
def test_a_snapshot_is_a_real_copy_on_xfs_and_a_clone_on_btrfs(mounted, fstype, cloned):
    root = mounted(fstype)
    saved = root / "work" / "model.pt"
    saved.parent.mkdir()
    task = Task.init(project_name="pipeline", task_name=f"on {fstype}", output_uri=str(root / "store"))
    for step in range(3):
        torch.save(_tensor(step), saved)
    task.close()

    snaps = output_snapshots(task, "model.pt")
    assert [s.status for s in snaps] == ["stored"] * 3
    for step, snap in enumerate(snaps):
        assert_stored_tensor(snap, _tensor(step))
    last = object_path(snaps[-1].uri)
    assert last.read_bytes() == saved.read_bytes()
    # The last save's file is still there: a clone of it shares its extents, a copy does not.
    assert _shares_extents(last) is cloned
