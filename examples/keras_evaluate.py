"""Evaluate the model saved by keras_train.py; keras.saving.load_model is recorded as this task's
input model, linked to the training run that saved those bytes.

    python examples/keras_evaluate.py [--out runs/keras] [--model runs/keras/model.keras]
"""
from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up messages (Keras backend)

import keras

from autolog import Task
from lineage_report import print_lineage
from keras_train import digits_split


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="runs/keras", help="the folder keras_train.py wrote")
    parser.add_argument("--model", help="the .keras file to evaluate (default: <out>/model.keras)")
    args = parser.parse_args()

    task = Task.init(project_name="keras-digits", task_name="evaluate")
    model = keras.saving.load_model(args.model or os.path.join(args.out, "model.keras"))
    _, x_test, _, y_test = digits_split()
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    print(f"held-out digits: loss {loss:.3f} accuracy {accuracy:.3f}")

    print_lineage(task)
    task.close()
    print(f"\nsee both ends: autolog task show {task.id[:8]}")


if __name__ == "__main__":
    main()
