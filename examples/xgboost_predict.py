"""Predict the held-out digits with the model saved by xgboost_train.py; XGBClassifier.load_model is
recorded as this task's input model, linked to the training run that saved it.

    python examples/xgboost_predict.py [--out runs/xgboost] [--model runs/xgboost/model.json]
"""
from __future__ import annotations

import argparse
import os

import xgboost as xgb

from autolog import Task
from lineage_report import print_lineage
from xgboost_train import digits_split


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="runs/xgboost", help="the folder xgboost_train.py wrote")
    parser.add_argument("--model", help="the JSON model to load (default: <out>/model.json)")
    args = parser.parse_args()

    task = Task.init(project_name="xgboost-digits", task_name="predict")
    model = xgb.XGBClassifier()
    model.load_model(args.model or os.path.join(args.out, "model.json"))
    _, x_test, _, y_test = digits_split()
    predicted = model.predict(x_test)
    rounds = model.get_booster().num_boosted_rounds()
    print(f"held-out digits: accuracy {(predicted == y_test).mean():.3f} with {rounds} boosting rounds;"
          f" first ten {predicted[:10].tolist()}")

    print_lineage(task)
    task.close()
    print(f"\nsee both ends: autolog task show {task.id[:8]}")


if __name__ == "__main__":
    main()
