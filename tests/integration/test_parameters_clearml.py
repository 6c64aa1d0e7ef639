"""Parameters as ClearML's own example scripts use them: a TaskParameters class (clearml.task_parameters),
user properties, and dicts that keep being recorded after task.connect() / connect_configuration()
(examples/reporting/hyper_parameters.py changes the connected dict, then ends). The scripts run in real
child interpreters, ending normally, with an exception and with SIGTERM."""
from __future__ import annotations

import json
import logging
import pickle
import signal
import subprocess
import sys
import textwrap

import pytest

from autolog import Task
from autolog.cli import main
from autolog.errors import TaskNotRunningError
from autolog.task_parameters import TaskParameters, param, percent_param

# -- A. TaskParameters ---------------------------------------------------------------------------


class TrainParams(TaskParameters):
    """Written as ClearML's TaskParameters docstring writes its example."""

    iterations = param(type=int, desc="Number of iterations to run", range=(0, 100000))
    target_accuracy = percent_param(desc="The target accuracy of the model")
    optimizer = param(type=str, desc="optimizer name", default="adam")
    layers = param(default=None, desc="hidden sizes")


def test_task_parameters_declares_defaults_and_validates_at_instantiation():
    p = TrainParams(100, target_accuracy=0.75)
    assert (p.iterations, p.target_accuracy, p.optimizer, p.layers) == (100, 0.75, "adam", None)
    assert repr(p) == "TrainParams(iterations=100, target_accuracy=0.75, optimizer='adam', layers=None)"
    assert p == TrainParams(iterations=100, target_accuracy=0.75) and p != TrainParams(1, 0.75)
    assert p.to_dict() == {"iterations": 100, "target_accuracy": 0.75, "optimizer": "adam", "layers": None}
    assert TrainParams(5, None).target_accuracy is None  # attrs' optional(instance_of(type)): None passes

    with pytest.raises(TypeError, match=r"'iterations' must be <class 'int'> \(got '5' that is a <class 'str'>\)"):
        TrainParams("5", 0.5)
    with pytest.raises(ValueError, match=r"^iterations must be in range \[0, 100000\]$"):
        TrainParams(-1, 0.5)
    with pytest.raises(ValueError, match=r"^target_accuracy must be in range \[0, 1\]$"):
        TrainParams(1, 1.5)
    with pytest.raises(TypeError, match=r"'target_accuracy' must be <class 'float'>"):
        TrainParams(1, 1)  # percent_param is a float, as in ClearML: an int is refused
    with pytest.raises(TypeError, match=r"missing 1 required argument: 'target_accuracy'"):
        TrainParams(iterations=1)
    with pytest.raises(TypeError, match=r"unexpected argument 'lr'"):
        TrainParams(1, 0.5, lr=0.1)

    p.update_from_dict({"iterations": 7, "layers": [8, 4]})
    assert (p.iterations, p.layers) == (7, [8, 4])
    with pytest.raises(ValueError, match=r"Unknown key lr in TrainParams object"):
        p.update_from_dict({"lr": 0.1})


def test_task_parameters_class_rules_follow_attrs():
    class Base(TaskParameters):
        seed = param(type=int, default=0)

    class Child(Base):
        lr = param(type=float, default=0.1, validator=lambda inst, attribute, value: None)
        steps = param(factory=list)

    assert Child().to_dict() == {"seed": 0, "lr": 0.1, "steps": []}
    assert Child().steps is not Child().steps  # a factory makes a new default each time
    with pytest.raises(ValueError, match=r"No mandatory attributes allowed after an attribute with a default"):
        class Bad(TaskParameters):  # noqa: F841 - the class statement itself raises
            a = param(default=1)
            b = param()

    def positive(instance, attribute, value):
        if value <= 0:
            raise ValueError(f"{attribute.name} must be positive")

    class Checked(TaskParameters):
        batch = param(type=int, validator=[positive], default=1)

    with pytest.raises(ValueError, match="batch must be positive"):
        Checked(0)


def test_connect_task_parameters_stores_the_values_and_descriptions_in_their_section():
    task = Task.init(project_name="params", task_name="task-parameters")
    task.connect({"old": 1})  # ClearML's connect(TaskParameters) is set_parameters(prefix=): replaces the section
    p = TrainParams(iterations=300, target_accuracy=0.9, layers=[64, 32])
    assert task.connect(p) is p
    assert p.connect(task) is p  # TaskParameters.connect(task), as ClearML has it
    task.connect(TrainParams(1, 0.5), name="Eval")
    assert task.get_parameters(cast=True) == {
        "General/iterations": 300, "General/target_accuracy": 0.9, "General/optimizer": "adam",
        "General/layers": [64, 32], "Eval/iterations": 1, "Eval/target_accuracy": 0.5, "Eval/optimizer": "adam",
        "Eval/layers": None}
    descriptions = task._ctx.store.get_task(task.id).parameters["/descriptions"]
    assert descriptions["General/iterations"] == "Number of iterations to run"
    assert descriptions["Eval/target_accuracy"] == "The target accuracy of the model"
    p.iterations = 5  # read at connect time only, as in ClearML
    task.close()
    assert Task.get_task(task_id=task.id).get_parameter("General/iterations") == "300"


# -- B. user properties ----------------------------------------------------------------------------


def test_user_properties_take_clearmls_shapes_and_show_with_the_parameters(capsys):
    task = Task.init(project_name="params", task_name="properties")
    assert task.set_user_properties(
        {"name": "backbone", "description": "network type", "value": "great"},
        ("stable", True),
        lr=0.1, size={"value": 5, "description": "input size", "type": int},
    ) is True
    props = task.get_user_properties()
    assert props == {
        "backbone": {"section": "properties", "name": "backbone", "value": "great", "description": "network type"},
        "stable": {"section": "properties", "name": "stable", "value": "True"},
        "lr": {"section": "properties", "name": "lr", "value": "0.1"},
        "size": {"section": "properties", "name": "size", "value": "5", "description": "input size", "type": "int"},
    }
    assert task.get_user_properties(value_only=True) == {"backbone": "great", "stable": "True", "lr": "0.1",
                                                         "size": "5"}
    assert task.get_parameter("properties/size", cast=True) == 5  # cast by the property's type
    assert task.get_parameter("properties/stable") == "True"

    assert task.delete_user_properties([("properties", "stable")], [{"section": "properties", "name": "lr"}]) is True
    assert sorted(task.get_user_properties(value_only=True)) == ["backbone", "size"]
    with pytest.raises(ValueError, match=r"needs a \"name\""):
        task.set_user_properties({"name": "", "value": "x"})
    with pytest.raises(ValueError, match=r"set_user_properties takes dicts"):
        task.set_user_properties(["not a pair"])
    task.close()

    assert main(["task", "show", task.id]) == 0
    out = capsys.readouterr().out
    assert "  properties/backbone = great   # network type" in out
    assert "  properties/size = 5   # input size" in out


def test_user_properties_of_a_finished_task_can_be_edited_but_not_of_one_running_elsewhere():
    task = Task.init(project_name="params", task_name="annotated")
    task.close()
    fetched = Task.get_task(task_id=task.id)
    fetched.set_user_properties(verdict="best so far")  # ClearML lets a finished task be annotated
    assert Task.get_task(task_id=task.id).get_user_properties(value_only=True) == {"verdict": "best so far"}
    assert fetched.delete_user_properties([("properties", "verdict")]) is True
    assert fetched.get_user_properties() == {}

    other = Task.get_task(task_id=task.id)
    other._context.store.update_task(other.id, status="running")  # as a task another process is running reads
    with pytest.raises(TaskNotRunningError, match="running in another process"):
        other.set_user_properties(x=1)


# -- C. connected dicts keep being recorded ---------------------------------------------------------------

HYPER_PARAMETERS_EXAMPLE = """
import time
from autolog import Task

task = Task.init(project_name='examples', task_name='Hyper-parameters example')
parameters = {
    'list': [1, 2, 3],
    'dict': {'a': 1, 'b': 2},
    'tuple': (1, 2, 3),
    'int': 3,
    'float': 2.2,
    'string': 'my string',
    'words': ['a', 'b'],
}
parameters = task.connect(parameters)
parameters['new_param'] = 'this is new'
parameters['float'] = '9.9'
parameters['dict']['b'] = 20
config = {'nested_dicts': {'nested': {'key': 'value'}, 'number': 42}, 'list': [1, 2, 3]}
config = task.connect_configuration(config, name='configuration dictionary')
config['nested_dicts']['number'] = 43
config['list'].append(4)
print(task.id, flush=True)
live = task.get_parameters()
print(live['General/new_param'], live['General/float'], flush=True)
"""


def check_final_values(task_id: str, status: str) -> None:
    task = Task.get_task(task_id=task_id)
    assert task.status == status
    assert task.get_parameters() == {
        "General/list": "[1, 2, 3]", "General/dict/a": "1", "General/dict/b": "20", "General/tuple": "(1, 2, 3)",
        "General/int": "3", "General/float": "9.9", "General/string": "my string", "General/words": "['a', 'b']",
        "General/new_param": "this is new"}
    assert task.get_parameter("General/tuple", cast=True) == (1, 2, 3)
    assert task.get_configuration_object_as_dict("configuration dictionary") == {
        "nested_dicts": {"nested": {"key": "value"}, "number": 43}, "list": [1, 2, 3, 4]}


@pytest.mark.parametrize("ending, status, code", [
    ("", "completed", 0),
    ("raise RuntimeError('boom')", "failed", 1),
])
def test_changes_after_connect_are_stored_however_the_script_ends(run_py, ending, status, code):
    proc = run_py(HYPER_PARAMETERS_EXAMPLE + ending)
    assert proc.returncode == code, proc.stderr
    task_id, live = proc.stdout.splitlines()
    assert live == "this is new 9.9"  # read back while running, as ClearML returns it
    check_final_values(task_id, status)


def test_changes_after_connect_are_stored_on_sigterm(child_env):
    script = HYPER_PARAMETERS_EXAMPLE + "print('ready', flush=True)\ntime.sleep(120)\n"
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(script)], env=child_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    task_id, _, ready = (proc.stdout.readline().strip() for _ in range(3))
    if ready != "ready":  # the script died before it got there
        proc.kill()
        pytest.fail(f"the script did not get to its sleep: {proc.communicate(timeout=60)[1]}")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err
    check_final_values(task_id, "failed")


def test_a_connected_dict_stays_the_users_plain_dict_and_is_stored_at_flush():
    task = Task.init(project_name="params", task_name="plain")
    params = {"lr": 0.1, "opt": {"name": "sgd"}}
    assert task.connect(params) is params and type(params) is dict
    for step in range(10_000):  # a tight loop: nothing is written per change
        params["step"] = step
    params["opt"]["name"] = "adam"
    params.pop("lr")  # ClearML records additions and changes; a removed key stays stored
    assert json.loads(json.dumps(params)) == params and pickle.loads(pickle.dumps(params)) == params
    stored = task._ctx.store.get_task(task.id).parameters  # the column, not synced by a read of the task
    assert stored["General"] == {"lr": 0.1, "opt/name": "sgd"}
    task.flush()
    assert task._ctx.store.get_task(task.id).parameters["General"] == {"lr": 0.1, "opt/name": "adam", "step": 9999}


def test_a_later_explicit_write_wins_over_an_earlier_dict_change():
    task = Task.init(project_name="params", task_name="order")
    params = task.connect({"lr": 0.1})
    params["lr"] = 0.2  # in ClearML, stored at once...
    task.set_parameter("General/lr", 0.5)  # ...and this, later, replaces it
    task.close()
    assert Task.get_task(task_id=task.id).get_parameter("General/lr", cast=True) == 0.5


def test_a_connected_object_or_class_is_read_at_connect_time_only():
    class Config:
        depth = 3

    task = Task.init(project_name="params", task_name="object")
    task.connect(Config, name="Cls")
    Config.depth = 4
    task.close()
    assert Task.get_task(task_id=task.id).get_parameter("Cls/depth", cast=True) == 3


def test_a_change_that_cannot_be_stored_never_raises_into_the_script(monkeypatch, caplog):
    monkeypatch.delenv("AUTOLOG_STRICT")
    task = Task.init(project_name="params", task_name="bad-change")
    config = task.connect_configuration({"lr": 0.1}, name="net")
    config["fn"] = print  # not JSON: refused at connect time, and a later change cannot be stored either
    config["lr"] = 0.2
    with caplog.at_level(logging.WARNING, logger="autolog"):
        task.flush()
    assert "configuration 'net' changed after connect_configuration" in caplog.text
    assert "configuration['fn'] is a function" in caplog.text
    assert task.get_configuration_object_as_dict("net") == {"lr": 0.1}  # the last value that could be stored
    del config["fn"]
    task.close()
    assert Task.get_task(task_id=task.id).get_configuration_object_as_dict("net") == {"lr": 0.2}


def test_parameter_text_is_clearmls_str():
    task = Task.init(project_name="params", task_name="text")
    task.connect({"t": (1, 2), "words": ["a", "b"], "flags": [True, False], "holes": [1, None], "empty": {}})
    assert task.get_parameters() == {"General/t": "(1, 2)", "General/words": "['a', 'b']",
                                     "General/flags": "[True, False]", "General/holes": "[1, null]",
                                     "General/empty": "{}"}
    assert task.get_parameters(cast=True)["General/t"] == (1, 2)
