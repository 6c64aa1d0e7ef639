"""A remote output_uri whose backend needs folders (fsspec's local://, like sftp or smb) must work as
given: autolog creates what it writes into, as it does for local paths."""
from __future__ import annotations

import torch

from autolog import Task
from pipeline_helpers import assert_stored_tensor, output_snapshots, tensor


def test_fresh_local_url_output_uri_stores_snapshots(tmp_path, work):
    uri = f"local://{tmp_path / 'fresh-remote'}"  # no folder yet, no fsspec auto_mkdir
    task = Task.init(project_name="pipeline", task_name="fresh remote", output_uri=uri)
    torch.save(tensor(1), work / "ckpt.pt")
    task.close()

    (snap,) = output_snapshots(task, "ckpt.pt")
    assert_stored_tensor(snap, tensor(1))
