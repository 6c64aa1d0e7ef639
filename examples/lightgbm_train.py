"""Train a LightGBM multiclass booster on scikit-learn's bundled digits, saving it every few rounds.

The only autolog line is Task.init(): the training callback's Booster.save_model of checkpoint.txt
every --every rounds is one snapshot each (all of one model, "checkpoint.txt"), and the final save
is the model "model.txt". Predict with lightgbm_predict.py.

    python examples/lightgbm_train.py [--rounds 15] [--every 5] [--out runs/lightgbm]
"""
from __future__ import annotations

import argparse
import os
from typing import Callable

import lightgbm as lgb
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from autolog import Task


def digits_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """x_train, x_test, y_train, y_test: the bundled 8x8 digits, 25% held out for testing."""
    digits = load_digits()
    return train_test_split(digits.data, digits.target, test_size=0.25, random_state=0)


def save_every(path: str, every: int) -> Callable[[lgb.callback.CallbackEnv], None]:
    """A training callback saving the booster to `path` after every `every` rounds (overwriting it)."""

    def callback(env: lgb.callback.CallbackEnv) -> None:
        if (env.iteration + 1) % every == 0:
            env.model.save_model(path)
            _, metric, value, _ = env.evaluation_result_list[0]
            print(f"round {env.iteration + 1}: test {metric} {value:.3f} -> {path}")

    callback.order = 30  # after the built-in evaluation callbacks
    return callback


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--every", type=int, default=5, help="save a checkpoint every N rounds")
    parser.add_argument("--out", default="runs/lightgbm")
    args = parser.parse_args()

    task = Task.init(project_name="lightgbm-digits", task_name="train", output_uri=True, tags=["example"])
    params = {"objective": "multiclass", "num_class": 10, "num_leaves": 15, "learning_rate": 0.2,
              "num_threads": 2, "seed": 0, "verbose": -1}
    task.connect(dict(params, rounds=args.rounds, every=args.every), name="hyperparameters")

    x_train, x_test, y_train, y_test = digits_split()
    os.makedirs(args.out, exist_ok=True)
    train_set = lgb.Dataset(x_train, y_train)
    booster = lgb.train(
        params, train_set, num_boost_round=args.rounds,
        valid_sets=[lgb.Dataset(x_test, y_test, reference=train_set)], valid_names=["test"],
        callbacks=[save_every(os.path.join(args.out, "checkpoint.txt"), args.every)],
    )
    booster.save_model(os.path.join(args.out, "model.txt"))
    accuracy = (booster.predict(x_test).argmax(axis=1) == y_test).mean()

    task.close()
    print(f"\ntask {task.id} done (test accuracy {accuracy:.3f}). Look at it with:")
    print(f"  autolog task show {task.id[:8]}")
    print(f"  python examples/lightgbm_predict.py --out {args.out}")


if __name__ == "__main__":
    main()
