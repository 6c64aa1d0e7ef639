"""Storage faults on real filesystems: a read-only filesystem, a full one, an output_uri folder
replaced by a file, deleted, or without permission. Each case runs in its own process with a local
output_uri that really fails: every save returns at once, the process exits by itself, one summary
warning names the failed snapshots with the real cause (never a cleanup path), the rows say `failed`
with that cause and none stays `pending`; once the fault is undone, later saves of the same process
are stored (the background workers survived)."""
from __future__ import annotations

import ctypes
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from autolog import Task
from pipeline_helpers import assert_stored_tensor, files_under, snapshots_by_task, tensor

SAVE_BOUND = 2.0  # seconds: a save never waits for storage
CHILD_BOUND = 120  # seconds: generous; a child that hangs fails the test, it never hangs it

CHILD = r"""
import json
import os
import shutil
import subprocess
import sys
import time

import torch

import pipeline_helpers as h
from autolog import Task

case, store, work = sys.argv[1:4]
plan = json.loads(sys.argv[4])  # {"faulty": [n, ...], "after": [n, ...]}: the tensor sizes saved


def save(step, n):
    data = h.tensor(step, n=n)
    started = time.monotonic()
    torch.save(data, os.path.join(work, "ckpt.pt"))
    print(json.dumps({"save": step, "took": time.monotonic() - started}), flush=True)


def settle(task):
    pipeline = task._runtime.pipeline
    h.wait_until(lambda: not pipeline.pending(), "the pipeline to settle the faulty saves", timeout=60)


task = Task.init(project_name="faults", task_name=case, output_uri=store)  # checks that store is writable
print(json.dumps({"task": task.id}), flush=True)
if case == "readonly":
    subprocess.run(["mount", "-o", "remount,ro", os.path.dirname(store)], check=True)
elif case == "notdir":
    shutil.rmtree(store)
    with open(store, "w") as f:
        f.write("a file where the output_uri folder was")
elif case == "deleted":
    shutil.rmtree(store)
elif case == "eacces":
    os.chmod(store, 0o500)
for step, n in enumerate(plan["faulty"], 1):
    save(step, n)
settle(task)
# The fault goes away; the same process saves again.
if case == "readonly":
    subprocess.run(["mount", "-o", "remount,rw", os.path.dirname(store)], check=True)
elif case == "notdir":
    os.remove(store)
elif case == "eacces":
    os.chmod(store, 0o700)
for step, n in enumerate(plan["after"], len(plan["faulty"]) + 1):
    save(step, n)
print(json.dumps({"done": True}), flush=True)
# No close(): the exit flush stores what is left and writes the summary.
"""

CAUSES = {
    "readonly": "Read-only file system",
    "enospc": "No space left on device",
    "notdir": "Not a directory",
    "eacces": "Permission denied",
}
# What a cleanup path would look like in a reason: the copied marker or a staging folder.
CLEANUP_PATH = re.compile(r"(\.copied|\.incomplete-[0-9a-f]+)'?(\)|$)")


# -- real filesystems ------------------------------------------------------------------------
def _mount_tmpfs(where: Path, size: str) -> None:
    where.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN): {proc.stderr.strip()}")


def _umount(where: Path) -> None:
    if subprocess.run(["umount", str(where)], capture_output=True, timeout=30).returncode != 0:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, timeout=30)


@pytest.fixture
def tmpfs(tmp_path: Path):
    """tmpfs(size): a fresh tmpfs mounted under tmp_path (skips where mount is not permitted);
    unmounted at teardown, whatever happened."""
    mounted: list[Path] = []

    def mount(size: str) -> Path:
        where = tmp_path / f"tmpfs{len(mounted)}"
        _mount_tmpfs(where, size)
        mounted.append(where)
        return where

    yield mount
    for where in mounted:
        _umount(where)


# -- running a faulty child ------------------------------------------------------------------
def _finish(proc: subprocess.Popen) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=CHILD_BOUND)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"the child did not exit within {CHILD_BOUND} s:\n{out}\n{err}")


def _events(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


SMALL = 16  # floats: read on the training thread and written at its key by the recorder (inline)
BIG = 400_000  # floats, 1.6 MB: copied by the stager into a staging folder (and more than a 1 MiB tmpfs)
PLANS = {  # the tensor sizes saved while the fault is there, and after it was undone
    "readonly": {"faulty": [SMALL, BIG, SMALL], "after": [SMALL, BIG]},
    "enospc": {"faulty": [BIG, BIG, BIG], "after": [SMALL, SMALL]},
    "notdir": {"faulty": [SMALL, BIG, SMALL], "after": [SMALL, BIG]},
    "eacces": {"faulty": [SMALL, BIG, SMALL], "after": [SMALL, BIG]},
    "deleted": {"faulty": [SMALL, BIG, SMALL], "after": []},
}


def _sizes(case: str) -> dict[int, int]:
    """seq -> the number of floats saved at that step."""
    plan = PLANS[case]
    return dict(enumerate(plan["faulty"] + plan["after"], 1))


def _check_child(case: str, proc: subprocess.Popen, out: str, err: str) -> str:
    """The child exited by itself (0), every save returned at once; returns its task id."""
    assert proc.returncode == 0, (proc.returncode, out, err)
    events = _events(out)
    took = {e["save"]: e["took"] for e in events if "save" in e}
    assert sorted(took) == sorted(_sizes(case)), (out, err)
    slow = {step: round(t, 2) for step, t in took.items() if t >= SAVE_BOUND}
    assert not slow, f"saves that did not return within {SAVE_BOUND} s: {slow}\n{err}"
    assert {"done": True} in events, (out, err)
    (task_id,) = [e["task"] for e in events if "task" in e]
    return task_id


def _summary(err: str, task_id: str) -> str:
    """The one summary warning of the exit flush."""
    lines = [line for line in err.splitlines() if f"autolog: task {task_id[:8]}:" in line]
    assert len(lines) == 1, err
    return lines[0]


def _check_faulty(case: str, task_id: str, err: str, store: str) -> None:
    cause = CAUSES[case]
    sizes = _sizes(case)
    faulty = len(PLANS[case]["faulty"])
    summary = _summary(err, task_id)
    assert f"{faulty} snapshot(s) failed: " in summary, summary
    for seq in range(1, faulty + 1):
        assert f"ckpt.pt #{seq} (" in summary, summary
    assert summary.count(cause) == faulty, summary
    assert not CLEANUP_PATH.search(summary), summary
    assert "not stored yet" not in summary and "not recorded" not in summary, summary

    task = Task.get_task(task_id=task_id)
    assert task.status == "completed", (task.status, err)
    snaps = snapshots_by_task(task_id)["ckpt.pt"]
    assert [s.seq for s in snaps] == sorted(sizes), [(s.seq, s.status) for s in snaps]
    for snap in snaps[:faulty]:
        assert snap.status == "failed", (snap.seq, snap.status, snap.reason)
        assert cause in snap.reason, (snap.seq, snap.reason)
        assert not CLEANUP_PATH.search(snap.reason), snap.reason
        assert snap.uri is None
    # Undone: the workers survived the fault, and the same process stores the later saves.
    for snap in snaps[faulty:]:
        assert_stored_tensor(snap, tensor(snap.seq, n=sizes[snap.seq]))
    assert [s for s in snaps if s.status == "pending"] == []
    leftovers = [p for p in files_under(store) if ".autolog-staging" in str(p) or "incomplete" in str(p)]
    assert leftovers == [], f"staging left behind by a failed snapshot: {leftovers}"


def _run_case(case: str, spawn, env, store: Path, work: Path) -> tuple[str, str]:
    env.pop("AUTOLOG_STRICT", None)  # faults on purpose: reported as warnings, never raised
    proc = spawn(CHILD, case, store, work, json.dumps(PLANS[case]))
    out, err = _finish(proc)
    return _check_child(case, proc, out, err), err


def test_read_only_filesystem(tmpfs, spawn, env, work):
    store = tmpfs("8m") / "store"
    task_id, err = _run_case("readonly", spawn, env, store, work)
    _check_faulty("readonly", task_id, err, str(store))


def test_full_filesystem(tmpfs, spawn, env, work):
    store = tmpfs("1m") / "store"
    task_id, err = _run_case("enospc", spawn, env, store, work)
    _check_faulty("enospc", task_id, err, str(store))
    # The partial copies were removed: the filesystem has its room back.
    assert shutil.disk_usage(store.parent).used < 256 * 1024


def test_output_uri_replaced_by_a_file(tmp_path, spawn, env, work):
    store = tmp_path / "store"
    task_id, err = _run_case("notdir", spawn, env, store, work)
    _check_faulty("notdir", task_id, err, str(store))


def test_output_uri_deleted_is_created_again(tmp_path, spawn, env, work):
    store = tmp_path / "store"
    task_id, err = _run_case("deleted", spawn, env, store, work)
    assert f"autolog: task {task_id[:8]}:" not in err, err  # nothing to report
    sizes = _sizes("deleted")
    snaps = snapshots_by_task(task_id)["ckpt.pt"]
    assert [s.seq for s in snaps] == sorted(sizes)
    for snap in snaps:
        assert_stored_tensor(snap, tensor(snap.seq, n=sizes[snap.seq]))
        assert Path(snap.uri).is_relative_to(store)
    assert Task.get_task(task_id=task_id).status == "completed"


# -- permission denied -----------------------------------------------------------------------
NOBODY = 65534
PR_CAPBSET_DROP = 24
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 1, 2


def _as_nobody() -> None:
    os.setgid(NOBODY)
    os.setuid(NOBODY)


def _without_dac_override() -> None:
    """Root, but subject to permission bits: drop the capabilities that bypass them (for the exec'd
    program too: they leave the bounding set)."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def _unprivileged() -> tuple[str, object]:
    """How to run a child that permission bits apply to: as user nobody (as long as the interpreter
    is reachable for nobody), else as root without CAP_DAC_OVERRIDE; skips when neither is allowed."""
    reasons = []
    locked = Path(tempfile.mkdtemp(prefix="autolog-probe-", dir="/tmp"))
    try:
        os.chmod(locked, 0o555)  # nobody may create anything in it, not even its owner
        probe_code = ("import os, sys\n"
                      "try:\n    os.mkdir(sys.argv[1])\nexcept PermissionError:\n    sys.exit(0)\nsys.exit(3)")
        for name, preexec in (("user nobody", _as_nobody), ("root without CAP_DAC_OVERRIDE", _without_dac_override)):
            try:
                probe = subprocess.run([sys.executable, "-c", probe_code, str(locked / "x")], preexec_fn=preexec,
                                       capture_output=True, text=True, timeout=30)
            except (OSError, subprocess.SubprocessError) as exc:
                reasons.append(f"{name}: {exc}")
                continue
            if probe.returncode == 0:
                return name, preexec
            reasons.append(f"{name}: permissions do not apply (exit {probe.returncode}: {probe.stderr.strip()[-200:]})")
    finally:
        shutil.rmtree(locked, ignore_errors=True)
    pytest.skip("cannot run a child that file permissions apply to: " + "; ".join(reasons))


def test_output_uri_without_permission(env, monkeypatch):
    who, preexec = _unprivileged()
    base = Path(tempfile.mkdtemp(prefix="autolog-eacces-", dir="/tmp"))  # not under pytest's 0700 folders
    try:
        os.chmod(base, 0o755)
        home, work, store, script = base / "home", base / "work", base / "store", base / "child.py"
        home.mkdir()
        work.mkdir()
        script.write_text(CHILD)
        if who == "user nobody":
            for path in (base, home, work, script):
                os.chown(path, NOBODY, NOBODY)
        child_env = {k: v for k, v in env.items() if k != "AUTOLOG_STRICT"}
        child_env.update(AUTOLOG_HOME=str(home), HOME=str(home), PYTHONPATH=env["PYTHONPATH"])
        proc = subprocess.Popen([sys.executable, str(script), "eacces", str(store), str(work),
                                 json.dumps(PLANS["eacces"])], env=child_env,
                                text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=preexec,
                                cwd=str(base))
        out, err = _finish(proc)
        task_id = _check_child("eacces", proc, out, err)
        monkeypatch.setenv("AUTOLOG_HOME", str(home))  # read the child's database
        _check_faulty("eacces", task_id, err, str(store))
    finally:
        if (base / "store").is_dir():
            os.chmod(base / "store", 0o700)
        shutil.rmtree(base, ignore_errors=True)
