"""A model's own reports: ClearML's model-level reporting (Model.report_scalar, report_table, ...).

    model = OutputModel(task=task)
    model.report_scalar("Reported Metrics", "Val - mAP@50", 72.7, 0)
    model.report_single_value("Total epochs", 8)
    model.get_reported_scalars()      # {"Reported Metrics": {"Val - mAP@50": {"x": [0], "y": [72.7]}}}

The calls are Logger's, with ClearML's Model signatures; what they record goes through the reporting
task's ReportWriter like the task's reports, with the model's id (db.reporting.Owner): the task's
own readers (task.get_reported_scalars()) do not see them, as ClearML shows a model's reports on the
model. Reporting needs a task running in this process (the task that records the report: an
OutputModel's own task while it runs, else the running one); reading needs none. ClearML's SDK has
no model-side readers; get_reported_scalars() and friends are Task's, on the model's rows.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from . import runtime
from .errors import TaskNotRunningError
from .logger import Logger, _now
from .report_writer import ReportWriter, drain_open_writers, writer_for
from .task_reporting import ReportReaders

if TYPE_CHECKING:
    from .context import Context


class ModelLogger(Logger):
    """Logger's checks and plot builders, writing rows of one model. Private: Model's methods use it."""

    def __init__(self, model: "ModelReporting"):
        super().__init__(task=None)  # type: ignore[arg-type] - no task of its own: the reporting run's
        self._model = model
        self._model_id = model.id

    def __repr__(self) -> str:
        return f"<reports of model {self._model_id[:8]}>"

    def _open(self) -> ReportWriter:
        writer = writer_for(self._model._reporting_run())
        self._buffer = writer
        return writer

    def report_scalar(self, title: str, series: str, value: float, iteration: int) -> None:
        """Through the work queue with the model's id: the task's fast path takes no model rows."""
        writer, title, series, value, iteration = self._checked_scalar(title, series, value, iteration)
        writer.work.append(("scalar", {"model_id": self._model_id, "title": title, "series": series,
                                       "iteration": iteration, "value": None if value != value else value,
                                       "time": _now()}))


class ModelReporting(ReportReaders):
    """Mixed into Model: ClearML's reporting calls on a model, and its reports read back."""

    id: str
    _ctx: "Context"

    # -- where reports go ----------------------------------------------------------------------
    def _reporting_run(self) -> "runtime.TaskRuntime":
        """The run that records this model's reports: its own task's, while that runs here (OutputModel),
        else the task running in this process."""
        own, live = getattr(self, "_run", None), runtime.live()
        # The live run of the model's own task first: in a forked child it is the child's run of that task
        # (the parent's run object, copied into the child, no longer writes).
        same_task = live if own is not None and live is not None and live.task_id == own.task_id else None
        run = next((r for r in (same_task, own, live) if r is not None and not r.closed), None)
        if run is None:
            raise TaskNotRunningError(
                f"Cannot report to model {self.id[:8]}: no task is running in this process, and a model's reports "
                "are recorded by the task that makes them. Call Task.init() first (reading them back needs none).")
        return run

    def _reports(self) -> ModelLogger:
        logger = getattr(self, "_model_logger", None)
        if logger is None:
            logger = self._model_logger = ModelLogger(self)
        return logger

    def _report_owner(self) -> Any:
        from .db.reporting import Owner

        return Owner(model_id=self.id)

    def _store_after_reports(self) -> Any:
        """The store, once every report this process still buffers is written (a model's reports may be
        in the writer of any task running here)."""
        drain_open_writers()
        return self._ctx.store

    # -- scalars -------------------------------------------------------------------------------
    def report_scalar(self, title: str, series: str, value: float, iteration: int) -> None:
        """Record value at iteration of the series `series` on the plot `title` of this model
        (Logger.report_scalar's rules; read back with get_reported_scalars())."""
        self._reports().report_scalar(title, series, value, iteration)

    def report_single_value(self, name: str, value: float) -> None:
        """Record one summary number of the model (e.g. its test accuracy); reporting a name again replaces it.
        ClearML stores it as the scalar "Summary"/name; here it reads back from get_reported_single_values()."""
        self._reports().report_single_value(name, value)

    # -- tables and plots (Logger's, with ClearML's Model signatures) ------------------------------
    def report_table(self, title: str, series: str, iteration: int | None = None, table_plot: Any = None,
                     csv: str | None = None, url: str | None = None, extra_layout: dict | None = None) -> None:
        """Record a table (Logger.report_table): a DataFrame or list of rows, a CSV file or a CSV's URL."""
        self._reports().report_table(title, series, iteration, table_plot, csv, url, extra_layout)

    def report_histogram(self, title: str, series: str, values: Any, iteration: int | None = None,
                         labels: Sequence[str] | None = None, xlabels: Sequence[str] | None = None,
                         xaxis: str | None = None, yaxis: str | None = None, mode: str | None = None,
                         data_args: dict | None = None, extra_layout: dict | None = None) -> None:
        """Record an already computed histogram (bars); each row of 2-D values is one trace."""
        self._reports().report_histogram(title, series, values, iteration, labels, xlabels, xaxis, yaxis, mode,
                                         data_args, extra_layout)

    def report_vector(self, title: str, series: str, values: Any, iteration: int | None = None,
                      labels: Sequence[str] | None = None, xlabels: Sequence[str] | None = None,
                      xaxis: str | None = None, yaxis: str | None = None, mode: str | None = None,
                      extra_layout: dict | None = None) -> None:
        """Record a vector as bars (report_histogram of it)."""
        self._reports().report_vector(title, series, values, iteration, labels, xlabels, xaxis, yaxis, mode,
                                      extra_layout)

    def report_line_plot(self, title: str, series: Sequence[Any], xaxis: str, yaxis: str, mode: str = "lines",
                         iteration: int | None = None, reverse_xaxis: bool = False, comment: str | None = None,
                         extra_layout: dict | None = None) -> None:
        """Record several lines on one plot: series is a list of SeriesInfo(name, data) (data N x 2)."""
        self._reports().report_line_plot(title, series, xaxis, yaxis, mode, iteration, reverse_xaxis, comment,
                                         extra_layout)

    def report_scatter2d(self, title: str, series: str, scatter: Any, iteration: int | None = None,
                         xaxis: str | None = None, yaxis: str | None = None, labels: Sequence[str] | None = None,
                         mode: str = "lines", comment: str | None = None, extra_layout: dict | None = None) -> None:
        """Record N x 2 points (x, y). ClearML's Model defaults mode to "line", which plotly does not know;
        here it is "lines", as Logger's."""
        self._reports().report_scatter2d(title, series, scatter, iteration, xaxis, yaxis, labels, mode, comment,
                                         extra_layout)

    def report_scatter3d(self, title: str, series: str, scatter: Any, iteration: int | None = None,
                         xaxis: str | None = None, yaxis: str | None = None, zaxis: str | None = None,
                         labels: Sequence[str] | None = None, mode: str = "markers", fill: bool = False,
                         comment: str | None = None, extra_layout: dict | None = None) -> None:
        """Record N x 3 points (x, y, z)."""
        self._reports().report_scatter3d(title, series, scatter, iteration, xaxis, yaxis, zaxis, labels, mode, fill,
                                         comment, extra_layout)

    def report_confusion_matrix(self, title: str, series: str, matrix: Any, iteration: int | None = None,
                                xaxis: str | None = None, yaxis: str | None = None,
                                xlabels: Sequence[str] | None = None, ylabels: Sequence[str] | None = None,
                                yaxis_reversed: bool = False, comment: str | None = None,
                                extra_layout: dict | None = None) -> None:
        """Record a matrix as a heat map."""
        self._reports().report_confusion_matrix(title, series, matrix, iteration, xaxis, yaxis, xlabels, ylabels,
                                                yaxis_reversed, comment, extra_layout)

    def report_matrix(self, title: str, series: str, matrix: Any, iteration: int | None = None,
                      xaxis: str | None = None, yaxis: str | None = None, xlabels: Sequence[str] | None = None,
                      ylabels: Sequence[str] | None = None, yaxis_reversed: bool = False,
                      extra_layout: dict | None = None) -> None:
        """The same as report_confusion_matrix."""
        self._reports().report_matrix(title, series, matrix, iteration, xaxis, yaxis, xlabels, ylabels,
                                      yaxis_reversed, extra_layout)

    def report_surface(self, title: str, series: str, matrix: Any, iteration: int | None = None,
                       xaxis: str | None = None, yaxis: str | None = None, zaxis: str | None = None,
                       xlabels: Sequence[str] | None = None, ylabels: Sequence[str] | None = None,
                       camera: Sequence[float] | None = None, comment: str | None = None,
                       extra_layout: dict | None = None) -> None:
        """Record a matrix as a 3-D surface."""
        self._reports().report_surface(title, series, matrix, iteration, xaxis, yaxis, zaxis, xlabels, ylabels,
                                       camera, comment, extra_layout)
