"""Helpers for the team-mode tests: one PostgreSQL database + one S3 bucket shared by every process.

Importable by the tests (pytest puts this folder on sys.path) and by the subprocesses they start
(`Team.env()` puts this folder and tests/pipeline on their PYTHONPATH).
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from autolog.storage.hashing import bytes_digest

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent
PIPELINE = TESTS / "pipeline"
if str(PIPELINE) not in sys.path:  # pipeline_helpers: PutControl, tensors, cli_json
    sys.path.insert(0, str(PIPELINE))


@dataclass
class Team:
    """The shared store: database URL, output_uri (s3://bucket/runs) and the bucket's name."""

    db_url: str
    output_uri: str
    base_env: dict[str, str]

    @property
    def password(self) -> str:
        """The database password: it must never appear in a record, a log or the CLI's output."""
        import sqlalchemy as sa

        return sa.engine.make_url(self.db_url).password

    @property
    def bucket(self) -> str:
        return self.output_uri[len("s3://"):].split("/", 1)[0]

    def env(self, home: str | os.PathLike | None = None, **extra: str) -> dict[str, str]:
        """A child process's environment: this store, (optionally) its own AUTOLOG_HOME, helpers importable."""
        env = dict(self.base_env)
        env.update(AUTOLOG_DB_URL=self.db_url, AUTOLOG_DEFAULT_OUTPUT_URI=self.output_uri)
        if home is not None:
            env["AUTOLOG_HOME"] = str(home)
        paths = [str(HERE), str(PIPELINE), env.get("PYTHONPATH", "")]
        env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
        env.update(extra)
        return env


@pytest.fixture
def team(pg_url: str, s3_uri: str, monkeypatch: pytest.MonkeyPatch, child_env) -> Team:
    """This test process (and its children) use a fresh PostgreSQL database and a fresh bucket."""
    monkeypatch.setenv("AUTOLOG_DB_URL", pg_url)
    monkeypatch.setenv("AUTOLOG_DEFAULT_OUTPUT_URI", s3_uri)
    return Team(db_url=pg_url, output_uri=s3_uri, base_env=child_env())


# -- the bucket, read directly (not through autolog) ------------------------------------------
def s3() -> Any:
    """A fresh s3fs client with no listing cache: what is really in the bucket right now."""
    import s3fs

    return s3fs.S3FileSystem(skip_instance_cache=True, use_listings_cache=False,
                             client_kwargs={"endpoint_url": os.environ["AWS_ENDPOINT_URL"]})


def object_bytes(uri: str) -> bytes:
    return s3().cat_file(uri[len("s3://"):] if uri.startswith("s3://") else uri)


def object_sha256(uri: str) -> str:
    """The plain sha256 of an object (what an artifact records)."""
    return hashlib.sha256(object_bytes(uri)).hexdigest()


def object_digest(uri: str) -> str:
    """The digest of an object, as a snapshot records it ("blake3:<hex>")."""
    return bytes_digest(object_bytes(uri))


def objects_digest(uris: list[str]) -> dict[str, str]:
    """The digests of many objects, fetched concurrently by one client."""
    found = s3().cat([u[len("s3://"):] for u in uris], on_error="return")
    return {"s3://" + k: f"unreadable: {v!r}" if isinstance(v, Exception) else bytes_digest(v)
            for k, v in found.items()}


def keys_under(uri: str) -> list[str]:
    """Every object key under an s3:// prefix, as s3:// URIs."""
    fs = s3()
    root = uri[len("s3://"):].rstrip("/")
    return sorted("s3://" + k for k in fs.find(root)) if fs.exists(root) else []


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def assert_stored_on_s3(snap: Any, team: Team, expected_digest: str | None = None) -> None:
    """The snapshot is stored in the team bucket and the object's bytes hash to the recorded digest."""
    assert snap.status == "stored", (snap.seq, snap.status, snap.reason)
    assert snap.uri.startswith(f"s3://{team.bucket}/"), snap.uri
    if snap.files:  # a folder or several files: one object per manifest entry
        for entry in snap.files:
            assert object_digest(f"{snap.uri}/{entry['name']}") == entry["digest"], (snap.uri, entry)
    else:
        assert object_digest(snap.uri) == snap.digest, f"bytes in the bucket do not hash to {snap.digest}"
    if expected_digest is not None:
        assert snap.digest == expected_digest


# -- processes --------------------------------------------------------------------------------
def run_script(code: str, *args: str, env: dict[str, str], cwd: str | os.PathLike, name: str = "script",
               timeout: float = 300) -> subprocess.CompletedProcess:
    """Run code as the file cwd/<name>.py (a real script: run_info gets a script path)."""
    script = Path(cwd) / f"{name}.py"
    script.write_text(textwrap.dedent(code))
    return subprocess.run([sys.executable, str(script), *map(str, args)], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def last_json(proc: subprocess.CompletedProcess) -> Any:
    """The JSON report a child printed on its last line (fails with its stderr if it failed)."""
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autolog.cli", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def cli_json(env: dict[str, str], *args: str) -> Any:
    proc = cli(env, *args, "--json")
    assert proc.returncode == 0, f"autolog {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return json.loads(proc.stdout)


def sibling_module(relpath: str, name: str) -> Any:
    """Import another test folder's module under a private name (to reuse its scripts, not its tests)."""
    spec = importlib.util.spec_from_file_location(name, TESTS / relpath)
    module = sys.modules[name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def database_text(db_url: str) -> str:
    """Every row of every autolog table, as text: to prove no secret was written to the database."""
    import sqlalchemy as sa

    from autolog.db import schema

    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            return "\n".join(repr(row) for table in schema.metadata.sorted_tables
                             for row in conn.execute(sa.select(table)))
    finally:
        engine.dispose()
