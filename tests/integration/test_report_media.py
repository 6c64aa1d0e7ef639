"""Logger.report_media, SeriesInfo at ClearML's module path, and histogram legends: the calls of ClearML's
examples/reporting (media_reporting.py, text_reporting.py, image_reporting.py) with only the import
changed, against a real SQLite store and real files."""
from __future__ import annotations

import hashlib
import io
import json
import logging
from pathlib import Path

import numpy as np
import pytest

from autolog import Logger, Task


@pytest.fixture
def task():
    task = Task.init(project_name="media", task_name="samples", auto_connect_frameworks=False)
    yield task
    task.close()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- report_media -----------------------------------------------------------------------------------
def test_a_local_media_file_is_read_at_the_call_and_uploaded_with_its_extension(task, tmp_path, autolog_home):
    sample = tmp_path / "data_samples" / "sample.mp3"
    sample.parent.mkdir()
    sample.write_bytes(b"ID3 not really an mp3")
    Logger.current_logger().report_media("audio", "tada", iteration=1, local_path=str(sample))  # as the example
    sample.write_bytes(b"the next sample, written to the same path")  # after the call: what was reported stays
    [media] = task.get_debug_samples("audio", "tada")
    key = Path(media["url"]).relative_to(autolog_home / "storage")  # where report_image's images go
    assert key.parts[:5] == ("media", f"samples.{task.id}", "reports", "audio", "tada")
    assert key.suffix == ".mp3" and Path(media["url"]).read_bytes() == b"ID3 not really an mp3"
    assert media["sha256"] == sha(b"ID3 not really an mp3") and media["iter"] == 1


def test_file_extension_names_the_stored_file_with_or_without_its_dot(task, tmp_path):
    picture = tmp_path / "picasso"  # no extension of its own
    picture.write_bytes(b"jpeg bytes")
    logger = task.get_logger()
    logger.report_media("image", "image with report media", iteration=0, local_path=str(picture), file_extension="jpg")
    logger.report_media("video", "clip", iteration=0, stream=io.BytesIO(b"\x00\x01mp4"), file_extension=".MP4")
    assert task.get_debug_samples("image", "image with report media")[0]["url"].endswith(".jpg")
    [clip] = task.get_debug_samples("video", "clip")
    assert clip["url"].endswith(".mp4") and Path(clip["url"]).read_bytes() == b"\x00\x01mp4"


def test_a_text_stream_is_stored_as_utf8_as_text_reporting_does(task):
    text = "Lorem ipsum dolor sit amet, consectétur ✓\n"
    task.get_logger().report_media(title="text title", series="text series", iteration=1, stream=io.StringIO(text),
                                   file_extension=".txt")
    [sample] = task.get_debug_samples("text title", "text series")
    assert Path(sample["url"]).read_bytes() == text.encode("utf-8") and sample["url"].endswith(".txt")


def test_a_url_is_recorded_not_fetched(task):
    url = "https://test-videos.co.uk/vids/bigbuckbunny/mp4/h264/720/Big_Buck_Bunny_720_10s_1MB.mp4"
    Logger.current_logger().report_media("video", "big bunny", iteration=1, url=url)
    [sample] = task.get_debug_samples("video", "big bunny")
    assert (sample["url"], sample["sha256"], sample["iter"]) == (url, None, 1)


def test_media_and_images_share_one_history_per_title_series_and_delete_after_upload(task, tmp_path):
    logger = task.get_logger()
    logger.report_image("samples", "s", iteration=0, image=np.zeros((2, 2), dtype=np.uint8), max_image_history=2)
    logger.flush()
    for i in (1, 2):
        path = tmp_path / f"sample{i}.wav"
        path.write_bytes(b"wav %d" % i)
        logger.report_media("samples", "s", iteration=i, local_path=path, max_history=2, delete_after_upload=True)
        logger.flush()  # one sample per round of the writer, as a training loop reports them
        assert not path.exists()
    kept = task.get_debug_samples("samples", "s")
    assert [s["iter"] for s in kept] == [2, 1]  # the image (iteration 0) is past the shared history of 2
    assert [Path(s["url"]).read_bytes() for s in kept] == [b"wav 2", b"wav 1"]
    assert sorted(p.name for p in Path(kept[0]["url"]).parent.iterdir()) == sorted(Path(s["url"]).name for s in kept)


def test_report_media_arguments_are_checked(task, tmp_path):
    logger = task.get_logger()
    with pytest.raises(ValueError, match="exactly one of local_path=, stream= and url=, got none"):
        logger.report_media("t", "s", 0)
    with pytest.raises(ValueError, match="got local_path, url"):
        logger.report_media("t", "s", 0, local_path="a.mp3", url="https://x/a.mp3")
    with pytest.raises(ValueError, match=r"stream=\.\.\.\) needs file_extension="):
        logger.report_media("t", "s", 0, stream=io.BytesIO(b"x"))
    with pytest.raises(TypeError, match="stream must have a read\\(\\) method"):
        logger.report_media("t", "s", 0, stream=b"raw bytes", file_extension="bin")
    with pytest.raises(TypeError, match="stream.read\\(\\) returned int"):
        logger.report_media("t", "s", 0, stream=type("S", (), {"read": lambda self: 3})(), file_extension="bin")
    with pytest.raises(FileNotFoundError):
        logger.report_media("t", "s", 0, local_path=str(tmp_path / "missing.mp3"))
    assert task.get_debug_samples("t", "s") == []


def test_task_show_counts_media_apart_from_images(task, capsys):
    from autolog.cli import main

    task.get_logger().report_image("samples", "s", 0, image=np.zeros((2, 2), dtype=np.uint8))
    task.get_logger().report_media("samples", "s", 1, stream=io.BytesIO(b"x"), file_extension="bin")
    task.close()
    assert main(["task", "show", task.id, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["debug_samples"] == [{"title": "samples", "series": "s", "images": 1, "media": 1}]


# -- SeriesInfo and histogram legends ------------------------------------------------------------
def test_series_info_imports_from_clearmls_module_path_and_is_loggers():
    from autolog.utilities.plotly_reporter import SeriesInfo

    assert SeriesInfo is Logger.SeriesInfo
    info = SeriesInfo(name="Validation", data=np.array([[0, 0.3], [1, 0.55]]))
    assert (info.name, info.labels) == ("Validation", None)


def test_a_line_plot_of_series_info_from_the_clearml_path(task):
    from autolog.utilities.plotly_reporter import SeriesInfo

    task.get_logger().report_line_plot("Accuracy", [SeriesInfo(name="Validation", data=[[0, 0.3], [1, 0.55]])],
                                       xaxis="Iteration", yaxis="Validation Accuracy")
    [plot] = task.get_reported_plots()
    trace = json.loads(plot["plot_str"])["data"][0]
    assert (trace["name"], trace["x"], trace["y"]) == ("Validation", [0.0, 1.0], [0.3, 0.55])


def test_histogram_traces_without_labels_are_named_after_the_series(task, caplog):
    logger = task.get_logger()
    logger.report_histogram("histogram example", "histogram series", values=np.arange(10).reshape(2, 5), iteration=0)
    logger.report_histogram("histogram example", "labelled", values=[[1, 2], [3, 4]], iteration=0, labels=["A", "B"])
    logger.report_vector("vector example", "vector series", values=[1.0, 2.0], iteration=0)
    figures = {p["variant"]: json.loads(p["plot_str"]) for p in task.get_reported_plots()}
    assert [t["name"] for t in figures["histogram series"]["data"]] == ["histogram series"] * 2  # legend not empty
    assert [t["name"] for t in figures["labelled"]["data"]] == ["A", "B"]
    assert [t["name"] for t in figures["vector series"]["data"]] == ["vector series"]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
