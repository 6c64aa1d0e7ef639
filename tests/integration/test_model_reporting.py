"""A model's own reports (ClearML's Model.report_scalar & co., examples/reporting/model_reporting_plots.py)
and update_weights of a file that does not exist (examples/reporting/model_config.py), against a real
SQLite store and real files."""
from __future__ import annotations

import inspect
import json
import logging

import numpy as np
import pandas as pd
import pytest

from autolog import Model, OutputModel, Task
from autolog.errors import TaskNotRunningError
from autolog.utilities.plotly_reporter import SeriesInfo


@pytest.fixture
def task():
    task = Task.init(project_name="examples", task_name="Model reporting plots example", auto_connect_frameworks=False)
    yield task
    task.close()


def report_as_the_example_does(model: OutputModel) -> None:
    """examples/reporting/model_reporting_plots.py, less register_uri (a download)."""
    model.report_scalar("Reported Metrics", "Val - mAP@50", 72.7, 0)
    model.report_single_value("Total epochs", 8)
    df = pd.DataFrame({"Model": ["YOLOv5n", "YOLOv5s"], "size (pixels)": [640, 640], "Val - mAP@50-95": [28.0, 37.4]})
    model.report_table(title="Summary Table", series="Comparison", iteration=0, table_plot=df)
    validation = SeriesInfo(name="Validation", data=np.array([[0, 0.3], [1, 0.55]]))
    model.report_line_plot(title="Accuracy", series=[validation], xaxis="Iteration", yaxis="Validation Accuracy")


def test_the_clearml_example_records_the_models_reports_apart_from_the_tasks(task):
    model = OutputModel(task=task)
    model.update_labels({"background": 0, "cat": 1, "dog": 2})
    report_as_the_example_does(model)
    task.get_logger().report_scalar("Reported Metrics", "task's own", 1.0, 0)
    assert model.get_reported_scalars() == {"Reported Metrics": {"Val - mAP@50": {"name": "Val - mAP@50", "x": [0],
                                                                                  "y": [72.7]}}}
    assert model.get_reported_single_values() == {"Total epochs": 8.0}
    assert model.get_last_scalar_metrics() == {"Reported Metrics": {"Val - mAP@50": {"last": 72.7, "min": 72.7,
                                                                                      "max": 72.7}}}
    plots = {p["metric"]: json.loads(p["plot_str"]) for p in model.get_reported_plots()}
    assert plots["Summary Table"]["data"][0]["cells"]["values"][1] == ["YOLOv5n", "YOLOv5s"]
    assert plots["Accuracy"]["data"][0]["name"] == "Validation" and plots["Accuracy"]["data"][0]["y"] == [0.3, 0.55]
    # the task's readers see the task's reports only, as ClearML shows a model's reports on the model
    assert task.get_reported_scalars() == {"Reported Metrics": {"task's own": {"name": "task's own", "x": [0],
                                                                               "y": [1.0]}}}
    assert task.get_reported_single_values() == {} and task.get_reported_plots() == []


def test_every_plot_kind_is_a_plotly_figure_of_the_model(task):
    model = OutputModel(task=task, name="plots")
    model.report_histogram("histogram", "h", values=np.array([[1, 2], [3, 4]]), iteration=1, labels=["A", "B"])
    model.report_vector("vector", "v", values=[1, 2, 3], iteration=1)
    model.report_scatter2d("scatter", "s2", scatter=[(0, 1), (1, 3)], iteration=2, xaxis="x", yaxis="y")
    model.report_scatter3d("scatter3", "s3", scatter=np.ones((2, 3)), iteration=2)
    model.report_confusion_matrix("confusion", "c", np.eye(2), iteration=3, xlabels=["cat", "dog"], yaxis_reversed=True)
    model.report_matrix("matrix", "m", [[1, 2], [3, 4]], iteration=3)
    model.report_surface("surface", "sf", np.zeros((2, 2)), iteration=4)
    figures = {p["metric"]: json.loads(p["plot_str"]) for p in model.get_reported_plots()}
    assert [t["name"] for t in figures["histogram"]["data"]] == ["A", "B"]
    assert figures["vector"]["data"][0]["y"] == [1.0, 2.0, 3.0] and figures["vector"]["data"][0]["name"] == "v"
    assert figures["scatter"]["data"][0]["mode"] == "lines" and figures["scatter"]["data"][0]["y"] == [1.0, 3.0]
    assert figures["scatter3"]["data"][0]["type"] == "scatter3d"
    assert figures["confusion"]["layout"]["yaxis"]["autorange"] == "reversed"
    assert figures["matrix"]["data"][0]["z"] == [[1.0, 2.0], [3.0, 4.0]]
    assert figures["surface"]["data"][0]["type"] == "surface"
    assert [p["iter"] for p in model.get_reported_plots(max_iterations=1)] == [4]


def test_a_single_value_of_the_task_and_of_its_model_with_one_name_are_two_and_each_is_replaced(task):
    model = OutputModel(task=task)
    task.get_logger().report_single_value("accuracy", 0.5)
    model.report_single_value("accuracy", 0.9)
    task.get_logger().flush()
    model.report_single_value("accuracy", 0.95)  # again: replaces the model's, not the task's
    task.get_logger().report_single_value("accuracy", 0.6)
    assert model.get_reported_single_value("accuracy") == 0.95
    assert task.get_reported_single_values() == {"accuracy": 0.6}


def test_reports_outlive_the_task_and_another_task_may_report_on_the_model(task):
    model = OutputModel(task=task, name="kept")
    model.report_scalar("loss", "val", 0.5, 0)
    task.close()
    fetched = Model(model.id)  # another object, read from the store
    assert fetched.get_reported_scalars()["loss"]["val"]["y"] == [0.5]
    with pytest.raises(TaskNotRunningError, match="no task is running in this process.*Task.init"):
        fetched.report_scalar("loss", "val", 0.4, 1)
    later = Task.init(project_name="examples", task_name="evaluation", auto_connect_frameworks=False)
    fetched.report_scalar("loss", "val", 0.4, 1)  # recorded by the task running now
    assert model.get_reported_scalars()["loss"]["val"] == {"name": "val", "x": [0, 1], "y": [0.5, 0.4]}
    assert later.get_reported_scalars() == {}
    later.close()


def test_model_reporting_checks_its_arguments_as_logger_does(task):
    model = OutputModel(task=task)
    with pytest.raises(TypeError, match="value must be a number, got str"):
        model.report_scalar("t", "s", "0.5", 0)
    with pytest.raises(ValueError, match="exactly one of table_plot=, csv= and url=, got none"):
        model.report_table("t", "s", 0)
    assert model.get_reported_scalars() == {} and model.get_reported_plots() == []


CLEARML_MODEL_PARAMETERS = {  # clearml/model.py, BaseModel
    "report_scalar": ["title", "series", "value", "iteration"],
    "report_single_value": ["name", "value"],
    "report_histogram": ["title", "series", "values", "iteration", "labels", "xlabels", "xaxis", "yaxis", "mode",
                         "data_args", "extra_layout"],
    "report_vector": ["title", "series", "values", "iteration", "labels", "xlabels", "xaxis", "yaxis", "mode",
                      "extra_layout"],
    "report_table": ["title", "series", "iteration", "table_plot", "csv", "url", "extra_layout"],
    "report_line_plot": ["title", "series", "xaxis", "yaxis", "mode", "iteration", "reverse_xaxis", "comment",
                         "extra_layout"],
    "report_scatter2d": ["title", "series", "scatter", "iteration", "xaxis", "yaxis", "labels", "mode", "comment",
                         "extra_layout"],
    "report_scatter3d": ["title", "series", "scatter", "iteration", "xaxis", "yaxis", "zaxis", "labels", "mode", "fill",
                         "comment", "extra_layout"],
    "report_confusion_matrix": ["title", "series", "matrix", "iteration", "xaxis", "yaxis", "xlabels", "ylabels",
                                "yaxis_reversed", "comment", "extra_layout"],
    "report_matrix": ["title", "series", "matrix", "iteration", "xaxis", "yaxis", "xlabels", "ylabels",
                      "yaxis_reversed", "extra_layout"],
    "report_surface": ["title", "series", "matrix", "iteration", "xaxis", "yaxis", "zaxis", "xlabels", "ylabels",
                       "camera", "comment", "extra_layout"],
}


@pytest.mark.parametrize("name", sorted(CLEARML_MODEL_PARAMETERS))
def test_model_reporting_signatures_follow_clearml(name):
    assert list(inspect.signature(getattr(Model, name)).parameters)[1:] == CLEARML_MODEL_PARAMETERS[name]


# -- update_weights of a file that is not there -----------------------------------------------------
def test_a_missing_weights_file_is_registered_by_path_with_a_warning_when_nothing_is_copied(task, tmp_path, caplog):
    model = OutputModel(task=task, framework="pytorch")  # examples/reporting/model_config.py
    path = tmp_path / "cifar_net.pth"
    with caplog.at_level(logging.WARNING, logger="autolog"):
        uri = model.update_weights(weights_filename=str(path))
    assert uri == str(path)
    [snap] = model.snapshots
    assert (snap.status, snap.uri, snap.sha256, snap.size) == ("local", str(path), None, None)
    assert "did not exist" in snap.reason and model.url == str(path)
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "does not exist" in warning.getMessage() and "no load can be linked to it" in warning.getMessage()
    with pytest.raises(FileNotFoundError, match="registered by its path only"):
        model.get_local_copy()
    path.write_bytes(b"saved afterwards")
    assert model.get_local_copy() == str(path)  # there now, returned unverified (no sha256 to check)


@pytest.mark.parametrize("where", ["output_uri", "upload_uri"])
def test_a_missing_weights_file_still_raises_when_a_copy_is_required(tmp_path, where):
    out = str(tmp_path / "out")
    task = Task.init(project_name="examples", task_name="copies", auto_connect_frameworks=False,
                     output_uri=out if where == "output_uri" else None)
    model = OutputModel(task=task)
    with pytest.raises(FileNotFoundError, match="no such file"):
        model.update_weights(weights_filename=str(tmp_path / "missing.pt"),
                             upload_uri=out if where == "upload_uri" else None)
    assert model.snapshots == []
    task.close()
