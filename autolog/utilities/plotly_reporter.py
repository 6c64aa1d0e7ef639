"""`from clearml.utilities.plotly_reporter import SeriesInfo`, as `from autolog.utilities.plotly_reporter
import SeriesInfo`: the same class as Logger.SeriesInfo (report_plots.SeriesInfo), so either spelling
works with Logger.report_line_plot and Model.report_line_plot."""
from __future__ import annotations

from ..report_plots import SeriesInfo

__all__ = ["SeriesInfo"]
