"""Plot reports as plotly figures ({"data": [traces], "layout": {...}}), the format ClearML stores.

Each builder takes Logger's arguments (already named as ClearML names them) and returns the JSON
body of one "plot" report. Numbers are copied out of the caller's arrays before the call returns; a
NaN or infinite number becomes null (a gap, to plotly); at most MAX_CELLS numbers per plot.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from .report_values import check_size, count_cells, jsonable


@dataclass
class SeriesInfo:
    """One line of report_line_plot: a name and N x 2 data (x, y), with optional per-point labels."""
    name: str
    data: Any
    labels: Sequence[str] | None = None


def _matrix(values: Any, argument: str, dims: int) -> list:
    """values as a nested list of `dims` dimensions (a 1-D list becomes one row when dims is 2)."""
    import numpy as np

    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{argument} must hold numbers only: {exc}. Pass a numpy array or nested lists of "
                        "numbers.") from None
    if dims == 2 and array.ndim == 1:
        array = array[np.newaxis, :]
    if array.ndim != dims:
        raise ValueError(f"{argument} has shape {array.shape}; this report takes {dims}-D data.")
    check_size(array.size, argument, "plot")
    return jsonable(array.tolist(), argument)


def _points(scatter: Any, argument: str, width: int) -> list:
    """N x width points (pairs or triples) as a nested list."""
    import numpy as np

    points = _matrix(scatter, argument, 2)
    if points and len(points[0]) != width:
        raise ValueError(f"{argument} has shape {np.shape(points)}; give N x {width} points.")
    return points


def _layout(xaxis: str | None = None, yaxis: str | None = None, zaxis: str | None = None,
            comment: str | None = None, extra_layout: dict | None = None) -> dict[str, Any]:
    layout: dict[str, Any] = {}
    if zaxis is not None:
        layout["scene"] = {"xaxis": {"title": xaxis}, "yaxis": {"title": yaxis}, "zaxis": {"title": zaxis}}
    else:
        for key, title in (("xaxis", xaxis), ("yaxis", yaxis)):
            if title is not None:
                layout[key] = {"title": title}
    if comment is not None:
        layout["comment"] = str(comment)
    layout.update(jsonable(extra_layout or {}, "extra_layout"))
    return layout


def _labels(labels: Any, argument: str) -> list | None:
    return None if labels is None else [str(v) for v in labels]


def histogram(values: Any, labels: Any = None, xlabels: Any = None, xaxis: str | None = None,
              yaxis: str | None = None, mode: str | None = None, data_args: dict | None = None,
              extra_layout: dict | None = None, series: str = "") -> dict[str, Any]:
    """Bars of an already computed histogram: each row of a 2-D `values` is one trace, named after its
    label, or after the series without labels (as ClearML names them: a legend is never empty)."""
    rows = _matrix(values, "values", 2)
    names = _labels(labels, "labels")
    if names is not None and len(names) != len(rows):
        raise ValueError(f"labels has {len(names)} names for {len(rows)} rows of values: give one per row.")
    x = _labels(xlabels, "xlabels") or None
    extra = jsonable(data_args or {}, "data_args")
    data = [dict({"type": "bar", "y": row, "x": x or list(range(len(row))), "name": names[i] if names else series},
                 **extra) for i, row in enumerate(rows)]
    layout = _layout(xaxis, yaxis, extra_layout=extra_layout)
    layout.setdefault("barmode", mode or "group")
    return {"data": data, "layout": layout}


def heatmap(matrix: Any, xaxis: str | None = None, yaxis: str | None = None, xlabels: Any = None,
            ylabels: Any = None, yaxis_reversed: bool = False, comment: str | None = None,
            extra_layout: dict | None = None) -> dict[str, Any]:
    """A confusion matrix (or any matrix) as a heat map."""
    z = _matrix(matrix, "matrix", 2)
    trace: dict[str, Any] = {"type": "heatmap", "z": z}
    if xlabels is not None:
        trace["x"] = _labels(xlabels, "xlabels")
    if ylabels is not None:
        trace["y"] = _labels(ylabels, "ylabels")
    layout = _layout(xaxis, yaxis, comment=comment, extra_layout=extra_layout)
    if yaxis_reversed:
        layout.setdefault("yaxis", {})["autorange"] = "reversed"
    return {"data": [trace], "layout": layout}


def surface(matrix: Any, xaxis: str | None = None, yaxis: str | None = None, zaxis: str | None = None,
            xlabels: Any = None, ylabels: Any = None, camera: Sequence[float] | None = None,
            comment: str | None = None, extra_layout: dict | None = None) -> dict[str, Any]:
    trace: dict[str, Any] = {"type": "surface", "z": _matrix(matrix, "matrix", 2)}
    if xlabels is not None:
        trace["x"] = _labels(xlabels, "xlabels")
    if ylabels is not None:
        trace["y"] = _labels(ylabels, "ylabels")
    layout = _layout(xaxis, yaxis, zaxis or "", comment, extra_layout)
    if camera is not None:
        x, y, z = (float(v) for v in camera)
        layout["scene"]["camera"] = {"eye": {"x": x, "y": y, "z": z}}
    return {"data": [trace], "layout": layout}


def scatter(series: str, points: Any, width: int, labels: Any = None, mode: str = "lines",
            xaxis: str | None = None, yaxis: str | None = None, zaxis: str | None = None,
            fill: bool = False, comment: str | None = None, extra_layout: dict | None = None) -> dict[str, Any]:
    """A 2-D (width 2) or 3-D (width 3) scatter of N points."""
    rows = _points(points, "scatter", width)
    trace: dict[str, Any] = {"type": "scatter" if width == 2 else "scatter3d", "mode": mode, "name": series}
    for axis, column in zip("xyz", range(width)):
        trace[axis] = [row[column] for row in rows]
    if labels is not None:
        trace["text"] = _labels(labels, "labels")
    if fill:
        trace["surfaceaxis"] = 2
    return {"data": [trace], "layout": _layout(xaxis, yaxis, zaxis, comment, extra_layout)}


def line_plot(series: Sequence[Any], xaxis: str | None, yaxis: str | None, mode: str = "lines",
              reverse_xaxis: bool = False, comment: str | None = None,
              extra_layout: dict | None = None) -> dict[str, Any]:
    """Several lines on one plot: each a SeriesInfo (or a dict of its fields)."""
    data = []
    for i, info in enumerate(series):
        info = SeriesInfo(**info) if isinstance(info, dict) else info
        if not isinstance(info, SeriesInfo) and not hasattr(info, "data"):
            raise TypeError(f"series[{i}] must be a Logger.SeriesInfo(name=..., data=...) or a dict of those "
                            f"fields, got {type(info).__name__}.")
        rows = _points(info.data, f"series[{i}].data", 2)
        trace = {"type": "scatter", "mode": mode, "name": str(info.name),
                 "x": [r[0] for r in rows], "y": [r[1] for r in rows]}
        if getattr(info, "labels", None) is not None:
            trace["text"] = _labels(info.labels, f"series[{i}].labels")
        data.append(trace)
    layout = _layout(xaxis, yaxis, comment=comment, extra_layout=extra_layout)
    if reverse_xaxis:
        layout.setdefault("xaxis", {})["autorange"] = "reversed"
    check_size(count_cells(data), "series", "plot")
    return {"data": data, "layout": layout}


def plotly_figure(figure: Any) -> dict[str, Any]:
    """A plotly Figure or a plotly.js dict, stored as given (numbers made JSON)."""
    if not isinstance(figure, dict):
        if not hasattr(figure, "to_plotly_json"):
            raise TypeError(f"figure must be a plotly Figure or a dict as plotly.js takes it, got "
                            f"{type(figure).__name__}.")
        figure = figure.to_plotly_json()
    body = jsonable(figure, "figure")
    check_size(count_cells(body), "figure", "plot")
    return body


def matplotlib_png(figure: Any) -> bytes:
    """A matplotlib Figure (or the pyplot module: its current figure) as PNG bytes."""
    import io

    if hasattr(figure, "gcf"):
        figure = figure.gcf()
    if not hasattr(figure, "savefig"):
        raise TypeError(f"figure must be a matplotlib Figure or matplotlib.pyplot, got {type(figure).__name__}.")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
