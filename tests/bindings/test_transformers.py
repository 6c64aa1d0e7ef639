"""Hugging Face Transformers binding: save_pretrained folders, Trainer checkpoints, from_pretrained loads.

Everything runs on tiny models built from configs in code, with a word-level tokenizer defined in code,
offline (HF_HUB_OFFLINE=1): nothing is downloaded. Each scenario is a fresh interpreter, with
transformers imported before and after Task.init().

One training run per import order (the `trained` fixture) is shared by the tests that read it and by
the ones that load what it saved, in other processes, into the same store.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conformance import Case, make_tests

from frameworks import require_framework

from autolog.storage.hashing import file_digest

REPO = Path(__file__).resolve().parents[2]
FRAMEWORK = "Hugging Face Transformers"

# A BERT classifier of a few hundred weights and a word-level tokenizer over a dozen words.
TINY = '''
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import (AutoModel, AutoModelForSequenceClassification, AutoTokenizer, BertConfig,
                          BertForSequenceClassification, GenerationConfig, PreTrainedTokenizerFast, Trainer,
                          TrainingArguments, Wav2Vec2FeatureExtractor)

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "good", "bad", "movie", "film", "great", "awful", "not", "very"]

def tiny_tokenizer():
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                   cls_token="[CLS]", sep_token="[SEP]")

def tiny_model():
    torch.manual_seed(0)
    return BertForSequenceClassification(BertConfig(
        vocab_size=len(WORDS), hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8,
        max_position_embeddings=16, num_labels=2))

def tiny_data(tok):
    texts = ["good movie", "bad film", "great film", "awful movie", "very good", "not good"] * 2
    enc = tok(texts, padding="max_length", max_length=6)
    return [{"input_ids": ids, "attention_mask": mask, "labels": int(i % 2 == 0)}
            for i, (ids, mask) in enumerate(zip(enc["input_ids"], enc["attention_mask"]))]

def training_args(output_dir, **kw):
    return TrainingArguments(output_dir=output_dir, report_to=[], use_cpu=True, per_device_train_batch_size=4,
                             logging_strategy="no", disable_tqdm=True, seed=0, **kw)

def same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
'''

INIT = '''
import json, os
from autolog import Task
task = Task.init(project_name="hf", task_name=TASK_NAME, output_uri=True)
report = {"task": task.id}
'''

DONE = '''
task.close()
print(json.dumps(report))
'''

# -- the conformance suite: model.save_pretrained(folder), from_pretrained(folder) ------------------
# (a folder written by several calls, tokenizers and Auto classes: the scenarios below)

CASES = [
    Case(
        id="transformers.save_pretrained", requires="transformers", imports=TINY,
        setup="model = tiny_model()\n"
              "def step():\n"
              "    with torch.no_grad():\n"
              "        for p in model.parameters():\n"
              "            p.add_(0.1)\n",
        framework=FRAMEWORK, filename="tiny-bert",
        save="step(); saved = model.save_pretrained(path)",
        load="loaded = AutoModelForSequenceClassification.from_pretrained(path)",
        check="same_weights(loaded, model)",
    ),
]

(test_saves_are_snapshots, test_load_in_another_process_links_to_the_producer,
 test_logging_failures_never_reach_the_user, test_exceptions_pass_through_and_closed_task_records_nothing) = make_tests(CASES)


# -- scenarios in fresh interpreters --------------------------------------------------------------

IMPORT_ORDERS = ["imported-before-init", "imported-after-init"]


def run_scenario(body: str, task_name: str, import_first: bool, home: Path, cwd: Path) -> dict:
    """body runs after Task.init with the tiny model's helpers, transformers imported before or after init."""
    script = "\n".join([f"TASK_NAME = {task_name!r}", TINY if import_first else "", INIT,
                        "" if import_first else TINY, body, DONE])
    env = dict(os.environ)
    env.update(AUTOLOG_HOME=str(home), AUTOLOG_STRICT="1", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    for name in ("AUTOLOG_TASK_ID", "AUTOLOG_TASK_PID", "AUTOLOG_CONFIG", "AUTOLOG_DB_URL"):
        env.pop(name, None)
    proc = subprocess.run([sys.executable, "-c", script], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, f"{task_name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    # a recording error in a background thread (a settled folder, strict mode) does not fail the script
    assert "Traceback" not in proc.stderr and "was not logged" not in proc.stderr, proc.stderr[-6000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


# A model and tokenizer pushed to a (fake) Hub, then saved into one folder before training; then a
# Trainer run: checkpoints every 2 steps (save_total_limit=1 deletes the older ones), the best one
# loaded at the end, the final save_model() into output_dir.
TRAIN = '''
import types
import safetensors.torch, transformers.modeling_utils, transformers.utils.hub as hub
report["alias_rebound"] = transformers.modeling_utils.safe_save_file is safetensors.torch.save_file
tok, model = tiny_tokenizer(), tiny_model()

class FakeHub:  # push_to_hub's Hub calls; its temporary folder is real
    def create_repo(self, repo_id, **kwargs):
        return types.SimpleNamespace(repo_id=repo_id)
    def create_commit(self, repo_id, operations, **kwargs):
        report.setdefault("pushed", []).extend(sorted(op.path_in_repo for op in operations))
hub.hf_api = FakeHub
hub.create_and_tag_model_card = lambda *args, **kwargs: types.SimpleNamespace(save=lambda path: open(path, "w").close())
model.push_to_hub("me/tiny-bert")
tok.push_to_hub("me/tiny-bert")

model.save_pretrained("pretrained")  # one folder, four calls: one snapshot once they are all done
tok.save_pretrained("pretrained")
GenerationConfig(max_length=5).save_pretrained("pretrained")
Wav2Vec2FeatureExtractor().save_pretrained("pretrained")
trainer = Trainer(model=model, args=training_args("run", max_steps=6, save_steps=2, save_total_limit=1,
                                                  eval_strategy="steps", eval_steps=2, load_best_model_at_end=True,
                                                  metric_for_best_model="loss"),
                  train_dataset=tiny_data(tok), eval_dataset=tiny_data(tok), processing_class=tok)
trainer.train()
report["best"] = os.path.basename(trainer.state.best_model_checkpoint)
trainer.save_model()
# what an example script does next, within the folder's settle time: the Trainer's own files in output_dir
trainer.save_metrics("train", {"train_loss": 0.5})
trainer.save_state()
trainer.create_model_card(model_name="tiny-bert")
'''

CHECKPOINT_FILES = {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                    "training_args.bin", "optimizer.pt", "scheduler.pt", "rng_state.pth", "trainer_state.json"}
FINAL_FILES = {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "training_args.bin"}
TRAINER_LOGS = {"train_results.json", "all_results.json", "trainer_state.json", "README.md"}
PRETRAINED_FILES = {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                    "generation_config.json", "preprocessor_config.json"}


@pytest.fixture(scope="module", params=IMPORT_ORDERS)
def trained(request, tmp_path_factory) -> dict:
    require_framework("transformers")
    require_framework("accelerate")
    root = tmp_path_factory.mktemp(request.param)
    home, work = root / "home", root / "work"
    work.mkdir()
    report = run_scenario(TRAIN, "train", request.param == "imported-before-init", home, work)
    return {"home": home, "work": work, "report": report, "import_first": request.param == "imported-before-init"}


@pytest.fixture
def store(trained, monkeypatch: pytest.MonkeyPatch) -> dict:
    """This test reads (and its scenarios write) the training run's store."""
    monkeypatch.setenv("AUTOLOG_HOME", str(trained["home"]))
    return trained


def _task(name: str):
    from autolog import Task

    [task] = Task.get_tasks(project_name="hf", task_name=name)
    return task


def _files(snap) -> dict[str, str]:
    return {f["name"]: f["digest"] for f in snap.files}


def _on_disk(folder: Path) -> dict[str, str]:
    return {p.name: file_digest(p) for p in folder.iterdir() if p.is_file()}


def test_a_save_pretrained_folder_written_by_several_calls_is_one_snapshot(store):
    train = _task("train")
    assert train.status == "completed"
    outputs = train.models["output"]
    # nothing else: no single-file model of a weights file, optimizer.pt, training_args.bin..., nor
    # push_to_hub's temporary folders (deleted once uploaded)
    assert set(outputs.keys()) == {"pretrained", "run"}, outputs.keys()
    assert {"model.safetensors", "tokenizer.json"} <= set(store["report"]["pushed"]), store["report"]
    pretrained = outputs["pretrained"]
    assert pretrained.framework == FRAMEWORK
    [snap] = pretrained.snapshots
    assert snap.status == "stored", snap
    assert _files(snap) == _on_disk(store["work"] / "pretrained")
    assert set(_files(snap)) == PRETRAINED_FILES
    local = Path(pretrained.get_local_copy())
    assert _on_disk(local) == _on_disk(store["work"] / "pretrained")
    if store["import_first"]:  # transformers' own alias of safetensors' save_file now calls the patched one
        assert store["report"]["alias_rebound"] is True


# A training loop without a Trainer (the older Hugging Face examples): each checkpoint folder is the
# model and tokenizer, then the optimizer and scheduler saved into it with torch.save. And a conversion:
# a config saved, then weights written into that folder by safetensors.
NO_TRAINER = '''
import safetensors.torch
tok, model = tiny_tokenizer(), tiny_model()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 1)
for epoch in range(2):
    model.save_pretrained("loop")
    tok.save_pretrained("loop")
    torch.save(optimizer.state_dict(), "loop/optimizer.pt")
    torch.save(scheduler.state_dict(), "loop/scheduler.pt")
    optimizer.step(); scheduler.step()
model.config.save_pretrained("converted")
safetensors.torch.save_file(model.state_dict(), "converted/model.safetensors")
'''
LOAD_NO_TRAINER = '''
BertForSequenceClassification.from_pretrained("loop")
BertForSequenceClassification.from_pretrained("converted")
'''


@pytest.mark.parametrize("trained", ["imported-after-init"], indirect=True)
def test_files_saved_into_a_save_pretrained_folder_right_after_are_part_of_its_snapshot(store):
    run_scenario(NO_TRAINER, "loop-saves", False, store["home"], store["work"])
    run_scenario(LOAD_NO_TRAINER, "loop-loads", False, store["home"], store["work"])
    outputs = _task("loop-saves").models["output"]
    loop = [(s.status, set(_files(s))) for s in outputs["loop"].snapshots]
    assert loop == [("stored", {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                                "optimizer.pt", "scheduler.pt"})] * 2, loop
    [converted] = outputs["converted"].snapshots
    assert set(_files(converted)) == {"config.json", "model.safetensors"}
    assert {"optimizer.pt", "scheduler.pt", "model.safetensors"} <= set(outputs.keys())  # each its own too
    loader = _task("loop-loads")
    links = loader._ctx.store.loads_by_task(loader.id)
    assert [link.snapshot_id for link in links] == [outputs["loop"].snapshots[1].id, converted.id]


BROKEN_TOKENIZER = '''
tok, model = tiny_tokenizer(), tiny_model()
model.save_pretrained("broken")
os.makedirs("broken/tokenizer.json")  # the tokenizer's own file cannot be written: its save raises
try:
    tok.save_pretrained("broken")  # after writing tokenizer_config.json
except Exception as exc:
    report["raised"] = str(exc)
report["on_disk"] = sorted(os.listdir("broken"))
'''


@pytest.mark.parametrize("trained", ["imported-after-init"], indirect=True)
def test_a_tokenizer_save_that_raised_leaves_what_it_wrote_out_of_the_folders_snapshot(store):
    report = run_scenario(BROKEN_TOKENIZER, "broken-tokenizer", False, store["home"], store["work"])
    assert "Is a directory" in report["raised"], report
    assert "tokenizer_config.json" in report["on_disk"], report
    [model] = _task("broken-tokenizer").models["output"]
    [snap] = model.snapshots
    assert snap.status == "stored"
    assert set(_files(snap)) == {"config.json", "model.safetensors"}  # the model's save, which returned


def test_trainer_checkpoints_are_snapshots_of_one_model_with_the_global_step(store):
    work = store["work"]
    run = _task("train").models["output"]["run"]
    assert run.framework == FRAMEWORK and run.source_path == str(work / "run")
    snaps = run.snapshots
    assert [s.status for s in snaps] == ["stored"] * 4, [(s.seq, s.status, s.reason) for s in snaps]
    # three checkpoints, then the final save_model() at the last step
    assert [s.iteration for s in snaps] == [2, 4, 6, 6]
    for snap in snaps[:3]:
        assert set(_files(snap)) == CHECKPOINT_FILES, (snap.seq, sorted(_files(snap)))
    # the final save is the model's files only: no checkpoint-* folder, no optimizer state
    # nor the metrics, state and model card the Trainer wrote into output_dir right after it
    assert set(_files(snaps[3])) == FINAL_FILES, sorted(_files(snaps[3]))
    assert set(_on_disk(work / "run")) == FINAL_FILES | TRAINER_LOGS
    assert _files(snaps[3]) == {name: digest for name, digest in _on_disk(work / "run").items() if name in FINAL_FILES}
    assert _files(snaps[2]) == _on_disk(work / "run" / "checkpoint-6")

    # save_total_limit=1 deleted the older folders (the best one is kept): their snapshots are stored
    kept = {p.name for p in (work / "run").glob("checkpoint-*")}
    assert kept == {"checkpoint-6", store["report"]["best"]}, kept
    for seq, step in ((1, 2), (2, 4)):
        local = Path(run.get_local_copy(version=seq))
        assert local.name == f"checkpoint-{step}" and not str(local).startswith(str(work))
        assert json.loads((local / "trainer_state.json").read_text())["global_step"] == step
        assert _on_disk(local) == _files(snaps[seq - 1])


def test_load_best_model_at_end_is_an_input_of_the_best_checkpoint(store):
    train = _task("train")
    run = train.models["output"]["run"]
    best_step = int(store["report"]["best"].split("-")[1])
    [link] = train._ctx.store.loads_by_task(train.id)
    [best] = [s for s in run.snapshots if s.iteration == best_step and set(_files(s)) == CHECKPOINT_FILES]
    assert link.snapshot_id == best.id
    assert link.path == str(store["work"] / "run" / store["report"]["best"])


EVALUATE = '''
model = AutoModelForSequenceClassification.from_pretrained("run/checkpoint-6")
tok = AutoTokenizer.from_pretrained("run/checkpoint-6")
again = BertForSequenceClassification.from_pretrained("run/checkpoint-6")
report["same_weights"] = same_weights(model, again)
BertForSequenceClassification.from_pretrained("pretrained")
PreTrainedTokenizerFast.from_pretrained("pretrained")
try:
    AutoModel.from_pretrained("no-such-org/no-such-model")
except Exception as exc:  # offline: transformers' own error, nothing recorded
    report["hub_error"] = type(exc).__name__
'''


def test_from_pretrained_in_another_process_links_each_folder_once(store):
    report = run_scenario(EVALUATE, "evaluate", store["import_first"], store["home"], store["work"])
    assert report["same_weights"] and report["hub_error"] == "OSError", report
    train, evaluate = _task("train"), _task("evaluate")
    outputs = train.models["output"]
    assert evaluate.models["output"] == []
    links = {Path(link.path).name: link.snapshot_id for link in evaluate._ctx.store.loads_by_task(evaluate.id)}
    # model and tokenizer of one folder: one input each folder, none for the hub id
    assert links == {"checkpoint-6": outputs["run"].snapshots[2].id,
                     "pretrained": outputs["pretrained"].snapshots[0].id}, links
    inputs = evaluate.models["input"]
    assert {m.id for m in inputs} == {outputs["run"].id, outputs["pretrained"].id}
    assert all(m.task == train.id for m in inputs)


RESUME = '''
tok, model = tiny_tokenizer(), tiny_model()
trainer = Trainer(model=model, args=training_args("run", max_steps=8, save_steps=2, save_total_limit=1),
                  train_dataset=tiny_data(tok), processing_class=tok)
trainer.train(resume_from_checkpoint=RESUME_FROM)
report["global_step"] = trainer.state.global_step
'''


def test_resuming_a_trainer_is_one_input_and_keeps_capturing_checkpoints(store, tmp_path: Path):
    # A copy of the run elsewhere (lineage is by content); the training run's own folder stays as it is.
    work = tmp_path / "work"
    shutil.copytree(store["work"] / "run", work / "run")
    # resume_from_checkpoint=True finds the newest checkpoint; a path names one
    resume_from = "True" if store["import_first"] else "'run/checkpoint-6'"
    report = run_scenario(f"RESUME_FROM = {resume_from}\n{RESUME}", "resume", store["import_first"], store["home"],
                          work)
    assert report["global_step"] == 8
    train, resume = _task("train"), _task("resume")
    run = train.models["output"]["run"]
    # weights, optimizer and scheduler, grad scaler, rng state: read by separate calls, one input
    [link] = resume._ctx.store.loads_by_task(resume.id)
    assert link.snapshot_id == run.snapshots[2].id and link.path == str(work / "run" / "checkpoint-6")
    assert [m.id for m in resume.models["input"]] == [run.id]
    # the checkpoint saved inside the resumed loop is captured: no load silences it
    resumed = resume.models["output"]["run"]
    assert [(s.iteration, s.status) for s in resumed.snapshots] == [(8, "stored")]
    assert set(_files(resumed.snapshots[0])) == CHECKPOINT_FILES


@pytest.mark.parametrize("trained", ["imported-after-init"], indirect=True)
def test_from_pretrained_of_the_output_dir_links_to_the_final_save(store):
    # output_dir holds the Trainer's metrics, state and model card too, written after that save
    run_scenario('AutoModelForSequenceClassification.from_pretrained("run")', "load-output-dir", False,
                 store["home"], store["work"])
    run, loader = _task("train").models["output"]["run"], _task("load-output-dir")
    [link] = loader._ctx.store.loads_by_task(loader.id)
    assert link.snapshot_id == run.snapshots[3].id


@pytest.mark.parametrize("trained", ["imported-after-init"], indirect=True)
def test_a_trainer_run_again_into_its_output_dir_links_loads_to_the_new_final_save(store):
    # the second final save_model() finds the first run's model card there, rewritten right after it
    rerun = '''
tok = tiny_tokenizer()
for steps in (2, 4):
    trainer = Trainer(model=tiny_model(), args=training_args("rerun", max_steps=steps, save_strategy="no"),
                      train_dataset=tiny_data(tok), processing_class=tok)
    trainer.train()
    trainer.save_model()
    trainer.create_model_card(model_name="tiny-bert")
'''
    run_scenario(rerun, "rerun-into-output-dir", False, store["home"], store["work"])
    run_scenario('AutoModelForSequenceClassification.from_pretrained("rerun")', "load-second-run", False,
                 store["home"], store["work"])
    first, final = _task("rerun-into-output-dir").models["output"]["rerun"].snapshots
    assert _files(first)["model.safetensors"] != _files(final)["model.safetensors"]
    assert set(_files(final)) == FINAL_FILES  # no model card: the one there was the first run's
    loader = _task("load-second-run")
    [link] = loader._ctx.store.loads_by_task(loader.id)
    assert link.snapshot_id == final.id


@pytest.mark.parametrize("trained", ["imported-after-init"], indirect=True)
def test_a_load_of_one_file_of_a_saved_folder_links_to_that_folders_snapshot(store):
    """The weights file of a save_pretrained folder, and of a Trainer checkpoint, read on their own
    (safetensors' load_file into a model of the user's): each file has no snapshot of its own."""
    load_files = '''
import safetensors.torch
for path in ("pretrained/model.safetensors", "run/checkpoint-6/model.safetensors"):
    safetensors.torch.load_file(path)
# in the same run, right after the save (the folder still waits to settle); then through symlinks,
# to the waiting folder and to its weights file, each save with weights of its own
tiny_model().save_pretrained("fresh")
safetensors.torch.load_file("fresh/model.safetensors")
model = tiny_model()
for name, link, target in (("fresh-dir", "latest", "fresh-dir"),
                           ("fresh-file", "weights.safetensors", "fresh-file/model.safetensors")):
    with torch.no_grad():
        next(model.parameters()).add_(1.0)
    model.save_pretrained(name)
    os.symlink(target, link)
    safetensors.torch.load_file(link if name == "fresh-file" else link + "/model.safetensors")
'''
    run_scenario(load_files, "load-files", False, store["home"], store["work"])
    outputs, loader = _task("train").models["output"], _task("load-files")
    links = {link.path: link.snapshot_id for link in loader._ctx.store.loads_by_task(loader.id)}
    work = store["work"]
    saved = {name: loader.models["output"][name].snapshots for name in ("fresh", "fresh-dir", "fresh-file")}
    assert all(len(snapshots) == 1 for snapshots in saved.values()), saved
    assert links == {str(work / "pretrained" / "model.safetensors"): outputs["pretrained"].snapshots[0].id,
                     str(work / "run" / "checkpoint-6" / "model.safetensors"): outputs["run"].snapshots[2].id,
                     str(work / "fresh" / "model.safetensors"): saved["fresh"][0].id,
                     str(work / "latest" / "model.safetensors"): saved["fresh-dir"][0].id,
                     str(work / "weights.safetensors"): saved["fresh-file"][0].id}, links
    assert {m.id for m in loader.models["input"]} == {outputs["pretrained"].id, outputs["run"].id,
                                                      *(loader.models["output"][name].id for name in saved)}
