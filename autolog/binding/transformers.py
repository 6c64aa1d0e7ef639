"""Hugging Face Transformers: save_pretrained folders, Trainer checkpoints, from_pretrained loads.

Checked against transformers 5.24 (with accelerate 1.15, torch 2.13):
- A save_pretrained folder is written by several calls (model, then tokenizer, processor, config...):
  every save_pretrained is `settle=True`, so the folder becomes ONE snapshot of all its files, named
  after the folder. PreTrainedModel.save_pretrained writes the config, the generation config and the
  weights through safetensors' save_file (all nested, so silent). It writes nothing when
  `is_main_process=False` (accelerate's pattern on the other ranks), nor into an existing file (it
  logs an error and returns): neither is recorded.
- TokenizersBackend (= PreTrainedTokenizerFast) and the video processors override save_pretrained
  (calling super() for the usual formats): both levels are declared, the outer one records.
- Trainer._save_checkpoint(model, trial) writes the whole `<run_dir>/checkpoint-<global_step>`
  folder in one call (save_model -> save_pretrained + tokenizer + training_args.bin, optimizer and
  scheduler, rng state, trainer_state.json), then deletes the folders over save_total_limit: one
  snapshot per call, of one model per run_dir (output_dir, or output_dir/run-<trial> in a
  hyperparameter search), iteration = global step. The snapshot's files are opened before the call
  returns to the training loop, so a folder deleted by a later rotation is still stored.
- Trainer.save_model(output_dir=None) (the user's final save; inside _save_checkpoint it is nested)
  writes args.output_dir by default: that folder is the model its checkpoints are snapshots of, so
  the final save is that model's newest snapshot (into another folder it is a model of that folder).
  The Trainer's own entries in output_dir (checkpoint-*, TensorBoard's `runs`, what save_metrics and
  save_state write: `*_results.json`, trainer_state.json) are not part of it, nor the model card
  create_model_card writes after it (it takes the final save's snapshot first if that still waits
  to settle; Trainer.push_to_hub saves the model into output_dir, writes the card, then uploads), nor
  the card an earlier run wrote there (a run again into the same output_dir).
  A from_pretrained of output_dir that holds those files too is still that save (`beside`).
- Resuming (train(resume_from_checkpoint=...)) reads one checkpoint folder through four narrow
  methods (weights, optimizer and scheduler, grad scaler, rng state; the rng state only once the
  loop starts): each is a load of the whole folder, so the task gets ONE input, the checkpoint's
  snapshot (the recorder links an unchanged folder once). train() itself is not patched: a load
  around the loop would silence every checkpoint save inside it. _load_best_model
  (load_best_model_at_end) is a load of the best checkpoint folder.
- from_pretrained is recorded for a local folder (or file), plus `subfolder=`; a hub id is not
  recorded. The Auto classes (AutoModel*, AutoTokenizer, AutoProcessor, AutoFeatureExtractor,
  AutoImageProcessor) read the folder's config, then call the concrete class's from_pretrained:
  that call records. (Each AutoModel* class holds its own copy of _BaseAutoModelClass.from_pretrained,
  made by auto_class_update's copy_func: patching the base one would not reach them.) A processor's
  from_pretrained loads its tokenizer and feature extractor inside: one load. Config-only loads
  (AutoConfig, GenerationConfig) are not recorded: a config is not a model.
- PushToHubMixin.push_to_hub calls save_pretrained into a tempfile.TemporaryDirectory, uploads it
  and deletes it: not a folder of the user's. Each class that has push_to_hub holds its own copy
  (`Cls.push_to_hub = copy_func(Cls.push_to_hub)`, for its docstring), so each is declared.
"""
from __future__ import annotations

import os
from typing import Any

from .spec import Arg, Call, Computed, Load, Save, Writes

FRAMEWORK = "Hugging Face Transformers"
KEY = "transformers"

# What a Trainer writes into its output_dir besides the model: its step checkpoints and TensorBoard's
# default log folder. A save_pretrained into output_dir (trainer.save_model(), or the user's own
# model/tokenizer save_pretrained there) is the model's files only.
TRAINER_FOLDERS = ("checkpoint-*", "runs")
# And the files save_metrics and save_state write there (an earlier run's too, rewritten in place):
# never part of a save_pretrained snapshot. A checkpoint-N folder's trainer_state.json is part of it.
TRAINER_LOGS = ("*_results.json", "trainer_state.json")
# What a folder loaded with from_pretrained may have gained since its save and still be that save:
# those logs, and the model card (create_model_card writes it after the final save is taken).
GAINED_AFTER_SAVE = TRAINER_LOGS + ("README.md",)


def _path(value: Any) -> str | None:
    return os.fspath(value) if isinstance(value, (str, os.PathLike)) else None


def _save_folder(call: Call) -> str | None:
    """save_pretrained(save_directory): the folder, unless it is an existing file (nothing is written)."""
    folder = _path(call.arg(0, "save_directory"))
    return None if folder is None or os.path.isfile(folder) else folder


def _model_save_folder(call: Call) -> str | None:
    """PreTrainedModel.save_pretrained writes nothing where is_main_process is False."""
    return _save_folder(call) if call.arg(1, "is_main_process", True) else None


def _local_pretrained(call: Call) -> str | None:
    """from_pretrained(name_or_path, subfolder=...): the local folder or file it reads; None for a hub id."""
    source = _path(call.arg(0, "pretrained_model_name_or_path"))
    if source is None:
        return None
    subfolder = call.kwargs.get("subfolder")
    if subfolder:
        source = os.path.join(source, subfolder)
    return source if os.path.exists(source) else None


def _checkpoint_folder(call: Call) -> str:
    trainer = call.instance
    run_dir = trainer._get_output_dir(trial=call.arg(1, "trial"))
    return os.path.join(run_dir, f"checkpoint-{trainer.state.global_step}")


def _run_dir(call: Call) -> str:
    return call.instance._get_output_dir(trial=call.arg(1, "trial"))


def _global_step(call: Call) -> int:
    return call.instance.state.global_step


def _trainer_save_folder(call: Call) -> str | None:
    return _path(call.arg(0, "output_dir")) or _path(call.instance.args.output_dir)


def _model_card(call: Call) -> str | None:
    folder = _path(call.instance.args.output_dir)
    return None if folder is None else os.path.join(folder, "README.md")


def _best_checkpoint(call: Call) -> str | None:
    return call.instance.state.best_model_checkpoint


def _nothing(call: Call) -> None:
    return None


def _pretrained_save(module: str, target: str, path: Computed = Computed(_save_folder)):
    return Save(module, target, path=path, exclude=TRAINER_FOLDERS + TRAINER_LOGS, settle=True)


def _pretrained_load(module: str, target: str):
    # A Trainer's output_dir holds its final save_model() next to its checkpoint-* folders: what
    # from_pretrained reads (and that snapshot holds) is the folder without them.
    return Load(module, target, path=Computed(_local_pretrained), exclude=TRAINER_FOLDERS, beside=GAINED_AFTER_SAVE)


def _push(module: str, cls: str):
    return Save(module, f"{cls}.push_to_hub", path=Computed(_nothing))


PATCHES = [
    # One folder, written by one call or several (settle): the model, its tokenizer and processors.
    _pretrained_save("transformers.modeling_utils", "PreTrainedModel.save_pretrained", Computed(_model_save_folder)),
    _pretrained_save("transformers.tokenization_utils_base", "PreTrainedTokenizerBase.save_pretrained"),
    _pretrained_save("transformers.tokenization_utils_tokenizers", "TokenizersBackend.save_pretrained"),
    _pretrained_save("transformers.processing_utils", "ProcessorMixin.save_pretrained"),
    _pretrained_save("transformers.feature_extraction_utils", "FeatureExtractionMixin.save_pretrained"),
    _pretrained_save("transformers.image_processing_base", "ImageProcessingMixin.save_pretrained"),
    _pretrained_save("transformers.video_processing_utils", "VideoProcessorMixin.save_pretrained"),
    _pretrained_save("transformers.configuration_utils", "PreTrainedConfig.save_pretrained"),
    _pretrained_save("transformers.generation.configuration_utils", "GenerationConfig.save_pretrained"),
    # Trainer: every checkpoint-<step> folder of one run_dir is a snapshot of one model.
    Save("transformers.trainer", "Trainer._save_checkpoint", path=Computed(_checkpoint_folder),
         model_path=Computed(_run_dir), iteration=Computed(_global_step)),
    Save("transformers.trainer", "Trainer.save_model", path=Computed(_trainer_save_folder),
         iteration=Computed(_global_step), exclude=TRAINER_FOLDERS + GAINED_AFTER_SAVE, settle=True),
    # The model card is written after the final save (also by Trainer.push_to_hub): not that model's.
    Writes("transformers.trainer", "Trainer.create_model_card", path=Computed(_model_card)),
    # push_to_hub() saves into a temporary folder, uploads it and deletes it: recording nothing itself,
    # this outer call keeps the save_pretrained inside it from recording a folder about to vanish.
    _push("transformers.utils.hub", "PushToHubMixin"),
    _push("transformers.modeling_utils", "PreTrainedModel"),
    _push("transformers.tokenization_utils_base", "PreTrainedTokenizerBase"),
    _push("transformers.processing_utils", "ProcessorMixin"),
    _push("transformers.feature_extraction_utils", "FeatureExtractionMixin"),
    _push("transformers.image_processing_base", "ImageProcessingMixin"),
    _push("transformers.video_processing_utils", "VideoProcessorMixin"),
    _push("transformers.configuration_utils", "PreTrainedConfig"),
    _push("transformers.pipelines.base", "Pipeline"),
    # Resuming reads one checkpoint folder in narrow steps: each is a load of that folder (one input).
    Load("transformers.trainer", "Trainer._load_from_checkpoint", path=Arg(0, "resume_from_checkpoint")),
    Load("transformers.trainer", "Trainer._load_optimizer_and_scheduler", path=Arg(0, "checkpoint")),
    Load("transformers.trainer", "Trainer._load_scaler", path=Arg(0, "checkpoint")),
    Load("transformers.trainer", "Trainer._load_rng_state", path=Arg(0, "checkpoint")),
    Load("transformers.trainer", "Trainer._load_best_model", path=Computed(_best_checkpoint)),
    # from_pretrained of a local folder (the Auto classes call these inside).
    _pretrained_load("transformers.modeling_utils", "PreTrainedModel.from_pretrained"),
    _pretrained_load("transformers.tokenization_utils_base", "PreTrainedTokenizerBase.from_pretrained"),
    _pretrained_load("transformers.processing_utils", "ProcessorMixin.from_pretrained"),
    _pretrained_load("transformers.feature_extraction_utils", "FeatureExtractionMixin.from_pretrained"),
    _pretrained_load("transformers.image_processing_base", "ImageProcessingMixin.from_pretrained"),
    _pretrained_load("transformers.video_processing_utils", "VideoProcessorMixin.from_pretrained"),
]
