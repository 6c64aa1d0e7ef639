"""Task's artifacts, with ClearML's calls: upload_artifact, artifacts, and the registered (watched)
DataFrames: register_artifact, get_registered_artifacts, unregister_artifact."""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable, Sequence

from . import artifacts as _artifacts
from .registered_artifacts import watch_of

if TYPE_CHECKING:
    from .context import Context
    from .runtime import TaskRuntime

__all__ = ["TaskArtifacts"]

logger = logging.getLogger("autolog")


class TaskArtifacts:
    """Mixed into Task: storing named objects, and reading them back."""

    if TYPE_CHECKING:
        id: str
        _ctx: Context
        _runtime: TaskRuntime | None

        def _writer(self, what: str) -> TaskRuntime: ...

    def upload_artifact(
        self,
        name: str,
        artifact_object: Any,
        metadata: dict | None = None,
        delete_after_upload: bool = False,
        auto_pickle: bool = True,
        preview: Any = None,
        wait_on_upload: bool = False,
        extension_name: str | None = None,
        serialization_function: Callable[[Any], bytes] | None = None,
        retries: int = 0,
    ) -> bool:
        """Store an object under `name` (replacing an earlier one of that name). Returns True.

        Files are stored as is; folders and wildcards ("data/*.jpg", "data/**/*.png") as one zip; numpy
        arrays as .npz, DataFrames as .csv.gz, PIL images as .png (extension_name=".jpg", ... for another
        format), JSON-able dicts/lists as .json, anything else pickled (extension_name=".pkl" pickles any
        object; auto_pickle=False raises instead of pickling). serialization_function(obj) -> bytes stores
        those bytes (read them back with artifact.get(deserialization_function=...)). A URL string is
        recorded as a reference without upload; any other string must be an existing path or a wildcard
        that matches files. delete_after_upload deletes an uploaded file once it is stored.

        The upload is finished when this returns (ClearML's wait_on_upload=True; the argument is accepted
        and changes nothing). retries: attempts after the first that failed to reach the storage.
        """
        run = self._writer("upload an artifact")
        watch = watch_of(run, create=False)
        if watch is not None and name in watch:
            raise ValueError(f"An artifact named {name!r} is registered (register_artifact): it is uploaded "
                             "whenever it changes. Unregister it first, or upload under another name.")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"retries must be a whole number of at least 0, got {retries!r}.")
        for attempt in range(retries + 1):
            try:
                _artifacts.upload_artifact(
                    run, name, artifact_object, metadata, preview, auto_pickle=auto_pickle,
                    extension_name=extension_name, serialization_function=serialization_function,
                    delete_after_upload=delete_after_upload)
                return True
            except OSError as exc:  # the storage, not the object: worth another try
                if attempt == retries:
                    raise
                logger.warning("autolog: uploading artifact %r failed (%s); retrying (%d/%d)",
                               name, type(exc).__name__, attempt + 1, retries)
        return True  # not reached: the loop returns or raises

    @property
    def artifacts(self) -> dict[str, _artifacts.Artifact]:
        """Artifacts by name, in upload order (registered ones included, as last uploaded)."""
        return {r.name: _artifacts.Artifact(self._ctx, r) for r in self._ctx.store.artifacts_of(self.id)}

    def register_artifact(self, name: str, artifact: Any, metadata: dict | None = None,
                          uniqueness_columns: bool | Sequence[str] = True) -> None:
        """Watch a pandas DataFrame: stored now, and again at flush() and close() whenever its content
        changed (also when changed in place). A name registered before is replaced.

        uniqueness_columns: the columns whose distinct values make a row unique (True: all of them); the
        artifact's preview counts the unique rows.
        """
        watch_of(self._writer("register an artifact")).register(name, artifact, metadata, uniqueness_columns)

    def unregister_artifact(self, name: str) -> None:
        """Stop watching a registered artifact, after storing its last change. Its artifact stays."""
        watch = watch_of(self._writer("unregister an artifact"), create=False)
        if watch is None:
            raise ValueError(f"No artifact named {name!r} is registered. Registered: [].")
        watch.unregister(name)

    def get_registered_artifacts(self) -> dict[str, Any]:
        """{name: DataFrame} of the artifacts this process registered (the objects being watched)."""
        run = self._runtime
        watch = watch_of(run, create=False) if run is not None else None
        return watch.registered() if watch is not None else {}
