"""One settings object, read from a TOML file and overridden by AUTOLOG_* environment variables.

Every environment variable autolog reads is listed here:

- ``AUTOLOG_HOME``: where the embedded store lives (default ``~/.autolog``).
- ``AUTOLOG_CONFIG``: the TOML config file (default ``$AUTOLOG_HOME/autolog.toml``).
- ``AUTOLOG_DB_URL``: SQLAlchemy URL of the metadata database (default SQLite in ``$AUTOLOG_HOME``).
- ``AUTOLOG_DEFAULT_OUTPUT_URI``: where ``output_uri=True`` stores weights and artifacts.
- ``AUTOLOG_STRICT``: ``1`` makes internal logging errors raise instead of warning (tests set it).
- ``AUTOLOG_DEBUG``: ``1`` makes the CLI print tracebacks.
- ``AUTOLOG_UI_TOKEN``: the token ``autolog ui`` requires when ``--token`` is not given (autolog/ui/security.py).

The TOML file::

    [sdk.development]
    default_output_uri = "s3://bucket/prefix"   # used by output_uri=True

    [db]
    url = "postgresql+psycopg://user@host/autolog"

    [storage]
    cache_dir = "/scratch/autolog-cache"

    [capture]
    ignore = ["*/data/*", "*.cache"]   # saves and loads of matching paths are not recorded
    settle_seconds = 1.0               # a folder several calls write (save_pretrained) is one snapshot,
                                       # taken once no call wrote it this long (or at flush)

    [pipeline]
    backlog_bytes = 8589934592   # staged but not yet uploaded; at the bound saves wait (or coalesce)
    backlog_policy = "block"     # or "coalesce": drop a not-yet-uploaded snapshot a newer save supersedes
    flush_timeout = 600          # seconds close()/exit waits for uploads before saying what is left
    stall_timeout = 30           # seconds of no progress in the background work after which waiting stops
    upload_retries = 5           # attempts per upload, 1 to 100
    worker_nice = 10             # CPU priority of the threads that copy and hash snapshots (Linux), 0 to 19;
                                 # 0 keeps the process's own

    [retention]
    keep_last = 5                # per model; older stored snapshots are deleted (default: keep all)

Numbers are range-checked: backlog_bytes, upload_retries and keep_last are whole numbers of at least 1
(upload_retries at most 100), the timeouts are finite and greater than 0, settle_seconds is greater
than 0 and at most 60, worker_nice is 0 to 19.

Also read from the environment by the SDK itself: ``AUTOLOG_TASK_ID`` and ``AUTOLOG_TASK_PID``, set
by Task.init so that child processes (multiprocessing, torchrun workers) attach to the parent task.

Not autolog settings: storage credentials and timeouts belong to the storage library (for S3 the usual
``AWS_*`` variables, and botocore's timeouts through fsspec's config, e.g.
``FSSPEC_S3='{"config_kwargs": {"connect_timeout": 5, "read_timeout": 30}}'``). A database URL may carry a
password; it is only ever written or shown through ``redact_url`` / ``scrub``. PostgreSQL connections get
``connect_timeout=10`` and ``tcp_user_timeout=30000`` unless the URL sets them.
"""
from __future__ import annotations

import math
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from .errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

# (section path, key) -> (attribute, type); the single list of what the file may contain.
_KEYS: dict[tuple[str, str], tuple[str, type]] = {
    ("sdk.development", "default_output_uri"): ("default_output_uri", str),
    ("db", "url"): ("db_url", str),
    ("db", "retry_seconds"): ("db_retry_seconds", float),
    ("storage", "cache_dir"): ("cache_dir", str),
    ("capture", "ignore"): ("capture_ignore", list),
    ("capture", "settle_seconds"): ("settle_seconds", float),
    ("pipeline", "backlog_bytes"): ("backlog_bytes", int),
    ("pipeline", "backlog_policy"): ("backlog_policy", str),
    ("pipeline", "flush_timeout"): ("flush_timeout", float),
    ("pipeline", "stall_timeout"): ("stall_timeout", float),
    ("pipeline", "upload_retries"): ("upload_retries", int),
    ("pipeline", "worker_nice"): ("worker_nice", int),
    ("retention", "keep_last"): ("keep_last", int),
}
_CHOICES = {"backlog_policy": ("block", "coalesce")}


class _Range(NamedTuple):
    low: float
    high: float | None = None
    low_allowed: bool = True  # False: values must be greater than low (a timeout of 0 s means nothing)


# attribute -> the values it may take; every numeric key has an entry (a test checks that). Without
# them, upload_retries = 0 would skip the upload loop and record remote snapshots stored unuploaded.
_RANGES: dict[str, _Range] = {
    "backlog_bytes": _Range(1),
    "flush_timeout": _Range(0.0, low_allowed=False),
    "stall_timeout": _Range(0.0, low_allowed=False),
    "upload_retries": _Range(1, 100),
    "worker_nice": _Range(0, 19),
    "keep_last": _Range(1),
    "settle_seconds": _Range(0.0, 60.0, low_allowed=False),
    "db_retry_seconds": _Range(0.0, 3600.0),
}
# Defaults of the keys whose default is a plain value (the others derive from AUTOLOG_HOME).
_DEFAULTS: dict[str, Any] = {
    "backlog_bytes": 8 << 30,
    "backlog_policy": "block",
    "flush_timeout": 600.0,
    "stall_timeout": 30.0,
    "upload_retries": 5,
    "worker_nice": 10,
    "keep_last": None,
    "settle_seconds": 1.0,
    "db_retry_seconds": 60.0,
}


@dataclass(frozen=True)
class Settings:
    home: Path
    config_file: Path | None
    db_url: str
    default_output_uri: str
    cache_dir: Path
    capture_ignore: list[str]
    backlog_bytes: int
    backlog_policy: str
    flush_timeout: float
    stall_timeout: float  # the pipeline stops waiting once its background work made no progress this long
    upload_retries: int
    worker_nice: int  # the CPU priority of the threads that copy and hash snapshots (snapshots/cpu_priority.py)
    keep_last: int | None
    settle_seconds: float  # quiet time before a folder written by several calls is snapshotted
    db_retry_seconds: float  # how long the task's row and the snapshot rows wait for an unreachable database

    @property
    def local_storage(self) -> Path:
        """The embedded store's object folder, used when nothing else is configured."""
        return self.home / "storage"


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def load_settings() -> Settings:
    """Read the config file and environment now (cheap; call again after changing them)."""
    home = Path(os.environ.get("AUTOLOG_HOME") or Path.home() / ".autolog").expanduser()
    config_path = os.environ.get("AUTOLOG_CONFIG")
    config_file = Path(config_path).expanduser() if config_path else home / "autolog.toml"
    values: dict[str, Any] = {}
    if config_file.is_file():
        values = _read_toml(config_file)
    elif config_path:
        raise ConfigError(
            f"AUTOLOG_CONFIG points to {config_file}, which does not exist. "
            "Create the file or unset AUTOLOG_CONFIG."
        )
    else:
        config_file = None
    for attr, env in (("default_output_uri", "AUTOLOG_DEFAULT_OUTPUT_URI"), ("db_url", "AUTOLOG_DB_URL")):
        if os.environ.get(env):
            values[attr] = os.environ[env]
    db_url = values.get("db_url") or f"sqlite:///{home / 'autolog.db'}"
    return Settings(
        home=home,
        config_file=config_file,
        db_url=db_url,
        default_output_uri=values.get("default_output_uri") or str(home / "storage"),
        cache_dir=Path(values.get("cache_dir") or home / "cache").expanduser(),
        capture_ignore=list(values.get("capture_ignore", [])),
        **{attr: values.get(attr, default) for attr, default in _DEFAULTS.items()},
    )


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        # utf-8-sig: Windows editors (Notepad) start UTF-8 files with a byte order mark.
        data = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"Config file {path} is not valid TOML: {exc}. Fix the syntax at that line.") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"Config file {path} is not UTF-8 text ({exc.reason} at byte {exc.start}). "
                          "Save it as UTF-8.") from None
    except OSError as exc:
        raise ConfigError(f"Config file {path} cannot be read: {exc}.") from None
    values: dict[str, Any] = {}
    for section, key, value in _flatten(data):
        if (section, key) not in _KEYS:
            known = ", ".join(f"{s}.{k}" for s, k in _KEYS)
            raise ConfigError(f"Unknown key '{_dotted(section, key)}' in config file {path}. Known keys: {known}.")
        attr, typ = _KEYS[(section, key)]
        if typ is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(value, bool) or not isinstance(value, typ) or (
            typ is list and not all(isinstance(v, str) for v in value)
        ):
            raise ConfigError(
                f"Key '{_dotted(section, key)}' in config file {path} must be a "
                f"{'list of strings' if typ is list else typ.__name__}, "
                f"got {type(value).__name__} {value!r}."
            )
        if attr in _CHOICES and value not in _CHOICES[attr]:
            raise ConfigError(
                f"Key '{_dotted(section, key)}' in config file {path} must be one of {_CHOICES[attr]}, got {value!r}."
            )
        if attr in _RANGES and not _in_range(value, _RANGES[attr]):
            raise ConfigError(
                f"Key '{_dotted(section, key)}' in config file {path} must be {_describe(typ, _RANGES[attr])}, "
                f"got {value!r}. Set a value in that range, or remove the key to use the default "
                f"({'keep everything' if _DEFAULTS[attr] is None else _DEFAULTS[attr]})."
            )
        values[attr] = value
    return values


def _in_range(value: float, allowed: _Range) -> bool:
    if not math.isfinite(value):  # TOML has nan and inf; comparisons with nan are all False
        return False
    above_low = value >= allowed.low if allowed.low_allowed else value > allowed.low
    return above_low and (allowed.high is None or value <= allowed.high)


def _describe(typ: type, allowed: _Range) -> str:
    """'a whole number from 1 to 100', 'a finite number greater than 0': the range in words."""
    kind = "a whole number" if typ is int else "a finite number"
    low = f"{allowed.low:g}"
    if allowed.high is not None:
        return f"{kind} from {low} to {allowed.high:g}"
    return f"{kind} of at least {low}" if allowed.low_allowed else f"{kind} greater than {low}"


def _flatten(data: dict[str, Any], section: str = ""):
    for key, value in data.items():
        if isinstance(value, dict):
            yield from _flatten(value, _dotted(section, key))
        else:
            yield section, key, value


def _dotted(section: str, key: str) -> str:
    return f"{section}.{key}" if section else key


_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


def redact_urls_in(text: str) -> str:
    """text with every URL in it passed through redact_url (an argv item: --db-url=postgresql://u:pw@h/db)."""
    return _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text) if "://" in text else text


_SECRET_QUERY = re.compile(r"(key|secret|token|password|passwd|sig|signature|credential)", re.IGNORECASE)


def redact_url(url: str) -> str:
    """The URL with passwords and secret-looking query values replaced by '***'.

    Used for everything written to the database or a log line: credentials belong in the
    environment or the storage library's own config, never in our records.
    """
    if "://" not in url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{host}" if ":" in userinfo else f"{user}@{host}"
        if ":" in userinfo:
            _remember_secret(userinfo.split(":", 1)[1])
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(_SECRET_QUERY.search(k) for k, _ in pairs):
            query = urlencode([(k, "***" if _SECRET_QUERY.search(k) else v) for k, v in pairs], safe="*")
            for k, v in pairs:
                if _SECRET_QUERY.search(k):
                    _remember_secret(v)
    if (netloc, query) == (parts.netloc, parts.query):
        return url  # nothing secret: keep it byte for byte (urlunsplit would turn memory:/// into memory:/)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


# Every secret redact_url has taken out of a URL. Libraries quote the URL they failed on in their
# errors (s3fs: 'Invalid bucket name "KEY:SECRET@bucket"'), so messages we show pass through scrub().
_seen_secrets: set[str] = set()


def _remember_secret(secret: str) -> None:
    if len(secret) >= 4:  # shorter ones would blank out ordinary words; they protect nothing anyway
        _seen_secrets.update({secret, unquote(secret)})


def scrub(text: str) -> str:
    """text with every secret seen by redact_url replaced by '***'."""
    for secret in sorted(_seen_secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text
