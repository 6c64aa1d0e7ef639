"""Lineage is by content, not by path: a load links the snapshot holding the bytes it read. A file that
was overwritten while no task ran is no longer what its last save stored, even at the same path.

Each task runs in its own interpreter through the conformance scenario (as the cross-process lineage
test of the conformance suite does); the overwrites between them are plain Python file writes.
"""
from __future__ import annotations

import io
from pathlib import Path

import pytest

from conformance import Case, run_scenario

from autolog.storage.hashing import bytes_digest

torch = pytest.importorskip("torch")

CASE = Case(
    id="torch.save", requires="torch", imports="import torch", framework="PyTorch", filename="x.pt",
    setup="""
torch.manual_seed(0)
model = torch.nn.Linear(4, 3)
def step():
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1)
""",
    save="step(); saved = torch.save(model.state_dict(), path)",
    load="loaded = torch.load(path)",
)


def _overwrite(path: Path, data: bytes) -> None:
    """Rewrite the file without autolog (no task runs, nothing captures it)."""
    with open(path, "wb") as f:
        f.write(data)


def _other_weights() -> bytes:
    """Loadable weights no task ever saved (another shape: not even the size matches)."""
    buf = io.BytesIO()
    torch.save(torch.nn.Linear(5, 2).state_dict(), buf)
    return buf.getvalue()


def _digest(data: bytes) -> str:
    return bytes_digest(data)


def _saved_by_a(home: Path, work: Path, steps: list[str]):
    """Task A runs the steps and exits; its output model and snapshots as the store holds them now."""
    from autolog import Model

    [produced] = run_scenario(CASE, home, work, steps, task_name="A")["models"]["output"]
    model = Model(produced["id"])
    assert model.origin == "capture" and all(s.status == "stored" for s in model.snapshots)
    return model, model.snapshots


def test_a_load_of_a_file_overwritten_since_its_last_save_is_an_import(autolog_home, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    produced, [stale] = _saved_by_a(autolog_home, work, ["save"])
    assert _digest((work / "x.pt").read_bytes()) == stale.digest

    new_bytes = _other_weights()
    _overwrite(work / "x.pt", new_bytes)
    assert _digest(new_bytes) != stale.digest

    consumer = run_scenario(CASE, autolog_home, work, ["load"], task_name="B")
    assert consumer["autolog"]["errors"] == []
    [link] = consumer["models"]["loads"]
    assert link["snapshot_id"] != stale.id, "B's load was linked to A's snapshot of bytes no longer in x.pt"
    [model] = consumer["models"]["input"]
    assert (model["origin"], model["task"]) == ("imported", None)
    assert model["id"] != produced.id
    assert [s["digest"] for s in model["snapshots"]] == [_digest(new_bytes)]
    assert link["snapshot_id"] == model["snapshots"][0]["id"]


def test_a_load_of_an_older_save_restored_to_the_path_links_that_save(autolog_home, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    produced, (first, second) = _saved_by_a(autolog_home, work, ["save", "save"])
    assert first.digest != second.digest
    assert _digest((work / "x.pt").read_bytes()) == second.digest

    # The first checkpoint copied back over the path (the newest save of x.pt holds other bytes).
    restored = Path(produced.get_local_copy(version=1)).read_bytes()
    assert _digest(restored) == first.digest
    _overwrite(work / "x.pt", restored)

    consumer = run_scenario(CASE, autolog_home, work, ["load"], task_name="B")
    assert consumer["autolog"]["errors"] == []
    [link] = consumer["models"]["loads"]
    assert link["snapshot_id"] == first.id, "linked the path's newest save, not the one holding the bytes"
    [model] = consumer["models"]["input"]
    assert model["id"] == produced.id
