"""Train a small PyTorch classifier on scikit-learn's bundled digits, with autolog watching.

The only autolog line is Task.init(): every torch.save below becomes a model snapshot copied to the
embedded store ($AUTOLOG_HOME, default ~/.autolog). Run evaluate_digits.py afterwards to see lineage.

    python examples/train_digits.py [--epochs 5] [--out runs/digits]
"""
from __future__ import annotations

import argparse
import os

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from autolog import Task


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--out", default="runs/digits")
    args = parser.parse_args()

    task = Task.init(project_name="digits", task_name="train", output_uri=True, tags=["example"])
    task.connect({"epochs": args.epochs, "lr": 0.05, "hidden": 64}, name="hyperparameters")

    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        digits.data.astype(np.float32) / 16.0, digits.target, test_size=0.25, random_state=0
    )
    task.upload_artifact("class balance", {str(c): int((y_train == c).sum()) for c in range(10)})
    task.upload_artifact("test images", x_test[:16].reshape(-1, 8, 8))

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)
    os.makedirs(args.out, exist_ok=True)
    best = 0.0
    for epoch in range(1, args.epochs + 1):
        for i in range(0, len(xt), 64):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(xt[i:i + 64]), yt[i:i + 64])
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            accuracy = (model(torch.from_numpy(x_test)).argmax(1).numpy() == y_test).mean()
        print(f"epoch {epoch}: loss {loss.item():.3f} test accuracy {accuracy:.3f}")
        torch.save({"epoch": epoch, "model": model.state_dict()}, os.path.join(args.out, "last.pt"))
        if accuracy > best:
            best = accuracy
            torch.save(model.state_dict(), os.path.join(args.out, "best.pt"))

    task.close()
    print(f"\ntask {task.id} done (best test accuracy {best:.3f}). Look at it with:")
    print(f"  autolog task show {task.id[:8]}")
    print(f"  python examples/evaluate_digits.py --weights {os.path.join(args.out, 'best.pt')}")


if __name__ == "__main__":
    main()
