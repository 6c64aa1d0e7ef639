"""torch.distributed.checkpoint (DCP) binding: a checkpoint folder is one snapshot of every rank's shards.

A single process (no process group) goes through the conformance suite and the specific tests below;
two real processes form a gloo group (file rendezvous, as in test_distributed_rank.py), shard a DTensor
across both ranks, save it twice and load it: only rank 0 records, once per save, the whole folder.
"""
from __future__ import annotations

import dataclasses
import hashlib
import warnings
from pathlib import Path

import pytest
from conformance import Case, home_and_workdir, make_tests, run_scenario, succeeded

from frameworks import require_framework
from ranks import run_two_ranks

IMPORTS = "import torch\nimport torch.distributed.checkpoint as dcp"
SETUP = """
from torch.distributed.checkpoint import FileSystemReader, FileSystemWriter
torch.manual_seed(0)
model = torch.nn.Linear(4, 3)
steps = [0]
def step():
    steps[0] += 1
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1)
def state():
    return {"model": model.state_dict(), "step": torch.tensor(float(steps[0]))}
def empty():
    return {"model": torch.nn.Linear(4, 3).state_dict(), "step": torch.tensor(0.0)}
"""
CHECK = ("loaded['step'].item() == steps[0]"
         " and all(torch.equal(loaded['model'][k], v) for k, v in model.state_dict().items())")

CASES = [
    Case(
        id="dcp.save-checkpoint_id", requires="torch.distributed.checkpoint", imports=IMPORTS, setup=SETUP,
        framework="PyTorch", filename="ckpt",
        save="step(); saved = dcp.save(state(), checkpoint_id=path)",
        load="loaded = empty(); dcp.load(loaded, checkpoint_id=path)",
        check=CHECK,
    ),
]

(test_saves_are_snapshots, test_load_in_another_process_links_to_the_producer,
 test_logging_failures_never_reach_the_user, _) = make_tests(CASES)


# -- one process, each scenario in a fresh interpreter ---------------------------------------


def _folder_files(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_exceptions_pass_through_and_closed_task_records_nothing(tmp_path: Path):
    """The conformance test of the same name. DCP raises CheckpointException, a BaseException, which the
    scenario's steps do not catch: the save here turns it into an Exception carrying its type and text."""
    require_framework("torch.distributed.checkpoint")
    home, work = home_and_workdir(tmp_path)
    case = dataclasses.replace(CASES[0], save=f"""
try:
    {CASES[0].save}
except dcp.api.CheckpointException as exc:
    raise RuntimeError(f"{{type(exc).__name__}}: {{exc}}") from None
""")
    report = run_scenario(case, home, work, ["bad_save", "close", "save", "load"], before_init=["bad_save"])
    [plain] = report["plain"]["errors"]
    [error] = report["autolog"]["errors"]  # only the save into a missing folder failed
    assert (error["type"], error["message"]) == (plain["type"], plain["message"])
    assert error["message"].startswith("CheckpointException: ") and "NotADirectoryError" in error["message"]
    assert report["models"]["output"] == [] and report["models"]["loads"] == []
    assert all(report["autolog"]["checks"])


# Three saves of one folder, each another way: a storage writer with its own threads (they torch.save into
# unnamed streams: nothing recorded), the deprecated name (no_dist=True needed without a process group),
# and async_save, which returns at once: the save in its executor thread records the finished folder.
# Then loads through a storage reader, the deprecated name and checkpoint_id.
def _dcp_load(folder: str, template: dict) -> dict:
    """These entries of a checkpoint, read in this process without a process group (DCP reshards them)."""
    import torch
    import torch.distributed.checkpoint as dcp

    state = {key: torch.tensor(value) for key, value in template.items()}
    with warnings.catch_warnings():  # "torch.distributed is disabled ...": no_dist=True says so already
        warnings.simplefilter("ignore", UserWarning)
        dcp.load(state, checkpoint_id=folder, no_dist=True)
    return {key: value.tolist() for key, value in state.items()}


SAVES = """
step(); saved = dcp.save(state(), storage_writer=FileSystemWriter(path, thread_count=2))
step(); saved = dcp.save_state_dict(state(), FileSystemWriter(path), no_dist=True)
step(); saved = dcp.async_save(state(), checkpoint_id=path).result()
"""
LOADS = """
loaded = empty(); dcp.load(loaded, storage_reader=FileSystemReader(path))
loaded = empty(); dcp.load_state_dict(loaded, FileSystemReader(path), no_dist=True)
loaded = empty(); dcp.load(loaded, checkpoint_id=path)
"""


@pytest.mark.parametrize("import_first", [True, False], ids=["imported-before-init", "imported-after-init"])
def test_each_save_is_one_snapshot_of_the_whole_folder(import_first: bool, tmp_path: Path, autolog_home: Path):
    require_framework("torch.distributed.checkpoint")
    from autolog import Model

    _, work = home_and_workdir(tmp_path)
    case = dataclasses.replace(CASES[0], save=SAVES, load=LOADS)
    report = run_scenario(case, autolog_home, work, ["save", "load"], import_first=import_first)
    succeeded(report)
    [produced] = report["models"]["output"]
    assert (produced["name"], produced["framework"]) == ("ckpt", "PyTorch")
    model = Model(produced["id"])
    assert [(s.seq, s.status) for s in model.snapshots] == [(1, "stored"), (2, "stored"), (3, "stored")]
    assert {".metadata", "__0_0.distcp"} <= set(_folder_files(work / "ckpt"))
    assert _folder_files(Path(model.get_local_copy(version=3))) == _folder_files(work / "ckpt")
    for version in (1, 2, 3):  # each snapshot is its own save, complete (the async one too)
        assert _dcp_load(model.get_local_copy(version=version), {"step": 0.0}) == {"step": float(version)}
    [link] = report["models"]["loads"]  # three loads of the unchanged folder: one link, to the last save
    assert link["snapshot_id"] == model.snapshots[-1].id


# -- two ranks (gloo) -------------------------------------------------------------------------

LAUNCHER_VARIABLES = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK", "MASTER_ADDR",
                      "MASTER_PORT", "TORCHELASTIC_RUN_ID")

WORKER = '''
import json, sys

rank, init_file = int(sys.argv[1]), sys.argv[2]
import torch
import torch.distributed as dist
from autolog import Task

task = Task.init(project_name="dcp", task_name=f"rank {rank}", output_uri=True)
import torch.distributed.checkpoint as dcp  # after Task.init (the single-process tests do both orders)
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.tensor import Shard, distribute_tensor

dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
mesh = init_device_mesh("cpu", (2,))

def state(value):  # w is sharded: rank 0 holds w[:4], rank 1 w[4:]
    return {"w": distribute_tensor(torch.arange(8.0) + value, mesh, [Shard(0)]), "step": torch.tensor(value)}

for value in (1.0, 2.0):
    dcp.save(state(value), checkpoint_id="ckpt")
loaded = state(0.0)
dcp.load(loaded, checkpoint_id="ckpt")
dcp.load(loaded, checkpoint_id="ckpt")
dist.barrier()  # every rank saved and loaded before either closes its task
task.close()
print("REPORT " + json.dumps({
    "rank": rank, "task": task.id, "w": loaded["w"].to_local().tolist(), "step": loaded["step"].item(),
    "output": [m.name for m in task.models["output"]],
    "loads": [(ld.path, ld.snapshot_id) for ld in task._ctx.store.loads_by_task(task.id)],
}), flush=True)
dist.destroy_process_group()
'''


def run_group(tmp_path: Path, env: dict[str, str]) -> dict[int, dict]:
    """Both ranks, started together in tmp_path/work (they rendezvous); {rank: REPORT}."""
    return run_two_ranks(WORKER, tmp_path, tmp_path / "work", env)


def test_two_ranks_save_one_snapshot_per_save_and_link_loads_once(tmp_path: Path, child_env, autolog_home):
    require_framework("torch.distributed.checkpoint")
    from autolog import Model

    env = child_env()  # the test's AUTOLOG_HOME: this process reads what the workers recorded
    for name in LAUNCHER_VARIABLES:
        env.pop(name, None)
    work = tmp_path / "work"
    work.mkdir()
    train = run_group(tmp_path, env)
    assert [train[r]["w"] for r in (0, 1)] == [[2.0, 3.0, 4.0, 5.0], [6.0, 7.0, 8.0, 9.0]]  # arange(8) + 2

    # Only rank 0 recorded: one model, one snapshot per save, of the whole folder (both ranks' shards)
    [model] = Model.query_models(project_name="dcp")
    assert (model.name, model.framework, model.task) == ("ckpt", "PyTorch", train[0]["task"])
    snaps = model.snapshots
    assert [(s.seq, s.status) for s in snaps] == [(1, "stored"), (2, "stored")]
    assert set(_folder_files(work / "ckpt")) == {".metadata", "__0_0.distcp", "__1_0.distcp"}
    assert _folder_files(Path(model.get_local_copy(version=2))) == _folder_files(work / "ckpt")
    # The first snapshot is the whole first save (every shard written before rank 0's save returned)
    first = _dcp_load(model.get_local_copy(version=1), {"w": [0.0] * 8, "step": 0.0})
    assert first == {"w": [float(i + 1) for i in range(8)], "step": 1.0}
    # Four loads (two per rank) of the unchanged folder: one link, by rank 0, to the last save
    assert [ld[1] for ld in train[0]["loads"]] == [snaps[-1].id]
    assert train[1]["output"] == [] and train[1]["loads"] == []

    # Another task, a single process without a process group, loads it: linked to rank 0's snapshot
    whole = "loaded = {'w': torch.zeros(8), 'step': torch.tensor(0.0)}; dcp.load(loaded, checkpoint_id=path)"
    report = run_scenario(dataclasses.replace(CASES[0], load=whole, check=""), autolog_home, work, ["load"],
                          task_name="single")
    succeeded(report)
    [link] = report["models"]["loads"]
    assert link["snapshot_id"] == snaps[-1].id
    assert {m.task for m in Model.query_models(project_name="dcp")} == {train[0]["task"]}
