"""safetensors capture: save_file/load_file of torch tensors and of numpy arrays, through the conformance suite."""
from conformance import Case, make_tests

TORCH_SETUP = """
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1))
def step():
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1)
"""
NUMPY_SETUP = """
rng = np.random.default_rng(0)
weights = {"dense.kernel": rng.standard_normal((4, 3)).astype(np.float32),
           "dense.bias": np.zeros(3, dtype=np.float32)}
def step():
    for array in weights.values():
        array += 0.1
"""

CASES = [
    Case(
        id="safetensors.torch", requires="safetensors.torch", framework="safetensors", filename="model.safetensors",
        imports="import torch\nimport safetensors.torch", setup=TORCH_SETUP,
        save="step(); saved = safetensors.torch.save_file(model.state_dict(), path)",
        load="loaded = safetensors.torch.load_file(path)",
        check="loaded.keys() == model.state_dict().keys()"
              " and all(torch.equal(loaded[k], v) for k, v in model.state_dict().items())",
    ),
    Case(
        id="safetensors.numpy", requires="safetensors.numpy", framework="safetensors", filename="weights.safetensors",
        imports="import numpy as np\nimport safetensors.numpy", setup=NUMPY_SETUP,
        save="step(); saved = safetensors.numpy.save_file(weights, path)",
        load="loaded = safetensors.numpy.load_file(path)",
        check="loaded.keys() == weights.keys() and all(np.array_equal(loaded[k], v) for k, v in weights.items())",
    ),
]

(test_saves_are_snapshots, test_load_in_another_process_links_to_the_producer,
 test_logging_failures_never_reach_the_user, test_exceptions_pass_through_and_closed_task_records_nothing) = make_tests(CASES)
