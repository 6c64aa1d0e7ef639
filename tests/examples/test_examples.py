"""Every example pair runs as a user runs it: `python examples/<first>.py`, then the script that loads
what the first one saved, each in a fresh interpreter, from a scratch working folder, against a fresh
store (AUTOLOG_HOME) with AUTOLOG_STRICT=1 (so a logging error fails the script instead of warning).

Then the store is opened from this process and checked: the training task completed; its per-epoch
checkpoint is one model of the expected framework with one snapshot per save, every snapshot
"stored" under the task's output_uri; the second script's task has an input model that is one of
the training task's output models (so `model.task` is the training task's id), and `autolog task
show` prints that link.
"""
from __future__ import annotations

import dataclasses
import glob
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from frameworks import require_framework

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
TIMEOUT = 600  # seconds per script; TensorFlow alone takes ~10 s to import on a busy 2-core machine


@dataclasses.dataclass(frozen=True)
class Pair:
    id: str
    requires: tuple[str, ...]  # modules the scripts import (require_framework each)
    project: str
    train: tuple[str, ...]  # script and arguments
    train_task: str
    use: tuple[str, ...]
    use_task: str
    framework: str
    checkpoint: str  # the model saved once per epoch / round / grid point
    saves: int  # how many times the script saves it with the arguments above
    also_saved: tuple[str, ...] = ()  # other output models (saved at least once)


PAIRS = [
    Pair(
        id="digits-torch", requires=("torch", "sklearn"), project="digits",
        train=("train_digits.py", "--epochs", "3"), train_task="train",
        use=("evaluate_digits.py", "--weights", "runs/digits/best.pt"), use_task="evaluate",
        framework="PyTorch", checkpoint="last.pt", saves=3, also_saved=("best.pt",),
    ),
    Pair(
        id="tensorflow", requires=("tensorflow",), project="tensorflow-checkpoint",
        train=("tensorflow_checkpoint_train.py", "--epochs", "3"), train_task="train",
        use=("tensorflow_checkpoint_restore.py",), use_task="restore",
        framework="TensorFlow", checkpoint="ckpt", saves=3,
    ),
    Pair(
        id="keras", requires=("keras", "tensorflow", "sklearn"), project="keras-digits",
        train=("keras_train.py", "--epochs", "2"), train_task="train",
        use=("keras_evaluate.py",), use_task="evaluate",
        framework="Keras", checkpoint="ckpt.keras", saves=2, also_saved=("model.keras",),
    ),
    Pair(
        id="sklearn", requires=("sklearn", "joblib"), project="sklearn-digits",
        train=("sklearn_train.py", "--cs", "0.1", "1"), train_task="train",
        use=("sklearn_predict.py",), use_task="predict",
        framework="scikit-learn", checkpoint="pipeline.joblib", saves=2, also_saved=("best.joblib",),
    ),
    Pair(
        id="xgboost", requires=("xgboost", "sklearn"), project="xgboost-digits",
        train=("xgboost_train.py", "--rounds", "6", "--every", "2"), train_task="train",
        use=("xgboost_predict.py",), use_task="predict",
        framework="XGBoost", checkpoint="checkpoint.json", saves=3, also_saved=("model.json",),
    ),
    Pair(
        id="lightgbm", requires=("lightgbm", "sklearn"), project="lightgbm-digits",
        train=("lightgbm_train.py", "--rounds", "6", "--every", "2"), train_task="train",
        use=("lightgbm_predict.py",), use_task="predict",
        framework="LightGBM", checkpoint="checkpoint.txt", saves=3, also_saved=("model.txt",),
    ),
    Pair(
        id="safetensors", requires=("safetensors", "torch", "sklearn"), project="safetensors-digits",
        train=("safetensors_export.py", "--epochs", "2"), train_task="train",
        use=("safetensors_load.py",), use_task="load",
        framework="safetensors", checkpoint="model.safetensors", saves=2,
    ),
]


@pytest.fixture
def example_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A fresh store for this test, in this process (to read it) and in the scripts' environment."""
    home = tmp_path / "autolog-home"
    home.mkdir(exist_ok=True)
    monkeypatch.setenv("AUTOLOG_HOME", str(home))
    monkeypatch.setenv("AUTOLOG_STRICT", "1")
    for name in ("AUTOLOG_CONFIG", "AUTOLOG_DB_URL", "AUTOLOG_DEFAULT_OUTPUT_URI",
                 "AUTOLOG_TASK_ID", "AUTOLOG_TASK_PID"):
        monkeypatch.delenv(name, raising=False)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    return env


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


def run_example(argv: tuple[str, ...], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    """`python examples/<script> args...` from cwd; fails the test (showing its output) unless it exits 0."""
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / argv[0]), *argv[1:]],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT,
    )
    took = time.monotonic() - start
    print(f"{argv[0]}: exit {proc.returncode} in {took:.1f}s\n{proc.stdout}")  # shown with -rP / on failure
    assert proc.returncode == 0, (
        f"{' '.join(argv)} exited {proc.returncode} after {took:.1f}s\n"
        f"--- stdout ---\n{proc.stdout[-4000:]}\n--- stderr ---\n{proc.stderr[-8000:]}"
    )
    return proc


def run_cli(args: list[str], env: dict[str, str], cwd: Path) -> str:
    proc = subprocess.run([sys.executable, "-m", "autolog.cli", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"autolog {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def only_task(project: str, name: str):
    from autolog import Task

    tasks = Task.get_tasks(project_name=project, task_name=name)
    assert len(tasks) == 1, f"expected one task {project}/{name}, found {tasks}"
    return tasks[0]


def check_stored(task, model, saves: int, framework: str, home: Path) -> None:
    assert model.framework == framework, f"{model!r}: framework {model.framework!r}, expected {framework!r}"
    assert model.task == task.id
    snaps = model.snapshots
    assert len(snaps) == saves, f"{model!r}: {len(snaps)} snapshots for {saves} saves: {snaps}"
    assert [s.status for s in snaps] == ["stored"] * saves, [(s.seq, s.status, s.reason) for s in snaps]
    assert [s.seq for s in snaps] == list(range(1, saves + 1))
    storage = str(home / "storage")
    for snap in snaps:
        assert snap.digest and snap.size, snap
        assert snap.uri.startswith(storage), f"{snap.uri} is not under the output_uri {storage}"
        assert os.path.exists(snap.uri), f"snapshot {snap.seq} of {model.name}: {snap.uri} is missing"
    local = model.get_local_copy()  # the newest snapshot, verified by its digest
    assert os.path.exists(local) or glob.glob(glob.escape(local) + ".*"), local  # a file, folder or ckpt prefix


@pytest.mark.parametrize("pair", PAIRS, ids=[p.id for p in PAIRS])
def test_example_pair(pair: Pair, example_env: dict[str, str], workdir: Path) -> None:
    for module in pair.requires:
        require_framework(module)
    from autolog import Model, Task

    home = Path(example_env["AUTOLOG_HOME"])
    run_example(pair.train, example_env, workdir)
    use_out = run_example(pair.use, example_env, workdir).stdout

    train = only_task(pair.project, pair.train_task)
    assert train.status == "completed", train.status
    outputs = train.models["output"]
    assert {pair.checkpoint, *pair.also_saved} <= set(outputs.keys()), outputs.keys()
    check_stored(train, outputs[pair.checkpoint], pair.saves, pair.framework, home)
    for name in pair.also_saved:
        model = outputs[name]
        check_stored(train, model, len(model.snapshots), pair.framework, home)
        assert model.snapshots, name

    use = only_task(pair.project, pair.use_task)
    assert use.status == "completed", use.status
    inputs = use.models["input"]
    assert inputs, f"{pair.use[0]} loaded nothing that autolog recorded"
    from_train = [m for m in inputs if m.task == train.id]
    assert from_train, [(m.name, m.origin, m.task) for m in inputs]
    for model in from_train:
        assert model in outputs, f"input {model!r} is not an output model of {train!r}"
        assert use.id in Model(model.id).loaded_by
        assert Task.get_task(task_id=model.task).name == pair.train_task
    assert train.id[:8] in use_out, f"{pair.use[0]} did not print the producing task:\n{use_out}"

    shown = run_cli(["task", "show", use.id[:8]], example_env, workdir)
    assert "input models (1)" in shown and f"task={train.id[:12]}" in shown, shown


def test_artifacts_pair(example_env: dict[str, str], workdir: Path) -> None:
    require_framework("pandas")
    require_framework("PIL")

    run_example(("artifacts_example.py",), example_env, workdir)
    task = only_task("examples", "artifacts example")
    assert task.status == "completed"
    artifacts = task.artifacts
    assert set(artifacts) == {"Pandas", "local file", "local folder", "dictionary", "Numpy Eye", "pillow_image",
                              "reference"}, set(artifacts)
    assert artifacts["dictionary"].get() == {"name": "Erik", "age": 30}

    out = run_example(("using_artifacts_example.py", task.id), example_env, workdir).stdout
    assert f"artifacts of task {task.id[:8]}" in out
    assert "dictionary: {'name': 'Erik', 'age': 30}" in out
    assert "eye trace: 100.0" in out
    assert "image size: (32, 32)" in out
    assert "folder files: ['a.txt', 'sub/b.txt']" in out
    # Without an id it reads the newest task of that name: the same one here.
    newest = run_example(("using_artifacts_example.py",), example_env, workdir).stdout
    assert f"artifacts of task {task.id[:8]}" in newest


def test_report_digits(example_env: dict[str, str], workdir: Path) -> None:
    """The ClearML-style script: argparse, connect_configuration, label enumeration, Logger, OutputModel."""
    require_framework("torch")
    require_framework("sklearn")
    import math

    out = run_example(("report_digits.py", "--epochs", "2", "--lr", "0.1"), example_env, workdir).stdout
    task = only_task("digits", "^train with reporting$")
    assert task.status == "completed" and task.id[:8] in out
    assert task.get_parameters_as_dict(cast=True)["Args"] == {"epochs": 2, "lr": 0.1, "out": "runs/report-digits"}
    assert task.get_configuration_object_as_dict("model") == {"hidden": 64, "batch_size": 64, "momentum": 0.9}
    labels = {str(d): d for d in range(10)}
    assert task.get_labels_enumeration() == labels
    scalars = task.get_reported_scalars()
    steps = math.ceil(1347 / 64) * 2  # train_test_split(test_size=0.25) keeps 1347 of the 1797 digits
    assert scalars["loss"]["train"]["x"] == list(range(steps))
    assert scalars["accuracy"]["test"]["x"] == [1, 2]
    accuracy = scalars["accuracy"]["test"]["y"][-1]
    assert task.get_reported_single_values() == {"test accuracy": accuracy} and accuracy > 0.8
    outputs = task.models["output"]
    assert len(outputs["last.pt"].snapshots) == 2  # torch.save captured each epoch
    final = outputs["digits classifier"]
    assert final.labels == labels and final.config_dict == {"hidden": 64, "batch_size": 64, "momentum": 0.9}
    assert final.snapshots[-1].digest == outputs["last.pt"].snapshots[-1].digest
    shown = run_cli(["task", "scalars", task.id[:8]], example_env, workdir)
    assert "loss" in shown and "accuracy" in shown, shown
