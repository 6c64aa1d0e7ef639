"""A run's first rows, rehearsed: the recorder's statements run once, in a transaction that is rolled
back (Database.rehearsal), before the first save needs them.

Each statement's first run compiles it in SQLAlchemy. On the 2-core VM a run's first round (its model,
pending row, dedupe lookup and outcome) took ~26 ms where a later one took ~11 ms, and when the last save
is also the first, close() waits for that round (an upload's own two statements come before its bytes
go out). Only a statement of the same shape is warmed: the rows here come from pending_row and
outcome_rows on jobs like a save's, for one save a round and for two (an executemany is compiled
apart). tests/pipeline/test_rehearsal.py fails if a first save still compiles one.
"""
from __future__ import annotations

import os
import time

from ..context import Context
from ..db import ModelRecord, new_time_ordered_id
from ..storage import objects
from ..storage.blobstore import BlobStore
from ..storage.hashing import IDENTITY
from ..storage.sources import OpenedSources, Sources
from . import steps
from .dedupe import stored_copy_finder
from .jobs import SnapshotJob

_PATH = os.path.join(os.sep, "autolog-rehearsal", "model.pt")  # names no file: nothing here is read
_DIGEST = f"{IDENTITY}:{'0' * 64}"


def rehearse_rounds(ctx: Context, model: ModelRecord, store: BlobStore | None) -> None:
    """The recorder's rounds for saves of model's path into store. Inside Database.rehearsal only."""
    # Stats of two different files, for the stat cache's rows (rolled back with the rest): a round's
    # saves of one path are several files when a later save set the earlier one aside.
    stats = [os.stat(os.sep), os.stat(os.path.dirname(os.path.abspath(__file__)))]
    if store is None:  # recorded in place: the saved file is hashed through the stat cache (identity.py)
        if ctx.store.cached_digest("rehearsal", stats[0]) is None:
            ctx.store.remember_digest("rehearsal", stats[0], _DIGEST)
    for count in (1, 2):
        jobs = [_job(model, store, st) for st in stats[:count]]
        ctx.store.add_snapshots([steps.pending_row(job) for job in jobs])
        if store is not None and store.local:
            steps.stored_copies(ctx, jobs)
        elif store is not None and count == 1:  # an uploader's own, one snapshot at a time (nothing is
            steps.journal_staged(ctx, jobs[0])  # found stored: the store itself is not asked)
            stored_copy_finder(ctx, store, jobs[0].snapshot_id)(jobs[0].content.digest)
        updates, hashes = steps.outcome_rows(jobs, time.time())
        # The rows identity.remember_many writes (not called: it also fills the process's own stat
        # cache, which must not hold this made-up digest).
        ctx.store.finish_snapshots(updates, [("rehearsal", st, digest) for st, digest in hashes])


def _job(model: ModelRecord, store: BlobStore | None, st: os.stat_result) -> SnapshotJob:
    sources = Sources(files=((_PATH, os.path.basename(_PATH)),), name=os.path.basename(_PATH), single=True)
    content = objects.Content(digest=_DIGEST, size=st.st_size)
    job = SnapshotJob(new_time_ordered_id(), model, OpenedSources(sources, []), store, None, st.st_size,
                      stats=[st], content=content)
    if store is not None:
        job.published = objects.Published(uri=store.root.rstrip("/") + "/rehearsal", entry="", content=content,
                                           deduplicated=False)
    return job
