"""torch.distributed.checkpoint (DCP): one snapshot of a checkpoint folder, every rank's shards included.

Checked against torch 2.13 (gloo on CPU, and a single process):
- dcp.save(state_dict, *, checkpoint_id=None, storage_writer=None, ...) writes a folder: one
  `__<rank>_<n>.distcp` file per rank and a `.metadata` file. Every rank writes its own files,
  then rank 0 gathers all ranks' write results (so every shard is written), writes `.metadata`
  (temp file + rename) and broadcasts: rank 0's save returns only when the whole folder is
  complete. Only rank 0 records (the generic wrapper), so the folder is one snapshot, taken once.
  The other ranks cannot write into the folder before rank 0 joined the save's first collective,
  which it does after the fence: a save never overwrites a snapshot not yet read.
- Without a process group (or no_dist=True) it saves in this process alone: the same folder.
- The folder is checkpoint_id, else the storage writer's `path` (FileSystemWriter); a writer with
  no path (or a URL) has no local folder to record. save_state_dict(state_dict, storage_writer)
  (deprecated) writes the same way; load / load_state_dict mirror them with a storage reader.
- Inside a save, the writer calls torch.save(tensor, stream) on an unnamed stream wrapper, also
  from its own threads (thread_count > 1): no path, nothing recorded.
- async_save is not patched: it stages the state dict, then calls dcp.save (the module attribute,
  patched here) in its executor thread, which records the folder once it is complete.
"""
from .spec import Call, Computed, Load, Save

FRAMEWORK = "PyTorch"
KEY = "pytorch"


def _folder(call: Call, storage_name: str):
    checkpoint_id = call.kwargs.get("checkpoint_id")
    if checkpoint_id is not None:  # DCP resets the storage to it
        return checkpoint_id
    return getattr(call.arg(1, storage_name), "path", None)


def _written(call: Call):
    return _folder(call, "storage_writer")


def _read(call: Call):
    return _folder(call, "storage_reader")


PATCHES = [
    Save("torch.distributed.checkpoint", "save", path=Computed(_written)),
    Save("torch.distributed.checkpoint", "save_state_dict", path=Computed(_written)),
    Load("torch.distributed.checkpoint", "load", path=Computed(_read)),
    Load("torch.distributed.checkpoint", "load_state_dict", path=Computed(_read)),
]
