"""Logger, called as ClearML documents it, and what a task reads back (real SQLite store, real files).

Each call is written from ClearML's signature: the same positional order and keyword names, so a
script written for ClearML runs unchanged. Reading a running task first writes what is buffered.
"""
from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
import torch
from PIL import Image

from autolog import Logger, Task
from autolog.errors import TaskNotRunningError

NAN, INF = float("nan"), float("inf")


@pytest.fixture
def task():
    task = Task.init(project_name="logger", task_name="train", auto_connect_frameworks=False)
    yield task
    task.close()


def db_rows(table: str, home: Path) -> list[tuple]:
    engine = sa.create_engine(f"sqlite:///{home / 'autolog.db'}")
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(f"SELECT * FROM {table}"))]
    finally:
        engine.dispose()


def same(a: list[float], b: list[float]) -> bool:
    """Equal lists, NaN equal to NaN."""
    return len(a) == len(b) and all((x != x and y != y) or x == y for x, y in zip(a, b))


# -- the logger ---------------------------------------------------------------------------------
def test_current_logger_is_the_running_tasks_one_logger(task):
    logger = task.get_logger()
    assert isinstance(logger, Logger) and Logger.current_logger() is logger and task.get_logger() is logger
    assert task.logger is logger and Task.get_task(task_id=task.id).get_logger() is logger  # the live task's
    task.close()
    assert Logger.current_logger() is None  # ClearML: None when no task runs


def test_scalars_read_back_in_clearmls_shape_by_iteration(task):
    logger = task.get_logger()
    for i in range(5):
        logger.report_scalar("loss", "train", 1.0 / (i + 1), i)  # positional, as ClearML's examples
        logger.report_scalar(title="loss", series="val", value=2.0 * i, iteration=i)
    logger.report_scalar("accuracy", "val", 0.5, iteration=0)
    got = task.get_reported_scalars()  # no flush: reading the running task writes what is buffered
    assert got["loss"]["train"]["x"] == [0, 1, 2, 3, 4]
    assert got["loss"]["train"]["y"] == [1.0, 0.5, 1 / 3, 0.25, 0.2]
    assert got["loss"]["val"] == {"name": "val", "x": [0, 1, 2, 3, 4], "y": [0.0, 2.0, 4.0, 6.0, 8.0]}
    assert got["accuracy"] == {"val": {"name": "val", "x": [0], "y": [0.5]}}
    assert task.get_all_reported_scalars() == got
    assert task.get_last_scalar_metrics() == {
        "loss": {"train": {"last": 0.2, "min": 0.2, "max": 1.0}, "val": {"last": 8.0, "min": 0.0, "max": 8.0}},
        "accuracy": {"val": {"last": 0.5, "min": 0.5, "max": 0.5}},
    }


def test_nan_and_infinities_are_stored_as_such_and_read_back(task, autolog_home):
    logger = task.get_logger()
    for i, v in enumerate([1.0, NAN, INF, -INF, 2.0]):
        logger.report_scalar("m", "s", v, i)
    logger.report_scalar("all-nan", "s", NAN, 0)
    logger.report_single_value("nan", NAN)
    logger.report_single_value("inf", INF)
    ys = task.get_reported_scalars()["m"]["s"]["y"]
    assert same(ys, [1.0, NAN, INF, -INF, 2.0])
    last = task.get_last_scalar_metrics()
    assert last["m"]["s"] == {"last": 2.0, "min": -INF, "max": INF}  # NaN is left out of min and max
    assert all(math.isnan(v) for v in last["all-nan"]["s"].values())
    singles = task.get_reported_single_values()
    assert math.isnan(singles["nan"]) and singles["inf"] == INF
    values = [r[5] for r in db_rows("scalars", autolog_home) if r[2] == "m"]
    assert values[1] is None and values[2] == INF  # NaN is NULL in the database, infinities are numbers


def test_a_value_reported_again_for_an_iteration_replaces_it_and_last_is_the_highest_iteration(task):
    logger = task.get_logger()
    logger.report_scalar("loss", "train", 5.0, 10)
    logger.report_scalar("loss", "train", 1.0, 3)  # reported later, but an earlier iteration
    logger.report_scalar("loss", "train", 2.0, 3)  # again: replaces 1.0
    line = task.get_reported_scalars()["loss"]["train"]
    assert (line["x"], line["y"]) == ([3, 10], [2.0, 5.0])
    assert task.get_last_scalar_metrics()["loss"]["train"]["last"] == 5.0


def test_numpy_and_torch_numbers_are_values_and_numpy_ints_are_iterations(task):
    logger = task.get_logger()
    logger.report_scalar("m", "numpy", np.float32(0.25), np.int64(1))
    logger.report_scalar("m", "torch", torch.tensor(0.5), torch.tensor(2))
    logger.report_scalar("m", "int", 3, np.uint8(3))
    logger.report_scalar("m", "bool", True, 4)  # float(True), as ClearML casts it
    got = task.get_reported_scalars()["m"]
    assert (got["numpy"]["x"], got["numpy"]["y"]) == ([1], [0.25])
    assert (got["torch"]["x"], got["torch"]["y"]) == ([2], [0.5])
    assert got["int"]["y"] == [3.0] and got["bool"]["y"] == [1.0]
    assert all(type(x) is int for line in got.values() for x in line["x"])


@pytest.mark.parametrize("value, message", [
    ("0.5", "value must be a number, got str"),
    (None, "value must be a number, got NoneType"),
    (torch.tensor([1.0, 2.0]), "value must be a number"),
    ([1.0], "value must be a number"),
])
def test_a_value_that_is_not_a_number_is_refused_naming_value(task, value, message):
    with pytest.raises(TypeError, match=message):
        task.get_logger().report_scalar("t", "s", value, 0)


@pytest.mark.parametrize("iteration", [1.0, True, "3", None, torch.tensor(1.5)])
def test_an_iteration_that_is_not_a_whole_number_is_refused_naming_iteration(task, iteration):
    with pytest.raises(TypeError, match="iteration must be an int.*iteration=int"):
        task.get_logger().report_scalar("t", "s", 1.0, iteration)


def test_bad_names_and_huge_iterations_are_refused_and_nothing_is_recorded(task):
    logger = task.get_logger()
    with pytest.raises(ValueError, match="title is 1001 characters long; at most 1000"):
        logger.report_scalar("x" * 1001, "s", 1.0, 0)
    with pytest.raises(ValueError, match="series is 5000 characters long"):
        logger.report_scalar("t", "y" * 5000, 1.0, 0)
    with pytest.raises(TypeError, match="title must be a str, got int"):
        logger.report_scalar(3, "s", 1.0, 0)
    with pytest.raises(ValueError, match="iteration 9223372036854775808 does not fit in 64 bits"):
        logger.report_scalar("t", "s", 1.0, 2 ** 63)
    with pytest.raises(ValueError, match="name is 1001 characters"):
        logger.report_single_value("n" * 1001, 1.0)
    logger.report_scalar("t" * 1000, "s" * 1000, 1.0, -2 ** 63)  # the limits themselves are fine
    assert list(task.get_reported_scalars()) == ["t" * 1000]


def test_reporting_to_a_task_not_running_here_says_so(task):
    task.get_logger().report_scalar("t", "s", 1.0, 0)
    task.close()
    with pytest.raises(TaskNotRunningError, match="Cannot report to it.*closed"):
        task.get_logger().report_scalar("t", "s", 2.0, 1)
    fetched = Task.get_task(task_id=task.id)
    with pytest.raises(TaskNotRunningError):
        fetched.get_logger().report_text("hello")
    assert fetched.get_reported_scalars()["t"]["s"]["y"] == [1.0]  # reading needs no running task


def test_single_values_the_last_report_of_a_name_wins(task):
    logger = task.get_logger()
    logger.report_single_value("accuracy", 0.5)
    logger.report_single_value(name="accuracy", value=0.75)
    logger.report_single_value("f1", np.float64(0.6))
    assert task.get_reported_single_values() == {"accuracy": 0.75, "f1": 0.6}
    assert task.get_reported_single_value("f1") == 0.6 and task.get_reported_single_value("nope") is None
    assert "Summary" not in task.get_reported_scalars()  # kept apart from the scalar plots


def test_x_axis_and_max_samples(task):
    logger = task.get_logger()
    before = time.time()
    for i in range(10):
        logger.report_scalar("m", "s", float(i), i)
    stamps = task.get_reported_scalars(x_axis="timestamp")["m"]["s"]["x"]
    assert all(int(before * 1000) - 1 <= t <= int(time.time() * 1000) + 1 for t in stamps)
    iso = task.get_reported_scalars(x_axis="iso_time")["m"]["s"]["x"][0]
    assert iso.endswith("Z") and iso[:4].isdigit() and "T" in iso
    sampled = task.get_reported_scalars(max_samples=5)["m"]["s"]
    assert sampled["x"] == [0, 2, 4, 6, 8] and sampled["y"] == [0.5, 2.5, 4.5, 6.5, 8.5]  # window means
    with pytest.raises(ValueError, match="x_axis must be one of iter, timestamp, iso_time"):
        task.get_reported_scalars(x_axis="epoch")


# -- text, tables, plots ----------------------------------------------------------------------
def test_report_text_prints_and_records(task, capsys):
    logger = task.get_logger()
    logger.report_text("epoch 1 done")
    logger.report_text("watch out", level=logging.WARNING)
    logger.report_text("quiet", logging.DEBUG, False)
    logger.report_text("named level", "error", True)
    out, err = capsys.readouterr()
    assert out == "epoch 1 done\n" and err == "watch out\nnamed level\n"
    assert task.get_reported_console_output(number_of_reports=3) == ["watch out", "quiet", "named level"]
    assert task.get_reported_console_output() == ["named level"]
    with pytest.raises(ValueError, match="level must be a logging level"):
        logger.report_text("x", level="LOUD")


def test_report_table_from_a_dataframe_a_list_and_a_csv(task, tmp_path):
    logger = task.get_logger()
    df = pd.DataFrame({"num_legs": [2, 4], "num_wings": [2.0, NAN]}, index=["falcon", "dog"])
    logger.report_table(title="table example", series="pandas DataFrame", iteration=0, table_plot=df)
    df.loc["falcon", "num_legs"] = 99  # changed after the call: what was reported stays
    logger.report_table("list", "rows", 1, table_plot=[["a", "b"], [1, INF], [2, -INF]])
    csv = tmp_path / "t.csv"
    csv.write_text("name,score\nx,1.5\ny,2.5\n")
    logger.report_table("csv", "file", 2, csv=str(csv), extra_layout={"height": 600})
    plots = {p["metric"]: p for p in task.get_reported_plots()}
    frame = json.loads(plots["table example"]["plot_str"])["data"][0]
    assert frame["type"] == "table" and frame["header"]["values"] == ["", "num_legs", "num_wings"]
    assert frame["cells"]["values"] == [["falcon", "dog"], [2, 4], [2.0, "NaN"]]  # NaN shown as ClearML does
    rows = json.loads(plots["list"]["plot_str"])["data"][0]
    assert rows["header"]["values"] == ["a", "b"] and rows["cells"]["values"] == [[1, 2], ["Inf", "-Inf"]]
    from_csv = json.loads(plots["csv"]["plot_str"])
    assert from_csv["data"][0]["cells"]["values"] == [["x", "y"], [1.5, 2.5]] and from_csv["layout"] == {"height": 600}
    assert [p["iter"] for p in task.get_reported_plots()] == [0, 1, 2]


def test_report_table_needs_exactly_one_source_and_is_bounded(task):
    logger = task.get_logger()
    with pytest.raises(ValueError, match="exactly one of table_plot=, csv= and url=, got none"):
        logger.report_table("t", "s", 0)
    with pytest.raises(ValueError, match="got table_plot, csv"):
        logger.report_table("t", "s", 0, table_plot=[["a"]], csv="x.csv")
    with pytest.raises(ValueError, match="table_plot has 400,400 values; a table report keeps at most 100,000.*"
                                         "upload_artifact"):
        logger.report_table("t", "s", 0, table_plot=pd.DataFrame(np.zeros((200_200, 1))))
    with pytest.raises(TypeError, match="table_plot must be a pandas DataFrame or a list of rows"):
        logger.report_table("t", "s", 0, table_plot={"a": 1})


def test_plots_are_stored_as_plotly_figures(task):
    logger = task.get_logger()
    logger.report_histogram("hist", "h", values=np.array([[1, 2, 3], [4, 5, 6]]), iteration=0, labels=["A", "B"],
                            xaxis="bucket", yaxis="count")
    logger.report_vector("vector", "v", values=[1.0, 2.0], iteration=1, xlabels=["a", "b"])
    logger.report_confusion_matrix("confusion", "c", np.eye(2), iteration=2, xlabels=["cat", "dog"],
                                   ylabels=["cat", "dog"], yaxis_reversed=True)
    logger.report_matrix("matrix", "m", [[1, 2], [3, NAN]], iteration=3)
    logger.report_scatter2d("scatter", "s2", scatter=[(0, 1), (1, 3)], iteration=4, xaxis="x", yaxis="y",
                            mode="markers", labels=["p", "q"])
    logger.report_scatter3d("scatter3", "s3", scatter=np.ones((3, 3)), iteration=5)
    logger.report_surface("surface", "sf", np.zeros((2, 3)), iteration=6, camera=(1, 1, 1))
    logger.report_line_plot("lines", [Logger.SeriesInfo(name="up", data=[[0, 0], [1, 1]]),
                                      {"name": "down", "data": np.array([[0, 1], [1, 0]])}],
                            xaxis="t", yaxis="v", iteration=7)
    logger.report_plotly("plotly", "p", figure={"data": [{"type": "scatter", "y": np.arange(3)}]}, iteration=8)
    import plotly.graph_objects as go

    logger.report_plotly("plotly", "figure", go.Figure(go.Bar(y=[1, 2])), 9)
    figures = {p["metric"] + "/" + p["variant"]: json.loads(p["plot_str"]) for p in task.get_reported_plots()}
    hist = figures["hist/h"]
    assert [t["y"] for t in hist["data"]] == [[1, 2, 3], [4, 5, 6]] and [t["name"] for t in hist["data"]] == ["A", "B"]
    assert hist["layout"]["xaxis"] == {"title": "bucket"} and hist["layout"]["barmode"] == "group"
    assert figures["vector/v"]["data"][0]["x"] == ["a", "b"]
    confusion = figures["confusion/c"]
    assert confusion["data"][0]["z"] == [[1.0, 0.0], [0.0, 1.0]] and confusion["layout"]["yaxis"]["autorange"] == "reversed"
    assert figures["matrix/m"]["data"][0]["z"] == [[1.0, 2.0], [3.0, None]]  # NaN is a gap, JSON null
    assert figures["scatter/s2"]["data"][0] == {"type": "scatter", "mode": "markers", "name": "s2",
                                                    "x": [0.0, 1.0], "y": [1.0, 3.0], "text": ["p", "q"]}
    assert figures["scatter3/s3"]["data"][0]["z"] == [1.0, 1.0, 1.0]
    assert figures["surface/sf"]["layout"]["scene"]["camera"] == {"eye": {"x": 1.0, "y": 1.0, "z": 1.0}}
    assert [t["name"] for t in figures["lines/up"]["data"]] == ["up", "down"]
    assert figures["plotly/p"]["data"][0]["y"] == [0, 1, 2]
    assert figures["plotly/figure"]["data"][0]["type"] == "bar"
    assert [p["iter"] for p in task.get_reported_plots(max_iterations=2)] == [8, 9]


def test_plot_arguments_are_checked(task):
    logger = task.get_logger()
    with pytest.raises(ValueError, match="labels has 1 names for 2 rows of values"):
        logger.report_histogram("h", "s", [[1, 2], [3, 4]], labels=["only one"])
    with pytest.raises(ValueError, match=r"scatter has shape \(2, 3\); give N x 2 points"):
        logger.report_scatter2d("s", "s", [[1, 2, 3], [4, 5, 6]])
    with pytest.raises(ValueError, match="scatter has 200,000 values; a plot report keeps at most 100,000"):
        logger.report_scatter2d("s", "s", np.zeros((100_000, 2)))
    with pytest.raises(TypeError, match="series\\[0\\] must be a Logger.SeriesInfo"):
        logger.report_line_plot("l", [3], "x", "y")
    with pytest.raises(TypeError, match="figure must be a plotly Figure or a dict"):
        logger.report_plotly("p", "s", figure=object())
    with pytest.raises(TypeError, match="extra_layout holds a object"):
        logger.report_confusion_matrix("c", "s", np.eye(2), extra_layout={"x": object()})


# -- images --------------------------------------------------------------------------------------
def test_images_are_uploaded_to_the_tasks_storage_as_png_or_as_the_file(task, tmp_path, autolog_home):
    logger = task.get_logger()
    red = np.zeros((4, 6, 3), dtype=np.uint8)
    red[..., 0] = 255
    logger.report_image("samples", "numpy", iteration=1, image=red)
    logger.report_image("samples", "pil", iteration=1, image=Image.new("L", (3, 2), color=7))
    with pytest.warns(DeprecationWarning, match="'matrix' is deprecated; use 'image'"):
        logger.report_image("samples", "matrix", iteration=1, matrix=np.full((2, 2), 0.5))
    photo = tmp_path / "photo.jpg"
    Image.new("RGB", (5, 5), color=(0, 0, 255)).save(photo)
    logger.report_image("samples", "file", iteration=2, local_path=str(photo))
    logger.report_image("samples", "link", iteration=3, url="https://example.com/cat.png")
    samples = {s: task.get_debug_samples("samples", s) for s in ("numpy", "pil", "matrix", "file", "link")}
    [numpy_image] = samples["numpy"]
    key = Path(numpy_image["url"]).relative_to(autolog_home / "storage")  # the layout of storage/layout.py
    assert key.parts[:5] == ("logger", f"train.{task.id}", "reports", "samples", "numpy")
    assert key.name.startswith("000001.") and key.suffix == ".png"
    assert np.array_equal(np.asarray(Image.open(numpy_image["url"])), red)
    assert np.asarray(Image.open(samples["pil"][0]["url"])).tolist() == [[7, 7, 7], [7, 7, 7]]
    assert np.asarray(Image.open(samples["matrix"][0]["url"])).tolist() == [[127, 127], [127, 127]]
    [file_image] = samples["file"]
    assert file_image["url"].endswith(".jpg") and Path(file_image["url"]).read_bytes() == photo.read_bytes()
    import hashlib

    assert file_image["sha256"] == hashlib.sha256(photo.read_bytes()).hexdigest() and photo.exists()
    assert samples["link"] == [{"metric": "samples", "variant": "link", "iter": 3, "url": "https://example.com/cat.png",
                                "timestamp": samples["link"][0]["timestamp"], "sha256": None}]


def test_max_image_history_keeps_the_newest_and_deletes_older_objects(task):
    logger = task.get_logger()
    for i in range(5):
        logger.report_image("frames", "f", iteration=i, image=np.full((2, 2), i, dtype=np.uint8), max_image_history=2)
        logger.flush()  # one image per round of the writer, as a training loop reports them
    kept = task.get_debug_samples("frames", "f")
    assert [s["iter"] for s in kept] == [4, 3]  # newest first, as ClearML returns them
    folder = Path(kept[0]["url"]).parent
    assert sorted(p.name for p in folder.iterdir()) == sorted(Path(s["url"]).name for s in kept)
    logger.set_default_debug_sample_history(-1)  # negative: keep all
    for i in range(5, 8):
        logger.report_image("frames", "g", iteration=i, image=np.zeros((2, 2), dtype=np.uint8))
    assert len(task.get_debug_samples("frames", "g")) == 3 and logger.get_default_debug_sample_history() == -1


def test_delete_after_upload_removes_the_file_once_stored_and_upload_destination(task, tmp_path):
    logger = task.get_logger()
    destination = tmp_path / "debug-samples"
    logger.set_default_upload_destination(str(destination))
    assert logger.get_default_upload_destination() == str(destination)
    path = tmp_path / "sample.png"
    Image.new("RGB", (2, 2)).save(path)
    data = path.read_bytes()
    logger.report_image("s", "file", 0, local_path=path, delete_after_upload=True)
    logger.flush()
    assert not path.exists()
    [sample] = task.get_debug_samples("s", "file")
    assert sample["url"].startswith(str(destination) + "/") and Path(sample["url"]).read_bytes() == data


def test_report_image_needs_exactly_one_source(task, tmp_path):
    logger = task.get_logger()
    with pytest.raises(ValueError, match="exactly one of local_path=, image=, matrix= and url=, got none"):
        logger.report_image("t", "s", 0)
    with pytest.raises(TypeError, match="image must be a numpy array or a PIL image, got list"):
        logger.report_image("t", "s", 0, image=[[1, 2]])
    with pytest.raises(ValueError, match=r"image has shape \(2, 2, 2\); an image is H x W"):
        logger.report_image("t", "s", 0, image=np.zeros((2, 2, 2)))
    with pytest.raises(FileNotFoundError):
        logger.report_image("t", "s", 0, local_path=str(tmp_path / "missing.png"))


def test_report_matplotlib_figure_is_stored_as_a_png(task):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 2), dpi=50)
    ax.plot([0, 1], [1, 0])
    task.get_logger().report_matplotlib_figure("mpl", "fig", fig, iteration=3)
    task.get_logger().report_matplotlib_figure(title="mpl", series="pyplot", figure=plt, iteration=4, report_image=True)
    plt.close("all")
    [image] = task.get_debug_samples("mpl", "fig")
    assert Image.open(image["url"]).size == (100, 100) and image["iter"] == 3
    assert len(task.get_debug_samples("mpl", "pyplot")) == 1


def test_flush_and_close_write_everything_in_order(task, autolog_home):
    logger = task.get_logger()
    for i in range(12_345):
        logger.report_scalar("many", "s", float(i), i)
    assert logger.flush() is True
    assert len(db_rows("scalars", autolog_home)) == 12_345  # written without reading through the task
    logger.report_text("last words")
    task.close()
    assert len(db_rows("reports", autolog_home)) == 1 and task.get_reported_console_output() == ["last words"]
    assert Task.get_task(task.id).get_reported_scalars()["many"]["s"]["y"] == [float(i) for i in range(12_345)]


def test_importing_logger_loads_no_database_or_array_library(run_py):
    proc = run_py("""
        import sys
        from autolog import Logger
        import autolog.task_reporting, autolog.report_writer
        print(sorted(m for m in ("sqlalchemy", "numpy", "pandas", "PIL", "matplotlib") if m in sys.modules))
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
