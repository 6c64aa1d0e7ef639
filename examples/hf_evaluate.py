"""Evaluate a checkpoint that hf_finetune.py saved; autolog links this run to the run and the snapshot
that produced it.

from_pretrained of a local folder is recorded as this task's input: the model and the tokenizer read
from one folder are one input, linked by content (the folder's files) to the snapshot of the step that
wrote them, in the fine-tuning task.

    python examples/hf_evaluate.py [--out runs/hf-sentiment] [--model runs/hf-sentiment/checkpoint-60]
"""
from __future__ import annotations

import argparse
import os

from transformers import AutoModelForSequenceClassification, AutoTokenizer
from transformers.trainer_utils import get_last_checkpoint

from autolog import Model, Task
from autolog.storage import file_digest
from hf_finetune import TEST, accuracy
from lineage_report import print_lineage


def snapshot_holding(model: Model, folder: str):
    """The snapshot of `model` autolog matched the folder to: the newest whose files are the folder's,
    else the newest whose files are all in it, unchanged (a final save_model() beside the metrics
    written into output_dir after it)."""
    on_disk = {entry.name: file_digest(entry.path) for entry in os.scandir(folder) if entry.is_file()}
    files = {s.seq: {f["name"]: f["digest"] for f in s.files} for s in model.snapshots}
    exact = [s for s in model.snapshots if files[s.seq] == on_disk]
    within = [s for s in model.snapshots if files[s.seq] and files[s.seq].items() <= on_disk.items()]
    return (exact or within or [None])[-1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="runs/hf-sentiment", help="the output_dir hf_finetune.py wrote")
    parser.add_argument("--model", help="the folder to load (default: the newest checkpoint-<step> in --out)")
    args = parser.parse_args()

    task = Task.init(project_name="hf-sentiment", task_name="evaluate")
    folder = args.model or get_last_checkpoint(args.out)
    model = AutoModelForSequenceClassification.from_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    print(f"{folder}: accuracy on held-out reviews {accuracy(model, tokenizer, TEST):.3f}\n")

    print_lineage(task)
    for loaded in task.models["input"]:
        snap = snapshot_holding(loaded, folder)
        if snap is not None and loaded.task:
            print(f"  {folder} is snapshot {snap.seq} of {loaded.name!r} (global step {snap.iteration}),"
                  f" saved by task {loaded.task}")
    task.close()
    print(f"\nsee both ends: autolog task show {task.id[:8]}")


if __name__ == "__main__":
    main()
