"""`autolog task scalars`, the scalars of `autolog task show`, and a guard on report_scalar's cost."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from autolog import Task
from autolog.cli import main

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def reported() -> str:
    task = Task.init(project_name="cli", task_name="scalars", auto_connect_frameworks=False)
    logger = task.get_logger()
    for i, v in enumerate([0.9, 0.5, float("nan"), 0.25]):
        logger.report_scalar("loss", "train", v, i)
    logger.report_scalar("loss", "val", float("inf"), 0)
    logger.report_scalar("loss", "val", 0.75, 1)
    logger.report_scalar("accuracy", "val", 0.8, 3)
    logger.report_single_value("test_accuracy", 0.7654321)
    task.close()
    return task.id


def cli(capsys, *args: str) -> str:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def test_task_scalars_lists_every_series_with_last_min_max(reported, capsys):
    out = cli(capsys, "task", "scalars", reported[:8])
    lines = out.splitlines()
    assert lines[0] == f"scalars of task {reported} (3 series)"
    assert lines[1].split() == ["title", "series", "values", "last", "iter", "last", "min", "max"]
    rows = [line.split() for line in lines[3:6]]
    assert rows == [["accuracy", "val", "1", "3", "0.8", "0.8", "0.8"],
                    ["loss", "train", "4", "3", "0.25", "0.25", "0.9"],  # NaN is left out of min and max
                    ["loss", "val", "2", "1", "0.75", "0.75", "inf"]]
    assert "single values (1)" in out and "test_accuracy  0.765432" in out


def test_task_scalars_json_has_every_value_and_null_for_nan_and_inf(reported, capsys):
    data = json.loads(cli(capsys, "task", "scalars", reported, "--json"))
    assert data["task"] == reported and data["single_values"] == {"test_accuracy": 0.7654321}
    by_name = {(s["title"], s["series"]): s for s in data["series"]}
    assert by_name[("loss", "train")] == {"title": "loss", "series": "train", "count": 4, "last_iteration": 3,
                                          "last": 0.25, "min": 0.25, "max": 0.9, "x": [0, 1, 2, 3],
                                          "y": [0.9, 0.5, None, 0.25]}
    assert by_name[("loss", "val")]["max"] is None and by_name[("loss", "val")]["y"] == [None, 0.75]


def test_task_show_has_a_scalars_section_after_the_models(reported, capsys):
    out = cli(capsys, "task", "show", reported)
    assert "scalars (3 series)" in out
    section = out[out.index("scalars (3 series)"):].splitlines()
    assert out.index("output models") < out.index("scalars (3 series)")
    assert section[1].split() == ["title", "series", "last", "iteration"]
    assert section[3].split() == ["accuracy", "val", "0.8", "3"]
    data = json.loads(cli(capsys, "task", "show", reported, "--json"))
    assert [(s["title"], s["series"], s["last"]) for s in data["scalars"]] == [
        ("accuracy", "val", 0.8), ("loss", "train", 0.25), ("loss", "val", 0.75)]


def test_a_task_without_scalars_says_none(capsys):
    task = Task.init(project_name="cli", task_name="quiet", auto_connect_frameworks=False)
    task.close()
    assert "scalars (0 series)" in cli(capsys, "task", "show", task.id)
    assert json.loads(cli(capsys, "task", "scalars", task.id, "--json"))["series"] == []


def test_task_show_summarizes_single_values_plots_debug_samples_console_and_labels(capsys):
    import numpy as np

    from autolog import OutputModel

    task = Task.init(project_name="cli", task_name="everything", auto_connect_frameworks=False)
    task.connect_label_enumeration({"cat": 1, "dog": 2})
    logger = task.get_logger()
    logger.report_single_value("test_accuracy", 0.7654321)
    for i in range(2):
        logger.report_histogram("hist", "h", [1, 2], iteration=i)
        logger.report_image("samples", "img", iteration=i, image=np.zeros((2, 2), dtype=np.uint8))
    logger.report_table("table", "t", 0, table_plot=[["a"], [1]])
    for i in range(7):
        logger.report_text(f"line {i}", print_console=False)
    OutputModel(task=task).report_single_value("model's own", 1.0)  # the model's: not the task's
    task.close()
    out = cli(capsys, "task", "show", task.id)
    assert "single values (1)\n  test_accuracy = 0.765432\n" in out
    plots = out[out.index("plots (3 in 2 title/series)"):].splitlines()
    assert plots[3].split() == ["hist", "h", "plot", "2"] and plots[4].split() == ["table", "t", "table", "1"]
    samples = out[out.index("debug samples (2 images, 0 media in 1 title/series)"):].splitlines()
    assert samples[3].split() == ["samples", "img", "2", "0"]
    console = out[out.index("console (7 lines; the last 5)"):].splitlines()
    assert console[1:6] == [f"  line {i}" for i in range(2, 7)]
    assert "labels    cat=1, dog=2" in out
    data = json.loads(cli(capsys, "task", "show", task.id, "--json"))
    assert data["single_values"] == {"test_accuracy": 0.7654321} and data["labels"] == {"cat": 1, "dog": 2}
    assert data["plots"] == [{"title": "hist", "series": "h", "kind": "plot", "count": 2},
                             {"title": "table", "series": "t", "kind": "table", "count": 1}]
    assert data["debug_samples"] == [{"title": "samples", "series": "img", "images": 2, "media": 0}]
    assert data["console"] == {"count": 7, "last": [f"line {i}" for i in range(2, 7)]}


def test_report_scalar_costs_microseconds_not_a_database_write(tmp_path):
    """A generous guard (the target, 2 µs, is checked by bench/bench_logger.py): a regression that makes
    each call reach the database (~100 µs or more) fails here even on a loaded machine."""
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "bench_logger.py"), "--calls", "20000",
                           "--rounds", "3", "--json"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["median_overhead_us"] < 20, result
    assert result["stored"] == 3 * 20000 + 1  # every call recorded
