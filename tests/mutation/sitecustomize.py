"""Loaded by every Python started with this folder on PYTHONPATH (tests/mutation/run.sh puts it
there). Only in a child of mutmut's stats run (see mutmut_subprocess_stats.py): record which mutated
functions this process calls, and write them to MUTMUT_CHILD_STATS_DIR at exit. Else nothing."""
import os

if os.environ.get("MUTMUT_CHILD_STATS_DIR") and "MUTANT_UNDER_TEST" not in os.environ:
    try:
        import atexit
        import json
        import uuid

        here = os.getcwd()
        os.chdir(os.environ["MUTMUT_CHILD_STATS_PROJECT"])  # mutmut reads its config from the cwd
        try:
            from mutmut.configuration import config

            config()
        finally:
            os.chdir(here)
        from mutmut.mutation import trampoline
        from mutmut.state import state

        trampoline._mutant_under_test = "stats"  # this process only: its own children stay plain

        def _write_hits() -> None:
            names = sorted(state()._stats)
            if not names:
                return
            folder = os.environ["MUTMUT_CHILD_STATS_DIR"]
            name = f"{os.getpid()}-{uuid.uuid4().hex}"
            tmp = os.path.join(folder, f".{name}.tmp")  # not *.json until complete
            with open(tmp, "w") as f:
                json.dump(names, f)
            os.replace(tmp, os.path.join(folder, f"{name}.json"))

        atexit.register(_write_hits)
    except Exception:  # noqa: BLE001 - never break the test's own process
        pass
