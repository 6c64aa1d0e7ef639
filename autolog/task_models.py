"""Task's model-level settings (ClearML's label enumeration of a task's models)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from .model_design import LABELS_KEY, validate_labels

if TYPE_CHECKING:
    from .context import Context
    from .runtime import TaskRuntime


class TaskModels:
    """Mixed into Task: the label enumeration that the task's output models take.

    Stored in the task's row (tasks.labels). An OutputModel created without label_enumeration=, and a
    model a framework save creates, take the task's enumeration as it is at that moment, as in ClearML.
    """

    if TYPE_CHECKING:
        id: str
        _ctx: Context

        def _writer(self, what: str) -> TaskRuntime: ...

    def set_model_label_enumeration(self, enumeration: Mapping[str, int] | None = None) -> None:
        """Set the task's label enumeration, {label (str): integer id}, e.g. {"background": 0, "person": 1}.

        Output models created afterwards take it. None or {} clears it (as in ClearML).
        """
        labels = validate_labels(enumeration or {}, "enumeration")
        store = self._writer("set the label enumeration").ctx.store
        store.update_task(self.id, labels=labels or None)

    def connect_label_enumeration(
        self, enumeration: dict[str, int], ignore_remote_overrides: bool = False
    ) -> dict[str, int]:
        """Set the task's label enumeration (see set_model_label_enumeration) and return the same dict.

        ignore_remote_overrides is accepted for ClearML's signature: a task here never runs remotely,
        so nothing can override the enumeration.
        """
        if not isinstance(enumeration, dict):
            raise ValueError(f"connect_label_enumeration takes a dict of label (str) to integer id, "
                             f"got {type(enumeration).__name__}.")
        self.set_model_label_enumeration(enumeration)
        return enumeration

    def get_labels_enumeration(self) -> dict[str, int]:
        """The task's label enumeration ({} when none was set)."""
        return dict(self._ctx.store.get_task(self.id).labels or {})

    def _new_model_meta(self) -> dict[str, Any]:
        """The meta of an output model created now: it takes the task's label enumeration."""
        labels = self.get_labels_enumeration()
        return {LABELS_KEY: labels} if labels else {}
