"""Read back the artifacts uploaded by artifacts_example.py, in a separate process.

    python examples/using_artifacts_example.py [TASK_ID]   (default: the newest "artifacts example")
"""
from __future__ import annotations

import os
import sys

from autolog import Task

if len(sys.argv) > 1:
    source = Task.get_task(task_id=sys.argv[1])
else:
    source = Task.get_task(project_name="examples", task_name="artifacts example")
print(f"artifacts of task {source.id[:8]} ({source.status}):")
for name, artifact in source.artifacts.items():
    print(f"  {name!r:22} {artifact.type:7} {artifact.size or 0:>8} B  {artifact.preview[:60]!r}")

print(source.artifacts["Pandas"].get())
print("dictionary:", source.artifacts["dictionary"].get())
print("eye trace:", source.artifacts["Numpy Eye"].get().trace())
print("image size:", source.artifacts["pillow_image"].get().size)
print("csv at:", source.artifacts["local file"].get_local_copy())
folder = source.artifacts["local folder"].get_local_copy()
print("folder files:", sorted(os.path.relpath(os.path.join(d, f), folder) for d, _, fs in os.walk(folder) for f in fs))
