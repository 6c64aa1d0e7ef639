"""Point 10: identical bytes are stored once per output_uri, while every save still gets its own
snapshot row, and every one of them can be fetched."""
from __future__ import annotations

from pathlib import Path

import torch

from autolog import OutputModel, Task
from pipeline_helpers import assert_stored_tensor, files_under, object_path, output_snapshots, tensor


def test_identical_bytes_are_stored_once_with_a_snapshot_per_save(local_store, work):
    first, other = work / "ckpt.pt", work / "elsewhere" / "ckpt.pt"  # same name: torch writes identical bytes
    other.parent.mkdir()
    task = Task.init(project_name="pipeline", task_name="dedupe", output_uri=local_store)
    torch.save(tensor(5), first)
    torch.save(tensor(5), first)  # same path, same bytes
    torch.save(tensor(5), other)  # another path (another model), same bytes
    task.close()
    assert first.read_bytes() == other.read_bytes(), "precondition: the saves wrote identical bytes"

    models = {m.source_path: m for m in task.models["output"]}
    assert sorted(models) == sorted([str(first), str(other)])
    snaps = models[str(first)].snapshots + models[str(other)].snapshots
    assert [s.seq for s in snaps] == [1, 2, 1]
    assert len({s.id for s in snaps}) == 3
    assert len({s.digest for s in snaps}) == 1
    for snap in snaps:
        assert_stored_tensor(snap, tensor(5))
    assert len(files_under(local_store)) == 1, files_under(local_store)
    assert {object_path(s.uri) for s in snaps} == set(files_under(local_store))
    for model in models.values():
        for snap in model.snapshots:
            assert torch.equal(torch.load(model.get_local_copy(version=snap.seq), weights_only=True), tensor(5))


def test_a_save_is_never_deduplicated_onto_a_file_the_user_registered(local_store, work):
    """update_weights(register_uri=) records the user's own file, in place: theirs to overwrite. A
    captured save of the same bytes under the same output_uri gets a copy of its own (it pointed at
    the user's file, and read their next model once they overwrote it)."""
    users = Path(local_store) / "mine" / "ckpt.pt"
    users.parent.mkdir(parents=True)
    torch.save(tensor(7), users)  # before Task.init: not captured
    task = Task.init(project_name="pipeline", task_name="dedupe, registered", output_uri=local_store)
    OutputModel(task=task, name="registered").update_weights(register_uri=str(users))
    task.flush()  # the registered file's digest is recorded
    torch.save(tensor(7), work / "ckpt.pt")
    task.close()
    assert (work / "ckpt.pt").read_bytes() == users.read_bytes(), "precondition: the same bytes"

    (snap,) = output_snapshots(task, "ckpt.pt")
    users.write_bytes(b"the user's next model")
    assert object_path(snap.uri) != str(users)
    assert_stored_tensor(snap, tensor(7))



def test_a_save_deduplicated_onto_an_object_keeps_it_from_a_retention_run_meanwhile(local_store, work, monkeypatch):
    """The object is claimed (the pending row points at it) before it is checked: retention (an `autolog
    gc --keep-last 1`, another run's keep_last) keeps what any stored or pending row points at. Pruned
    between the check and the row, it was deleted, and the save recorded stored pointing at nothing."""
    from autolog.snapshots import retention, steps

    task = Task.init(project_name="pipeline", task_name="dedupe, retention", output_uri=local_store)
    first = work / "elsewhere" / "ckpt.pt"
    first.parent.mkdir()
    torch.save(tensor(1), first)  # bytes X
    task.flush()
    torch.save(tensor(2), first)  # its newest is Y now: X is retention's to prune
    task.flush()
    (model,) = task.models["output"]
    ctx, publish = task._runtime.ctx, steps.publish_local

    def publish_then_prune_elsewhere(ctx_, job, copies):
        publish(ctx_, job, copies)
        retention.prune(ctx, model.id, keep_last=1)

    monkeypatch.setattr(steps, "publish_local", publish_then_prune_elsewhere)
    torch.save(tensor(1), work / "ckpt.pt")  # bytes X again, another model: deduplicated onto X
    task.close()

    (saved,) = [m for m in task.models["output"] if m.source_path == str(work / "ckpt.pt")]
    (snap,) = saved.snapshots
    assert snap.status == "stored"
    assert_stored_tensor(snap, tensor(1))
