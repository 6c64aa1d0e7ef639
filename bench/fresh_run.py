"""A workload's Python source run in a fresh interpreter that imports autolog from a given source tree."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run_fresh(source: str, args: list[str], tree: str) -> dict:
    """source runs as `python -c source WORK BENCH *args`. WORK is a new temporary folder, its current
    folder and AUTOLOG_HOME (`python -c` puts the current folder first on sys.path, ahead of the tree
    in PYTHONPATH: run from another checkout, that checkout's autolog would be imported); BENCH is
    this folder, for `workloads`. Returns the JSON of its last output line, whose "autolog" (the file
    of the autolog it imported, if any) must be tree's."""
    work = tempfile.mkdtemp(prefix="autolog-fresh-")
    env = dict(os.environ, AUTOLOG_HOME=os.path.join(work, "home"), PYTHONPATH=tree)
    for var in ("AUTOLOG_STRICT", "AUTOLOG_DB_URL", "AUTOLOG_CONFIG"):
        env.pop(var, None)
    try:
        proc = subprocess.run([sys.executable, "-c", source, work, str(HERE), *args], env=env,
                              capture_output=True, text=True, cwd=work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if proc.returncode != 0:
        raise SystemExit(f"a run from {tree} failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    imported = result.get("autolog")
    if imported is not None and not imported.startswith(os.path.abspath(tree) + os.sep):
        raise SystemExit(f"the run meant to use {tree} imported {imported}")
    return result
