"""Evaluate weights saved by train_digits.py; autolog links this run to the run that produced them.

    python examples/evaluate_digits.py --weights runs/digits/best.pt
"""
from __future__ import annotations

import argparse

import numpy as np
import torch
from sklearn.datasets import load_digits

from autolog import Model, Task


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--weights", default="runs/digits/best.pt")
    args = parser.parse_args()

    task = Task.init(project_name="digits", task_name="evaluate")
    model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    model.load_state_dict(torch.load(args.weights))  # recorded as this task's input model
    digits = load_digits()
    with torch.no_grad():
        predicted = model(torch.from_numpy(digits.data.astype(np.float32) / 16.0)).argmax(1).numpy()
    print(f"accuracy on all digits: {(predicted == digits.target).mean():.3f}")

    [weights] = task.models["input"]
    producer = Task.get_task(task_id=weights.task) if weights.task else None
    print(f"loaded model {weights.name!r} ({weights.id[:8]}), produced by task "
          f"{producer.project + '/' + producer.name + ' ' + producer.id[:8] if producer else '(not logged: imported)'}")
    print(f"tasks that loaded it: {[t[:8] for t in Model(weights.id).loaded_by]}")
    task.close()
    print(f"\nsee both ends: autolog task show {task.id[:8]}   /   autolog model show {weights.id[:8]}")


if __name__ == "__main__":
    main()
