"""Point 9: retention. keep_last (Task.init or config) deletes all but the newest N stored snapshots of a
model: rows stay as `deleted` with the reason, their objects go, unless a kept (deduplicated) snapshot
still uses the object. `autolog gc` does the same on demand, and --dry-run only reports."""
from __future__ import annotations

import threading

import pytest
import torch

from autolog import Model, Task
from autolog.snapshots import retention, steps
from pipeline_helpers import (WAIT, assert_stored_tensor, cli_json, files_under, object_path, output_snapshots,
                              snapshots_by_task, tensor, wait_until)


def _assert_deleted(snap, keep_last: int) -> None:
    assert snap.status == "deleted", (snap.seq, snap.status)
    assert snap.reason == f"retention: keep_last={keep_last}"


def _assert_fetchable(task, snap, expected) -> None:
    model = task.models["output"]["ckpt.pt"]
    path = model.get_local_copy(version=snap.seq)
    assert torch.equal(torch.load(path, weights_only=True), expected)


@pytest.mark.parametrize("setting", ["Task.init", "config"])
def test_keep_last_deletes_older_snapshots_and_their_objects(setting, local_store, work, config):
    if setting == "config":
        config(retention={"keep_last": 2})
    kwargs = {"keep_last": 2} if setting == "Task.init" else {}
    task = Task.init(project_name="pipeline", task_name="retention", output_uri=local_store, **kwargs)
    for step in range(5):
        torch.save(tensor(step), work / "ckpt.pt")
    task.close()

    snaps = output_snapshots(task, "ckpt.pt")
    assert [s.seq for s in snaps] == [1, 2, 3, 4, 5]
    for snap in snaps[:3]:
        _assert_deleted(snap, 2)
        assert snap.uri and not object_path(snap.uri).exists(), f"object of deleted snapshot {snap.seq} still there"
    for snap in snaps[3:]:
        assert_stored_tensor(snap, tensor(snap.seq - 1))
        _assert_fetchable(task, snap, tensor(snap.seq - 1))
    assert set(files_under(local_store)) == {object_path(s.uri) for s in snaps[3:]}


def test_object_shared_with_a_kept_deduplicated_snapshot_is_not_deleted(local_store, work):
    """Saves X, Y, X, Z with keep_last=2: snapshot 3 reuses snapshot 1's object; deleting 1 keeps it."""
    task = Task.init(project_name="pipeline", task_name="retention dedupe", output_uri=local_store, keep_last=2)
    for step in (0, 1, 0, 2):
        torch.save(tensor(step), work / "ckpt.pt")
    task.close()

    x1, y2, x3, z4 = output_snapshots(task, "ckpt.pt")
    assert x3.uri == x1.uri, "precondition: the repeated content was deduplicated"
    _assert_deleted(x1, 2)
    _assert_deleted(y2, 2)
    assert not object_path(y2.uri).exists()
    assert_stored_tensor(x3, tensor(0))
    _assert_fetchable(task, x3, tensor(0))
    assert_stored_tensor(z4, tensor(2))


def test_object_claimed_by_a_deduplicated_upload_in_flight_is_not_deleted(remote_store, work, monkeypatch):
    """Remote uploads run in parallel: snapshot 3 (same bytes as 1) finds 1's object, and before it is
    recorded, snapshot 4's upload finishes and retention deletes snapshot 1. The object must survive."""
    deduplicating, pruned = threading.Event(), threading.Event()
    real_finder, real_prune = steps.stored_copy_finder, retention.prune

    def finder(*args, **kwargs):
        find = real_finder(*args, **kwargs)

        def find_and_pause(digest):
            found = find(digest)
            if found is not None:  # snapshot 3 found snapshot 1's object; let retention run now
                deduplicating.set()
                pruned.wait(timeout=10)  # bounded: a fix that serialises the two must not deadlock here
            return found

        return find_and_pause

    def prune(ctx, model_id, keep_last, dry_run=False):
        victims = real_prune(ctx, model_id, keep_last, dry_run)
        if deduplicating.is_set():
            pruned.set()
        return victims

    monkeypatch.setattr(steps, "stored_copy_finder", finder)
    monkeypatch.setattr(retention, "prune", prune)
    task = Task.init(project_name="pipeline", task_name="retention race", output_uri=remote_store, keep_last=2)
    ckpt = work / "ckpt.pt"
    torch.save(tensor(0), ckpt)
    torch.save(tensor(1), ckpt)
    wait_until(lambda: [s.status for s in output_snapshots(task, "ckpt.pt")] == ["stored"] * 2, "1 and 2 stored")
    torch.save(tensor(0), ckpt)  # snapshot 3: the bytes of snapshot 1
    assert deduplicating.wait(WAIT), "snapshot 3 was not deduplicated against snapshot 1"
    torch.save(tensor(2), ckpt)  # snapshot 4: stored while 3 is between finding and recording
    task.close()

    x1, y2, x3, z4 = output_snapshots(task, "ckpt.pt")
    assert pruned.is_set()
    assert x3.status == "stored" and x3.uri == x1.uri
    assert object_path(x3.uri).exists(), "the object of kept snapshot 3 was deleted with snapshot 1"
    assert_stored_tensor(x3, tensor(0))
    assert_stored_tensor(z4, tensor(2))


def test_autolog_gc_dry_run_reports_and_gc_deletes(local_store, work, env):
    task = Task.init(project_name="pipeline", task_name="gc", output_uri=local_store)
    for step in range(3):
        torch.save(tensor(step), work / "ckpt.pt")
    task.close()
    before = output_snapshots(task, "ckpt.pt")
    model_id = task.models["output"]["ckpt.pt"].id
    assert [s.status for s in before] == ["stored"] * 3

    report = cli_json(env, "gc", "--keep-last", "1", "--dry-run")
    assert report["dry_run"] is True and report["keep_last"] == 1
    assert [s["seq"] for s in report["deleted"][model_id]] == [1, 2]
    assert output_snapshots(task, "ckpt.pt") == before, "--dry-run changed the records"
    assert all(object_path(s.uri).exists() for s in before), "--dry-run deleted objects"

    report = cli_json(env, "gc", "--keep-last", "1")
    assert report["dry_run"] is False
    assert [s["seq"] for s in report["deleted"][model_id]] == [1, 2]
    old1, old2, kept = output_snapshots(task, "ckpt.pt")
    for snap in (old1, old2):
        _assert_deleted(snap, 1)
        assert not object_path(snap.uri).exists()
    assert_stored_tensor(kept, tensor(2))
    assert Model(model_id).get_local_copy() == str(object_path(kept.uri))
    assert set(files_under(local_store)) == {object_path(kept.uri)}
    assert snapshots_by_task(task.id)["ckpt.pt"][-1].status == "stored"
