"""A workload run in a fresh interpreter that imports autolog from a given source tree: one of
workloads.py's by name (run_workload), or Python source (run_fresh)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Settings of the caller's own run that must not reach a measured one. PYTHONDONTWRITEBYTECODE:
# installed packages run from cached bytecode (pip compiles it); without the cache every run would
# compile autolog's sources, and time that.
_DROPPED = ("AUTOLOG_STRICT", "AUTOLOG_TASK_ID", "AUTOLOG_TASK_PID", "AUTOLOG_DB_URL", "AUTOLOG_CONFIG",
            "PYTHONDONTWRITEBYTECODE")


def _measured_env(home: str, pythonpath: str) -> dict[str, str]:
    """This process's environment for a measured run: AUTOLOG_HOME and PYTHONPATH set, _DROPPED gone."""
    env = dict(os.environ, AUTOLOG_HOME=home, PYTHONPATH=pythonpath)
    for var in _DROPPED:
        env.pop(var, None)
    return env


def run_workload(name: str, args: dict, tree: str | os.PathLike, home: str) -> dict:
    """workloads.py's `name` with `args`, autolog from `tree`, AUTOLOG_HOME `home`; the JSON of its
    last output line. Raises RuntimeError (with its stderr's end) when it fails."""
    env = _measured_env(home, os.pathsep.join([str(tree), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, str(HERE / "workloads.py"), name, json.dumps(args)], env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{name} {args} from {tree} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_fresh(source: str, args: list[str], tree: str) -> dict:
    """source runs as `python -c source WORK BENCH *args`. WORK is a new temporary folder, its current
    folder and AUTOLOG_HOME (`python -c` puts the current folder first on sys.path, ahead of the tree
    in PYTHONPATH: run from another checkout, that checkout's autolog would be imported); BENCH is
    this folder, for `workloads`. Returns the JSON of its last output line, whose "autolog" (the file
    of the autolog it imported, if any) must be tree's."""
    work = tempfile.mkdtemp(prefix="autolog-fresh-")
    env = _measured_env(os.path.join(work, "home"), tree)
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
