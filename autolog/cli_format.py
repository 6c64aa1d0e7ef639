"""How the `autolog` command prints: tables and values for people, strict JSON for --json."""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import math
from typing import Any, Callable, Sequence


def emit(args: argparse.Namespace, data: Any, human: Callable[[], str]) -> None:
    if args.json:  # allow_nan=False: NaN and Infinity are not JSON, and strict parsers (jq, JS) reject them
        print(json.dumps(finite(data), indent=2, default=str, allow_nan=False))
    else:
        print(human())


def finite(value: Any) -> Any:
    """value with every NaN or infinite float (a metric, a metadata value) replaced by None, so that it
    is strict JSON (`--json` here, and every response of `autolog ui`)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def as_dict(record: Any, drop: Sequence[str] = ()) -> dict[str, Any]:
    return {k: v for k, v in dataclasses.asdict(record).items() if k not in drop}


def table(headers: list[str], rows: list[list[Any]]) -> str:
    from tabulate import tabulate

    return tabulate(rows, headers=headers, tablefmt="simple") if rows else "(none)"


def model_heading(model: Any) -> str:
    r = model._record
    tags = f" tags={','.join(r.tags)}" if r.tags else ""
    return f"model {r.id[:12]} {r.name!r} framework={r.framework or '-'} task={(r.task_id or '-')[:12]} ({r.origin}){tags}"


def model_design_lines(model: Any, most: int = 20) -> list[str]:
    """The label enumeration on one line, the design's first `most` lines below it."""
    lines = []
    if model.labels:
        lines.append("  labels  " + ", ".join(f"{label}={value}" for label, value in model.labels.items()))
    design = model.config_text.splitlines()
    if design:
        lines += ["  design"] + [f"    {line}" for line in design[:most]]
        if len(design) > most:
            lines.append(f"    ... ({len(design) - most} more lines: --json shows all)")
    return lines


def short_digest(digest: str | None) -> str:
    """A snapshot's digest as people read it: 12 hex digits, the algorithm named when it is not BLAKE3."""
    if not digest:
        return ""
    algorithm, _, hex_part = digest.partition(":")
    return hex_part[:12] if algorithm == "blake3" else f"{algorithm}:{hex_part[:12]}"


def snapshot_table(snapshots: list) -> str:
    return table(["seq", "iter", "status", "size", "digest", "uri", "saved"], [
        [s.seq, "" if s.iteration is None else s.iteration, s.status + (f": {s.reason}" if s.reason else ""),
         format_size(s.size), short_digest(s.digest), (s.uri or "") + (f" [{s.entry}]" if s.entry else ""),
         format_time(s.created)]
        for s in snapshots
    ])


def format_time(ts: float | None) -> str:
    return datetime.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


def format_duration(start: float, end: float | None) -> str:
    return f"{end - start:.1f}s" if end else "-"


def format_size(n: int | None) -> str:
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


def one_line(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def indented(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())
