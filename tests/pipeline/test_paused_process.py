"""A pause of the whole process is not a stall of its background work.

While nothing in the process runs (a full garbage collection of a large heap, seconds on a loaded machine
once TensorFlow or torch is imported; a C call holding the GIL; Ctrl-Z), the workers make no progress
and neither can the wait watching them. Such a pause must not be counted against stall_timeout: close()
after it still waits for snapshots whose work goes on, whether the pause came while it waited or just
before. The pause here is the real thing: the child process is stopped (SIGSTOP) and continued.
"""
from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from pipeline_helpers import WAIT

STALL_TIMEOUT = 1.0
PAUSE = 3 * STALL_TIMEOUT

CHILD = """
import json
import os
import sys
import time
from pathlib import Path

import torch

import pipeline_helpers as h
from autolog import Task
from autolog.snapshots import steps
from autolog.snapshots.pipeline import SnapshotPipeline, wait_for_journal

output_uri, work, go_on = sys.argv[1:4]
steps.read_inline = lambda job, limit: False  # through the stager and the hasher, like a big snapshot
hash_staged = steps.hash_staged


def hash_once_told(job, beat, handoff=None):
    # Hashing a big file: work in progress, no chunk done yet. It goes on once the parent says so (after
    # the pause), so it is still in progress when close() looks at it.
    print("hashing", flush=True)
    h.wait_until(lambda: Path(go_on).exists(), "the parent's go-ahead")
    return hash_staged(job, beat=beat, handoff=handoff)


steps.hash_staged = hash_once_told
flush = SnapshotPipeline.flush


def announced_flush(pipeline, *args, **kwargs):
    print("close waits", flush=True)
    return flush(pipeline, *args, **kwargs)


SnapshotPipeline.flush = announced_flush
task = Task.init(project_name="pause", task_name="stopped", output_uri=output_uri)
torch.save(h.tensor(1), os.path.join(work, "model.pt"))
wait_for_journal()  # its row's beat is the work's last before the pause
print("saved", flush=True)
h.wait_until(lambda: Path(go_on + ".close").exists(), "the parent's go-ahead to close")  # may be stopped here
task.close()
(snap,) = task.models["output"]["model.pt"].snapshots
print(json.dumps({"status": snap.status, "reason": snap.reason}), flush=True)
"""


def _read_until(stream, proc, *texts: str) -> None:
    """Read the child's stream until each of texts was printed (in any order)."""
    deadline = time.monotonic() + WAIT
    seen = ""
    while not all(text in seen for text in texts):
        line = stream.readline()
        if not line and proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"the child never printed all of {texts}; it printed:\n{seen}")
        seen += line


def _pause(proc) -> None:
    proc.send_signal(signal.SIGSTOP)
    time.sleep(PAUSE)
    proc.send_signal(signal.SIGCONT)


@pytest.mark.parametrize("paused", ["while close waits", "before close"])
def test_a_paused_process_is_not_taken_for_stalled_work(paused: str, spawn, config, local_store, work,
                                                         tmp_path: Path):
    config(pipeline={"stall_timeout": STALL_TIMEOUT})
    go_on = tmp_path / "go-on"
    proc = spawn(CHILD, local_store, work, go_on)
    _read_until(proc.stdout, proc, "hashing", "saved")
    if paused == "before close":
        _pause(proc)
    Path(f"{go_on}.close").write_text("")
    _read_until(proc.stdout, proc, "close waits")  # for the hash
    if paused == "while close waits":
        _pause(proc)
    go_on.write_text("")
    out, err = proc.communicate(timeout=WAIT)

    assert proc.returncode == 0, err
    outcome = json.loads(out.strip().splitlines()[-1])
    assert outcome == {"status": "stored", "reason": None}, (outcome, err)
    assert "made no progress" not in err, err
