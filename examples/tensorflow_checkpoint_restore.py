"""Restore the newest checkpoint written by tensorflow_checkpoint_train.py and evaluate it.

Checkpoint.restore is recorded as this task's input model, linked (by content) to the training
task and to the snapshot that holds those exact bytes.

    python examples/tensorflow_checkpoint_restore.py [--out runs/tensorflow]
"""
from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up messages

import tensorflow as tf

from autolog import Task
from lineage_report import print_lineage
from tensorflow_checkpoint_train import Classifier, accuracy, make_blobs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="runs/tensorflow", help="the folder tensorflow_checkpoint_train.py wrote")
    args = parser.parse_args()

    task = Task.init(project_name="tensorflow-checkpoint", task_name="restore")
    latest = tf.train.latest_checkpoint(args.out)
    if latest is None:
        raise SystemExit(f"no checkpoint in {args.out}: run examples/tensorflow_checkpoint_train.py first")
    model = Classifier(hidden=16, seed=1)  # different initial weights: the restore must overwrite them
    epoch = tf.Variable(0, dtype=tf.int64)
    tf.train.Checkpoint(model=model, epoch=epoch).restore(latest).assert_existing_objects_matched()
    x_test, y_test = make_blobs(50, seed=1)
    print(f"restored {latest} (epoch {int(epoch.numpy())}): test accuracy {accuracy(model, x_test, y_test):.3f}")

    print_lineage(task)
    task.close()
    print(f"\nsee both ends: autolog task show {task.id[:8]}")


if __name__ == "__main__":
    main()
