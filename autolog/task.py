"""Task: one run of a script. `Task.init()` at the top of a training script is all it takes."""
from __future__ import annotations

import atexit
import dataclasses
import logging
import os
import signal
import sys
import threading
import time
import traceback
from typing import Any, Sequence

from . import artifacts as _artifacts
from . import binding
from .capture import CaptureRecorder
from .config import redact_url
from .context import Context, default_context, row_being_created
from .db import TaskRecord, new_id
from .db.version import preflight_check
from .errors import TaskNotFoundError
from .model import InputModel, Model, ModelList, delete_path, store_snapshot
from .run_info import collect_run_info, installed_packages
from .safety import shielded
from .storage import BlobStore, collect_sources, journal, retention
from .storage.layout import task_prefix
from .storage.jobs import PipelineOptions, SnapshotJob
from .storage.pipeline import SnapshotPipeline, wait_for_loads

logger = logging.getLogger("autolog")


class Task:
    """A run: what started it, what it uploaded, which models it saved and loaded.

    >>> task = Task.init(project_name="digits", task_name="train", output_uri=True)
    """

    _current: "Task | None" = None
    _exit_hooks_installed = False

    def __init__(self, *args: Any, **kwargs: Any):
        raise TypeError("Create tasks with Task.init(...) and fetch them with Task.get_task(...).")

    @classmethod
    def _from_record(cls, ctx: Context, record: TaskRecord, output_uri: str | None = None) -> "Task":
        task = object.__new__(cls)
        task._context = ctx
        task._ready = threading.Event()
        task._ready.set()
        task._init_error = None
        task._init_thread = None
        task._record = record
        task._output_uri = output_uri if output_uri is not None else record.output_uri
        task._blobstore_cache = None
        task._artifact_store_cache = None
        task._closed = record.status != "running"
        task._failure = None
        task._attached = False
        task._pipeline_cache = None
        task._keep_last = ctx.settings.keep_last
        task._auto_connect = False
        return task

    # -- creating and finding tasks ------------------------------------------------------
    @classmethod
    def init(
        cls,
        project_name: str | None = None,
        task_name: str | None = None,
        task_type: str = "training",
        tags: Sequence[str] | None = None,
        output_uri: str | bool | None = None,
        auto_connect_frameworks: bool | dict = True,
        keep_last: int | None = None,
    ) -> "Task":
        """Start a task for this run (or return the running one).

        output_uri: where snapshot weights and artifacts are copied. A local path, file://, or any
        fsspec URL (s3://, gs://, az://, memory://); True = the configured default
        (sdk.development.default_output_uri, else $AUTOLOG_HOME/storage); None/False = record
        local paths and content hashes only (artifacts still go to the default location).
        auto_connect_frameworks: False, or {"pytorch": False | "*.pt" | ["*.pt", ...], ...} per framework.
        keep_last: keep only the newest N stored snapshots of each model (default: config, else all).
        """
        if cls._current is not None and not cls._current._closed:
            return cls._current
        ctx = default_context()
        parent = _parent_task(ctx)
        if parent is not None:
            return cls._attach(ctx, parent, auto_connect_frameworks)
        uri = _resolve_output_uri(output_uri, ctx.settings.default_output_uri)
        blobstore = BlobStore(uri) if uri else None
        if blobstore is not None:
            blobstore.check_writable()
        run_info = collect_run_info()
        record = TaskRecord(
            id=new_id(), project=project_name or "default", name=task_name or _default_task_name(run_info),
            task_type=task_type, status="running", status_message=None,
            output_uri=redact_url(blobstore.root) if blobstore else None, tags=list(tags or []),
            created=time.time(), ended=None, run_info=run_info, parameters={}, comment="",
        )
        task = cls._from_record(ctx, record, blobstore.root if blobstore else None)
        task._blobstore_cache = blobstore
        if keep_last is not None:
            task._keep_last = keep_last
        # Opening the database (and importing SQLAlchemy) takes ~0.1 s: the training script goes on
        # meanwhile, and whatever needs the task's row waits for it (Task._ctx).
        preflight_check(ctx.settings.db_url)
        task._ready.clear()
        task._init_thread = threading.Thread(target=task._create_record, name="autolog-init", daemon=True)
        row_being_created(task._ready, task._init_thread)
        task._init_thread.start()
        cls._current = task
        cls._install_exit_hooks()
        task._start_capture(auto_connect_frameworks)
        os.environ[_TASK_ENV] = task.id
        os.environ[_PID_ENV] = str(os.getpid())
        logger.info(
            "autolog: task %s/%s id=%s output_uri=%s",
            record.project, record.name, record.id, redact_url(blobstore.root) if blobstore else None,
        )
        return task

    @classmethod
    def _attach(cls, ctx: Context, record: TaskRecord, auto_connect_frameworks: bool | dict) -> "Task":
        """A child process (multiprocessing, torchrun worker) logs into its parent's task."""
        task = cls._from_record(ctx, record)
        task._attached = True
        cls._current = task
        cls._install_exit_hooks()
        task._start_capture(auto_connect_frameworks)
        logger.info("autolog: attached to parent task %s/%s id=%s", record.project, record.name, record.id)
        return task

    def _start_capture(self, auto_connect_frameworks: bool | dict) -> None:
        self._auto_connect = auto_connect_frameworks
        if auto_connect_frameworks is False:
            return
        binding.install()
        binding.activate(CaptureRecorder(self, auto_connect_frameworks, self._context.settings.capture_ignore))

    @classmethod
    def current_task(cls) -> "Task | None":
        """The task this process is running, if any."""
        return cls._current

    @classmethod
    def get_task(
        cls, task_id: str | None = None, project_name: str | None = None, task_name: str | None = None
    ) -> "Task":
        """A task by id (or unique id prefix), or the newest one with this project and/or name."""
        ctx = default_context()
        if task_id is not None:
            return cls._from_record(ctx, ctx.store.get_task(task_id))
        if project_name is None and task_name is None:
            raise ValueError("get_task needs task_id=, or project_name= and/or task_name=.")
        found = ctx.store.find_tasks(project=project_name, name=task_name, limit=1)
        if not found:
            raise TaskNotFoundError(
                f"No task named {task_name!r} in project {project_name!r}. List tasks with `autolog task list`."
            )
        return cls._from_record(ctx, found[0])

    @classmethod
    def get_tasks(
        cls,
        project_name: str | None = None,
        task_name: str | None = None,
        tags: Sequence[str] | None = None,
        status: str | None = None,
        limit: int | None = None,
    ) -> list["Task"]:
        """Every matching task, newest first."""
        ctx = default_context()
        records = ctx.store.find_tasks(project=project_name, name=task_name, status=status, tags=tags, limit=limit)
        return [cls._from_record(ctx, r) for r in records]

    # -- what a task is ------------------------------------------------------------------
    id = property(lambda self: self._record.id)
    name = property(lambda self: self._record.name)
    project = property(lambda self: self._record.project)
    task_type = property(lambda self: self._record.task_type)
    tags = property(lambda self: list(self._record.tags))
    created = property(lambda self: self._record.created, doc="Start time, UNIX seconds.")
    output_uri = property(lambda self: self._output_uri, doc="Where weights and artifacts are copied (None: not copied).")

    @property
    def status(self) -> str:
        """running, completed or failed."""
        self._record = self._ctx.store.get_task(self.id)
        return self._record.status

    @property
    def ended(self) -> float | None:
        return self._ctx.store.get_task(self.id).ended

    @property
    def run_info(self) -> dict[str, Any]:
        """argv, script, cwd, git commit/branch, python, host, user, pid, installed packages."""
        return dict(self._ctx.store.get_task(self.id).run_info)

    def __repr__(self) -> str:
        return f"<Task {self.project}/{self.name} id={self.id[:8]} status={self._record.status}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Task) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    @property
    def _ctx(self) -> Context:
        """The context, once the task's row exists (Task.init creates it in a background thread)."""
        self._ready.wait()
        if self._init_error is not None:
            raise self._init_error
        return self._context

    def _create_record(self) -> None:
        ctx, record = self._context, self._record
        try:
            ctx.store.create_task(**{f.name: getattr(record, f.name) for f in dataclasses.fields(record)})
        except BaseException as exc:  # noqa: BLE001 - surfaced by every later use of the task
            self._init_error = exc
            logger.error("autolog: this run is not being recorded: %s", exc)
            return
        finally:
            self._ready.set()
        with shielded("the list of installed packages"):
            info = dict(record.run_info, packages=installed_packages())
            ctx.store.update_task(record.id, run_info=info)
        _warn_about_unfinished(ctx, record.id)

    @property
    def _task_key(self) -> str:
        return task_prefix(self.project, self.name, self.id)

    @property
    def _blobstore(self) -> BlobStore | None:
        if self._blobstore_cache is None and self._output_uri:
            self._blobstore_cache = BlobStore(self._output_uri)
        return self._blobstore_cache

    @property
    def _pipeline(self) -> SnapshotPipeline:
        if self._pipeline_cache is None:
            # The context without waiting for the task's row: workers wait for the database, not callers.
            settings = self._context.settings
            self._pipeline_cache = SnapshotPipeline(self._context, PipelineOptions(
                backlog_bytes=settings.backlog_bytes, backlog_policy=settings.backlog_policy,
                upload_retries=settings.upload_retries,
            ))
        return self._pipeline_cache

    def _on_snapshot_stored(self, job: SnapshotJob) -> None:
        if self._keep_last:
            # The new snapshot is stored whatever happens to older ones: a failed deletion is a warning,
            # never a reason to record this snapshot as failed.
            with shielded(f"retention of model {job.model.name!r}"):
                retention.prune(self._ctx, job.model.id, self._keep_last)

    @property
    def _artifact_store(self) -> BlobStore:
        """Artifacts are always uploaded: to output_uri, else to the configured default location."""
        if self._artifact_store_cache is None:
            self._artifact_store_cache = self._blobstore or BlobStore(self._ctx.settings.default_output_uri)
        return self._artifact_store_cache

    # -- artifacts -----------------------------------------------------------------------
    def upload_artifact(
        self, name: str, artifact_object: Any, metadata: dict | None = None, preview: str | None = None,
    ) -> bool:
        """Store an object under `name` (replacing an earlier one of that name). Returns True.

        Files are stored as is, folders zipped, numpy arrays as .npz, DataFrames as .csv.gz, PIL
        images as .png, JSON-able dicts/lists as .json, anything else pickled. A URL string is
        recorded as a reference without upload; any other string must be an existing path.
        """
        _artifacts.upload_artifact(self, name, artifact_object, metadata, preview)
        return True

    @property
    def artifacts(self) -> dict[str, _artifacts.Artifact]:
        """Artifacts by name, in upload order."""
        return {r.name: _artifacts.Artifact(self._ctx, r) for r in self._ctx.store.artifacts_of(self.id)}

    # -- models --------------------------------------------------------------------------
    @property
    def models(self) -> dict[str, ModelList]:
        """{"input": models this task loaded, "output": models it saved}; each ordered oldest to newest."""
        wait_for_loads()
        ctx = self._ctx
        output = ModelList(Model._from_record(ctx, r) for r in ctx.store.models_of_task(self.id))
        inputs: dict[str, Model] = {}
        for load in ctx.store.loads_by_task(self.id):
            inputs.pop(load.model_id, None)  # re-insert: ordered by most recent load
            inputs[load.model_id] = Model._from_record(ctx, ctx.store.get_model(load.model_id))
        return {"input": ModelList(inputs.values()), "output": output}

    def update_output_model(
        self,
        model_path: str | os.PathLike,
        name: str | None = None,
        comment: str | None = None,
        tags: Sequence[str] | None = None,
        iteration: int | None = None,
        framework: str | None = None,
        auto_delete_file: bool = False,
    ) -> str:
        """Add a snapshot of model_path to this task's output model `name` (default: the file name).

        The model is created on first use and reused by later calls with the same name. Returns
        the snapshot's URI.
        """
        model_name = name or os.path.basename(os.fspath(model_path).rstrip(os.sep))
        store = self._ctx.store
        record, created = store.find_or_create_model(
            self.id, "api", {"name": model_name}, project=self.project, framework=framework,
            tags=list(tags or []), comment=comment or "",
        )
        if not created:
            updates = {k: v for k, v in (("tags", list(tags) if tags else None), ("comment", comment),
                                         ("framework", framework)) if v is not None}
            if updates:
                store.update_model(record.id, **updates)
        snap, uri = store_snapshot(self, record, collect_sources(model_path), iteration)
        logger.info("autolog: model %r snapshot %d stored at %s", model_name, snap.seq, redact_url(uri))
        if auto_delete_file:
            delete_path(os.fspath(model_path))
        return uri

    def connect(self, obj: Any, name: str = "General") -> Any:
        """Connect an InputModel (recorded as this task's input) or a dict of parameters (stored under
        `name`, returned unchanged)."""
        if isinstance(obj, InputModel):
            obj.connect(self)
            return obj
        if isinstance(obj, dict):
            params = dict(self._ctx.store.get_task(self.id).parameters)
            params[name] = {str(k): _jsonable(v) for k, v in obj.items()}
            self._ctx.store.update_task(self.id, parameters=params)
            return obj
        raise TypeError(f"Task.connect takes an InputModel or a dict, not {type(obj).__name__}.")

    def get_parameters(self) -> dict[str, Any]:
        return dict(self._ctx.store.get_task(self.id).parameters)

    # -- ending --------------------------------------------------------------------------
    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every snapshot is stored (progress bar after 1 s). False if some are still pending
        after timeout seconds (default: config pipeline.flush_timeout); they are named in a warning."""
        if self._pipeline_cache is None:
            return True
        timeout = self._context.settings.flush_timeout if timeout is None else timeout
        left = self._pipeline_cache.flush(timeout)
        if left:
            names = ", ".join(getattr(j, "label", "?") for j in left[:10]) + (" ..." if len(left) > 10 else "")
            logger.warning(
                "autolog: %d snapshot(s) of task %s not stored after %.0f s: %s. They are journaled: run "
                "`autolog sync` to finish them (or wait longer: task.flush(timeout=...)).",
                len(left), self.id[:8], timeout, names,
            )
        return not left

    def close(self) -> None:
        """Store what is pending, then finish the task: completed (or failed after an unhandled
        exception or SIGTERM). Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if Task._current is self:
            binding.activate(None)
            Task._current = None
        try:
            self.flush()
        finally:
            if not self._attached:  # the parent process owns the task's status
                with shielded(f"the end of task {self.id[:8]}"):
                    self._finish()

    def _finish(self) -> None:
        if os.environ.get(_TASK_ENV) == self.id:
            os.environ.pop(_TASK_ENV, None)
            os.environ.pop(_PID_ENV, None)
        if self._init_thread is not None:
            self._init_thread.join(timeout=10)
        status = "failed" if self._failure else "completed"
        self._ctx.store.update_task(self.id, status=status, status_message=self._failure, ended=time.time())
        logger.info("autolog: task %s/%s %s", self.project, self.name, status)

    def mark_failed(self, message: str = "") -> None:
        """Record that the run failed; close() then ends it as failed."""
        self._failure = message or "marked failed"

    def __enter__(self) -> "Task":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc is not None:
            self.mark_failed("".join(traceback.format_exception_only(exc_type, exc)).strip())
        self.close()

    @classmethod
    def _install_exit_hooks(cls) -> None:
        if cls._exit_hooks_installed:
            return
        cls._exit_hooks_installed = True
        previous_hook = sys.excepthook

        def excepthook(exc_type, exc, tb):  # type: ignore[no-untyped-def]
            task = cls._current
            if task is not None:
                task.mark_failed("".join(traceback.format_exception_only(exc_type, exc)).strip())
            previous_hook(exc_type, exc, tb)

        sys.excepthook = excepthook
        atexit.register(cls._close_at_exit)
        _flush_on_sigterm()

    @classmethod
    def _close_at_exit(cls) -> None:
        task = cls._current
        if task is not None:
            with shielded("closing the task at exit"):
                task.close()


def _after_fork_in_child() -> None:
    """A forked child (multiprocessing, DataLoader worker) gets its own handle on the parent's task:
    the parent's threads, locks and pending work did not come along."""
    parent = Task._current
    if parent is None:
        return
    child = Task._from_record(parent._context, parent._record, parent._output_uri)
    child._attached = True
    child._keep_last = parent._keep_last
    Task._current = child
    if parent._auto_connect is not False:
        child._start_capture(parent._auto_connect)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)

_TASK_ENV = "AUTOLOG_TASK_ID"
_PID_ENV = "AUTOLOG_TASK_PID"


def _parent_task(ctx: Context) -> TaskRecord | None:
    """The running task of the process that started this one, found through the environment."""
    task_id, pid = os.environ.get(_TASK_ENV), os.environ.get(_PID_ENV)
    if not task_id or pid == str(os.getpid()):
        return None
    # The parent exports its id before its row exists (the row is written in a background thread):
    # a child started at once may look too early. Wait for the row while the parent is alive.
    deadline = time.monotonic() + _PARENT_ROW_WAIT
    while True:
        try:
            record = ctx.store.get_task(task_id)
            break
        except LookupError:
            if time.monotonic() > deadline or not (pid and pid.isdigit() and journal.pid_alive(int(pid))):
                return None
            time.sleep(0.02)
    return record if record.status == "running" else None


_PARENT_ROW_WAIT = 10.0  # seconds; the row normally appears ~0.3 s after the parent's Task.init


def _flush_on_sigterm() -> None:
    """SIGTERM (torchrun, schedulers, `kill`) unwinds like an exception, so pending snapshots are stored
    at exit. Only when nobody else handles SIGTERM, and only from the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return

    def on_sigterm(signum, frame):  # type: ignore[no-untyped-def]
        task = Task._current
        if task is not None:
            task.mark_failed("terminated by SIGTERM")
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_sigterm)


def _warn_about_unfinished(ctx: Context, current_task: str) -> None:
    with shielded("checking for unfinished snapshots of earlier runs"):
        left = journal.unfinished(ctx, exclude_task=current_task)
        if left:
            tasks = sorted({t.id[:8] for _, t in left})
            logger.warning(
                "autolog: %d snapshot(s) of earlier run(s) %s were not finished (the process ended first). "
                "Run `autolog sync` to store them or mark them failed.", len(left), ", ".join(tasks),
            )


def _resolve_output_uri(output_uri: str | bool | None, default: str) -> str | None:
    if output_uri is True:
        return default
    if output_uri is None or output_uri is False:
        return None
    if isinstance(output_uri, os.PathLike):
        output_uri = os.fspath(output_uri)
    if not isinstance(output_uri, str) or not output_uri.strip():
        raise ValueError(f"output_uri must be a path, a URL, True, False or None; got {output_uri!r}.")
    return output_uri


def _default_task_name(run_info: dict[str, Any]) -> str:
    script = run_info.get("script")
    return os.path.basename(script) if script else "interactive"


def _jsonable(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return repr(value)
