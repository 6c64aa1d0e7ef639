"""Where a captured call's path comes from (binding/core.path_argument) and which framework a generic
saver's object belongs to (object_framework): each source kind, bytes paths, open files."""
from __future__ import annotations

import io
import os

from autolog.binding.core import object_framework, path_argument
from autolog.binding.spec import Arg, Attr, Computed, Returned


class Manager:  # a CheckpointManager-like object that keeps its prefix on itself
    def __init__(self, prefix):
        self._prefix = prefix


def test_each_source_kind_reads_its_own_value(tmp_path):
    target = str(tmp_path / "w.pt")
    assert path_argument(Arg(1, "f"), "save", None, ("obj", target), {}, None) == target
    assert path_argument(Arg(1, "f"), "save", None, ("obj",), {"f": target}, None) == target
    assert path_argument(Arg(1, "f"), "save", None, ("obj",), {}, None) is None  # not passed: nothing
    assert path_argument(Returned(), "save", None, (), {}, target) == target
    assert path_argument(Attr("_prefix"), "save", Manager(target), (), {}, None) == target
    assert path_argument(Attr("_prefix"), "save", object(), (), {}, None) is None  # no such attribute
    computed = Computed(lambda call: os.path.join(call.instance._prefix, f"step-{call.result}"))
    assert path_argument(computed, "save", Manager(str(tmp_path)), (), {}, 7) == str(tmp_path / "step-7")


def test_relative_bytes_and_file_url_paths_become_absolute_text(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert path_argument(Arg(0, "f"), "save", None, ("w.pt",), {}, None) == str(tmp_path / "w.pt")
    assert path_argument(Arg(0, "f"), "save", None, (b"w.pt",), {}, None) == str(tmp_path / "w.pt")
    assert path_argument(Arg(0, "f"), "save", None, (f"file://{tmp_path}/w.pt",), {}, None) == str(tmp_path / "w.pt")
    assert path_argument(Arg(0, "f"), "save", None, ("s3://bucket/w.pt",), {}, None) == "s3://bucket/w.pt"


def test_an_open_file_is_its_path_and_its_buffer_is_flushed_first(tmp_path):
    target = tmp_path / "w.bin"
    with open(target, "wb") as f:
        f.write(b"still in Python's buffer")
        assert path_argument(Arg(0, "f"), "save", None, (f,), {}, None) == str(target)
        assert target.read_bytes() == b"still in Python's buffer"  # flushed: the snapshot sees the bytes
    with open(target, "rb") as f:
        assert path_argument(Arg(0, "f"), "load", None, (f,), {}, None) == str(target)


def test_an_open_file_is_found_where_it_is_after_the_working_folder_changed(tmp_path, monkeypatch, caplog):
    """Its name is relative to the folder of its open(): resolved against the current one, it named
    another file there (an older checkpoint of the same name), which was recorded as this save."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "ckpt.pt").write_bytes(b"an unrelated older file")
    monkeypatch.chdir(tmp_path / "a")
    with open("ckpt.pt", "wb") as f:
        monkeypatch.chdir(tmp_path / "b")
        assert path_argument(Arg(0, "f"), "save", None, (f,), {}, None) == str(tmp_path / "a" / "ckpt.pt")
        os.rename(tmp_path / "a" / "ckpt.pt", tmp_path / "a" / "moved.pt")  # nowhere to be found by name
        found = path_argument(Arg(0, "f"), "save", None, (f,), {}, None)
    assert found == str(tmp_path / "a" / "moved.pt")  # the kernel knows where the open file is now


def test_in_memory_targets_are_not_recorded():
    assert path_argument(Arg(0, "f"), "save", None, (io.BytesIO(),), {}, None) is None
    named = io.BytesIO()
    named.name = "/no/such/file.pt"  # a name that is not a file on disk
    assert path_argument(Arg(0, "f"), "save", None, (named,), {}, None) is None
    assert path_argument(Arg(0, "f"), "save", None, (42,), {}, None) is None


def test_object_framework_names_the_library_an_object_comes_from():
    import numpy as np
    from sklearn.linear_model import LinearRegression

    assert object_framework(LinearRegression(), "joblib") == "scikit-learn"  # sklearn.linear_model._base
    assert object_framework(np.zeros(2), "joblib") == "NumPy"
    assert object_framework({"a": 1}, "joblib") == "joblib"  # builtins: the saver's own name
