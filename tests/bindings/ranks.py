"""Two real torch.distributed ranks (gloo, CPU), each a fresh interpreter running one worker script."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

MARK = "REPORT "
SCRIPT_TIMEOUT = 240  # seconds; each worker normally ends in a few


def run_two_ranks(worker: str, tmp_path: Path, cwd: Path, env: dict[str, str]) -> dict[int, dict]:
    """Start `python worker.py RANK RENDEZVOUS_FILE` for ranks 0 and 1 together (they rendezvous through
    the file); {rank: the JSON its last line starting with MARK carried}."""
    script = tmp_path / "worker.py"
    script.write_text(textwrap.dedent(worker))
    init_file = tmp_path / "rendezvous"  # must not exist yet: gloo's FileStore creates it
    # Own process groups: a hung worker is killed together with anything it started.
    procs = [subprocess.Popen([sys.executable, str(script), str(rank), str(init_file)], env=env, cwd=cwd,
                              text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
             for rank in (0, 1)]
    reports = {}
    try:
        for rank, proc in enumerate(procs):
            try:
                stdout, stderr = proc.communicate(timeout=SCRIPT_TIMEOUT)
            except subprocess.TimeoutExpired:
                pytest.fail(f"rank {rank} hung (> {SCRIPT_TIMEOUT} s)")
            assert proc.returncode == 0, f"rank {rank} failed:\n{stdout[-3000:]}\n{stderr[-6000:]}"
            [line] = [ln for ln in stdout.splitlines() if ln.startswith(MARK)]
            reports[rank] = json.loads(line[len(MARK):])
    finally:
        for proc in procs:  # only the workers this test started
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate()
    return reports
