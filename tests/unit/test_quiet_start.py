"""Task.init's background start waits for the script's imports and saves to end (autolog/quiet_start.py)."""
from __future__ import annotations

import importlib
import json
import sys
import threading
import time
import types

from autolog.quiet_start import wait_for_quiet_script


class Importing:
    """A thread adding a module to sys.modules every `every` seconds, as a script's imports do."""

    def __init__(self, every: float = 0.01):
        self.every, self.names, self._stop = every, [], threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            name = f"_autolog_test_module_{len(self.names)}"
            sys.modules[name] = types.ModuleType(name)
            self.names.append(name)

    def __enter__(self) -> "Importing":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        for name in self.names:
            sys.modules.pop(name, None)


def timed(wanted: threading.Event, thread_id: int | None = None, **kwargs) -> tuple[str, float]:
    start = time.monotonic()
    outcome = wait_for_quiet_script(wanted, threading.get_ident() if thread_id is None else thread_id, **kwargs)
    return outcome, time.monotonic() - start


def test_nothing_imported_goes_ahead_after_one_quiet_step():
    outcome, elapsed = timed(threading.Event(), quiet=0.05, at_most=5)
    assert outcome == "quiet" and elapsed < 1


def test_it_waits_while_modules_are_imported_then_goes_ahead_once_they_stop():
    with Importing():
        outcome, elapsed = timed(threading.Event(), quiet=0.05, at_most=0.6)
    assert (outcome, elapsed >= 0.6) == ("timeout", True)
    importing = Importing()
    with importing:
        threading.Timer(0.4, importing._stop.set).start()  # the imports end after 0.4 s
        outcome, elapsed = timed(threading.Event(), quiet=0.05, at_most=5)
    assert outcome == "quiet" and 0.4 <= elapsed < 2


def test_it_waits_while_the_script_runs_a_long_module_body(tmp_path, monkeypatch):
    """A module's body may run for a long time without importing another module (torch's does)."""
    (tmp_path / "_autolog_test_slow_module.py").write_text(
        "import time\nimport _autolog_test_started\ntime.sleep(0.5)\n")  # an import that lasts 0.5 s
    started = types.ModuleType("_autolog_test_started")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(sys.modules, "_autolog_test_started", started)
    script = threading.Thread(target=importlib.import_module, args=("_autolog_test_slow_module",))
    script.start()
    while "_autolog_test_slow_module" not in sys.modules:  # its body is running
        time.sleep(0.001)
    outcome, elapsed = timed(threading.Event(), script.ident, quiet=0.05, at_most=5)
    script.join()
    sys.modules.pop("_autolog_test_slow_module", None)
    assert outcome == "quiet" and elapsed >= 0.4


def _saving(seconds: float) -> None:
    """Stands for a captured save: the start looks for this function's code on the thread's stack."""
    time.sleep(seconds)


def test_it_waits_while_the_script_is_inside_a_busy_function_then_goes_ahead():
    script = threading.Thread(target=_saving, args=(0.5,))
    script.start()
    outcome, elapsed = timed(threading.Event(), script.ident, busy_codes={_saving.__code__}, quiet=0.05, at_most=5)
    script.join()
    assert outcome == "quiet" and elapsed >= 0.45


def test_a_function_not_named_busy_does_not_hold_it():
    script = threading.Thread(target=_saving, args=(0.5,))
    script.start()
    outcome, elapsed = timed(threading.Event(), script.ident, quiet=0.05, at_most=5)
    script.join()
    assert outcome == "quiet" and elapsed < 0.3


def test_a_script_busy_for_longer_than_at_most_gets_its_row_all_the_same():
    script = threading.Thread(target=_saving, args=(1.5,))
    script.start()
    outcome, elapsed = timed(threading.Event(), script.ident, busy_codes={_saving.__code__}, quiet=0.05, at_most=0.4)
    script.join()
    assert outcome == "timeout" and 0.4 <= elapsed < 1.2


def test_something_wanting_the_row_starts_it_at_once():
    wanted = threading.Event()
    with Importing():
        threading.Timer(0.2, wanted.set).start()
        outcome, elapsed = timed(wanted, quiet=0.05, at_most=5)
    assert outcome == "wanted" and elapsed < 1.5


SCRIPT = r"""
import json, os, sys, time
from autolog import Task, runtime
os.makedirs("mods", exist_ok=True)
sys.path.insert(0, "mods")
task = Task.init(project_name="p", task_name="quiet", output_uri=False)
run = runtime.live()
seen = []
for i in range(60):  # the script's own imports: one module every 10 ms for 0.6 s
    with open(f"mods/script_module_{i}.py", "w") as f:
        f.write("X = 1\n")
    __import__(f"script_module_{i}")
    seen.append("sqlalchemy" in sys.modules or run._ready.is_set())
    time.sleep(0.01)
ended = time.monotonic()
row_after = None
while time.monotonic() - ended < 10 and row_after is None:
    if run._ready.is_set():
        row_after = time.monotonic() - ended
    time.sleep(0.01)
print(json.dumps({"during": any(seen), "row_after": row_after}))
"""

WANTED_SCRIPT = r"""
import json, os, sys, time
from autolog import Task
os.makedirs("mods", exist_ok=True)
sys.path.insert(0, "mods")
task = Task.init(project_name="p", task_name="wanted", output_uri=False)
found_at = None
for i in range(300):  # imports go on for 3 s, but a query needs the row at 0.1 s
    with open(f"mods/script_module_{i}.py", "w") as f:
        f.write("X = 1\n")
    __import__(f"script_module_{i}")
    time.sleep(0.01)
    if i == 10:
        start = time.monotonic()
        found = Task.get_task(task_id=task.id)
        found_at = time.monotonic() - start
        break
print(json.dumps({"found": found.id == task.id, "waited": found_at}))
"""


def test_a_script_importing_after_task_init_runs_its_imports_before_the_background_start(run_py, tmp_path):
    proc = run_py(SCRIPT, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["during"] is False  # neither SQLAlchemy imported nor the row written while the script imported
    assert got["row_after"] is not None and got["row_after"] < 3  # then at once (the quiet step and ~0.2 s)


def test_a_query_during_the_imports_gets_the_row_without_waiting_for_them_to_end(run_py, tmp_path):
    proc = run_py(WANTED_SCRIPT, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["found"] is True and got["waited"] < 2.5  # not the 5 s cap


SAVING_SCRIPT = r"""
import json, sys, time
import torch
from autolog import Task, runtime
task = Task.init(project_name="p", task_name="saving", output_uri="store")
run = runtime.live()
seen = []


class SlowToPickle:
    # A save that lasts 0.8 s: the start's Python would otherwise run beside it.
    def __reduce__(self):
        for _ in range(80):
            seen.append("sqlalchemy" in sys.modules or run._ready.is_set())
            time.sleep(0.01)
        return (dict, ())


# Right after Task.init, as a run that saves its initial weights does
torch.save({"w": torch.zeros(4)}, "first.pt")  # its row is journaled while the next save runs
torch.load("first.pt")  # its lineage waits on a worker for first.pt's row while the next save runs
torch.save({"w": torch.ones(4), "slow": SlowToPickle()}, "second.pt")
ended = time.monotonic()
while not run._ready.is_set() and time.monotonic() - ended < 10:
    time.sleep(0.01)
row_after = time.monotonic() - ended
task.close()
models = Task.get_task(task_id=task.id).models
stored = sorted((m.name, len(m.snapshots)) for m in models["output"])
print(json.dumps({"during": any(seen), "looked": len(seen), "row_after": row_after, "stored": stored,
                  "loaded": [m.name for m in models["input"]]}))
"""


def test_the_start_waits_while_the_script_saves_then_writes_the_row_without_close(run_py, tmp_path):
    proc = run_py(SAVING_SCRIPT, cwd=tmp_path, env={"AUTOLOG_STRICT": "1"})
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["looked"] == 80
    assert got["during"] is False  # neither SQLAlchemy imported nor the row written during the save
    assert got["row_after"] < 3  # then once the save returned, without waiting for close
    assert got["stored"] == [["first.pt", 1], ["second.pt", 1]]
    assert got["loaded"] == ["first.pt"]


def test_a_fork_does_not_wait_for_a_database_that_is_down(run_py, tmp_path):
    """The start retries a database that is down for db.retry_seconds (60 s). A fork waited for the
    start to end, so a DataLoader forking its workers right after Task.init waited a minute. It waits
    only while the start may hold import locks, not while it sleeps between two tries."""
    proc = run_py("""
        import os, time
        from autolog import Task
        task = Task.init(project_name="p", task_name="database down", output_uri=False)
        time.sleep(1.0)  # the start has met the refused connection and waits to try again
        print("still trying:", task._runtime._init_thread.is_alive(), flush=True)
        start = time.monotonic()
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        print("fork took", time.monotonic() - start, flush=True)
        os._exit(0)  # not the exit flush, which waits for the database as it should
    """, env={"AUTOLOG_DB_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none", "AUTOLOG_STRICT": "0"})
    assert "fork took" in proc.stdout, proc.stderr
    assert "still trying: True" in proc.stdout  # the database was down, as the test means
    assert float(proc.stdout.split("fork took")[1]) < 5
