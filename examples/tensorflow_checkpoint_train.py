"""Train a small TensorFlow model (a tf.Module, no Keras) with GradientTape, checkpointing every epoch.

The only autolog line is Task.init(): every tf.train.CheckpointManager.save below becomes a snapshot
of one model named "ckpt" (each ckpt-N prefix, .index + .data-*, is one snapshot), copied to the
embedded store, even the ones the manager deletes afterwards (max_to_keep=2). The data is generated
here: three Gaussian blobs in 2-D. Restore the newest checkpoint with tensorflow_checkpoint_restore.py.

    python examples/tensorflow_checkpoint_train.py [--epochs 4] [--out runs/tensorflow]
"""
from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up messages

import numpy as np
import tensorflow as tf

from autolog import Task

CENTERS = np.array([[0.0, 2.0], [-2.0, -1.0], [2.0, -1.0]], dtype=np.float32)


def make_blobs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n points around each of the three CENTERS (overlapping), labelled 0, 1, 2."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(CENTERS)), n)
    points = CENTERS[labels] + rng.normal(scale=1.6, size=(len(labels), 2)).astype(np.float32)
    order = rng.permutation(len(labels))
    return points[order], labels[order].astype(np.int64)


class Classifier(tf.Module):
    """A two-layer perceptron: 2 inputs, `hidden` ReLU units, 3 logits."""

    def __init__(self, hidden: int = 16, seed: int = 0):
        super().__init__(name="classifier")
        init = tf.random.Generator.from_seed(seed)
        self.w1 = tf.Variable(init.normal([2, hidden]) * 0.5, name="w1")
        self.b1 = tf.Variable(tf.zeros([hidden]), name="b1")
        self.w2 = tf.Variable(init.normal([hidden, len(CENTERS)]) * 0.5, name="w2")
        self.b2 = tf.Variable(tf.zeros([len(CENTERS)]), name="b2")

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        return tf.nn.relu(x @ self.w1 + self.b1) @ self.w2 + self.b2


def accuracy(model: Classifier, x: np.ndarray, y: np.ndarray) -> float:
    return float((tf.argmax(model(x), axis=1).numpy() == y).mean())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--out", default="runs/tensorflow")
    args = parser.parse_args()

    task = Task.init(project_name="tensorflow-checkpoint", task_name="train", output_uri=True, tags=["example"])
    task.connect({"epochs": args.epochs, "lr": args.lr, "hidden": 16}, name="hyperparameters")

    x_train, y_train = make_blobs(200, seed=0)
    x_test, y_test = make_blobs(50, seed=1)
    model = Classifier(hidden=16, seed=0)
    epoch_var = tf.Variable(0, dtype=tf.int64, name="epoch")
    checkpoint = tf.train.Checkpoint(model=model, epoch=epoch_var)
    manager = tf.train.CheckpointManager(checkpoint, directory=args.out, max_to_keep=2)

    @tf.function
    def train_step(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=model(x)))
        for var, grad in zip(model.trainable_variables, tape.gradient(loss, model.trainable_variables)):
            var.assign_sub(args.lr * grad)
        return loss

    for epoch in range(1, args.epochs + 1):
        for i in range(0, len(x_train), 32):
            loss = train_step(x_train[i:i + 32], y_train[i:i + 32])
        epoch_var.assign(epoch)
        path = manager.save(checkpoint_number=epoch)  # ckpt-<epoch>: one snapshot per epoch
        print(f"epoch {epoch}: loss {float(loss):.3f} test accuracy {accuracy(model, x_test, y_test):.3f} -> {path}")

    task.close()
    print(f"\ntask {task.id} done; checkpoints kept on disk: {[os.path.basename(p) for p in manager.checkpoints]}")
    print(f"every epoch's checkpoint was stored; look at them with:\n  autolog task show {task.id[:8]}")
    print(f"  python examples/tensorflow_checkpoint_restore.py --out {args.out}")


if __name__ == "__main__":
    main()
