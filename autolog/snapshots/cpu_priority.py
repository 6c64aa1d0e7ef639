"""The threads that copy and hash snapshot bytes give the CPU to the training first.

A training job that computes on the CPU runs one thread per core (torch's OpenMP team, XGBoost,
LightGBM). A copy or a hash beside it takes one of those cores, and each parallel region of the
training then waits at its barrier for the thread that lost its core: one training step of a small
MLP on 2 cores took as long as the whole 200 MB copy and hash beside it (50-165 ms instead of 3 ms),
and the training ran at 0.73-0.80x its speed (`bench/experiments/train_between_saves.py --training
torch`). At a lower priority ([pipeline] worker_nice, 10 by default) those threads run when a core is
free: between steps, during a save, while the training waits on the GPU, the data or autolog itself
(a wait on the pipeline leaves the training's cores free), and at close(). A machine with idle cores
(a GPU job) sees no difference.

Only threads that spend their time in calls outside the GIL get it: one of them preempted while it
holds the GIL for the few microseconds between two such calls stalls the training only until a core
frees up. The recorder and Task.init's background start run Python for milliseconds at a time and keep
the process's priority; so do the uploaders, since the fsspec event-loop thread one of them may start
would inherit theirs, and a script's own fsspec reads go through that thread.

The cost: a thread cannot raise its priority again without CAP_SYS_NICE, so while other busy
processes of the same scheduling group share the cores, work someone waits for (close()) runs at the
lowered share; hence 10, not 19 (ARCHITECTURE.md, "The bytes' threads yield the CPU to the training").

Linux only: there the nice value belongs to each thread, and a thread may lower its own priority
without privileges. Elsewhere `setpriority` acts on the whole process, so nothing is done.
"""
from __future__ import annotations

import logging
import os
import sys
import threading

logger = logging.getLogger("autolog")


def lower_this_thread(nice: int) -> None:
    """Give the calling thread at least `nice` (0-19). Never raises its priority, never touches the
    main thread (whose id is the process's), and a refusal (a sandbox) leaves it as it was."""
    if nice <= 0 or not sys.platform.startswith("linux"):
        return
    tid = threading.get_native_id()
    if tid == os.getpid():
        return
    try:
        if os.getpriority(os.PRIO_PROCESS, tid) < nice:
            os.setpriority(os.PRIO_PROCESS, tid, nice)
    except OSError as exc:
        logger.debug("autolog: could not lower the priority of %s: %s", threading.current_thread().name, exc)
