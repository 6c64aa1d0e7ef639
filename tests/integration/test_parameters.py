"""Parameters and configuration objects, as ClearML's Task has them: argparse arguments stored without a
code change (parsed before or after Task.init, in real scripts with real argv), the parameter calls,
configuration objects, reads from a fetched task, and what `autolog task show` prints."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from autolog import Task, argparse_capture
from autolog.cli import main
from autolog.errors import TaskNotRunningError

PARSE_BEFORE_INIT = r"""
import argparse, json
from pathlib import Path
from autolog import Task

def handler():
    pass

parser = argparse.ArgumentParser(description="train")
parser.add_argument("--lr", type=float, default=0.1, help="learning rate (default: %(default)s)")
parser.add_argument("--layers", type=int, nargs="+", default=[8])
parser.add_argument("--name", default=None)
parser.add_argument("--flag", action="store_true")
parser.add_argument("--out", type=Path, default=Path("out"))
parser.set_defaults(func=handler)
args = parser.parse_args()
task = Task.init(project_name="params", task_name="before")
print(json.dumps({"id": task.id, "func": args.func is handler,
                  "args": {k: str(v) for k, v in vars(args).items() if k != "func"}}))
"""

PARSE_AFTER_INIT = r"""
import argparse, json
from autolog import Task

task = Task.init(project_name="params", task_name="after")
parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float, default=0.1)
commands = parser.add_subparsers(dest="command")
train = commands.add_parser("train")
train.add_argument("--epochs", type=int, default=1, help="passes over the data")
commands.add_parser("eval").add_argument("--split", default="test")
args, extras = parser.parse_known_args()
print(json.dumps({"id": task.id, "namespace": vars(args), "extras": extras, "live": task.get_parameters(cast=True)}))
"""


def run_script(tmp_path: Path, child_env, code: str, *argv: str) -> subprocess.CompletedProcess:
    script = tmp_path / "train.py"
    script.write_text(code)
    return subprocess.run([sys.executable, str(script), *argv], cwd=tmp_path, env=child_env(),
                          capture_output=True, text=True, timeout=300)


def parser_with(*names: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    for name in names:
        parser.add_argument(f"--{name}")
    return parser


# -- argparse ------------------------------------------------------------------------------------


def test_arguments_parsed_before_task_init_are_stored_as_args(tmp_path, child_env):
    proc = run_script(tmp_path, child_env, PARSE_BEFORE_INIT, "--lr", "0.5", "--layers", "3", "4", "--flag",
                      "--out", "data/x")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    # The script's own namespace is untouched.
    assert out["func"] is True
    assert out["args"] == {"lr": "0.5", "layers": "[3, 4]", "name": "None", "flag": "True", "out": "data/x"}

    task = Task.get_task(task_id=out["id"])
    # As ClearML returns them: strings (None as ""), lists as JSON; cast=True gives the parsed values back.
    assert task.get_parameters() == {"Args/lr": "0.5", "Args/layers": "[3, 4]", "Args/name": "",
                                     "Args/flag": "True", "Args/out": "data/x"}
    assert task.get_parameters(cast=True) == {"Args/lr": 0.5, "Args/layers": [3, 4], "Args/name": None,
                                              "Args/flag": True, "Args/out": "data/x"}
    assert task.get_parameters_as_dict(cast=True)["Args"]["layers"] == [3, 4]
    assert task._record.parameters["/descriptions"] == {"Args/lr": "learning rate (default: 0.1)"}


def test_a_bad_command_line_still_fails_as_argparse_makes_it_fail(tmp_path, child_env):
    proc = run_script(tmp_path, child_env, PARSE_BEFORE_INIT, "--lr", "fast")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == "train.py: error: argument --lr: invalid float value: 'fast'"
    assert proc.stdout == ""


def test_arguments_parsed_after_task_init_are_stored_at_once_with_the_sub_command(tmp_path, child_env):
    proc = run_script(tmp_path, child_env, PARSE_AFTER_INIT, "--lr", "0.01", "train", "--epochs", "5",
                      "--unknown", "x")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["namespace"] == {"lr": 0.01, "command": "train", "epochs": 5}
    assert out["extras"] == ["--unknown", "x"]  # parse_known_args' extras: returned, not parameters
    # Stored while the task runs, not only at close; the sub-parser the script did not choose is absent.
    assert out["live"] == {"Args/lr": 0.01, "Args/command": "train", "Args/epochs": 5}
    task = Task.get_task(task_id=out["id"])
    assert task.get_parameters() == {"Args/lr": "0.01", "Args/command": "train", "Args/epochs": "5"}
    assert task._record.parameters["/descriptions"] == {"Args/epochs": "passes over the data"}


def test_a_sub_parser_parse_is_noted_once_as_part_of_the_outermost_call():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=0)
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("fit").add_argument("--steps", type=int)
    namespace = parser.parse_args(["--seed", "3", "fit", "--steps", "7"])
    assert vars(namespace) == {"seed": 3, "command": "fit", "steps": 7}
    [noted] = argparse_capture.recorded()
    assert noted.values == {"seed": 3, "command": "fit", "steps": 7}


def test_auto_connect_arg_parser_false_stores_no_arguments_before_or_after_init():
    parser = parser_with("lr")
    parser.parse_args(["--lr", "0.1"])
    task = Task.init(project_name="params", task_name="off", auto_connect_arg_parser=False)
    parser.parse_args(["--lr", "0.2"])
    assert task.get_parameters() == {}
    task.close()


@pytest.mark.parametrize("selection, kept", [
    ({"secret": False}, {"Args/lr": "0.1", "Args/layers": "2"}),
    ({"*": False, "lr": True}, {"Args/lr": "0.1"}),
    ({}, {}),  # an empty dict turns capture off, as in ClearML
])
def test_auto_connect_arg_parser_dict_selects_arguments(selection, kept):
    parser = parser_with("lr", "layers", "secret")
    parser.parse_args(["--lr", "0.1", "--layers", "2", "--secret", "hunter2"])
    task = Task.init(project_name="params", task_name="some", auto_connect_arg_parser=selection)
    assert task._runtime.record.parameters.get("Args", {}) == {k.split("/")[1]: v for k, v in kept.items()}, \
        "the arguments go into the task's row as it is created: Task.init does not wait for the database"
    assert task.get_parameters() == kept
    parser.parse_args(["--secret", "again", "--lr", "0.3"])  # after Task.init: the same selection
    assert task.get_parameter("Args/secret") is None
    task.close()


def test_a_parse_after_the_task_closed_is_not_stored():
    task = Task.init(project_name="params", task_name="closed")
    task.close()
    parser_with("lr").parse_args(["--lr", "9"])
    assert Task.get_task(task_id=task.id).get_parameters() == {}


def test_auto_connect_arg_parser_of_the_wrong_type_is_refused_before_anything_starts():
    with pytest.raises(ValueError, match=r"auto_connect_arg_parser must be True, False or a dict"):
        Task.init(project_name="params", task_name="bad", auto_connect_arg_parser="yes")
    assert Task.current_task() is None


def test_connect_parser_stores_its_last_parse_else_its_defaults():
    task = Task.init(project_name="params", task_name="parser")
    unparsed = argparse.ArgumentParser()
    unparsed.add_argument("--batch", type=int, default=64, help="per step")
    assert task.connect(unparsed) is unparsed
    assert task.get_parameters(cast=True) == {"Args/batch": 64}
    argparse_capture.follow(None)  # as with auto_connect_arg_parser=False: only connect() stores
    unparsed.parse_args(["--batch", "32"])
    assert task.get_parameter("Args/batch", cast=True) == 64
    task.connect(unparsed)
    assert task.get_parameter("Args/batch", cast=True) == 32


# -- the parameter calls ---------------------------------------------------------------------------


def test_connect_dict_flattens_into_its_section_and_adds_to_it():
    task = Task.init(project_name="params", task_name="dict")
    params = {"lr": 0.1, "layers": [64, 32], "opt": {"name": "adam", "betas": (0.9, 0.99)}, "n": np.int64(3)}
    assert task.connect(params) is params
    task.connect({"epochs": 2})  # a second connect to General adds to it
    task.connect({"size": 224}, name="Data")
    assert task.get_parameters(cast=True) == {  # a tuple reads back as one, as ClearML casts it
        "General/lr": 0.1, "General/layers": [64, 32], "General/opt/name": "adam", "General/opt/betas": (0.9, 0.99),
        "General/n": 3, "General/epochs": 2, "Data/size": 224}
    assert task.get_parameters_as_dict(cast=True) == {
        "General": {"lr": 0.1, "layers": [64, 32], "opt": {"name": "adam", "betas": (0.9, 0.99)}, "n": 3,
                    "epochs": 2},
        "Data": {"size": 224}}
    assert task.get_parameters_as_dict()["General"]["opt"] == {"name": "adam", "betas": "(0.9, 0.99)"}


def test_connect_object_stores_its_public_plain_attributes():
    class Base:
        depth = 3
        shared = "base"

    class Config(Base):
        shared = "config"
        _hidden = 1
        lr = 0.01

        def method(self):
            return 1

    task = Task.init(project_name="params", task_name="objects")
    assert task.connect(Config, name="Cls") is Config
    instance = Config()
    instance.batch, instance.loader, instance._private = 8, object(), 5
    task.connect(instance, name="Obj")
    task.connect(argparse.Namespace(seed=1, tags=["a"]))  # ClearML: a Namespace is an object, section General
    assert task.get_parameters(cast=True) == {
        "Cls/depth": 3, "Cls/shared": "config", "Cls/lr": 0.01, "Obj/batch": 8, "General/seed": 1,
        "General/tags": ["a"]}
    with pytest.raises(TypeError, match=r"a list has none. Connect a dict instead"):
        task.connect([1, 2])


def test_set_get_delete_parameter():
    task = Task.init(project_name="params", task_name="single")
    task.set_parameter("lr", 0.1, description="learning rate")
    task.set_parameter("Train/epochs", "5", value_type=int)
    task.set_parameter("Train/ratio", "0.5", value_type="float")
    task.set_parameter("Train/resume", "false", value_type=bool)
    task.set_parameter("Train/path", Path("/data/x"))
    assert task.get_parameter("General/lr") == "0.1"
    assert task.get_parameter("lr", cast=True) == 0.1  # no section: General
    assert task.get_parameter("Train/epochs", cast=True) == 5
    assert task.get_parameter("Train/ratio", cast=True) == 0.5
    assert task.get_parameter("Train/resume") == "False"
    assert task.get_parameter("Train/path", cast=True) == str(Path("/data/x"))  # not JSON: its str
    assert task.get_parameter("Train/missing", default="d") == "d"
    assert task._ctx.store.get_task(task.id).parameters["/descriptions"] == {"General/lr": "learning rate"}
    assert task.delete_parameter("General/lr") is True
    assert task.delete_parameter("General/lr") is False
    assert "/descriptions" not in task._ctx.store.get_task(task.id).parameters  # went with its parameter
    assert task.get_parameters() == {"Train/epochs": "5", "Train/ratio": "0.5", "Train/resume": "False",
                                     "Train/path": str(Path("/data/x"))}


def test_set_parameters_replaces_all_and_update_parameters_adds():
    task = Task.init(project_name="params", task_name="bulk")
    task.connect({"lr": 0.1})
    task.set_parameter("Args/seed", 1)
    task.set_parameters({"Train/epochs": 3}, [("Train/batch", 8)], dropout=0.5)
    assert task.get_parameters(cast=True) == {"Train/epochs": 3, "Train/batch": 8, "General/dropout": 0.5}
    task.update_parameters({"Train/epochs": 4, "Eval/split": "test"})
    assert task.get_parameters(cast=True) == {"Train/epochs": 4, "Train/batch": 8, "General/dropout": 0.5,
                                              "Eval/split": "test"}
    task.set_parameters({"lr": 1e-3}, __parameters_prefix="Train")  # replaces that section only
    assert task.get_parameters(cast=True) == {"General/dropout": 0.5, "Eval/split": "test", "Train/lr": 1e-3}
    task.set_parameters_as_dict({"Model": {"depth": 2, "head": {"dim": 16}}})
    assert task.get_parameters_as_dict(cast=True)["Model"] == {"depth": 2, "head": {"dim": 16}}
    with pytest.raises(ValueError, match="dicts or \\(name, value\\) pairs, not int"):
        task.set_parameters(5)


# -- configuration objects -----------------------------------------------------------------------------


def test_connect_configuration_dict_and_list():
    task = Task.init(project_name="params", task_name="config")
    config = {"model": {"depth": 3, "act": "relu"}, "sizes": (1, 2)}
    assert task.connect_configuration(config) is config  # returned as given
    task.connect_configuration([1, "two"], name="steps", description="the schedule")
    assert task.get_configuration_object_as_dict("General") == {"model": {"depth": 3, "act": "relu"}, "sizes": [1, 2]}
    assert json.loads(task.get_configuration_object("General")) == {"model": {"depth": 3, "act": "relu"},
                                                                     "sizes": [1, 2]}
    assert task.get_configuration_objects() == {"General": task.get_configuration_object("General"),
                                                "steps": task.get_configuration_object("steps")}
    assert task.get_configuration_object_as_dict("steps") == [1, "two"]
    assert task.get_configuration_object("absent") is None
    assert task.get_configuration_object_as_dict("absent") is None
    stored = task._ctx.store.get_task(task.id).configuration
    assert stored["steps"] == {"type": "dictionary", "value": [1, "two"], "description": "the schedule"}


def test_connect_configuration_file_stores_its_text_and_returns_the_path(tmp_path):
    task = Task.init(project_name="params", task_name="files")
    yaml_file = tmp_path / "train.yaml"
    yaml_file.write_text("lr: 0.1\nlayers:\n  - 4\n")
    json_file = tmp_path / "model.json"
    json_file.write_text('{"depth": 3}')
    assert task.connect_configuration(yaml_file, name="train") is yaml_file
    assert task.connect_configuration(str(json_file), name="model") == str(json_file)
    assert task.get_configuration_object("train") == "lr: 0.1\nlayers:\n  - 4\n"
    assert task.get_configuration_object_as_dict("model") == {"depth": 3}
    stored = task._ctx.store.get_task(task.id).configuration
    assert (stored["train"]["type"], stored["model"]["type"]) == ("yaml", "json")
    task.set_configuration_object("notes", config_text="not: [json, or: yaml")
    with pytest.raises(ValueError, match=r"parses neither as JSON nor as YAML.*get_configuration_object\('notes'\)"):
        task.get_configuration_object_as_dict("notes")


def test_bad_configuration_is_refused_naming_the_argument_and_where(tmp_path):
    task = Task.init(project_name="params", task_name="bad-config")
    with pytest.raises(TypeError) as caught:
        task.connect_configuration({"optimizer": {"lr": 0.1, "fn": print}})
    assert str(caught.value).startswith("configuration['optimizer']['fn'] is a function: not JSON-serializable.")
    with pytest.raises(TypeError, match=r"^configuration\['layers'\]\[1\] is a pathlib\.\w*Path: not JSON"):
        task.connect_configuration({"layers": [1, Path("x")]})
    with pytest.raises(TypeError, match=r"^config_dict has the key \(1, 2\) \(a tuple\): JSON keys are strings"):
        task.set_configuration_object("t", config_dict={(1, 2): "pair"})
    with pytest.raises(ValueError, match=r"configuration='.*missing.yaml' cannot be read as a text file"):
        task.connect_configuration(tmp_path / "missing.yaml")
    with pytest.raises(ValueError, match=r"takes a dict, a list, or the path .* got int"):
        task.connect_configuration(3)
    with pytest.raises(ValueError, match="exactly one of them"):
        task.set_configuration_object("both", config_text="a", config_dict={"a": 1})
    with pytest.raises(ValueError, match="exactly one of them"):
        task.set_configuration_object("neither")
    assert task.get_configuration_objects() == {}  # nothing half-stored


# -- a fetched task --------------------------------------------------------------------------------


def test_a_fetched_task_reads_parameters_and_configuration_and_refuses_writes(run_py):
    task = Task.init(project_name="params", task_name="fetched")
    task.connect({"lr": 0.1, "layers": [2]})
    task.connect_configuration({"depth": 3}, name="net")
    task.close()
    proc = run_py(f"""
        import json
        from autolog import Task
        t = Task.get_task(task_id="{task.id}")
        print(json.dumps([t.get_parameters(), t.get_parameter("General/lr", cast=True), t.get_parameters_as_dict(),
                          t.get_configuration_object_as_dict("net"), sorted(t.get_configuration_objects())]))
        """)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [{"General/lr": "0.1", "General/layers": "[2]"}, 0.1,
                                       {"General": {"lr": "0.1", "layers": "[2]"}}, {"depth": 3}, ["net"]]
    fetched = Task.get_task(task_id=task.id)
    writes = [lambda: fetched.set_parameter("a", 1), lambda: fetched.connect({"a": 1}),
              lambda: fetched.delete_parameter("General/lr"), lambda: fetched.set_parameters({"a": 1}),
              lambda: fetched.connect_configuration({"a": 1}),
              lambda: fetched.set_configuration_object("x", config_text="y")]
    for write in writes:
        with pytest.raises(TaskNotRunningError, match="it is completed"):
            write()
    assert fetched.get_parameters(cast=True) == {"General/lr": 0.1, "General/layers": [2]}


# -- the CLI -------------------------------------------------------------------------------------


def test_task_show_lists_parameters_and_configuration(capsys):
    task = Task.init(project_name="params", task_name="shown")
    task.set_parameter("Train/batch", 32, description="per device")
    task.connect({"lr": 0.1})
    task.connect_configuration({"model": {"depth": 3}}, name="net")
    task.set_configuration_object("notes", config_text="\n".join(f"line {i}" for i in range(1, 9)))
    task.close()

    assert main(["task", "show", task.id]) == 0
    out = capsys.readouterr().out
    shown = out[out.index("parameters (2)"):out.index("artifacts (0)")].rstrip().splitlines()
    assert shown == [
        "parameters (2)",
        "  General/lr = 0.1",
        "  Train/batch = 32   # per device",
        "",
        "configuration (2)",
        "  net (dictionary)",
        "      {",
        '        "model": {',
        '          "depth": 3',
        "        }",
        "      }",
        "  notes (text)",
        "      line 1", "      line 2", "      line 3", "      line 4", "      line 5",
        "      ... (3 more lines)",
    ]
    assert main(["task", "show", task.id, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["parameters"] == {"Train": {"batch": 32}, "General": {"lr": 0.1},
                                  "/descriptions": {"Train/batch": "per device"}}
    assert data["configuration"]["net"] == {"type": "dictionary", "value": {"model": {"depth": 3}},
                                            "description": None}
