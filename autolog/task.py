"""Task: one run of a script. `Task.init()` at the top of a training script is all it takes.

`Task` is the ClearML-shaped facade. The live run behind it (stores, pipeline, how it ends) is a
`TaskRuntime` (runtime.py); the process hooks are in process.py. A task fetched with
`Task.get_task()` reads; it writes only when it is the task this process is running.
"""
from __future__ import annotations

import logging
import os
import time
import traceback
from typing import Any, Sequence

from . import process, runtime
from .config import redact_url
from .context import Context, default_context
from .db import TaskRecord, new_id
from .db.version import preflight_check
from .errors import TaskNotRunningError
from .model import Model, ModelList, delete_path
from .run_info import collect_run_info
from .storage import BlobStore, collect_sources, normalize_uri
from .snapshots.waiting import wait_for_journal, wait_for_loads
from .task_artifacts import TaskArtifacts
from .task_connect import TaskConnect
from .task_execution import TaskExecution
from .task_lookup import TaskLookup
from .task_models import TaskModels
from .task_reporting import TaskReporting

logger = logging.getLogger("autolog")


class Task(TaskLookup, TaskArtifacts, TaskExecution, TaskReporting, TaskConnect, TaskModels):
    """A run: what started it, what it uploaded, which models it saved and loaded.

    >>> task = Task.init(project_name="digits", task_name="train", output_uri=True)
    """

    def __init__(self, *args: Any, **kwargs: Any):
        raise TypeError("Create tasks with Task.init(...) and fetch them with Task.get_task(...).")

    @classmethod
    def _from_record(cls, ctx: Context, record: TaskRecord) -> "Task":
        """A handle on a stored task: it reads; it writes only if this process is running it."""
        task = object.__new__(cls)
        task._context = ctx
        task._record = record
        task._runtime = None
        return task

    @classmethod
    def _for_runtime(cls, run: runtime.TaskRuntime) -> "Task":
        task = cls._from_record(run.context, run.record)
        task._runtime = run
        run.handle = task
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
        auto_connect_arg_parser: bool | dict = True,
        auto_connect_frameworks: bool | dict = True,
        keep_last: int | None = None,
    ) -> "Task":
        """Start a task for this run (or return the running one, when called again with the same names).

        output_uri: where snapshot weights and artifacts are copied. A local path, file://, or any
        fsspec URL (s3://, gs://, az://, memory://); True = the configured default
        (sdk.development.default_output_uri, else $AUTOLOG_HOME/storage); None/False = record
        local paths and content hashes only (artifacts still go to the default location).
        auto_connect_arg_parser: store the script's argparse arguments (parsed before or after this call)
        under "Args"; False: don't; {"name": False} leaves those out ("*": the default for the others).
        auto_connect_frameworks: False, or {"pytorch": False | "*.pt" | ["*.pt", ...], ...} per framework.
        keep_last: keep only the newest N stored snapshots of each model (default: config, else all).

        Called again while a task runs: with no names, or the same project, name and output_uri, it
        returns the running task; with others it closes the running task (completed) and starts a new
        one, as a worker of a multiprocessing Pool does for each job.
        """
        if keep_last is not None and (isinstance(keep_last, bool) or not isinstance(keep_last, int) or keep_last < 1):
            raise ValueError(f"keep_last must be a whole number of at least 1 (or None to keep all), got {keep_last!r}.")
        parameters = cls._initial_parameters(auto_connect_arg_parser)
        ctx = default_context()
        uri = _resolve_output_uri(output_uri, ctx.settings.default_output_uri)
        current = runtime.live()
        if current is not None:
            if not _asks_for_another(current, project_name, task_name, uri, output_uri):
                return current.handle  # type: ignore[return-value]
            logger.warning("autolog: Task.init(%r, %r) while task %s is running: closing that one and starting "
                           "a new task (call task.close() first to make this explicit).",
                           project_name, task_name, current.describe())
            current.close()
        parent = process.parent_task(ctx)
        if parent is not None:
            return cls._attach(ctx, parent, auto_connect_frameworks)
        blobstore = BlobStore(uri) if uri else None
        if blobstore is not None:
            blobstore.check_writable()
        preflight_check(ctx.settings.db_url)
        run_info = collect_run_info()
        record = TaskRecord(
            id=new_id(), project=project_name or "default", name=task_name or _default_task_name(run_info),
            task_type=task_type, status="running", status_message=None,
            output_uri=redact_url(blobstore.root) if blobstore else None, tags=list(tags or []),
            created=time.time(), ended=None, run_info=run_info, parameters=parameters, comment="",
        )
        run = runtime.TaskRuntime(
            ctx, record, blobstore.root if blobstore else None, blobstore=blobstore, keep_last=keep_last,
            auto_connect=auto_connect_frameworks, store_before_return=process.in_multiprocessing_child(),
        )
        task = cls._for_runtime(run)
        task._follow_arguments(auto_connect_arg_parser)
        run.create_record_in_background()
        cls._go_live(run)
        process.export_for_children(run)
        process.close_in_multiprocessing_child(run)
        logger.info("autolog: task %s", run.describe())
        return task

    @classmethod
    def _attach(cls, ctx: Context, record: TaskRecord, auto_connect_frameworks: bool | dict) -> "Task":
        """A child process (multiprocessing, torchrun worker) logs into its parent's task."""
        run = runtime.TaskRuntime(ctx, record, record.output_uri, attached=True, auto_connect=auto_connect_frameworks)
        task = cls._for_runtime(run)
        cls._go_live(run)
        logger.info("autolog: attached to parent task %s/%s id=%s", record.project, record.name, record.id)
        return task

    @staticmethod
    def _go_live(run: runtime.TaskRuntime) -> None:
        runtime.set_live(run)
        process.install()
        run.start_capture()

    @classmethod
    def current_task(cls) -> "Task | None":
        """The task this process is running, if any."""
        run = runtime.live()
        return run.handle if run is not None else None  # type: ignore[return-value]

    @classmethod
    def _fetched(cls, ctx: Context, record: TaskRecord) -> "Task":
        run = runtime.live()
        if run is not None and run.task_id == record.id:
            return run.handle  # type: ignore[return-value]
        return cls._from_record(ctx, record)

    # -- what a task is ------------------------------------------------------------------
    id = property(lambda self: self._record.id)
    name = property(lambda self: self._record.name)
    project = property(lambda self: self._record.project)
    task_type = property(lambda self: self._record.task_type)
    tags = property(lambda self: list(self._record.tags))
    created = property(lambda self: self._record.created, doc="Start time, UNIX seconds.")

    @property
    def output_uri(self) -> str | None:
        """Where weights and artifacts are copied (None: not copied)."""
        return self._runtime.output_uri if self._runtime is not None else self._record.output_uri

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
        return self._runtime.ctx if self._runtime is not None else self._context

    @property
    def _attached(self) -> bool:
        return self._runtime is not None and self._runtime.attached

    def _writer(self, what: str) -> runtime.TaskRuntime:
        """The live run this task writes with; a task this process is not running is read-only."""
        run = self._runtime
        if run is not None and not run.closed:
            return run
        record = self._context.store.get_task(self.id)
        if run is not None or record.status != "running":
            state = "closed" if run is not None else record.status
            advice = "Start a new task with Task.init() to record more"
        else:
            info = record.run_info or {}
            state = f"running in another process (pid {info.get('pid')} on {info.get('host')})"
            advice = "Record it from that process, or start a task here with Task.init()"
        raise TaskNotRunningError(
            f"Cannot {what} on task {self.project}/{self.name} ({self.id[:8]}): it is {state}, and a task is "
            f"written only by the process running it. {advice}."
        )

    # -- models --------------------------------------------------------------------------
    @property
    def models(self) -> dict[str, ModelList]:
        """{"input": models this task loaded, "output": models it saved}; each ordered oldest to newest."""
        run = runtime.live()
        if run is not None and run.recorder is not None:
            run.recorder.settling.take_all()  # a save_pretrained folder still settling is a saved model too
        wait_for_journal()
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
        run = self._writer("store an output model")
        model_name = name or os.path.basename(os.fspath(model_path).rstrip(os.sep))
        store = run.ctx.store
        record, created = store.find_or_create_model(
            self.id, "api", {"name": model_name}, project=self.project, framework=framework,
            tags=list(tags or []), comment=comment or "", meta=self._new_model_meta(),
        )
        if not created:
            updates = {k: v for k, v in (("tags", list(tags) if tags else None), ("comment", comment),
                                         ("framework", framework)) if v is not None}
            if updates:
                store.update_model(record.id, **updates)
        snap, uri = run.store_snapshot(record, collect_sources(model_path), iteration)
        logger.info("autolog: model %r snapshot %d stored at %s", model_name, snap.seq, redact_url(uri))
        if auto_delete_file and snap.status == "stored":  # a path-only snapshot ("local") IS the file
            delete_path(os.fspath(model_path))
        return uri

    # -- ending --------------------------------------------------------------------------
    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every snapshot is stored, as long as the work progresses (progress on stderr when
        it takes a while). False if some are still pending after timeout seconds (default: config
        pipeline.flush_timeout) or once the work stalled; they are named in a warning."""
        return self._runtime.flush(timeout) if self._runtime is not None else True

    def close(self) -> None:
        """Store what is pending, then finish the task: completed (or failed after an unhandled
        exception, a non-zero sys.exit or SIGTERM). Safe to call twice."""
        if self._runtime is not None:
            self._runtime.close()

    def mark_failed(self, message: str = "") -> None:
        """Record that the run failed; close() then ends it as failed."""
        self._writer("mark the task failed").mark_failed(message)

    def __enter__(self) -> "Task":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        clean_exit = isinstance(exc, SystemExit) and exc.code in (None, 0)  # sys.exit(0): completed, as at exit
        if exc is not None and self._runtime is not None and not clean_exit:
            self._runtime.mark_failed("".join(traceback.format_exception_only(exc_type, exc)).strip()
                                      if isinstance(exc, Exception) else runtime.interruption_name(exc))
        self.close()


def _asks_for_another(current: runtime.TaskRuntime, project: str | None, name: str | None, uri: str | None,
                      output_uri: Any) -> bool:
    """Whether Task.init's arguments name a different task than the running one."""
    record = current.record
    if project is not None and project != record.project:
        return True
    if name is not None and name != record.name:
        return True
    return output_uri is not None and output_uri is not False and uri is not None and \
        normalize_uri(uri) != (current.output_uri or "")


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
