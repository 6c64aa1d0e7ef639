"""Train an XGBClassifier on scikit-learn's bundled digits, saving a JSON checkpoint every few rounds.

The only autolog line is Task.init(): the training callback's Booster.save_model of checkpoint.json
every --every rounds is one snapshot each (all of one model, "checkpoint.json"), and the final
XGBClassifier.save_model is the model "model.json". Predict with xgboost_predict.py.

    python examples/xgboost_train.py [--rounds 12] [--every 4] [--out runs/xgboost]
"""
from __future__ import annotations

import argparse
import os

import numpy as np
import xgboost as xgb
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from autolog import Task


def digits_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """x_train, x_test, y_train, y_test: the bundled 8x8 digits, 25% held out for testing."""
    digits = load_digits()
    return train_test_split(digits.data, digits.target, test_size=0.25, random_state=0)


class SaveEvery(xgb.callback.TrainingCallback):
    """Save the booster to `path` after every `every` boosting rounds (overwriting it)."""

    def __init__(self, path: str, every: int):
        super().__init__()
        self.path = path
        self.every = every

    def after_iteration(self, model: xgb.Booster, epoch: int, evals_log: dict) -> bool:
        if (epoch + 1) % self.every == 0:
            model.save_model(self.path)
            loss = evals_log["validation_0"]["mlogloss"][-1]
            print(f"round {epoch + 1}: test mlogloss {loss:.3f} -> {self.path}")
        return False  # keep training


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--every", type=int, default=4, help="save a checkpoint every N rounds")
    parser.add_argument("--out", default="runs/xgboost")
    args = parser.parse_args()

    task = Task.init(project_name="xgboost-digits", task_name="train", output_uri=True, tags=["example"])
    params = {"n_estimators": args.rounds, "max_depth": 3, "learning_rate": 0.3, "n_jobs": 2}
    task.connect(dict(params, every=args.every), name="hyperparameters")

    x_train, x_test, y_train, y_test = digits_split()
    os.makedirs(args.out, exist_ok=True)
    model = xgb.XGBClassifier(
        **params, eval_metric="mlogloss", random_state=0,
        callbacks=[SaveEvery(os.path.join(args.out, "checkpoint.json"), args.every)],
    )
    model.fit(x_train, y_train, eval_set=[(x_test, y_test)], verbose=False)
    model.save_model(os.path.join(args.out, "model.json"))
    accuracy = (model.predict(x_test) == y_test).mean()

    task.close()
    print(f"\ntask {task.id} done (test accuracy {accuracy:.3f}). Look at it with:")
    print(f"  autolog task show {task.id[:8]}")
    print(f"  python examples/xgboost_predict.py --out {args.out}")


if __name__ == "__main__":
    main()
