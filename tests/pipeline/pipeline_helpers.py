"""Helpers for the snapshot-pipeline tests: controllable storage and copies, reading snapshots back.

Importable both by the tests (pytest puts this folder on sys.path) and by the subprocesses they
start (the `child` fixture puts this folder on their PYTHONPATH), so a child script can install the
same slow or stuck store with one call.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
WAIT = 60.0  # safety net for waits that must succeed; never a timing assertion


# -- tensors and files -----------------------------------------------------------------------
def tensor(step: int, n: int = 16):
    """The tensor saved at `step`: distinct per step, same size for every step."""
    import torch

    return torch.arange(n, dtype=torch.float32) + 1000.0 * step


def digest(path: str | os.PathLike) -> str:
    """The identity digest ("blake3:<hex>") of a file's bytes, as a snapshot records it."""
    from autolog.storage.hashing import file_digest

    return file_digest(path)


def files_under(root: str | os.PathLike) -> list[Path]:
    root = Path(root)
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def object_path(uri: str) -> Path:
    """The file behind a stored URI (plain path, file:// or the local:// remote store)."""
    for prefix in ("local://", "file://"):
        if uri.startswith(prefix):
            return Path(uri[len(prefix):])
    assert "://" not in uri, f"not a filesystem URI: {uri}"
    return Path(uri)


def load_object(snap: Any):
    """torch.load the bytes stored for a snapshot (call with no running task: loads are captured)."""
    import torch

    return torch.load(object_path(snap.uri), weights_only=True)


def assert_stored_tensor(snap: Any, expected) -> None:
    """The snapshot is stored, its object's digest is the recorded one and it loads to `expected`."""
    import torch

    assert snap.status == "stored", (snap.seq, snap.status, snap.reason)
    path = object_path(snap.uri)
    assert path.is_file(), f"snapshot {snap.seq}: {path} missing"
    assert digest(path) == snap.digest, f"snapshot {snap.seq}: stored bytes do not match the recorded digest"
    loaded = load_object(snap)
    assert torch.equal(loaded, expected), f"snapshot {snap.seq} holds {loaded}, expected {expected}"


# -- reading snapshots -----------------------------------------------------------------------
def output_snapshots(task: Any, model_name: str) -> list:
    """Snapshot rows (oldest first) of the task's output model `model_name`."""
    return task.models["output"][model_name].snapshots


def snapshots_by_task(task_id: str) -> dict[str, list]:
    """{model name: snapshot rows} of every output model of a task (read from the database)."""
    from autolog import Task

    task = Task.get_task(task_id=task_id)
    return {m.name: m.snapshots for m in task.models["output"]}


# -- config ----------------------------------------------------------------------------------
def write_config(home: str | os.PathLike, **sections: dict[str, Any]) -> Path:
    """Write $AUTOLOG_HOME/autolog.toml, e.g. write_config(home, pipeline={"flush_timeout": 1})."""
    lines = []
    for section, values in sections.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in values.items()]
    path = Path(home) / "autolog.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


# -- waiting ---------------------------------------------------------------------------------
def wait_until(predicate: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    """Poll until predicate() holds; fails the test (naming `what`) if it never does."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for: {what}")
        time.sleep(0.01)


def wait_for_start(task: Any) -> None:
    """Until Task.init's background start is over (the task's row, the package list, its head start for
    the first rows): a test patching what the start also calls patches it after that."""
    from autolog import Task

    Task.get_task(task_id=task.id)
    for thread in threading.enumerate():
        if thread.name == "autolog-init":
            thread.join(WAIT)


def save_in_thread(obj: Any, path: str | os.PathLike) -> threading.Thread:
    """torch.save(obj, path) in a 'training' thread, so a save that blocks cannot hang the test."""
    import torch

    thread = threading.Thread(target=torch.save, args=(obj, path), name="training", daemon=True)
    thread.start()
    return thread


def no_snapshot_being_read(task: Any) -> bool:
    """Every submitted snapshot of the task has been copied and hashed: none is still in state "new"
    (the hasher sets "staged", and counts its bytes in the backlog, once both are done)."""
    from autolog.snapshots.pipeline import SnapshotJob

    return all(j.state != "new" for j in task._runtime.pipeline.pending() if isinstance(j, SnapshotJob))


# -- a controllable remote store -------------------------------------------------------------
class PutControl:
    """Replaces BlobStore.put_file: records calls, can be gated (blocked), and can fail.

    gate:       put_file waits until it is set (set = uploads flow).
    fail_next:  that many calls raise OSError first.
    fail_all:   every call raises OSError.
    delay:      seconds each call sleeps before storing.
    """

    def __init__(self, original: Callable[..., Any]):
        self.original = original
        self.gate = threading.Event()
        self.gate.set()
        self.fail_next = 0
        self.fail_all = False
        self.delay = 0.0
        self.calls: list[str] = []
        self.on_enter: Callable[[int], None] | None = None
        self._cond = threading.Condition()

    def block(self) -> None:
        self.gate.clear()

    def release(self) -> None:
        self.gate.set()

    def wait_for_calls(self, n: int, timeout: float = WAIT) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: len(self.calls) >= n, timeout)

    def __call__(self, store: Any, local_path: str, key: str, **kwargs: Any) -> Any:
        with self._cond:
            self.calls.append(key)
            count = len(self.calls)
            self._cond.notify_all()
        if self.on_enter is not None:
            self.on_enter(count)
        self.gate.wait()
        if self.delay:
            time.sleep(self.delay)
        with self._cond:
            if self.fail_all or self.fail_next > 0:
                self.fail_next = max(0, self.fail_next - 1)
                raise OSError(f"simulated storage outage (put #{count} of {key})")
        return self.original(store, local_path, key, **kwargs)


def install_put_control() -> PutControl:
    """Patch BlobStore.put_file for the whole process (for child scripts; tests use the fixture)."""
    from autolog.storage.blobstore import BlobStore

    control = PutControl(BlobStore.put_file)
    BlobStore.put_file = lambda store, local, key, **kwargs: control(store, local, key, **kwargs)
    return control


# -- a controllable copy out of the user's file ----------------------------------------------
def through_the_stager() -> None:
    """Every snapshot goes through the stager's copy, small ones too (for child scripts; the tests use
    the conftest fixtures, which do the same)."""
    from autolog.snapshots import steps

    steps.read_inline = lambda job, limit: False


class CopyControl:
    """Replaces objects.kernel_copy (or another step of the stager): each call announces itself,
    waits for `release`, runs `before_copy(call number)` if set, then calls the original."""

    def __init__(self, original: Callable[..., int]):
        self.original = original
        self.release = threading.Event()
        self.release.set()
        self.before_copy: Callable[[int], None] | None = None
        self.calls = 0
        self._cond = threading.Condition()

    def hold(self) -> None:
        self.release.clear()

    def wait_for_calls(self, n: int, timeout: float = WAIT) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.calls >= n, timeout)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self._cond:
            self.calls += 1
            count = self.calls
            self._cond.notify_all()
        self.release.wait()
        if self.before_copy is not None:
            self.before_copy(count)
        return self.original(*args, **kwargs)


def install_copy_control() -> CopyControl:
    from autolog.storage import objects

    through_the_stager()
    control = CopyControl(objects.kernel_copy)
    objects.kernel_copy = control
    return control


def stuck_forever(marker: str | os.PathLike, partial: bool = True) -> Callable[..., int]:
    """A kernel_copy that copies half the file (when partial), writes `marker`, then never returns."""
    def copy(src_fd: int, dst_fd: int, size: int, *_: Any) -> int:
        if partial and size > 1:
            os.sendfile(dst_fd, src_fd, 0, size // 2)
        Path(marker).write_text("stuck")
        threading.Event().wait()
        raise AssertionError("unreachable")

    return copy


# -- the CLI ---------------------------------------------------------------------------------
def run_cli(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autolog.cli", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def cli_json(env: dict[str, str], *args: str) -> Any:
    proc = run_cli(env, *args, "--json")
    assert proc.returncode == 0, f"autolog {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return json.loads(proc.stdout)


def write_marker(path: str | Path, text: str = "") -> None:
    """A child's word to the test, whole or not at all: wait_for_file returns once the name exists, and
    a plain write_text gives it an empty file first (the test then read a task id of '')."""
    part = Path(f"{path}.part")
    part.write_text(text)
    os.replace(part, path)


def wait_for_file(path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    """Wait until a child wrote `path` (with write_marker); fails with the child's output if it died first."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"child exited ({proc.returncode}) before writing {path.name}:\n{out}\n{err}")
        if time.monotonic() > deadline:
            proc.kill()
            out, err = proc.communicate()
            raise AssertionError(f"child never wrote {path.name}:\n{out}\n{err}")
        time.sleep(0.02)
