"""Two machines share a PostgreSQL database and a bucket, and nothing else (each its own AUTOLOG_HOME,
config file, cache and disk): B finds A's run by name, fetches A's newest model from S3, loads it with
the framework, and B's loads are linked to A's snapshots, also for a file copied from A's disk by hand."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from team_helpers import Team, assert_stored_on_s3, last_json, run_script, sha256_bytes, team  # noqa: F401 - fixture

from autolog import Model, Task

pytestmark = [pytest.mark.postgres, pytest.mark.s3]

MACHINE_A = """
import hashlib, json, sys
import numpy as np, torch, xgboost as xgb
from autolog import Task
from autolog.storage.hashing import file_digest

work = sys.argv[1]
task = Task.init(project_name="team", task_name="train", output_uri=True)
torch.manual_seed(0)
net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
opt = torch.optim.SGD(net.parameters(), lr=0.1)
x, y = torch.randn(32, 4), torch.randn(32, 1)
for _ in range(5):
    opt.zero_grad()
    torch.nn.functional.mse_loss(net(x), y).backward()
    opt.step()
rng = np.random.default_rng(0)
features, labels = rng.random((40, 4)), rng.random(40)
booster = xgb.train({"max_depth": 2, "nthread": 1}, xgb.DMatrix(features, label=labels), num_boost_round=3)
booster.save_model(f"{work}/booster.json")
torch.save(net.state_dict(), f"{work}/model.pt")  # saved last: models["output"][-1]
task.close()
probe = torch.ones(2, 4)
print(json.dumps({
    "task_id": task.id,
    "sha256": {n: hashlib.sha256(open(f"{work}/{n}", "rb").read()).hexdigest() for n in ("model.pt", "booster.json")},
    "digest": {n: file_digest(f"{work}/{n}") for n in ("model.pt", "booster.json")},
    "torch_out": net(probe).tolist(),
    "xgb_out": booster.predict(xgb.DMatrix(features[:3])).tolist(),
}))
"""

MACHINE_B = """
import json, shutil, sys
import numpy as np, torch, xgboost as xgb
from autolog import Task

machine_a_file, work = sys.argv[1], sys.argv[2]
task = Task.init(project_name="team", task_name="evaluate")
prev = Task.get_task(project_name="team", task_name="train")
weights = prev.models["output"][-1].get_local_copy()
net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
net.load_state_dict(torch.load(weights, weights_only=True))
booster = xgb.Booster(model_file=prev.models["output"]["booster.json"].get_local_copy())
features = np.random.default_rng(0).random((40, 4))
evaluated = {"task_id": task.id, "train_id": prev.id, "weights": weights, "torch_out": net(torch.ones(2, 4)).tolist(),
             "xgb_out": booster.predict(xgb.DMatrix(features[:3])).tolist()}
task.close()

copied = Task.init(project_name="team", task_name="copied by hand")
by_hand = shutil.copy(machine_a_file, f"{work}/copied-from-a.pt")  # a new path, a new inode
torch.load(by_hand, weights_only=True)
copied.close()
print(json.dumps(dict(evaluated, copied_id=copied.id)))
"""


def machine(team: Team, root: Path, name: str) -> tuple[dict[str, str], Path]:
    """A machine: its own AUTOLOG_HOME with an autolog.toml naming the shared database and bucket (the
    config file, not environment variables), and its own working folder."""
    home, work = root / name / "home", root / name / "work"
    home.mkdir(parents=True)
    work.mkdir()
    (home / "autolog.toml").write_text(f"[sdk.development]\ndefault_output_uri = {json.dumps(team.output_uri)}\n"
                                       f"[db]\nurl = {json.dumps(team.db_url)}\n")
    env = team.env(home=home)
    del env["AUTOLOG_DB_URL"], env["AUTOLOG_DEFAULT_OUTPUT_URI"]
    return env, work


def test_machine_b_loads_machine_a_model_from_s3_and_links_it(team, tmp_path):
    env_a, work_a = machine(team, tmp_path, "a")
    env_b, work_b = machine(team, tmp_path, "b")

    trained = last_json(run_script(MACHINE_A, work_a, env=env_a, cwd=work_a, name="train"))
    evaluated = last_json(run_script(MACHINE_B, work_a / "model.pt", work_b, env=env_b, cwd=work_b, name="evaluate"))

    assert evaluated["train_id"] == trained["task_id"]
    assert evaluated["torch_out"] == trained["torch_out"], "B's torch model does not compute what A's did"
    assert evaluated["xgb_out"] == pytest.approx(trained["xgb_out"])
    assert Path(evaluated["weights"]).is_relative_to(tmp_path / "b" / "home"), "B must fetch into its own cache"
    assert sha256_bytes(Path(evaluated["weights"]).read_bytes()) == trained["sha256"]["model.pt"]

    produced = {m.name: m for m in Task.get_task(task_id=trained["task_id"]).models["output"]}
    assert list(produced) == ["booster.json", "model.pt"]
    assert produced["booster.json"].framework == "XGBoost" and produced["model.pt"].framework == "PyTorch"
    snapshot_of = {}
    for name, model in produced.items():
        [snap] = model.snapshots
        assert_stored_on_s3(snap, team, expected_digest=trained["digest"][name])
        snapshot_of[model.id] = snap.id

    store = Task.get_task(task_id=evaluated["task_id"])._ctx.store
    loads = store.loads_by_task(evaluated["task_id"])
    assert {ld.model_id: ld.snapshot_id for ld in loads} == snapshot_of, "B's loads must point at A's snapshots"
    [by_hand] = store.loads_by_task(evaluated["copied_id"])
    assert by_hand.snapshot_id == snapshot_of[produced["model.pt"].id]
    assert by_hand.path == str(work_b / "copied-from-a.pt")
    assert Model(produced["model.pt"].id).loaded_by == [evaluated["task_id"], evaluated["copied_id"]]
    assert [m.name for m in Task.get_task(task_id=evaluated["copied_id"]).models["input"]] == ["model.pt"]
    for name in ("a", "b"):  # neither machine kept a database or objects of its own
        home = tmp_path / name / "home"
        assert not (home / "autolog.db").exists() and not (home / "storage").exists()
