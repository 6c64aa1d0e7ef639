"""What a user wants to know later about how a run was started."""
from __future__ import annotations

import getpass
import os
import platform
import socket
import sys
from pathlib import Path
from typing import Any

from .config import redact_urls_in


def collect_run_info() -> dict[str, Any]:
    """Cheap facts, gathered at Task.init (well under a millisecond, no subprocess)."""
    script = os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] not in ("", "-c", "-m") else None
    info: dict[str, Any] = {
        "argv": [redact_urls_in(arg) for arg in sys.argv],  # a --db-url=postgresql://u:pw@h/db in argv
        "script": script,
        "cwd": os.getcwd(),
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "platform": platform.platform(terse=True),
        "host": host_name(),
        "user": _user(),
        "pid": os.getpid(),
        "pid_started": process_started(os.getpid()),
    }
    info.update(git_info(Path(script).parent if script else Path.cwd()))
    if _required:
        info["requirements"] = list(_required.values())
    return info


def process_started(pid: int) -> int | None:
    """When the process pid started (clock ticks since boot, Linux's /proc/PID/stat): with its pid it
    names one process, where a pid alone may since name another. None elsewhere, or if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        return int(stat[stat.rindex(b")") + 2:].split()[19])  # field 22; the name before may hold spaces
    except (OSError, ValueError, IndexError):
        return None


# Requirement lines added with Task.add_requirements() before Task.init, by package name (a later call
# for the same package replaces the earlier one); recorded in the next task's run_info.
_required: dict[str, str] = {}


def require(package: str, line: str) -> None:
    """Record a requirement line (pip syntax, "torch>=2.1") in the run_info of the next task started."""
    _required[package.lower().replace("_", "-")] = line


def installed_packages() -> dict[str, str]:
    """Every installed distribution and its version, read from the *.dist-info folder names (a few
    ms; parsing every METADATA file through importlib.metadata takes 100 times longer)."""
    found: dict[str, str] = {}
    for folder in sys.path:
        try:
            entries = os.scandir(folder or ".")
        except OSError:
            continue
        with entries:
            for entry in entries:
                stem, dot, suffix = entry.name.rpartition(".")
                if dot and suffix in ("dist-info", "egg-info") and "-" in stem:
                    name, version = stem.split("-", 2)[:2]
                    found.setdefault(name.replace("_", "-").lower(), version)
    return dict(sorted(found.items()))


def git_info(start: Path) -> dict[str, Any]:
    """The commit and branch of the repository holding start, read from .git without running git."""
    for folder in (start, *start.parents):
        dot_git = folder / ".git"
        if dot_git.is_file():  # a worktree or submodule: "gitdir: <path>"
            text = dot_git.read_text(errors="replace").strip()
            if text.startswith("gitdir:"):
                dot_git = (folder / text[len("gitdir:"):].strip()).resolve()
        if dot_git.is_dir():
            return _read_head(dot_git, folder)
    return {}


def _read_head(git_dir: Path, work_tree: Path) -> dict[str, Any]:
    try:
        head = (git_dir / "HEAD").read_text().strip()
    except OSError:
        return {}
    info: dict[str, Any] = {"git_root": str(work_tree)}
    if not head.startswith("ref:"):
        info["git_commit"] = head
        return info
    ref = head[len("ref:"):].strip()
    info["git_branch"] = ref.removeprefix("refs/heads/")
    common = git_dir
    commondir = git_dir / "commondir"
    if commondir.is_file():
        common = (git_dir / commondir.read_text().strip()).resolve()
    for base in (git_dir, common):
        ref_file = base / ref
        if ref_file.is_file():
            info["git_commit"] = ref_file.read_text().strip()
            return info
    packed = common / "packed-refs"
    if packed.is_file():
        for line in packed.read_text().splitlines():
            if line.endswith(" " + ref):
                info["git_commit"] = line.split(" ", 1)[0]
    return info


def _user() -> str | None:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers
        return None


def host_name() -> str:
    """This machine's name, as recorded in run_info and the stat cache's rows."""
    return socket.gethostname()
