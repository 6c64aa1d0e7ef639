"""Task: creating, finding and ending runs, what is recorded about them, and where they store."""
from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autolog import Task
from autolog.errors import AutologError, StorageError, TaskNotFoundError


def db_bytes(home: Path) -> bytes:
    """Every byte SQLite keeps for the store: the main file plus its WAL and shared-memory files."""
    return b"".join(p.read_bytes() for p in sorted(home.glob("autolog.db*")))


# -- creating and finding ------------------------------------------------------------------


def test_init_creates_a_running_task():
    task = Task.init(project_name="digits", task_name="train", tags=["a", "b"], auto_connect_frameworks=False)
    assert len(task.id) == 32 and int(task.id, 16) >= 0
    assert (task.project, task.name) == ("digits", "train")
    assert task.tags == ["a", "b"]
    assert task.status == "running"
    assert task.output_uri is None
    assert Task.current_task() is task
    assert Task.get_task(task_id=task.id) == task


def test_init_while_running_returns_the_same_task_unless_another_is_named():
    task = Task.init(project_name="p", task_name="t")
    assert Task.init(project_name="p", task_name="t") is task
    other = Task.init(project_name="other", task_name="other")  # a new task: the running one is completed
    assert other.id != task.id and task.status == "completed"
    other.close()
    again = Task.init(project_name="p", task_name="t")
    assert again.id not in (task.id, other.id)


def test_constructor_is_not_the_way_in():
    with pytest.raises(TypeError, match="Task.init"):
        Task()


def test_get_task_by_id_prefix_and_by_name_returns_the_newest():
    first = Task.init(project_name="digits", task_name="train")
    first.close()
    second = Task.init(project_name="digits", task_name="train")
    second.close()
    Task.init(project_name="digits", task_name="eval").close()
    Task.init(project_name="other", task_name="train").close()

    assert Task.get_task(task_id=first.id).id == first.id
    assert Task.get_task(task_id=first.id[:10]).id == first.id
    assert Task.get_task(project_name="digits", task_name="train").id == second.id
    assert Task.get_task(task_name="eval").project == "digits"
    assert Task.get_task(project_name="other").name == "train"


def test_get_task_not_found_is_a_value_error():
    Task.init(project_name="digits", task_name="train").close()
    with pytest.raises(TaskNotFoundError) as info:
        Task.get_task(project_name="digits", task_name="nope")
    assert isinstance(info.value, ValueError) and isinstance(info.value, AutologError)
    with pytest.raises(LookupError):
        Task.get_task(task_id="0" * 32)
    with pytest.raises(ValueError):
        Task.get_task()


def test_get_tasks_filters_newest_first():
    a = Task.init(project_name="p", task_name="train", tags=["x"])
    a.close()
    b = Task.init(project_name="p", task_name="train", tags=["x", "y"])
    b.mark_failed("diverged")
    b.close()
    c = Task.init(project_name="p", task_name="eval", tags=["y"])
    c.close()
    ids = lambda tasks: [t.id for t in tasks]  # noqa: E731
    assert ids(Task.get_tasks(project_name="p")) == [c.id, b.id, a.id]
    assert ids(Task.get_tasks(project_name="p", task_name="train")) == [b.id, a.id]
    assert ids(Task.get_tasks(tags=["x"])) == [b.id, a.id]
    assert ids(Task.get_tasks(tags=["x", "y"])) == [b.id]
    assert ids(Task.get_tasks(task_filter={"status": ["failed"]})) == [b.id]
    assert ids(Task.get_tasks(project_name="p", task_filter={"page": 0, "page_size": 2})) == [c.id, b.id]
    assert Task.get_tasks(project_name="nothing") == []


# -- ending --------------------------------------------------------------------------------


def test_close_completes_records_end_time_and_is_idempotent():
    before = time.time()
    task = Task.init(project_name="p", task_name="t")
    task.close()
    task.close()
    after = time.time()
    assert task.status == "completed"
    assert before <= task.created <= task.ended <= after
    assert Task.current_task() is None
    fetched = Task.get_task(task_id=task.id)
    assert fetched.status == "completed" and fetched.ended == task.ended


def test_context_manager_completes():
    with Task.init(project_name="p", task_name="ok") as task:
        assert task.status == "running"
    assert task.status == "completed"
    assert Task.current_task() is None


def test_context_manager_marks_failure_and_lets_the_exception_through():
    with pytest.raises(ZeroDivisionError):
        with Task.init(project_name="p", task_name="bad") as task:
            1 / 0
    assert Task.get_task(task_id=task.id).status == "failed"
    assert Task.current_task() is None


@pytest.mark.parametrize("code", [None, 0])
def test_context_manager_left_by_a_clean_exit_completes(code):
    """sys.exit(0) inside the block is a clean end, as it is at the end of a script (process.py)."""
    with pytest.raises(SystemExit):
        with Task.init(project_name="p", task_name="exit 0") as task:
            raise SystemExit(code)  # sys.exit's exception (sys.exit itself also marks this process's exit)
    assert Task.get_task(task_id=task.id).status == "completed"


@pytest.mark.parametrize("leaving, message", [(SystemExit(2), "exit(2)"), (KeyboardInterrupt(), "interrupted (Ctrl-C)")])
def test_context_manager_left_by_an_exit_code_or_ctrl_c_fails_saying_which(leaving, message):
    with pytest.raises(type(leaving)):
        with Task.init(project_name="p", task_name="exit 2") as task:
            raise leaving
    ended = task._runtime.context.store.get_task(task.id)
    assert (ended.status, ended.status_message) == ("failed", message)


def test_unhandled_exception_in_a_script_marks_the_task_failed(run_py):
    proc = run_py(
        """
        from autolog import Task
        task = Task.init(project_name="p", task_name="crash")
        print(task.id, flush=True)
        raise RuntimeError("boom in training")
        """
    )
    assert proc.returncode != 0
    assert "boom in training" in proc.stderr  # the user's traceback is still printed
    task = Task.get_task(task_id=proc.stdout.strip())
    assert task.status == "failed"
    assert task.ended is not None


def test_atexit_completes_a_task_that_was_never_closed(run_py):
    proc = run_py(
        """
        from autolog import Task
        task = Task.init(project_name="p", task_name="no-close")
        print(task.id)
        """
    )
    assert proc.returncode == 0, proc.stderr
    task = Task.get_task(task_id=proc.stdout.strip())
    assert task.status == "completed"
    assert task.ended is not None and task.ended >= task.created
    assert task.run_info["packages"], "the packages thread finished before exit"


def test_a_task_that_ends_with_sys_exit_zero_is_completed(run_py):
    proc = run_py(
        """
        import sys
        from autolog import Task
        print(Task.init(project_name="p", task_name="exit0").id)
        sys.exit(0)
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert Task.get_task(task_id=proc.stdout.strip()).status == "completed"


# -- what is recorded about a run ----------------------------------------------------------


def git(repo: Path, *args: str) -> str:
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.com", GIT_CONFIG_NOSYSTEM="1")
    out = subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True)
    return out.stdout.strip()


TRAIN_SCRIPT = """\
from autolog import Task
task = Task.init(project_name="runs")
print(task.id)
"""


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / "src").mkdir(parents=True)
    (repo / "src" / "train.py").write_text(TRAIN_SCRIPT)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "first")
    return repo


@pytest.mark.parametrize("layout", ["loose-ref", "packed-refs", "detached-head", "worktree"])
def test_run_info_from_a_script_in_a_git_repo(git_repo, tmp_path, child_env, layout):
    run_dir, branch = git_repo, "main"
    if layout == "packed-refs":
        git(git_repo, "pack-refs", "--all")
        assert not (git_repo / ".git" / "refs" / "heads" / "main").exists()
    elif layout == "detached-head":
        git(git_repo, "commit", "-q", "--allow-empty", "-m", "second")
        git(git_repo, "checkout", "-q", "--detach", "HEAD~1")
        branch = None
    elif layout == "worktree":
        run_dir, branch = tmp_path / "wt", "feature"
        git(git_repo, "worktree", "add", "-q", "-b", "feature", str(run_dir))
        git(run_dir, "commit", "-q", "--allow-empty", "-m", "on feature")
    expected_commit = git(run_dir, "rev-parse", "HEAD")

    before = time.time()
    proc = subprocess.run(
        [sys.executable, "src/train.py", "--epochs", "3"], cwd=run_dir, env=child_env(),
        capture_output=True, text=True, timeout=300,
    )
    after = time.time()
    assert proc.returncode == 0, proc.stderr

    task = Task.get_task(task_id=proc.stdout.strip())
    info = task.run_info
    assert task.name == "train.py"  # default name: the script's
    assert info["argv"] == ["src/train.py", "--epochs", "3"]
    assert Path(info["script"]).resolve() == (run_dir / "src" / "train.py").resolve()
    assert Path(info["cwd"]).resolve() == run_dir.resolve()
    assert info["git_commit"] == expected_commit
    assert info.get("git_branch") == branch
    assert info["python"] == platform.python_version()
    assert info["host"] == socket.gethostname()
    assert info["pid"] != os.getpid()
    packages = {name.lower(): version for name, version in info["packages"].items()}
    import numpy
    import sqlalchemy

    assert packages["numpy"] == numpy.__version__
    assert packages["sqlalchemy"] == sqlalchemy.__version__
    assert task.status == "completed"
    assert before <= task.created <= task.ended <= after


def test_run_info_outside_a_git_repo_has_no_commit(tmp_path, child_env):
    script = tmp_path / "plain" / "job.py"
    script.parent.mkdir()
    script.write_text(TRAIN_SCRIPT)
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=child_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    info = Task.get_task(task_id=proc.stdout.strip()).run_info
    assert "git_commit" not in info
    assert info["argv"] == [str(script)]


def test_packages_are_recorded_by_the_time_close_returns():
    task = Task.init(project_name="p", task_name="t")
    task.close()
    packages = {k.lower() for k in Task.get_task(task_id=task.id).run_info["packages"]}
    assert {"numpy", "sqlalchemy", "fsspec", "pytest"} <= packages


# -- output_uri ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["true", "path", "pathlib", "file-url", "memory", "none", "false"])
def test_output_uri_forms(kind, autolog_home, tmp_path, memory_uri):
    out = tmp_path / "out"
    given, expected = {
        "true": (True, str(autolog_home / "storage")),
        "path": (str(out), str(out)),
        "pathlib": (out, str(out)),
        "file-url": (f"file://{out}", str(out)),
        "memory": (memory_uri, memory_uri),
        "none": (None, None),
        "false": (False, None),
    }[kind]
    task = Task.init(project_name="p", task_name="t", output_uri=given)
    assert task.output_uri == expected
    assert Task.get_task(task_id=task.id).output_uri == expected


def test_output_uri_true_uses_the_configured_default(autolog_home, tmp_path):
    out = tmp_path / "configured"
    (autolog_home / "autolog.toml").write_text(f'[sdk.development]\ndefault_output_uri = "{out}"\n')
    task = Task.init(project_name="p", task_name="t", output_uri=True)
    assert task.output_uri == str(out)


def test_relative_output_uri_is_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    task = Task.init(project_name="p", task_name="t", output_uri="rel/out")
    assert task.output_uri == str(tmp_path / "rel" / "out")


def _under_a_file(tmp_path: Path) -> str:
    (tmp_path / "regular-file").write_text("x")
    return str(tmp_path / "regular-file" / "out")


def _the_file_itself(tmp_path: Path) -> str:
    (tmp_path / "regular-file").write_text("x")
    return str(tmp_path / "regular-file")


@pytest.mark.parametrize(
    "make_uri,expected_text",
    [
        (_under_a_file, "output_uri"),
        (_the_file_itself, "output_uri"),
        (lambda tmp_path: "nosuchprotocol://bucket/prefix", "nosuchprotocol"),
    ],
    ids=["parent-is-a-file", "is-a-file", "unknown-protocol"],
)
def test_unusable_output_uri_fails_init_early_and_clearly(tmp_path, make_uri, expected_text):
    uri = make_uri(tmp_path)
    with pytest.raises(StorageError) as info:
        Task.init(project_name="p", task_name="t", output_uri=uri)
    message = str(info.value)
    assert uri in message
    assert expected_text in message
    assert Task.current_task() is None
    assert Task.get_tasks() == []  # nothing recorded for a run that never started


@pytest.mark.parametrize("bad", ["", "   ", 42, ["a"]], ids=repr)
def test_output_uri_of_the_wrong_kind_is_a_value_error(bad):
    with pytest.raises(ValueError):
        Task.init(project_name="p", task_name="t", output_uri=bad)
    assert Task.current_task() is None


def test_password_in_output_uri_never_reaches_the_database(autolog_home, tmp_path):
    import fsspec

    secret = "s3cr3t-pw-7781"
    bucket = f"autolog-pw-{os.getpid()}-{time.monotonic_ns()}"
    uri = f"memory://alice:{secret}@{bucket}"
    (tmp_path / "w.bin").write_bytes(b"weights")
    try:
        task = Task.init(project_name="p", task_name="t", output_uri=uri)
        task.update_output_model(tmp_path / "w.bin", name="m", iteration=1)
        task.upload_artifact("params", {"lr": 0.1})
        task.close()
        stored = Task.get_task(task_id=task.id)
        assert secret not in (stored.output_uri or "")
        assert "***" in stored.output_uri
        assert secret.encode() not in db_bytes(autolog_home)
        assert b"alice" in db_bytes(autolog_home)  # the user name is fine and was written
    finally:
        fs = fsspec.filesystem("memory")
        for path in fs.ls("/", detail=False):
            if bucket in path:
                fs.rm(path, recursive=True)


def test_task_records_survive_in_a_new_process(run_py):
    task = Task.init(project_name="digits", task_name="train", tags=["t1"])
    task.connect({"lr": 0.1, "layers": [1, 2]})
    task.close()
    proc = run_py(
        f"""
        import json
        from autolog import Task
        t = Task.get_task(project_name="digits", task_name="train")
        print(json.dumps(dict(id=t.id, status=t.status, tags=t.tags, params=t.get_parameters_as_dict(cast=True),
                              flat=t.get_parameters())))
        """
    )
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert got == dict(id=task.id, status="completed", tags=["t1"], params={"General": {"lr": 0.1, "layers": [1, 2]}},
                       flat={"General/lr": "0.1", "General/layers": "[1, 2]"})  # ClearML's strings, uncast
