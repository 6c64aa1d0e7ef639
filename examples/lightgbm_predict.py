"""Predict the held-out digits with the booster saved by lightgbm_train.py; lgb.Booster(model_file=...)
is recorded as this task's input model, linked to the training run that saved it.

    python examples/lightgbm_predict.py [--out runs/lightgbm] [--model runs/lightgbm/model.txt]
"""
from __future__ import annotations

import argparse
import os

import lightgbm as lgb

from autolog import Task
from lineage_report import print_lineage
from lightgbm_train import digits_split


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="runs/lightgbm", help="the folder lightgbm_train.py wrote")
    parser.add_argument("--model", help="the model file to load (default: <out>/model.txt)")
    args = parser.parse_args()

    task = Task.init(project_name="lightgbm-digits", task_name="predict")
    booster = lgb.Booster(model_file=args.model or os.path.join(args.out, "model.txt"))
    _, x_test, _, y_test = digits_split()
    predicted = booster.predict(x_test).argmax(axis=1)
    print(f"held-out digits: accuracy {(predicted == y_test).mean():.3f} with {booster.num_trees()} trees;"
          f" first ten {predicted[:10].tolist()}")

    print_lineage(task)
    task.close()
    print(f"\nsee both ends: autolog task show {task.id[:8]}")


if __name__ == "__main__":
    main()
