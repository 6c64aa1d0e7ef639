"""ONNX binding: onnx.save/load of a ModelProto, torch.onnx.export (default dynamo exporter and the
TorchScript one), ONNXProgram.save, and models saved with external data."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from conformance import Case, home_and_workdir, make_tests, run_scenario, succeeded

from frameworks import require_framework

from autolog.storage.hashing import file_digest

PROTO_IMPORTS = "import pathlib\nimport numpy as np\nimport onnx\nfrom onnx import TensorProto, helper, numpy_helper"
PROTO_SETUP = """
weights = np.arange(12, dtype=np.float32).reshape(4, 3)
model = None
def step():  # new weights each time: a different model
    global model
    weights[...] += 0.5
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "matmul",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
        initializer=[numpy_helper.from_array(weights, "w")])
    model = helper.make_model(graph)
"""
PROTO_CHECK = "loaded == model and np.array_equal(numpy_helper.to_array(loaded.graph.initializer[0]), weights)"

TORCH_IMPORTS = "import numpy as np\nimport onnx\nimport torch\nfrom onnx import numpy_helper"
TORCH_SETUP = """
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1)).eval()
inputs = (torch.randn(1, 4),)
def step():
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1)
def same_weights(loaded):  # initializers (small: inside the .onnx) are the model's state dict
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    arrays = {i.name: numpy_helper.to_array(i) for i in loaded.graph.initializer}
    return arrays.keys() == state.keys() and all(np.array_equal(a, state[k]) for k, a in arrays.items())
"""

CASES = [
    Case(
        id="onnx.save_model", requires="onnx", imports=PROTO_IMPORTS, setup=PROTO_SETUP,
        framework="ONNX", filename="matmul.onnx",
        save="step(); saved = onnx.save_model(model, path)",
        load="loaded = onnx.load_model(path)",
        check=PROTO_CHECK,
    ),
    Case(
        id="onnx.save-pathlike", requires="onnx", imports=PROTO_IMPORTS, setup=PROTO_SETUP,
        framework="ONNX", filename="matmul-pathlib.onnx",
        save="step(); saved = onnx.save(model, f=pathlib.Path(path))",
        load="loaded = onnx.load(pathlib.Path(path))",
        check=PROTO_CHECK,
    ),
]

(test_saves_are_snapshots, test_load_in_another_process_links_to_the_producer,
 test_logging_failures_never_reach_the_user, test_exceptions_pass_through_and_closed_task_records_nothing) = make_tests(CASES)

# The call users make: dynamo=True and external_data=True by default (the exporter needs onnxscript).
TORCH = Case(
    id="torch.onnx.export", requires="onnxscript", imports=TORCH_IMPORTS, setup=TORCH_SETUP,
    framework="ONNX", filename="mlp.onnx",
    save="step(); saved = torch.onnx.export(model, inputs, path)",
    load="loaded = onnx.load(path)",
    check="same_weights(loaded)",
)
(test_export_saves_are_snapshots, test_export_load_in_another_process_links_to_the_producer,
 test_export_logging_failures_never_reach_the_user, _) = make_tests([TORCH])


# -- ONNX specifics, each in a fresh interpreter ---------------------------------------------


def _digest(path: Path) -> str:
    return file_digest(path)


# onnx_ir writes the external data through a folder named by tempfile.mkdtemp: random in the message.
_DATA_TEMP_DIR = re.compile(r"(\.mlp\.onnx\.data\.)[a-z0-9_]{8}")


def test_export_exceptions_pass_through_and_closed_task_records_nothing(tmp_path: Path):
    """The conformance test of the same name, less the temporary folder's random name."""
    require_framework(TORCH.requires)
    home, work = home_and_workdir(tmp_path)
    report = run_scenario(TORCH, home, work, ["bad_save", "close", "save", "load"], before_init=["bad_save"])
    [plain] = report["plain"]["errors"]
    [error] = report["autolog"]["errors"]  # only the export into a missing folder failed
    assert error["type"] == plain["type"] == "NotADirectoryError"
    assert _DATA_TEMP_DIR.sub(r"\1X", error["message"]) == _DATA_TEMP_DIR.sub(r"\1X", plain["message"])
    assert report["models"]["output"] == [] and report["models"]["loads"] == []
    assert all(report["autolog"]["checks"])


# export(f=None) writes nothing: the user's program.save(path) is the save. The TorchScript exporter writes
# legacy.onnx (dynamo=False) and, called by its old name torch.onnx.utils.export, torchscript.onnx.
EXPORTS = """
step()
program = torch.onnx.export(model, inputs)
saved = program.save(path)
torch.onnx.export(model, inputs, os.path.join(os.path.dirname(path), "legacy.onnx"), dynamo=False)
torch.onnx.utils.export(model, inputs, os.path.join(os.path.dirname(path), "torchscript.onnx"))
"""
LOADS = """
loaded = onnx.load(path)
onnx.load(os.path.join(os.path.dirname(path), "legacy.onnx"))
onnx.load(os.path.join(os.path.dirname(path), "torchscript.onnx"))
"""


@pytest.mark.parametrize("import_first", [True, False], ids=["imported-before-init", "imported-after-init"])
def test_each_export_is_one_snapshot(import_first: bool, tmp_path: Path):
    require_framework("onnxscript")
    home, work = home_and_workdir(tmp_path)
    case = dataclasses.replace(TORCH, imports=TORCH_IMPORTS + "\nimport os", save=EXPORTS, load=LOADS)
    report = run_scenario(case, home, work, ["save", "save", "load"], import_first=import_first)
    succeeded(report)
    # export's own ONNXProgram.save and onnx.save are not saves of their own: one snapshot per call
    models = {m["name"]: m for m in report["models"]["output"]}
    assert sorted(models) == ["legacy.onnx", "mlp.onnx", "torchscript.onnx"]
    links = {Path(ld["path"]).name: ld["snapshot_id"] for ld in report["models"]["loads"]}
    for name, model in models.items():
        assert model["framework"] == "ONNX"
        assert [(s["seq"], s["status"]) for s in model["snapshots"]] == [(1, "stored"), (2, "stored")]
        assert model["snapshots"][-1]["digest"] == _digest(work / name) == model["local_copy_digest"]
        assert links[name] == model["snapshots"][-1]["id"]


EXTERNAL = dataclasses.replace(
    CASES[0], id="external data", filename="external.onnx",
    # every initializer in weights.data, next to external.onnx (onnx refuses to append to an existing one)
    save="step(); saved = onnx.save_model(model, path, save_as_external_data=True, location='weights.data',"
         " size_threshold=0)",
    check="np.array_equal(numpy_helper.to_array(loaded.graph.initializer[0]), weights)",
)


def test_a_model_with_external_data_is_one_snapshot_of_both_files_and_its_load_links(tmp_path: Path):
    require_framework("onnx")
    home, work = home_and_workdir(tmp_path)
    producer = run_scenario(EXTERNAL, home, work, ["save", "load"], task_name="export")
    succeeded(producer)
    assert (work / "weights.data").stat().st_size == 48  # 12 float32: the weights really are outside
    [model] = producer["models"]["output"]
    [snap] = model["snapshots"]
    assert snap["status"] == "stored"
    assert {f["name"]: f["digest"] for f in snap["files"]} == {
        "external.onnx": _digest(work / "external.onnx"), "weights.data": _digest(work / "weights.data")}
    consumer = run_scenario(EXTERNAL, home, work, ["load"], task_name="serve")
    succeeded(consumer)
    [link] = consumer["models"]["loads"]
    assert link["snapshot_id"] == snap["id"]


@pytest.mark.parametrize("how", ["onnx.save_model", "torch.onnx.export"])
def test_external_data_is_part_of_the_snapshot(how: str, tmp_path: Path, autolog_home: Path):
    onnx = require_framework("onnx")
    from autolog import Model

    if how == "onnx.save_model":
        case = EXTERNAL
    else:  # a 64x64 weight (16 KiB): the default export moves it into mlp.onnx.data
        require_framework("onnxscript")
        case = dataclasses.replace(TORCH, setup=TORCH_SETUP.replace("Linear(4, 3)", "Linear(4, 64)").replace(
            "Linear(3, 1)", "Linear(64, 64)"), check="")
    _, work = home_and_workdir(tmp_path)
    report = run_scenario(case, autolog_home, work, ["save"])  # its task closed: the snapshot is stored
    succeeded(report)
    [model] = report["models"]["output"]
    [snap] = Model(model["id"]).snapshots  # read now: its task is closed, the snapshot stored
    assert len(snap.files) == 2, snap.files  # the .onnx and its data file
    stored = onnx.load(Model(model["id"]).get_local_copy())  # reads the external data next to the stored copy
    assert stored == onnx.load(work / case.filename)
