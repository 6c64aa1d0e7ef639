"""Logger: ClearML's explicit reporting (scalars, single values, text, tables, plots, images, media).

    logger = task.get_logger()          # or Logger.current_logger()
    for step in range(steps):
        logger.report_scalar("loss", "train", value=loss, iteration=step)

A report call checks its arguments (errors name the argument and the fix), copies what it reports
(tables, plots and images are converted before it returns) and hands it to the run's ReportWriter
(report_writer.py), which writes it in the background; `report_scalar` costs about a microsecond.
Everything reported is written at `flush()`, at `task.close()` and at exit, after an unhandled
exception or SIGTERM included. Read it back with `task.get_reported_scalars()` and friends, or
`autolog task scalars TASK_ID`.
"""
from __future__ import annotations

import logging
import os
import sys
import time
import warnings
from typing import TYPE_CHECKING, Any, Sequence

from . import report_plots as plots
from . import runtime
from .report_values import (
    as_iteration, as_optional_iteration, as_value, check_name, image_png, jsonable, table_body,
)
from .report_writer import ImageJob, ReportWriter, file_identity, writer_for

if TYPE_CHECKING:
    from .storage import BlobStore
    from .task import Task

_now = time.time
DEFAULT_IMAGE_HISTORY = 100  # images kept per title/series unless max_image_history says otherwise


class Logger:
    """The reporting interface of a task. Do not construct it: use `task.get_logger()` or
    `Logger.current_logger()`."""

    SeriesInfo = plots.SeriesInfo
    _model_id: str | None = None  # a model's reports (model_reporting.ModelLogger) carry its id

    def __init__(self, task: "Task"):
        self._task = task
        self._buffer: ReportWriter | None = None
        self._upload_store: "BlobStore | None" = None
        self._image_history: int | None = None

    @classmethod
    def current_logger(cls) -> "Logger | None":
        """The logger of the task this process is running; None when there is none (as in ClearML)."""
        from .task import Task

        task = Task.current_task()
        return task.get_logger() if task is not None else None

    def __repr__(self) -> str:
        return f"<Logger of task {self._task.id[:8]}>"

    # -- where reports go ----------------------------------------------------------------------
    def _open(self) -> ReportWriter:
        """The writer of the run this task is in this process: its own, or, in a forked child, the child's
        run of the same task. A task this process is not running raises TaskNotRunningError."""
        run = runtime.live()
        if run is None or run.task_id != self._task.id or run.closed:
            run = self._task._writer("report to it")
        writer = writer_for(run)
        self._buffer = writer
        return writer

    # -- scalars -------------------------------------------------------------------------------
    def report_scalar(self, title: str, series: str, value: float, iteration: int) -> None:
        """Record value at iteration of the series `series` on the plot `title`.

        value: a number (int, float, numpy scalar, one-element tensor; NaN and inf are kept). iteration:
        a whole number. title and series: at most 1,000 characters. A value reported again for the same
        iteration replaces the earlier one when read back.
        """
        # One condition of exact-type checks and literal bounds (no global lookups): this is the whole
        # cost of a report in the common case. Anything else takes the full checks (_checked_scalar).
        writer = self._buffer
        if writer is None or writer.closed or type(title) is not str or type(series) is not str \
                or type(iteration) is not int or type(value) is not float or len(title) > 1000 \
                or len(series) > 1000 or not -9223372036854775808 <= iteration <= 9223372036854775807:
            writer, title, series, value, iteration = self._checked_scalar(title, series, value, iteration)
        writer.scalars.append((title, series, iteration, value, _now()))

    def _checked_scalar(self, title: Any, series: Any, value: Any, iteration: Any) -> tuple:
        writer = self._ready_writer()
        return (writer, check_name(title, "title"), check_name(series, "series"), as_value(value),
                as_iteration(iteration))

    def report_single_value(self, name: str, value: float) -> None:
        """Record one summary number of the run (e.g. the test accuracy); reporting a name again replaces it."""
        name, value = check_name(name, "name"), as_value(value)
        self._queue("single", {"name": name, "value": None if value != value else value, "time": _now()})

    # -- text, tables, plots -----------------------------------------------------------------------
    def report_text(self, msg: str, level: int = logging.INFO, print_console: bool = True, *args: Any, **_: Any) -> None:
        """Record a line of text (shown by task.get_reported_console_output()); print it too unless
        print_console=False. level: a logging level (logging.INFO) or its name ("WARNING")."""
        number, level_name = _level(level)
        text = str(msg)
        if print_console:
            (sys.stderr if number >= logging.WARNING else sys.stdout).write(text + "\n")
        self._report("text", "", "", None, {"text": text, "level": level_name})

    def report_table(self, title: str, series: str, iteration: int | None = None, table_plot: Any = None,
                     csv: str | None = None, url: str | None = None, extra_layout: dict | None = None,
                     extra_data: dict | None = None) -> None:
        """Record a table: a pandas DataFrame or a list of rows (the first row is the header) as
        table_plot=, or a CSV file (csv=) or URL (url=). Kept: the columns and up to 100,000 cells; NaN and
        inf cells read back as "NaN", "Inf" and "-Inf", as ClearML shows them."""
        body = table_body(table_plot, csv, url)
        if url is not None or csv is not None:
            body["source"] = str(url if url is not None else os.fspath(csv))  # type: ignore[arg-type]
        body["extra_layout"] = jsonable(extra_layout or {}, "extra_layout")
        body["extra_data"] = jsonable(extra_data or {}, "extra_data")
        self._report("table", title, series, iteration, body)

    def report_histogram(self, title: str, series: str, values: Any, iteration: int | None = None,
                         labels: Sequence[str] | None = None, xlabels: Sequence[str] | None = None,
                         xaxis: str | None = None, yaxis: str | None = None, mode: str | None = None,
                         data_args: dict | None = None, extra_layout: dict | None = None) -> None:
        """Record an already computed histogram (bars); each row of 2-D values is one trace."""
        self._report("plot", title, series, iteration, plots.histogram(
            values, labels, xlabels, xaxis, yaxis, mode, data_args, extra_layout, series=series))

    def report_vector(self, title: str, series: str, values: Any, iteration: int | None = None,
                      labels: Sequence[str] | None = None, xlabels: Sequence[str] | None = None,
                      xaxis: str | None = None, yaxis: str | None = None, mode: str | None = None,
                      extra_layout: dict | None = None) -> None:
        """Record a vector as bars (report_histogram of it)."""
        self.report_histogram(title, series, values, iteration, labels, xlabels, xaxis, yaxis, mode,
                              extra_layout=extra_layout)

    def report_confusion_matrix(self, title: str, series: str, matrix: Any, iteration: int | None = None,
                                xaxis: str | None = None, yaxis: str | None = None,
                                xlabels: Sequence[str] | None = None, ylabels: Sequence[str] | None = None,
                                yaxis_reversed: bool = False, comment: str | None = None,
                                extra_layout: dict | None = None) -> None:
        """Record a matrix as a heat map."""
        self._report("plot", title, series, iteration,
                     plots.heatmap(matrix, xaxis, yaxis, xlabels, ylabels, yaxis_reversed, comment, extra_layout))

    def report_matrix(self, title: str, series: str, matrix: Any, iteration: int | None = None,
                      xaxis: str | None = None, yaxis: str | None = None, xlabels: Sequence[str] | None = None,
                      ylabels: Sequence[str] | None = None, yaxis_reversed: bool = False,
                      extra_layout: dict | None = None) -> None:
        """The same as report_confusion_matrix."""
        self.report_confusion_matrix(title, series, matrix, iteration, xaxis, yaxis, xlabels, ylabels,
                                     yaxis_reversed, extra_layout=extra_layout)

    def report_surface(self, title: str, series: str, matrix: Any, iteration: int | None = None,
                       xaxis: str | None = None, yaxis: str | None = None, zaxis: str | None = None,
                       xlabels: Sequence[str] | None = None, ylabels: Sequence[str] | None = None,
                       camera: Sequence[float] | None = None, comment: str | None = None,
                       extra_layout: dict | None = None) -> None:
        """Record a matrix as a 3-D surface."""
        self._report("plot", title, series, iteration, plots.surface(
            matrix, xaxis, yaxis, zaxis, xlabels, ylabels, camera, comment, extra_layout))

    def report_scatter2d(self, title: str, series: str, scatter: Any, iteration: int | None = None,
                         xaxis: str | None = None, yaxis: str | None = None, labels: Sequence[str] | None = None,
                         mode: str = "lines", comment: str | None = None, extra_layout: dict | None = None) -> None:
        """Record N x 2 points (x, y)."""
        self._report("plot", title, series, iteration, plots.scatter(
            series, scatter, 2, labels, mode, xaxis, yaxis, comment=comment, extra_layout=extra_layout))

    def report_scatter3d(self, title: str, series: str, scatter: Any, iteration: int | None = None,
                         xaxis: str | None = None, yaxis: str | None = None, zaxis: str | None = None,
                         labels: Sequence[str] | None = None, mode: str = "markers", fill: bool = False,
                         comment: str | None = None, extra_layout: dict | None = None) -> None:
        """Record N x 3 points (x, y, z)."""
        self._report("plot", title, series, iteration, plots.scatter(
            series, scatter, 3, labels, mode, xaxis, yaxis, zaxis or "", fill, comment, extra_layout))

    def report_line_plot(self, title: str, series: Sequence[Any], xaxis: str, yaxis: str, mode: str = "lines",
                         iteration: int | None = None, reverse_xaxis: bool = False, comment: str | None = None,
                         extra_layout: dict | None = None) -> None:
        """Record several lines on one plot: series is a list of Logger.SeriesInfo(name, data) (data N x 2)."""
        body = plots.line_plot(series, xaxis, yaxis, mode, reverse_xaxis, comment, extra_layout)
        self._report("plot", title, body["data"][0]["name"] if body["data"] else "", iteration, body)

    def report_plotly(self, title: str, series: str, figure: Any, iteration: int | None = None) -> None:
        """Record a plotly Figure, or a dict as plotly.js takes it."""
        self._report("plot", title, series, iteration, plots.plotly_figure(figure))

    def report_matplotlib_figure(self, title: str, series: str, figure: Any, iteration: int | None = None,
                                 report_image: bool = False, report_interactive: bool = True) -> None:
        """Record a matplotlib figure (or pyplot's current one). It is stored as a PNG image whatever
        report_image and report_interactive say (autolog does not convert figures to plotly)."""
        data = plots.matplotlib_png(figure)
        self._image(title, series, iteration, data, ".png", {"format": "png", "source": "matplotlib"})

    # -- images --------------------------------------------------------------------------------
    def report_image(self, title: str, series: str, iteration: int | None = None, local_path: str | None = None,
                     image: Any = None, matrix: Any = None, max_image_history: int | None = None,
                     delete_after_upload: bool = False, url: str | None = None) -> None:
        """Record an image: a file (local_path=, uploaded as is), a PIL image or a numpy array (image=,
        or the deprecated matrix=; uploaded as PNG), or an image already stored elsewhere (url=, recorded
        only). It is uploaded to the task's output_uri (else the default storage), or to
        set_default_upload_destination(). max_image_history: images kept per title/series (default 100;
        negative: all). delete_after_upload: delete local_path once it is uploaded."""
        given = [n for n, v in (("local_path", local_path), ("image", image), ("matrix", matrix), ("url", url))
                 if v is not None]
        if len(given) != 1:
            raise ValueError(f"report_image needs exactly one of local_path=, image=, matrix= and url=, got "
                             f"{', '.join(given) or 'none'}.")
        if matrix is not None:
            warnings.warn("report_image: 'matrix' is deprecated; use 'image' instead.", DeprecationWarning, stacklevel=2)
        if url is not None:
            self._image(title, series, iteration, None, "", {"source": "url"}, url=str(url))
        elif local_path is not None:
            path = os.fspath(local_path)
            with open(path, "rb") as f:  # read now: the caller may write the next image to the same path
                data = f.read()
            delete = (path, file_identity(path)) if delete_after_upload else None
            self._image(title, series, iteration, data, os.path.splitext(path)[1].lower() or ".png",
                        {"source": "file", "path": path}, delete=delete, history=max_image_history)
        else:
            data, info = image_png(image if image is not None else matrix, given[0])
            self._image(title, series, iteration, data, ".png", dict(info, format="png", source=given[0]),
                        history=max_image_history)

    def report_media(self, title: str, series: str, iteration: int | None = None, local_path: str | None = None,
                     stream: Any = None, file_extension: str | None = None, max_history: int | None = None,
                     delete_after_upload: bool = False, url: str | None = None) -> None:
        """Record a media file (audio, video, HTML, text, an image, ...) as a debug sample, read back with
        task.get_debug_samples(): a file (local_path=, read now and uploaded as is), a stream (stream=:
        anything with .read() giving bytes, or text, stored as UTF-8; file_extension= is then required),
        or a file already stored elsewhere (url=, recorded only). file_extension ("mp4" or ".mp4") names
        the stored file's extension; for local_path it defaults to the path's. It is uploaded where
        report_image uploads; max_history and delete_after_upload as report_image's max_image_history and
        delete_after_upload (images and media of one title/series share one history, as in ClearML)."""
        given = [n for n, v in (("local_path", local_path), ("stream", stream), ("url", url)) if v is not None]
        if len(given) != 1:
            raise ValueError(f"report_media needs exactly one of local_path=, stream= and url=, got "
                             f"{', '.join(given) or 'none'}.")
        extension = _extension(file_extension)
        if url is not None:
            self._image(title, series, iteration, None, "", {"source": "url"}, url=str(url), kind="media")
        elif local_path is not None:
            path = os.fspath(local_path)
            with open(path, "rb") as f:  # read now: the caller may write the next sample to the same path
                data = f.read()
            delete = (path, file_identity(path)) if delete_after_upload else None
            self._image(title, series, iteration, data, extension or os.path.splitext(path)[1].lower(),
                        {"source": "file", "path": path}, delete=delete, history=max_history, kind="media")
        else:
            if not extension:
                raise ValueError("report_media(stream=...) needs file_extension= (e.g. 'txt', '.mp4'): a stream "
                                 "has no name to take it from.")
            self._image(title, series, iteration, _stream_bytes(stream), extension, {"source": "stream"},
                        history=max_history, kind="media")

    def _image(self, title: str, series: str, iteration: Any, data: bytes | None, extension: str, body: dict,
               url: str | None = None, delete: tuple | None = None, history: int | None = None,
               kind: str = "image") -> None:
        writer = self._ready_writer()
        keep = as_iteration(history, "max_image_history") if history is not None else \
            self.get_default_debug_sample_history()
        store = (self._upload_store or writer.run.artifact_store) if data is not None else None
        job = ImageJob(check_name(title, "title"), check_name(series, "series"), as_optional_iteration(iteration) or 0,
                       data, extension, body, keep, store, _now(), url=url, delete_after=delete, kind=kind)
        writer.work.append(("image", job))

    def set_default_upload_destination(self, uri: str) -> None:
        """Upload images to uri (a folder or any fsspec URL) instead of the task's output_uri."""
        from .storage import BlobStore

        store = BlobStore(os.fspath(uri))
        store.check_writable()
        self._upload_store = store

    def get_default_upload_destination(self) -> str:
        """Where images are uploaded."""
        if self._upload_store is not None:
            return self._upload_store.root
        return self._ready_writer().run.artifact_store.root

    def set_default_debug_sample_history(self, max_history: int) -> None:
        """How many images report_image keeps per title/series when max_image_history is not given."""
        self._image_history = as_iteration(max_history, "max_history")

    def get_default_debug_sample_history(self) -> int:
        return self._image_history if self._image_history is not None else DEFAULT_IMAGE_HISTORY

    # -- writing out -----------------------------------------------------------------------------
    def flush(self, wait: bool = False) -> bool:
        """Write everything reported so far to the database now. Returns True."""
        writer = self._ready_writer()
        writer.drain()
        return True

    def get_flush_period(self) -> float | None:
        """Seconds between the background writer's rounds."""
        from .report_writer import PERIOD

        return PERIOD

    def set_flush_period(self, period: float) -> None:
        """Accepted for ClearML compatibility and ignored (deprecated there too): reports are written every
        second and at flush/close."""

    def _ready_writer(self) -> ReportWriter:
        writer = self._buffer
        return writer if writer is not None and not writer.closed else self._open()

    def _queue(self, kind: str, row: dict) -> None:
        self._ready_writer().work.append((kind, dict(row, model_id=self._model_id)))

    def _report(self, kind: str, title: str, series: str, iteration: Any, body: dict) -> None:
        writer = self._ready_writer()
        row = {"kind": kind, "title": check_name(title, "title"), "series": check_name(series, "series"),
               "iteration": None if kind == "text" else (as_optional_iteration(iteration) or 0),
               "body": body, "uri": None, "sha256": None, "time": _now(), "model_id": self._model_id}
        writer.work.append(("report", row))


def _extension(file_extension: Any) -> str:
    """".ext" from "ext" or ".ext" (None or "": "")."""
    if file_extension is None or file_extension == "":
        return ""
    if not isinstance(file_extension, str) or "/" in file_extension or os.sep in file_extension:
        raise ValueError(f"file_extension must be an extension such as 'mp4' or '.mp4', got {file_extension!r}.")
    return "." + file_extension.lstrip(".").lower()


def _stream_bytes(stream: Any) -> bytes:
    """What stream.read() gives, as bytes (text is stored as UTF-8), read now: the caller may reuse it."""
    read = getattr(stream, "read", None)
    if not callable(read):
        raise TypeError(f"stream must have a read() method (io.BytesIO, io.StringIO, an open file), got "
                        f"{type(stream).__name__}. Pass a file as local_path= instead.")
    data = read()
    if isinstance(data, str):
        return data.encode("utf-8")
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"stream.read() returned {type(data).__name__}; report_media takes bytes or str.")


def _level(level: Any) -> tuple[int, str]:
    """A logging level as (number, name), from either."""
    if isinstance(level, str) and isinstance(logging.getLevelName(level.upper()), int):
        return logging.getLevelName(level.upper()), level.upper()
    if isinstance(level, int) and not isinstance(level, bool):
        return level, logging.getLevelName(level)
    raise ValueError(f"level must be a logging level such as logging.INFO or 'WARNING', got {level!r}.")
