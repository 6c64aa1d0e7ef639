"""A ClearML-style training script, unchanged but for its import line: scalars, a configuration object,
label enumeration and argparse arguments recorded alongside the captured torch.save snapshots.

    python examples/report_digits.py [--epochs 5] [--lr 0.05] [--out runs/report-digits]
    autolog task show <id>          # parameters, configuration, scalars, models
    autolog task scalars <id>       # every series: count, last, min, max
"""
from __future__ import annotations

import argparse
import os

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.metrics import confusion_matrix
from sklearn.model_selection import train_test_split

from autolog import Logger, OutputModel, Task  # was: from clearml import Logger, OutputModel, Task


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--out", default="runs/report-digits")
    args = parser.parse_args()  # recorded under the task's "Args" section, no call needed

    task = Task.init(project_name="digits", task_name="train with reporting", output_uri=True)
    config = task.connect_configuration({"hidden": 64, "batch_size": 64, "momentum": 0.9}, name="model")
    labels = task.connect_label_enumeration({str(d): d for d in range(10)})
    logger = task.get_logger()

    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        digits.data.astype(np.float32) / 16.0, digits.target, test_size=0.25, random_state=0
    )
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(64, config["hidden"]), torch.nn.ReLU(), torch.nn.Linear(config["hidden"], len(labels))
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=config["momentum"])
    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)
    os.makedirs(args.out, exist_ok=True)
    step = 0
    for epoch in range(1, args.epochs + 1):
        for i in range(0, len(xt), config["batch_size"]):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(xt[i:i + config["batch_size"]]), yt[i:i + config["batch_size"]])
            loss.backward()
            optimizer.step()
            logger.report_scalar("loss", "train", loss.item(), iteration=step)
            step += 1
        with torch.no_grad():
            predicted = model(torch.from_numpy(x_test)).argmax(1).numpy()
        accuracy = float((predicted == y_test).mean())
        logger.report_scalar("accuracy", "test", accuracy, iteration=epoch)
        Logger.current_logger().report_text(f"epoch {epoch}: loss {loss.item():.3f} test accuracy {accuracy:.3f}")
        torch.save(model.state_dict(), os.path.join(args.out, "last.pt"))  # captured: a snapshot per epoch

    logger.report_single_value("test accuracy", accuracy)
    matrix = confusion_matrix(y_test, predicted)
    logger.report_table("confusion", "test", iteration=args.epochs,
                        table_plot=[["true \\ predicted", *labels]] + [[label, *map(int, row)] for label, row in zip(labels, matrix)])
    final = OutputModel(task=task, name="digits classifier", framework="PyTorch", config_dict=config)
    final.update_weights(weights_filename=os.path.join(args.out, "last.pt"), iteration=args.epochs)
    task.close()
    print(f"\ntask {task.id} done (test accuracy {accuracy:.3f}). Look at it with:")
    print(f"  autolog task show {task.id[:8]}")
    print(f"  autolog task scalars {task.id[:8]}")


if __name__ == "__main__":
    main()
