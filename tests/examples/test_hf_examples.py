"""examples/hf_finetune.py then examples/hf_evaluate.py, run as a user runs them (see test_examples.py):
the Trainer's checkpoints are one model with one complete-folder snapshot per save step, and the
evaluation's from_pretrained of a checkpoint folder is linked to the snapshot of that step."""
from __future__ import annotations

import json
from pathlib import Path

from test_examples import check_stored, example_env, only_task, run_cli, run_example, workdir  # noqa: F401

from frameworks import require_framework

from autolog.storage.hashing import file_digest

FRAMEWORK = "Hugging Face Transformers"
CHECKPOINT_FILES = {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                    "training_args.bin", "optimizer.pt", "scheduler.pt", "rng_state.pth", "trainer_state.json"}
FINAL_FILES = {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "training_args.bin"}


def _files(snap) -> dict[str, str]:
    return {f["name"]: f["digest"] for f in snap.files}


def _on_disk(folder: Path) -> dict[str, str]:
    return {p.name: file_digest(p) for p in folder.iterdir() if p.is_file()}


def test_finetune_then_evaluate(example_env: dict[str, str], workdir: Path) -> None:
    for module in ("transformers", "accelerate", "tokenizers", "torch"):
        require_framework(module)
    home, out = Path(example_env["AUTOLOG_HOME"]), workdir / "runs" / "hf-sentiment"
    env = dict(example_env, HF_HUB_OFFLINE="1")
    run_example(("hf_finetune.py", "--steps", "6", "--save-steps", "2"), env, workdir)
    evaluated = run_example(("hf_evaluate.py",), env, workdir).stdout

    finetune = only_task("hf-sentiment", "finetune")
    assert finetune.status == "completed", finetune.status
    outputs = finetune.models["output"]
    assert list(outputs.keys()) == ["hf-sentiment"], outputs.keys()
    model = outputs["hf-sentiment"]
    # three checkpoints and the final save_model(), all of one model named after output_dir
    check_stored(finetune, model, 4, FRAMEWORK, home)
    snaps = model.snapshots
    assert [s.iteration for s in snaps] == [2, 4, 6, 6]
    for snap, step in zip(snaps[:3], (2, 4, 6)):
        assert set(_files(snap)) == CHECKPOINT_FILES, (snap.seq, sorted(_files(snap)))
        stored = Path(model.get_local_copy(version=snap.seq))
        assert json.loads((stored / "trainer_state.json").read_text())["global_step"] == step
    assert set(_files(snaps[3])) == FINAL_FILES, sorted(_files(snaps[3]))  # not the metrics saved after it
    on_disk = _on_disk(out)
    assert set(on_disk) == FINAL_FILES | {"train_results.json", "all_results.json", "trainer_state.json"}
    assert _files(snaps[3]) == {name: digest for name, digest in on_disk.items() if name in FINAL_FILES}
    # save_total_limit=2 deleted checkpoint-2 (its snapshot is stored, checked above)
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-4", "checkpoint-6"]
    assert _files(snaps[2]) == _on_disk(out / "checkpoint-6")

    evaluate = only_task("hf-sentiment", "evaluate")
    assert evaluate.status == "completed", evaluate.status
    assert [m.id for m in evaluate.models["input"]] == [model.id]  # model and tokenizer: one input
    [link] = evaluate._ctx.store.loads_by_task(evaluate.id)
    assert link.snapshot_id == snaps[2].id and link.path == str(out / "checkpoint-6")
    assert finetune.id in evaluated, evaluated
    assert "is snapshot 3 of 'hf-sentiment' (global step 6)" in evaluated, evaluated

    shown = run_cli(["task", "show", evaluate.id[:8]], example_env, workdir)
    assert "input models (1)" in shown and f"task={finetune.id[:12]}" in shown, shown

    # the final save in output_dir, beside the metrics written after it: still that snapshot
    evaluated = run_example(("hf_evaluate.py", "--model", str(out)), env, workdir).stdout
    from autolog import Task

    [final] = [t for t in Task.get_tasks(project_name="hf-sentiment", task_name="evaluate") if t.id != evaluate.id]
    [link] = final._ctx.store.loads_by_task(final.id)
    assert link.snapshot_id == snaps[3].id, evaluated
    assert "is snapshot 4 of 'hf-sentiment' (global step 6)" in evaluated, evaluated
