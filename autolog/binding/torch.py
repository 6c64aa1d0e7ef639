"""PyTorch: torch.save/load, TorchScript, torch.export."""
from .spec import Arg, Load, Save

FRAMEWORK = "PyTorch"
KEY = "pytorch"
PATCHES = [
    Save("torch", "save", path=Arg(1, "f")),
    Load("torch", "load", path=Arg(0, "f")),
    Save("torch.jit", "save", path=Arg(1, "f")),
    Save("torch.jit", "ScriptModule.save", path=Arg(0, "f")),
    Save("torch.jit", "RecursiveScriptModule.save", path=Arg(0, "f")),  # overrides the one above
    Load("torch.jit", "load", path=Arg(0, "f")),
    Save("torch.export", "save", path=Arg(1, "f")),
    Load("torch.export", "load", path=Arg(0, "f")),
]
