"""Saves and loads of a URL (a Lightning checkpoint written to s3:// through fsspec): recorded where the
object is, hashed in the background, never copied into the output_uri.

The framework call here is a small function declared like a binding's (Save/Load with Arg paths) and
wrapped by the one generic wrapper, writing through fsspec's in-memory filesystem: the same path as a
real framework call, without a framework.
"""
from __future__ import annotations

import os
import threading
import time

import fsspec
import pytest
import wrapt

from autolog import Task
from autolog.binding.core import make_wrapper
from autolog.binding.spec import Arg, Load, Save


def _write(data: bytes, url: str) -> str:
    with fsspec.open(url, "wb") as f:
        f.write(data)
    return url


def _read(url: str) -> bytes:
    with fsspec.open(url, "rb") as f:
        return f.read()


save_to = wrapt.FunctionWrapper(_write, make_wrapper(Save("tests", "save_to", path=Arg(1, "url")), "Test", "test"))
load_from = wrapt.FunctionWrapper(_read, make_wrapper(Load("tests", "load_from", path=Arg(0, "url")), "Test", "test"))


@pytest.fixture
def bucket():
    name = f"memory://bucket-{os.getpid()}-{time.monotonic_ns()}"
    yield name
    fs = fsspec.filesystem("memory")
    if fs.exists(name[len("memory://"):]):
        fs.rm(name[len("memory://"):], recursive=True)


def digest(data: bytes) -> str:
    from autolog.storage.hashing import bytes_digest

    return bytes_digest(data)


def test_saves_of_a_url_are_snapshots_stored_where_they_are(local_store, bucket):
    url = f"{bucket}/ckpts/last.ckpt"
    task = Task.init(project_name="remote", task_name="train", output_uri=local_store)
    contents = [b"epoch-0" * 1000, b"epoch-1" * 1000, b"epoch-2" * 1000]
    for data in contents:
        assert save_to(data, url) == url  # the call's own result, untouched
    task.close()

    [model] = task.models["output"]
    assert model.name == "last.ckpt" and model.source_path == url
    snaps = model.snapshots
    assert [s.seq for s in snaps] == [1, 2, 3]
    assert [s.status for s in snaps] == ["stored"] * 3
    assert [s.iteration for s in snaps] == [1, 2, 3]
    # Each save waited for the previous object to be read: each snapshot hashes its own bytes.
    assert [s.digest for s in snaps] == [digest(d) for d in contents]
    assert [s.size for s in snaps] == [len(d) for d in contents]
    assert {s.uri for s in snaps} == {url}
    assert not os.path.exists(local_store) or not any(files for _, _, files in os.walk(local_store))


def test_a_load_of_a_url_links_to_the_task_that_saved_it(local_store, bucket):
    url = f"{bucket}/model.ckpt"
    train = Task.init(project_name="remote", task_name="train", output_uri=local_store)
    save_to(b"weights", url)
    train.close()
    [produced] = train.models["output"]

    use = Task.init(project_name="remote", task_name="evaluate", output_uri=local_store)
    assert [load_from(url) for _ in range(3)] == [b"weights"] * 3
    use.close()
    [model] = use.models["input"]
    assert model.id == produced.id and model.task == train.id
    loads = use._ctx.store.loads_by_task(use.id)
    assert [(ld.path, ld.digest) for ld in loads] == [(url, digest(b"weights"))]  # three loads, one link


def test_a_url_nobody_saved_is_an_imported_model(local_store, bucket):
    url = f"{bucket}/pretrained.bin"
    _write(b"from elsewhere", url)
    task = Task.init(project_name="remote", task_name="evaluate", output_uri=local_store)
    load_from(url)
    task.close()
    [model] = task.models["input"]
    assert model.origin == "imported" and model.name == "pretrained.bin"
    assert model.snapshots[-1].digest == digest(b"from elsewhere")


def test_an_unreadable_url_is_a_failed_snapshot_and_the_save_still_returns(local_store, bucket, monkeypatch, caplog):
    from autolog import safety

    monkeypatch.delenv("AUTOLOG_STRICT")  # what users get: a warning, never an exception
    monkeypatch.setattr(safety, "_reported", set())  # a failure kind warns once per process: this run's first
    url = f"{bucket}/gone.ckpt"

    def save_then_delete(data: bytes, url: str) -> str:
        _write(data, url)
        fsspec.filesystem("memory").rm(url[len("memory://"):])  # deleted before autolog could read it
        return "returned"

    wrapped = wrapt.FunctionWrapper(save_then_delete, make_wrapper(Save("tests", "save_then_delete",
                                                                        path=Arg(1, "url")), "Test", "test"))
    task = Task.init(project_name="remote", task_name="train", output_uri=local_store)
    assert wrapped(b"x", url) == "returned"
    task.close()
    [model] = task.models["output"]
    [snap] = model.snapshots
    assert snap.status == "failed"
    assert "could not be read to hash it" in snap.reason and url in snap.reason
    assert "gone.ckpt" in caplog.text


def test_the_training_thread_does_not_read_the_object(local_store, bucket, monkeypatch):
    from autolog import capture

    read_in: list[threading.Thread] = []
    real = capture.remote_content

    def spy(url: str):
        read_in.append(threading.current_thread())
        return real(url)

    monkeypatch.setattr(capture, "remote_content", spy)
    task = Task.init(project_name="remote", task_name="train", output_uri=local_store)
    save_to(b"w" * 100_000, f"{bucket}/big.ckpt")
    task.close()
    assert read_in and threading.main_thread() not in read_in
    assert task.models["output"][0].snapshots[0].status == "stored"
