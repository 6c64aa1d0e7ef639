"""Shared by the team-mode fault, credential and crash tests: a training script run in a child process
(user-facing behaviour: AUTOLOG_STRICT=0), gates to pause it between phases, and S3/PostgreSQL readers
that check what really reached the bucket and the database."""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import services

from autolog.storage.hashing import bytes_digest

# The child: Task.init, then phases of torch.save calls. Before a phase with a gate it writes
# <gate>.reached and waits for the test to create <gate>.go. Each save's return value, exception and
# duration are recorded; the last stdout line is the JSON summary.
TRAIN = r'''
import faulthandler, json, os, signal, sys, time
import torch
from autolog import Task
from autolog.storage.hashing import file_digest

cfg = json.loads(open(sys.argv[1]).read())
work = cfg["work"]
faulthandler.register(signal.SIGUSR1, all_threads=True)  # Trainer.stacks(): where a hung run is
if cfg.get("debug_log"):  # every record of logger "autolog", to stderr
    import logging
    logging.basicConfig(format="%(levelname)s %(name)s %(message)s")
    logging.getLogger("autolog").setLevel(logging.DEBUG)


def gate(name):
    open(os.path.join(work, name + ".reached"), "w").close()
    go, deadline = os.path.join(work, name + ".go"), time.monotonic() + 120
    while not os.path.exists(go) and time.monotonic() < deadline:
        time.sleep(0.02)


task = Task.init(project_name="faults", task_name=cfg.get("name", "train"), output_uri=cfg["output_uri"])
print("TASK", task.id, flush=True)
open(os.path.join(work, "task_id"), "w").write(task.id)
gen, saves, step = torch.Generator().manual_seed(cfg.get("seed", 0)), [], 0
for phase in cfg["phases"]:
    if phase.get("gate"):
        gate(phase["gate"])
    for _ in range(phase["saves"]):
        path = os.path.join(work, phase.get("file", cfg.get("file", "ckpt-{step}.pt")).format(step=step))
        weights = torch.randn(cfg.get("floats", 1024), generator=gen)
        start = time.monotonic()
        try:
            result, error = torch.save({"step": step, "w": weights}, path), None
        except BaseException as exc:
            result, error = None, repr(exc)
        seconds = time.monotonic() - start
        digest = file_digest(path)
        saves.append({"step": step, "phase": phase.get("gate"), "path": path, "seconds": seconds,
                      "result": repr(result), "error": error, "digest": digest})
        open(os.path.join(work, "progress"), "a").write(f"{step}\n")
        step += 1
print("SAVES " + json.dumps(saves), flush=True)
start = time.monotonic()
task.close()
summary = {"task_id": task.id, "saves": saves, "close_seconds": time.monotonic() - start}
print("SUMMARY " + json.dumps(summary), flush=True)
'''


class Trainer:
    """The training script in a child process; `gate(name)` waits until it reached a gate, `go` opens it."""

    def __init__(self, work: Path, env: dict[str, str], argv: tuple[str, ...] = (), **cfg: Any):
        self.work = work
        work.mkdir(parents=True, exist_ok=True)
        script, config = work / "train.py", work / "cfg.json"
        script.write_text(TRAIN)
        config.write_text(json.dumps({"work": str(work), **cfg}))
        self.proc = subprocess.Popen([sys.executable, str(script), str(config), *argv], env=env, cwd=work,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def reached(self, gate: str, timeout: float = 120) -> None:
        wait_for(lambda: (self.work / f"{gate}.reached").exists() or self.proc.poll() is not None, timeout)
        assert self.proc.poll() is None, f"the training process ended early: {self.proc.communicate()}"

    def stacks(self) -> str:
        """Kill the run after it printed where each of its threads is; its stderr."""
        self.proc.send_signal(signal.SIGUSR1)
        time.sleep(1.0)
        self.proc.kill()
        return self.proc.communicate()[1]

    def go(self, gate: str) -> None:
        (self.work / f"{gate}.go").touch()

    def finish(self, timeout: float = 180, check: bool = True) -> tuple[dict, str, str]:
        """The summary, stdout and stderr; check=False: also when close() failed (summary of the saves only)."""
        out, err = self.proc.communicate(timeout=timeout)
        assert self.proc.returncode == 0 or not check, f"training exited {self.proc.returncode}:\n{out}\n{err}"
        for prefix in ("SUMMARY ", "SAVES "):
            lines = [l for l in out.splitlines() if l.startswith(prefix)]
            if lines:
                data = json.loads(lines[-1][len(prefix):])
                return (data if prefix == "SUMMARY " else {"saves": data}), out, err
        raise AssertionError(f"training exited {self.proc.returncode} before its saves ended:\n{out}\n{err}")


def wait_for(condition, timeout: float, interval: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met after {timeout} s")
        time.sleep(interval)


def write_config(home: Path, **sections: dict[str, Any]) -> None:
    lines = []
    for section, values in sections.items():
        lines.append(f"[{section}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in values.items()]
    (home / "autolog.toml").write_text("\n".join(lines) + "\n")


def autolog_warnings(stderr: str) -> list[str]:
    """The warnings autolog printed (logging's last-resort handler writes bare messages); not the
    flush progress bar, whose carriage returns may glue a warning to its line."""
    return re.findall(r"autolog: (?!storing snapshots:)[^\r\n]*", stderr)


def run_cli(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autolog.cli", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


# -- what is really there ----------------------------------------------------------------------
def s3fs_client(endpoint: str | None = None):
    import s3fs

    endpoint = endpoint or os.environ[services.S3_ENDPOINT_ENV]
    return s3fs.S3FileSystem(key=services.S3_ENV["AWS_ACCESS_KEY_ID"], secret=services.S3_ENV["AWS_SECRET_ACCESS_KEY"],
                             client_kwargs={"endpoint_url": endpoint}, skip_instance_cache=True)


def s3_objects(prefix_uri: str) -> dict[str, str]:
    """s3://bucket/prefix -> {full uri of every object under it: the digest of its bytes}."""
    fs = s3fs_client()
    path = prefix_uri[len("s3://"):]
    return {f"s3://{key}": bytes_digest(fs.cat_file(key)) for key in fs.find(path)}


def sql_rows(url: str, table: str) -> list[dict[str, Any]]:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [dict(r) for r in conn.execute(sa.text(f'SELECT * FROM "{table}"')).mappings()]
    finally:
        engine.dispose()


def all_tables_text(url: str) -> str:
    """Every row of every table of the database, as text."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            names = sa.inspect(conn).get_table_names()
            return "\n".join(f"{name}: {dict(row)!r}" for name in names
                             for row in conn.execute(sa.text(f'SELECT * FROM "{name}"')).mappings())
    finally:
        engine.dispose()


def snapshot_rows(url: str) -> list[dict[str, Any]]:
    return sorted(sql_rows(url, "snapshots"), key=lambda r: r["created"])


def stored_object_hash(uri: str, row: dict[str, Any]) -> str:
    """The digest of a stored snapshot as autolog records it: the file's own digest for a single file."""
    objects = s3_objects(uri)
    assert uri in objects, f"{uri} is not in the bucket (found {sorted(objects)})"
    return objects[uri]


def server_processes(server: services.Postgres) -> list[int]:
    """The postmaster of a private PostgreSQL server and its children (the backends serving clients)."""
    postmaster = int(Path(server.data, "postmaster.pid").read_text().split()[0])
    table = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True, check=True).stdout
    return [postmaster] + [int(p) for p, pp in (l.split() for l in table.splitlines() if l.strip())
                           if int(pp) == postmaster]


def freeze(pids: list[int]) -> None:
    """SIGSTOP: the kernel still accepts connections and acknowledges data; nothing ever answers."""
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)


def thaw(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass


# -- an S3 endpoint that accepts connections and never answers -----------------------------------
class SilencingProxy:
    """A loopback TCP proxy to the S3 server; after `silence()` it still accepts connections and reads
    requests, but never forwards or answers one (a hung load balancer), on new and open connections."""

    def __init__(self, upstream: str):
        self.upstream = ("127.0.0.1", int(upstream.rsplit(":", 1)[1]))
        self.silent = threading.Event()
        self._stop = threading.Event()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self._sockets: list[socket.socket] = [self.sock]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def silence(self) -> None:
        self.silent.set()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.sock.accept()
            except OSError:
                continue
            self._sockets.append(client)
            server = None
            if not self.silent.is_set():
                server = socket.create_connection(self.upstream)
                self._sockets.append(server)
                threading.Thread(target=self._pump, args=(server, client), daemon=True).start()
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket | None) -> None:
        src.settimeout(0.2)
        while not self._stop.is_set():
            try:
                data = src.recv(1 << 16)
            except socket.timeout:
                continue
            except OSError:
                return
            if not data:
                if dst is not None and not self.silent.is_set():
                    dst.close()
                return
            if dst is not None and not self.silent.is_set():
                try:
                    dst.sendall(data)
                except OSError:
                    return

    def close(self) -> None:
        self._stop.set()
        for sock in self._sockets:
            try:
                sock.close()
            except OSError:
                pass


class SilentServer:
    """Listens on loopback, accepts every connection, reads and never replies (a hung proxy)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.connections: list[socket.socket] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            conn.settimeout(0.2)
            self.connections.append(conn)

    def close(self) -> None:
        self._stop.set()
        self.thread.join(5)
        for conn in self.connections:
            conn.close()
        self.sock.close()
