"""Which filesystem a file is on ("xfs", "ext4", "nfs4", ...), from the device number its stat gives.

Linux lists every mount in /proc/self/mountinfo with its device ("major:minor") and its type; a
device keeps its type while it is mounted, so each device is looked up once. None where there is no
such list (macOS, Windows) or the device is not in it (a file whose mount went away).
"""
from __future__ import annotations

import os

MOUNTINFO = "/proc/self/mountinfo"

# Threads that look up a new device at once each read the list and store the same answer.
_types: dict[int, str | None] = {}


def filesystem_type(device: int) -> str | None:
    """The type of the filesystem mounted on device (an st_dev)."""
    try:
        return _types[device]
    except KeyError:
        pass
    found = _types[device] = parse_mountinfo(_read(MOUNTINFO)).get(device)
    return found


def parse_mountinfo(text: str) -> dict[int, str]:
    """device number -> filesystem type, from mountinfo's lines: "<id> <parent> <major>:<minor> <root>
    <mount point> <options> [optional fields...] - <type> <source> <super options>" (proc(5)). Paths are
    escaped (a space is \\040), so splitting on spaces is safe, and no field before the "-" can be
    one (numbers, absolute paths, options); the first mount of a device wins."""
    types: dict[int, str] = {}
    for line in text.splitlines():
        fields = line.split()
        try:
            major, minor = fields[2].split(":")
            fstype = fields[fields.index("-") + 1]
            device = os.makedev(int(major), int(minor))
        except (IndexError, ValueError):
            continue  # not a mount line this parser understands: that device stays unknown
        types.setdefault(device, fstype)
    return types


def _read(path: str) -> str:
    """The list as text; a mount point whose name is not UTF-8 elsewhere on the machine must not make
    every copy fail, so such bytes are kept as surrogates."""
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            return f.read()
    except OSError:
        return ""
