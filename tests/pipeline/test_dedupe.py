"""Point 10: identical bytes are stored once per output_uri, while every save still gets its own
snapshot row, and every one of them can be fetched."""
from __future__ import annotations

import torch

from autolog import Task
from pipeline_helpers import assert_stored_tensor, files_under, object_path, tensor


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
