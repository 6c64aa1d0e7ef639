"""Artifacts with ClearML's full signatures (clearml/task.py, clearml/binding/artifacts.py): upload_artifact's
keyword arguments, wildcards, get_local_copy / get options, and registered (watched) DataFrames."""
from __future__ import annotations

import json
import logging
import pickle
import zipfile
from pathlib import Path

import fsspec
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from autolog import Task
from autolog.errors import IntegrityError, TaskNotRunningError


@pytest.fixture(params=["path", "memory"])
def task(request, tmp_path, memory_uri):
    output_uri = {"path": str(tmp_path / "out"), "memory": memory_uri}[request.param]
    return Task.init(project_name="digits", task_name="train", output_uri=output_uri, auto_connect_frameworks=False)


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def samples(tmp_path) -> Path:
    root = tmp_path / "data_samples"
    (root / "cats").mkdir(parents=True)
    (root / "a.jpg").write_bytes(b"jpeg a")
    (root / "b.jpg").write_bytes(b"jpeg b")
    (root / "notes.txt").write_text("not an image")
    (root / "cats" / "c.jpg").write_bytes(b"jpeg c")
    return root


# -- the signature -------------------------------------------------------------------------------


def test_upload_artifact_takes_clearml_keyword_arguments_in_order(task):
    # positional, in ClearML's order: name, artifact_object, metadata, delete_after_upload, auto_pickle, preview,
    # wait_on_upload, extension_name, serialization_function, retries
    assert task.upload_artifact("cfg", {"lr": 0.1}, {"split": "train"}, False, True, 42, True, None, None, 0) is True
    art = task.artifacts["cfg"]
    assert (art.type, art.metadata, art.preview, art.get()) == ("json", {"split": "train"}, "42", {"lr": 0.1})
    assert art.hash == art.sha256
    with pytest.raises(ValueError, match="retries must be a whole number"):
        task.upload_artifact("x", {"a": 1}, retries=-1)


# -- wildcards -----------------------------------------------------------------------------------


def test_wildcard_uploads_one_zip_of_the_matches_at_any_depth(task, samples, monkeypatch):
    monkeypatch.chdir(samples.parent)
    task.upload_artifact("jpgs", "data_samples/*.jpg")
    art = task.artifacts["jpgs"]
    assert art.type == "folder" and art.url.endswith("/data_samples.zip")
    assert "Archive content data_samples/*.jpg" in art.preview and "cats/c.jpg" in art.preview
    expected = {"a.jpg": b"jpeg a", "b.jpg": b"jpeg b", "cats/c.jpg": b"jpeg c"}  # ClearML rglob: depth too
    assert tree(Path(art.get_local_copy())) == expected
    assert Path(art.get()) == Path(art.get_local_copy())
    archive = art.get_local_copy(extract_archive=False)
    assert archive.endswith(".zip") and Path(archive).is_file()
    with zipfile.ZipFile(archive) as zf:
        assert sorted(zf.namelist()) == sorted(expected)


def test_wildcard_in_a_folder_part_is_a_glob_with_double_star(task, tmp_path):
    for run, value in (("run1", "1"), ("run2", "2")):
        (tmp_path / "runs" / run / "deep").mkdir(parents=True)
        (tmp_path / "runs" / run / "metrics.csv").write_text(value)
        (tmp_path / "runs" / run / "deep" / "metrics.csv").write_text("deep " + value)
    task.upload_artifact("metrics", str(tmp_path / "runs" / "*" / "metrics.csv"))
    assert tree(Path(task.artifacts["metrics"].get_local_copy())) == {"run1/metrics.csv": b"1", "run2/metrics.csv": b"2"}
    task.upload_artifact("all", str(tmp_path / "runs" / "**" / "*.csv"))
    assert len(tree(Path(task.artifacts["all"].get_local_copy()))) == 4


def test_wildcard_matching_nothing_names_the_pattern(task, samples):
    with pytest.raises(ValueError, match=r"wildcard '.*data_samples/\*\.png', which matches no file"):
        task.upload_artifact("pngs", str(samples / "*.png"))
    with pytest.raises(ValueError, match=r"its folder '.*missing' does not exist"):
        task.upload_artifact("pngs", str(samples / "missing" / "*.png"))
    assert task.artifacts == {}


def test_folder_comes_back_extracted_or_as_its_zip(task, samples):
    task.upload_artifact("folder", samples)
    art = task.artifacts["folder"]
    assert tree(Path(art.get_local_copy())) == tree(samples)
    with zipfile.ZipFile(art.get_local_copy(extract_archive=False)) as zf:
        assert "cats/c.jpg" in zf.namelist()


# -- serialization -------------------------------------------------------------------------------


def test_serialization_function_bytes_come_back_through_deserialization_function(task):
    obj = {"weights": [1, 2, 3]}
    task.upload_artifact("custom", obj, serialization_function=lambda o: json.dumps(o).encode()[::-1],
                         extension_name=".rev")
    art = task.artifacts["custom"]
    assert art.type == "custom" and art.url.endswith(".rev")
    assert Path(art.get()).read_bytes() == json.dumps(obj).encode()[::-1]  # no function: the stored file
    assert art.get(deserialization_function=lambda b: json.loads(b[::-1])) == obj
    with pytest.raises(ValueError, match="serialization_function must return bytes"):
        task.upload_artifact("bad", obj, serialization_function=lambda o: "text")


def test_deserialization_function_never_sees_altered_bytes(task):
    task.upload_artifact("custom", [1], serialization_function=pickle.dumps)
    art = task.artifacts["custom"]
    local = Path(art.get_local_copy())
    if art.url.startswith("memory://"):
        fsspec.filesystem("memory").pipe_file(art.url[len("memory://"):], pickle.dumps([2]))
        local.unlink()
    else:
        local.write_bytes(pickle.dumps([2]))
    with pytest.raises(IntegrityError, match="custom"):
        art.get(deserialization_function=pickle.loads)


def test_extension_name_pkl_pickles_and_image_extensions_pick_the_format(task, caplog):
    task.upload_artifact("cfg", {"lr": 0.1}, extension_name=".pkl")
    assert task.artifacts["cfg"].type == "pickle" and task.artifacts["cfg"].get() == {"lr": 0.1}
    image = Image.fromarray(np.full((4, 6, 3), 200, dtype=np.uint8))
    task.upload_artifact("img", image, extension_name=".bmp")
    art = task.artifacts["img"]
    assert art.url.endswith(".bmp") and art.get().size == (6, 4)
    with Image.open(art.get_local_copy()) as stored:
        assert stored.format == "BMP"
    with caplog.at_level(logging.WARNING, logger="autolog"):
        task.upload_artifact("yaml", {"a": 1}, extension_name=".yaml")  # ClearML's fallback: the default
    assert task.artifacts["yaml"].url.endswith(".json") and "'.yaml' is not available for json" in caplog.text


def test_auto_pickle_false_refuses_what_only_pickle_can_store(task, helpers):
    with pytest.raises(ValueError, match="Person can only be stored pickled, and auto_pickle=False"):
        task.upload_artifact("obj", helpers.Person("Erik", 30), auto_pickle=False)
    task.upload_artifact("ok", {"json": True}, auto_pickle=False)
    assert sorted(task.artifacts) == ["ok"]


def test_delete_after_upload_deletes_the_uploaded_file_only(task, tmp_path, samples):
    src = tmp_path / "data.csv"
    src.write_text("a,b\n1,2\n")
    task.upload_artifact("data", src, delete_after_upload=True)
    assert not src.exists()
    assert Path(task.artifacts["data"].get_local_copy()).read_text() == "a,b\n1,2\n"
    task.upload_artifact("folder", samples, delete_after_upload=True)  # zipped: the zip was ours, the folder stays
    assert samples.is_dir()


def test_retries_try_again_then_raise_the_storage_error(tmp_path, caplog):
    out = tmp_path / "out"
    task = Task.init(project_name="digits", task_name="train", output_uri=str(out), auto_connect_frameworks=False)
    (out / "digits").write_text("a file where the task's folder must go")  # every attempt fails
    with caplog.at_level(logging.WARNING, logger="autolog"), pytest.raises(OSError):
        task.upload_artifact("cfg", {"a": 1}, retries=2)
    assert [r.getMessage().split(";")[-1] for r in caplog.records if "retrying" in r.getMessage()] == \
        [" retrying (1/2)", " retrying (2/2)"]


# -- get_local_copy options -----------------------------------------------------------------------


def test_missing_object_gives_none_with_a_warning_or_raises_when_asked(task, caplog):
    task.upload_artifact("cfg", {"a": 1})
    art = task.artifacts["cfg"]
    local = Path(art.get_local_copy())
    if art.url.startswith("memory://"):
        fsspec.filesystem("memory").rm_file(art.url[len("memory://"):])
        local.unlink()
    else:
        local.unlink()
    with caplog.at_level(logging.WARNING, logger="autolog"):
        assert art.get_local_copy() is None
    assert "no local copy of artifact 'cfg'" in caplog.text
    with pytest.raises(OSError):
        art.get_local_copy(raise_on_error=True)
    with pytest.raises(OSError):
        art.get()  # get() always raises: there is no object to return


def test_force_download_replaces_an_altered_cached_copy(memory_uri, tmp_path):
    task = Task.init(project_name="digits", task_name="train", output_uri=memory_uri, auto_connect_frameworks=False)
    src = tmp_path / "data.csv"
    src.write_text("original")
    task.upload_artifact("data", src)
    art = task.artifacts["data"]
    cached = Path(art.get_local_copy())
    cached.write_text("edited by hand")
    assert Path(art.get_local_copy()).read_text() == "edited by hand"  # the cache answers
    fresh = Path(art.get_local_copy(force_download=True))
    assert fresh.read_text() == "original"


# -- registered artifacts --------------------------------------------------------------------------

READ_BACK = """
import json, sys
from autolog import Task
art = Task.get_task(task_id=sys.argv[1]).artifacts["audit"]
print(json.dumps({"rows": art.get().to_dict("list"), "type": art.type, "preview": art.preview}))
"""


def read_back(run_py, task_id: str) -> dict:
    proc = run_py(f"import sys; sys.argv = ['x', {task_id!r}]\n" + READ_BACK)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_a_frame_changed_in_place_after_registration_is_stored_at_close(task, run_py):
    df = pd.DataFrame({"id": [1, 2], "label": ["cat", "dog"]})
    task.register_artifact("audit", df, metadata={"source": "camera"})
    assert task.artifacts["audit"].get().to_dict("list") == {"id": [1, 2], "label": ["cat", "dog"]}
    df.loc[len(df)] = [3, "cat"]  # in place: the same object
    df.loc[len(df)] = [3, "cat"]
    task.close()
    got = read_back(run_py, task.id)
    assert got["rows"] == {"id": [1, 2, 3, 3], "label": ["cat", "dog", "cat", "cat"]}
    assert got["type"] == "pandas" and got["preview"].startswith("4 rows, 3 unique (by id, label)")
    assert task.artifacts["audit"].metadata == {"source": "camera"}


def test_a_registered_frame_is_stored_at_exit_without_close(run_py, tmp_path):
    proc = run_py(f"""
        import pandas as pd
        from autolog import Task
        task = Task.init(project_name="digits", task_name="audit", output_uri={str(tmp_path / 'out')!r},
                         auto_connect_frameworks=False)
        df = pd.DataFrame({{"id": [1], "label": ["cat"]}})
        task.register_artifact("audit", df)
        df.loc[1] = [2, "dog"]
        print(task.id)
    """)
    assert proc.returncode == 0, proc.stderr
    assert read_back(run_py, proc.stdout.split()[-1])["rows"] == {"id": [1, 2], "label": ["cat", "dog"]}


def test_flush_uploads_only_changes_and_deletes_the_superseded_copy(tmp_path):
    task = Task.init(project_name="digits", task_name="train", output_uri=str(tmp_path / "out"),
                     auto_connect_frameworks=False)
    df = pd.DataFrame({"x": [1.0, 2.0]})
    task.register_artifact("audit", df)
    first = task.artifacts["audit"].url
    task.flush()
    assert task.artifacts["audit"].url == first  # unchanged: not uploaded again
    df.loc[0, "x"] = 9.5  # same shape, other values
    task.flush()
    second = task.artifacts["audit"].url
    assert second != first and not Path(first).exists() and Path(second).exists()
    assert task.artifacts["audit"].get()["x"].tolist() == [9.5, 2.0]


def test_registry_lists_the_watched_objects_and_unregister_stores_the_last_change(task):
    df = pd.DataFrame({"x": [1]})
    task.register_artifact("audit", df, uniqueness_columns=["x"])
    assert task.get_registered_artifacts()["audit"] is df
    df.loc[1] = [2]
    task.unregister_artifact("audit")
    assert task.get_registered_artifacts() == {}
    assert task.artifacts["audit"].get()["x"].tolist() == [1, 2]
    df.loc[2] = [3]
    task.flush()
    assert task.artifacts["audit"].get()["x"].tolist() == [1, 2]  # no longer watched
    with pytest.raises(ValueError, match="No artifact named 'audit' is registered"):
        task.unregister_artifact("audit")


def test_registration_errors_name_the_fix(task):
    with pytest.raises(ValueError, match="register_artifact takes a pandas.DataFrame, got dict"):
        task.register_artifact("d", {"a": 1})
    with pytest.raises(ValueError, match=r"uniqueness_columns names columns the DataFrame does not have: \['y'\]"):
        task.register_artifact("d", pd.DataFrame({"x": [1]}), uniqueness_columns=["y"])
    task.register_artifact("audit", pd.DataFrame({"x": [1]}))
    with pytest.raises(ValueError, match="'audit' is registered"):
        task.upload_artifact("audit", {"a": 1})
    task.close()
    with pytest.raises(TaskNotRunningError):
        task.register_artifact("late", pd.DataFrame({"x": [1]}))
