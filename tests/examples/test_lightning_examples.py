"""examples/lightning_train.py then examples/lightning_resume.py, run as a user runs them (see
test_examples.py): every checkpoint the Trainer wrote is a model with one snapshot per write at its
global step, and the resume (trainer.fit(ckpt_path=last.ckpt)) is linked to the train task's last.ckpt,
snapshot by snapshot."""
from __future__ import annotations

from pathlib import Path

from test_examples import check_stored, example_env, only_task, run_cli, run_example, workdir  # noqa: F401

from frameworks import require_framework

from autolog.storage.hashing import file_digest

FRAMEWORK = "PyTorch Lightning"
STEPS = 8  # 256 samples in batches of 32: global steps per epoch


def test_train_then_resume(example_env: dict[str, str], workdir: Path) -> None:
    require_framework("lightning.pytorch")
    home = Path(example_env["AUTOLOG_HOME"])
    out, resumed_out = workdir / "runs" / "lightning", workdir / "runs" / "lightning-resumed"
    run_example(("lightning_train.py", "--epochs", "3", "--top-k", "2"), example_env, workdir)
    resumed_stdout = run_example(("lightning_resume.py", "--epochs", "4"), example_env, workdir).stdout

    train = only_task("lightning", "train")
    assert train.status == "completed", train.status
    outputs = train.models["output"]
    # val_loss falls every epoch: each epoch's file was written, the oldest deleted by save_top_k=2
    epochs = {f"epoch={e}-step={(e + 1) * STEPS}.ckpt": (e + 1) * STEPS for e in range(3)}
    assert set(outputs.keys()) == {*epochs, "last.ckpt"}, outputs.keys()
    assert {p.name for p in out.iterdir()} == {"epoch=1-step=16.ckpt", "epoch=2-step=24.ckpt", "last.ckpt"}
    for name, step in epochs.items():
        check_stored(train, outputs[name], 1, FRAMEWORK, home)
        assert outputs[name].snapshots[0].iteration == step
    last = outputs["last.ckpt"]
    check_stored(train, last, 3, FRAMEWORK, home)
    assert [s.iteration for s in last.snapshots] == [8, 16, 24]
    for path in out.iterdir():  # what is on disk is the newest snapshot of its model
        assert outputs[path.name].snapshots[-1].digest == file_digest(path), path.name

    resume = only_task("lightning", "resume")
    assert resume.status == "completed", resume.status
    [resumed_from] = resume.models["input"]
    assert resumed_from == last and resumed_from.task == train.id
    [load] = resume._ctx.store.loads_by_task(resume.id)
    assert load.snapshot_id == last.snapshots[-1].id  # the bytes of the third write of last.ckpt
    assert resume.id in last.loaded_by
    assert f"snapshot 3 of 3 (global step 24), written by task lightning/train {train.id}" in resumed_stdout

    # The fit that resumed kept checkpointing: the resume task's own models, at global step 32.
    resumed = resume.models["output"]
    assert set(resumed.keys()) == {"epoch=3-step=32.ckpt", "last.ckpt"}, resumed.keys()
    for name in resumed.keys():
        check_stored(resume, resumed[name], 1, FRAMEWORK, home)
        assert resumed[name].snapshots[0].iteration == 32
        assert resumed[name].snapshots[0].digest == file_digest(resumed_out / name)

    shown = run_cli(["task", "show", resume.id[:8]], example_env, workdir)
    assert "input models (1)" in shown and f"task={train.id[:12]}" in shown, shown
