"""The order of a side-by-side bench's runs.

Runs are interleaved (plain, floor, autolog, ...) so that drift hits every mode alike, and each
repetition starts one mode later, so that no mode always follows the same neighbour: on this
project's VM a run may reuse the page cache the previous one freed or meet pages the VM has handed
back to its host (virtio-balloon free page reporting; a page taken back costs ~10 µs, so writing
200 MB can take 0.5 s instead of 80 ms). Nothing pauses between runs: an os.sync() and a 1 s pause
before each run made the 200 MB autolog rows the worst of three runs (first save 3.5x plain), and
after one run's files are deleted, what came before the next run (nothing, an os.sync(), a pause)
moved autolog-started's first 200 MB save between 91 and 544 ms while plain's stayed at 76-80 ms
(2026-11-30, medians of 5: experiments/page_reporting.py, bench/results.md).
"""
from __future__ import annotations


def rotated(modes: list[str], repetition: int) -> list[str]:
    """The modes of this repetition: repetition r starts at the r-th mode."""
    shift = repetition % len(modes)
    return modes[shift:] + modes[:shift]
