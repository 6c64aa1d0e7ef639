"""Upload artifacts of every kind (as in ClearML's artifacts example); using_artifacts_example.py reads them.

    python examples/artifacts_example.py
"""
from __future__ import annotations

import os
import tempfile

import numpy as np
import pandas as pd
from PIL import Image

from autolog import Task

task = Task.init(project_name="examples", task_name="artifacts example", output_uri=True)

df = pd.DataFrame({"num_legs": [2, 4, 8, 0], "num_wings": [2, 0, 0, 0], "num_specimen_seen": [10, 2, 1, 8]},
                  index=["falcon", "dog", "spider", "fish"])
task.upload_artifact("Pandas", artifact_object=df)

work = tempfile.mkdtemp()
csv_path = os.path.join(work, "data_samples.csv")
df.to_csv(csv_path)
task.upload_artifact("local file", artifact_object=csv_path)

folder = os.path.join(work, "folder")
os.makedirs(os.path.join(folder, "sub"))
for name in ("a.txt", "sub/b.txt"):
    with open(os.path.join(folder, name), "w") as f:
        f.write(f"content of {name}\n")
task.upload_artifact("local folder", artifact_object=folder)

task.upload_artifact("dictionary", {"name": "Erik", "age": 30})
task.upload_artifact("Numpy Eye", np.eye(100, 100))
task.upload_artifact("pillow_image", Image.fromarray((np.random.default_rng(0).random((32, 32, 3)) * 255).astype("uint8")))
task.upload_artifact("reference", "https://example.com/dataset/v1.csv")  # recorded, not downloaded
task.close()
print(f"uploaded {len(task.artifacts)} artifacts to task {task.id}")
print(f"read them back: python examples/using_artifacts_example.py {task.id}")
