"""What one process records, another reads back: the issue's example end to end, and concurrent writers."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from autolog import Model, OutputModel, Task

WRITER = """\
import json, os, sys
import numpy as np, pandas as pd
from PIL import Image
from autolog import OutputModel, Task
from autolog_test_helpers import Person

os.chdir(sys.argv[1])  # relative paths, as in the issue's example
task = Task.init(project_name="digits", task_name="train", output_uri=True)

with open("preprocess_data.csv", "w") as f:
    f.write("a,b\\n1,2\\n")
os.makedirs(os.path.join("folder", "sub"))
with open(os.path.join("folder", "top.txt"), "w") as f:
    f.write("top")
with open(os.path.join("folder", "sub", "inner.txt"), "w") as f:
    f.write("inner")

task.upload_artifact(name="data", artifact_object="preprocess_data.csv")
task.upload_artifact(name="folder", artifact_object="folder/")
task.upload_artifact(name="person dictionary", artifact_object={"name": "Erik", "age": 30})
task.upload_artifact(name="arr", artifact_object=np.arange(10))
task.upload_artifact(name="df", artifact_object=pd.DataFrame({"x": [1, 2], "y": ["a", "b"]}))
task.upload_artifact(name="img", artifact_object=Image.new("RGB", (4, 3), (10, 20, 30)))
task.upload_artifact(name="obj", artifact_object=Person("Erik", 30))

with open("model.pt", "wb") as f:
    f.write(b"weights at iteration 3")
output_model = OutputModel(task=task, framework="PyTorch")
output_model.update_weights(weights_filename="model.pt", iteration=3)
with open("model.pt", "wb") as f:
    f.write(b"weights at iteration 5")
task.update_output_model(model_path="model.pt", name="best", iteration=5, tags=["best"])
task.close()

with open("model.pt", "wb") as f:  # the sources change or vanish after the run
    f.write(b"overwritten after the run")
os.remove("preprocess_data.csv")
print(json.dumps({"task_id": task.id, "model_id": output_model.id}))
"""

READER = """\
import json, os, sys
from autolog import Model, Task

task_id, model_id = sys.argv[1], sys.argv[2]
prev = Task.get_task(task_id=task_id)
arts = prev.artifacts
folder = arts["folder"].get_local_copy()
output = prev.models["output"]
print(json.dumps({
    "by_name": Task.get_task(project_name="digits", task_name="train").id,
    "status": prev.status,
    "types": {name: a.type for name, a in arts.items()},
    "data": open(arts["data"].get_local_copy()).read(),
    "folder": {os.path.relpath(os.path.join(d, f), folder): open(os.path.join(d, f)).read()
               for d, _, fs in os.walk(folder) for f in fs},
    "person": arts["person dictionary"].get(),
    "arr": arts["arr"].get().tolist(),
    "df": arts["df"].get().to_dict(orient="list"),
    "img": [list(arts["img"].get().size), list(arts["img"].get().getpixel((0, 0)))],
    "obj": repr(arts["obj"].get()),
    "output_names": [m.name for m in output],
    "newest": open(output[-1].get_local_copy(), "rb").read().decode(),
    "best": [output["best"].tags, output["best"].iteration],
    "model": open(Model(model_id).get_local_copy(), "rb").read().decode(),
    "model_framework": Model(model_id).framework,
    "query": sorted(m.name for m in Model.query_models(project_name="digits")),
}))
"""


def run_script(name: str, code: str, args: list[str], env: dict, cwd: Path) -> subprocess.CompletedProcess:
    """Run code as the script cwd/<name>.py (a real script, so run_info has a script path)."""
    script = cwd / f"{name}.py"
    script.write_text(code)
    return subprocess.run([sys.executable, str(script), *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_issue_example_is_read_back_by_another_process(tmp_path, helpers_dir, child_env):
    work = tmp_path / "work"
    work.mkdir()
    env = child_env({"PYTHONPATH": str(helpers_dir)})
    written = run_script("writer", WRITER, [str(work)], env, tmp_path)
    assert written.returncode == 0, written.stderr
    ids = json.loads(written.stdout)

    read = run_script("reader", READER, [ids["task_id"], ids["model_id"]], env, tmp_path)
    assert read.returncode == 0, read.stderr
    got = json.loads(read.stdout)

    assert got["by_name"] == ids["task_id"]
    assert got["status"] == "completed"
    assert got["types"] == {"data": "file", "folder": "folder", "person dictionary": "json", "arr": "numpy",
                            "df": "pandas", "img": "image", "obj": "pickle"}
    assert got["data"] == "a,b\n1,2\n"
    assert got["folder"] == {"top.txt": "top", os.path.join("sub", "inner.txt"): "inner"}
    assert got["person"] == {"name": "Erik", "age": 30}
    assert got["arr"] == list(range(10))
    assert got["df"] == {"x": [1, 2], "y": ["a", "b"]}
    assert got["img"] == [[4, 3], [10, 20, 30]]
    assert got["obj"] == "Person('Erik', 30)"
    assert got["output_names"] == ["train", "best"]
    assert got["newest"] == "weights at iteration 5"
    assert got["best"] == [["best"], 5]
    assert got["model"] == "weights at iteration 3"
    assert got["model_framework"] == "PyTorch"
    assert got["query"] == ["best", "train"]


def test_the_test_process_reads_the_same_records(tmp_path, helpers, helpers_dir, child_env):
    work = tmp_path / "work"
    work.mkdir()
    written = run_script("writer", WRITER, [str(work)], child_env({"PYTHONPATH": str(helpers_dir)}), tmp_path)
    assert written.returncode == 0, written.stderr
    ids = json.loads(written.stdout)

    prev = Task.get_task(task_id=ids["task_id"])
    assert prev.artifacts["obj"].get() == helpers.Person("Erik", 30)
    model = Model(ids["model_id"])
    assert [s.iteration for s in model.snapshots] == [3]
    assert Path(model.get_local_copy()).read_bytes() == b"weights at iteration 3"
    assert model.task == prev.id


def test_local_only_snapshot_is_verified_in_another_process(tmp_path, run_py):
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"kept in place")
    task = Task.init(project_name="p", task_name="t", output_uri=None)
    model = OutputModel(task=task, name="m")
    model.update_weights(str(weights))
    task.close()

    check = f"""
        from autolog import Model
        from autolog.errors import IntegrityError
        m = Model({model.id!r})
        print(m.get_local_copy())
        open({str(weights)!r}, "wb").write(b"tampered, longer content")
        try:
            m.get_local_copy()
        except IntegrityError:
            print("INTEGRITY")
    """
    proc = run_py(check)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [str(weights), "INTEGRITY"]


CONCURRENT_WRITER = """\
import sys
from autolog import OutputModel, Task

name, work = sys.argv[1], sys.argv[2]
task = Task.init(project_name="concurrent", task_name=name, output_uri=True)
model = OutputModel(task=task, name="m")
for i in range(15):
    path = f"{work}/{name}.bin"
    with open(path, "wb") as f:
        f.write(f"{name}-{i}".encode())
    model.update_weights(weights_filename=path, iteration=i)
    task.upload_artifact(f"a{i}", {"i": i, "writer": name})
task.close()
print(task.id)
"""


def test_concurrent_writer_processes_share_one_database(tmp_path, child_env):
    script = tmp_path / "writer.py"
    script.write_text(CONCURRENT_WRITER)
    names = [f"w{i}" for i in range(4)]
    procs = [
        subprocess.Popen([sys.executable, str(script), name, str(tmp_path)], env=child_env(),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name in names
    ]
    results = [p.communicate(timeout=300) + (p.returncode,) for p in procs]
    for out, err, code in results:
        assert code == 0, err
        assert "locked" not in err

    tasks = {t.name: t for t in Task.get_tasks(project_name="concurrent")}
    assert sorted(tasks) == names
    for name, task in tasks.items():
        assert task.status == "completed"
        [model] = task.models["output"]
        assert [s.seq for s in model.snapshots] == list(range(1, 16))
        assert [s.iteration for s in model.snapshots] == list(range(15))
        assert [Path(model.get_local_copy(v)).read_bytes() for v in (1, 15)] == [f"{name}-0".encode(),
                                                                                f"{name}-14".encode()]
        arts = task.artifacts
        assert len(arts) == 15
        assert arts["a7"].get() == {"i": 7, "writer": name}
