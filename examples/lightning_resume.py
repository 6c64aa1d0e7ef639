"""Resume the run of lightning_train.py from its last.ckpt for one more epoch, as a new task.

trainer.fit(ckpt_path=...) is recorded as this task's input model, linked by content to the training
task and to the snapshot that holds those exact bytes; the checkpoints this run writes (into --out)
are its own output models.

    python examples/lightning_resume.py [--from runs/lightning] [--epochs 4] [--out runs/lightning-resumed]
"""
from __future__ import annotations

import argparse
import os

from autolog import Task
from autolog.storage import file_digest
from lightning_train import Regressor, loader, make_trainer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--from", dest="source", default="runs/lightning", help="the --out of lightning_train.py")
    parser.add_argument("--epochs", type=int, default=4, help="total epochs, the resumed ones included")
    parser.add_argument("--out", default="runs/lightning-resumed")
    args = parser.parse_args()

    task = Task.init(project_name="lightning", task_name="resume", output_uri=True, tags=["example"])
    last = os.path.join(args.source, "last.ckpt")
    if not os.path.exists(last):
        raise SystemExit(f"no {last}: run examples/lightning_train.py --out {args.source} first")
    resumed_bytes = file_digest(last)  # the content identity autolog matched the load by

    trainer, checkpoint = make_trainer(args.epochs, args.out, top_k=1)
    trainer.fit(Regressor(), loader(256, seed=0, shuffle=True), loader(64, seed=1), ckpt_path=last)
    print(f"resumed {last} up to epoch {trainer.current_epoch} (global step {trainer.global_step}); "
          f"best now {checkpoint.best_model_path}")

    [resumed] = task.models["input"]
    producer = Task.get_task(task_id=resumed.task)
    snapshot = next(s for s in resumed.snapshots if s.digest == resumed_bytes)
    print(f"resumed from model {resumed.name!r} ({resumed.id[:8]}): snapshot {snapshot.seq} of "
          f"{len(resumed.snapshots)} (global step {snapshot.iteration}), "
          f"written by task {producer.project}/{producer.name} {producer.id}")
    task.close()
    print(f"\nsee both ends: autolog task show {task.id[:8]}   /   autolog model show {resumed.id[:8]}")


if __name__ == "__main__":
    main()
