"""Builds the store the browser tests look at, with the public SDK as a user's scripts would: run as
`python chain_store.py STAGE WORKDIR` in a fresh interpreter per stage (AUTOLOG_HOME from the
environment), it prints one JSON line of what it made, the sha256 and the BLAKE3 digest of each weights
file computed here with hashlib and blake3 (not by autolog), so a test can check what the pages show
against it.

    pretrain  -> ui-chain/pretrain: two snapshots of model "pretrained" (OutputModel.update_weights)
    finetune  -> ui-chain/finetune: loads pretrained's newest snapshot (torch.load of its local copy),
                 reports scalars and uploads an image, a DataFrame and a dict; three snapshots of "finetuned",
                 the first with its sha256 computed (Model.sha256: the pages show it beside the digest)
    evaluate  -> ui-chain/evaluate: loads a COPY of finetuned's last file (lineage by content only)
    other     -> ui-other/unrelated run: a task in another project, for the filters
    wide N    -> ui-wide: a "base" task and model, and N tasks that each connect it as input model and save
                 a model of their own (2N + 2 nodes in one lineage graph; paths recorded, no copies)
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import shutil
import sys
from pathlib import Path

import torch
from blake3 import blake3

from autolog import InputModel, Model, OutputModel, Task


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _digest(path: Path) -> str:
    """The snapshot identity autolog should record for this file ("blake3:<hex>")."""
    return "blake3:" + blake3(path.read_bytes()).hexdigest()


def _write_weights(model: torch.nn.Module, path: Path) -> str:
    """torch.save into memory, then a plain file write: only OutputModel.update_weights records it."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())
    return _sha256(path)


def pretrain(work: Path) -> dict:
    task = Task.init(project_name="ui-chain", task_name="pretrain", output_uri=True, tags=["chain", "stage-1"])
    task.connect({"lr": 0.1, "epochs": 2}, name="hyperparameters")
    torch.manual_seed(0)
    net = torch.nn.Linear(8, 4)
    output = OutputModel(task=task, name="pretrained", framework="PyTorch")
    shas, digests = [], []
    for epoch in (1, 2):
        with torch.no_grad():
            net.weight.add_(0.01 * epoch)
        shas.append(_write_weights(net, work / "pretrain.pt"))
        digests.append(_digest(work / "pretrain.pt"))
        output.update_weights(weights_filename=str(work / "pretrain.pt"), iteration=epoch)
        task.get_logger().report_scalar("loss", "train", 1.0 / epoch, iteration=epoch)
    task.close()
    return {"task": task.id, "model": output.id, "shas": shas, "digests": digests}


def finetune(work: Path, pretrained_model: str) -> dict:
    task = Task.init(project_name="ui-chain", task_name="finetune", output_uri=True, tags=["chain", "stage-2"])
    task.connect({"lr": 0.01, "epochs": 3, "freeze": "encoder"}, name="hyperparameters")
    weights = InputModel(pretrained_model).get_local_copy()
    net = torch.nn.Linear(8, 4)
    net.load_state_dict(torch.load(weights))  # captured: the load is linked to pretrained's snapshot by content
    logger = task.get_logger()
    for step in range(60):
        logger.report_scalar("loss", "train", 2.0 * math.exp(-step / 15) + 0.05, iteration=step)
        if step % 10 == 0:
            logger.report_scalar("loss", "validation", 2.2 * math.exp(-step / 18) + 0.1, iteration=step)
    for epoch, accuracy in enumerate((0.61, 0.78, 0.86), start=1):
        logger.report_scalar("accuracy", "validation", accuracy, iteration=epoch)
    logger.report_single_value("best accuracy", 0.86)

    from PIL import Image
    import pandas as pd

    image = Image.new("RGB", (48, 32))
    image.putdata([(x * 5, y * 8, 128) for y in range(32) for x in range(48)])
    task.upload_artifact("sample image", image)
    task.upload_artifact("per-class scores", pd.DataFrame({"label": ["cat", "dog", "bird"], "precision": [0.9, 0.8, 0.7],
                                                           "recall": [0.85, 0.75, 0.65]}))
    task.upload_artifact("label map", {"cat": 0, "dog": 1, "bird": 2})

    output = OutputModel(task=task, name="finetuned", framework="PyTorch")
    shas, digests = [], []
    for epoch in (1, 2, 3):
        with torch.no_grad():
            net.bias.add_(0.1)
        shas.append(_write_weights(net, work / "finetune" / "finetuned.pt"))
        digests.append(_digest(work / "finetune" / "finetuned.pt"))
        output.update_weights(weights_filename=str(work / "finetune" / "finetuned.pt"), iteration=epoch * 10)
    task.close()
    assert Model(output.id).sha256(version=1) == shas[0]  # kept in the row: the pages show it
    return {"task": task.id, "model": output.id, "shas": shas, "digests": digests}


def evaluate(work: Path) -> dict:
    copy = work / "elsewhere" / "copy-of-finetuned.pt"
    copy.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(work / "finetune" / "finetuned.pt", copy)  # another path, same bytes
    task = Task.init(project_name="ui-chain", task_name="evaluate", tags=["chain", "stage-3"])
    net = torch.nn.Linear(8, 4)
    net.load_state_dict(torch.load(copy))  # linked to finetuned's last snapshot by its content digest
    task.get_logger().report_single_value("test accuracy", 0.84)
    task.close()
    return {"task": task.id, "copy_sha": _sha256(copy)}


def other() -> dict:
    task = Task.init(project_name="ui-other", task_name="unrelated run", tags=["other"])
    task.close()
    return {"task": task.id}


def wide(work: Path, count: int) -> dict:
    weights = work / "wide.bin"
    made = {}
    for i in range(count + 1):
        task = Task.init(project_name="ui-wide", task_name="base" if i == 0 else f"variant {i:03d}")
        if i:
            InputModel(made["model"]).connect(task)
        weights.write_bytes(b"weights of %d" % i)
        model = OutputModel(task=task, name="base model" if i == 0 else f"variant model {i:03d}")
        model.update_weights(weights_filename=str(weights))
        task.close()
        made = made or {"task": task.id, "model": model.id}
    return made


def main() -> None:
    stage, work = sys.argv[1], Path(sys.argv[2])
    if stage == "pretrain":
        made = pretrain(work)
    elif stage == "finetune":
        made = finetune(work, sys.argv[3])
    elif stage == "evaluate":
        made = evaluate(work)
    elif stage == "wide":
        made = wide(work, int(sys.argv[3]))
    else:
        made = other()
    print(json.dumps(made))


if __name__ == "__main__":
    main()
