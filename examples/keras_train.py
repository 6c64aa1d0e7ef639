"""Train a small Keras 3 classifier on scikit-learn's bundled digits, checkpointing every epoch.

The only autolog line is Task.init(): ModelCheckpoint's save of ckpt.keras after every epoch is one
snapshot each (all of one model, "ckpt.keras"), and the final model.save is a second model,
"model.keras". Evaluate it with keras_evaluate.py, which links the two runs.

    python examples/keras_train.py [--epochs 3] [--out runs/keras]
"""
from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up messages (Keras backend)

import keras
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from autolog import Task


def digits_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """x_train, x_test, y_train, y_test: the bundled 8x8 digits scaled to [0, 1], 25% held out."""
    digits = load_digits()
    return train_test_split(digits.data.astype(np.float32) / 16.0, digits.target, test_size=0.25, random_state=0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--out", default="runs/keras")
    args = parser.parse_args()

    task = Task.init(project_name="keras-digits", task_name="train", output_uri=True, tags=["example"])
    task.connect({"epochs": args.epochs, "lr": 0.01, "hidden": 64, "batch_size": 64}, name="hyperparameters")

    x_train, x_test, y_train, y_test = digits_split()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input(shape=(64,)),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    os.makedirs(args.out, exist_ok=True)
    checkpoint = keras.callbacks.ModelCheckpoint(os.path.join(args.out, "ckpt.keras"))  # every epoch
    model.fit(x_train, y_train, epochs=args.epochs, batch_size=64, validation_data=(x_test, y_test),
              callbacks=[checkpoint], verbose=2)
    final = os.path.join(args.out, "model.keras")
    model.save(final)
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)

    task.close()
    print(f"\ntask {task.id} done (test accuracy {accuracy:.3f}). Look at it with:")
    print(f"  autolog task show {task.id[:8]}")
    print(f"  python examples/keras_evaluate.py --out {args.out}")


if __name__ == "__main__":
    main()
