"""What a snapshot of a saved path holds: exclude globs for folders, companion files for one file."""
from __future__ import annotations

import pytest

from autolog.storage import collect_sources


def test_a_file_with_companions_is_one_snapshot_named_from_its_folder(tmp_path):
    (tmp_path / "data").mkdir()
    for name in ("model.onnx", "model.onnx.data", "data/extra.bin", "unrelated.txt"):
        (tmp_path / name).write_bytes(name.encode())
    sources = collect_sources(tmp_path / "model.onnx",
                              companions=(str(tmp_path / "model.onnx.data"), str(tmp_path / "data" / "extra.bin")))
    assert [name for _, name in sources.files] == ["model.onnx", "model.onnx.data", "data/extra.bin"]
    assert sources.name == "" and sources.entry == "model.onnx" and not sources.single


def test_a_companion_outside_the_files_folder_is_refused(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "model.onnx").write_bytes(b"m")
    (tmp_path / "weights.data").write_bytes(b"w")
    with pytest.raises(ValueError, match="outside its folder"):
        collect_sources(tmp_path / "sub" / "model.onnx", companions=(str(tmp_path / "weights.data"),))


def test_exclude_leaves_out_top_level_names_only(tmp_path):
    for name in ("config.json", "model.safetensors", "checkpoint-5/model.safetensors", "nested/checkpoint-7/x"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    sources = collect_sources(tmp_path, exclude=("checkpoint-*",))
    assert [name for _, name in sources.files] == ["config.json", "model.safetensors", "nested/checkpoint-7/x"]


def test_an_exclude_with_a_slash_is_a_path_inside_the_folder(tmp_path):
    for name in ("model.safetensors", "a/b/model.safetensors", "a/b/config.json", "a/c/model.safetensors",
                 "b/model.safetensors", "tok/vocab.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    sources = collect_sources(tmp_path, exclude=("a/b/model.safetensors", "tok/vocab.txt"))
    assert [name for _, name in sources.files] == ["model.safetensors", "a/b/config.json", "a/c/model.safetensors",
                                                   "b/model.safetensors"]
