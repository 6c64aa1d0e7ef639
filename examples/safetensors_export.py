"""Train a small PyTorch classifier on scikit-learn's bundled digits and write its weights as
safetensors after every epoch.

The only autolog line is Task.init(): each safetensors.torch.save_file of model.safetensors is one
snapshot (all of one model, "model.safetensors"). Load them back with safetensors_load.py.

    python examples/safetensors_export.py [--epochs 3] [--out runs/safetensors]
"""
from __future__ import annotations

import argparse
import os

import numpy as np
import safetensors.torch  # call it as safetensors.torch.save_file: a name imported before Task.init is not captured
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from autolog import Task


def digits_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """x_train, x_test, y_train, y_test: the bundled 8x8 digits scaled to [0, 1], 25% held out."""
    digits = load_digits()
    return train_test_split(digits.data.astype(np.float32) / 16.0, digits.target, test_size=0.25, random_state=0)


def build_model() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))


def accuracy(model: torch.nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    with torch.no_grad():
        return float((model(torch.from_numpy(x)).argmax(1).numpy() == y).mean())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--out", default="runs/safetensors")
    args = parser.parse_args()

    task = Task.init(project_name="safetensors-digits", task_name="train", output_uri=True, tags=["example"])
    task.connect({"epochs": args.epochs, "lr": 0.05, "hidden": 32}, name="hyperparameters")

    x_train, x_test, y_train, y_test = digits_split()
    torch.manual_seed(0)
    model = build_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "model.safetensors")
    for epoch in range(1, args.epochs + 1):
        for i in range(0, len(xt), 64):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(xt[i:i + 64]), yt[i:i + 64])
            loss.backward()
            optimizer.step()
        safetensors.torch.save_file(model.state_dict(), path, metadata={"epoch": str(epoch)})
        print(f"epoch {epoch}: loss {loss.item():.3f} test accuracy {accuracy(model, x_test, y_test):.3f} -> {path}")

    task.close()
    print(f"\ntask {task.id} done. Look at it with:")
    print(f"  autolog task show {task.id[:8]}")
    print(f"  python examples/safetensors_load.py --out {args.out}")


if __name__ == "__main__":
    main()
