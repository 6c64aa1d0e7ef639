"""ONNX: onnx.save/load of a ModelProto, and PyTorch's ONNX export (torch.onnx.export, ONNXProgram.save).

Checked against onnx 1.23 and torch 2.13 (onnxscript 0.7 for the default exporter):
- onnx.save is onnx.save_model and onnx.load is onnx.load_model (one function under two public
  names, each patched where users reach it). f is a path or a file object; a proto saved to a
  file object (BytesIO) or loaded from bytes has no file to record.
- torch.onnx.export(model, args, f) with the default dynamo=True needs the onnxscript package
  (ModuleNotFoundError without it); it builds an ONNXProgram and calls ONNXProgram.save(f), which
  writes through onnx_ir.save and so onnx.save: the outer export call records it once. f=None writes
  nothing (the ONNXProgram is returned): nothing to record. dynamo=False calls the TorchScript
  exporter, which old code calls directly as torch.onnx.utils.export(model, args, f): it writes f
  itself. The user's own `program.save(path)` is a save of its own.
- External data: export's default external_data=True writes `<name of f>.data` next to f (also when
  it stays empty) and moves every initializer of more than 256 bytes into it (program.save(path)
  does so only past 2 GB); onnx.save_model(save_as_external_data=True) writes
  `location` (default: a new uuid name) relative to f's folder. Such a model is the .onnx file
  plus its data files (the tensors' external_data "location" entries): they are its `companions`,
  stored beside it in one snapshot. After onnx.save_model the caller's proto names them; an export
  writes `<f>.data`; a load returns a proto whose locations are cleared, so the saved file's own
  proto is read without its data (cheap: with external data the .onnx holds no weights; a file over
  LOAD_PARSE_LIMIT is taken to hold its weights inline and is not read twice).
"""
import os

from .spec import Arg, Call, Computed, Load, Save

LOAD_PARSE_LIMIT = 64 << 20


def _locations(proto, f) -> list[str]:
    """The external data files a ModelProto names, as paths next to f."""
    from onnx.external_data_helper import ExternalDataInfo, _get_all_tensors, uses_external_data

    folder = os.path.dirname(os.path.abspath(os.fspath(f)))
    names = {ExternalDataInfo(t).location for t in _get_all_tensors(proto) if uses_external_data(t)}
    return sorted(os.path.join(folder, n) for n in names if n)


def _saved_data(call: Call) -> list[str]:
    f, proto = call.arg(1, "f"), call.arg(0, "proto")
    if not isinstance(f, (str, os.PathLike)) or not hasattr(proto, "graph"):
        return []
    return [p for p in _locations(proto, f) if os.path.isfile(p)]


def _exported_data(index: int, name: str):
    def data(call: Call) -> list[str]:
        f = call.arg(index, name)
        if not isinstance(f, (str, os.PathLike)):
            return []
        path = os.fspath(f) + ".data"  # the exporter's one data file (written empty when nothing moved)
        return [path] if os.path.isfile(path) and os.path.getsize(path) > 0 else []
    return data


def _loaded_data(call: Call) -> list[str]:
    f = call.arg(0, "f")
    if not isinstance(f, (str, os.PathLike)) or os.path.getsize(f) > LOAD_PARSE_LIMIT:
        return []
    import onnx

    proto = onnx.load_model(f, load_external_data=False)  # called while recording: not recorded itself
    return [p for p in _locations(proto, f) if os.path.isfile(p)]


FRAMEWORK = "ONNX"
KEY = "onnx"
PATCHES = [
    Save("onnx", "save_model", path=Arg(1, "f"), companions=Computed(_saved_data)),
    Save("onnx", "save", path=Arg(1, "f"), companions=Computed(_saved_data)),
    Load("onnx", "load_model", path=Arg(0, "f"), companions=Computed(_loaded_data)),
    Load("onnx", "load", path=Arg(0, "f"), companions=Computed(_loaded_data)),
    Save("torch.onnx", "export", path=Arg(2, "f"), companions=Computed(_exported_data(2, "f"))),
    # torch.onnx.utils: the TorchScript exporter module
    Save("torch.onnx", "utils.export", path=Arg(2, "f"), companions=Computed(_exported_data(2, "f"))),
    Save("torch.onnx", "ONNXProgram.save", path=Arg(0, "destination"),
         companions=Computed(_exported_data(0, "destination"))),
]
