"""The pipeline's background workers survive anything a job throws at them.

An exception injected into every step of a snapshot (copy, hash, record, journal, publish, upload,
the stored row, the on_stored callback) and into every cleanup effect (removing the staging folder
and the copied marker, closing the saved file) settles that one snapshot with the real cause, and
every later snapshot is stored; close() returns at once and the workers are still running. A worker
thread that dies anyway is restarted; one that keeps dying, or a stager stuck forever, makes no
save and no close() wait for longer than stall_timeout (once one wait found the stall, the next give
up at once), and the warning says what is left and `autolog sync`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import shutil
import statistics
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest
import torch

from autolog import Task
from pipeline_helpers import (assert_stored_tensor, cli_json, digest, files_under, object_path, output_snapshots,
                              tensor, wait_for_start, wait_until)

CLOSE_BOUND = 10.0  # seconds: close() after an injected failure has nothing left to wait for


# -- injection -------------------------------------------------------------------------------
class Injection:
    """Wraps `original`: the first `times` calls for which `when(*args)` holds raise
    RuntimeError("injected at <name>"); every other call delegates."""

    def __init__(self, name: str, original: Callable[..., Any], times: int = 1,
                 when: Callable[..., bool] | None = None):
        self.name, self.original, self.times, self.when = name, original, times, when
        self.hits = 0
        self.calls = 0
        self._lock = threading.Lock()

    @property
    def message(self) -> str:
        return f"injected at {self.name}"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            self.calls += 1
            hit = self.hits < self.times and (self.when is None or self.when(*args, **kwargs))
            if hit:
                self.hits += 1
        if hit:
            raise RuntimeError(self.message)
        return self.original(*args, **kwargs)


def patch_function(monkeypatch: pytest.MonkeyPatch, owner: Any, attr: str, name: str, **kw: Any) -> Injection:
    injection = Injection(name, getattr(owner, attr), **kw)
    monkeypatch.setattr(owner, attr, injection)
    return injection


def patch_method(monkeypatch: pytest.MonkeyPatch, cls: type, attr: str, name: str, **kw: Any) -> Injection:
    """A method: the replacement must be a function so that it binds `self`."""
    injection = Injection(name, getattr(cls, attr), **kw)
    monkeypatch.setattr(cls, attr, lambda *args, **kwargs: injection(*args, **kwargs))
    return injection


def _is_staging(path: Any) -> bool:
    text = str(path)
    return "/.autolog-staging/" in text or "/cache/staging/" in text or ".incomplete-" in text


# -- the cases -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    id: str
    install: Callable[..., list[Injection]]  # (monkeypatch, task) -> the injections (first one: the cause)
    stores: tuple[str, ...]  # "local", "remote", "none" (output_uri=None)
    # failed | kept (pending, staged copy kept for sync) | stored | retained (stored, later deleted by
    # retention) | unrecorded (no row: the journal failed) | lineage (a load's lineage failed)
    outcome: str
    inline: bool = False  # small one-file local snapshots read on the training thread (else: staged)
    behind: bool = False  # every snapshot hashed behind its copy (storage/copy_progress.py), not after it
    keep_last: int | None = None
    config: dict | None = None


def _module(owner: str) -> Any:
    import importlib

    return importlib.import_module({"steps": "autolog.snapshots.steps", "objects": "autolog.storage.objects",
                                    "identity": "autolog.snapshots.identity", "lineage": "autolog.lineage",
                                    "retention": "autolog.snapshots.retention", "capture": "autolog.capture"}[owner])


def _function(owner: str, attr: str, label: str | None = None) -> Callable[..., list[Injection]]:
    def install(monkeypatch: pytest.MonkeyPatch, task: Task) -> list[Injection]:
        return [patch_function(monkeypatch, _module(owner), attr, label or f"{owner}.{attr}")]

    return install


def _store_method(attr: str, when: Callable[..., bool] | None = None) -> Callable[..., list[Injection]]:
    """A method of the task's metadata store (the database)."""
    def install(monkeypatch: pytest.MonkeyPatch, task: Task) -> list[Injection]:
        return [patch_function(monkeypatch, task._runtime.ctx.store, attr, f"store.{attr}", when=when)]

    return install


def _put_file(monkeypatch: pytest.MonkeyPatch, task: Task) -> list[Injection]:
    from autolog.storage.blobstore import BlobStore

    # Every attempt at the first snapshot's object fails: upload_retries (2) are used up.
    return [patch_method(monkeypatch, BlobStore, "put_file", "BlobStore.put_file", times=2,
                         when=lambda store, local, key, **kw: "/0001/" in key)]


def _on_stored(monkeypatch: pytest.MonkeyPatch, task: Task) -> list[Injection]:
    from autolog.runtime import TaskRuntime

    return [patch_method(monkeypatch, TaskRuntime, "on_snapshot_stored", "on_stored")]


def _cleanup(digest: str) -> Callable[..., list[Injection]]:
    """Hashing the copy fails (settled once the copy and, for remote stores, its marker exist: a hash
    behind the copy waits for the copy to end), and then both cleanup effects fail too: the reason
    must still be the hash's failure."""
    def install(monkeypatch: pytest.MonkeyPatch, task: Task) -> list[Injection]:
        cause = patch_function(monkeypatch, _module("objects"), digest, f"objects.{digest}")
        rmtree = patch_function(monkeypatch, shutil, "rmtree", "shutil.rmtree(staging)",
                                when=lambda path, *a, **kw: _is_staging(path))
        marker = patch_function(monkeypatch, _module("steps"), "remove_quietly", "remove_quietly(marker)")
        return [cause, rmtree, marker]

    return install


def _close(failing: str | None) -> Callable[..., list[Injection]]:
    def install(monkeypatch: pytest.MonkeyPatch, task: Task) -> list[Injection]:
        from autolog.storage.sources import OpenedSources

        injections = [patch_function(monkeypatch, _module("objects"), failing, f"objects.{failing}")] if failing else []
        injections.append(patch_method(monkeypatch, OpenedSources, "close", "OpenedSources.close"))
        return injections

    return install


BOTH = ("local", "remote")
ALL = ("local", "remote", "none")
CASES = [
    # Staging: the copy out of the user's file (the stager), and its hash (the hasher).
    Case("steps.copy", _function("steps", "copy"), BOTH, "failed"),
    Case("objects.copy_out", _function("objects", "copy_out"), BOTH, "failed"),
    Case("steps.hash_staged", _function("steps", "hash_staged"), BOTH, "failed"),
    Case("objects.hash_copies", _function("objects", "hash_copies"), BOTH, "failed"),
    Case("objects.kernel_copy", _function("objects", "kernel_copy"), BOTH, "failed"),
    Case("objects.file_digest", _function("objects", "file_digest"), BOTH, "failed"),
    Case("steps.content_in_place", _function("steps", "content_in_place"), ("none",), "failed"),
    # The same with the hash reading the copy as it is written: a failed copy ends the hash's wait and
    # is settled once, by the stager; a failed hash waits for the copy to end before it settles.
    Case("steps.copy", _function("steps", "copy"), BOTH, "failed", behind=True),
    Case("objects.copy_out", _function("objects", "copy_out"), BOTH, "failed", behind=True),
    Case("objects.kernel_copy", _function("objects", "kernel_copy"), BOTH, "failed", behind=True),
    Case("steps.hash_staged", _function("steps", "hash_staged"), BOTH, "failed", behind=True),
    Case("objects.hash_copies", _function("objects", "hash_copies"), BOTH, "failed", behind=True),
    Case("objects.digest_behind", _function("objects", "digest_behind"), BOTH, "failed", behind=True),
    # Small snapshots read on the training thread: a failed read falls back to the stager.
    Case("objects.read_small", _function("objects", "read_small"), ("local", "none"), "stored", inline=True),
    Case("objects.publish_bytes", _function("objects", "publish_bytes"), ("local",), "failed", inline=True),
    # The journal: the pending row (and the model row of a path's first save).
    Case("store.add_snapshots", _store_method("add_snapshots"), ALL, "unrecorded"),
    Case("store.find_or_create_model", _store_method("find_or_create_model"), BOTH, "unrecorded"),
    # Publishing: dedupe and rename into place (local), journal the staged copy and upload (remote).
    Case("steps.stored_copies", _function("steps", "stored_copies"), ("local",), "kept"),
    Case("steps.publish_local", _function("steps", "publish_local"), ("local",), "failed"),
    Case("steps.publish_local", _function("steps", "publish_local"), ("local",), "failed", inline=True),
    Case("objects.publish_staged", _function("objects", "publish_staged"), ("local",), "failed"),
    Case("objects.publish_staged", _function("objects", "publish_staged"), ("remote",), "kept"),
    Case("steps.journal_staged", _function("steps", "journal_staged"), ("remote",), "kept"),
    Case("steps.upload", _function("steps", "upload"), ("remote",), "kept"),
    Case("BlobStore.put_file", _put_file, ("remote",), "kept", config={"upload_retries": 2}),
    # Recording the outcome: the stored rows and the stat cache, in one transaction.
    Case("store.finish_snapshots", _store_method("finish_snapshots"), ALL, "failed"),
    Case("identity.remember_many", _function("identity", "remember_many"), BOTH, "failed"),
    # After it is stored: retention (keep_last), through the on_stored callback.
    Case("retention.prune", _function("retention", "prune"), BOTH, "retained", keep_last=2),
    Case("on_stored", _on_stored, BOTH, "retained", keep_last=2),
    # Cleanup effects: removing the staging folder and the copied marker, closing the saved file.
    Case("cleanup effects", _cleanup("file_digest"), BOTH, "failed"),
    Case("cleanup effects", _cleanup("digest_behind"), BOTH, "failed", behind=True),
    Case("OpenedSources.close", _close(None), BOTH, "stored"),
    Case("OpenedSources.close", _close(None), ("local",), "stored", inline=True),
    Case("OpenedSources.close after a failed copy", _close("kernel_copy"), BOTH, "failed"),
    Case("OpenedSources.close after a failed copy", _close("kernel_copy"), BOTH, "failed", behind=True),
    # A load: its hash and its lineage link (the lineage worker).
    Case("lineage.record_load", _function("lineage", "record_load"), BOTH, "lineage"),
    Case("the hash of a loaded file", _function("capture", "opened_content", "capture.opened_content"), BOTH,
         "lineage"),
]


def _params():
    for case in CASES:
        for store in case.stores:
            yield pytest.param(case, store, id=f"{case.id}-{store}" + ("-inline" if case.inline else "")
                               + ("-behind" if case.behind else ""))


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "autolog" and r.levelno >= logging.WARNING]


def _summaries(caplog: pytest.LogCaptureFixture, task: Task) -> list[str]:
    """close()'s one summary warning ("autolog: task <id8>: ...")."""
    return [w for w in _warnings(caplog) if w.startswith(f"autolog: task {task.id[:8]}:")]


def _timed_close(task: Task) -> float:
    started = time.monotonic()
    task.close()
    return time.monotonic() - started


def _timed(wait: Callable[[], bool], expect: bool) -> float:
    started = time.monotonic()
    assert wait() is expect
    return time.monotonic() - started


def _not_dead(worker: Any) -> bool:
    """Running, or ended by the close of its task (stop()): not died."""
    return worker.alive() or worker.stopped


def _assert_workers_survived(task: Task) -> None:
    supervisor = task._runtime.pipeline._supervisor
    assert supervisor.broken is None, supervisor.broken
    for worker in supervisor.workers:
        assert _not_dead(worker), f"{worker.name} died: {worker.death}"
        assert worker.restarts == 0, f"{worker.name} needed {worker.restarts} restart(s) (last death: {worker.death})"


def _settle(task: Task) -> None:
    """Wait (bounded) until the pipeline holds no job: the next save starts on an idle pipeline."""
    pipeline = task._runtime.pipeline
    wait_until(lambda: not pipeline.pending(), "the pipeline to settle its jobs", timeout=30)


def _expected_digests(tmp_path: Path, steps: range, name: Callable[[int], str] = lambda step: "ckpt.pt"
                      ) -> dict[int, str]:
    """The digest of the bytes torch.save writes for tensor(step) under the file name name(step) (the name
    is inside torch's archive), saved here before any task runs."""
    hashes = {}
    for step in steps:
        path = tmp_path / "expected" / str(step) / name(step)
        path.parent.mkdir(parents=True)
        torch.save(tensor(step), path)
        hashes[step] = digest(path)
    return hashes


def _store_uri(kind: str, local_store: str, remote_store: str) -> str | None:
    return {"local": local_store, "remote": remote_store, "none": None}[kind]


def _configure(task: Task, inline: bool, behind: bool = False) -> None:
    """Before the first save: uploads retried after 10 ms; small snapshots staged like big ones unless
    the case is about the inline path (read on the training thread); hashed behind their copy if the
    case says so."""
    pipeline = task._runtime.pipeline
    pipeline.options = dataclasses.replace(pipeline.options, retry_backoff=0.01,
                                           **({} if inline else {"inline_bytes": 0}),
                                           **({"hash_behind_bytes": 0} if behind else {}))


@pytest.mark.parametrize("case, store_kind", list(_params()))
def test_a_failure_injected_into_one_step_settles_that_snapshot_and_later_ones_are_stored(
        case: Case, store_kind: str, local_store, remote_store, work, tmp_path, config, lenient, monkeypatch,
        staging_root, env):
    caplog = lenient
    expected = _expected_digests(tmp_path, range(1, 4))
    first, second = work / "pretrained-a.pt", work / "pretrained-b.pt"
    if case.outcome == "lineage":  # written before Task.init: files no task knows
        torch.save(tensor(101), first)
        torch.save(tensor(102), second)
    config(pipeline={"stall_timeout": 5, **(case.config or {})})
    uri = _store_uri(store_kind, local_store, remote_store)
    task = Task.init(project_name="pipeline", task_name=f"inject {case.id}", output_uri=uri,
                     keep_last=case.keep_last)
    wait_for_start(task)  # its rehearsal of the first rows calls steps the cases inject into
    _configure(task, case.inline, case.behind)
    injections = case.install(monkeypatch, task)
    cause = injections[0]
    ckpt = work / "ckpt.pt"

    if case.outcome == "lineage":
        assert torch.equal(torch.load(first, weights_only=True), tensor(101))  # this load's lineage fails
        _settle(task)
    # The first save meets the injection alone; the next two follow back to back. A snapshot is hashed
    # behind its copy while someone waits for stored snapshots: here, for the saves' whole time.
    with task._runtime.pipeline._someone_waits() if case.behind else contextlib.nullcontext():
        torch.save(tensor(1), ckpt)
        _settle(task)
        torch.save(tensor(2), ckpt)
        torch.save(tensor(3), ckpt)
    if case.outcome == "lineage":
        assert torch.equal(torch.load(second, weights_only=True), tensor(102))
    took = _timed_close(task)

    for injection in injections:
        assert injection.hits == injection.times, f"{injection.name} was never reached ({injection.calls} calls)"
    assert took < CLOSE_BOUND, f"close() took {took:.1f} s"
    _assert_workers_survived(task)

    snaps = output_snapshots(task, "ckpt.pt")
    summaries = _summaries(caplog, task)
    later = snaps[1:]
    if case.outcome == "unrecorded":  # the first save got no row; the next two are seq 1 and 2
        assert [s.seq for s in snaps] == [1, 2], [(s.seq, s.status) for s in snaps]
        later = snaps
        assert len(summaries) == 1, _warnings(caplog)
        assert "1 save(s) were not recorded" in summaries[0], summaries
        assert f"RuntimeError: {cause.message}" in summaries[0], summaries
    else:
        assert [s.seq for s in snaps] == [1, 2, 3], [(s.seq, s.status) for s in snaps]
    first_snap = snaps[0]
    if case.outcome == "failed":
        assert first_snap.status == "failed", (first_snap.status, first_snap.reason)
        assert first_snap.reason == f"RuntimeError: {cause.message}", first_snap.reason
        assert len(summaries) == 1, _warnings(caplog)
        assert f"1 snapshot(s) failed: ckpt.pt #1 (RuntimeError: {cause.message})" in summaries[0], summaries
    elif case.outcome == "kept":  # pending, its staged copy kept for `autolog sync`
        assert first_snap.status == "pending", (first_snap.status, first_snap.reason)
        assert first_snap.reason.startswith(f"not stored yet (RuntimeError: {cause.message}); staged copy kept at"), \
            first_snap.reason
        assert "autolog sync" in first_snap.reason
        assert first_snap.stage_uri and first_snap.stage_uri in first_snap.reason
        (staged,) = files_under(first_snap.stage_uri)
        assert digest(staged) == expected[1], "the kept copy is not the bytes of the first save"
        assert len(summaries) == 1, _warnings(caplog)
        assert (f"1 snapshot(s) not stored yet, their staged copies kept: ckpt.pt #1 (RuntimeError: {cause.message})"
                in summaries[0]), summaries
        assert "failed" not in summaries[0], summaries
    elif case.outcome == "retained":  # stored, then deleted by retention once #3 was stored
        assert first_snap.status == "deleted", (first_snap.status, first_snap.reason)
        assert first_snap.reason == "retention: keep_last=2"
        assert first_snap.digest == expected[1]
        assert not object_path(first_snap.uri).exists()
        assert summaries == [], summaries
        assert any(w.endswith(f"was not logged: RuntimeError: {cause.message}") for w in _warnings(caplog)), \
            _warnings(caplog)  # reported, not silently dropped
    elif case.outcome in ("stored", "lineage"):
        if store_kind == "none":
            later = snaps
        else:
            assert_stored_tensor(first_snap, tensor(1))
        assert summaries == [], summaries
    for snap in later:
        step = snap.seq if case.outcome != "unrecorded" else snap.seq + 1
        if store_kind == "none":
            assert snap.status == "local", (snap.seq, snap.status, snap.reason)
            assert snap.uri == str(ckpt) and snap.digest == expected[step], (snap.seq, snap.uri)
        else:
            assert_stored_tensor(snap, tensor(step))
    for snap in snaps:  # the cause, never a cleanup path
        assert ".copied" not in (snap.reason or "") and "incomplete-" not in (snap.reason or ""), snap.reason

    if case.outcome == "lineage":
        (linked,) = task.models["input"]
        assert linked.source_path == str(second), [m.source_path for m in task.models["input"]]
        assert f"autolog: lineage of {first} was not logged: RuntimeError: {cause.message}" in _warnings(caplog)
    if case.outcome != "kept" and case.id != "cleanup effects":
        # Whatever failed, its staging was cleaned up: nothing half-written is left anywhere, and every
        # object in the store belongs to a stored snapshot (none to the failed one).
        if store_kind != "none":
            stored = {object_path(s.uri) for s in snaps if s.status == "stored"}
            root = object_path(local_store if store_kind == "local" else remote_store)
            assert set(files_under(root)) == stored, sorted(map(str, set(files_under(root)) ^ stored))
        assert files_under(staging_root) == []
    if case.outcome == "kept":
        # The kept copy is what `autolog sync` stores once the storage works (a fresh process).
        report = cli_json(env, "sync")
        assert [s["id"] for s in report["stored"]] == [first_snap.id]
        assert_stored_tensor(output_snapshots(task, "ckpt.pt")[0], tensor(1))


# -- a worker thread that dies anyway --------------------------------------------------------
def _kill_worker(monkeypatch: pytest.MonkeyPatch, name: str, times: int,
                 armed: Callable[[], bool] = lambda: True) -> Injection:
    """Worker._one raises (before taking a job) in the named worker, once armed() holds: its loop ends,
    the thread dies."""
    from autolog.snapshots import worker

    return patch_method(monkeypatch, worker.Worker, "_one", f"the loop of {name}", times=times,
                        when=lambda self: self.name == name and armed())


def _worker(task: Task, name: str) -> Any:
    (found,) = [w for w in task._runtime.pipeline._supervisor.workers if w.name == name]
    return found


@pytest.mark.parametrize("store_kind, name", [("local", "autolog-stager"), ("local", "autolog-hasher"),
                                              ("local", "autolog-recorder"), ("remote", "autolog-stager"),
                                              ("remote", "autolog-uploader-0")])
def test_a_dead_worker_thread_is_restarted_and_later_snapshots_are_stored(
        store_kind, name, local_store, remote_store, work, config, lenient, monkeypatch):
    caplog = lenient
    config(pipeline={"stall_timeout": 2})
    death = _kill_worker(monkeypatch, name, times=1)  # before Task.init, whose thread starts the workers
    task = Task.init(project_name="pipeline", task_name="dies once",
                     output_uri=_store_uri(store_kind, local_store, remote_store))
    _configure(task, inline=False)
    for step in (1, 2, 3):
        torch.save(tensor(step), work / "ckpt.pt")
    took = _timed_close(task)

    assert death.hits == 1
    assert took < CLOSE_BOUND, f"close() took {took:.1f} s"
    for snap, step in zip(output_snapshots(task, "ckpt.pt"), (1, 2, 3), strict=True):
        assert_stored_tensor(snap, tensor(step))
    supervisor = task._runtime.pipeline._supervisor
    assert supervisor.broken is None
    dead = _worker(task, name)
    assert dead.restarts == 1 and _not_dead(dead), (dead.restarts, dead.death)
    assert dead.death == f"RuntimeError: {death.message}"
    assert all(_not_dead(w) for w in supervisor.workers)
    assert f"autolog: background worker {name} stopped (RuntimeError: {death.message}); restarted it" \
        in _warnings(caplog)
    assert _summaries(caplog, task) == []


def test_a_dead_worker_is_restarted_by_the_next_save(local_store, work, config, lenient, monkeypatch):
    """Not only by a wait: a save that waits for nothing restarts it, so its snapshots do not queue up
    until close()."""
    death = _kill_worker(monkeypatch, "autolog-stager", times=1)  # dies as Task.init's thread starts it
    task = Task.init(project_name="pipeline", task_name="restarted by a save", output_uri=local_store)
    _configure(task, inline=False)
    stager = _worker(task, "autolog-stager")
    wait_until(lambda: death.hits == 1 and not stager.alive(), "the stager's death")
    torch.save(tensor(1), work / "ckpt.pt")
    assert stager.restarts == 1 and stager.alive(), (stager.restarts, stager.death)
    task.close()
    (snap,) = output_snapshots(task, "ckpt.pt")
    assert_stored_tensor(snap, tensor(1))


def test_a_worker_that_died_while_nobody_waited_gets_a_fresh_stall_timeout_once_restarted(
        local_store, work, config, lenient, stager, monkeypatch):
    """The stager dies with two saves queued and no save after them; the training goes on for longer
    than stall_timeout. close() restarts it: the time it lay dead is not the restarted thread's
    silence, so close() waits for its copies instead of giving up at once."""
    caplog = lenient
    stall_timeout = 1.0
    config(pipeline={"stall_timeout": stall_timeout})
    armed = threading.Event()
    death = _kill_worker(monkeypatch, "autolog-stager", times=1, armed=armed.is_set)
    task = Task.init(project_name="pipeline", task_name="died unseen", output_uri=local_store)
    _configure(task, inline=False)
    stager.hold()
    torch.save(tensor(1), work / "ckpt-1.pt")
    assert stager.wait_for_calls(1)
    for step in (2, 3):
        torch.save(tensor(step), work / f"ckpt-{step}.pt")
    armed.set()  # the stager dies once it is done with the first snapshot
    stager.release.set()
    dead = _worker(task, "autolog-stager")
    wait_until(lambda: death.hits == 1 and not dead.alive(), "the stager's death")
    time.sleep(stall_timeout + 1.0)  # training; nothing waits on the dead stager meanwhile
    took = _timed_close(task)

    assert took < CLOSE_BOUND, f"close() took {took:.1f} s"
    for step in (1, 2, 3):
        (snap,) = output_snapshots(task, f"ckpt-{step}.pt")
        assert_stored_tensor(snap, tensor(step))
    assert dead.restarts == 1, dead.restarts
    assert _summaries(caplog, task) == []


def test_a_worker_that_dies_every_time_lets_close_return_naming_it_and_autolog_sync(local_store, work, config,
                                                                                   lenient, monkeypatch):
    from autolog.snapshots.worker import MAX_RESTARTS

    caplog = lenient
    stall_timeout = 2.0
    config(pipeline={"stall_timeout": stall_timeout})
    death = _kill_worker(monkeypatch, "autolog-stager", times=10**9)  # before Task.init starts the workers
    task = Task.init(project_name="pipeline", task_name="dies always", output_uri=local_store)
    _configure(task, inline=False)
    save_took = []
    for step in (1, 2, 3):
        started = time.monotonic()
        torch.save(tensor(step), work / f"ckpt-{step}.pt")
        save_took.append(time.monotonic() - started)
    took = _timed_close(task)

    assert max(save_took) < stall_timeout + 5, save_took
    assert took < stall_timeout + 5, f"close() took {took:.1f} s"
    assert death.hits == MAX_RESTARTS + 1
    supervisor = task._runtime.pipeline._supervisor
    assert supervisor.broken and "autolog-stager" in supervisor.broken
    (summary,) = _summaries(caplog, task)
    assert "3 snapshot(s) not stored yet" in summary, summary
    assert f"background worker autolog-stager stopped {MAX_RESTARTS + 1} times" in summary, summary
    assert "ckpt-1.pt #1" in summary and "ckpt-3.pt #1" in summary, summary
    assert "autolog sync" in summary, summary
    for step in (1, 2, 3):
        (snap,) = output_snapshots(task, f"ckpt-{step}.pt")
        assert snap.status == "pending", (snap.status, snap.reason)  # journaled: sync finishes it


# -- a stager stuck forever ------------------------------------------------------------------
def test_saves_beyond_the_backlog_room_return_while_the_stager_is_stuck_forever(local_store, work, config, lenient,
                                                                               stager, tmp_path):
    caplog = lenient
    stall_timeout = 2.0
    saves = 70
    expected = _expected_digests(tmp_path, range(1, saves + 1), lambda step: f"ckpt-{step:02d}.pt")
    config(pipeline={"stall_timeout": stall_timeout})
    task = Task.init(project_name="pipeline", task_name="stuck stager", output_uri=local_store)
    pipeline = task._runtime.pipeline
    room = pipeline.options.max_unread
    assert room < saves
    # The task's start done first: on a loaded machine it took seconds, and the rows it then let the
    # recorder write moved the heartbeat in the middle of the wait this test bounds.
    task._runtime.ctx
    stager.hold()  # the stager takes the first snapshot and never comes back (until released at the end)
    took: list[float] = []

    def training() -> None:
        for step in range(1, saves + 1):
            started = time.monotonic()
            torch.save(tensor(step), work / f"ckpt-{step:02d}.pt")
            took.append(time.monotonic() - started)

    thread = threading.Thread(target=training, name="training", daemon=True)
    thread.start()
    thread.join(timeout=saves * (stall_timeout + 1))
    assert not thread.is_alive(), f"save {len(took) + 1} never returned"
    assert len(took) == saves
    assert max(took) < stall_timeout + 2, [f"{t:.2f}" for t in took]
    # Once the first save past the room found the stall, the next ones give up at once (not after a poll).
    assert statistics.median(took[room + 1:]) < 0.1, [f"{t:.2f}" for t in took[room:]]
    stuck = pipeline.pending()[0]  # and so do waits for the stuck work (the fence, flush's, the rows')
    for wait in (lambda: pipeline.wait_for(stuck, "done"), lambda: pipeline.wait_until(lambda: False, "nothing")):
        assert min(_timed(wait, expect=False) for _ in range(3)) < 0.1
    assert stager.calls == 1

    closed_in = _timed_close(task)
    assert closed_in < stall_timeout + 5, f"close() took {closed_in:.1f} s"
    (summary,) = _summaries(caplog, task)
    assert f"{room} snapshot(s) not stored yet (autolog's background work made no progress" in summary, summary
    assert "busy with autolog-stager: ckpt-01.pt #1)" in summary, summary
    assert "autolog sync" in summary, summary
    beyond = [str(work / f"ckpt-{step:02d}.pt") for step in range(room + 1, saves + 1)]
    assert f"{len(beyond)} save(s) were not stored (autolog's background work had stalled" in summary, summary
    assert "the database could not take them" not in summary, summary  # the database was fine
    for path in beyond[:5]:  # the summary names up to 10 of each list
        assert path in summary, (path, summary)
    recorded = set(task.models["output"].keys())
    assert recorded == {f"ckpt-{step:02d}.pt" for step in range(1, room + 1)} or not any(
        output_snapshots(task, f"ckpt-{step:02d}.pt") for step in range(room + 1, saves + 1)
        if f"ckpt-{step:02d}.pt" in recorded), "a save past the room was queued"

    # Releasing the stager now: the journaled snapshots go on in the background; nothing hangs.
    stager.release.set()
    wait_until(lambda: not pipeline.pending(), "the released stager to finish the backlog", timeout=60)
    for step in range(1, room + 1):
        (snap,) = output_snapshots(task, f"ckpt-{step:02d}.pt")
        assert snap.status == "stored" and snap.digest == expected[step], (step, snap.status, snap.reason)
    # The task is closed: with its last job done, its workers end (none died on the way).
    wait_until(lambda: all(w.stopped and not w.alive() for w in pipeline._supervisor.workers),
               "the closed task's workers to end")
    assert all(w.restarts == 0 for w in pipeline._supervisor.workers)
