"""Keep this VM from handing freed memory back to its host while a bench runs (--hold-freed-pages).

This project's VM reports the guest's free memory to its host (virtio-balloon free page reporting),
and a page the host has taken back costs ~10 µs at its next first write: a 200 MB torch.save that
meets such pages takes ~0.5 s instead of ~80 ms, all of it CPU time of the saving thread. Its kernel
reports a freed page as soon as it reaches the shared free lists (`min_free_ms` = 0); pages freed
onto a CPU's own list (Linux's per-CPU page lists, up to 1.3 GB each here) are not reported. So a
save is fast when its thread's CPU still holds the pages of the files deleted before it (the previous
bench run's), and slow on the other CPU, where the saving thread of a process that started threads
(autolog's) ran far more often than a plain one's (experiments/page_reporting.py, 2026-11-30: first
200 MB saves whose CPU's list held the file, median 77 ms; held less, 419 ms; autolog-started's list
was short in 8 of 9 runs, plain's in 1). Which mode meets them is chance, and moves the ratios far
more than autolog does: in one such run a plain 1 GB first save took 0.37-2.05 s. Pinning every run's
saving thread and the deletions to one CPU made it worse (each CPU's list keeps what its own history
lets it; bench/results.md).

With --hold-freed-pages MS, a freed page waits MS ms before it is reported (this kernel's
`min_free_ms`; its `max_waiting_mib`, 1024, by its name the most that may wait, is raised to the
machine's memory: a 1 GB run frees several GB): a run reuses the pages the runs before it freed, as
on a machine without page reporting (the GPU box). Both are restored at the end, also after a
failure or a SIGTERM; a bench killed with SIGKILL leaves them set (`echo 0 > .../min_free_ms`,
`echo 1024 > .../max_waiting_mib` put this VM's back). Needs root and this VM's page_reporting
module; elsewhere the bench says so and stops.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PARAMETERS = Path("/sys/module/page_reporting/parameters")


def add_hold_option(parser: argparse.ArgumentParser) -> None:
    """--hold-freed-pages MS, for every bench that saves (args.hold_freed_pages: None when not given)."""
    parser.add_argument("--hold-freed-pages", type=int, metavar="MS",
                        help="this VM reports a freed page to its host only after MS ms (bench/freed_pages.py)")


def reports_at_once() -> bool:
    """This VM's kernel, reporting each freed page as soon as it can: a bench run without the option
    there measures which CPU its saves land on as much as autolog."""
    try:
        return (PARAMETERS / "min_free_ms").read_text().strip() == "0"
    except OSError:
        return False


@contextmanager
def freed_pages_held(ms: int | None) -> Iterator[None]:
    """Freed pages held ms before the VM reports them, for the block; nothing changed for ms None."""
    if ms is None:
        if reports_at_once():
            print("note: this machine gives freed memory back to its host at once, and saves that meet it are "
                  "several times slower: --hold-freed-pages 60000 measures as a machine without that does "
                  "(bench/freed_pages.py)", file=sys.stderr, flush=True)
        yield
        return
    memory_mib = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") >> 20
    wanted = {"min_free_ms": str(ms), "max_waiting_mib": str(memory_mib)}
    before: dict[str, str] = {}
    try:
        for name, value in wanted.items():
            before[name] = (PARAMETERS / name).read_text().strip()
            (PARAMETERS / name).write_text(value)
    except OSError as exc:
        _restore(before)
        raise SystemExit(f"--hold-freed-pages: cannot set {PARAMETERS / name} ({exc}): this machine's kernel has "
                         "no such setting, or this is not root") from exc
    # A `kill` (SIGTERM) would end the bench without running the restore below: it raises instead.
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        _restore(before)


def _terminated(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _restore(values: dict[str, str]) -> None:
    for name, value in values.items():
        (PARAMETERS / name).write_text(value)
