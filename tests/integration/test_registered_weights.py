"""update_weights(register_uri=) records the URL at once and hashes the object later, in the
background; update_weights_package(target_filename=, auto_delete_file=) as ClearML's signature says,
storing the files without zipping them. Real SQLite store, real files, fsspec's memory filesystem."""
from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path

import fsspec
import pytest

from autolog import Model, OutputModel, Task
from autolog.context import default_context
from autolog.storage.hashing import bytes_digest

UNREACHABLE = "https://127.0.0.1:9/model.pt"  # the discard port: nothing listens


def digest(data: bytes) -> str:
    return bytes_digest(data)


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def task(tmp_path):
    return Task.init(project_name="registered", task_name="train", output_uri=str(tmp_path / "out"))


def timed(call):
    start = time.monotonic()
    result = call()
    return result, time.monotonic() - start


# -- register_uri ---------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["file-url", "memory"])
def test_a_registered_object_is_recorded_by_url_and_its_hash_arrives_from_the_background(
        where, task, tmp_path, memory_uri, run_py):
    data = b"weights stored elsewhere" * 1000
    if where == "memory":
        uri = f"{memory_uri}/elsewhere/model.pt"
        fsspec.filesystem("memory").pipe_file(uri[len("memory://"):], data)
    else:
        uri = f"file://{write(tmp_path / 'elsewhere' / 'model.pt', data)}"
    model = OutputModel(task=task, name="registered")
    assert model.update_weights(register_uri=uri, iteration=3) == uri
    [snap] = model.snapshots
    assert (snap.status, snap.uri, snap.iteration) == ("stored", uri, 3)
    task.close()  # waits for the hash while it progresses
    [snap] = Model(model.id).snapshots
    assert (snap.digest, snap.sha256, snap.size) == (digest(data), None, len(data))  # sha256: on demand only
    if where == "file-url":  # the store holds it for any process (memory:// lives in this one only)
        done = run_py(f"from autolog import Model; s = Model({model.id!r}).snapshots[0]; print(s.digest, s.size)")
        assert done.stdout.split() == [digest(data), str(len(data))], done.stderr
    assert Path(model.get_local_copy()).read_bytes() == data


def test_register_uri_returns_without_reading_and_the_hash_follows_once_the_object_can_be_read(task, tmp_path):
    """A FIFO blocks whoever opens it until bytes come: the call must return all the same."""
    fifo = tmp_path / "slow.pt"
    os.mkfifo(fifo)
    model = OutputModel(task=task, name="slow")
    _, took = timed(lambda: model.update_weights(register_uri=f"file://{fifo}", iteration=1))
    assert took < 1.0
    [snap] = model.snapshots
    assert (snap.status, snap.digest) == ("stored", None)
    late = b"bytes that came later"
    writer = threading.Thread(target=fifo.write_bytes, args=(late,), daemon=True)
    writer.start()  # opening the FIFO to write releases the background reader
    task.close()
    writer.join(10)
    [snap] = Model(model.id).snapshots
    assert (snap.digest, snap.size) == (digest(late), len(late))


def test_an_unreachable_url_is_recorded_at_once_and_the_task_closes_promptly(task, caplog):
    caplog.set_level(logging.INFO, logger="autolog")
    model = OutputModel(task=task, name="remote")
    uri, took = timed(lambda: model.update_weights(register_uri=UNREACHABLE, iteration=2))
    assert uri == UNREACHABLE and took < 1.0
    _, closing = timed(task.close)
    assert closing < 5.0
    [snap] = Model(model.id).snapshots
    assert (snap.status, snap.uri, snap.digest, snap.size, snap.iteration) == ("stored", UNREACHABLE, None, None, 2)
    assert Task.get_task(task_id=task.id).status == "completed"
    said = [r for r in caplog.records if "could not be read to hash it" in r.getMessage()]
    assert len(said) == 1 and said[0].levelno == logging.INFO and UNREACHABLE in said[0].getMessage()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    # Lineage looks snapshots up by hash: a row without one is passed over, not an error.
    assert default_context().store.producer_of(digest(b"anything")) is None


def test_close_waits_only_a_bounded_time_for_an_object_that_never_comes(tmp_path, run_py):
    home = Path(os.environ["AUTOLOG_HOME"])
    (home / "autolog.toml").write_text("[pipeline]\nstall_timeout = 1\n")
    fifo = tmp_path / "never.pt"
    os.mkfifo(fifo)  # nobody ever writes: reading it blocks for good
    done = run_py(f"""
        import json, logging, sys, time
        logging.basicConfig(level=logging.INFO, stream=sys.stderr)
        from autolog import OutputModel, Task
        task = Task.init(project_name="registered", task_name="never")
        model = OutputModel(task=task)
        model.update_weights(register_uri={str(fifo)!r})
        start = time.monotonic()
        task.close()
        print(json.dumps({{"close": time.monotonic() - start, "model": model.id}}))
    """)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["close"] < 4.0  # stall_timeout (1 s) per wait, not forever
    assert "1 registered object(s) of task" in done.stderr and "not hashed yet" in done.stderr
    [snap] = Model(result["model"]).snapshots
    assert (snap.status, snap.uri, snap.digest) == ("stored", str(fifo), None)


def test_a_load_of_registered_bytes_is_linked_once_the_hash_is_known(tmp_path):
    torch = pytest.importorskip("torch")
    weights = tmp_path / "elsewhere" / "w.pt"
    weights.parent.mkdir()
    torch.save({"w": torch.arange(3)}, weights)  # before any task: written by someone else, not captured
    task = Task.init(project_name="registered", task_name="producer", output_uri=str(tmp_path / "out"))
    model = OutputModel(task=task, name="registered")
    model.update_weights(register_uri=f"file://{weights}")
    task.close()
    consumer = Task.init(project_name="registered", task_name="consumer")
    torch.load(weights)
    assert consumer.models["input"] == [model]


def test_register_uri_refuses_what_cannot_be_an_object_at_once(task, tmp_path):
    model = OutputModel(task=task)
    with pytest.raises(FileNotFoundError, match="register_uri .*missing.pt.*: no such file"):
        model.update_weights(register_uri=str(tmp_path / "missing.pt"))
    with pytest.raises(IsADirectoryError, match="register_uri .* is a folder"):
        model.update_weights(register_uri=str(tmp_path))
    with pytest.raises(ValueError, match="no storage is known for nosuch://"):
        model.update_weights(register_uri="nosuch://bucket/model.pt")
    with pytest.raises(ValueError, match="exactly one of them"):
        model.update_weights(weights_filename=str(write(tmp_path / "w.pt", b"w")), register_uri=UNREACHABLE)
    with pytest.raises(ValueError, match="exactly one of them"):
        model.update_weights()
    assert model.snapshots == []


# -- update_weights_package -------------------------------------------------------------------------


def package_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("how", ["weights_filenames", "weights_path"])
def test_target_filename_names_the_stored_package(how, task, tmp_path):
    folder = tmp_path / "export"
    files = {"model.bin": b"weights", "tokenizer.json": b"{}"}
    for name, data in files.items():
        write(folder / name, data)
    model = OutputModel(task=task, name="package")
    if how == "weights_path":
        uri = model.update_weights_package(weights_path=str(folder), target_filename="bundle", iteration=4)
    else:
        uri = model.update_weights_package(weights_filenames=[str(folder / n) for n in files],
                                           target_filename="bundle", iteration=4)
    assert uri.endswith("/bundle") and Path(uri).is_dir()  # no zip, and no .zip added to the name
    assert package_files(Path(uri)) == files
    task.close()
    local = Path(Model(model.id).get_local_copy())
    assert local.name == "bundle" and package_files(local) == files


def test_update_weights_target_filename_names_a_folder_too(task, tmp_path):
    folder = tmp_path / "saved_model"
    write(folder / "variables" / "v.data", b"v")
    uri = OutputModel(task=task).update_weights(weights_filename=str(folder), target_filename="exported")
    assert uri.endswith("/exported") and package_files(Path(uri)) == {"variables/v.data": b"v"}


@pytest.mark.parametrize("bad", ["", "..", "a/b", 3])
def test_a_target_filename_with_folders_is_refused(task, tmp_path, bad):
    with pytest.raises(ValueError, match="target_filename must be a plain file name"):
        OutputModel(task=task).update_weights_package(weights_path=str(write(tmp_path / "p" / "f", b"f").parent),
                                                      target_filename=bad)


def test_the_default_never_deletes_the_users_files_and_auto_delete_file_true_does_once_stored(task, tmp_path):
    kept = [write(tmp_path / "kept" / n, n.encode()) for n in ("a.bin", "b.bin")]
    model = OutputModel(task=task)
    model.update_weights_package(weights_filenames=[str(p) for p in kept])
    model.update_weights(weights_filename=str(kept[0]))
    assert all(p.read_bytes() == p.name.encode() for p in kept)
    gone = write(tmp_path / "gone" / "c.bin", b"c").parent
    uri = model.update_weights_package(weights_path=str(gone), auto_delete_file=True)
    assert not gone.exists() and package_files(Path(uri)) == {"c.bin": b"c"}


def test_auto_delete_file_never_deletes_a_file_recorded_by_path_only(tmp_path):
    task = Task.init(project_name="registered", task_name="paths only")  # output_uri=None
    weights = write(tmp_path / "w.bin", b"the only copy")
    model = OutputModel(task=task)
    model.update_weights(weights_filename=str(weights), auto_delete_file=True, target_filename="ignored.bin")
    model.update_weights_package(weights_filenames=[str(weights)], auto_delete_file=True)
    assert weights.read_bytes() == b"the only copy"
    assert [s.status for s in model.snapshots] == ["local", "local"]
    assert Path(model.get_local_copy()).read_bytes() == b"the only copy"
