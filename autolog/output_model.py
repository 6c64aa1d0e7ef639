"""OutputModel: a model a task writes. Each update_weights() adds a snapshot; its design and label
enumeration (model_design.py) describe it. The signatures are ClearML's; where autolog does less or
otherwise, the docstring says so.
"""
from __future__ import annotations

import logging
import os
import time
import weakref
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from . import runtime
from .config import redact_url
from .model import Model, delete_path
from .model_design import DESIGN_KEY, LABELS_KEY, design_text, validate_labels
from .snapshots.registered import registered_hashes
from .storage import Sources, collect_file_list, collect_sources
from .storage.blobstore import is_local, normalize_uri
from .storage.layout import display_path

if TYPE_CHECKING:
    from .task import Task

logger = logging.getLogger("autolog")

# How long close() still waits for the hash of a registered object once reading it makes no progress
# (at most [pipeline] stall_timeout): the snapshot is recorded already, only its sha256 would be missing.
HASH_PATIENCE_SECONDS = 5.0


class OutputModel(Model):
    """A model this task writes; each update_weights() call adds a snapshot.

    >>> model = OutputModel(task=task, framework="PyTorch", label_enumeration={"cat": 0, "dog": 1})
    >>> model.update_weights(weights_filename="model.pt", iteration=3)
    """

    def __init__(
        self,
        task: "Task | None" = None,
        config_text: str | None = None,
        config_dict: dict | None = None,
        label_enumeration: Mapping[str, int] | None = None,
        name: str | None = None,
        tags: Sequence[str] | None = None,
        comment: str | None = None,
        framework: str | None = None,
        base_model_id: str | None = None,
    ):
        """A new output model of `task` (default: the running task).

        config_text / config_dict: the model's design, one or the other (a dict is kept as JSON text).
        label_enumeration: {label: integer id}; without it the model takes the task's
        (task.set_model_label_enumeration), as in ClearML. base_model_id (ClearML reuses that model's
        row) is refused: here a model belongs to the task that created it.
        """
        if base_model_id is not None:
            raise ValueError(
                "OutputModel(base_model_id=) is not supported: autolog keeps each model with the task that created "
                "it. Create a new OutputModel, and record where it started with InputModel(base_model_id).connect(task).")
        run = task._writer("create an output model") if task is not None else runtime.live()
        if run is None:
            raise ValueError("OutputModel needs a task: call Task.init() first or pass task=.")
        design = design_text(config_text, config_dict)
        if label_enumeration:
            labels = validate_labels(label_enumeration, "label_enumeration")
        else:
            labels = run.ctx.store.get_task(run.task_id).labels or {}
        meta: dict[str, Any] = {}
        if design is not None:
            meta[DESIGN_KEY] = design
        if labels:
            meta[LABELS_KEY] = labels
        record = run.ctx.store.create_model(
            task_id=run.task_id, origin="api", name=name or run.record.name, project=run.record.project,
            framework=framework, tags=list(tags or []), comment=comment or "", meta=meta,
        )
        self._run = run
        self._bind(run.ctx, record)

    # -- design and labels ---------------------------------------------------------------
    @property
    def labels(self) -> dict[str, int]:
        """The label enumeration {label: integer id} ({} when it has none); settable (update_labels)."""
        return super().labels

    @labels.setter
    def labels(self, value: Mapping[str, int]) -> None:
        self.update_labels(value)

    @property
    def config_text(self) -> str:
        """The design as text ("" when it has none); settable (update_design)."""
        return super().config_text

    @config_text.setter
    def config_text(self, value: str) -> None:
        self.update_design(config_text=value)

    @property
    def config_dict(self) -> dict[str, Any]:
        """The design parsed as JSON ({} when it has none); settable (update_design)."""
        return super().config_dict

    @config_dict.setter
    def config_dict(self, value: dict) -> None:
        self.update_design(config_dict=value)

    def update_design(self, config_text: str | None = None, config_dict: dict | None = None) -> bool:
        """Replace the model's design with config_text or config_dict (one of them; a dict is kept as
        JSON text, which config_text then returns). Returns True, as ClearML does on success."""
        design = design_text(config_text, config_dict)
        self._update_meta(DESIGN_KEY, design if design is not None else "")
        return True

    def update_labels(self, labels: Mapping[str, int]) -> None:
        """Replace the model's label enumeration {label: integer id}. As in ClearML, the task's label
        enumeration becomes the same (while the task runs in this process)."""
        labels = validate_labels(labels, "labels")
        self._update_meta(LABELS_KEY, labels)
        if not self._run.closed:
            self._run.ctx.store.update_task(self._run.task_id, labels=labels or None)

    def _update_meta(self, key: str, value: Any) -> None:
        meta = dict(self._refresh().meta)
        meta[key] = value
        self._ctx.store.update_model(self.id, meta=meta)

    def connect(self, task: "Task", name: str | None = None) -> None:
        """Connect this model to `task` as its output model, as ClearML does; it already is the output
        model of the task it was created with, so that must be `task`. name renames the model (ClearML
        names the task's entry for it; here a task's models are found by their own name). A task with
        no label enumeration takes this model's."""
        if task.id != self._record.task_id:
            raise ValueError(
                f"OutputModel.connect: model {self._record.name!r} is an output of task {self._record.task_id[:8]}, "
                f"not of task {task.id[:8]}: a model is connected to the task it was created with. "
                "Create OutputModel(task=task) for that task.")
        store = task._writer("connect an output model").ctx.store
        if name is not None:
            if not isinstance(name, str) or not name.strip():
                raise ValueError(f"OutputModel.connect: name must be a non-empty str, got {name!r}.")
            store.update_model(self.id, name=name)
        labels = self.labels
        if labels and not store.get_task(task.id).labels:
            store.update_task(task.id, labels=labels)

    # -- weights -------------------------------------------------------------------------
    def update_weights(
        self,
        weights_filename: str | os.PathLike | None = None,
        upload_uri: str | None = None,
        target_filename: str | None = None,
        auto_delete_file: bool = False,
        register_uri: str | os.PathLike | None = None,
        iteration: int | None = None,
    ) -> str:
        """Add a snapshot of a weights file (or folder), copied to the task's output_uri (or upload_uri)
        before this returns. Returns the snapshot's URI.

        target_filename: the name it is stored under (ignored when the task records paths only,
        output_uri=None, as ClearML does without a destination).
        auto_delete_file: delete weights_filename once it is stored. ClearML's default is True; here it
        is False, so that a ClearML call leaves the user's file alone; and a file recorded by path only
        (no output_uri) is never deleted, as in ClearML.
        register_uri: an object stored elsewhere (a path, s3://, https://, ...), recorded by URL at once,
        not copied. Its sha256 and size are read later in the background (a local file's size now); a
        load of its bytes is linked to this snapshot only once its sha256 is known, and one that cannot
        be read keeps none (an INFO line says why). Pass weights_filename or register_uri, not both.

        A weights_filename that does not exist is, as in ClearML, registered by its path with a WARNING
        when nothing is to be copied (output_uri=None and no upload_uri): the snapshot has no sha256 and
        says why, and no load is linked to it. With a destination to copy to, FileNotFoundError is raised.
        """
        if (weights_filename is None) == (register_uri is None):
            raise ValueError("update_weights needs weights_filename= (a file or folder) or register_uri= "
                             "(an object stored elsewhere), exactly one of them.")
        if register_uri is not None:
            return self._register_uri(os.fspath(register_uri), iteration)
        try:
            sources = collect_sources(weights_filename)
        except FileNotFoundError:
            if upload_uri is not None or self._run.output_uri is not None:
                raise  # a copy is required, and there is nothing to copy
            return self._register_missing(os.fspath(weights_filename), iteration)
        sources = self._named(sources, target_filename, upload_uri)
        deletions = [os.fspath(weights_filename)] if auto_delete_file else []
        return self._store(sources, iteration, upload_uri, deletions)

    def update_weights_package(
        self,
        weights_filenames: Sequence[str | os.PathLike] | None = None,
        weights_path: str | os.PathLike | None = None,
        upload_uri: str | None = None,
        target_filename: str | None = None,
        auto_delete_file: bool = False,
        iteration: int | None = None,
    ) -> str:
        """Add ONE snapshot holding several files (weights_filenames) or a whole folder (weights_path).

        ClearML zips them; autolog stores the files as they are, side by side (a folder keeps its
        tree). target_filename names the folder that holds them in storage (ClearML's zip name; no
        .zip is added). auto_delete_file deletes the given files (or folder) once they are stored:
        ClearML does so by default, here only when asked (default False), and never for files recorded
        by path only (output_uri=None). Returns the snapshot's URI.
        """
        if (weights_filenames is None) == (weights_path is None):
            raise ValueError("update_weights_package needs exactly one of weights_filenames= or weights_path=.")
        if weights_path is not None:
            sources = collect_sources(weights_path)
        else:
            sources = collect_file_list(list(weights_filenames))  # type: ignore[arg-type]
        sources = self._named(sources, target_filename, upload_uri)
        deletions = [os.fspath(p) for p in (weights_filenames or [weights_path])] if auto_delete_file else []
        return self._store(sources, iteration, upload_uri, deletions)

    def _named(self, sources: Sources, target_filename: str | None, upload_uri: str | None) -> Sources:
        """sources stored under target_filename; unchanged when nothing is copied (no destination)."""
        if target_filename is None:
            return sources
        if not isinstance(target_filename, str) or target_filename.strip() in ("", ".", "..") \
                or "/" in target_filename or os.sep in target_filename:
            raise ValueError(f"target_filename must be a plain file name (no folders), got {target_filename!r}.")
        if upload_uri is None and self._run.output_uri is None:
            logger.debug("autolog: target_filename %r ignored: output_uri=None records paths only", target_filename)
            return sources
        name = display_path(target_filename)  # object keys are UTF-8
        if sources.single:
            return Sources(files=((sources.files[0][0], name),), name=name, single=True)
        return Sources(files=sources.files, name=name, entry=sources.entry)

    def _store(self, sources: Sources, iteration: int | None, upload_uri: str | None, deletions: list[str]) -> str:
        snap, real_uri = self._run.store_snapshot(self._record, sources, iteration, upload_uri)
        logger.info("autolog: model %r snapshot %d stored at %s", self._record.name, snap.seq, redact_url(real_uri))
        if deletions and snap.status == "local":
            logger.info("autolog: auto_delete_file ignored for model %r: with output_uri=None the snapshot is "
                        "the file itself", self._record.name)
            return real_uri
        for path in deletions:
            delete_path(path)
        return real_uri

    def _register_missing(self, path: str, iteration: int | None) -> str:
        """ClearML's "registering local model" for a path that is not there (yet): recorded by path, with
        no content, so that a script written for ClearML goes on; the WARNING says what that costs."""
        path = os.path.abspath(path)
        reason = "the file did not exist when update_weights() registered it: its content is unknown"
        snap = self._ctx.store.add_snapshot(self.id, status="local", uri=display_path(path), digest=None, size=None,
                                            iteration=iteration, reason=reason)
        logger.warning("autolog: model %r snapshot %d: %s does not exist; registered by its path only (output_uri="
                       "None, nothing is copied), so its content is unknown and no load can be linked to it. Save "
                       "the file before update_weights(), or set output_uri to keep a copy.",
                       self._record.name, snap.seq, path)
        return snap.uri

    def _register_uri(self, uri: str, iteration: int | None) -> str:
        """Record the object at uri now; its sha256 follows from the background (snapshots/registered.py)."""
        readable, size = _registered_location(uri)
        snap = self._ctx.store.add_snapshot(
            self.id, status="stored", uri=redact_url(uri), digest=None, size=size, iteration=iteration,
            stored_at=time.time(),
        )
        registered_hashes().submit(self._ctx, snap.id, readable, self._run.task_id)
        _wait_for_hashes_at_close(self._run)
        logger.info("autolog: model %r snapshot %d registered at %s", self._record.name, snap.seq, redact_url(uri))
        return uri


def _registered_location(uri: str) -> tuple[str, int | None]:
    """(where to read it, its size if known now) for register_uri. A local file is checked now (a stat,
    no read); a URL is not opened here (that may wait on the network), only its protocol is checked."""
    if is_local(uri):
        path = normalize_uri(uri)  # absolute now: the background read must not depend on a later chdir
        if os.path.isdir(path):
            raise IsADirectoryError(f"register_uri {uri!r} is a folder: register one file, or store the folder "
                                    "with update_weights(weights_filename=folder).")
        try:
            return path, os.stat(path).st_size
        except FileNotFoundError:
            raise FileNotFoundError(f"register_uri {uri!r}: no such file. Pass the path of an existing weights "
                                    "file, or the URL of a stored one (s3://, https://, ...).") from None
    import fsspec  # a URL: only its protocol is checked, which needs no network

    protocol = uri.split("://", 1)[0]
    if protocol not in fsspec.available_protocols():
        raise ValueError(f"register_uri {redact_url(uri)!r}: no storage is known for {protocol}://. Pass a path or "
                         "a URL fsspec knows (s3://, gs://, az://, https://, ...).")
    return uri, None


_waiting_at_close: "weakref.WeakSet[runtime.TaskRuntime]" = weakref.WeakSet()


def _wait_for_hashes_at_close(run: "runtime.TaskRuntime") -> None:
    """Have the run's flush and close wait (bounded) for its registered objects' hashes."""
    if run in _waiting_at_close:
        return
    _waiting_at_close.add(run)

    def wait(final: bool) -> None:
        settings = run.context.settings
        left = registered_hashes().wait(run.task_id, patience=min(settings.stall_timeout, HASH_PATIENCE_SECONDS),
                                        timeout=settings.flush_timeout)
        if left and final:
            logger.info("autolog: %d registered object(s) of task %s not hashed yet (%s): recorded by URL without a "
                        "sha256, so loads of them are not linked to them.", len(left), run.task_id[:8],
                        ", ".join(job.label for job in left[:3]) + (", ..." if len(left) > 3 else ""))

    run.add_flusher("the sha256 of registered weights", wait)
