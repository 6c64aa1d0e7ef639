"""Fixtures for the snapshot-pipeline tests (tests/conftest.py already isolates AUTOLOG_HOME and sets
AUTOLOG_STRICT=1 for each test)."""
from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pipeline_helpers import HERE, CopyControl, PutControl, write_config


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """Where the 'training script' saves its checkpoints."""
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
def local_store(tmp_path: Path) -> str:
    """A plain-path output_uri: the local store (staged next to the key, published by one rename)."""
    return str(tmp_path / "store")


# fsspec's LocalFileSystem (local://) writes only into existing folders, unlike object stores; autolog
# does not create them (see test_remote_store.py). The pipeline tests make local:// create its folders
# the way fsspec documents (auto_mkdir), in this process and in children, to exercise everything else.
FSSPEC_LOCAL_ENV = {"FSSPEC_LOCAL": '{"auto_mkdir": true}'}


@pytest.fixture
def remote_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A local:// output_uri: treated as a remote store (staged in the cache, uploaded with retries)."""
    import fsspec.config

    monkeypatch.setitem(fsspec.config.conf, "local", {"auto_mkdir": True})
    return f"local://{tmp_path / 'remote'}"


@pytest.fixture(params=["local", "remote"])
def any_store(request, local_store: str, remote_store: str) -> str:
    return {"local": local_store, "remote": remote_store}[request.param]


@pytest.fixture
def staging_root(autolog_home: Path) -> Path:
    """Where remote snapshots are staged before upload."""
    return autolog_home / "cache" / "staging"


@pytest.fixture
def config(autolog_home: Path):
    """config(pipeline={...}, retention={...}): write $AUTOLOG_HOME/autolog.toml (before Task.init)."""
    return lambda **sections: write_config(autolog_home, **sections)


@pytest.fixture
def lenient(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture):
    """Failures injected on purpose are reported as warnings (not strict), each kind afresh; returns
    caplog, capturing autolog's records from DEBUG up."""
    from autolog import safety

    monkeypatch.delenv("AUTOLOG_STRICT")
    monkeypatch.setattr(safety, "_reported", set())
    caplog.set_level(logging.DEBUG, logger="autolog")
    return caplog


@pytest.fixture
def put(monkeypatch: pytest.MonkeyPatch):
    """Control over every upload to a remote store (see PutControl). Released at teardown, so a failing
    test never leaves the task's close() waiting on a blocked upload."""
    from autolog.storage.blobstore import BlobStore

    control = PutControl(BlobStore.put_file)
    monkeypatch.setattr(BlobStore, "put_file", lambda store, local, key, **kw: control(store, local, key, **kw))
    yield control
    control.fail_all = False
    control.fail_next = 0
    control.release()


def through_the_stager(monkeypatch: pytest.MonkeyPatch) -> None:
    """Small one-file snapshots are read on the training thread (steps.read_inline); tests that control
    the stager's copy make every snapshot take that path instead."""
    from autolog.snapshots import steps

    monkeypatch.setattr(steps, "read_inline", lambda job, limit: False)


@pytest.fixture
def copier(monkeypatch: pytest.MonkeyPatch):
    """Control over the stager's copy out of the user's file (see CopyControl); released at teardown.
    Small snapshots then go through the stager too (not read on the training thread)."""
    from autolog.storage import objects

    through_the_stager(monkeypatch)
    control = CopyControl(objects.kernel_copy)
    monkeypatch.setattr(objects, "kernel_copy", control)
    yield control
    control.before_copy = None
    control.release.set()


@pytest.fixture
def hasher(monkeypatch: pytest.MonkeyPatch):
    """Control over the hasher's hash of a staged copy (see CopyControl); released at teardown."""
    from autolog.storage import objects

    through_the_stager(monkeypatch)
    control = CopyControl(objects.hash_copies)
    monkeypatch.setattr(objects, "hash_copies", control)
    yield control
    control.release.set()


@pytest.fixture
def stager(monkeypatch: pytest.MonkeyPatch):
    """Holds the stager before it touches a snapshot at all: stager.hold(), stager.wait_for_calls(n),
    stager.release.set(). Released at teardown."""
    from autolog.snapshots.pipeline import SnapshotPipeline

    through_the_stager(monkeypatch)
    original = SnapshotPipeline._stage
    control = CopyControl(lambda pipeline, job: original(pipeline, job))
    monkeypatch.setattr(SnapshotPipeline, "_stage", lambda pipeline, job: control(pipeline, job))
    yield control
    control.release.set()


@pytest.fixture
def fast_retries():
    """fast_retries(task): retry uploads after 10 ms instead of 1 s (call before the first save)."""
    import dataclasses

    def apply(task) -> None:
        task._runtime.pipeline.options = dataclasses.replace(task._runtime.pipeline.options, retry_backoff=0.01)

    return apply


@pytest.fixture
def env(child_env):
    """The environment of child processes: the test's AUTOLOG_HOME, the repo and these helpers importable."""
    return child_env({"PYTHONPATH": str(HERE), **FSSPEC_LOCAL_ENV})


@pytest.fixture
def spawn(env, tmp_path: Path):
    """spawn(code, *args): start a Python child (Popen, text pipes) running `code` with sys.argv[1:] = args."""
    procs: list[subprocess.Popen] = []

    def start(code: str, *args: str) -> subprocess.Popen:
        script = tmp_path / f"child_{len(procs)}.py"
        script.write_text(textwrap.dedent(code))
        proc = subprocess.Popen([sys.executable, str(script), *map(str, args)], env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:  # only the children this test started
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
