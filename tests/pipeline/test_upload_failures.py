"""Point 5: a storage outage. Uploads are retried; when every attempt fails the snapshot stays
`pending` with its staged copy kept (the reason says where, and to run `autolog sync`), and a later
`autolog sync` stores it once the storage works again."""
from __future__ import annotations

import os

import pytest
import torch

from autolog import Task
from pipeline_helpers import assert_stored_tensor, cli_json, files_under, output_snapshots, tensor


def test_upload_failing_twice_then_succeeding_is_stored(remote_store, work, put, fast_retries):
    put.fail_next = 2
    task = Task.init(project_name="pipeline", task_name="flaky store", output_uri=remote_store)
    fast_retries(task)
    torch.save(tensor(1), work / "ckpt.pt")
    task.close()

    (snap,) = output_snapshots(task, "ckpt.pt")
    assert len(put.calls) == 3 and len(set(put.calls)) == 1, put.calls  # two failures, one success
    assert snap.reason is None
    assert_stored_tensor(snap, tensor(1))
    assert task.status == "completed"


def test_upload_failing_every_time_stays_pending_until_autolog_sync(remote_store, work, put, config, fast_retries,
                                                                    staging_root, env, monkeypatch):
    monkeypatch.delenv("AUTOLOG_STRICT")  # an outage is reported as a warning, not raised
    config(pipeline={"upload_retries": 3})
    put.fail_all = True
    task = Task.init(project_name="pipeline", task_name="storage down", output_uri=remote_store)
    fast_retries(task)
    torch.save(tensor(1), work / "ckpt.pt")
    task.close()

    assert len(put.calls) == 3, put.calls  # upload_retries attempts
    (snap,) = output_snapshots(task, "ckpt.pt")
    assert snap.status == "pending", (snap.status, snap.reason)
    assert snap.stage_uri and os.path.isdir(snap.stage_uri), "the staged copy was not kept"
    assert snap.stage_uri in snap.reason
    assert "autolog sync" in snap.reason
    assert [p.name for p in files_under(snap.stage_uri)] == ["ckpt.pt"]

    # The storage is back (the CLI runs in a fresh process, with no failing put).
    report = cli_json(env, "sync")
    assert [s["id"] for s in report["stored"]] == [snap.id]
    assert report["failed"] == []

    (snap,) = output_snapshots(task, "ckpt.pt")
    assert_stored_tensor(snap, tensor(1))
    assert snap.stage_uri is None
    assert files_under(staging_root) == []


def test_an_artifact_whose_upload_failed_leaves_no_staged_copy(remote_store, staging_root, put, work):
    """upload_artifact raises the storage's error; unlike a snapshot's, an artifact's staged copy has
    no journal row for `autolog sync` to resume from, so keeping it only filled the cache."""
    data = work / "weights.bin"
    data.write_bytes(b"x" * 100_000)
    task = Task.init(project_name="pipeline", task_name="artifact outage", output_uri=remote_store)
    put.fail_all = True
    with pytest.raises(OSError, match="simulated storage outage"):
        task.upload_artifact("weights", data)
    put.fail_all = False
    task.close()
    assert files_under(staging_root) == []
