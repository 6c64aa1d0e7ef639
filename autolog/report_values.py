"""What Logger accepts, checked in the caller's thread, with errors that name the argument.

Logger's fast path checks only exact types (`type(x) is str`); anything else comes here, where the
full rules live: names are text of at most MAX_NAME characters, a value is anything float() takes
but text, an iteration is a whole number (numpy's included) that fits 64 bits. Tables, plots and
images are turned into what is stored (JSON-able rows, PNG bytes) before the call returns, so that a
caller changing its DataFrame or array afterwards changes nothing recorded.
"""
from __future__ import annotations

import csv as _csv
import io
import math
import numbers
import operator
import os
from typing import Any

MAX_NAME = 1000  # characters of a title, series or single value name
MAX_CELLS = 100_000  # numbers or cells in one table or plot report: rows of the database, not files
I64 = 2 ** 63 - 1


# -- scalars ---------------------------------------------------------------------------------------
def check_name(value: Any, argument: str) -> str:
    """A title, series or name: text of at most MAX_NAME characters."""
    if not isinstance(value, str):
        raise TypeError(f"{argument} must be a str, got {type(value).__name__} {value!r:.80}. "
                        f"Pass {argument}=str(...).")
    if len(value) > MAX_NAME:
        raise ValueError(f"{argument} is {len(value)} characters long; at most {MAX_NAME} are stored. "
                         f"Use a shorter {argument} (put details in report_text).")
    return str(value)


def as_value(value: Any, argument: str = "value") -> float:
    """float(value), refusing text and None: "3" is most likely a mistake, not a metric.

    NaN and infinities are values (recorded as such); bools count as 0 and 1, as float() makes them.
    A numpy scalar or a one-element tensor works (float() calls .item(); on a GPU that waits for it).
    """
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{argument} must be a number, got {type(value).__name__} {value!r:.80}. "
                        f"Pass {argument}=float(...) of a number.")
    try:
        return float(value)
    except (TypeError, ValueError, RuntimeError) as exc:  # RuntimeError: a tensor of several elements
        raise TypeError(f"{argument} must be a number (anything float() takes), got {type(value).__name__}: "
                        f"{exc}. Pass one number, e.g. {argument}=loss.item().") from None


def as_iteration(iteration: Any, argument: str = "iteration") -> int:
    """A whole number (int or numpy integer, not bool or float) that fits in 64 bits."""
    try:
        if isinstance(iteration, (bool, float)):
            raise TypeError
        iteration = operator.index(iteration)  # int, numpy integers, a 0-d integer tensor
    except TypeError:
        raise TypeError(f"{argument} must be an int, got {type(iteration).__name__} {iteration!r:.80}. "
                        f"Pass the step number, e.g. {argument}=int(step).") from None
    if not -I64 - 1 <= iteration <= I64:
        raise ValueError(f"{argument} {iteration} does not fit in 64 bits. Pass a step number within +-2**63.")
    return iteration


def as_optional_iteration(iteration: Any) -> int | None:
    return None if iteration is None else as_iteration(iteration)


# -- JSON bodies ---------------------------------------------------------------------------------
def jsonable(value: Any, argument: str, nonfinite: Any = None) -> Any:
    """value as strict JSON data (PostgreSQL's JSON refuses NaN): numpy arrays and scalars become lists
    and numbers, a NaN or infinite float becomes `nonfinite`; anything else that is not JSON is refused."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else nonfinite
    if isinstance(value, dict):
        return {str(k): jsonable(v, argument, nonfinite) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v, argument, nonfinite) for v in value]
    if hasattr(value, "tolist"):  # numpy arrays and scalars, torch tensors
        return jsonable(value.tolist(), argument, nonfinite)
    if isinstance(value, numbers.Real):
        return jsonable(float(value), argument, nonfinite)
    if hasattr(value, "isoformat"):  # dates and times, e.g. on a plot's x axis
        return value.isoformat()
    raise TypeError(f"{argument} holds a {type(value).__name__} ({value!r:.80}), which cannot be stored as JSON. "
                    f"Pass numbers, text, lists and dicts in {argument}.")


def count_cells(value: Any) -> int:
    """How many leaves a JSON-able value has (for the MAX_CELLS bound)."""
    if isinstance(value, dict):
        return sum(count_cells(v) for v in value.values())
    if isinstance(value, list):
        return sum(count_cells(v) for v in value)
    return 1


def check_size(cells: int, argument: str, what: str) -> None:
    if cells > MAX_CELLS:
        raise ValueError(f"{argument} has {cells:,} values; a {what} report keeps at most {MAX_CELLS:,} (it is "
                         "stored in the metadata database). Report a part or a summary of it, or store the "
                         "whole with task.upload_artifact(name, obj).")


# -- tables ----------------------------------------------------------------------------------------
def _cell(value: Any) -> Any:
    """A table cell: NaN and infinities as the text ClearML shows ("NaN", "Inf", "-Inf")."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if value != value else ("Inf" if value > 0 else "-Inf")
    if hasattr(value, "item") and not hasattr(value, "__len__"):  # a numpy scalar
        return _cell(value.item())
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, numbers.Real):
        return _cell(float(value))
    return str(value)


def table_body(table_plot: Any = None, csv: str | None = None, url: str | None = None) -> dict[str, Any]:
    """{"columns": [...], "rows": [[...], ...]} from exactly one of table_plot, csv and url.

    A DataFrame's index is its first column (named after the index, "" when unnamed), as ClearML shows
    it; a list of rows is taken with its first row as the header; a CSV file or URL is read with pandas
    with its first column as the index, as ClearML reads it.
    """
    given = [name for name, v in (("table_plot", table_plot), ("csv", csv), ("url", url)) if v is not None]
    if len(given) != 1:
        raise ValueError(f"report_table needs exactly one of table_plot=, csv= and url=, got "
                         f"{', '.join(given) or 'none'}. Pass a DataFrame or list of rows as table_plot=, "
                         "a CSV file as csv=, or a CSV's URL as url=.")
    if csv is not None or url is not None:
        table_plot = _read_csv(os.fspath(csv) if csv is not None else url, given[0])
    if hasattr(table_plot, "columns") and hasattr(table_plot, "itertuples"):
        return _frame_body(table_plot)
    if not isinstance(table_plot, (list, tuple)) or not all(isinstance(r, (list, tuple)) for r in table_plot):
        raise TypeError(f"table_plot must be a pandas DataFrame or a list of rows (lists), got "
                        f"{type(table_plot).__name__}. The first row of a list is the header.")
    rows = [[_cell(v) for v in row] for row in table_plot]
    check_size(sum(len(r) for r in rows), given[0], "table")
    return {"columns": [str(c) for c in rows[0]] if rows else [], "rows": rows[1:]}


def _frame_body(frame: Any) -> dict[str, Any]:
    check_size(frame.shape[0] * (frame.shape[1] + 1), "table_plot", "table")
    index_name = frame.index.name
    columns = ["" if index_name is None else str(index_name)] + [str(c) for c in frame.columns]
    rows = [[_cell(v) for v in row] for row in frame.itertuples(index=True, name=None)]
    return {"columns": columns, "rows": rows}


def _read_csv(source: str, argument: str) -> Any:
    try:
        import pandas as pd
    except ImportError:
        if argument == "url":
            raise ImportError("report_table(url=...) reads the CSV with pandas: pip install pandas.") from None
        with open(source, newline="") as f:  # a local file still works without pandas, as text cells
            return list(_csv.reader(f))
    try:
        return pd.read_csv(source, index_col=[0])
    except (OSError, ValueError) as exc:
        raise type(exc)(f"report_table could not read {argument}={source!r}: {exc}. Pass a readable CSV.") from None


# -- images ----------------------------------------------------------------------------------------
def image_png(image: Any, argument: str = "image") -> tuple[bytes, dict[str, Any]]:
    """PNG bytes of a PIL image or a numpy array (H x W, H x W x 1/3/4; floats in [0, 1] are scaled to
    0-255 as ClearML does), and {"width", "height", "mode"}."""
    from PIL import Image

    if not isinstance(image, Image.Image):
        image = Image.fromarray(_uint8_array(image, argument))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue(), {"width": image.width, "height": image.height, "mode": image.mode}


def _uint8_array(image: Any, argument: str) -> Any:
    import numpy as np

    if not isinstance(image, np.ndarray):
        raise TypeError(f"{argument} must be a numpy array or a PIL image, got {type(image).__name__}. Pass a "
                        "file as local_path=, or an already uploaded image as url=.")
    array = image
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ValueError(f"{argument} has shape {image.shape}; an image is H x W (grey), H x W x 3 (RGB) or "
                         "H x W x 4 (RGBA).")
    if array.dtype != np.uint8:
        values = array.astype(np.float64)
        if np.issubdtype(array.dtype, np.floating) and np.nanmax(values, initial=0) <= 1.0:
            values = values * 255.0
        array = np.clip(np.nan_to_num(values), 0, 255).astype(np.uint8)
    return array
