"""Points 7 and 8: the end of a process flushes pending snapshots. An unhandled exception or SIGTERM
still stores everything (the task ends `failed`; SIGTERM exits 143); a store that never answers does
not keep the process alive past flush_timeout, and the warning names what is left and `autolog sync`."""
from __future__ import annotations

import re
import signal
import subprocess

import pytest

from autolog import Task
from autolog.snapshots.progress import FlushProgress
from pipeline_helpers import assert_stored_tensor, cli_json, snapshots_by_task, tensor

SLOW_UPLOADS_THEN_DIE = """
import atexit
import os
import signal
import sys
import time

import torch

import pipeline_helpers as h
from autolog import Task

output_uri, work, how = sys.argv[1:4]
put = h.install_put_control()
put.block()  # no upload finishes before the process starts exiting...
put.delay = 0.5  # ...and each one is slow
task = Task.init(project_name="pipeline", task_name=how, output_uri=output_uri)
atexit.register(put.release)  # registered after Task.init, so it runs before autolog's exit flush
for name in ("a.pt", "b.pt"):
    for step in range(2):
        torch.save(h.tensor(step), os.path.join(work, name))
print("pending at exit:", len(task._runtime.pipeline.pending()), flush=True)
if how == "raise":
    raise RuntimeError("training diverged")
os.kill(os.getpid(), signal.SIGTERM)
while True:
    time.sleep(0.1)
"""

STORE_NEVER_ANSWERS = """
import os
import sys

import torch

import pipeline_helpers as h
from autolog import Task

output_uri, work = sys.argv[1:3]
h.install_put_control().block()  # every upload hangs forever
task = Task.init(project_name="pipeline", task_name="hung store", output_uri=output_uri)
torch.save(h.tensor(0), os.path.join(work, "a.pt"))
torch.save(h.tensor(1), os.path.join(work, "b.pt"))
# Journaled before the flush starts (on a loaded machine opening the database can take over the 1 s
# flush_timeout): this test is about the uploads that never end, named as journaled.
h.wait_until(lambda: sum(len(m.snapshots) for m in task.models["output"]) == 2, "both saves journaled")
print("saved", flush=True)
"""


SLOW_CLOSE = """
import os
import sys
import time

import torch

import pipeline_helpers as h
from autolog import Task

output_uri, work, delay = sys.argv[1], sys.argv[2], float(sys.argv[3])
h.install_put_control().delay = delay
task = Task.init(project_name="pipeline", task_name="progress", output_uri=output_uri)
torch.save(h.tensor(0), os.path.join(work, "a.pt"))
torch.save(h.tensor(1), os.path.join(work, "b.pt"))
start = time.monotonic()
task.close()
print(f"close took {time.monotonic() - start:.3f} s", flush=True)
"""


@pytest.mark.parametrize("delay, shows_progress", [(1.5, True), (0.0, False)])
def test_close_reports_progress_in_lines_when_stderr_is_not_a_terminal(delay, shows_progress, spawn,
                                                                       remote_store, work):
    proc = spawn(SLOW_CLOSE, remote_store, work, str(delay))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    if shows_progress:  # one line when waiting starts, one when it ends; no bar redraws in a log
        lines = [line for line in err.splitlines() if line.startswith("autolog:")]
        assert len(lines) == 2, err
        assert lines[0].startswith("autolog: storing snapshots: 0/2 done"), err
        assert lines[1].startswith("autolog: storing snapshots: all 2 done in"), err
        assert "\r" not in err, repr(err)
    else:  # a normal close writes nothing at all...
        (close_seconds,) = [float(line.split()[2]) for line in out.splitlines() if line.startswith("close took ")]
        if close_seconds < FlushProgress.DELAY:
            assert err == "", err
        else:  # ...unless a loaded machine made it wait past the delay: then the two progress lines, nothing else
            lines = err.splitlines()
            assert len(lines) == 2 and re.match(r"autolog: storing snapshots: [0-2]/2 done", lines[0]) \
                and lines[1].startswith("autolog: storing snapshots: all 2 done in"), (close_seconds, err)


def test_close_shows_a_progress_bar_on_a_terminal(env, remote_store, work, tmp_path):
    import fcntl
    import os
    import pty
    import struct
    import sys
    import termios

    script = tmp_path / "slow_close.py"
    script.write_text(SLOW_CLOSE)
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # a pty starts 0 columns wide
    proc = subprocess.Popen([sys.executable, str(script), remote_store, str(work), "1.5"], env=env,
                            stdout=subprocess.PIPE, stderr=follower, text=True)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # EIO: the child closed its end
            break
        if not chunk:
            break
        chunks.append(chunk)
    proc.wait(timeout=120)
    os.close(leader)
    err = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 0, err
    assert "autolog: storing snapshots" in err and "2/2 snapshots" in err and "\r" in err, err


def _the_task(name: str) -> Task:
    (task,) = Task.get_tasks(project_name="pipeline", task_name=name)
    return task


@pytest.mark.parametrize("how", ["raise", "sigterm"])
def test_exit_after_unhandled_exception_or_sigterm_stores_everything(how, spawn, remote_store, work):
    proc = spawn(SLOW_UPLOADS_THEN_DIE, remote_store, work, how)
    out, err = proc.communicate(timeout=120)

    assert "pending at exit: 4" in out, (out, err)  # the uploads really were left to the exit flush
    if how == "raise":
        assert proc.returncode == 1, err
        assert "RuntimeError: training diverged" in err
    else:
        assert proc.returncode == 128 + signal.SIGTERM, (proc.returncode, err)
    task = _the_task(how)
    assert task.status == "failed"
    message = task._record.status_message
    assert ("SIGTERM" in message) if how == "sigterm" else ("training diverged" in message), message
    snaps = snapshots_by_task(task.id)
    assert sorted(snaps) == ["a.pt", "b.pt"]
    for model_snaps in snaps.values():
        assert len(model_snaps) == 2
        for snap in model_snaps:
            assert_stored_tensor(snap, tensor(snap.seq - 1))


def test_flush_timeout_lets_the_process_exit_and_names_what_is_left(spawn, remote_store, work, config, env):
    config(pipeline={"flush_timeout": 1})
    proc = spawn(STORE_NEVER_ANSWERS, remote_store, work)
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail("the process did not exit although flush_timeout = 1")

    assert proc.returncode == 0, err
    assert "saved" in out
    warning = next((line for line in err.splitlines() if "not stored yet" in line), None)
    assert warning is not None, err
    assert "2 snapshot(s)" in warning and "a.pt #1" in warning and "b.pt #1" in warning, warning
    assert "flush_timeout" in warning, warning
    assert "autolog sync" in warning

    task = _the_task("hung store")
    snaps = snapshots_by_task(task.id)
    assert [s.status for model_snaps in snaps.values() for s in model_snaps] == ["pending", "pending"]
    cli_json(env, "sync")  # the store answers again (a fresh process): sync finishes them
    for name, step in (("a.pt", 0), ("b.pt", 1)):
        (snap,) = snapshots_by_task(task.id)[name]
        assert_stored_tensor(snap, tensor(step))
