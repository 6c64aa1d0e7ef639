"""On a machine with a CUDA GPU: captured saves and loads of CUDA tensors, checked end to end.

    python bench/gpu_check.py        # exits 1 on the first check that fails
    python bench/gpu_check.py --cpu  # the same checks on the CPU (to try the script without a GPU)

Not part of the test suite (CI has no GPU). Each check runs in a fresh interpreter with its own
AUTOLOG_HOME: a plain torch.save of a CUDA state dict is stored byte for byte; a torch.load with
map_location="cuda" in another task links to it; a Lightning Trainer on the GPU has its checkpoints
captured, and resuming from one links to the run that wrote it.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CPU = "--cpu" in sys.argv

SAVE = """
import hashlib, json, sys, torch
from autolog import Task
task = Task.init(project_name="gpu", task_name="save", output_uri=sys.argv[2])
model = torch.nn.Linear(512, 512).cuda().to(torch.bfloat16)
torch.save(model.state_dict(), sys.argv[1])
task.close()
(snap,) = task.models["output"][-1].snapshots
print(json.dumps({"task": task.id, "sha256": task.models["output"][-1].sha256(), "uri": snap.uri, "status": snap.status}))
"""

LOAD = """
import json, sys, torch
from autolog import Task
task = Task.init(project_name="gpu", task_name="load")
state = torch.load(sys.argv[1], map_location="cuda")
assert next(iter(state.values())).is_cuda
task.close()
(model,) = task.models["input"]
print(json.dumps({"producer_task": model.task}))
"""

LIGHTNING = """
import json, sys, torch
import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from autolog import Task

class Net(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(32, 1)
    def training_step(self, batch, _):
        x, y = batch
        return torch.nn.functional.mse_loss(self.layer(x), y)
    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)

def data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 32, generator=g)
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, x.sum(1, keepdim=True)), batch_size=32)

mode, folder = sys.argv[1], sys.argv[2]
task = Task.init(project_name="gpu", task_name="lightning-" + mode)
ckpt = ModelCheckpoint(dirpath=folder, save_last=True, every_n_epochs=1, save_top_k=-1)
trainer = L.Trainer(accelerator="gpu", devices=1, max_epochs=2 if mode == "fit" else 3, callbacks=[ckpt],
                    enable_progress_bar=False, logger=False)
trainer.fit(Net(), data(), ckpt_path=folder + "/last.ckpt" if mode == "resume" else None)
task.close()
print(json.dumps({"task": task.id,
                  "output": sorted((m.name, len(m.snapshots)) for m in task.models["output"]),
                  "input_tasks": [m.task for m in task.models["input"]]}))
"""


def run(code: str, home: str, *args: str) -> dict:
    if CPU:
        code = code.replace(".cuda()", "").replace('"cuda"', '"cpu"').replace('"gpu"', '"cpu"').replace(
            "assert next(iter(state.values())).is_cuda", "")
    env = dict(os.environ, AUTOLOG_HOME=home, AUTOLOG_STRICT="1",
               PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], env=env, capture_output=True,
                          text=True, timeout=300)
    if proc.returncode != 0:
        raise SystemExit(f"FAILED ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def check(what: str, ok: bool, detail: object) -> None:
    print(f"{'ok  ' if ok else 'FAIL'} {what}: {detail}", flush=True)
    if not ok:
        raise SystemExit(1)


def main() -> None:
    import torch

    if not CPU:
        check("CUDA is available", torch.cuda.is_available(), torch.cuda.is_available() and torch.cuda.get_device_name())
    with tempfile.TemporaryDirectory(prefix="autolog-gpu-home-") as home, \
            tempfile.TemporaryDirectory(prefix="autolog-gpu-") as work:
        checks(home, work)
    print("all GPU checks passed")


def checks(home: str, work: str) -> None:
    path = os.path.join(work, "model.pt")
    saved = run(SAVE, home, path, os.path.join(work, "store"))
    on_disk = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    check("a CUDA state dict's save is captured", saved["status"] == "stored", saved)
    check("the stored copy is the saved file, byte for byte",
          hashlib.sha256(Path(saved["uri"]).read_bytes()).hexdigest() == on_disk == saved["sha256"], on_disk)
    loaded = run(LOAD, home, path)
    check("torch.load(map_location='cuda') links to the task that saved it", loaded["producer_task"] == saved["task"],
          loaded)

    folder = os.path.join(work, "ckpts")
    fit = run(LIGHTNING, home, "fit", folder)
    names = dict(fit["output"])
    check("Lightning on the GPU: every checkpoint captured", names.get("last.ckpt", 0) >= 2 and len(names) >= 3, fit)
    resumed = run(LIGHTNING, home, "resume", folder)
    check("resuming from last.ckpt links to the run that wrote it", fit["task"] in resumed["input_tasks"], resumed)


if __name__ == "__main__":
    main()
