"""The order of a side-by-side bench's runs.

Runs are interleaved (plain, floor, autolog, ...) so that drift hits every mode alike, and each
repetition starts one mode later, so that no mode always follows the same neighbour: on this
project's VM a run inherits the page cache the previous one freed, which the VM hands back to its
host ~2 s after a free (virtio-balloon free page reporting; a page taken back costs ~10 µs, so
writing 200 MB can take 0.5 s instead of 80 ms). For the same reason nothing pauses between runs:
an os.sync() and a 1 s pause before each run made autolog-started's first 200 MB save 2.4x slower
(191 against 81 ms, medians of 5) and left plain's at 80 ms, as autolog's saves come later in their
run, after Task.init (2026-11-30; bench/results.md).
"""
from __future__ import annotations


def rotated(modes: list[str], repetition: int) -> list[str]:
    """The modes of this repetition: repetition r starts at the r-th mode."""
    shift = repetition % len(modes)
    return modes[shift:] + modes[:shift]
