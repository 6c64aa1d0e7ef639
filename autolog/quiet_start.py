"""When Task.init's background start runs: once the script's own imports and saves have gone quiet.

`Task.init()` at a script's top is followed by the script's imports (torch, transformers: seconds of
Python holding the GIL, and thousands of short file reads that each let another thread take it). The
background start (importing SQLAlchemy, opening the database, writing the task's row: ~0.2 s of
Python) run beside those imports takes the GIL at each such read and keeps it for a switch interval:
a script that imports torch after Task.init started 0.31-0.37 s later than without autolog, and
0.14 s later once the start waited for the imports (`bench/init_cost.py --at-top`, 2-core VM).
So it waits until the thread that called Task.init is not inside an import and no module was added
to `sys.modules` for one `QUIET_SECONDS` step (a module's body can run for 100 ms without importing
another one: torch's does, so the count alone said "quiet" in the middle of `import torch`).

It also waits while that thread is inside a captured save or load (`busy_codes`: the capture
wrapper's code on its stack). A script that saves right after Task.init otherwise ran the start's
Python beside its saves: on 2 cores, back-to-back 200 MB saves took 1.14-1.34x as long as plain
ones while the start ran (`bench/ab_trees.py --megabytes 200`, not `--started`). The snapshots' rows
wait meanwhile; the copies do not (the pipeline copies before a row exists).

It goes at once when something waits for the task's row (`wanted`: a query, close, flush, any wait
on the snapshot pipeline, such as a save stored before it returns or room in the backlog, a fork);
the rows of saves and the lineage of loads, written in the background, wait for it without hurrying
it. It goes after `MAX_WAIT_SECONDS` in any case: a script that saves without pause still gets its
rows. Training code holds the GIL far less than imports do: tensor kernels and data loading release it.
"""
from __future__ import annotations

import sys
import threading
import time
from types import CodeType
from typing import Collection

QUIET_SECONDS = 0.05
MAX_WAIT_SECONDS = 5.0


def wait_for_quiet_script(wanted: threading.Event, thread_id: int, busy_codes: Collection[CodeType] = (),
                          quiet: float = QUIET_SECONDS, at_most: float = MAX_WAIT_SECONDS) -> str:
    """Return "quiet" once thread_id is out of the import system and out of every function whose code
    is in busy_codes, and no module was imported for `quiet` seconds; "wanted" as soon as `wanted` is
    set; "timeout" after `at_most` seconds."""
    deadline = time.monotonic() + at_most
    count = len(sys.modules)
    while (left := deadline - time.monotonic()) > 0:
        if wanted.wait(min(quiet, left)):
            return "wanted"
        if len(sys.modules) == count and not busy(thread_id, busy_codes):
            return "quiet"
        count = len(sys.modules)
    return "timeout"


def busy(thread_id: int, codes: Collection[CodeType] = ()) -> bool:
    """Whether the thread is inside an import (a frame of importlib's bootstrap is on its stack) or
    inside a function whose code is one of `codes`."""
    frame = sys._current_frames().get(thread_id)
    while frame is not None:
        code = frame.f_code
        if code in codes or code.co_filename.startswith("<frozen importlib._bootstrap"):
            return True
        frame = frame.f_back
    return False
