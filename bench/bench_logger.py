"""Cost of `Logger.report_scalar` in a training loop, over an empty Python function.

    python bench/bench_logger.py                      # 100,000 calls, median of 7 rounds
    python bench/bench_logger.py --calls 20000 --rounds 3 --json

Each round times N calls of an empty function taking the same four arguments, then N calls of
`logger.report_scalar(title, series, value, iteration)` on a running task (its own AUTOLOG_HOME in a
temporary folder), and then writes them out (not timed). The overhead is the difference per call;
the median of the rounds is compared with the target of issue 11: at most 2 µs per call. The
background writer runs as it would in training (every second), so its share of the GIL is counted.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

TARGET_US = 2.0
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def empty(title, series, value, iteration):  # noqa: ANN001, ANN201 - the baseline: a call and nothing else
    pass


def time_calls(report, calls: int, offset: int) -> float:
    """Seconds for `calls` calls of report(title, series, value, iteration), as a training loop makes them."""
    start = time.perf_counter()
    for i in range(offset, offset + calls):
        report("loss", "train", 0.5, i)
    return time.perf_counter() - start


def measure(calls: int, rounds: int) -> dict:
    from autolog import Task

    task = Task.init(project_name="bench", task_name="logger", auto_connect_frameworks=False)
    logger = task.get_logger()
    logger.report_scalar("loss", "train", 0.0, -1)  # the first report starts the writer: not what is timed
    logger.flush()
    overheads = []
    for r in range(rounds):
        baseline = time_calls(empty, calls, 0)
        reported = time_calls(logger.report_scalar, calls, r * calls)
        overheads.append((reported - baseline) / calls * 1e6)
        written = time.perf_counter()
        logger.flush()
        flush_s = time.perf_counter() - written
    stored = sum(len(s["x"]) for s in task.get_reported_scalars()["loss"].values())
    task.close()
    median = statistics.median(overheads)
    return {"calls": calls, "rounds": rounds, "overhead_us": [round(o, 3) for o in overheads],
            "median_overhead_us": round(median, 3), "target_us": TARGET_US, "pass": median <= TARGET_US,
            "last_flush_s": round(flush_s, 3), "stored": stored}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="autolog-bench-logger-") as home:
        os.environ["AUTOLOG_HOME"] = home
        result = measure(args.calls, args.rounds)
    if args.json:
        print(json.dumps(result))
        return
    verdict = "PASS" if result["pass"] else "MISS"
    print(f"report_scalar: {args.calls:,} calls x {args.rounds} rounds; overhead over an empty function "
          f"{result['overhead_us']} µs/call")
    print(f"median {result['median_overhead_us']:.3f} µs/call (target <= {TARGET_US} µs): {verdict}; "
          f"writing one round's rows took {result['last_flush_s']} s; {result['stored']:,} values stored")


if __name__ == "__main__":
    main()
