"""The stat cache (snapshots/identity.py) on a real SQLite store and real files: a file this host knows
is never hashed again while it looks the same, a changed one always is, and only what was really read
is remembered."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from autolog.context import default_context
from autolog.snapshots import identity
from autolog.storage.hashing import bytes_digest, manifest_digest
from autolog.storage.sources import SourceChangedError, collect_sources, open_sources


@pytest.fixture
def ctx(autolog_home):
    identity._memory.clear()
    yield default_context()
    identity._memory.clear()


@pytest.fixture
def hashed(monkeypatch) -> list[int]:
    """The files identity.py really read to hash them (by inode), in order."""
    reads: list[int] = []
    real = identity.fd_digest

    def counting(fd: int, *args) -> str:
        reads.append(os.fstat(fd).st_ino)
        return real(fd, *args)

    monkeypatch.setattr(identity, "fd_digest", counting)
    return reads


def identify_file(ctx, path: Path) -> str:
    with open(path, "rb") as f:
        return identity.file_identity(ctx, f.fileno(), os.fstat(f.fileno()), str(path))


def rewrite_keeping_size_and_mtime(path: Path, data: bytes) -> None:
    st = path.stat()
    path.write_bytes(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # only the ctime shows the change


def test_a_known_file_is_hashed_once_then_found_in_memory_and_in_the_database(ctx, hashed, tmp_path):
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"weights v1")
    assert identify_file(ctx, weights) == bytes_digest(b"weights v1")
    assert identify_file(ctx, weights) == bytes_digest(b"weights v1")
    assert hashed == [weights.stat().st_ino]  # the second time from memory
    identity._memory.clear()  # another process on this host: only the database knows it
    assert identify_file(ctx, weights) == bytes_digest(b"weights v1")
    assert hashed == [weights.stat().st_ino]
    assert ctx.store.cached_digest(identity._HOST, weights.stat()) == bytes_digest(b"weights v1")


def test_a_file_known_in_this_process_needs_no_database_query(ctx, hashed, tmp_path, monkeypatch):
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"weights v1")
    identify_file(ctx, weights)
    queries = []
    real = ctx.store.cached_digest
    monkeypatch.setattr(ctx.store, "cached_digest", lambda *a: queries.append(a) or real(*a))
    assert identify_file(ctx, weights) == bytes_digest(b"weights v1")
    assert queries == [] and len(hashed) == 1


def test_a_file_saved_many_times_keeps_one_entry_in_memory(ctx, tmp_path):
    """A run rewriting one checkpoint path thousands of times must not grow the cache with it."""
    weights = tmp_path / "ckpt.pt"
    for step in range(5):
        weights.write_bytes(b"step %d " % step * (step + 1))  # a new size each time
        identify_file(ctx, weights)
    assert len(identity._memory) == 1


def test_a_file_rewritten_with_the_same_size_and_mtime_is_hashed_again(ctx, hashed, tmp_path):
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"weights v1")
    identify_file(ctx, weights)
    rewrite_keeping_size_and_mtime(weights, b"weights v2")
    assert identify_file(ctx, weights) == bytes_digest(b"weights v2")
    identity._memory.clear()
    assert identify_file(ctx, weights) == bytes_digest(b"weights v2")  # the database's row moved on too
    assert len(hashed) == 2


def test_each_file_has_its_own_entry(ctx, hashed, tmp_path):
    a, b = tmp_path / "a.pt", tmp_path / "b.pt"
    a.write_bytes(b"same size A")
    b.write_bytes(b"same size B")
    assert [identify_file(ctx, p) for p in (a, b, a, b)] == [bytes_digest(b"same size A"),
                                                             bytes_digest(b"same size B")] * 2
    assert hashed == [a.stat().st_ino, b.stat().st_ino]


def test_a_file_that_changed_while_it_was_hashed_has_no_digest_and_is_not_remembered(ctx, monkeypatch, tmp_path):
    """The digest would be of a mix of old and new bytes: a path-only snapshot recorded with it
    described content that was never saved, and a load linked by it, a snapshot that never existed."""
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"weights being written")
    real = identity.fd_digest

    def rewritten_meanwhile(fd: int, *args) -> str:
        digest = real(fd, *args)
        with open(weights, "ab") as f:
            f.write(b" and more")
        return digest

    monkeypatch.setattr(identity, "fd_digest", rewritten_meanwhile)
    with open(weights, "rb") as f:
        st = os.fstat(f.fileno())
        with pytest.raises(SourceChangedError, match="its digest was not recorded"):
            identity.file_identity(ctx, f.fileno(), st, str(weights))
    assert ctx.store.cached_digest(identity._HOST, st) is None
    assert identity._memory.get((st.st_dev, st.st_ino)) is None


def _stat(st: os.stat_result, values: dict) -> os.stat_result:
    """An os.stat_result like st with other size / mtime_ns / ctime_ns (as a later save of the file has)."""
    seq = list(st[:10])
    seq[6] = values["st_size"]
    extra = {"st_mtime_ns": values["st_mtime_ns"], "st_ctime_ns": values["st_ctime_ns"],
             "st_atime_ns": st.st_atime_ns}
    return os.stat_result(seq, extra)


def test_remember_many_writes_the_newest_stat_of_each_file_once(ctx, tmp_path):
    a, b = tmp_path / "a.pt", tmp_path / "b.pt"
    a.write_bytes(b"a")
    b.write_bytes(b"b")
    sa, sb = a.stat(), b.stat()
    older = _stat(sa, {"st_size": 1, "st_mtime_ns": sa.st_mtime_ns - 10, "st_ctime_ns": sa.st_ctime_ns - 10})
    same_ctime_older_mtime = _stat(sa, {"st_size": 1, "st_mtime_ns": sa.st_mtime_ns - 5, "st_ctime_ns": sa.st_ctime_ns})
    tie = _stat(sa, {"st_size": 1, "st_mtime_ns": sa.st_mtime_ns, "st_ctime_ns": sa.st_ctime_ns})
    written: list[list] = []
    known = [(older, "blake3:old"), (sa, "blake3:newest"), (same_ctime_older_mtime, "blake3:older mtime"),
             (sb, "blake3:b")]
    identity.remember_many(ctx, known, written.append)
    assert len(written) == 1
    assert sorted((st.st_ino, digest) for _, st, digest in written[0]) == sorted(
        [(sa.st_ino, "blake3:newest"), (sb.st_ino, "blake3:b")])
    assert {host for host, _, _ in written[0]} == {identity._HOST}
    # an equal stat seen later wins (the later save of the same bytes)
    identity.remember_many(ctx, [(sa, "blake3:first"), (tie, "blake3:later")], written.append)
    assert [digest for _, _, digest in written[1]] == ["blake3:later"]
    # one ctime (times preserved by a copy), two mtimes: the later mtime wins, in either order
    c = sa.st_ctime_ns
    early, late = (_stat(sa, {"st_size": 1, "st_mtime_ns": c - 20, "st_ctime_ns": c}),
                   _stat(sa, {"st_size": 1, "st_mtime_ns": c - 10, "st_ctime_ns": c}))
    identity.remember_many(ctx, [(early, "blake3:early"), (late, "blake3:late")], written.append)
    identity.remember_many(ctx, [(late, "blake3:late"), (early, "blake3:early")], written.append)
    assert [digest for rows in written[2:] for _, _, digest in rows] == ["blake3:late", "blake3:late"]


def test_what_remember_many_wrote_is_known_without_reading_the_file(ctx, hashed, tmp_path):
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"stored by a worker")
    st = weights.stat()
    identity.remember_many(ctx, [(st, bytes_digest(b"stored by a worker"))], lambda rows: None)
    assert identify_file(ctx, weights) == bytes_digest(b"stored by a worker")
    assert hashed == []


def test_opened_content_of_a_file_and_of_a_folder(ctx, tmp_path):
    single = tmp_path / "model.pt"
    single.write_bytes(b"one file")
    opened = open_sources(collect_sources(str(single)))
    try:
        content = identity.opened_content(ctx, opened)
    finally:
        opened.close()
    assert (content.digest, content.size) == (bytes_digest(b"one file"), len(b"one file"))

    folder = tmp_path / "export"
    (folder / "sub").mkdir(parents=True)
    files = {"config.json": b"{}", "sub/weights.bin": b"weights" * 3}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    content = identity.identify(ctx, collect_sources(str(folder)))
    manifest = sorted(content.manifest, key=lambda e: e["name"])
    assert manifest == [{"name": name, "size": len(data), "digest": bytes_digest(data)}
                        for name, data in sorted(files.items())]
    assert content.digest == manifest_digest(manifest)
    assert content.size == sum(len(d) for d in files.values())
