"""Lightning checkpoints written straight to S3 (`ModelCheckpoint(dirpath="s3://...")`, Lightning's fsspec):
each is a snapshot recorded at its URL with the object's digest, never copied into the output_uri, and
a resume from that URL in another task links to it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from frameworks import require_framework

from autolog.storage.hashing import bytes_digest

REPO = Path(__file__).resolve().parents[2]

SCRIPT = '''
import json, os, sys
import torch
import lightning as L
from torch.utils.data import DataLoader, TensorDataset
from autolog import Task

phase, bucket, store = sys.argv[1:4]

class Tiny(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Linear(4, 1)
    def training_step(self, batch, _):
        x, y = batch
        return torch.nn.functional.mse_loss(self.net(x), y)
    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

torch.manual_seed(0)
data = DataLoader(TensorDataset(torch.randn(16, 4), torch.randn(16, 1)), batch_size=8)
task = Task.init(project_name="lightning-s3", task_name=phase, output_uri=store)
checkpoints = L.pytorch.callbacks.ModelCheckpoint(dirpath=f"{bucket}/ckpts/{phase}", save_last=True, save_top_k=-1)
trainer = L.Trainer(max_epochs=2 if phase == "train" else 3, logger=False, enable_progress_bar=False,
                    enable_model_summary=False, callbacks=[checkpoints])
trainer.fit(Tiny(), data, ckpt_path=None if phase == "train" else f"{bucket}/ckpts/train/last.ckpt")
task.close()
models = {m.name: {"id": m.id, "task": m.task, "snapshots": [
    {"seq": s.seq, "status": s.status, "iteration": s.iteration, "uri": s.uri, "digest": s.digest} for s in m.snapshots]}
    for m in task.models["output"]}
inputs = [{"id": m.id, "task": m.task, "name": m.name} for m in task.models["input"]]
loads = [{"path": ld.path, "snapshot_id": ld.snapshot_id} for ld in task._ctx.store.loads_by_task(task.id)]
print("REPORT " + json.dumps({"task": task.id, "models": models, "inputs": inputs, "loads": loads}))
'''


def run(phase: str, bucket: str, store: Path, workdir: Path, env: dict) -> dict:
    proc = subprocess.run([sys.executable, "-c", SCRIPT, phase, bucket, str(store)], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{phase} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    [line] = [ln for ln in proc.stdout.splitlines() if ln.startswith("REPORT ")]
    return json.loads(line[len("REPORT "):])


def object_digest(url: str) -> str:
    import fsspec

    with fsspec.open(url, "rb") as f:
        return bytes_digest(f.read())


@pytest.mark.s3
def test_checkpoints_written_to_s3_are_recorded_where_they_are_and_a_resume_links_to_them(
        s3_endpoint, tmp_path, child_env):
    require_framework("lightning")
    from services import new_bucket

    bucket = f"s3://{new_bucket(s3_endpoint)}"
    store, work = tmp_path / "store", tmp_path / "work"
    work.mkdir()
    env = child_env()
    train = run("train", bucket, store, work, env)

    models = train["models"]
    assert set(models) == {"epoch=0-step=2.ckpt", "epoch=1-step=4.ckpt", "last.ckpt"}
    last = models["last.ckpt"]["snapshots"]
    assert [(s["seq"], s["status"], s["iteration"]) for s in last] == [(1, "stored", 2), (2, "stored", 4)]
    for name, model in models.items():
        for snap in model["snapshots"]:
            assert snap["uri"] == f"{bucket}/ckpts/train/{name}"
    # Each snapshot hashes what that save wrote: the epoch files are still there as written.
    for name in ("epoch=0-step=2.ckpt", "epoch=1-step=4.ckpt"):
        assert models[name]["snapshots"][0]["digest"] == object_digest(f"{bucket}/ckpts/train/{name}")
    assert last[-1]["digest"] == object_digest(f"{bucket}/ckpts/train/last.ckpt")
    assert not store.exists() or not any(p.is_file() for p in store.rglob("*")), "a remote checkpoint was copied"

    resume = run("resume", bucket, store, work, env)
    assert [(i["name"], i["task"], i["id"]) for i in resume["inputs"]] == [
        ("last.ckpt", train["task"], models["last.ckpt"]["id"])]
    [load] = resume["loads"]
    assert load["path"] == f"{bucket}/ckpts/train/last.ckpt"
    resumed_last = resume["models"]["last.ckpt"]["snapshots"]
    assert [s["iteration"] for s in resumed_last] == [6]
