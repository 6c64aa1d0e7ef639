"""safetensors files written from torch or numpy tensors."""
from .spec import Arg, Load, Save

FRAMEWORK = "safetensors"
KEY = "safetensors"
PATCHES = [
    Save("safetensors.torch", "save_file", path=Arg(1, "filename")),
    Load("safetensors.torch", "load_file", path=Arg(0, "filename")),
    Save("safetensors.numpy", "save_file", path=Arg(1, "filename")),
    Load("safetensors.numpy", "load_file", path=Arg(0, "filename")),
]
