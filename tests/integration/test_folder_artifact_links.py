"""A folder artifact whose symlinks loop or lead nowhere is still stored: those links are skipped, each named
in one warning, and the rest of the folder comes back intact."""
from __future__ import annotations

import os
from pathlib import Path

UPLOAD_AND_READ_BACK = """
from pathlib import Path
from autolog import Task

task = Task.init(project_name="p", task_name="links", output_uri={out!r})
task.upload_artifact("data", {folder!r})
task.close()
copy = Path(Task.get_task(task_id=task.id).artifacts["data"].get())
print(sorted(p.relative_to(copy).as_posix() for p in copy.rglob("*") if p.is_file()))
print((copy / "real.txt").read_text())
"""


def test_folder_artifact_with_a_symlink_cycle_stores_the_rest(tmp_path, run_py):
    folder = tmp_path / "data"
    (folder / "sub").mkdir(parents=True)
    (folder / "real.txt").write_text("inside")
    (folder / "sub" / "deep.txt").write_text("deep")
    os.symlink("b", folder / "a")  # a -> b -> a
    os.symlink("a", folder / "b")
    os.symlink("self", folder / "self")
    os.symlink("missing.txt", folder / "dangling")

    proc = run_py(UPLOAD_AND_READ_BACK.format(out=str(tmp_path / "out"), folder=str(folder)))

    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-2:] == ["['real.txt', 'sub/deep.txt']", "inside"]
    for link in ("a", "b", "self", "dangling"):
        named = [line for line in proc.stderr.splitlines() if f"{folder / link} in " in line]
        assert len(named) == 1, (link, proc.stderr)
        assert named[0].startswith("Skipping symlink")
    assert "Traceback" not in proc.stderr
    assert Path(folder / "real.txt").read_text() == "inside"  # the user's folder is untouched
