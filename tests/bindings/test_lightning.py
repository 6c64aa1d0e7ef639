"""PyTorch Lightning binding: every checkpoint the Trainer writes is one snapshot at its global step, and
every checkpoint Lightning reads (load_from_checkpoint, fit/validate/test/predict(ckpt_path=...), Fabric)
is lineage to the snapshot that produced it.

The conformance suite covers Trainer.save_checkpoint + load_from_checkpoint. The rest runs real
trainings in two fresh interpreters per namespace and import order (this file is their program: see
`child`): "train" writes every kind of checkpoint, "resume" reads them back in another task.
"""
from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conformance import REPO, Case, make_tests

from frameworks import require_framework

# -- conformance: the user's trainer.save_checkpoint and Model.load_from_checkpoint -----------------

# Each save first trains a fresh Trainer for one more step than the last: global step 1, 2, 3...
TRAINER_SETUP = """
import torch
from torch.utils.data import DataLoader, TensorDataset
torch.manual_seed(0)

class Tiny(pl.LightningModule):
    def __init__(self, hidden=3):
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Linear(2, hidden)

    def training_step(self, batch, batch_idx):
        return self.net(batch[0]).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

model = Tiny()
data = DataLoader(TensorDataset(torch.randn(16, 2)), batch_size=4)
steps = 0
def step():
    global steps, trainer
    steps += 1
    trainer = pl.Trainer(max_steps=steps, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(model, data)
"""

CASES = [
    Case(
        id="lightning.Trainer.save_checkpoint", requires="lightning.pytorch", framework="PyTorch Lightning",
        filename="model.ckpt", imports="import lightning.pytorch as pl", setup=TRAINER_SETUP,
        save="step(); saved = trainer.save_checkpoint(path)",
        load="loaded = Tiny.load_from_checkpoint(path)",
        check="all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), model.state_dict().values()))",
    ),
]

(test_saves_are_snapshots, test_load_in_another_process_links_to_the_producer,
 test_logging_failures_never_reach_the_user,
 test_exceptions_pass_through_and_closed_task_records_nothing) = make_tests(CASES)


# -- the child program: one training task, then one resuming task ---------------------------------

STEPS_PER_EPOCH = 4  # 32 samples, batches of 8


def child(spec: dict) -> dict:
    import importlib

    if spec["import_first"]:
        importlib.import_module(spec["namespace"])
    from autolog import Task

    task = Task.init(project_name="lightning", task_name=spec["scenario"], output_uri=True)
    pl = importlib.import_module(spec["namespace"])
    fabric = importlib.import_module(spec["fabric"])
    os.chdir(spec["workdir"])
    results = {"train": train_everything, "resume": resume_everything}[spec["scenario"]](pl, fabric)
    sys.path.insert(0, str(Path(__file__).parent))
    from scenario import describe_models

    # task.models shows a running task's snapshots as they are (pending while stored in the background):
    # the report describes them once everything saved is stored
    flushed = task.flush()
    report = {"task_id": task.id, "flushed": flushed, "results": results, "models": describe_models(task)}
    task.close()
    return report


def tiny_classes(pl):
    """A LightningModule (that can fail at a given step) and a LightningDataModule with data made here."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    class Tiny(pl.LightningModule):
        def __init__(self, hidden: int = 4, fail_at: int = -1):
            super().__init__()
            self.save_hyperparameters()
            self.net = torch.nn.Sequential(torch.nn.Linear(2, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1))

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, batch_idx):
            if self.global_step == self.hparams.fail_at:
                raise RuntimeError(f"crash at step {self.global_step}")
            return torch.nn.functional.mse_loss(self(batch[0]), batch[1])

        def validation_step(self, batch, batch_idx):
            self.log("val_loss", torch.nn.functional.mse_loss(self(batch[0]), batch[1]))

        test_step = validation_step

        def predict_step(self, batch, batch_idx):
            return self(batch[0])

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.05)

    class TinyData(pl.LightningDataModule):
        def __init__(self, batch_size: int = 8):
            super().__init__()
            self.save_hyperparameters()

        def _loader(self):
            gen = torch.Generator().manual_seed(0)
            x = torch.randn(8 * STEPS_PER_EPOCH, 2, generator=gen)
            return DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=self.hparams.batch_size)

        train_dataloader = val_dataloader = test_dataloader = predict_dataloader = _loader

    return Tiny, TinyData


def folder_io_class(pl):
    """A user's CheckpointIO that writes each checkpoint as a folder: weights.pt (torch.save) + meta.json."""
    import torch

    class FolderIO(pl.plugins.CheckpointIO):
        def save_checkpoint(self, checkpoint, path, storage_options=None):
            os.makedirs(path, exist_ok=True)
            torch.save(checkpoint, os.path.join(path, "weights.pt"))
            with open(os.path.join(path, "meta.json"), "w") as f:
                json.dump({"global_step": checkpoint["global_step"]}, f)

        def load_checkpoint(self, path, map_location=None, weights_only=None):
            return torch.load(os.path.join(path, "weights.pt"), weights_only=False)

        def remove_checkpoint(self, path):
            pass

    return FolderIO


def trainer(pl, epochs: int, *callbacks, **kwargs):
    return pl.Trainer(max_epochs=epochs, callbacks=list(callbacks), accelerator="cpu", logger=False,
                      enable_progress_bar=False, enable_model_summary=False, **kwargs)


def train_everything(pl, fabric_module) -> dict:
    import importlib

    import torch

    Tiny, TinyData = tiny_classes(pl)
    torch.manual_seed(0)
    top_k = pl.callbacks.ModelCheckpoint(dirpath="topk", save_top_k=-1, save_last=True)
    fitted = trainer(pl, 3, top_k)
    # The tuner saves, restores and deletes the trainer's state: scaffolding, not recorded.
    tuner = importlib.import_module(f"{pl.__name__}.tuner").Tuner(fitted)
    tuner.lr_find(Tiny(), datamodule=TinyData(), num_training=3, update_attr=False)
    tuner.scale_batch_size(Tiny(), datamodule=TinyData(), max_trials=2, steps_per_trial=1)
    fitted.fit(Tiny(), TinyData())
    fitted.save_checkpoint("manual.ckpt")  # the user's own call
    pl.callbacks.ModelCheckpoint._link_checkpoint(fitted, "manual.ckpt", "manual.ckpt")  # a no-op: no snapshot

    trainer(pl, 3, pl.callbacks.ModelCheckpoint(dirpath="link", save_top_k=-1, save_last="link")).fit(
        Tiny(), TinyData())

    crashing = trainer(pl, 3, pl.callbacks.OnExceptionCheckpoint("crash"),
                       pl.callbacks.ModelCheckpoint(dirpath="crash_mc", save_top_k=-1, save_on_exception=True))
    try:
        crashing.fit(Tiny(fail_at=6), TinyData())
        crashed = None
    except RuntimeError as exc:
        crashed = str(exc)

    trainer(pl, 2, pl.callbacks.ModelCheckpoint(dirpath="custom", save_top_k=-1),
            plugins=[folder_io_class(pl)()]).fit(Tiny(), TinyData())
    trainer(pl, 2, pl.callbacks.ModelCheckpoint(dirpath="async", save_top_k=-1, save_last=True),
            plugins=[pl.plugins.AsyncCheckpointIO()]).fit(Tiny(), TinyData())

    fabric = fabric_module.Fabric(accelerator="cpu", devices=1)
    module = torch.nn.Linear(2, 1)
    for epoch in (1, 2):
        module.weight.data += 1.0
        fabric.save("fabric.ckpt", {"model": module, "epoch": epoch})
    fabric.save("fabric_raw.ckpt", module.state_dict())  # what Fabric.load_raw reads
    return {"crashed": crashed, "files": on_disk(), "link_is_symlink": os.path.islink("link/last.ckpt"),
            "fabric_weight": module.weight.detach().tolist()}


def resume_everything(pl, fabric_module) -> dict:
    """Every way Lightning reads a checkpoint, each from a file the train task wrote but one ("best")."""
    import torch

    Tiny, TinyData = tiny_classes(pl)
    reads = []

    def read(path: str) -> None:
        reads.append(os.path.abspath(path))

    resumed_top_k = pl.callbacks.ModelCheckpoint(dirpath="resumed", save_top_k=-1, save_last=True)
    resumed = trainer(pl, 4, resumed_top_k)
    resumed.fit(Tiny(), TinyData(), ckpt_path="topk/last.ckpt")  # one more epoch, checkpointed
    read("topk/last.ckpt")
    resumed.test(datamodule=TinyData(), ckpt_path="best")  # without a monitor: this task's newest checkpoint
    read(resumed_top_k.best_model_path)

    Tiny.load_from_checkpoint("topk/epoch=1-step=8.ckpt")
    read("topk/epoch=1-step=8.ckpt")
    TinyData.load_from_checkpoint("topk/epoch=0-step=4.ckpt")
    read("topk/epoch=0-step=4.ckpt")
    trainer(pl, 3).validate(Tiny(), TinyData(), ckpt_path="link/last.ckpt")  # a symlink
    read("link/last.ckpt")
    # "last": resolved to the newest last*.ckpt in a ModelCheckpoint's folder
    trainer(pl, 2, pl.callbacks.ModelCheckpoint(dirpath="async", save_last=True)).validate(
        Tiny(), TinyData(), ckpt_path="last")
    read("async/last.ckpt")
    trainer(pl, 3).test(Tiny(), TinyData(), ckpt_path="manual.ckpt")
    read("manual.ckpt")
    trainer(pl, 2, plugins=[folder_io_class(pl)()]).predict(Tiny(), TinyData(),
                                                             ckpt_path="custom/epoch=1-step=8.ckpt")
    read("custom/epoch=1-step=8.ckpt")
    fabric = fabric_module.Fabric(accelerator="cpu", devices=1)
    module = torch.nn.Linear(2, 1)
    state = {"model": module}
    fabric.load("fabric.ckpt", state)
    read("fabric.ckpt")
    fabric.load_raw("fabric_raw.ckpt", torch.nn.Linear(2, 1))
    read("fabric_raw.ckpt")
    return {"reads": reads, "resumed_best": os.path.abspath(resumed_top_k.best_model_path),
            "fabric_weight": module.weight.detach().tolist()}


def on_disk() -> dict[str, str]:
    """The digest of every checkpoint (file or folder) in the working folder, by relative path."""
    from autolog.storage import collect_sources
    from autolog.storage.objects import hash_sources

    found = {}
    for folder in ("topk", "link", "crash", "crash_mc", "custom", "async", "."):
        if os.path.isdir(folder):
            for name in os.listdir(folder):
                path = os.path.normpath(os.path.join(folder, name))
                if name.endswith(".ckpt"):
                    found[path] = hash_sources(collect_sources(path)).digest
    return found


# -- the tests ------------------------------------------------------------------------------------

THIS = Path(__file__).resolve()
# The train task imports the framework before or after Task.init, the resume task the other way round.
NAMESPACES = [
    pytest.param(("lightning.pytorch", "lightning.fabric", True), id="lightning.pytorch-train-imported-before-init"),
    pytest.param(("lightning.pytorch", "lightning.fabric", False), id="lightning.pytorch-train-imported-after-init"),
    pytest.param(("pytorch_lightning", "lightning_fabric", True), id="pytorch_lightning-train-imported-before-init"),
    pytest.param(("pytorch_lightning", "lightning_fabric", False), id="pytorch_lightning-train-imported-after-init"),
]


def run_child(spec: dict, home: Path) -> dict:
    env = dict(os.environ, AUTOLOG_HOME=str(home), AUTOLOG_STRICT="1",
               PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "tests"), os.environ.get("PYTHONPATH", "")]))
    for name in ("AUTOLOG_TASK_ID", "AUTOLOG_TASK_PID", "AUTOLOG_CONFIG", "AUTOLOG_DB_URL"):
        env.pop(name, None)
    proc = subprocess.run([sys.executable, str(THIS), json.dumps(spec)], env=env, cwd=spec["workdir"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{spec['scenario']} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module", params=NAMESPACES)
def runs(request, tmp_path_factory, worker_id) -> dict:
    """The train task, then the resume task, in one store and one working folder. Each pair is two
    Lightning interpreters (~20 s): under xdist the first worker to need it runs it and the others
    read its report (the usual xdist recipe for a fixture built once per test run)."""
    namespace, fabric, import_first = request.param
    require_framework(namespace)
    require_framework(fabric)
    name = f"{namespace.replace('.', '_')}-{'before' if import_first else 'after'}"
    if worker_id == "master":
        return _train_and_resume(tmp_path_factory.mktemp(name), namespace, fabric, import_first)
    shared = tmp_path_factory.getbasetemp().parent  # this test run's folder, common to its workers
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        report = shared / f"{name}.json"
        if not report.exists():
            root = shared / name
            root.mkdir()
            result = _train_and_resume(root, namespace, fabric, import_first)
            report.write_text(json.dumps({**result, "work": str(result["work"])}))
        result = json.loads(report.read_text())
    return {**result, "work": Path(result["work"])}


def _train_and_resume(root: Path, namespace: str, fabric: str, import_first: bool) -> dict:
    work = root / "work"
    work.mkdir()
    spec = {"namespace": namespace, "fabric": fabric, "workdir": str(work)}
    train = run_child({**spec, "scenario": "train", "import_first": import_first}, root / "home")
    resume = run_child({**spec, "scenario": "resume", "import_first": not import_first}, root / "home")
    return {"train": train, "resume": resume, "work": work}


def by_path(report: dict, work: Path) -> dict[str, dict]:
    models = {os.path.relpath(m["source_path"], work): m for m in report["models"]["output"]}
    assert len(models) == len(report["models"]["output"]), "two models for one path"
    return models


def stored(model: dict) -> list[dict]:
    snaps = model["snapshots"]
    assert [s["status"] for s in snaps] == ["stored"] * len(snaps), snaps
    assert [s["seq"] for s in snaps] == list(range(1, len(snaps) + 1))
    assert model["framework"] == "PyTorch Lightning" and model["origin"] == "capture"
    return snaps


def test_every_checkpoint_is_one_model_and_each_write_one_snapshot(runs):
    train, work = runs["train"], runs["work"]
    assert train["flushed"] and runs["resume"]["flushed"]
    models = by_path(train, work)
    files = train["results"]["files"]
    # exactly the checkpoints: nothing from the torch.save inside Lightning, nothing from FolderIO's weights.pt
    assert set(models) == set(files), (sorted(models), sorted(files))
    assert train["models"]["input"] == [] and train["models"]["loads"] == []
    for epoch in range(3):
        step = (epoch + 1) * STEPS_PER_EPOCH
        [snap] = stored(models[f"topk/epoch={epoch}-step={step}.ckpt"])
        assert snap["iteration"] == step
        assert snap["digest"] == files[f"topk/epoch={epoch}-step={step}.ckpt"]
    last = stored(models["topk/last.ckpt"])
    assert [s["iteration"] for s in last] == [4, 8, 12]
    assert last[-1]["digest"] == files["topk/last.ckpt"]
    assert models["topk/last.ckpt"]["local_copy_digest"] == files["topk/last.ckpt"]
    [manual] = stored(models["manual.ckpt"])
    assert (manual["iteration"], manual["digest"]) == (12, files["manual.ckpt"])


def test_save_last_link_is_a_snapshot_per_link(runs):
    train, work = runs["train"], runs["work"]
    models = by_path(train, work)
    assert train["results"]["link_is_symlink"]
    links = stored(models["link/last.ckpt"])
    assert [s["iteration"] for s in links] == [4, 8, 12]
    for epoch, snap in enumerate(links):  # each link holds the bytes of the checkpoint it points to
        [target] = stored(models[f"link/epoch={epoch}-step={snap['iteration']}.ckpt"])
        assert snap["digest"] == target["digest"]


def test_checkpoints_on_exception(runs):
    train, work = runs["train"], runs["work"]
    models = by_path(train, work)
    assert train["results"]["crashed"] == "crash at step 6"
    [snap] = stored(models["crash/on_exception.ckpt"])  # OnExceptionCheckpoint
    assert (snap["iteration"], snap["digest"]) == (6, train["results"]["files"]["crash/on_exception.ckpt"])
    [epoch_end] = stored(models["crash_mc/epoch=0-step=4.ckpt"])
    [on_exception] = stored(models["crash_mc/epoch=1-step=6.ckpt"])
    assert (epoch_end["iteration"], on_exception["iteration"]) == (4, 6)
    assert on_exception["digest"] == train["results"]["files"]["crash_mc/epoch=1-step=6.ckpt"]


def test_custom_checkpoint_io_folder_is_one_snapshot(runs):
    train, work = runs["train"], runs["work"]
    models = by_path(train, work)
    for step in (4, 8):
        path = f"custom/epoch={step // STEPS_PER_EPOCH - 1}-step={step}.ckpt"
        [snap] = stored(models[path])
        assert (snap["iteration"], snap["digest"]) == (step, train["results"]["files"][path])


def test_async_checkpoint_io_is_captured_once_written(runs):
    train, work = runs["train"], runs["work"]
    models = by_path(train, work)
    files = train["results"]["files"]
    for step in (4, 8):
        path = f"async/epoch={step // STEPS_PER_EPOCH - 1}-step={step}.ckpt"
        [snap] = stored(models[path])
        assert (snap["iteration"], snap["digest"]) == (step, files[path])
    last = stored(models["async/last.ckpt"])
    assert [s["iteration"] for s in last] == [4, 8] and last[-1]["digest"] == files["async/last.ckpt"]


def test_fabric_save_is_a_snapshot_per_call(runs):
    train, work = runs["train"], runs["work"]
    snaps = stored(by_path(train, work)["fabric.ckpt"])
    assert [s["iteration"] for s in snaps] == [1, 2]
    assert snaps[-1]["digest"] == train["results"]["files"]["fabric.ckpt"]
    [raw] = stored(by_path(train, work)["fabric_raw.ckpt"])
    assert raw["digest"] == train["results"]["files"]["fabric_raw.ckpt"]


def test_every_read_links_to_the_snapshot_that_wrote_it(runs):
    train, resume, work = runs["train"], runs["resume"], runs["work"]
    produced = {os.path.join(str(work), p): m for p, m in by_path(train, work).items()}
    resumed_best = resume["results"]["resumed_best"]
    own = {m["source_path"]: m for m in resume["models"]["output"]}
    loads = {ld["path"]: ld for ld in resume["models"]["loads"]}
    reads = resume["results"]["reads"]
    assert sorted(loads) == sorted(reads)  # one link per checkpoint read, nothing else
    for path in reads:
        load = loads[path]
        producer = own[path] if path == resumed_best else produced[path]
        assert load["model_id"] == producer["id"], path
        # the newest snapshot of that path when it was read: the bytes on disk
        assert load["snapshot_id"] == producer["snapshots"][-1]["id"], path
    inputs = {m["id"]: m for m in resume["models"]["input"]}
    assert {m["task"] for m in inputs.values()} == {train["task_id"], resume["task_id"]}
    assert resume["results"]["fabric_weight"] == train["results"]["fabric_weight"]


def test_resumed_training_keeps_checkpointing(runs):
    """The load patched inside fit() does not silence the saves fit() makes after it."""
    resume, work = runs["resume"], runs["work"]
    models = by_path(resume, work)
    assert set(models) == {"resumed/epoch=3-step=16.ckpt", "resumed/last.ckpt"}, sorted(models)
    for model in models.values():
        [snap] = stored(model)
        assert snap["iteration"] == 16


if __name__ == "__main__":
    print(json.dumps(child(json.loads(sys.argv[1]))))
