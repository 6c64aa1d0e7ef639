"""SettlingFolders: a folder that several calls write is snapshotted once, whole, when they are done."""
from __future__ import annotations

import fnmatch
import itertools
import logging
import sys
import threading
import time

import pytest

from autolog.binding.core import path_lock
from autolog.settling import SettlingFolders, SettlingSave
from autolog.storage import collect_sources

QUIET = 0.3  # seconds; the tests wait on events, this only sets when the timer may fire


class Taken:
    """The take callback: records each snapshot and wakes a waiting test."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, SettlingSave, float]] = []
        self.event = threading.Event()

    def __call__(self, path: str, save: SettlingSave) -> None:
        self.calls.append((path, save, time.monotonic()))
        self.event.set()

    def wait(self, timeout: float = 10.0) -> None:
        assert self.event.wait(timeout), "the folder was never snapshotted"
        self.event.clear()


@pytest.fixture
def taken():
    return Taken()


@pytest.fixture
def folders(taken):
    settling = SettlingFolders(taken, QUIET)
    yield settling
    settling.stop()


def write(folders: SettlingFolders, path: str, part: str, iteration: int | None = None, **kwargs) -> None:
    folders.wrote(path, part, kwargs.get("framework", "HF"), kwargs.get("model_path"), iteration,
                  kwargs.get("exclude", ()))


def test_calls_writing_one_folder_are_one_snapshot_once_it_is_quiet(folders, taken):
    started = time.monotonic()
    write(folders, "/d", "Model.save_pretrained", iteration=7)
    write(folders, "/d", "Tokenizer.save_pretrained")
    write(folders, "/d", "Config.save_pretrained", exclude=("checkpoint-*",))
    last_write = time.monotonic()
    taken.wait()
    [(path, save, at)] = taken.calls
    assert path == "/d"
    assert save.parts == {"Model.save_pretrained", "Tokenizer.save_pretrained", "Config.save_pretrained"}
    assert save.iteration == 7  # a later call without an iteration keeps the known one
    assert save.exclude == ("checkpoint-*",)
    assert at - last_write >= QUIET * 0.9 and at - started >= QUIET * 0.9
    time.sleep(QUIET * 2)
    assert len(taken.calls) == 1


def test_each_write_restarts_the_quiet_time(folders, taken):
    first = time.monotonic()
    for _ in range(4):
        write(folders, "/d", "Model.save_pretrained" if _ == 0 else "Tokenizer.save_pretrained")
        time.sleep(QUIET / 2)
    taken.wait()
    [(_, _, at)] = taken.calls
    assert at - first >= QUIET * 2  # four writes half a quiet time apart, then a quiet time


def test_the_same_call_writing_again_takes_the_pending_snapshot_first(folders, taken):
    write(folders, "/d", "Model.save_pretrained", iteration=1)
    write(folders, "/d", "Tokenizer.save_pretrained")
    folders.before_write("/d", "Model.save_pretrained")  # the second model save would overwrite the first
    [(path, save, _)] = taken.calls
    assert save.iteration == 1 and save.parts == {"Model.save_pretrained", "Tokenizer.save_pretrained"}
    write(folders, "/d", "Model.save_pretrained", iteration=2)
    taken.wait()
    taken.wait()
    assert [c[1].iteration for c in taken.calls] == [1, 2]


def test_another_part_joins_and_any_other_save_takes_it_first(folders, taken):
    write(folders, "/d", "Model.save_pretrained")
    folders.before_write("/d", "Tokenizer.save_pretrained")  # joins: nothing taken
    assert taken.calls == []
    folders.before_write("/other", None)  # another folder: nothing taken
    assert taken.calls == []
    folders.before_write("/d", None)  # a plain save (torch.save) into the folder path
    assert [c[0] for c in taken.calls] == ["/d"]


def test_a_load_and_a_flush_take_waiting_folders_at_once(folders, taken):
    write(folders, "/a", "Model.save_pretrained")
    write(folders, "/b", "Model.save_pretrained")
    write(folders, "/c", "Model.save_pretrained")
    folders.take("/a")
    folders.take("/never-written")
    assert [c[0] for c in taken.calls] == ["/a"]
    folders.take_all()
    assert sorted(c[0] for c in taken.calls) == ["/a", "/b", "/c"]
    time.sleep(QUIET * 2)
    assert len(taken.calls) == 3  # the timer finds nothing left


def test_the_timer_waits_for_a_save_in_progress_into_the_folder(folders, taken):
    write(folders, "/d", "Model.save_pretrained")
    lock = path_lock("/d")
    with lock:  # a save into /d is running (the wrapper holds the path lock from fence to open)
        time.sleep(QUIET * 2)
        assert taken.calls == []
        write(folders, "/d", "Tokenizer.save_pretrained")  # that save returns: quiet time restarts
    taken.wait()
    assert taken.calls[0][1].parts == {"Model.save_pretrained", "Tokenizer.save_pretrained"}


class Messages(logging.Handler):
    """The autolog logger's records, whatever other tests did to propagation and levels."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_a_failing_snapshot_is_reported_and_the_timer_goes_on(monkeypatch):
    from autolog import safety

    monkeypatch.delenv("AUTOLOG_STRICT", raising=False)
    monkeypatch.setattr(safety, "_reported", set())  # a failure kind warns once per process: this run's first
    messages = Messages()
    logging.getLogger("autolog").addHandler(messages)
    done = threading.Event()
    calls = []

    def take(path, save):
        calls.append(path)
        if path == "/gone":
            raise FileNotFoundError("folder deleted before it settled")
        done.set()

    folders = SettlingFolders(take, QUIET)
    try:
        write(folders, "/gone", "Model.save_pretrained")
        time.sleep(QUIET / 3)
        write(folders, "/d", "Model.save_pretrained")
        assert done.wait(10)
    finally:
        folders.stop()
        logging.getLogger("autolog").removeHandler(messages)
    assert calls == ["/gone", "/d"]
    assert any("folder deleted before it settled" in line for line in messages.lines), messages.lines


@pytest.mark.parametrize("strict", [False, True])
def test_a_folder_that_cannot_be_snapshotted_at_a_flush_leaves_the_others_taken(monkeypatch, strict):
    """A folder deleted before it settled: the flush (close) takes every other waiting folder, and only
    then reports that one (raises it in strict mode). Raised at once, it left the folders after it
    unsnapshotted, and close() raised it."""
    from autolog import safety

    if strict:
        monkeypatch.setenv("AUTOLOG_STRICT", "1")
    else:
        monkeypatch.delenv("AUTOLOG_STRICT", raising=False)
    monkeypatch.setattr(safety, "_reported", set())
    messages = Messages()
    logging.getLogger("autolog").addHandler(messages)
    calls = []

    def take(path, save):
        calls.append(path)
        if path == "/gone":
            raise FileNotFoundError("folder deleted before it settled")

    folders = SettlingFolders(take, 3600)
    try:
        for path in ("/gone", "/kept", "/also kept"):
            write(folders, path, "Model.save_pretrained")
        if strict:
            with pytest.raises(FileNotFoundError, match="deleted before it settled"):
                folders.take_all()
        else:
            folders.take_all()
    finally:
        folders.stop()
        logging.getLogger("autolog").removeHandler(messages)
    assert calls == ["/gone", "/kept", "/also kept"]
    assert strict or any("folder deleted before it settled" in line for line in messages.lines), messages.lines


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="tests/interrupts.py: CPython 3.10-3.11's signal points")
@pytest.mark.parametrize("how", ["a save writing the folder again", "a load of it"])
def test_a_ctrl_c_while_a_folder_is_taken_does_not_lose_its_snapshot(how):
    """Interrupted anywhere while a waiting folder is taken (before a save writes it again, or a load
    reads it), the folder is taken again by the next flush, or was taken: never dropped."""
    from interrupts import interrupted_at

    for n in itertools.count(1):
        taken = Taken()
        folders = SettlingFolders(taken, 3600)  # no timer: only the calls here take it
        write(folders, "/d", "Model.save_pretrained")
        if how == "a load of it":
            where = interrupted_at(n, lambda: folders.take("/d"))
        else:
            with path_lock("/d"):
                where = interrupted_at(n, lambda: folders.before_write("/d", "Model.save_pretrained"))
        folders.take_all()
        folders.stop()
        assert [path for path, _, _ in taken.calls][:1] == ["/d"], f"Ctrl-C at {where}: the folder was never taken"
        if where is None:
            break
    assert n > 5


# -- a call that raised after writing part of its files ----------------------------------------------
def _write_files(folder, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        (folder / name).write_bytes(data)


def test_what_a_call_that_raised_changed_is_left_out_until_a_call_that_returns_writes_it(folders, tmp_path, caplog):
    path = str(tmp_path)
    folders.before_write(path, "Model.save_pretrained")
    _write_files(tmp_path, {"config.json": b"{}", "model.safetensors": b"weights"})
    folders.finished(path, "Model.save_pretrained", raised=False)
    assert folders.left_out(path) == ()

    folders.before_write(path, "Tokenizer.save_pretrained")
    _write_files(tmp_path, {"tokenizer.json": b'{"vocab": [', "config.json": b'{"half'})
    with caplog.at_level(logging.WARNING, logger="autolog"):
        folders.finished(path, "Tokenizer.save_pretrained", raised=True)
    assert folders.left_out(path) == ("config.json", "tokenizer.json")
    [warning] = [r.getMessage() for r in caplog.records]
    assert "Tokenizer.save_pretrained" in warning and "lost from the completed saves too: config.json" in warning

    # a model save that returns rewrites config.json, not tokenizer.json
    folders.before_write(path, "Model.save_pretrained")
    _write_files(tmp_path, {"config.json": b"{}", "model.safetensors": b"weights 2"})
    folders.finished(path, "Model.save_pretrained", raised=False)
    assert folders.left_out(path) == ("tokenizer.json",)
    folders.before_write(path, "Tokenizer.save_pretrained")
    _write_files(tmp_path, {"tokenizer.json": b'{"vocab": []}'})
    folders.finished(path, "Tokenizer.save_pretrained", raised=False)
    assert folders.left_out(path) == ()


def test_a_call_that_raised_before_writing_anything_leaves_nothing_out(folders, tmp_path, caplog):
    _write_files(tmp_path, {"config.json": b"{}"})
    folders.before_write(str(tmp_path), "Tokenizer.save_pretrained")
    with caplog.at_level(logging.WARNING, logger="autolog"):
        folders.finished(str(tmp_path), "Tokenizer.save_pretrained", raised=True)
    assert folders.left_out(str(tmp_path)) == () and not caplog.records
    missing = str(tmp_path / "never-made")  # it raised before making the folder
    folders.before_write(missing, "Model.save_pretrained")
    folders.finished(missing, "Model.save_pretrained", raised=True)
    assert folders.left_out(missing) == ()


def test_names_left_out_are_globs_that_match_only_themselves(folders, tmp_path):
    folders.before_write(str(tmp_path), "Tokenizer.save_pretrained")
    _write_files(tmp_path, {"vocab[1]*.json": b"half"})
    folders.finished(str(tmp_path), "Tokenizer.save_pretrained", raised=True)
    [glob_] = folders.left_out(str(tmp_path))
    assert fnmatch.fnmatchcase("vocab[1]*.json", glob_) and not fnmatch.fnmatchcase("vocab1x.json", glob_)


def test_a_save_inside_a_waiting_folder_joins_it_unless_it_wrote_that_file_already(folders, taken, tmp_path, caplog):
    write(folders, "/runs/d", "Model.save_pretrained")
    for beside in ("/runs/d2/model.pt", "/runs/model.pt", "/runs", "/runs/d", "/other/d/model.pt"):
        assert folders.folders_around(beside) == ()
    assert folders.folders_around("/runs/d/sub/extra.pt") == ("/runs/d",)

    d = str(tmp_path)
    write(folders, d, "Model.save_pretrained")
    due = folders._pending[d].due
    optimizer, scheduler = tmp_path / "optimizer.pt", tmp_path / "scheduler.pt"
    folders.before_write(str(optimizer), None, held=(d,))  # torch.save(opt, d/optimizer.pt)
    optimizer.write_bytes(b"optimizer")
    folders.after_save(str(optimizer), raised=False)
    assert taken.calls == []
    assert folders._pending[d].inner == {str(optimizer)} and folders._pending[d].due > due
    folders.before_write(str(scheduler), None, held=(d,))
    with caplog.at_level(logging.WARNING, logger="autolog"):
        folders.after_save(str(scheduler), raised=True)  # raised before it wrote anything
    assert folders.left_out(d) == () and not caplog.records
    folders.before_write(str(scheduler), None, held=(d,))
    scheduler.write_bytes(b"half")
    with caplog.at_level(logging.WARNING, logger="autolog"):
        folders.after_save(str(scheduler), raised=True)  # half written: not the folder's
    assert folders.left_out(d) == ("scheduler.pt",) and "scheduler.pt" in caplog.text
    assert taken.calls == []

    folders.before_write(str(optimizer), None, held=(d,))  # again: it would overwrite what d holds
    assert [path for path, _, _ in taken.calls] == [d]
    assert taken.calls[0][1].inner == {str(optimizer)}
    folders.after_save(str(optimizer), raised=False)  # and the folder's next wait begins
    again = folders._pending[d]
    assert again.inner == {str(optimizer)} and again.parts == {"Model.save_pretrained"}


def test_a_declared_write_inside_a_waiting_folder_takes_it_first(folders, taken):
    write(folders, "/runs/d", "Trainer.save_model")
    folders.before_write("/runs/d/README.md", None, write=True, held=("/runs/d",))
    assert [path for path, _, _ in taken.calls] == ["/runs/d"]


def test_a_save_that_did_not_hold_the_folders_lock_neither_joins_nor_takes_it(folders, taken):
    """The folder began waiting after the save looked for one: its lock cannot be taken now (the file's
    is held: the other order), so the folder is left as it is."""
    write(folders, "/runs/d", "Model.save_pretrained")
    folders.before_write("/runs/d/optimizer.pt", None, held=())
    folders.after_save("/runs/d/optimizer.pt", raised=False)
    assert taken.calls == [] and folders._pending["/runs/d"].inner == set()


def test_a_file_a_joined_save_left_out_is_back_once_a_save_of_it_returns_after_the_wait(folders, taken, tmp_path,
                                                                                         caplog):
    d, optimizer = str(tmp_path), tmp_path / "optimizer.pt"
    write(folders, d, "Model.save_pretrained")
    folders.before_write(str(optimizer), None, held=(d,))
    optimizer.write_bytes(b"half")
    with caplog.at_level(logging.WARNING, logger="autolog"):
        folders.after_save(str(optimizer), raised=True)
    folders.take_all()  # the folder's snapshot, without the half-written file
    assert [save.inner for _, save, _ in taken.calls] == [set()] and folders.left_out(d) == ("optimizer.pt",)
    assert folders.folders_around(str(optimizer)) == ()

    folders.before_write(str(optimizer), None)
    optimizer.write_bytes(b"whole")
    folders.after_save(str(optimizer), raised=False)  # written whole again
    assert folders.left_out(d) == ()


def test_a_save_into_a_waiting_folder_inside_another_holds_and_joins_both(folders, taken):
    """model.save_pretrained(out), then tokenizer.save_pretrained(out/tokenizer), every epoch: the next
    tokenizer save would overwrite what out's snapshot holds, so out is taken first."""
    write(folders, "/out", "Model.save_pretrained")
    assert folders.folders_around("/out/tokenizer") == ("/out",)
    folders.before_write("/out/tokenizer", "Tokenizer.save_pretrained", held=("/out",))
    folders.after_save("/out/tokenizer", raised=False, part="Tokenizer.save_pretrained")
    write(folders, "/out/tokenizer", "Tokenizer.save_pretrained")
    assert folders._pending["/out"].inner == {"/out/tokenizer"}
    assert folders.folders_around("/out/tokenizer") == ("/out",)  # waiting itself too
    assert folders.folders_around("/out/tokenizer/vocab.txt") == ("/out", "/out/tokenizer")  # outermost first

    folders.before_write("/out/tokenizer", "Tokenizer.save_pretrained", held=("/out",))  # the next epoch
    assert [path for path, _, _ in taken.calls] == ["/out", "/out/tokenizer"]
    folders.after_save("/out/tokenizer", raised=False, part="Tokenizer.save_pretrained")
    assert folders._pending["/out"].inner == {"/out/tokenizer"}  # out's next wait holds it again


def _settle_save(folders: SettlingFolders, folder, part: str, files: dict[str, bytes], raises: bool = False) -> None:
    """One settle call into folder as the wrapper makes it: locks, write, end, and wrote() if it returned."""
    path = str(folder)
    folders.before_write(path, part, held=folders.folders_around(path))
    folder.mkdir(exist_ok=True)
    _write_files(folder, files)
    folders.finished(path, part, raised=raises)
    folders.after_save(path, raised=raises, part=part)
    if not raises:
        write(folders, path, part)


def test_the_next_part_of_a_waiting_folder_inside_another_takes_neither(folders, taken, tmp_path):
    """model.save_pretrained(out), then model and tokenizer save_pretrained(out/best): the tokenizer
    completes out/best, one user action with its model, so out is not taken without it."""
    out, best = tmp_path, tmp_path / "best"
    _settle_save(folders, out, "Model.save_pretrained", {"model.safetensors": b"m"})
    _settle_save(folders, best, "Model.save_pretrained", {"model.safetensors": b"best", "config.json": b"{}"})
    _settle_save(folders, best, "Tokenizer.save_pretrained", {"tokenizer.json": b"{}"})
    assert taken.calls == []
    assert folders._pending[str(out)].inner == {str(best)}

    _settle_save(folders, best, "Model.save_pretrained", {"model.safetensors": b"better"})  # overwrites both
    assert [path for path, _, _ in taken.calls] == [str(out), str(best)]


def test_a_folder_inside_a_waiting_one_whose_call_raised_before_writing_leaves_nothing_out(folders, tmp_path, caplog):
    out, tokenizer = tmp_path, tmp_path / "tokenizer"
    for epoch in range(2):
        _settle_save(folders, out, "Model.save_pretrained", {"model.safetensors": b"m%d" % epoch})
        with caplog.at_level(logging.WARNING, logger="autolog"):
            _settle_save(folders, tokenizer, "Tokenizer.save_pretrained", {"tokenizer.json": b"{}"} if epoch == 0 else {},
                         raises=epoch == 1)  # stopped before it wrote (a Ctrl-C in the fence)
    assert folders.left_out(str(out)) == () and folders.left_out(str(tokenizer)) == () and not caplog.records


def test_what_is_left_out_of_a_folder_inside_is_left_out_of_the_folders_around_it(folders, tmp_path, caplog):
    """model.save_pretrained(out/best) raised halfway: out/best's snapshots and out's leave out what it
    wrote until those files are written whole again (the tokenizer's save does not)."""
    out, best = tmp_path, tmp_path / "best"
    _settle_save(folders, out, "Model.save_pretrained", {"model.safetensors": b"m"})
    with caplog.at_level(logging.WARNING, logger="autolog"):
        _settle_save(folders, best, "Model.save_pretrained", {"config.json": b"{}", "model.safetensors": b"ha"},
                     raises=True)
    assert folders.left_out(str(best)) == ("config.json", "model.safetensors")
    assert folders.left_out(str(out)) == ("best/config.json", "best/model.safetensors")
    _settle_save(folders, best, "Tokenizer.save_pretrained", {"tokenizer.json": b"{}"})
    assert folders.left_out(str(out)) == ("best/config.json", "best/model.safetensors")
    sources = collect_sources(str(out), exclude=folders.left_out(str(out)))
    assert [name for _, name in sources.files] == ["model.safetensors", "best/tokenizer.json"]
    _settle_save(folders, best, "Model.save_pretrained", {"config.json": b"{}", "model.safetensors": b"whole"})
    assert folders.left_out(str(best)) == () and folders.left_out(str(out)) == ()


def test_what_a_call_that_raised_wrote_and_the_next_one_removed_is_nothing_left_out(folders, tmp_path, caplog):
    """A sharded save raised after its first shard; the one that returns writes one file and removes
    the earlier save's shards (save_pretrained cleans the folder)."""
    out, best = tmp_path, tmp_path / "best"
    _settle_save(folders, out, "Model.save_pretrained", {"model.safetensors": b"m"})
    with caplog.at_level(logging.WARNING, logger="autolog"):
        _settle_save(folders, best, "Model.save_pretrained", {"model-00001-of-00002.safetensors": b"shard"},
                     raises=True)
    assert folders.left_out(str(out)) == ("best/model-00001-of-00002.safetensors",)
    (best / "model-00001-of-00002.safetensors").unlink()
    _settle_save(folders, best, "Model.save_pretrained", {"model.safetensors": b"one file"})
    assert folders.left_out(str(best)) == () and folders.left_out(str(out)) == ()


def test_a_save_deeper_inside_a_waiting_folder_that_raised_leaves_out_only_its_file(folders, tmp_path, caplog):
    """out waits; out/a holds a complete save; a save_pretrained of out/a/b, and a torch.save of
    out/a/x.pt (out/a itself not waiting), raise halfway: out keeps out/a's other files."""
    out = tmp_path
    _folder_files = {"a/c/model.safetensors": b"complete", "a/c/config.json": b"{}"}
    for name, data in _folder_files.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(data)
    _settle_save(folders, out, "Model.save_pretrained", {"model.safetensors": b"m"})
    (out / "a" / "b").mkdir()
    with caplog.at_level(logging.WARNING, logger="autolog"):
        _settle_save(folders, out / "a" / "b", "Model.save_pretrained", {"model.safetensors": b"ha"}, raises=True)
        x = str(out / "a" / "x.pt")
        assert folders.folders_around(x) == (str(out),)
        folders.before_write(x, None, held=(str(out),))
        (out / "a" / "x.pt").write_bytes(b"half")
        folders.after_save(x, raised=True)
    assert folders.left_out(str(out)) == ("a/b/model.safetensors", "a/x.pt")
    sources = collect_sources(str(out), exclude=folders.left_out(str(out)))
    assert [name for _, name in sources.files] == ["model.safetensors", "a/c/config.json", "a/c/model.safetensors"]
    assert "a/x.pt" in caplog.text


def test_a_folder_saved_inside_a_waiting_one_that_raised_stays_left_out_when_a_part_returns(folders, tmp_path, caplog):
    """A distributed checkpoint saved into out/dcp (a folder, not a settle call) raised halfway; the next
    tokenizer.save_pretrained(out) returns: out's snapshot still leaves the half-written dcp/ out."""
    out, dcp = tmp_path, tmp_path / "dcp"
    _settle_save(folders, out, "Model.save_pretrained", {"model.safetensors": b"m"})
    folders.before_write(str(dcp), None, held=folders.folders_around(str(dcp)))
    dcp.mkdir()
    (dcp / "__0_0.distcp").write_bytes(b"half")
    with caplog.at_level(logging.WARNING, logger="autolog"):
        folders.after_save(str(dcp), raised=True)
    assert folders.left_out(str(out)) == ("dcp",)
    _settle_save(folders, out, "Tokenizer.save_pretrained", {"tokenizer.json": b"{}"})
    assert folders.left_out(str(out)) == ("dcp",)


def test_a_load_of_a_file_inside_waiting_folders_takes_them_first(folders, taken):
    write(folders, "/out", "Model.save_pretrained")
    write(folders, "/out/best", "Model.save_pretrained")
    folders.take("/out/best/model.safetensors")
    assert [path for path, _, _ in taken.calls] == ["/out", "/out/best"]


def test_a_load_inside_a_folder_the_timer_is_taking_waits_until_its_snapshot_is_queued(folders):
    """The timer took the folder out of waiting and queues its snapshot (holding its lock): a load of a
    file inside it returns once that is done, so the load's lineage comes after the folder's snapshot."""
    folders._taking.add("/out")
    returned = threading.Event()
    with path_lock("/out"):
        loader = threading.Thread(target=lambda: (folders.take("/out/model.safetensors"), returned.set()))
        loader.start()
        assert not returned.wait(0.3)
    assert returned.wait(10)
    loader.join()


def test_a_save_inside_a_folder_the_timer_is_queueing_takes_its_lock_without_joining_it(folders, taken):
    """Its snapshot's files are being opened: the save waits for the folder's lock (its fence then finds
    the folder's unread snapshot) and does not start a wait the folder no longer has."""
    folders._taking.add("/out")
    assert folders.folders_around("/out/optimizer.pt") == ("/out",)
    folders._taking.discard("/out")  # queued meanwhile
    folders.before_write("/out/optimizer.pt", None, held=("/out",))
    folders.after_save("/out/optimizer.pt", raised=False)
    assert taken.calls == [] and folders._pending == {}


def test_a_load_through_a_symlink_takes_the_waiting_folder_it_leads_into(folders, taken, tmp_path):
    """`latest -> checkpoint-6` (or a link to its weights file): the load reads the waiting folder's files,
    so its lineage needs the folder's snapshot first, as a load by the folder's own name does."""
    out, best = tmp_path / "out", tmp_path / "out" / "best"
    best.mkdir(parents=True)
    (best / "model.safetensors").write_bytes(b"w")
    write(folders, str(out), "Model.save_pretrained")
    write(folders, str(best), "Model.save_pretrained")
    (tmp_path / "latest").symlink_to(best)
    folders.take(str(tmp_path / "latest" / "model.safetensors"))
    assert [path for path, _, _ in taken.calls] == [str(out), str(best)]  # outermost first

    write(folders, str(best), "Model.save_pretrained")
    (tmp_path / "weights.safetensors").symlink_to(best / "model.safetensors")
    folders.take(str(tmp_path / "weights.safetensors"))
    assert [path for path, _, _ in taken.calls][2:] == [str(best)]

    write(folders, str(best), "Model.save_pretrained")
    folders.take(str(tmp_path / "elsewhere.safetensors"))  # leads nowhere near it
    folders.take(str(tmp_path / "out-of-tree" / "model.safetensors"))  # a name that only starts alike
    assert len(taken.calls) == 3


def test_a_load_of_a_url_or_of_a_name_no_file_can_have_takes_only_folders_holding_it_by_name(folders, taken,
                                                                                            tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(folders, str(tmp_path), "Model.save_pretrained")  # save_pretrained(".")
    folders.take("s3://bucket/model.safetensors")  # no folder of this machine holds it
    assert taken.calls == []
    folders.take(str(tmp_path / "a\0b"))  # a NUL byte: resolving it raises; by its name it is inside
    assert [path for path, _, _ in taken.calls] == [str(tmp_path)]


def test_saves_lock_waiting_folders_by_name_even_where_an_inner_one_resolves_shorter(folders, tmp_path):
    """run waits, and so does run/tok, a symlink to shared storage (a shorter real path): every save
    takes their locks outer first by name, the one order all saves keep (by resolved path, a save
    into run/tok would lock run/tok first: a deadlock beside one that locks run, then run/tok)."""
    run, shared = tmp_path / "run", tmp_path / "s"
    run.mkdir()
    shared.mkdir()
    (run / "tok").symlink_to(shared)
    outer, inner = str(run), str(run / "tok")
    write(folders, outer, "Model.save_pretrained")
    write(folders, inner, "Tokenizer.save_pretrained")
    assert folders.folders_around(inner) == (outer,)
    assert folders.folders_around(inner + "/extra.pt") == (outer, inner)


def test_the_next_part_of_a_folder_holding_a_waiting_one_takes_neither(folders, taken):
    """model.save_pretrained(out), model.save_pretrained(out/sub), then each tokenizer: no call
    rewrites another's files, so each folder is one snapshot, with both its parts."""
    for part in ("Model.save_pretrained", "Tokenizer.save_pretrained"):
        for folder in ("/out", "/out/sub"):
            held = folders.folders_around(folder)
            folders.before_write(folder, part, held=held)
            folders.after_save(folder, raised=False, part=part)
            write(folders, folder, part)
    assert taken.calls == []
    folders.take_all()
    assert sorted((path, sorted(save.parts)) for path, save, _ in taken.calls) == [
        ("/out", ["Model.save_pretrained", "Tokenizer.save_pretrained"]),
        ("/out/sub", ["Model.save_pretrained", "Tokenizer.save_pretrained"])]
