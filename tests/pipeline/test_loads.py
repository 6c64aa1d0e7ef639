"""Point 11: a captured load costs the training thread no hashing: the lineage lookup (which reads the
whole file) runs in the pipeline's thread."""
from __future__ import annotations

import threading

import torch

from autolog import Task
from autolog.snapshots import identity
from pipeline_helpers import tensor


def test_loaded_file_is_hashed_off_the_training_thread(local_store, work, monkeypatch):
    weights = work / "pretrained.pt"
    torch.save(tensor(3), weights)  # before Task.init: a file no task knows
    hashed_in: list[threading.Thread] = []
    real_fd_digest = identity.fd_digest

    def spy(fd: int, *args, **kwargs) -> str:
        hashed_in.append(threading.current_thread())
        return real_fd_digest(fd, *args, **kwargs)

    monkeypatch.setattr(identity, "fd_digest", spy)
    task = Task.init(project_name="pipeline", task_name="loads", output_uri=local_store)
    loaded = torch.load(weights, weights_only=True)
    assert torch.equal(loaded, tensor(3))

    inputs = task.models["input"]
    assert [m.source_path for m in inputs] == [str(weights)]
    assert inputs[0].origin == "imported"
    assert hashed_in, "the loaded file was never hashed"
    assert threading.main_thread() not in hashed_in, "the load was hashed in the training thread"
    task.close()
