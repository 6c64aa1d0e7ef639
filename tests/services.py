"""Real PostgreSQL and S3 servers for the team-mode tests: started once per pytest run, on loopback.

PostgreSQL is the Debian server package (initdb into a temp folder, a free port, stopped at the end);
S3 is moto in server mode, reached through s3fs like any bucket. The pytest controller starts both
before the xdist workers exist and hands them the addresses through the environment.

When a server cannot start, its tests skip with the reason - unless AUTOLOG_TEST_SERVICES=required
(as .ci/run sets), where they fail instead: CI must never pass by skipping them.
"""
from __future__ import annotations

import glob
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

PG_URL_ENV = "AUTOLOG_TEST_PG_URL"  # server URL, database "postgres"; set by a caller to reuse a server
S3_ENDPOINT_ENV = "AUTOLOG_TEST_S3_ENDPOINT"
SKIP_ENV = "AUTOLOG_TEST_{}_UNAVAILABLE"  # why a service did not start
REQUIRE_ENV = "AUTOLOG_TEST_SERVICES"

# moto accepts any keys; a real-looking secret lets tests prove it never leaks.
S3_ENV = {
    "AWS_ACCESS_KEY_ID": "AKIAAUTOLOGTESTKEY01",
    "AWS_SECRET_ACCESS_KEY": "autolog-test-s3-secret-9f3c1d",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def services_required() -> bool:
    return os.environ.get(REQUIRE_ENV, "") == "required"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server exited with code {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listened on port {port} after {timeout:.0f} s")


# -- PostgreSQL -------------------------------------------------------------------------------
def postgres_bindir() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return os.path.dirname(found[-1])
    initdb = shutil.which("initdb")
    return os.path.dirname(initdb) if initdb else None


@dataclass
class Postgres:
    """One PostgreSQL server in a temp folder. Root cannot run it: then it runs as user postgres."""

    bindir: str
    folder: str
    port: int
    password: str = field(default_factory=lambda: "pg-secret-" + secrets.token_hex(8))
    user: str = "autolog"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://{self.user}:{self.password}@127.0.0.1:{self.port}/postgres"

    @property
    def data(self) -> str:
        return os.path.join(self.folder, "data")

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [os.path.join(self.bindir, args[0]), *args[1:]]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=120)

    def init(self) -> None:
        pwfile = os.path.join(self.folder, "pw")
        Path(pwfile).write_text(self.password + "\n")
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
            shutil.chown(pwfile, "postgres", "postgres")
        self._run("initdb", "-D", self.data, "-U", self.user, f"--pwfile={pwfile}",
                  "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync")

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300")
        try:
            self._run("pg_ctl", "-D", self.data, "-o", options, "-l", os.path.join(self.folder, "log"), "-w", "start")
        except subprocess.CalledProcessError as exc:
            log = Path(self.folder, "log")
            raise RuntimeError(f"pg_ctl start failed: {exc.stderr.strip()} {log.read_text()[-500:] if log.exists() else ''}")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", self.data, "-m", mode, "-w", "stop", check=False)

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)


def start_postgres() -> Postgres:
    bindir = postgres_bindir()
    if bindir is None:
        raise RuntimeError("the PostgreSQL server is not installed (Debian: apt-get install postgresql)")
    server = Postgres(bindir, tempfile.mkdtemp(prefix="autolog-pg-"), free_port())
    os.chmod(server.folder, 0o755)
    server.init()
    server.start()
    return server


def _admin_sql(server_url: str, sql: str) -> None:
    """One statement outside a transaction (CREATE/DROP DATABASE refuse to run inside one)."""
    import sqlalchemy as sa

    engine = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(sql)
    finally:
        engine.dispose()


def create_database(server_url: str, name: str) -> str:
    """CREATE DATABASE name; returns its URL."""
    _admin_sql(server_url, f'CREATE DATABASE "{name}"')
    return server_url.rsplit("/", 1)[0] + "/" + name


def drop_database(server_url: str, name: str) -> None:
    _admin_sql(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- S3 (moto_server) -------------------------------------------------------------------------
@dataclass
class MotoServer:
    proc: subprocess.Popen
    port: int

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_moto() -> MotoServer:
    try:
        import moto.server  # noqa: F401
        import flask  # noqa: F401 - moto's server extra
    except ImportError as exc:
        raise RuntimeError(f"moto's server is not installed (pip install 'moto[server]'): {exc}") from None
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    server = MotoServer(proc, port)
    try:
        wait_for_port(port, 60, proc)
    except RuntimeError:
        server.stop()
        raise
    return server


def s3_env(endpoint: str) -> dict[str, str]:
    """What a machine needs to reach the bucket: the usual AWS variables, nothing autolog-specific."""
    return {**S3_ENV, "AWS_ENDPOINT_URL": endpoint}


def new_bucket(endpoint: str) -> str:
    import s3fs

    name = "autolog-" + secrets.token_hex(6)
    fs = s3fs.S3FileSystem(
        key=S3_ENV["AWS_ACCESS_KEY_ID"], secret=S3_ENV["AWS_SECRET_ACCESS_KEY"],
        client_kwargs={"endpoint_url": endpoint}, skip_instance_cache=True,
    )
    fs.mkdir(name)  # no region: a LocationConstraint of us-east-1 is refused
    return name


# -- lifetime for one pytest run ----------------------------------------------------------------
_stops: list[Callable[[], None]] = []


def start_all() -> None:
    """Start what is not already given in the environment; remember why anything could not start."""
    starters = {"PG": (PG_URL_ENV, lambda: start_postgres()), "S3": (S3_ENDPOINT_ENV, lambda: start_moto())}
    for service, (env_name, start) in starters.items():
        if os.environ.get(env_name):
            continue
        try:
            server = start()
        except Exception as exc:  # noqa: BLE001 - the reason becomes the skip message
            os.environ[SKIP_ENV.format(service)] = f"{type(exc).__name__}: {exc}"
            continue
        if isinstance(server, Postgres):
            os.environ[PG_URL_ENV] = server.url
            _stops.append(server.remove)
        else:
            os.environ[S3_ENDPOINT_ENV] = server.endpoint
            _stops.append(server.stop)


def stop_all() -> None:
    while _stops:
        _stops.pop()()


def unavailable(service: str) -> str | None:
    """None when the service is up, else why not."""
    env_name = PG_URL_ENV if service == "PG" else S3_ENDPOINT_ENV
    if os.environ.get(env_name):
        return None
    return os.environ.get(SKIP_ENV.format(service), "not started (the pytest controller starts it)")
