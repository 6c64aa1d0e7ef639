"""Load the weights written by safetensors_export.py and evaluate them; safetensors.torch.load_file
is recorded as this task's input model, linked to the training run that wrote those bytes.

    python examples/safetensors_load.py [--out runs/safetensors] [--model runs/safetensors/model.safetensors]
"""
from __future__ import annotations

import argparse
import os

import safetensors.torch  # call it as safetensors.torch.load_file: a name imported before Task.init is not captured

from autolog import Task
from lineage_report import print_lineage
from safetensors_export import accuracy, build_model, digits_split


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="runs/safetensors", help="the folder safetensors_export.py wrote")
    parser.add_argument("--model", help="the .safetensors file to load (default: <out>/model.safetensors)")
    args = parser.parse_args()

    task = Task.init(project_name="safetensors-digits", task_name="load")
    model = build_model()
    model.load_state_dict(safetensors.torch.load_file(args.model or os.path.join(args.out, "model.safetensors")))
    _, x_test, _, y_test = digits_split()
    print(f"held-out digits: accuracy {accuracy(model, x_test, y_test):.3f}")

    print_lineage(task)
    task.close()
    print(f"\nsee both ends: autolog task show {task.id[:8]}")


if __name__ == "__main__":
    main()
