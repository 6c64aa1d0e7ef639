"""storage.filesystem_type: a device's filesystem type, from /proc/self/mountinfo."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from autolog.storage import filesystem_type as ft

SAMPLE = r"""22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
101 27 7:0 / /mnt/with\040space rw,relatime shared:40 master:2 - xfs /dev/loop0 rw,attr2,inode64
102 27 7:0 /sub /mnt/bind rw,relatime - ext4 /dev/loop0 rw
not a mount line
103 27 0:55 / /mnt/nfs rw - nfs4 server:/export rw,vers=4.2
"""


def test_mountinfo_lines_give_each_device_its_type():
    """Optional fields (shared:, master:) before the "-", escaped spaces in paths, a line that is no mount
    line; a device mounted twice keeps the type of its first line."""
    assert ft.parse_mountinfo(SAMPLE) == {
        os.makedev(0, 21): "proc", os.makedev(254, 0): "ext4", os.makedev(7, 0): "xfs", os.makedev(0, 55): "nfs4",
    }


def test_each_device_is_looked_up_once(monkeypatch):
    reads = []
    monkeypatch.setattr(ft, "_types", {})
    monkeypatch.setattr(ft, "_read", lambda path: reads.append(path) or SAMPLE)
    assert [ft.filesystem_type(os.makedev(7, 0)) for _ in range(3)] == ["xfs"] * 3
    assert ft.filesystem_type(os.makedev(9, 9)) is None  # not mounted: unknown, and remembered as such
    assert ft.filesystem_type(os.makedev(9, 9)) is None
    assert reads == [ft.MOUNTINFO] * 2


def test_a_mount_point_named_in_bytes_that_are_not_utf8_is_read_too(monkeypatch, tmp_path):
    listing = tmp_path / "mountinfo"
    listing.write_bytes(b"40 27 8:16 / /mnt/caf\xe9 rw - ext4 /dev/sdb rw\n41 27 7:1 / /x rw - xfs /dev/loop1 rw\n")
    monkeypatch.setattr(ft, "_types", {})
    monkeypatch.setattr(ft, "MOUNTINFO", str(listing))
    assert [ft.filesystem_type(os.makedev(*d)) for d in ((8, 16), (7, 1))] == ["ext4", "xfs"]


def test_no_mount_list_means_unknown(monkeypatch, tmp_path):
    monkeypatch.setattr(ft, "_types", {})
    monkeypatch.setattr(ft, "MOUNTINFO", str(tmp_path / "absent"))
    assert ft.filesystem_type(os.stat(tmp_path).st_dev) is None


@pytest.mark.skipif(not sys.platform.startswith("linux") or shutil.which("findmnt") is None,
                    reason="needs Linux's /proc/self/mountinfo and util-linux's findmnt to compare with")
@pytest.mark.parametrize("path", ["/", "/proc", "/dev/shm"])
def test_this_machines_mounts_agree_with_findmnt(monkeypatch, path):
    if not os.path.isdir(path):
        pytest.skip(f"{path} does not exist here")
    monkeypatch.setattr(ft, "_types", {})
    expected = subprocess.run(["findmnt", "-n", "-o", "FSTYPE", "--target", path], capture_output=True, text=True,
                              check=True).stdout.split()[0]
    assert ft.filesystem_type(os.stat(path).st_dev) == expected
