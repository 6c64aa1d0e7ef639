"""Only the global rank 0 records, also when the rank is known only to torch.distributed: a launcher
other than torchrun (mp.spawn, a hand-made one) calls init_process_group(rank=...) and sets no RANK
variable. (test_capture_behaviour.py covers the RANK variable.)

Two real processes form a gloo group through a file rendezvous (no port to pick);
each runs Task.init at the top, as scripts do, saves and loads model<rank>.pt, and prints one REPORT
line: what the store holds about its own task once it is closed.
"""
from __future__ import annotations

import os
from pathlib import Path

from frameworks import require_framework
from ranks import run_two_ranks

torch = require_framework("torch")
dist = require_framework("torch.distributed")

# What launchers set to tell a process its rank: none of it reaches the workers.
LAUNCHER_VARIABLES = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK", "MASTER_ADDR",
                      "MASTER_PORT", "TORCHELASTIC_RUN_ID")

WORKER = '''
import json, os, sys

rank, init_file = int(sys.argv[1]), sys.argv[2]
assert "RANK" not in os.environ

import torch
import torch.distributed as dist
from autolog import Task

task = Task.init(project_name="distributed", task_name=f"rank {rank}", output_uri=True)
dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
assert dist.get_rank() == rank
name = f"model{rank}.pt"
torch.save({"w": torch.full((3,), float(rank))}, name)
loaded = torch.load(name)["w"][0].item()
dist.barrier()  # both saved and loaded before either closes its task
task.close()
loads = task._ctx.store.loads_by_task(task.id)
print("REPORT " + json.dumps({
    "rank": rank, "task": task.id, "loaded": loaded,
    "output": sorted(os.path.basename(m.source_path) for m in task.models["output"]),
    "loads": sorted(os.path.basename(ld.path) for ld in loads),
}), flush=True)
dist.destroy_process_group()
'''


def run_group(tmp_path: Path, env: dict[str, str]) -> dict[int, dict]:
    """Both ranks, started together (they rendezvous) in tmp_path/work; {rank: REPORT}."""
    work = tmp_path / "work"
    work.mkdir()
    return run_two_ranks(WORKER, tmp_path, work, env)


def test_only_torch_distributed_rank_zero_records_without_the_rank_variable(tmp_path, child_env):
    from autolog import Model

    env = child_env()
    for name in LAUNCHER_VARIABLES:
        env.pop(name, None)
    reports = run_group(tmp_path, env)

    assert [reports[r]["loaded"] for r in (0, 1)] == [0.0, 1.0]  # both saves and loads worked
    assert (tmp_path / "work" / "model1.pt").is_file()
    assert reports[0]["output"] == ["model0.pt"] and reports[0]["loads"] == ["model0.pt"]
    assert reports[1]["output"] == [] and reports[1]["loads"] == [], "rank 1 recorded its save or load"
    # Nothing in the whole store comes from rank 1: no model of model1.pt under any task.
    models = Model.query_models(project_name="distributed")
    assert sorted(os.path.basename(m.source_path) for m in models) == ["model0.pt"]
    assert {m.task for m in models} == {reports[0]["task"]}
