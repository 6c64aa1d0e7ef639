"""A model's design and label enumeration, and a task's label enumeration, through ClearML's calls:
Task.set_model_label_enumeration / connect_label_enumeration / get_labels_enumeration,
OutputModel(config_text= | config_dict=, label_enumeration=), update_design, update_labels, connect,
read back in this process and in a fresh one, on a real SQLite store."""
from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest

from autolog import InputModel, Model, OutputModel, Task
from autolog.cli import main
from autolog.context import default_context
from autolog.errors import TaskNotRunningError

LABELS = {"background": 0, "person": 1}


@pytest.fixture
def task():
    return Task.init(project_name="design", task_name="train", output_uri=True)


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def read_back(run_py, model_id: str, task_id: str) -> dict:
    """What a fresh interpreter reads of the model and its task from the store."""
    done = run_py(f"""
        import json
        from autolog import Model, Task
        model, task = Model({model_id!r}), Task.get_task(task_id={task_id!r})
        print(json.dumps({{"labels": model.labels, "config_text": model.config_text, "config_dict": model.config_dict,
                          "metadata": model.metadata, "name": model.name,
                          "task_labels": task.get_labels_enumeration()}}))
    """)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


# -- the task's label enumeration --------------------------------------------------------------


def test_task_label_enumeration_is_set_connected_read_and_cleared(task, run_py):
    assert task.get_labels_enumeration() == {}
    task.set_model_label_enumeration(LABELS)
    assert task.get_labels_enumeration() == LABELS
    other = {"cat": 3, "dog": 7}
    assert task.connect_label_enumeration(other) is other  # returned as given, as ClearML does
    assert Task.get_task(task_id=task.id).get_labels_enumeration() == other
    task.close()
    done = run_py(f"from autolog import Task; print(Task.get_task(task_id={task.id!r}).get_labels_enumeration())")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(other)


@pytest.mark.parametrize("clear", [None, {}])
def test_setting_no_enumeration_clears_it(task, clear):
    task.set_model_label_enumeration(LABELS)
    task.set_model_label_enumeration(clear)
    assert task.get_labels_enumeration() == {}
    assert OutputModel(task=task).labels == {}


@pytest.mark.parametrize("bad, says", [
    (["background", "person"], "got list"),
    ({0: 1}, "0: 1 is not"),
    ({"person": "1"}, "'person': '1' is not"),
    ({"person": 1.0}, "'person': 1.0 is not"),
    ({"person": True}, "'person': True is not"),
])
def test_a_bad_enumeration_is_refused_naming_the_argument(task, bad, says):
    with pytest.raises(ValueError, match=f"enumeration must .*{says}"):
        task.set_model_label_enumeration(bad)
    with pytest.raises(ValueError, match=f"label_enumeration must .*{says}"):
        OutputModel(task=task, label_enumeration=bad)
    model = OutputModel(task=task)
    with pytest.raises(ValueError, match=f"labels must .*{says}"):
        model.update_labels(bad)
    assert task.get_labels_enumeration() == {} and model.labels == {}


def test_connect_label_enumeration_takes_only_a_dict(task):
    with pytest.raises(ValueError, match="takes a dict .* got list"):
        task.connect_label_enumeration([("person", 1)])


def test_a_fetched_task_not_running_here_reads_but_does_not_set(task):
    task.set_model_label_enumeration(LABELS)
    task.close()
    fetched = Task.get_task(task_id=task.id)
    assert fetched.get_labels_enumeration() == LABELS
    with pytest.raises(TaskNotRunningError, match="Cannot set the label enumeration .* it is completed"):
        fetched.set_model_label_enumeration({"x": 1})
    with pytest.raises(TaskNotRunningError, match="Cannot set the label enumeration .* it is closed"):
        task.connect_label_enumeration({"x": 1})
    assert task.get_labels_enumeration() == LABELS


# -- a model's labels -----------------------------------------------------------------------------


def test_an_output_model_takes_the_task_enumeration_unless_given_its_own(task, run_py):
    task.set_model_label_enumeration(LABELS)
    inherited = OutputModel(task=task, name="inherited")
    empty = OutputModel(task=task, name="empty", label_enumeration={})  # as ClearML: {} falls back too
    own = OutputModel(task=task, name="own", label_enumeration={"cat": 0})
    task.set_model_label_enumeration({"later": 5})
    assert inherited.labels == LABELS and empty.labels == LABELS  # the task's, as it was when created
    assert own.labels == {"cat": 0}
    assert OutputModel(task=task, name="after").labels == {"later": 5}
    task.close()
    assert read_back(run_py, inherited.id, task.id)["labels"] == LABELS
    assert read_back(run_py, own.id, task.id)["labels"] == {"cat": 0}


def test_update_labels_sets_the_model_and_the_task_enumeration(task, run_py):
    model = OutputModel(task=task, label_enumeration={"cat": 0})
    model.update_labels({"cat": 0, "dog": 1})
    assert model.labels == {"cat": 0, "dog": 1} == Model(model.id).labels
    assert task.get_labels_enumeration() == {"cat": 0, "dog": 1}  # as ClearML's update_labels does
    model.labels = {"bird": 2}  # ClearML's setter
    task.close()
    back = read_back(run_py, model.id, task.id)
    assert back["labels"] == {"bird": 2} == back["task_labels"]


def test_models_saved_by_a_framework_and_by_update_output_model_take_the_task_enumeration(task, tmp_path):
    torch = pytest.importorskip("torch")
    task.set_model_label_enumeration(LABELS)
    torch.save({"w": torch.zeros(2)}, tmp_path / "captured.pt")
    task.update_output_model(model_path=str(write(tmp_path / "best.bin", b"best")), name="best")
    task.close()
    outputs = Task.get_task(task_id=task.id).models["output"]
    assert sorted(m.name for m in outputs) == ["best", "captured.pt"]
    assert [m.labels for m in outputs] == [LABELS, LABELS]


def test_connecting_an_input_model_gives_its_labels_to_a_task_without_any(tmp_path):
    producer = Task.init(project_name="design", task_name="producer", output_uri=True)
    model = OutputModel(task=producer, label_enumeration=LABELS)
    model.update_weights(weights_filename=str(write(tmp_path / "w.bin", b"weights")))
    producer.close()
    consumer = Task.init(project_name="design", task_name="consumer")
    consumer.connect(InputModel(model.id))
    assert consumer.get_labels_enumeration() == LABELS
    assert OutputModel(task=consumer).labels == LABELS  # ClearML: output models start from the input's labels
    consumer.close()
    keeps_its_own = Task.init(project_name="design", task_name="own labels")
    keeps_its_own.set_model_label_enumeration({"cat": 0})
    keeps_its_own.connect(InputModel(model.id))
    assert keeps_its_own.get_labels_enumeration() == {"cat": 0}


# -- a model's design -----------------------------------------------------------------------------

CONFIG = {"layers": [64, 32], "optimizer": {"name": "adam", "lr": 0.001}, "dropout": None, "bn": True}


def test_config_dict_comes_back_equal_and_as_json_text(task, run_py):
    model = OutputModel(task=task, config_dict=CONFIG)
    assert model.config_dict == CONFIG
    assert json.loads(model.config_text) == CONFIG
    task.close()
    back = read_back(run_py, model.id, task.id)
    assert back["config_dict"] == CONFIG and json.loads(back["config_text"]) == CONFIG
    assert back["metadata"] == {}  # the design and labels are not metadata


def test_config_text_is_kept_as_given_and_only_json_has_a_dict_form(task, run_py):
    prototxt = 'layer { name: "conv1" type: "Convolution" }\n'
    model = OutputModel(task=task, config_text=prototxt)
    assert model.config_text == prototxt
    with pytest.raises(ValueError, match="not a JSON object.*Read it as config_text"):
        model.config_dict
    as_json = OutputModel(task=task, config_text='{"lr": 0.1}')
    assert as_json.config_dict == {"lr": 0.1}
    task.close()
    assert read_back(run_py, as_json.id, task.id)["config_dict"] == {"lr": 0.1}
    done = run_py(f"from autolog import Model; print(repr(Model({model.id!r}).config_text))")
    assert done.stdout.strip() == repr(prototxt)


def test_a_model_without_design_or_labels_reads_empty_as_in_clearml(task):
    model = Model(OutputModel(task=task).id)
    assert (model.config_text, model.config_dict, model.labels) == ("", {}, {})


def test_update_design_replaces_clears_and_is_set_through_the_properties(task, run_py):
    model = OutputModel(task=task, config_dict={"lr": 0.1})
    assert model.update_design(config_text="depth: 3") is True
    assert model.config_text == "depth: 3"
    model.update_design(config_dict={"depth": 4})
    assert Model(model.id).config_dict == {"depth": 4}
    model.update_design()  # neither: no design, as ClearML's empty design
    assert model.config_text == ""
    model.config_text = "text again"
    assert model.config_text == "text again"
    model.config_dict = {"final": [1, 2]}
    task.close()
    assert read_back(run_py, model.id, task.id)["config_dict"] == {"final": [1, 2]}


def test_config_text_and_config_dict_together_are_refused(task):
    with pytest.raises(ValueError, match="config_text= or config_dict=, not both"):
        OutputModel(task=task, config_text="a", config_dict={"a": 1})
    model = OutputModel(task=task, config_text="kept")
    with pytest.raises(ValueError, match="not both"):
        model.update_design(config_text="a", config_dict={"a": 1})
    assert model.config_text == "kept"


class Opaque:
    pass


def cyclic() -> dict:
    config: dict = {"a": {}}
    config["a"]["back"] = config
    return config


@pytest.mark.parametrize("config, says", [
    ({"layers": [64, Opaque()]}, r"config_dict\['layers'\]\[1\] is a Opaque, which a JSON design cannot hold"),
    ({"optimizer": {"betas": {0.9, 0.99}}}, r"config_dict\['optimizer'\]\['betas'\] is a set"),
    ({"layers": {0: 64}}, r"config_dict\['layers'\] has the key 0 \(int\).*Use str keys"),
    (cyclic(), r"config_dict\['a'\]\['back'\] contains itself"),
    ([1, 2], "config_dict must be a dict, got list"),
])
def test_a_config_dict_json_cannot_hold_is_refused_naming_where(task, config, says):
    with pytest.raises(ValueError, match=says):
        OutputModel(task=task, config_dict=config)
    model = OutputModel(task=task, config_dict={"ok": 1})
    with pytest.raises(ValueError, match=says):
        model.update_design(config_dict=config)
    assert model.config_dict == {"ok": 1}


def test_config_text_must_be_text_and_text_given_as_config_dict_is_taken_as_is(task):
    with pytest.raises(ValueError, match="config_text must be a str, got dict. Pass a dict with config_dict="):
        OutputModel(task=task, config_text={"a": 1})
    assert OutputModel(task=task, config_dict="depth: 3").config_text == "depth: 3"  # as ClearML does


def test_rows_written_before_the_design_keys_are_still_read(task, run_py):
    """Older code kept the config dict and the labels as plain metadata keys."""
    model = OutputModel(task=task)
    default_context().store.update_model(model.id, meta={"config": {"lr": 0.1}, "labels": LABELS, "acc": 0.9})
    assert Model(model.id).config_dict == {"lr": 0.1} and Model(model.id).labels == LABELS
    model.update_labels({"new": 1})  # the new keys win over the old ones
    assert model.labels == {"new": 1} and model.config_dict == {"lr": 0.1}
    task.close()
    back = read_back(run_py, model.id, task.id)
    assert back["labels"] == {"new": 1} and json.loads(back["config_text"]) == {"lr": 0.1}


def test_metadata_does_not_show_design_and_labels_and_their_keys_are_reserved(task):
    model = OutputModel(task=task, config_dict={"lr": 0.1}, label_enumeration=LABELS)
    model.set_metadata("accuracy", 0.93)
    assert model.metadata == {"accuracy": 0.93} == Model(model.id).get_all_metadata()
    for key in ("_design", "_labels"):
        with pytest.raises(ValueError, match=f"{key!r} is where autolog keeps .* update_design"):
            model.set_metadata(key, "x")
    assert model.config_dict == {"lr": 0.1} and model.labels == LABELS


# -- connect, the constructor's signature ---------------------------------------------------------


def test_connect_renames_the_model_and_gives_its_labels_to_a_task_without_any(task, run_py):
    model = OutputModel(task=task, name="net", label_enumeration=LABELS)
    model.connect(task, name="generator")
    assert model.name == "generator"
    assert task.models["output"]["generator"] == model
    assert task.get_labels_enumeration() == LABELS
    model.connect(task)  # no name: the name stays
    task.close()
    assert read_back(run_py, model.id, task.id)["name"] == "generator"


def test_task_connect_of_an_output_model_passes_the_name_on(task):
    model = OutputModel(task=task, name="net")
    assert task.connect(model, name="generator") is model
    assert model.name == "generator" and task.models["output"]["generator"] == model


def test_update_output_model_deletes_the_file_only_once_a_copy_is_stored(tmp_path):
    paths_only = Task.init(project_name="design", task_name="paths only")  # output_uri=None: nothing copied
    kept = write(tmp_path / "kept.pt", b"weights")
    paths_only.update_output_model(kept, name="kept", auto_delete_file=True)
    assert kept.read_bytes() == b"weights"  # the snapshot is this very file: deleting it would lose it
    paths_only.close()
    copied = Task.init(project_name="design", task_name="copied", output_uri=True)
    gone = write(tmp_path / "gone.pt", b"weights")
    copied.update_output_model(gone, name="gone", auto_delete_file=True)
    assert not gone.exists()
    assert Path(copied.models["output"]["gone"].get_local_copy()).read_bytes() == b"weights"


def test_connect_to_another_task_is_refused(task):
    model = OutputModel(task=task)
    task.close()
    other = Task.init(project_name="design", task_name="other")
    with pytest.raises(ValueError, match="is an output of task .* Create OutputModel\\(task=task\\)"):
        model.connect(other)
    with pytest.raises(ValueError, match="name must be a non-empty str"):
        OutputModel(task=other).connect(other, name=" ")


def test_base_model_id_is_refused_with_the_way_to_record_where_a_model_started(task):
    with pytest.raises(ValueError, match=r"base_model_id=\) is not supported.*InputModel\(base_model_id\)\.connect"):
        OutputModel(task=task, base_model_id="0123")


def parameters(function) -> list[str]:
    return [p for p in inspect.signature(function).parameters if p != "self"]


def test_signatures_follow_clearml():
    """ClearML's parameter names in ClearML's order, so positional calls mean the same."""
    assert parameters(OutputModel.__init__) == [
        "task", "config_text", "config_dict", "label_enumeration", "name", "tags", "comment", "framework",
        "base_model_id"]
    assert parameters(OutputModel.update_weights) == [
        "weights_filename", "upload_uri", "target_filename", "auto_delete_file", "register_uri", "iteration"]
    assert parameters(OutputModel.update_weights_package) == [
        "weights_filenames", "weights_path", "upload_uri", "target_filename", "auto_delete_file", "iteration"]
    assert parameters(OutputModel.update_design) == ["config_text", "config_dict"]
    assert parameters(OutputModel.update_labels) == ["labels"]
    assert parameters(OutputModel.connect) == ["task", "name"]
    assert parameters(Task.set_model_label_enumeration) == ["enumeration"]
    assert parameters(Task.connect_label_enumeration) == ["enumeration", "ignore_remote_overrides"]
    assert parameters(Task.get_labels_enumeration) == []


def test_positional_arguments_mean_what_they_mean_in_clearml(task):
    model = OutputModel(task, "text design", None, {"cat": 0}, "net", ["t"], "a comment", "PyTorch")
    assert (model.config_text, model.labels, model.name, model.tags, model.comment, model.framework) == (
        "text design", {"cat": 0}, "net", ["t"], "a comment", "PyTorch")


# -- the CLI -------------------------------------------------------------------------------------


def test_model_show_prints_labels_and_design(task, capsys):
    design = {f"layer{i}": i for i in range(30)}
    model = OutputModel(task=task, name="net", config_dict=design, label_enumeration=LABELS)
    task.close()
    assert main(["model", "show", model.id[:8]]) == 0
    out = capsys.readouterr().out
    assert "  labels  background=0, person=1" in out
    assert '    "layer0": 0,' in out and "more lines: --json shows all" in out
    assert main(["model", "show", model.id, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["labels"] == LABELS and json.loads(data["config_text"]) == design
