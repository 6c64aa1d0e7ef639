"""Finding tasks with ClearML's signatures: Task.get_task / get_tasks / query_tasks and task_filter,
as ClearML documents them (clearml/task.py), on the real SQLite store."""
from __future__ import annotations

import datetime
import getpass
import json
import time

import pytest

from autolog import Task
from autolog.errors import TaskNotFoundError


def names(tasks) -> list[str]:
    return [t.name for t in tasks]


def run(project: str, name: str, tags=(), task_type: str = "training", fail: bool = False, keep_open: bool = False):
    task = Task.init(project_name=project, task_name=name, tags=list(tags), task_type=task_type,
                     auto_connect_frameworks=False)
    if fail:
        task.mark_failed("diverged")
    if not keep_open:
        task.close()
    time.sleep(0.01)  # distinct creation times: "newest first" must not depend on the id tiebreak
    return task


@pytest.fixture
def five():
    """train, pretrain, train-2, eval (failed, tags best+debug), a.b — in this order, in project p; x in q."""
    tasks = {
        "train": run("p", "train", tags=["best"]),
        "pretrain": run("p", "pretrain", tags=["debug"]),
        "train-2": run("p", "train-2", tags=["best", "v2"]),
        "eval": run("p", "eval", tags=["best", "debug"], task_type="testing", fail=True),
        "a.b": run("p", "a.b"),
        "x": run("q", "x"),
    }
    return tasks


# -- task_name: a regular expression in get_tasks, an exact name in get_task ---------------------------


def test_get_tasks_task_name_is_a_partial_regex_match_and_case_sensitive(five):
    assert names(Task.get_tasks(project_name="p", task_name="train")) == ["train-2", "pretrain", "train"]
    assert names(Task.get_tasks(project_name="p", task_name="^train$")) == ["train"]
    assert names(Task.get_tasks(task_name=r"train-\d")) == ["train-2"]
    assert names(Task.get_tasks(task_name="a.b")) == ["a.b"]  # "." is any character: matches "a.b" only here
    assert Task.get_tasks(task_name="TRAIN") == []


def test_get_task_matches_the_exact_name_not_a_pattern(five):
    assert Task.get_task(project_name="p", task_name="train").id == five["train"].id  # not the newer train-2
    assert Task.get_task(task_name="a.b").id == five["a.b"].id
    with pytest.raises(TaskNotFoundError, match="a.c"):
        Task.get_task(task_name="a.c")  # "." is not a wildcard in get_task


def test_invalid_regex_names_the_argument(five):
    with pytest.raises(ValueError, match=r"task_name '\(' is not a valid regular expression"):
        Task.get_tasks(task_name="(")


def test_project_name_may_be_a_list_and_is_exact(five):
    assert names(Task.get_tasks(project_name=["p", "q"], task_name="^(x|a.b)$")) == ["x", "a.b"]
    assert Task.get_tasks(project_name="P") == []


def test_task_ids_returns_those_tasks_in_that_order_ignoring_the_rest(five):
    ids = [five["x"].id, five["train"].id[:12]]
    assert [t.id for t in Task.get_tasks(task_ids=ids, project_name="nothing")] == [five["x"].id, five["train"].id]
    assert [t.id for t in Task.get_tasks(task_ids=five["eval"].id)] == [five["eval"].id]


# -- tags ----------------------------------------------------------------------------------------


def test_tags_need_all_listed_and_minus_excludes(five):
    assert names(Task.get_tasks(tags=["best"])) == ["eval", "train-2", "train"]
    assert names(Task.get_tasks(tags=["best", "debug"])) == ["eval"]
    assert names(Task.get_tasks(tags=["best", "-debug"])) == ["train-2", "train"]
    assert names(Task.get_tasks(tags=["best", "__$not", "v2"])) == ["eval", "train"]
    assert names(Task.get_tasks(tags=["__$any", "v2", "debug"])) == ["eval", "train-2", "pretrain"]
    assert names(Task.get_tasks(tags=["best"], task_filter={"tags": ["v2"]})) == ["train-2"]
    assert Task.get_task(project_name="p", tags=["debug", "-best"]).id == five["pretrain"].id


def test_nothing_is_archived_so_allow_archived_and_system_tag_exclusions_change_nothing(five):
    everything = names(Task.get_tasks(project_name="p"))
    assert names(Task.get_tasks(project_name="p", allow_archived=False)) == everything
    assert names(Task.get_tasks(project_name="p", task_filter={"system_tags": ["-archived"]})) == everything
    assert Task.get_tasks(project_name="p", task_filter={"system_tags": ["archived"]}) == []


# -- task_filter ---------------------------------------------------------------------------------


def test_status_filter_with_clearml_and_autolog_names(five):
    running = run("p", "live", keep_open=True)
    assert names(Task.get_tasks(task_filter={"status": ["failed"]})) == ["eval"]
    assert [t.id for t in Task.get_tasks(task_filter={"status": ["in_progress"]})] == [running.id]
    assert [t.id for t in Task.get_tasks(task_filter={"status": "running"})] == [running.id]
    assert len(Task.get_tasks(task_filter={"status": ["completed", "failed"]})) == 6
    assert Task.get_tasks(task_filter={"status": ["stopped", "queued"]}) == []  # ClearML's, never ours
    with pytest.raises(ValueError, match=r"task_filter\['status'\] 'done' is not a task status"):
        Task.get_tasks(task_filter={"status": ["done"]})


def test_type_user_and_search_text(five):
    assert names(Task.get_tasks(task_filter={"type": ["testing"]})) == ["eval"]
    assert len(Task.get_tasks(task_filter={"user": [getpass.getuser()]})) == 6
    assert Task.get_tasks(task_filter={"user": ["someone-else"]}) == []
    assert names(Task.get_tasks(task_filter={"search_text": "RAIN-"})) == ["train-2"]
    assert names(Task.get_tasks(task_filter={"search_text": five["x"].id[:10]})) == ["x"]
    assert names(Task.get_tasks(task_filter={"search_text": "%"})) == []  # a literal, not a LIKE wildcard


def test_all_and_any_patterns_search_fields_ignoring_case(five):
    assert names(Task.get_tasks(task_filter={"_any_": {"fields": ["name", "project"], "pattern": "^Q$"}})) == ["x"]
    both = {"_all_": {"fields": ["name", "type"], "pattern": "T"}}  # in the name and in the type ("testing")
    assert names(Task.get_tasks(project_name="p", task_filter=both)) == ["train-2", "pretrain", "train"]
    either = {"_any_": {"fields": ["name", "type"], "pattern": "T"}}
    assert names(Task.get_tasks(project_name="p", task_filter=either)) == ["a.b", "eval", "train-2", "pretrain", "train"]
    with pytest.raises(ValueError, match="cannot search 'script.repository'"):
        Task.get_tasks(task_filter={"_any_": {"fields": ["script.repository"], "pattern": "github"}})


def test_order_by_fields_and_directions(five):
    created = ["train", "pretrain", "train-2", "eval", "a.b"]
    assert names(Task.get_tasks(project_name="p", task_filter={"order_by": ["created"]})) == created
    assert names(Task.get_tasks(project_name="p", task_filter={"order_by": ["-created"]})) == created[::-1]
    assert names(Task.get_tasks(project_name="p", task_filter={"order_by": ["name"]})) == sorted(created)
    assert names(Task.get_tasks(project_name="p", task_filter={"order_by": ["-last_update"]}))[0] == "a.b"
    with pytest.raises(ValueError, match=r"cannot order by '-score'.*'-last_update'"):
        Task.get_tasks(task_filter={"order_by": ["-score"]})


def test_pages_split_the_ordered_list_without_gaps_or_repeats(five):
    everything = [t.id for t in Task.get_tasks()]
    pages = [[t.id for t in Task.get_tasks(task_filter={"page": page, "page_size": 4})] for page in range(3)]
    assert [len(p) for p in pages] == [4, 2, 0]
    assert pages[0] + pages[1] == everything
    with pytest.raises(ValueError, match="page_size"):
        Task.get_tasks(task_filter={"page": 1})
    with pytest.raises(ValueError, match=r"task_filter\['page_size'\] must be a whole number of at least 1"):
        Task.get_tasks(task_filter={"page_size": 0})


def test_get_task_takes_task_filter_and_its_order_picks_the_winner(five):
    assert Task.get_task(project_name="p", task_filter={"status": ["failed"]}).id == five["eval"].id
    oldest = Task.get_task(project_name="p", task_filter={"order_by": ["created"]})
    assert oldest.id == five["train"].id
    with pytest.raises(TaskNotFoundError, match="nothing"):
        Task.get_task(project_name="nothing", task_filter={"status": ["completed"]})


@pytest.mark.parametrize("key,message", [
    ("parent", "no parent task"), ("project", "pass project_name="), ("bogus", "Supported keys: status"),
])
def test_unsupported_task_filter_keys_are_named(five, key, message):
    with pytest.raises(ValueError, match=f"task_filter key '{key}' is not supported.*{message}"):
        Task.get_tasks(task_filter={key: "x"})
    with pytest.raises(ValueError, match=f"task_filter key '{key}'"):
        Task.get_task(project_name="p", task_filter={key: "x"})


# -- query_tasks ---------------------------------------------------------------------------------


def test_query_tasks_returns_ids_or_the_requested_fields(five):
    assert Task.query_tasks(project_name="p", task_name="^train") == [five["train-2"].id, five["train"].id]
    [row] = Task.query_tasks(task_name="^eval$", additional_return_fields=["status", "type", "tags", "last_update"])
    assert row["id"] == five["eval"].id and row["status"] == "failed" and row["type"] == "testing"
    assert row["tags"] == ["best", "debug"] and isinstance(row["last_update"], datetime.datetime)
    with pytest.raises(ValueError, match="cannot return 'hyperparams'"):
        Task.query_tasks(additional_return_fields=["hyperparams"])


# -- running_locally, add_requirements, execute_remotely ------------------------------------------


def test_running_locally_is_true_and_execute_remotely_says_why_it_cannot():
    assert Task.running_locally() is True
    task = Task.init(project_name="p", task_name="here", auto_connect_frameworks=False)
    with pytest.raises(NotImplementedError, match="queue_name='default'.*agents and queues"):
        task.execute_remotely(queue_name="default")


def test_add_requirements_before_init_is_recorded_after_init_is_ignored(run_py, tmp_path):
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("# pinned\nnumpy>=1.20\n\n-r other.txt\nrequests[socks]==2.31  # http\n")
    proc = run_py(f"""
        import json, logging, importlib.metadata
        from autolog import Task
        Task.add_requirements("pytest")             # the installed version
        Task.add_requirements("torch", "2.1.0")
        Task.add_requirements("torch", ">=2.0")     # replaces the line above
        Task.add_requirements("nothing-installed-xyz")
        Task.add_requirements("any-version", "")
        Task.add_requirements({str(reqs)!r})
        task = Task.init(project_name="p", task_name="reqs", auto_connect_frameworks=False)
        Task.add_requirements("late")               # after init: ignored, with a warning
        task.close()
        print(json.dumps({{"reqs": Task.get_task(task_id=task.id).run_info["requirements"],
                           "pytest": importlib.metadata.version("pytest")}}))
    """)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["reqs"] == [f"pytest=={got['pytest']}", "torch>=2.0", "nothing-installed-xyz", "any-version",
                           "numpy>=1.20", "requests[socks]==2.31"]
    assert "'late' ignored: Task.add_requirements() must be called before Task.init()" in proc.stderr
