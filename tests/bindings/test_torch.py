"""PyTorch capture: every way PyTorch writes or reads a model file, through the conformance suite."""
from conformance import Case, make_tests

IMPORTS = "import torch"
SETUP = """
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1))
example = torch.randn(2, 4)
def step():
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1)
"""
# torch.jit.script shares the parameters with `model`, so step() changes what the scripted module saves.
SCRIPTED = SETUP + "scripted = torch.jit.script(model)\n"
# The ExportedProgram's state_dict holds the model's own parameter tensors: step() changes it too.
EXPORTED = SETUP + "exported = torch.export.export(model, (example,))\n"

STATE_DICT_EQUAL = "all(torch.equal(loaded[k], v) for k, v in model.state_dict().items())"
SCRIPTED_EQUAL = (
    "all(torch.equal(loaded.state_dict()[k], v) for k, v in model.state_dict().items())"
    " and torch.equal(loaded(example), model(example))"
)


def torch_case(id: str, save: str, load: str, check: str, filename: str = "model.pt", setup: str = SETUP) -> Case:
    return Case(id=id, requires="torch", imports=IMPORTS, setup=setup, framework="PyTorch", filename=filename,
                save=save, load=load, check=check)


CASES = [
    torch_case(
        "torch.save-str",
        save="step(); saved = torch.save(model.state_dict(), path)",
        load="loaded = torch.load(path)",
        check=STATE_DICT_EQUAL,
    ),
    torch_case(
        "torch.save-pathlib",
        save="import pathlib; step(); saved = torch.save(model.state_dict(), pathlib.Path(path))",
        load="import pathlib; loaded = torch.load(pathlib.Path(path))",
        check=STATE_DICT_EQUAL,
        filename="model.pth",
    ),
    torch_case(
        "torch.save-file-object",
        save="step()\nwith open(path, 'wb') as f:\n    saved = torch.save(model.state_dict(), f)",
        load="with open(path, 'rb') as f:\n    loaded = torch.load(f)",
        check=STATE_DICT_EQUAL,
    ),
    torch_case(
        "torch.jit.save",
        setup=SCRIPTED,
        save="step(); saved = torch.jit.save(scripted, path)",
        load="loaded = torch.jit.load(path)",
        check=SCRIPTED_EQUAL,
    ),
    torch_case(
        "ScriptModule.save",
        setup=SCRIPTED,
        save="step(); saved = scripted.save(path)",
        load="loaded = torch.jit.load(path)",
        check=SCRIPTED_EQUAL,
    ),
    torch_case(
        "torch.export.save",
        setup=EXPORTED,
        save="step(); saved = torch.export.save(exported, path)",
        load="loaded = torch.export.load(path)",
        check="torch.equal(loaded.module()(example), model(example))",
        filename="model.pt2",
    ),
]

(test_saves_are_snapshots, test_load_in_another_process_links_to_the_producer,
 test_logging_failures_never_reach_the_user, test_exceptions_pass_through_and_closed_task_records_nothing) = make_tests(CASES)
