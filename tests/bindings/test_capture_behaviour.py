"""How capture behaves around real PyTorch calls: in-memory targets, wrapper transparency, exceptions,
volume, filters, ranks, DataLoader workers, child processes and closed tasks.

Every test runs a small script in a fresh interpreter (patches, import order, atexit and the task
are per process). The script prints one REPORT line: what the store holds once the task is closed.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from frameworks import require_framework

from autolog.storage.hashing import file_digest

MARK = "REPORT "
SCRIPT_TIMEOUT = 240  # seconds; each script normally ends in a few

PRELUDE = '''
import json, os, sys

def report(task_id):
    """What the store holds about a task: output models by saved path, loads by loaded path."""
    from autolog import Task

    task = Task.get_task(task_id=task_id)
    models = task.models
    rel = lambda p: os.path.relpath(p) if p else p
    loads = task._ctx.store.loads_by_task(task_id)
    return {
        "status": task.status,
        "output": {rel(m.source_path): [s.status for s in m.snapshots] for m in models["output"]},
        "output_digest": {rel(m.source_path): [s.digest for s in m.snapshots] for m in models["output"]},
        "frameworks": sorted({m.framework for m in models["output"]}),
        "input": sorted(m.name for m in models["input"]),
        "loads": [rel(ld.path) for ld in loads],
        "load_digest": [ld.digest for ld in loads],
    }

def init(**kwargs):
    from autolog import Task

    return Task.init(project_name="behaviour", task_name="t", output_uri=True, **kwargs)

def emit(**values):
    print("REPORT " + json.dumps(values), flush=True)
'''


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    return work


@pytest.fixture
def torch():
    """Every script imports torch: without it the tests skip (in CI they fail: tests/frameworks.py)."""
    return require_framework("torch")


@pytest.fixture
def run(tmp_path: Path, workdir: Path, child_env, torch):
    """run(body, env=None): run PRELUDE + body as a script file in `workdir`; returns its REPORT."""

    def run(body: str, env: dict[str, str] | None = None) -> dict:
        script = tmp_path / "script.py"
        script.write_text(PRELUDE + textwrap.dedent(body))
        # Its own process group: a hung script is killed together with the processes it started.
        proc = subprocess.Popen([sys.executable, str(script)], env=child_env(env), cwd=workdir, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        try:
            stdout, stderr = proc.communicate(timeout=SCRIPT_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            stdout, stderr = proc.communicate()
            pytest.fail(f"script hung (> {SCRIPT_TIMEOUT} s, a deadlock?):\n{stdout[-3000:]}\n{stderr[-6000:]}")
        assert proc.returncode == 0, f"script failed:\n{stdout[-3000:]}\n{stderr[-6000:]}"
        reports = [line for line in stdout.splitlines() if line.startswith(MARK)]
        assert reports, f"no report:\n{stdout[-3000:]}\n{stderr[-3000:]}"
        return json.loads(reports[-1][len(MARK):])

    return run


def stored_files(home: Path) -> list[str]:
    """The digest of every file under the default storage folder (output_uri=True)."""
    return [file_digest(p) for p in sorted((home / "storage").rglob("*")) if p.is_file()]


# -- in-memory targets ----------------------------------------------------------------------------

def test_save_to_bytesio_is_skipped_silently_and_writes_the_same_bytes(run):
    out = run('''
        import io, logging, warnings
        import torch

        assert os.environ["AUTOLOG_STRICT"] == "1"
        state = {"w": torch.arange(6.0).reshape(2, 3), "b": torch.ones(3)}
        originals = {"save": torch.save}  # not a module global: Task.init rebinds those to the patched save
        plain = io.BytesIO()
        torch.save(state, plain)  # before Task.init: nothing is patched yet

        task = init()
        autolog_messages = []
        class Keep(logging.Handler):
            def emit(self, record):
                autolog_messages.append(record.getMessage())
        logging.getLogger("autolog").addHandler(Keep(logging.WARNING))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            buffer = io.BytesIO()
            torch.save(state, buffer)
            buffer.seek(0)
            loaded = torch.load(buffer)
        task.close()
        emit(patched=torch.save is not originals["save"], same_bytes=buffer.getvalue() == plain.getvalue(),
             loaded_ok=all(torch.equal(loaded[k], v) for k, v in state.items()),
             autolog_messages=autolog_messages, python_warnings=[str(w.message) for w in caught],
             **report(task.id))
    ''')
    assert out["patched"], "torch.save was not wrapped: this test would prove nothing"
    assert out["same_bytes"] and out["loaded_ok"]
    assert out["autolog_messages"] == [] and out["python_warnings"] == []
    assert out["output"] == {} and out["loads"] == []


# -- transparency ---------------------------------------------------------------------------------

WRAPPED = ["torch.save", "torch.load", "torch.jit.save", "torch.jit.load", "torch.export.save",
           "torch.export.load", "torch.jit.RecursiveScriptModule.save"]


def test_patched_functions_look_like_the_originals(run):
    out = run(f'''
        import inspect, operator
        import torch, torch.jit, torch.export

        names = {WRAPPED!r}
        get = {{name: operator.attrgetter(name.split(".", 1)[1]) for name in names}}
        originals = {{name: get[name](torch) for name in names}}
        task = init()
        result = {{}}
        for name in names:
            before, now = originals[name], get[name](torch)
            result[name] = {{
                "wrapped": now is not before,
                "__wrapped__": getattr(now, "__wrapped__", None) is before,
                "signature": inspect.signature(now) == inspect.signature(before),
                **{{attr: getattr(now, attr) == getattr(before, attr)
                   for attr in ("__doc__", "__name__", "__qualname__", "__module__")}},
            }}
        task.close()
        emit(result=result)
    ''')
    differences = {name: [k for k, same in flags.items() if not same] for name, flags in out["result"].items()}
    assert differences == {name: [] for name in WRAPPED}


def test_exceptions_reach_the_caller_unchanged(run):
    out = run('''
        import traceback
        import torch, torch.serialization

        TORCH_DIR = os.path.dirname(torch.__file__)
        CALLS = {
            "torch.load(missing file)": lambda: torch.load(os.path.abspath("missing.pt")),
            "torch.save(into a missing folder)": lambda: torch.save({}, os.path.abspath("no/such/dir/m.pt")),
            "torch.jit.load(missing file)": lambda: torch.jit.load(os.path.abspath("missing.pt")),
        }

        def describe(call):
            try:
                call()
            except Exception as e:
                frames = traceback.extract_tb(e.__traceback__)
                return {"type": type(e).__name__, "args": repr(e.args), "context": repr(e.__context__),
                        "cause": repr(e.__cause__), "innermost_in_torch": frames[-1].filename.startswith(TORCH_DIR),
                        "torch_frames": [[f.filename, f.name, f.lineno] for f in frames
                                         if f.filename.startswith(TORCH_DIR)]}
            return None

        plain = {name: describe(call) for name, call in CALLS.items()}
        task = init()
        patched = {name: describe(call) for name, call in CALLS.items()}

        # The very object the original raised reaches the caller.
        sentinel = RuntimeError("raised inside torch.load")
        def failing_open(*args, **kwargs):
            raise sentinel
        original_open, torch.serialization._open_file_like = torch.serialization._open_file_like, failing_open
        try:
            torch.load(os.path.abspath("missing.pt"))
            same_object = "nothing raised"
        except Exception as e:
            same_object = e is sentinel and e.__context__ is None and e.__cause__ is None
        finally:
            torch.serialization._open_file_like = original_open
        task.close()
        emit(plain=plain, patched=patched, same_object=same_object, **report(task.id))
    ''')
    for name, plain in out["plain"].items():
        assert plain is not None and plain["innermost_in_torch"], (name, plain)
        assert out["patched"][name] == plain, name
    assert out["same_object"] is True
    assert out["output"] == {} and out["loads"] == []  # failed calls record nothing


# -- volume and deduplication ---------------------------------------------------------------------

def test_every_saved_file_is_its_own_model(run):
    out = run('''
        import torch
        task = init()
        for i in range(100):
            torch.save({"w": torch.full((4,), float(i))}, f"model_{i:03d}.pt")
        task.close()
        emit(**report(task.id))
    ''')
    assert sorted(out["output"]) == [f"model_{i:03d}.pt" for i in range(100)]
    assert all(snaps == ["stored"] for snaps in out["output"].values())
    assert len({digests[0] for digests in out["output_digest"].values()}) == 100


def test_a_file_saved_every_epoch_is_one_model_with_a_snapshot_per_epoch(run):
    out = run('''
        import torch
        task = init()
        for epoch in range(5):
            torch.save({"w": torch.full((4,), float(epoch))}, "last.pt")
        task.close()
        emit(**report(task.id))
    ''')
    assert out["output"] == {"last.pt": ["stored"] * 5}
    assert len(set(out["output_digest"]["last.pt"])) == 5


def test_unchanged_bytes_are_stored_once_but_every_save_is_a_snapshot(run, autolog_home):
    out = run('''
        import hashlib
        import torch
        from autolog import Task

        state = {"w": torch.arange(4.0)}
        task = init()
        for _ in range(3):
            torch.save(state, "same.pt")
        os.makedirs("copy")
        torch.save(state, "copy/same.pt")  # the same bytes elsewhere (torch names the archive after the file)
        task.close()
        from autolog.storage.hashing import file_digest
        digest = file_digest("same.pt")
        [model] = [m for m in Task.get_task(task_id=task.id).models["output"] if m.source_path == os.path.abspath("same.pt")]
        copies = [file_digest(model.get_local_copy(seq)) for seq in (1, 2, 3)]
        emit(digest=digest, copies=copies, **report(task.id))
    ''')
    digest = out["digest"]
    assert out["output"] == {"same.pt": ["stored"] * 3, "copy/same.pt": ["stored"]}
    assert out["output_digest"] == {"same.pt": [digest] * 3, "copy/same.pt": [digest]}
    assert out["copies"] == [digest] * 3  # every snapshot still gives its bytes back
    stored = stored_files(autolog_home)
    assert stored.count(digest) == 1, f"{stored.count(digest)} stored copies of identical bytes"
    assert len(stored) == len(set(stored))


def test_loading_one_file_many_times_links_once_and_hashes_once(run):
    out = run('''
        import torch
        from autolog.storage.hashing import file_digest

        torch.save({"w": torch.arange(4.0)}, "weights.pt")  # before Task.init: a file no task produced
        expected = file_digest("weights.pt")
        task = init()

        # Count every hash of file contents autolog does, wherever the hashing function is referenced
        # (outside hashing.py itself: its sha256_* helpers hash through file_digest, one hash each).
        from autolog.storage import hashing
        calls = []
        def counting(fn):
            def counted(*args, **kwargs):
                calls.append(fn.__name__)
                return fn(*args, **kwargs)
            return counted
        not_contents = {"manifest_digest", "entry_digest", "sha256_digest", "new_hasher"}  # no file read
        hashers = {fn: counting(fn) for name, fn in vars(hashing).items()
                   if callable(fn) and getattr(fn, "__module__", "") == hashing.__name__
                   and ("sha" in name or "hash" in name or "digest" in name) and name not in not_contents}
        for module_name, module in list(sys.modules.items()):
            if module_name == hashing.__name__:
                continue
            if module_name == "autolog" or module_name.startswith("autolog."):
                for attr, value in list(vars(module).items()):
                    if callable(value) and value in hashers:
                        setattr(module, attr, hashers[value])

        for _ in range(1000):
            loaded = torch.load("weights.pt")
        task.close()
        emit(hashers=sorted(fn.__name__ for fn in hashers), calls=calls, expected=expected,
             loaded_ok=torch.equal(loaded["w"], torch.arange(4.0)), **report(task.id))
    ''')
    assert out["hashers"], "found no hashing function to count"
    assert out["loaded_ok"]
    assert out["loads"] == ["weights.pt"] and out["load_digest"] == [out["expected"]]
    assert out["input"] == ["weights.pt"]
    # The unknown file must be hashed to be identified, once; the 999 other loads cost no hash.
    assert len(out["calls"]) == 1, out["calls"]


# -- import order ---------------------------------------------------------------------------------

def test_save_and_load_bound_under_other_names_before_task_init_are_captured(run, workdir):
    """`from torch import save`, the defining module's own name, a module fetched by name: all one function."""
    (workdir / "early.py").write_text("from torch.serialization import save as early_save\n")
    out = run('''
        import importlib
        from torch import save, load
        import torch.serialization
        sys.path.insert(0, os.getcwd())
        import early
        import torch
        task = init()
        late = {}
        exec("from torch.serialization import save as late_save", late)  # imported after init
        save({"w": torch.zeros(2)}, "from_import.pt")
        torch.serialization.save({"w": torch.ones(2)}, "serialization.pt")
        importlib.import_module("torch.serialization").save({"w": torch.full((2,), 2.0)}, "import_module.pt")
        early.early_save({"w": torch.full((2,), 3.0)}, "early.pt")
        late["late_save"]({"w": torch.full((2,), 4.0)}, "late.pt")
        loaded = load("early.pt")["w"][0].item()
        same = save is torch.save and torch.serialization.save is torch.save and early.early_save is torch.save
        task.close()
        emit(loaded=loaded, same=same, wrapped=hasattr(torch.save, "__wrapped__"), **report(task.id))
    ''')
    assert out["loaded"] == 3.0
    assert out["same"] and out["wrapped"]
    assert out["output"] == {name: ["stored"] for name in
                             ("from_import.pt", "serialization.pt", "import_module.pt", "early.pt", "late.pt")}
    assert out["loads"] == ["early.pt"]


def test_task_init_before_any_framework_defers_wrapt_to_the_first_framework_import(run):
    """Task.init() at the top of a script imports no patching library: the first framework import
    (here torch, from another thread too) brings the patches, and that framework's saves are captured."""
    out = run('''
        import threading
        task = init()
        before = "wrapt" in sys.modules
        failures = []

        def train():
            try:
                import torch
                torch.save({"w": torch.zeros(2)}, "thread.pt")
            except BaseException as exc:
                failures.append(repr(exc))

        worker = threading.Thread(target=train)
        worker.start(); worker.join()
        import torch
        from autolog.binding import is_patched
        torch.save({"w": torch.ones(2)}, "main.pt")
        patched = is_patched(torch.save) and "wrapt" in sys.modules
        task.close()
        emit(before=before, patched=patched, failures=failures, **report(task.id))
    ''')
    assert out["before"] is False
    assert out["patched"] and out["failures"] == []
    assert out["output"] == {"thread.pt": ["stored"], "main.pt": ["stored"]}


def test_joblib_dump_imported_by_name_before_task_init_is_captured(run):
    require_framework("joblib")
    out = run('''
        from joblib import dump, load
        task = init()
        dump({"weights": [1, 2, 3]}, "model.joblib")
        loaded = load("model.joblib")
        task.close()
        emit(loaded=loaded["weights"], **report(task.id))
    ''')
    assert out["loaded"] == [1, 2, 3]
    assert out["output"] == {"model.joblib": ["stored"]}
    assert out["loads"] == ["model.joblib"]


# -- nesting --------------------------------------------------------------------------------------

@pytest.mark.parametrize("save", [
    pytest.param("torch.jit.save(scripted, 'nested.pt')", id="torch.jit.save-calls-ScriptModule.save"),
    pytest.param("torch.export.save(torch.export.export(model, (example,)), 'nested.pt')",
                 id="torch.export.save"),  # calls torch.save internally (on a buffer)
])
def test_a_save_calling_another_patched_save_is_one_snapshot(run, save):
    out = run(f'''
        import torch
        model = torch.nn.Linear(3, 2)
        example = torch.randn(1, 3)
        scripted = torch.jit.script(model)
        task = init()
        for _ in range(3):
            with torch.no_grad():
                model.weight.add_(1.0)
            {save}
        task.close()
        emit(**report(task.id))
    ''')
    assert out["output"] == {"nested.pt": ["stored"] * 3}
    assert len(set(out["output_digest"]["nested.pt"])) == 3
    assert out["frameworks"] == ["PyTorch"]


# -- what is recorded: auto_connect_frameworks, capture.ignore, rank --------------------------------

SAVE_AND_LOAD_THREE = '''
    import torch
    task = init({kwargs})
    names = ["model.pt", "model.pth", "model.bin"]
    for i, name in enumerate(names):
        torch.save({{"w": torch.full((3,), float(i))}}, name)
    loaded = [torch.load(name)["w"][0].item() for name in names]
    task.close()
    emit(loaded=loaded, **report(task.id))
'''
ALL = {"model.pt", "model.pth", "model.bin"}


@pytest.mark.parametrize("setting, recorded", [
    (True, ALL),
    (False, set()),
    ({"pytorch": False}, set()),
    ({"pytorch": "*.pt"}, {"model.pt"}),
    ({"pytorch": ["*.pt", "*.pth"]}, {"model.pt", "model.pth"}),
    ({"tensorflow": False}, ALL),  # another framework's switch leaves PyTorch alone
], ids=["True", "False", "pytorch-False", "pytorch-glob", "pytorch-globs", "tensorflow-False"])
def test_auto_connect_frameworks_filters_saves_and_loads(run, setting, recorded):
    out = run(SAVE_AND_LOAD_THREE.format(kwargs=f"auto_connect_frameworks={setting!r}"))
    assert out["loaded"] == [0.0, 1.0, 2.0]
    assert set(out["output"]) == recorded
    assert set(out["loads"]) == recorded


def test_capture_ignore_in_the_config_file(run, autolog_home):
    (autolog_home / "autolog.toml").write_text('[capture]\nignore = ["*/cache/*"]\n')
    out = run('''
        import torch
        task = init()
        os.makedirs("cache")
        for name in ("cache/model.pt", "model.pt"):
            torch.save({"w": torch.full((3,), float(len(name)))}, name)
            torch.load(name)
        task.close()
        emit(**report(task.id))
    ''')
    assert out["output"] == {"model.pt": ["stored"]}
    assert out["loads"] == ["model.pt"]


@pytest.mark.parametrize("rank, recorded", [("1", set()), ("0", ALL), ("", ALL)])  # RANK="": no rank given
def test_only_rank_zero_records(run, rank, recorded):
    out = run(SAVE_AND_LOAD_THREE.format(kwargs=""), env={"RANK": rank})
    assert out["loaded"] == [0.0, 1.0, 2.0]
    assert set(out["output"]) == recorded
    assert set(out["loads"]) == recorded


def test_a_rank_check_that_fails_records_nothing_and_the_call_still_works(run):
    """A torch.distributed that cannot say its rank: the save and load work, nothing is recorded (it might be
    any rank), and the failure is one warning per captured call, naming it."""
    out = run('''
        import logging
        import torch
        import torch.distributed as dist
        os.environ.pop("AUTOLOG_STRICT")  # what users get
        messages = []
        class Keep(logging.Handler):
            def emit(self, record):
                messages.append(record.getMessage())
        logging.getLogger("autolog").addHandler(Keep(logging.WARNING))
        task = init()
        def broken():
            raise RuntimeError("no rank here")
        dist.is_initialized = lambda: True
        dist.get_rank = broken
        for _ in range(3):
            torch.save({"w": torch.ones(2)}, "model.pt")
            loaded = torch.load("model.pt")["w"].sum().item()
        task.close()
        emit(loaded=loaded, messages=messages, **report(task.id))
    ''')
    assert out["loaded"] == 2.0
    assert out["output"] == {} and out["loads"] == []
    failures = [m for m in out["messages"] if "no rank here" in m]
    assert len(failures) == 2, out["messages"]  # one per captured call, not one per call made
    assert any(m.startswith("autolog: torch.save() of PyTorch was not logged") for m in failures), failures
    assert any(m.startswith("autolog: torch.load() of PyTorch was not logged") for m in failures), failures


# -- other processes ------------------------------------------------------------------------------

@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_dataloader_worker_loads_are_not_models(run, workdir, context, torch):
    samples = workdir / "samples"
    samples.mkdir()
    for i in range(8):
        torch.save(torch.full((2,), float(i)), samples / f"sample_{i}.pt")
    out = run('''
        import glob
        import torch
        from torch.utils.data import DataLoader, Dataset

        task = init()  # at the top, as in most scripts: spawned workers run it too

        class Samples(Dataset):
            def __init__(self, paths):
                self.paths = paths
            def __len__(self):
                return len(self.paths)
            def __getitem__(self, i):
                return torch.load(self.paths[i])

        if __name__ == "__main__":
            paths = sorted(os.path.abspath(p) for p in glob.glob("samples/*.pt"))
            loader = DataLoader(Samples(paths), batch_size=2, num_workers=2,
                                multiprocessing_context=os.environ["MP_CONTEXT"])
            total = sum(batch.sum().item() for batch in loader)
            torch.load(paths[0])  # the same load in the main process is recorded
            task.close()
            emit(total=total, **report(task.id))
    ''', env={"MP_CONTEXT": context})
    assert out["total"] == 2 * sum(range(8))
    assert out["output"] == {}
    assert out["loads"] == [str(Path("samples") / "sample_0.pt")]
    assert out["status"] == "completed"


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_a_pool_maps_a_patched_function_as_it_maps_the_original(run, context):
    """Pool().map(torch.load, paths) pickles torch.load to send it to the workers (a Dataset holding
    loader=torch.load goes to spawned DataLoader workers the same way): wrapt's proxy refused to be
    pickled (NotImplementedError). A method reached through its class pickles too."""
    out = run('''
        import multiprocessing, pickle
        import torch

        task = init()

        if __name__ == "__main__":
            paths = [os.path.abspath(f"w{i}.pt") for i in range(3)]
            for i, path in enumerate(paths):
                torch.save(torch.tensor([float(i)]), path)
            with multiprocessing.get_context(os.environ["MP_CONTEXT"]).Pool(2) as pool:
                loaded = pool.map(torch.load, paths)
            method = torch.jit.RecursiveScriptModule.save
            again = pickle.loads(pickle.dumps(method))
            task.close()
            emit(loaded=[t.item() for t in loaded],
                 function=pickle.loads(pickle.dumps(torch.load)) is torch.load,
                 through_class=again.__wrapped__ is method.__wrapped__)
    ''', env={"MP_CONTEXT": context})
    assert out["loaded"] == [0.0, 1.0, 2.0]
    assert out["function"] and out["through_class"]


@pytest.mark.parametrize("ending", ["exits", "closes"])
@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_a_child_process_logs_into_the_parents_task(run, method, ending):
    out = run('''
        import multiprocessing
        import torch
        from autolog import Task

        def child(path, queue, close):
            import faulthandler
            faulthandler.dump_traceback_later(60, exit=True)  # a hung child shows where, instead of hanging
            task = Task.init(project_name="behaviour", task_name="child")  # attaches to the parent's task
            torch.save({"w": torch.ones(3)}, path)
            queue.put(task.id)
            if close:
                task.close()  # else it just exits, as workers usually do

        if __name__ == "__main__":
            task = init()
            ctx = multiprocessing.get_context(os.environ["MP_METHOD"])
            queue = ctx.Queue()
            proc = ctx.Process(target=child, args=(os.path.abspath("child.pt"), queue, os.environ["ENDING"] == "closes"))
            proc.start()
            child_task = queue.get(timeout=90)
            proc.join()
            status_after_child = Task.get_task(task_id=task.id).status
            tasks = [t.id for t in Task.get_tasks()]
            torch.save({"w": torch.zeros(3)}, "parent.pt")
            task.close()
            emit(parent=task.id, child=child_task, exitcode=proc.exitcode, status_after_child=status_after_child,
                 tasks=tasks, **report(task.id))
    ''', env={"MP_METHOD": method, "ENDING": ending})
    assert out["exitcode"] == 0
    assert out["child"] == out["parent"]
    assert out["tasks"] == [out["parent"]]
    assert out["status_after_child"] == "running"
    assert out["output"] == {"child.pt": ["stored"], "parent.pt": ["stored"]}
    assert out["status"] == "completed"



@pytest.mark.parametrize("leaves", ["close()", "the with block"])
def test_a_forked_child_that_uses_the_scripts_task_object_drives_only_its_own_run(run, leaves):
    """The `task` object the fork copied belonged to the parent's run: the child's close() ended the
    parent's task while it ran, and a flush() in the child restarted the parent's workers there, which
    stored the parent's pending snapshot a second time (its row then failed on a duplicate id)."""
    out = run('''
        import sys
        import torch
        from autolog import Task

        def child(task):
            torch.save({"w": torch.ones(3)}, "child.pt")
            task.flush()
            if os.environ["LEAVES"] == "close()":
                task.close()
                os._exit(0)
            sys.exit(0)  # through the with block's end

        with Task.init(project_name="behaviour", task_name="t", output_uri=True) as task:
            torch.save({"w": torch.zeros(1_000_000)}, "parent.pt")  # still in flight at the fork
            pid = os.fork()
            if pid == 0:
                child(task)
            _, status = os.waitpid(pid, 0)
            status_after_child = Task.get_task(task_id=task.id).status
        emit(child_exit=status, status_after_child=status_after_child, **report(task.id))
    ''', env={"LEAVES": leaves})
    assert out["child_exit"] == 0
    assert out["status_after_child"] == "running"
    assert out["output"] == {"child.pt": ["stored"], "parent.pt": ["stored"]}
    assert out["status"] == "completed"

def test_closed_task_records_nothing_and_a_new_task_records_again(run):
    out = run('''
        import torch
        from autolog import Model

        state = {"w": torch.arange(3.0)}
        first = init()
        first.close()
        torch.save(state, "after_close.pt")
        after_close_ok = torch.equal(torch.load("after_close.pt")["w"], state["w"])
        second = init()
        torch.save(state, "second.pt")
        second_ok = torch.equal(torch.load("second.pt")["w"], state["w"])
        second.close()
        emit(ok=after_close_ok and second_ok, new_task=second.id != first.id, first=report(first.id),
             second=report(second.id), all_models=sorted(os.path.relpath(m.source_path) for m in Model.query_models()))
    ''')
    assert out["ok"] and out["new_task"]
    assert out["first"]["output"] == {} and out["first"]["loads"] == []
    assert out["second"]["output"] == {"second.pt": ["stored"]}
    assert out["second"]["loads"] == ["second.pt"]
    assert out["all_models"] == ["second.pt"]  # after_close.pt was neither saved nor imported


def test_a_save_that_returns_after_its_task_closed_is_reported_not_recorded(run):
    """close() (from another thread, or at exit beside a daemon thread) while a save is in the
    framework's code: the save went into the closed run, where nothing stored or reported it."""
    out = run('''
        import logging, threading
        import torch

        messages = []

        class Keep(logging.Handler):
            def emit(self, record):
                messages.append(record.getMessage())

        logging.getLogger("autolog").addHandler(Keep(logging.WARNING))
        entered, release = threading.Event(), threading.Event()

        class SlowToPickle:
            def __reduce__(self):
                entered.set()
                release.wait()
                return (list, ())

        task = init()
        saving = threading.Thread(target=torch.save, args=({"w": torch.ones(3), "s": SlowToPickle()}, "late.pt"))
        saving.start()
        entered.wait()
        task.close()
        release.set()
        saving.join()
        emit(saved=os.path.getsize("late.pt") > 0, messages=messages, **report(task.id))
    ''', env={"AUTOLOG_STRICT": "0"})
    assert out["saved"] and out["output"] == {}
    assert any("late.pt" in m and "after task" in m and "not recorded" in m for m in out["messages"]), out["messages"]
