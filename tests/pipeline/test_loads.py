"""Point 11: a captured load costs the training thread no hashing: the lineage lookup (which reads the
whole file) runs in the pipeline's thread."""
from __future__ import annotations

import threading

import torch

from autolog import Task
from autolog.snapshots import identity
from pipeline_helpers import tensor, wait_for_file


def test_loaded_file_is_hashed_off_the_training_thread(local_store, work, monkeypatch):
    weights = work / "pretrained.pt"
    torch.save(tensor(3), weights)  # before Task.init: a file no task knows
    hashed_in: list[threading.Thread] = []
    real_fd_digest = identity.fd_digest

    def spy(fd: int, *args, **kwargs) -> str:
        hashed_in.append(threading.current_thread())
        return real_fd_digest(fd, *args, **kwargs)

    monkeypatch.setattr(identity, "fd_digest", spy)
    task = Task.init(project_name="pipeline", task_name="loads", output_uri=local_store)
    loaded = torch.load(weights, weights_only=True)
    assert torch.equal(loaded, tensor(3))

    inputs = task.models["input"]
    assert [m.source_path for m in inputs] == [str(weights)]
    assert inputs[0].origin == "imported"
    assert hashed_in, "the loaded file was never hashed"
    assert threading.main_thread() not in hashed_in, "the load was hashed in the training thread"
    task.close()


def test_a_save_over_a_file_whose_load_is_still_being_hashed_waits_and_the_load_keeps_its_lineage(
        local_store, work, monkeypatch):
    """Fine-tuning in place: torch.load(ckpt) then torch.save(new, ckpt) at once. The save waits until
    the load's background hash has read the file (the fence of a load), so the load is linked to the
    snapshot of the bytes it loaded, not to the new ones."""
    ckpt = work / "ckpt.pt"
    producer = Task.init(project_name="pipeline", task_name="producer", output_uri=local_store)
    torch.save(tensor(1), ckpt)
    producer.close()
    [produced] = producer.models["output"]

    reading, release = threading.Event(), threading.Event()
    real_fd_digest = identity.fd_digest

    def slow_digest(fd: int, *args, **kwargs) -> str:
        if threading.current_thread().name == "autolog-lineage":
            reading.set()
            release.wait(30)
        return real_fd_digest(fd, *args, **kwargs)

    monkeypatch.setattr(identity, "fd_digest", slow_digest)
    identity._memory.clear()  # the producer's save left this file's hash in memory: read it again
    monkeypatch.setattr(identity, "_HOST", "another-host")  # and not from the database's stat cache
    task = Task.init(project_name="pipeline", task_name="fine-tune", output_uri=local_store)
    assert torch.equal(torch.load(ckpt, weights_only=True), tensor(1))
    assert reading.wait(30), "the load's hash never started"
    saving = threading.Thread(target=torch.save, args=(tensor(2), ckpt))
    saving.start()
    saving.join(1.0)
    assert saving.is_alive(), "the save overwrote the file while the load's hash was reading it"
    release.set()
    saving.join(30)
    assert not saving.is_alive()
    task.close()

    [source] = task.models["input"]
    assert source.id == produced.id, "the load was not linked to the snapshot of the bytes it loaded"
    [tuned] = task.models["output"]
    assert torch.equal(torch.load(tuned.get_local_copy(), weights_only=True), tensor(2))


UPLOADING_TRAINER = """
import sys, time
from pathlib import Path
import pipeline_helpers as h
import torch
from autolog import Task

output_uri, ckpt, uploading, release = sys.argv[1:5]
task = Task.init(project_name="pipeline", task_name="train", output_uri=output_uri)
put = h.install_put_control()
put.block()
put.on_enter = lambda n: h.write_marker(uploading, task.id)
torch.save(h.tensor(3), ckpt)
while not Path(release).exists():
    time.sleep(0.05)
put.release()
task.close()
"""


def test_a_load_while_the_producer_still_uploads_links_to_the_producer(spawn, remote_store, work, tmp_path):
    """Run A saved ckpt.pt: staged, hashed and journaled with its digest, the upload under way. Run B
    (an evaluation following the training) loads ckpt.pt meanwhile: that is A's snapshot, not a model
    nobody saved (it was linked to an imported model, for good)."""
    ckpt, uploading, release = work / "ckpt.pt", tmp_path / "uploading", tmp_path / "release"
    trainer = spawn(UPLOADING_TRAINER, remote_store, ckpt, uploading, release)
    wait_for_file(uploading, trainer)
    train_id = uploading.read_text()

    evaluate = Task.init(project_name="pipeline", task_name="evaluate", output_uri=None)
    torch.load(ckpt)
    evaluate.close()
    release.write_text("go")
    _, err = trainer.communicate(timeout=120)
    assert trainer.returncode == 0, err

    (produced,) = Task.get_task(task_id=train_id).models["output"]
    assert produced.snapshots[-1].status == "stored"
    (loaded,) = Task.get_task(task_id=evaluate.id).models["input"]
    assert loaded.id == produced.id, f"linked to {loaded.id[:8]}, not to the trainer's {produced.id[:8]}"
