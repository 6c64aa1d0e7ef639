"""autolog.storage.layout: every name becomes one safe, bounded path component inside its folder."""
from __future__ import annotations

import posixpath
import re

import pytest

from autolog.storage.layout import (
    MAX_COMPONENT,
    artifact_key,
    folders_above,
    join,
    safe_component,
    snapshot_key,
    task_prefix,
    within,
)

HOSTILE_NAMES = [
    "../../x",
    "..",
    ".",
    "...",
    "/etc/passwd",
    "a/b",
    "a\\b",
    "nul\x00x",
    ".hidden",
    "./model.pt",
    "x" * 300,
    "🚀 model ✨",
    "日本語のモデル",
    "",
    " ",
    "-rf",
    "a\nb\tc",
    "C:\\Windows\\model",
]

TASK_ID = "0123456789abcdef0123456789abcdef"
MODEL_ID = "fedcba9876543210fedcba9876543210"


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=repr)
def test_safe_component_is_one_harmless_component(name):
    cleaned = safe_component(name)
    assert cleaned, "empty components would collapse the path"
    assert "/" not in cleaned and "\\" not in cleaned and "\x00" not in cleaned
    assert not cleaned.startswith("."), "no hidden files, no '.' or '..'"
    assert cleaned not in (".", "..")
    assert len(cleaned) <= MAX_COMPONENT
    assert re.fullmatch(r"[A-Za-z0-9._-]+", cleaned)


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=repr)
def test_safe_component_is_idempotent(name):
    assert safe_component(safe_component(name)) == safe_component(name)


@pytest.mark.parametrize("name", ["model.pt", "resnet-50_v2.ckpt", "best", "data.csv.gz", "A1"])
def test_safe_component_keeps_ordinary_names(name):
    assert safe_component(name) == name


def test_long_names_are_bounded_but_keep_their_start():
    name = "epoch_" + "9" * 500
    assert safe_component(name) == name[:MAX_COMPONENT]


@pytest.mark.parametrize("project", ["digits", "../../etc", "a/b", ".x"], ids=repr)
@pytest.mark.parametrize("task_name", ["train", "../..", "nul\x00", "é" * 200], ids=repr)
def test_keys_stay_inside_the_output_root(project, task_name):
    root = "/out"
    prefix = task_prefix(project, task_name, TASK_ID)
    keys = [
        prefix,
        snapshot_key(prefix, "../../../model.pt", MODEL_ID, 1),
        artifact_key(prefix, "../../../../x", "ab" * 16),
    ]
    for key in keys:
        full = posixpath.normpath(join(root, key))
        assert full.startswith(prefix_of(root, project, task_name)), full
        assert ".." not in key.split("/")
        assert "" not in key.split("/")


def prefix_of(root: str, project: str, task_name: str) -> str:
    return f"{root}/{safe_component(project)}/{safe_component(task_name)}.{TASK_ID}"


def test_key_shapes_are_human_readable():
    prefix = task_prefix("digits", "train", TASK_ID)
    assert prefix == f"digits/train.{TASK_ID}"
    assert snapshot_key(prefix, "model.pt", MODEL_ID, 3) == f"digits/train.{TASK_ID}/models/model.pt.{MODEL_ID[:8]}/0003"
    assert artifact_key(prefix, "person dictionary", "1234abcd" * 4) == (
        f"digits/train.{TASK_ID}/artifacts/person_dictionary.1234abcd"
    )


def test_snapshot_keys_differ_per_model_and_seq():
    prefix = task_prefix("p", "t", TASK_ID)
    keys = {
        snapshot_key(prefix, "model.pt", model_id, seq)
        for model_id in (MODEL_ID, "0" * 32)
        for seq in (1, 2, 10)
    }
    assert len(keys) == 6


def test_names_that_clean_to_the_same_text_still_get_distinct_keys():
    prefix = task_prefix("p", "t", TASK_ID)
    assert safe_component("a/b") == safe_component("a_b")
    assert artifact_key(prefix, "a/b", "1" * 32) != artifact_key(prefix, "a_b", "2" * 32)


def test_join_tolerates_a_trailing_slash_on_the_root():
    assert join("memory://bucket/", "p/t") == "memory://bucket/p/t"
    assert join("/out", "p/t") == "/out/p/t"


def test_folders_above_lists_each_folder_innermost_first_up_to_the_root():
    assert folders_above("/a/b/c.pt") == ["/a/b", "/a", "/"]
    assert folders_above("/c.pt") == ["/"]
    assert folders_above("b/c/d.pt") == ["b/c", "b"]
    assert folders_above("d.pt") == []


def test_within_is_by_name_a_folder_itself_or_below_it_never_a_sibling_sharing_its_prefix():
    assert within("/run/ckpt", "/run/ckpt")
    assert within("/run/ckpt/model.pt", "/run/ckpt")
    assert within("/run/ckpt/model.pt", "/run/ckpt/")  # a folder named with its trailing separator
    assert within("/run/ckpt/", "/run/ckpt")
    assert within("/run/ckpt/a/b.pt", "/")
    assert not within("/run/ckpt-2/model.pt", "/run/ckpt")
    assert not within("/run/ckpt2", "/run/ckpt")
    assert not within("/run", "/run/ckpt")
    assert within("out/m.pt", "out") and not within("output/m.pt", "out")
