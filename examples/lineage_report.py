"""What the loading examples print: which run produced each model this task loaded."""
from __future__ import annotations

from autolog import Model, Task


def print_lineage(task: Task) -> None:
    for loaded in task.models["input"]:
        producer = Task.get_task(task_id=loaded.task) if loaded.task else None
        made_by = f"{producer.project}/{producer.name} {producer.id[:8]}" if producer else "(not logged: imported)"
        print(f"loaded model {loaded.name!r} ({loaded.id[:8]}, {loaded.framework}), produced by task {made_by}")
        print(f"tasks that loaded it: {[t[:8] for t in Model(loaded.id).loaded_by]}")
        print(f"  autolog model show {loaded.id[:8]}")
