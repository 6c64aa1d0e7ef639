"""Fit a scikit-learn pipeline (StandardScaler + LogisticRegression) on the bundled digits over a grid
of C values, dumping it with joblib after every fit.

The only autolog line is Task.init(): each joblib.dump of pipeline.joblib is one snapshot of the
model "pipeline.joblib" (one per C value), and the best C refitted on train + validation is
"best.joblib". The framework is named from the object: scikit-learn. Predict with sklearn_predict.py.

    python examples/sklearn_train.py [--cs 0.01 0.1 1 10] [--out runs/sklearn]
"""
from __future__ import annotations

import argparse
import os

import joblib
import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from autolog import Task


def digits_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """x_train, x_test, y_train, y_test: the bundled 8x8 digits, 25% held out for testing."""
    digits = load_digits()
    return train_test_split(digits.data, digits.target, test_size=0.25, random_state=0)


def make_model(c: float):
    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=500))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cs", type=float, nargs="+", default=[0.01, 0.1, 1.0, 10.0], help="C values to try")
    parser.add_argument("--out", default="runs/sklearn")
    args = parser.parse_args()

    task = Task.init(project_name="sklearn-digits", task_name="train", output_uri=True, tags=["example"])
    task.connect({"cs": args.cs, "max_iter": 500}, name="hyperparameters")

    x_train, _, y_train, _ = digits_split()  # the test split is for sklearn_predict.py only
    x_fit, x_val, y_fit, y_val = train_test_split(x_train, y_train, test_size=0.2, random_state=0)
    os.makedirs(args.out, exist_ok=True)
    scores = {}
    for c in args.cs:
        model = make_model(c).fit(x_fit, y_fit)
        scores[c] = model.score(x_val, y_val)
        joblib.dump(model, os.path.join(args.out, "pipeline.joblib"))  # one snapshot per C
        print(f"C={c:g}: validation accuracy {scores[c]:.3f}")

    best_c = max(scores, key=scores.get)
    best = make_model(best_c).fit(x_train, y_train)
    joblib.dump(best, os.path.join(args.out, "best.joblib"))
    print(f"best C={best_c:g}, refitted on train + validation")

    task.close()
    print(f"\ntask {task.id} done. Look at it with:")
    print(f"  autolog task show {task.id[:8]}")
    print(f"  python examples/sklearn_predict.py --out {args.out}")


if __name__ == "__main__":
    main()
