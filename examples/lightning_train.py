"""Train a tiny PyTorch Lightning regressor with a ModelCheckpoint, with autolog watching.

The only autolog line is Task.init(): every checkpoint the Trainer writes becomes a snapshot at the
trainer's global step, copied to the embedded store ($AUTOLOG_HOME, default ~/.autolog). Each top-k
file is its own model (also the ones ModelCheckpoint deletes later); last.ckpt is one model with a
snapshot per write. The data is made here: y = x @ w + noise. Resume with lightning_resume.py.

    python examples/lightning_train.py [--epochs 3] [--top-k 2] [--out runs/lightning]
"""
from __future__ import annotations

import argparse

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from autolog import Task

WEIGHTS = torch.tensor([[1.5], [-2.0], [0.5], [3.0]])


def loader(n: int, seed: int, shuffle: bool = False) -> DataLoader:
    """n samples of y = x @ WEIGHTS + noise, in batches of 32."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, len(WEIGHTS), generator=gen)
    y = x @ WEIGHTS + 0.1 * torch.randn(n, 1, generator=gen)
    return DataLoader(TensorDataset(x, y), batch_size=32, shuffle=shuffle, generator=gen if shuffle else None)


class Regressor(pl.LightningModule):
    def __init__(self, hidden: int = 16, lr: float = 0.05):
        super().__init__()
        self.save_hyperparameters()  # stored in every checkpoint: load_from_checkpoint rebuilds the model
        self.net = torch.nn.Sequential(torch.nn.Linear(len(WEIGHTS), hidden), torch.nn.ReLU(),
                                       torch.nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch, batch_idx):
        return torch.nn.functional.mse_loss(self(batch[0]), batch[1])

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", torch.nn.functional.mse_loss(self(batch[0]), batch[1]))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


def make_trainer(epochs: int, out: str, top_k: int) -> tuple[pl.Trainer, pl.callbacks.ModelCheckpoint]:
    checkpoint = pl.callbacks.ModelCheckpoint(dirpath=out, monitor="val_loss", save_top_k=top_k, save_last=True)
    trainer = pl.Trainer(max_epochs=epochs, callbacks=[checkpoint], accelerator="cpu", logger=False,
                         enable_progress_bar=False, enable_model_summary=False)
    return trainer, checkpoint


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--top-k", type=int, default=2, help="ModelCheckpoint(save_top_k=...) on val_loss")
    parser.add_argument("--out", default="runs/lightning")
    args = parser.parse_args()

    task = Task.init(project_name="lightning", task_name="train", output_uri=True, tags=["example"])
    task.connect({"epochs": args.epochs, "top_k": args.top_k, "hidden": 16, "lr": 0.05}, name="hyperparameters")

    pl.seed_everything(0, verbose=False)
    trainer, checkpoint = make_trainer(args.epochs, args.out, args.top_k)
    trainer.fit(Regressor(), loader(256, seed=0, shuffle=True), loader(64, seed=1))
    print(f"best checkpoint: {checkpoint.best_model_path} (val_loss {float(checkpoint.best_model_score):.4f})")

    task.close()
    print(f"\ntask {task.id} recorded these checkpoints (snapshots at global steps):")
    for model in task.models["output"]:
        snaps = model.snapshots
        print(f"  {model.name}: {len(snaps)} snapshot(s) {[s.iteration for s in snaps]}, {snaps[-1].status}")
    print(f"look at them with:\n  autolog task show {task.id[:8]}")
    print(f"  python examples/lightning_resume.py --from {args.out} --epochs {args.epochs + 1}")


if __name__ == "__main__":
    main()
