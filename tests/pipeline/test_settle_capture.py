"""A folder several captured calls write (a model, then its tokenizer: `save_pretrained` twice into one
folder) is ONE snapshot of the complete folder, through the real wrapper, recorder and pipeline.

The framework calls are small functions declared like the Transformers binding's (`settle=True`) and
wrapped by the one generic wrapper: the same path a real save_pretrained takes, without a framework.
"""
from __future__ import annotations

import os
import shutil

import pytest
import wrapt

from autolog import Task
from autolog.binding.core import make_wrapper
from autolog.binding.spec import Arg, Save
from autolog.storage.hashing import bytes_digest, file_digest


def _write_model(folder: str, step: int) -> None:
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "model.safetensors"), "wb") as f:
        f.write(b"weights %d" % step * 100)


def _write_tokenizer(folder: str, words: int = 2) -> None:
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "tokenizer.json"), "w") as f:
        f.write(_vocab(words))


def _vocab(words: int) -> str:
    return '{"vocab": [%s]}' % ", ".join(f'"w{i}"' for i in range(words))


def _write_tokenizer_then_fail(folder: str) -> None:
    with open(os.path.join(folder, "tokenizer.json"), "w") as f:
        f.write('{"vocab": [')  # cut short by the disk filling up
    raise OSError(28, "No space left on device")


def _stopped_before_writing(folder: str) -> None:
    raise KeyboardInterrupt  # Ctrl-C while the save waited at its fence


def _declared(fn, name: str):
    patch = Save("tests", f"{name}.save_pretrained", path=Arg(0, "folder"), settle=True)
    return wrapt.FunctionWrapper(fn, make_wrapper(patch, "Test", "test"))


save_model = _declared(_write_model, "Model")
save_tokenizer = _declared(_write_tokenizer, "Tokenizer")
save_tokenizer_failing = _declared(_write_tokenizer_then_fail, "Tokenizer")
save_tokenizer_stopped = _declared(_stopped_before_writing, "Tokenizer")


def _write_file(path: str, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)


save_file = wrapt.FunctionWrapper(_write_file, make_wrapper(Save("tests", "save_file", path=Arg(0, "path")),
                                                            "Test", "test"))


def files_of(snapshot) -> dict[str, str]:
    return {f["name"]: f["digest"] for f in snapshot.files}


def digest(path) -> str:
    return file_digest(path)


def test_a_model_and_its_tokenizer_saved_into_one_folder_are_one_snapshot(local_store, work, config):
    config(capture={"settle_seconds": 30})  # only the flush at close() takes it: no timing involved
    folder = str(work / "final")
    task = Task.init(project_name="pipeline", task_name="settle", output_uri=local_store)
    save_model(folder, 1)
    save_tokenizer(folder)
    task.close()
    [model] = task.models["output"]
    assert model.name == "final"
    [snap] = model.snapshots
    assert snap.status == "stored"
    assert files_of(snap) == {"model.safetensors": digest(os.path.join(folder, "model.safetensors")),
                              "tokenizer.json": digest(os.path.join(folder, "tokenizer.json"))}


def test_the_same_call_again_takes_the_waiting_snapshot_before_overwriting_it(local_store, work, config):
    config(capture={"settle_seconds": 30})
    folder = str(work / "every-epoch")
    task = Task.init(project_name="pipeline", task_name="settle", output_uri=local_store)
    expected = []
    for step in range(3):
        save_model(folder, step)
        save_tokenizer(folder)
        expected.append(bytes_digest(b"weights %d" % step * 100))
    task.close()
    [model] = task.models["output"]
    assert [files_of(s)["model.safetensors"] for s in model.snapshots] == expected
    assert all(set(files_of(s)) == {"model.safetensors", "tokenizer.json"} for s in model.snapshots[1:])
    # the first snapshot was taken when the second model save came: the tokenizer had been written too
    assert set(files_of(model.snapshots[0])) == {"model.safetensors", "tokenizer.json"}


def test_task_models_shows_a_folder_still_settling(local_store, work, config):
    config(capture={"settle_seconds": 30})
    folder = str(work / "now")
    task = Task.init(project_name="pipeline", task_name="settle", output_uri=local_store)
    save_model(folder, 1)
    save_tokenizer(folder)
    [model] = task.models["output"]  # read before close: taken now, not in 30 s
    assert model.name == "now" and len(model.snapshots) == 1
    task.close()


def test_close_waits_for_the_folder_the_quiet_time_timer_is_taking(local_store, work, config):
    """The timer takes a folder out of the waiting ones, then queues its snapshot: a close() in between
    found nothing waiting and nothing queued, and returned with the snapshot left pending (CI, 2026-11-30)."""
    import threading

    from autolog.runtime import live
    from pipeline_helpers import WAIT

    config(capture={"settle_seconds": 0.2})
    folder = str(work / "taking")
    task = Task.init(project_name="pipeline", task_name="settle", output_uri=local_store)
    settling = live().recorder.settling
    inside, may_go = threading.Event(), threading.Event()
    take = settling._take

    def held_take(path, save) -> None:  # the timer, between taking the folder and queueing its snapshot
        inside.set()
        may_go.wait(WAIT)
        take(path, save)

    settling._take = held_take
    save_model(folder, 1)
    save_tokenizer(folder)
    assert inside.wait(WAIT), "the timer did not take the folder"
    release = threading.Timer(0.3, may_go.set)
    release.start()
    task.close()
    release.join()
    [model] = task.models["output"]
    assert [s.status for s in model.snapshots] == ["stored"], [(s.status, s.reason) for s in model.snapshots]
    assert set(files_of(model.snapshots[0])) == {"model.safetensors", "tokenizer.json"}


def test_the_quiet_time_takes_the_folder_without_a_flush(local_store, work, config):
    from autolog.runtime import live
    from pipeline_helpers import wait_until

    config(capture={"settle_seconds": 0.2})
    folder = str(work / "quiet")
    task = Task.init(project_name="pipeline", task_name="settle", output_uri=local_store)
    save_model(folder, 1)
    save_tokenizer(folder)
    settling = live().recorder.settling
    assert settling._pending, "taken at once: nothing waited for the folder's other files"
    wait_until(lambda: not settling._pending, "the quiet-time timer taking the folder")
    task.close()
    [model] = task.models["output"]
    assert len(model.snapshots) == 1 and model.snapshots[0].status == "stored"


def test_a_folder_deleted_before_it_settled_costs_only_its_own_snapshot(local_store, work, config, monkeypatch, caplog):
    """A scratch folder saved, then deleted within the quiet time: close() stores the other folders
    waiting beside it and reports that one, without raising (it raised, and the folders after it were
    never snapshotted)."""
    monkeypatch.delenv("AUTOLOG_STRICT", raising=False)  # as a user runs: the failure is reported
    config(capture={"settle_seconds": 30})
    scratch, kept = str(work / "scratch"), str(work / "kept")
    task = Task.init(project_name="pipeline", task_name="settle, one deleted", output_uri=local_store)
    save_model(scratch, 1)
    save_model(kept, 2)
    shutil.rmtree(scratch)
    with caplog.at_level("WARNING", logger="autolog"):
        task.close()

    [model] = task.models["output"]
    assert model.name == "kept"
    [snap] = model.snapshots
    assert snap.status == "stored"
    assert files_of(snap) == {"model.safetensors": digest(os.path.join(kept, "model.safetensors"))}
    assert any("scratch" in r.getMessage() for r in caplog.records), [r.getMessage() for r in caplog.records]


def test_what_a_call_that_raised_wrote_is_left_out_of_the_folders_snapshot(local_store, work, config, caplog):
    """model.save_pretrained(d) returned, then tokenizer.save_pretrained(d) raised halfway through its
    file: the folder's snapshot is the model's completed save, without that half file (reported), until
    a call that returns writes the file again."""
    config(capture={"settle_seconds": 30})
    failed, retried = str(work / "failed"), str(work / "retried")
    task = Task.init(project_name="pipeline", task_name="settle, a part raised", output_uri=local_store)
    for folder in (failed, retried):
        save_model(folder, 1)
        with caplog.at_level("WARNING", logger="autolog"), pytest.raises(OSError, match="No space left"):
            save_tokenizer_failing(folder)
    save_tokenizer(retried)
    task.close()

    models = {m.name: m for m in task.models["output"]}
    [snap] = models["failed"].snapshots
    assert snap.status == "stored"
    assert files_of(snap) == {"model.safetensors": digest(os.path.join(failed, "model.safetensors"))}
    [snap] = models["retried"].snapshots
    assert files_of(snap) == {name: digest(os.path.join(retried, name)) for name in ("model.safetensors", "tokenizer.json")}
    warned = [r.getMessage() for r in caplog.records if "tokenizer.json" in r.getMessage()]
    assert len(warned) == 2 and all("raised" in w for w in warned), [r.getMessage() for r in caplog.records]


def test_saves_of_files_inside_a_waiting_folder_join_it(local_store, work, config):
    """The checkpoint of a training loop written without a Trainer: model and tokenizer save_pretrained,
    then torch.save of the optimizer and scheduler into the same folder. The folder's snapshot holds all
    of them (each file is its own snapshot too); the next epoch's optimizer save into it takes the
    folder first (it would overwrite what that snapshot holds)."""
    config(capture={"settle_seconds": 30})
    folder = work / "checkpoint"
    task = Task.init(project_name="pipeline", task_name="settle, files saved inside", output_uri=local_store)
    written = []
    for epoch in range(2):
        save_model(str(folder), epoch)
        save_tokenizer(str(folder))
        save_file(str(folder / "optimizer.pt"), b"optimizer state %d" % epoch)
        written.append({p.name: digest(p) for p in folder.iterdir()})
    save_file(str(folder / "optimizer.pt"), b"saved again within the same wait")
    task.close()

    models = {m.name: m for m in task.models["output"]}
    assert set(models) == {"checkpoint", "optimizer.pt"}, set(models)
    snaps = models["checkpoint"].snapshots
    assert [files_of(s) for s in snaps] == written + [{p.name: digest(p) for p in folder.iterdir()}]
    assert [s.status for s in models["optimizer.pt"].snapshots] == ["stored"] * 3


def test_a_folder_saved_again_inside_a_waiting_folder_takes_the_outer_one_first(local_store, work, config):
    """model.save_pretrained(out), then tokenizer.save_pretrained(out/tokenizer) twice (tokens added in
    between): out's snapshot holds the first tokenizer, its next wait the second; out/tokenizer is its
    own snapshot too."""
    config(capture={"settle_seconds": 30})
    out, inner = work / "out", work / "out" / "tokenizer"
    task = Task.init(project_name="pipeline", task_name="settle, folder inside", output_uri=local_store)
    save_model(str(out), 0)
    written = []
    for words in (2, 3):
        save_tokenizer(str(inner), words)
        written.append({str(p.relative_to(out)): digest(p) for p in out.rglob("*") if p.is_file()})
    task.close()

    models = {m.name: m for m in task.models["output"]}
    assert [files_of(s) for s in models["out"].snapshots] == written
    assert [files_of(s) for s in models["tokenizer"].snapshots] == [
        {"tokenizer.json": bytes_digest(_vocab(words).encode())} for words in (2, 3)]


def _tree(folder) -> dict[str, str]:
    return {str(p.relative_to(folder)): digest(p) for p in folder.rglob("*") if p.is_file()}


def test_a_folder_written_in_two_parts_inside_a_waiting_one_joins_it_once_whole(local_store, work, config):
    """model.save_pretrained(out), then model and tokenizer save_pretrained(out/best): one snapshot of
    out, holding best/ with its tokenizer (not one taken between best's two parts)."""
    config(capture={"settle_seconds": 30})
    out, best = work / "out", work / "out" / "best"
    task = Task.init(project_name="pipeline", task_name="settle, two parts inside", output_uri=local_store)
    save_model(str(out), 0)
    save_model(str(best), 1)
    save_tokenizer(str(best))
    task.close()

    models = {m.name: m for m in task.models["output"]}
    assert [files_of(s) for s in models["out"].snapshots] == [_tree(out)]
    assert [files_of(s) for s in models["best"].snapshots] == [_tree(best)]
    assert set(_tree(best)) == {"model.safetensors", "tokenizer.json"}


def test_a_folder_inside_keeps_its_files_in_the_one_around_it_when_a_save_of_it_raised(local_store, work, config,
                                                                                      caplog):
    """Each epoch: model.save_pretrained(out), tokenizer.save_pretrained(out/tokenizer). A tokenizer save
    stopped before it wrote leaves out's snapshot whole; one that raised halfway leaves tokenizer/ out
    of it, and out/tokenizer's own snapshots leave out the half file, until a save that returns."""
    config(capture={"settle_seconds": 30})
    out, tokenizer = work / "out", work / "out" / "tokenizer"
    task = Task.init(project_name="pipeline", task_name="settle, raised inside", output_uri=local_store)
    written = []
    save_model(str(out), 0)
    save_tokenizer(str(tokenizer))
    written.append(_tree(out))
    save_model(str(out), 1)
    with pytest.raises(KeyboardInterrupt):
        save_tokenizer_stopped(str(tokenizer))
    written.append(_tree(out))
    save_model(str(out), 2)
    with caplog.at_level("WARNING", logger="autolog"), pytest.raises(OSError, match="No space left"):
        save_tokenizer_failing(str(tokenizer))
    written.append({"model.safetensors": digest(out / "model.safetensors")})
    save_model(str(out), 3)
    save_tokenizer(str(tokenizer), 3)
    written.append(_tree(out))
    task.close()

    models = {m.name: m for m in task.models["output"]}
    assert [files_of(s) for s in models["out"].snapshots] == written
    assert [s.status for s in models["out"].snapshots] == ["stored"] * 4
    assert [list(files_of(s)) for s in models["tokenizer"].snapshots] == [["tokenizer.json"]] * 2
