"""The one generic wrapper (binding/core.make_wrapper) on its own: what it passes to the active task's
recorder for each kind of declaration, and what it never changes about the call it wraps.

The bindings' tests (tests/bindings/) check the same through real frameworks in child processes; these
run in-process against a recorder that writes down what it is told, so each rule of the wrapper's
contract has a test that takes milliseconds (mutation testing runs them once per mutant)."""
from __future__ import annotations

import io
import logging
import os
import sys
import threading
import types
from pathlib import Path

import numpy as np
import pytest

from autolog.binding import core
from autolog.binding.spec import Arg, Attr, Computed, Load, Returned, Save, Writes


class Aside:
    def __init__(self, log: list, fail: bool = False):
        self.log, self.fail = log, fail

    def settle(self, raised: bool) -> None:
        self.log.append(("settle", raised))
        if self.fail:
            raise OSError("could not put the old file back")


class Recorder:
    """Writes down every call the wrapper makes to it."""

    def __init__(self, allow: bool = True, aside: bool = False, fail_in: str = "", settle_fails: bool = False):
        self.calls: list[tuple] = []
        self.allow, self.aside, self.fail_in, self.settle_fails = allow, aside, fail_in, settle_fails
        self.around: tuple[str, ...] = ()  # the folders waiting to settle (folders_around), outermost first
        self.locks_held: list[list[str]] = []

    def _maybe_fail(self, where: str) -> None:
        if self.fail_in == where:
            raise RuntimeError(f"{where} broke")

    def allows(self, key: str, path: str) -> bool:
        self.calls.append(("allows", key, path))
        return self.allow

    def folders_around(self, path: str) -> tuple[str, ...]:
        return tuple(folder for folder in self.around if path.startswith(folder + os.sep))

    def before_save(self, path: str, part: str | None = None, write: bool = False, held: tuple[str, ...] = ()):
        self.calls.append(("before_save", path, part) + (("write",) if write else ()) + ((held,) if held else ()))
        self.locks_held.append([p for p in self.around + (path,) if core.path_lock(p).locked()])
        self._maybe_fail("before_save")
        return Aside(self.calls, self.settle_fails) if self.aside else None

    def save_ended(self, path: str, part: str | None, raised: bool) -> None:
        self.calls.append(("save_ended", path, part, raised))
        self._maybe_fail("save_ended")

    def saved(self, path, framework, model_path=None, wait_copied=False, iteration=None, exclude=(), part=None,
              companions=()):
        self.calls.append(("saved", path, framework, model_path, wait_copied, iteration, exclude, part, companions))
        self._maybe_fail("saved")

    def loaded(self, path, framework, exclude=(), companions=(), beside=()):
        self.calls.append(("loaded", path, framework, exclude, companions) + ((beside,) if beside else ()))
        self._maybe_fail("loaded")

    def named(self, kind: str) -> list[tuple]:
        return [c for c in self.calls if c[0] == kind]


@pytest.fixture
def recorder(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    made = Recorder()
    core.activate(made)
    yield made
    core.activate(None)


def wrap(patch, original, framework: str = "Fw", key: str = "fw"):
    wrapper = core.make_wrapper(patch, framework, key)
    return lambda *args, **kwargs: wrapper(original, None, args, kwargs)


def writer(path_index: int = 1):
    """A save that writes its first argument's repr to the path it is given, and returns a sentinel."""
    result = object()

    def save(*args, **kwargs):
        target = kwargs.get("f", args[path_index] if len(args) > path_index else None)
        if isinstance(target, (str, Path)):
            Path(target).write_text(repr(args[0]))
        elif target is not None:
            target.write(b"bytes")
        return result

    save.result = result
    return save


# -- the call itself ---------------------------------------------------------------------------------
def test_the_original_gets_the_callers_arguments_and_its_result_comes_back_as_is(recorder, tmp_path):
    seen = []

    def original(*args, **kwargs):
        seen.append((args, kwargs))
        return seen

    obj, target = {"w": 1}, str(tmp_path / "m.pt")
    assert wrap(Save("fw", "save", path=Arg(1, "f")), original)(obj, target, protocol=4) is seen
    assert seen == [((obj, target), {"protocol": 4})] and seen[0][0][0] is obj


def test_with_no_active_task_the_call_goes_through_untouched(tmp_path):
    core.activate(None)
    save = writer()
    assert wrap(Save("fw", "save", path=Arg(1, "f")), save)("w", str(tmp_path / "m.pt")) is save.result
    assert (tmp_path / "m.pt").read_text() == "'w'"
    assert wrap(Save("fw", "save", path=Arg(1, "f")), save)("k", f=str(tmp_path / "k.pt")) is save.result
    assert (tmp_path / "k.pt").read_text() == "'k'"


def test_a_rank_check_that_fails_records_nothing_reports_which_call_and_the_call_goes_through(
        recorder, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("AUTOLOG_STRICT", "0")
    monkeypatch.setattr("autolog.safety._reported", set())

    def broken_rank_check() -> bool:
        raise RuntimeError("torch.distributed cannot say its rank")

    monkeypatch.setattr(core, "_should_record", broken_rank_check)
    save = writer()
    with caplog.at_level(logging.WARNING, logger="autolog"):
        assert wrap(Save("fw", "save", path=Arg(1, "f")), save)("w", f=str(tmp_path / "m.pt")) is save.result
    assert (tmp_path / "m.pt").read_text() == "'w'"
    assert recorder.calls == []
    assert [r.getMessage() for r in caplog.records] == [
        "autolog: fw.save() of Fw was not logged: RuntimeError: torch.distributed cannot say its rank"]


def test_an_exception_of_the_original_reaches_the_caller_as_the_same_object_and_nothing_is_recorded(
        recorder, tmp_path):
    recorder.aside = True
    error = ValueError("disk full")

    def failing(obj, f):
        raise error

    save = wrap(Save("fw", "save", path=Arg(1, "f")), failing)
    with pytest.raises(ValueError) as raised:
        save("w", str(tmp_path / "m.pt"))
    assert raised.value is error
    assert recorder.named("saved") == [] and ("settle", True) in recorder.calls
    # the path's lock was released: the next save of the path does not wait forever
    assert wrap(Save("fw", "save", path=Arg(1, "f")), writer())("w", str(tmp_path / "m.pt")) is not None
    assert getattr(core._nesting, "inside", False) is False


# -- what a save records -----------------------------------------------------------------------------
def test_a_save_to_a_path_is_fenced_then_recorded_with_its_absolute_path(recorder, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    save = writer()
    assert wrap(Save("fw", "save", path=Arg(1, "f")), save)("w", "m.pt") is save.result
    target = str(tmp_path / "m.pt")
    assert recorder.calls == [
        ("before_save", target, None),
        ("save_ended", target, None, False),
        ("allows", "fw", target),
        ("saved", target, "Fw", None, False, None, (), None, ()),
    ]


def test_the_path_given_by_keyword_is_found_too(recorder, tmp_path):
    wrap(Save("fw", "save", path=Arg(1, "f")), writer())("w", f=str(tmp_path / "m.pt"))
    assert recorder.named("saved")[0][1] == str(tmp_path / "m.pt")


def test_bytes_and_file_urls_are_local_paths_and_other_urls_are_kept(recorder, tmp_path):
    wrap(Save("fw", "save", path=Arg(1, "f")), lambda obj, f: None)("w", f"file://{tmp_path}/a.pt")
    wrap(Save("fw", "save", path=Arg(1, "f")), lambda obj, f: None)("w", str(tmp_path / "b.pt").encode())
    wrap(Save("fw", "save", path=Arg(1, "f")), lambda obj, f: None)("w", "s3://bucket/c.pt")
    fenced = [c[1] for c in recorder.named("before_save")]
    assert fenced == [str(tmp_path / "a.pt"), str(tmp_path / "b.pt"), "s3://bucket/c.pt"]
    assert [c[1] for c in recorder.named("saved")] == fenced


def test_an_open_file_is_recorded_by_its_name_and_copied_before_the_save_returns(recorder, tmp_path):
    target = tmp_path / "m.pt"
    with open(target, "wb") as f:
        wrap(Save("fw", "save", path=Arg(1, "f")), writer())("w", f)
    assert recorder.named("before_save") == []  # no path before the call: nothing to fence
    assert recorder.named("saved") == [("saved", str(target), "Fw", None, True, None, (), None, ())]


def test_an_in_memory_target_is_not_recorded(recorder):
    buffer = io.BytesIO()
    wrap(Save("fw", "save", path=Arg(1, "f")), writer())("w", buffer)
    assert buffer.getvalue() == b"bytes"
    assert recorder.named("saved") == [] and recorder.named("before_save") == []


@pytest.mark.parametrize("target", [io.BytesIO(), None, 42], ids=["BytesIO", "None", "not a file object"])
def test_a_save_to_memory_is_settled_before_the_call_and_never_looked_at_again(recorder, monkeypatch, target):
    """Its target is found to be no file before the call: the wrapper does not look for one after it
    (the per-call cost of saves to memory, `bench/run_bench.py`'s active-task row)."""
    def looked(*args, **kwargs):
        raise AssertionError("path_argument was called")

    monkeypatch.setattr(core, "path_argument", looked)
    result = object()
    assert wrap(Save("fw", "save", path=Arg(1, "f")), lambda obj, f: result)("w", target) is result
    assert recorder.calls == []


@pytest.mark.parametrize("source, target", [
    (Arg(1, "f"), types.SimpleNamespace(name="/some/file.pt")),
    (Computed(lambda call: call.args[1]), io.BytesIO()),
], ids=["a named object", "a computed target"])
def test_what_may_name_a_file_is_looked_at_after_the_call(recorder, monkeypatch, source, target):
    """Only an argument with no `name` is settled before the call; a computed target may depend on the
    call's result (Lightning's), and a name is checked once the file is written."""
    looked = []
    monkeypatch.setattr(core, "path_argument", lambda *args: looked.append(args[3][1]))
    wrap(Save("fw", "save", path=source), lambda obj, f: None)("w", target)
    assert looked == [target]


def test_a_filtered_save_is_still_fenced_but_not_recorded(recorder, tmp_path):
    recorder.allow = False
    wrap(Save("fw", "save", path=Arg(1, "f")), writer())("w", str(tmp_path / "m.pt"))
    assert recorder.named("before_save") == [("before_save", str(tmp_path / "m.pt"), None)]
    assert recorder.named("saved") == []


def test_a_returned_path_is_recorded_after_the_call_without_a_fence(recorder, tmp_path):
    prefix = str(tmp_path / "ckpt-1")
    wrap(Save("fw", "Checkpoint.save", path=Returned()), lambda: prefix)()
    assert recorder.named("before_save") == []
    assert recorder.named("saved") == [("saved", prefix, "Fw", None, False, None, (), None, ())]


def test_an_attribute_path_is_read_from_the_instance(recorder, tmp_path):
    class Manager:
        _prefix = str(tmp_path / "ckpt")

    wrapper = core.make_wrapper(Save("fw", "Manager.save", path=Attr("_prefix")), "Fw", "fw")
    wrapper(lambda: None, Manager(), (), {})
    assert recorder.named("saved")[0][1] == str(tmp_path / "ckpt")


def test_a_path_computed_from_the_instance_is_known_before_the_call_and_fenced(recorder, tmp_path):
    class Trainer:  # keeps its checkpoint folder on itself, as Lightning's and Hugging Face's do
        folder = str(tmp_path / "checkpoints")

    patch = Save("fw", "Trainer.save_checkpoint",
                 path=Computed(lambda call: f"{call.instance.folder}/step-{call.args[0]}"))
    core.make_wrapper(patch, "Fw", "fw")(lambda step: None, Trainer(), (3,), {})
    assert recorder.named("before_save") == [("before_save", str(tmp_path / "checkpoints" / "step-3"), None)]
    assert recorder.named("saved")[0][1] == str(tmp_path / "checkpoints" / "step-3")


def test_a_computed_path_is_computed_once_before_the_call_and_that_path_is_recorded(recorder, tmp_path):
    """A Trainer names its checkpoint folder after its step, and the save moves the step on: the folder
    recorded is the one fenced before the call, not the next step's."""
    class Trainer:
        step, asked = 1, 0

        def folder(self, call) -> str:
            self.asked += 1
            return f"{call.arg(0, 'output_dir')}/checkpoint-{self.step}"

    trainer = Trainer()

    def save_checkpoint(output_dir):
        trainer.step += 1

    patch = Save("fw", "Trainer.save_checkpoint", path=Computed(trainer.folder))
    core.make_wrapper(patch, "Fw", "fw")(save_checkpoint, trainer, (), {"output_dir": str(tmp_path)})
    expected = str(tmp_path / "checkpoint-1")
    assert recorder.named("before_save") == [("before_save", expected, None)]
    assert recorder.named("saved")[0][1] == expected
    assert trainer.asked == 1


def test_model_path_iteration_exclude_and_companions_are_passed_on(recorder, tmp_path):
    class Manager:  # names its checkpoints <folder>/<prefix>-<step>, and returns the step it saved
        prefix, base_step = "ckpt", 100

    def model_path(call) -> str:  # every part of the call counts
        return os.path.join(call.args[0], "..", f"{call.instance.prefix}{call.kwargs['tag']}{call.result - 3}")

    def iteration(call) -> str:
        return str(call.instance.base_step + len(call.args) + call.result + call.kwargs["step"])

    patch = Save("fw", "Manager.save", path=Arg(0, "path"), model_path=Computed(model_path),
                 iteration=Computed(iteration),
                 exclude=("checkpoint-*",),
                 companions=Computed(lambda call: [str(tmp_path / "a.data"), tmp_path / "b.data"]))
    core.make_wrapper(patch, "Fw", "fw")(lambda path, tag, step: 3, Manager(), (str(tmp_path / "ckpt-7"),),
                                         {"tag": "-best", "step": 4})
    assert recorder.named("saved") == [("saved", str(tmp_path / "ckpt-7"), "Fw", str(tmp_path / "ckpt-best0"), False,
                                        108, ("checkpoint-*",), None,
                                        (str(tmp_path / "a.data"), str(tmp_path / "b.data")))]


def test_companions_are_computed_from_the_whole_call(recorder, tmp_path):
    """An exporter's external data file is named by the instance, the call's arguments and its result."""
    class Exporter:
        data_name = "weights"

    patch = Save("fw", "Exporter.save", path=Arg(1, "f"), companions=Computed(lambda call: [os.path.join(
        os.path.dirname(call.args[1]), f"{call.instance.data_name}{call.kwargs['suffix']}{call.result}")]))
    core.make_wrapper(patch, "Fw", "fw")(lambda obj, f, suffix: ".data", Exporter(), ("m", str(tmp_path / "m.onnx")),
                                         {"suffix": "-v1"})
    assert recorder.named("saved")[0][8] == (str(tmp_path / "weights-v1.data"),)


def test_an_iteration_of_none_is_left_to_the_save_count(recorder, tmp_path):
    patch = Save("fw", "save", path=Arg(0, "f"), iteration=Computed(lambda call: None))
    wrap(patch, lambda f: None)(str(tmp_path / "m.pt"))
    assert recorder.named("saved")[0][5] is None


def test_a_generic_savers_framework_is_the_one_of_the_object_it_saved(recorder, tmp_path):
    patch = Save("joblib", "dump", path=Arg(1, "filename"), obj=Arg(0, "value"))
    wrap(patch, writer(), framework="joblib")(np.zeros(2), str(tmp_path / "a.joblib"))
    wrap(patch, writer(), framework="joblib")({"plain": "dict"}, str(tmp_path / "b.joblib"))
    assert [c[2] for c in recorder.named("saved")] == ["NumPy", "joblib"]


def test_a_settling_save_names_its_part_to_the_fence_and_the_recorder(recorder, tmp_path):
    patch = Save("fw", "Model.save_pretrained", path=Arg(0, "save_directory"), settle=True)
    wrap(patch, lambda d: None)(str(tmp_path / "out"))
    assert recorder.named("before_save") == [("before_save", str(tmp_path / "out"), "fw.Model.save_pretrained")]
    assert recorder.named("saved")[0][7] == "fw.Model.save_pretrained"


def test_a_write_of_a_file_that_is_no_models_is_fenced_as_such_and_records_nothing(recorder, tmp_path, monkeypatch):
    """Trainer.create_model_card: fenced like a save (told it is a write: a waiting folder around it is
    taken, not joined), under the file's path lock, and no snapshot nor load of its own."""
    card = tmp_path / "out" / "README.md"
    held = []

    def create_model_card():
        held.append(core.path_lock(str(card)).locked())
        nested = wrap(Save("fw", "Model.save_pretrained", path=Arg(0, "d"), settle=True), lambda d: None)
        nested(str(card.parent))  # a save inside it is its own business: not recorded
        return "card"

    patch = Writes("fw", "Trainer.create_model_card", path=Computed(lambda call: "out/README.md"))
    monkeypatch.chdir(tmp_path)
    assert wrap(patch, create_model_card)() == "card"
    assert recorder.calls == [("before_save", str(card), None, "write"), ("save_ended", str(card), None, False)]
    assert held == [True]


def test_a_save_inside_waiting_folders_holds_their_locks_outermost_first_then_its_own(recorder, tmp_path,
                                                                                     monkeypatch):
    outer, inner = str(tmp_path / "final"), str(tmp_path / "final" / "tokenizer")
    recorder.around = (outer,)
    in_outer, in_inner, beside = f"{outer}/optimizer.pt", f"{inner}/vocab.pt", str(tmp_path / "optimizer.pt")
    save = wrap(Save("fw", "save", path=Arg(1, "f")), writer())
    os.makedirs(inner)
    save("w", in_outer)
    save("w", beside)
    recorder.around = (outer, inner)
    taken, real_lock = [], core.path_lock
    with monkeypatch.context() as patched:
        patched.setattr(core, "path_lock", lambda path: taken.append(path) or real_lock(path))
        save("w", in_inner)
    assert taken[:3] == [outer, inner, in_inner]  # then the recorder's own look at them
    assert recorder.named("before_save") == [("before_save", in_outer, None, (outer,)),
                                             ("before_save", beside, None),
                                             ("before_save", in_inner, None, (outer, inner))]
    assert recorder.locks_held == [[outer, in_outer], [beside], [outer, inner, in_inner]]
    assert not any(core.path_lock(p).locked() for p in (outer, inner, in_outer, in_inner))


# -- loads ------------------------------------------------------------------------------------------
def test_a_load_is_recorded_with_its_exclusions_and_companions_and_never_fenced(recorder, tmp_path):
    result = object()
    patch = Load("fw", "load", path=Arg(0, "f"), exclude=("optimizer.pt",),
                 companions=Computed(lambda call: [str(tmp_path / "w.data")]))
    assert wrap(patch, lambda f: result)(str(tmp_path / "m.pt")) is result
    assert recorder.calls == [("allows", "fw", str(tmp_path / "m.pt")),
                              ("loaded", str(tmp_path / "m.pt"), "Fw", ("optimizer.pt",),
                               (str(tmp_path / "w.data"),))]


def test_a_filtered_load_is_not_recorded(recorder, tmp_path):
    recorder.allow = False
    wrap(Load("fw", "load", path=Arg(0, "f")), lambda f: None)(str(tmp_path / "m.pt"))
    assert recorder.named("loaded") == []


# -- only the outermost call, only rank 0 -----------------------------------------------------------
def test_only_the_outermost_patched_call_records(recorder, tmp_path):
    inner = wrap(Save("fw", "save_weights", path=Arg(1, "f")), writer())

    def outer_save(obj, f):
        return inner(obj, str(tmp_path / "inner.h5"))

    wrap(Save("fw", "save", path=Arg(1, "f")), outer_save)("w", str(tmp_path / "outer.keras"))
    assert [c[1] for c in recorder.named("saved")] == [str(tmp_path / "outer.keras")]
    assert [c[1] for c in recorder.named("before_save")] == [str(tmp_path / "outer.keras")]


def test_a_patched_call_made_while_recording_is_not_recorded(recorder, tmp_path):
    inner = wrap(Load("fw", "load", path=Arg(0, "f")), lambda f: None)
    original_saved = recorder.saved

    def saved(*args, **kwargs):
        inner(str(tmp_path / "read-while-recording.pt"))
        original_saved(*args, **kwargs)

    recorder.saved = saved
    wrap(Save("fw", "save", path=Arg(1, "f")), writer())("w", str(tmp_path / "m.pt"))
    assert recorder.named("loaded") == [] and len(recorder.named("saved")) == 1


@pytest.mark.parametrize("rank, records", [("1", False), ("3", False), ("0", True), ("", True)])
def test_only_rank_zero_records(recorder, tmp_path, monkeypatch, rank, records):
    monkeypatch.setenv("RANK", rank)
    save = writer()
    assert wrap(Save("fw", "save", path=Arg(1, "f")), save)("w", str(tmp_path / "m.pt")) is save.result
    assert bool(recorder.named("saved")) is records and bool(recorder.named("before_save")) is records


def test_the_rank_is_read_from_whatever_os_environ_is_now(recorder, tmp_path, monkeypatch):
    """The fast read of $RANK (os.environ's raw mapping) gives way to a replaced os.environ."""
    monkeypatch.setattr(os, "environ", {**os.environ, "RANK": "1"})
    assert core.rank_variable() == "1"
    wrap(Save("fw", "save", path=Arg(1, "f")), writer())("w", str(tmp_path / "m.pt"))
    assert recorder.named("saved") == []
    os.environ["RANK"] = "0"
    assert core.rank_variable() == "0"


def test_the_rank_is_read_without_os_environ_get(monkeypatch):
    """The point of rank_variable: every wrapped call reads $RANK, and os.environ.get is the slow way."""
    monkeypatch.setenv("RANK", "2")

    def slow_get(*args):
        raise AssertionError("os.environ.get was called")

    monkeypatch.setattr(os.environ, "get", slow_get)
    assert core.rank_variable() == "2"


@pytest.mark.parametrize("value", ["1", "0", "", "rank-é"])
def test_the_rank_read_fast_is_the_value_os_environ_gives(monkeypatch, value):
    monkeypatch.setenv("RANK", value)
    assert core.rank_variable() == os.environ["RANK"] == value
    monkeypatch.delenv("RANK")
    assert core.rank_variable() is None


class Distributed:
    """What the rank check reads of torch.distributed (bindings/test_distributed_rank.py runs real gloo ranks)."""

    def __init__(self, rank: int, initialized: bool = True, available: bool = True):
        self.rank, self.initialized, self.available = rank, initialized, available

    def is_available(self) -> bool:
        return self.available

    def is_initialized(self) -> bool:
        return self.initialized

    def get_rank(self) -> int:
        return self.rank


@pytest.mark.parametrize("group, records", [
    (Distributed(rank=1), False), (Distributed(rank=2), False), (Distributed(rank=0), True),
    (Distributed(rank=1, initialized=False), True), (Distributed(rank=1, available=False), True),
], ids=["rank 1", "rank 2", "rank 0", "no process group yet", "not built with distributed"])
def test_a_process_group_rank_other_than_zero_records_nothing(recorder, tmp_path, monkeypatch, group, records):
    monkeypatch.setitem(sys.modules, "torch.distributed", group)
    save = writer()
    assert wrap(Save("fw", "save", path=Arg(1, "f")), save)("w", str(tmp_path / "m.pt")) is save.result
    assert bool(recorder.named("saved")) is records


@pytest.mark.parametrize("worker, records", [(object(), False), (None, True)], ids=["worker", "main process"])
def test_a_dataloader_worker_records_nothing(recorder, tmp_path, monkeypatch, worker, records):
    monkeypatch.setitem(sys.modules, "torch.utils.data", types.SimpleNamespace(get_worker_info=lambda: worker))
    wrap(Load("fw", "load", path=Arg(0, "f")), lambda f: None)(str(tmp_path / "sample.pt"))
    assert bool(recorder.named("loaded")) is records


# -- failures of the recording side -----------------------------------------------------------------
@pytest.mark.parametrize("where", ["before_save", "saved"])
def test_a_recording_failure_is_one_warning_and_the_save_still_happens(recorder, tmp_path, monkeypatch, caplog,
                                                                       where):
    monkeypatch.setenv("AUTOLOG_STRICT", "0")
    monkeypatch.setattr("autolog.safety._reported", set())
    recorder.fail_in = where
    save = writer()
    with caplog.at_level(logging.WARNING, logger="autolog"):
        assert wrap(Save("fw", "save", path=Arg(1, "f")), save)("w", str(tmp_path / "m.pt")) is save.result
    assert (tmp_path / "m.pt").read_text() == "'w'"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [f"autolog: fw.save() of Fw was not logged: RuntimeError: {where} broke"]
    assert getattr(core._nesting, "inside", False) is False


@pytest.mark.parametrize("where", ["before_save", "save_ended", "saved"])
def test_in_strict_mode_a_recording_failure_raises(recorder, tmp_path, monkeypatch, where):
    monkeypatch.setenv("AUTOLOG_STRICT", "1")
    recorder.fail_in = where
    with pytest.raises(RuntimeError, match=f"{where} broke"):
        wrap(Save("fw", "save", path=Arg(1, "f")), writer())("w", str(tmp_path / "m.pt"))
    assert getattr(core._nesting, "inside", False) is False


@pytest.mark.parametrize("strict", ["0", "1"])
def test_a_save_that_raised_is_told_to_the_recorder_never_in_place_of_the_users_exception(
        recorder, tmp_path, monkeypatch, caplog, strict):
    monkeypatch.setenv("AUTOLOG_STRICT", strict)
    monkeypatch.setattr("autolog.safety._reported", set())
    error = OSError(28, "No space left on device")

    def save_pretrained(folder):
        raise error

    patch = Save("fw", "Tokenizer.save_pretrained", path=Arg(0, "d"), settle=True)
    with pytest.raises(OSError) as raised:
        wrap(patch, save_pretrained)(str(tmp_path))
    assert raised.value is error
    assert recorder.named("save_ended") == [("save_ended", str(tmp_path), "fw.Tokenizer.save_pretrained", True)]
    assert not recorder.named("saved")

    recorder.calls.clear()
    recorder.fail_in = "save_ended"
    with caplog.at_level(logging.WARNING, logger="autolog"), pytest.raises(OSError) as raised:
        wrap(patch, save_pretrained)(str(tmp_path))
    assert raised.value is error  # strict mode too: the user's exception is the one they get
    assert any("save_ended broke" in r.getMessage() for r in caplog.records)

    recorder.calls.clear()  # any other save: told too (it may have written into a waiting folder)
    with pytest.raises(OSError):
        wrap(Save("fw", "save", path=Arg(0, "f")), save_pretrained)(str(tmp_path / "m.pt"))
    assert recorder.named("save_ended") == [("save_ended", str(tmp_path / "m.pt"), None, True)]
    recorder.calls.clear()  # a load is not
    with pytest.raises(OSError):
        wrap(Load("fw", "load", path=Arg(0, "f")), save_pretrained)(str(tmp_path / "m.pt"))
    assert not recorder.named("save_ended")


def test_every_fenced_save_that_returns_is_told_to_the_recorder_recorded_or_not(tmp_path, monkeypatch):
    """The waiting folders a save joined must hear that it ended, also when auto_connect_frameworks or
    capture.ignore leave it unrecorded."""
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.setattr(core, "_active", Recorder(allow=False))
    wrap(Save("fw", "save", path=Arg(1, "f")), writer())("w", str(tmp_path / "m.pt"))
    assert core._active.named("save_ended") == [("save_ended", str(tmp_path / "m.pt"), None, False)]
    assert not core._active.named("saved")


def test_a_load_recording_failure_is_reported_and_the_load_returns(recorder, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("AUTOLOG_STRICT", "0")
    monkeypatch.setattr("autolog.safety._reported", set())
    recorder.fail_in = "loaded"
    result = object()
    with caplog.at_level(logging.WARNING, logger="autolog"):
        assert wrap(Load("fw", "load", path=Arg(0, "f")), lambda f: result)(str(tmp_path / "m.pt")) is result
    assert any("fw.load() of Fw was not logged: RuntimeError: loaded broke" in r.getMessage() for r in caplog.records)


def test_a_settle_failure_after_a_save_that_raised_never_replaces_the_users_exception(
        recorder, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("AUTOLOG_STRICT", "1")  # even in strict mode
    monkeypatch.setattr("autolog.safety._reported", set())
    recorder.aside, recorder.settle_fails = True, True
    error = KeyError("the user's")

    def failing(obj, f):
        raise error

    with caplog.at_level(logging.WARNING, logger="autolog"), pytest.raises(KeyError) as raised:
        wrap(Save("fw", "save", path=Arg(1, "f")), failing)("w", str(tmp_path / "m.pt"))
    assert raised.value is error
    assert [r.getMessage() for r in caplog.records] == [
        "autolog: fw.save() of Fw was not logged: OSError: could not put the old file back"]


def test_a_settle_failure_after_a_save_that_returned_is_a_recording_failure(recorder, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("AUTOLOG_STRICT", "1")
    recorder.aside, recorder.settle_fails = True, True
    with pytest.raises(OSError, match="could not put the old file back"):
        wrap(Save("fw", "save", path=Arg(1, "f")), writer())("w", str(tmp_path / "m.pt"))
    assert ("settle", False) in recorder.calls
    monkeypatch.setenv("AUTOLOG_STRICT", "0")
    monkeypatch.setattr("autolog.safety._reported", set())
    save = writer()
    with caplog.at_level(logging.WARNING, logger="autolog"):
        assert wrap(Save("fw", "save", path=Arg(1, "f")), save)("w", str(tmp_path / "m.pt")) is save.result
    assert [r.getMessage() for r in caplog.records] == [
        "autolog: fw.save() of Fw was not logged: OSError: could not put the old file back"]


# -- saves of one path take turns ---------------------------------------------------------------------
def test_saves_of_one_path_take_turns_and_other_paths_do_not_wait(recorder, tmp_path):
    inside, release, order = threading.Event(), threading.Event(), []

    def slow(obj, f):
        order.append(("start", obj))
        inside.set()
        release.wait(10)
        order.append(("end", obj))

    def fast(obj, f):
        order.append(("start", obj))
        order.append(("end", obj))

    same, other = str(tmp_path / "m.pt"), str(tmp_path / "other.pt")
    first = threading.Thread(target=wrap(Save("fw", "save", path=Arg(1, "f")), slow), args=("first", same))
    first.start()
    inside.wait(10)
    wrap(Save("fw", "save", path=Arg(1, "f")), fast)("other path", other)  # does not wait for the first
    second = threading.Thread(target=wrap(Save("fw", "save", path=Arg(1, "f")), fast), args=("second", same))
    second.start()
    second.join(0.3)
    assert second.is_alive()  # waits for the first save of its path
    release.set()
    first.join(10)
    second.join(10)
    assert order == [("start", "first"), ("start", "other path"), ("end", "other path"), ("end", "first"),
                     ("start", "second"), ("end", "second")]


# -- which saves and loads auto_connect_frameworks and capture.ignore let through (core.path_filter) ---
def test_true_and_false_let_everything_or_nothing_through():
    assert core.path_filter(True, [])("pytorch", "/runs/model.pt") is True
    assert core.path_filter(False, [])("pytorch", "/runs/model.pt") is False


def test_a_framework_turned_off_by_its_key_leaves_the_others_on():
    allows = core.path_filter({"pytorch": False, "joblib": True}, [])
    assert allows("pytorch", "/runs/model.pt") is False
    assert allows("joblib", "/runs/model.pt") is True
    assert allows("keras", "/runs/model.keras") is True  # not named: on


@pytest.mark.parametrize("rule", ["*.pt", ["*.pt"], ("*.safetensors", "*.pt")])
def test_a_frameworks_globs_match_the_file_name_or_the_whole_path(rule):
    allows = core.path_filter({"pytorch": rule}, [])
    assert allows("pytorch", "/runs/model.pt") is True
    assert allows("pytorch", "/runs/optimizer.bin") is False
    assert allows("keras", "/runs/optimizer.bin") is True  # other frameworks are not filtered


def test_a_glob_on_the_whole_path_counts_too():
    allows = core.path_filter({"pytorch": "/runs/best/*"}, [])
    assert allows("pytorch", "/runs/best/model.pt") is True
    assert allows("pytorch", "/runs/last/model.pt") is False


def test_capture_ignore_wins_over_every_setting_by_name_or_path():
    allows = core.path_filter(True, ["*.tmp", "/scratch/*"])
    assert allows("pytorch", "/runs/model.pt.tmp") is False
    assert allows("pytorch", "/scratch/model.pt") is False
    assert allows("pytorch", "/runs/model.pt") is True
    allows = core.path_filter({"pytorch": "*.pt"}, ["model.pt"])
    assert allows("pytorch", "/runs/model.pt") is False
    assert allows("pytorch", "/runs/other.pt") is True
