"""The order of a side-by-side bench's runs.

Runs are interleaved (plain, floor, autolog, ...) so that drift hits every mode alike, and each
repetition starts one mode later, so that no mode always follows the same neighbour: on this
project's VM a run may reuse the page cache the previous one freed or meet pages the VM has handed
back to its host (virtio-balloon free page reporting; a page taken back costs ~10 µs, so writing
200 MB can take 0.5 s instead of 80 ms). Nothing pauses between runs: an os.sync() and a 1 s pause
before each run made the 200 MB autolog rows the worst of three runs (first save 3.5x plain). Which
run meets such pages turned out to be which CPU its saving thread is on (freed_pages.py says why);
run_bench.py --hold-freed-pages takes that away on this VM.
"""
from __future__ import annotations


def rotated(modes: list[str], repetition: int) -> list[str]:
    """The modes of this repetition: repetition r starts at the r-th mode."""
    shift = repetition % len(modes)
    return modes[shift:] + modes[:shift]
