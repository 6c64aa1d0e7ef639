"""When Task.init's background start runs: once the script's own imports have gone quiet.

`Task.init()` at a script's top is followed by the script's imports (torch, transformers: seconds of
Python holding the GIL, and thousands of short file reads that each let another thread take it). The
background start (importing SQLAlchemy, opening the database, starting the snapshot workers: ~0.2 s of
Python) run beside those imports takes the GIL at each such read and keeps it for a switch interval,
and slowed a `import torch` after Task.init by 0.9-1.2 s on the 2-core VM, several times its own cost.
So it waits until no module was imported for one `QUIET_SECONDS` step (training code holds the GIL far
less: tensor kernels and data loading release it), at once when something needs the task's row
(`wanted`: a query, a worker, close, a fork), and for at most `MAX_WAIT_SECONDS` in any case.
"""
from __future__ import annotations

import sys
import threading
import time

QUIET_SECONDS = 0.05
MAX_WAIT_SECONDS = 5.0


def wait_for_quiet_imports(wanted: threading.Event, quiet: float = QUIET_SECONDS,
                           at_most: float = MAX_WAIT_SECONDS) -> str:
    """Return "quiet" once no module was imported for `quiet` seconds, "wanted" as soon as `wanted` is
    set, "timeout" after `at_most` seconds."""
    deadline = time.monotonic() + at_most
    count = len(sys.modules)
    while (left := deadline - time.monotonic()) > 0:
        if wanted.wait(min(quiet, left)):
            return "wanted"
        if len(sys.modules) == count:
            return "quiet"
        count = len(sys.modules)
    return "timeout"
