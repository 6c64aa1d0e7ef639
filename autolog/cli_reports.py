"""The reporting sections of `autolog task show` beyond scalars (cli_scalars.py): single values, plots
and tables, debug samples, console text and the label enumeration, each a count and a short summary.

--json holds the same under "single_values", "plots", "debug_samples", "console" and "labels".
Counts come from one grouped query; the console's last lines from a read of the newest rows only.
"""
from __future__ import annotations

from typing import Any, Callable

CONSOLE_LINES = 5  # the newest report_text lines `task show` prints


def summary(task: Any) -> dict[str, Any]:
    """What `task show --json` adds: {"single_values": {name: value}, "plots": [{"title", "series", "kind",
    "count"}], "debug_samples": [{"title", "series", "images", "media"}], "console": {"count", "last"}}."""
    from .db import reporting

    store = task._store_after_reports()
    plots: list[dict[str, Any]] = []
    samples: dict[tuple[str, str], dict[str, Any]] = {}
    console = 0
    for row in reporting.report_counts(store, task.id):
        if row.kind in ("plot", "table"):
            plots.append({"title": row.title, "series": row.series, "kind": row.kind, "count": row.count})
        elif row.kind in reporting.DEBUG_SAMPLES:
            entry = samples.setdefault((row.title, row.series), {"title": row.title, "series": row.series,
                                                                 "images": 0, "media": 0})
            entry["images" if row.kind == "image" else "media"] += row.count
        elif row.kind == "text":
            console += row.count
    last = [r.body.get("text", "") for r in reporting.last_texts(store, task.id, CONSOLE_LINES)]
    return {"single_values": reporting.single_values(store, task.id), "plots": plots,
            "debug_samples": sorted(samples.values(), key=lambda s: (s["title"], s["series"])),
            "console": {"count": console, "last": last}}


def show_lines(data: dict[str, Any], labels: dict[str, int] | None,
               table: Callable[[list[str], list[list[Any]]], str]) -> list[str]:
    """The human lines of the sections, after the scalars."""
    singles = data["single_values"]
    lines = ["", f"single values ({len(singles)})"]
    lines += [f"  {name} = {value:.6g}" for name, value in singles.items()]
    plots = data["plots"]
    lines += ["", f"plots ({sum(p['count'] for p in plots)} in {len(plots)} title/series)"]
    if plots:
        lines.append(table(["title", "series", "kind", "reports"],
                           [[p["title"], p["series"], p["kind"], p["count"]] for p in plots]))
    samples = data["debug_samples"]
    images, media = sum(s["images"] for s in samples), sum(s["media"] for s in samples)
    lines += ["", f"debug samples ({images} images, {media} media in {len(samples)} title/series)"]
    if samples:
        lines.append(table(["title", "series", "images", "media"],
                           [[s["title"], s["series"], s["images"], s["media"]] for s in samples]))
    console = data["console"]
    shown = f"; the last {len(console['last'])}" if console["count"] > len(console["last"]) else ""
    lines += ["", f"console ({console['count']} lines{shown})"]
    lines += [f"  {_one_line(text)}" for text in console["last"]]
    lines += ["", "labels    " + (", ".join(f"{k}={v}" for k, v in labels.items()) if labels else "(none)")]
    return lines


def _one_line(text: str, width: int = 100) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 3] + "..."
