"""Predict the held-out digits with the pipeline saved by sklearn_train.py; joblib.load is recorded
as this task's input model, linked to the training run that dumped it.

    python examples/sklearn_predict.py [--out runs/sklearn] [--model runs/sklearn/best.joblib]
"""
from __future__ import annotations

import argparse
import os

import joblib

from autolog import Task
from lineage_report import print_lineage
from sklearn_train import digits_split


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="runs/sklearn", help="the folder sklearn_train.py wrote")
    parser.add_argument("--model", help="the joblib file to load (default: <out>/best.joblib)")
    args = parser.parse_args()

    task = Task.init(project_name="sklearn-digits", task_name="predict")
    model = joblib.load(args.model or os.path.join(args.out, "best.joblib"))
    _, x_test, _, y_test = digits_split()
    predicted = model.predict(x_test)
    print(f"held-out digits: accuracy {(predicted == y_test).mean():.3f}; first ten {predicted[:10].tolist()}")

    print_lineage(task)
    task.close()
    print(f"\nsee both ends: autolog task show {task.id[:8]}")


if __name__ == "__main__":
    main()
