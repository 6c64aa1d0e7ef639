"""Where and how a task runs: the ClearML calls scripts make at their top about agents and requirements.

autolog has no agents and no queues: every task runs in the process that started it. So
`Task.running_locally()` is always True, `Task.add_requirements()` records the requirement in the next
task's run_info (next to the installed packages, which are always recorded), and `task.execute_remotely()`
raises: it cannot send the task anywhere, and pretending it did would run the script here unannounced.
"""
from __future__ import annotations

import logging
import os
import re

from . import runtime
from .run_info import require

__all__ = ["TaskExecution"]

logger = logging.getLogger("autolog")

# A requirement line's package name and what follows it ("torch>=2.1; python_version>'3.8'").
_REQUIREMENT = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*(.*)")


class TaskExecution:
    """Mixed into Task: running_locally, add_requirements, execute_remotely."""

    @staticmethod
    def running_locally() -> bool:
        """True: no agent ever executes an autolog task, every task runs where it was started."""
        return True

    @classmethod
    def add_requirements(cls, package_name: str, package_version: str | None = None) -> None:
        """Record a package requirement in the run_info of the task started next ("requirements").

        Call it before Task.init, as in ClearML (afterwards it is ignored, with a warning).
        package_version: "2.4.0" (exactly), ">=2.4" (a specifier), "" (any version), or None (the
        installed version, if the package is installed). package_name may instead be the path of a
        requirements file, whose lines are recorded.
        """
        if not isinstance(package_name, str) or not package_name.strip():
            raise ValueError(f"package_name must be a package name or a requirements file path, got {package_name!r}.")
        if runtime.live() is not None:
            logger.warning("autolog: requirement %r ignored: Task.add_requirements() must be called before "
                           "Task.init().", package_name)
            return
        if os.path.isfile(os.path.expanduser(package_name)):
            for line in _requirement_lines(os.path.expanduser(package_name)):
                _add_line(line)
            return
        _add_line(package_name.strip() + _version_spec(package_name.strip(), package_version))

    def execute_remotely(self, queue_name: str | None = None, clone: bool = False, exit_process: bool = True) -> None:
        """Not available: autolog has no agents or queues to run a task elsewhere.

        Raises NotImplementedError. Remove the call to run the script here; to run it on another
        machine, start it there (with the same AUTOLOG_DB_URL and storage, it records into the same store).
        """
        raise NotImplementedError(
            f"execute_remotely(queue_name={queue_name!r}) needs ClearML's agents and queues, which autolog does "
            "not have. Remove the call to run the script here, or start it on the other machine (with the same "
            "AUTOLOG_DB_URL and storage, it records into the same store).")


def _version_spec(package: str, version: str | None) -> str:
    if version is None:
        import importlib.metadata  # ~15 ms: only for Task.add_requirements without a version

        try:
            return "==" + importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            return ""  # not installed here: any version
    version = version.strip()
    if not version:
        return ""
    return version if version[0] in "<>=!~" else "==" + version


def _requirement_lines(path: str) -> list[str]:
    with open(path, encoding="utf-8") as f:
        # Comments, blank lines and pip options (-r, -e, --index-url) are not requirements.
        return [line.split(" #", 1)[0].strip() for line in f
                if line.strip() and not line.lstrip().startswith(("#", "-"))]


def _add_line(line: str) -> None:
    match = _REQUIREMENT.fullmatch(line)
    if match is None:
        raise ValueError(f"{line!r} is not a requirement. Pass a package name such as 'torch', with "
                         "package_version such as '2.1.0' or '>=2.1'.")
    require(match.group(1), line)
