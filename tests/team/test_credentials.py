"""Credentials never leak: the PostgreSQL password (part of AUTOLOG_DB_URL) and the AWS secret key (in the
environment) appear in no database row, no output of a run or of the CLI, no DEBUG record of logger
"autolog", and no error message - including runs whose URLs carry credentials themselves."""
from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

import services
from fault_helpers import Trainer, all_tables_text, run_cli, sql_rows, write_config

pytestmark = [pytest.mark.postgres, pytest.mark.s3]

ARGV_PASSWORD = "argv-pw-5d1e"  # a user's script taking its own --db-url on the command line
URL_SECRET = "url-secret-77ab"  # credentials written into an output_uri

# Task.init with DEBUG logging of "autolog" on stderr; user-facing (not strict). Each step that returns
# prints "STEP <name> ok" on stdout; an exception prints "STEP <name> raised <type>" there (its message goes
# to stderr, where the tests check it for secrets): the tests assert how far the run got (see _steps).
SNIPPET = """
import logging, sys
logging.basicConfig(format="%(levelname)s %(name)s %(message)s")
logging.getLogger("autolog").setLevel(logging.DEBUG)
from autolog import Task
step = "Task.init"
try:
    task = Task.init(project_name="creds", task_name="t", output_uri={uri!r})
    print("STEP Task.init ok", flush=True)
    step = "upload_artifact"
    task.upload_artifact("params", {{"lr": 0.1}})
    print("STEP upload_artifact ok", flush=True)
    step = "close"
    task.close()
    print("STEP close ok", flush=True)
except Exception as exc:
    print("STEP", step, "raised", type(exc).__name__, flush=True)
    print("ERROR", type(exc).__name__, exc, file=sys.stderr)
"""
ALL_STEPS = ["Task.init ok", "upload_artifact ok", "close ok"]


def _steps(run) -> list[str]:
    """What SNIPPET reported, in order: e.g. ["Task.init ok", "upload_artifact raised StorageError"]."""
    return [line[len("STEP "):] for line in run.stdout.splitlines() if line.startswith("STEP ")]


def _secrets(pg_url: str) -> list[str]:
    return [sa.engine.make_url(pg_url).password, services.S3_ENV["AWS_SECRET_ACCESS_KEY"], ARGV_PASSWORD, URL_SECRET]


def _assert_clean(text: str, secrets: list[str], where: str) -> None:
    for secret in secrets:
        assert secret not in text, f"a credential ({secret[:4]}...) leaked into {where}:\n{text[-3000:]}"


def _cli_outputs(env: dict[str, str], task_id: str, model_id: str, dest: Path) -> dict[str, str]:
    commands = [("task", "list"), ("task", "show", task_id), ("model", "list"), ("model", "show", model_id),
                ("sync",), ("gc", "--keep-last", "5", "--dry-run")]
    outputs = {}
    for args in commands:
        for extra in ((), ("--json",)):
            proc = run_cli(env, *args, *extra)
            assert proc.returncode == 0, (args, proc.stderr)
            outputs[" ".join(args + extra)] = proc.stdout + proc.stderr
    proc = run_cli(env, "model", "download", model_id, str(dest))
    assert proc.returncode == 0 and dest.exists(), proc.stderr
    outputs["model download"] = proc.stdout + proc.stderr
    return outputs


def test_a_run_and_the_cli_show_no_credentials(pg_url, s3_uri, tmp_path, child_env):
    env = child_env({"AUTOLOG_DB_URL": pg_url, "AUTOLOG_STRICT": "0"})
    argv = ("--db-url", f"postgresql://me:{ARGV_PASSWORD}@db.example/prod",
            f"--db-url=postgresql+psycopg://me:{ARGV_PASSWORD}@db.example/prod")
    trainer = Trainer(tmp_path / "work", env, argv=argv, output_uri=s3_uri, debug_log=True, file="ckpt.pt",
                      phases=[{"saves": 2}])
    summary, out, err = trainer.finish()
    secrets = _secrets(pg_url)
    assert "INFO autolog" in err, "records of 'autolog' were not shown: the check below would prove nothing"
    _assert_clean(out + err, secrets, "the run's stdout/stderr (DEBUG log of 'autolog')")

    (task,) = sql_rows(pg_url, "tasks")
    argv_recorded = task["run_info"]["argv"]
    assert argv_recorded[-3:] == ["--db-url", "postgresql://me:***@db.example/prod",
                                  "--db-url=postgresql+psycopg://me:***@db.example/prod"], argv_recorded
    dump = all_tables_text(pg_url)
    assert summary["task_id"] in dump and "ckpt.pt" in dump
    _assert_clean(dump, secrets, "the database")

    (model,) = sql_rows(pg_url, "models")
    for command, output in _cli_outputs(env, task["id"], model["id"], tmp_path / "dl.pt").items():
        _assert_clean(output, secrets, f"`autolog {command}`")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _with_password(url: str, password: str, port: int | None = None) -> str:
    parsed = sa.engine.make_url(url).set(password=password)
    return parsed.set(port=port).render_as_string(hide_password=False) if port else \
        parsed.render_as_string(hide_password=False)


@pytest.mark.parametrize("fault", ["wrong password", "database down"])
def test_database_errors_show_no_password(fault, pg_url, s3_uri, run_py, child_env, autolog_home):
    """The error of a run and of the CLI says what failed, without the password of the URL. A server that
    is down is retried for [db] retry_seconds (3 s here); a refused password is not retried (the default
    60 s of retries would show)."""
    if fault == "database down":
        write_config(autolog_home, db={"retry_seconds": 3})
    bad_url = _with_password(pg_url, "wrong-pw-91c3") if fault == "wrong password" else \
        _with_password(pg_url, sa.engine.make_url(pg_url).password, port=_free_port())
    secrets = _secrets(pg_url) + ["wrong-pw-91c3"]
    env = {"AUTOLOG_DB_URL": bad_url, "AUTOLOG_STRICT": "0"}
    start = time.monotonic()
    run = run_py(SNIPPET.format(uri=s3_uri), env=env)
    seconds = time.monotonic() - start
    expected = "password authentication failed" if fault == "wrong password" else "Connection refused"
    assert (seconds > 3) if fault == "database down" else (seconds < 30), seconds
    # Not strict: Task.init returns and the run goes on, unrecorded.
    assert run.returncode == 0 and _steps(run)[:1] == ["Task.init ok"], (run.stdout, run.stderr)
    assert expected in run.stderr, run.stderr
    _assert_clean(run.stdout + run.stderr, secrets, f"a run's output ({fault})")

    cli = run_cli(child_env(env), "task", "list")
    assert cli.returncode == 1 and expected in cli.stderr, cli.stderr
    _assert_clean(cli.stdout + cli.stderr, secrets, f"`autolog task list` ({fault})")


@pytest.mark.parametrize("fault", ["bucket missing", "credentials in output_uri"])
def test_storage_errors_show_no_secret(fault, pg_url, s3_uri, run_py, child_env):
    """Task.init refuses an output_uri it cannot write to (StorageError, strict or not), naming it with
    any password in it replaced by ***. Credentials in an s3:// URL are such a case: s3fs reads
    "key:secret@bucket" as the bucket name, which S3 rejects - so the error message (the only place the
    URL goes) is what must not show the secret."""
    key = services.S3_ENV["AWS_ACCESS_KEY_ID"]
    uri = "s3://autolog-no-such-bucket-3f2e/runs" if fault == "bucket missing" else \
        f"s3://{key}:{URL_SECRET}@{s3_uri[len('s3://'):]}"
    env = {"AUTOLOG_DB_URL": pg_url, "AUTOLOG_STRICT": "0"}
    run = run_py(SNIPPET.format(uri=uri), env=env)
    assert run.returncode == 0 and _steps(run) == ["Task.init raised StorageError"], (run.stdout, run.stderr)
    assert "ERROR StorageError" in run.stderr and "not writable" in run.stderr, run.stderr
    if fault == "credentials in output_uri":  # the message names the URL, with its secret masked
        assert f"'s3://{key}:***@{s3_uri[len('s3://'):]}' is not writable" in run.stderr, run.stderr
    secrets = _secrets(pg_url)
    _assert_clean(run.stdout + run.stderr, secrets, f"a run's output ({fault})")
    _assert_clean(all_tables_text(pg_url), secrets, f"the database ({fault})")
    for args in (("task", "list", "--json"), ("model", "list", "--json"), ("sync", "--json")):
        cli = run_cli(child_env(env), *args)
        _assert_clean(cli.stdout + cli.stderr, secrets, f"`autolog {' '.join(args)}` ({fault})")


def test_password_from_pgpassword_keeps_it_out_of_the_url(pg_url, s3_uri, run_py):
    """The README's advice: a URL without password plus PGPASSWORD (libpq's own variable) works, and the
    password is stored nowhere."""
    url = sa.engine.make_url(pg_url)
    bare = sa.engine.URL.create(url.drivername, username=url.username, host=url.host, port=url.port,
                                database=url.database).render_as_string(hide_password=False)
    assert url.password not in bare
    proc = run_py(SNIPPET.format(uri=s3_uri), env={"AUTOLOG_DB_URL": bare, "PGPASSWORD": url.password,
                                                   "AUTOLOG_STRICT": "0"})
    assert proc.returncode == 0 and "ERROR" not in proc.stderr, proc.stderr
    assert _steps(proc) == ALL_STEPS, (proc.stdout, proc.stderr)
    (task,) = sql_rows(pg_url, "tasks")
    assert task["status"] == "completed"
    _assert_clean(all_tables_text(pg_url) + proc.stdout + proc.stderr, _secrets(pg_url), "a PGPASSWORD run")
