"""Settings: TOML file + AUTOLOG_* environment, clear ConfigErrors, and URL redaction."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from autolog.config import load_settings, redact_url
from autolog.errors import AutologError, ConfigError

FULL_CONFIG = """
[sdk.development]
default_output_uri = "{out}"

[db]
url = "sqlite:///{db}"

[storage]
cache_dir = "{cache}"
"""


def write_config(path: Path, out: Path, db: Path, cache: Path) -> Path:
    path.write_text(FULL_CONFIG.format(out=out, db=db, cache=cache))
    return path


# -- where settings come from --------------------------------------------------------------


def test_defaults_live_in_autolog_home(autolog_home):
    s = load_settings()
    assert s.home == autolog_home
    assert s.config_file is None
    assert s.db_url == f"sqlite:///{autolog_home / 'autolog.db'}"
    assert Path(s.default_output_uri) == autolog_home / "storage"
    assert s.cache_dir == autolog_home / "cache"


def test_config_file_in_autolog_home_is_read(autolog_home, tmp_path):
    cfg = write_config(autolog_home / "autolog.toml", tmp_path / "out", tmp_path / "x.db", tmp_path / "cache")
    s = load_settings()
    assert s.config_file == cfg
    assert s.default_output_uri == str(tmp_path / "out")
    assert s.db_url == f"sqlite:///{tmp_path / 'x.db'}"
    assert s.cache_dir == tmp_path / "cache"


def test_autolog_config_points_to_another_file(autolog_home, tmp_path, monkeypatch):
    write_config(autolog_home / "autolog.toml", tmp_path / "ignored", tmp_path / "ignored.db", tmp_path / "ignored")
    other = write_config(tmp_path / "other.toml", tmp_path / "out2", tmp_path / "y.db", tmp_path / "cache2")
    monkeypatch.setenv("AUTOLOG_CONFIG", str(other))
    s = load_settings()
    assert s.config_file == other
    assert s.default_output_uri == str(tmp_path / "out2")
    assert s.db_url == f"sqlite:///{tmp_path / 'y.db'}"
    assert s.cache_dir == tmp_path / "cache2"


def test_environment_overrides_the_file(autolog_home, tmp_path, monkeypatch):
    write_config(autolog_home / "autolog.toml", tmp_path / "out", tmp_path / "x.db", tmp_path / "cache")
    monkeypatch.setenv("AUTOLOG_DEFAULT_OUTPUT_URI", "memory://from-env")
    monkeypatch.setenv("AUTOLOG_DB_URL", f"sqlite:///{tmp_path / 'env.db'}")
    s = load_settings()
    assert s.default_output_uri == "memory://from-env"
    assert s.db_url == f"sqlite:///{tmp_path / 'env.db'}"
    assert s.cache_dir == tmp_path / "cache"  # no environment variable for it: the file wins


def test_autolog_home_moves_everything(tmp_path, monkeypatch):
    home = tmp_path / "elsewhere"
    monkeypatch.setenv("AUTOLOG_HOME", str(home))
    s = load_settings()
    assert s.home == home
    assert s.db_url == f"sqlite:///{home / 'autolog.db'}"
    assert s.cache_dir == home / "cache"


def test_missing_autolog_config_file_is_an_error(tmp_path, monkeypatch):
    missing = tmp_path / "nope.toml"
    monkeypatch.setenv("AUTOLOG_CONFIG", str(missing))
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert str(missing) in str(info.value)


# -- malformed files -----------------------------------------------------------------------

MALFORMED = {
    "syntax": (b'[db\nurl = "x"\n', None),
    "unknown key": (b'[db]\nurl = "sqlite://"\nusername = "bob"\n', "db.username"),
    "unknown section": (b'[sdk.developmnet]\ndefault_output_uri = "/x"\n', "sdk.developmnet.default_output_uri"),
    "wrong type": (b"[sdk.development]\ndefault_output_uri = 5\n", "sdk.development.default_output_uri"),
    "table instead of string": (b"[storage.cache_dir]\npath = '/x'\n", "storage.cache_dir.path"),
    "not utf-8": (b'[db]\nurl = "sqlite:///\xff\xfe.db"\n', None),
}


@pytest.mark.parametrize("content,key", MALFORMED.values(), ids=MALFORMED.keys())
@pytest.mark.parametrize("location", ["home", "AUTOLOG_CONFIG"])
def test_malformed_config_raises_config_error_naming_file_and_key(
    autolog_home, tmp_path, monkeypatch, content, key, location
):
    if location == "home":
        cfg = autolog_home / "autolog.toml"
    else:
        cfg = tmp_path / "custom.toml"
        monkeypatch.setenv("AUTOLOG_CONFIG", str(cfg))
    cfg.write_bytes(content)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert str(cfg) in message
    if key is not None:
        assert key in message


# -- numbers out of range -------------------------------------------------------------------

OUT_OF_RANGE = {
    "upload_retries = 0": ("pipeline", "upload_retries = 0", "a whole number from 1 to 100, got 0."),
    "upload_retries = -1": ("pipeline", "upload_retries = -1", "a whole number from 1 to 100, got -1."),
    "upload_retries = 101": ("pipeline", "upload_retries = 101", "a whole number from 1 to 100, got 101."),
    "flush_timeout = -5": ("pipeline", "flush_timeout = -5", "a finite number greater than 0, got -5.0."),
    "flush_timeout = 0": ("pipeline", "flush_timeout = 0", "a finite number greater than 0, got 0.0."),
    "flush_timeout = nan": ("pipeline", "flush_timeout = nan", "a finite number greater than 0, got nan."),
    "flush_timeout = inf": ("pipeline", "flush_timeout = inf", "a finite number greater than 0, got inf."),
    "stall_timeout = 0": ("pipeline", "stall_timeout = 0.0", "a finite number greater than 0, got 0.0."),
    "stall_timeout = -inf": ("pipeline", "stall_timeout = -inf", "a finite number greater than 0, got -inf."),
    "keep_last = -2": ("retention", "keep_last = -2", "a whole number of at least 1, got -2."),
    "keep_last = 0": ("retention", "keep_last = 0", "a whole number of at least 1, got 0."),
    "backlog_bytes = -1": ("pipeline", "backlog_bytes = -1", "a whole number of at least 1, got -1."),
    "backlog_bytes = 0": ("pipeline", "backlog_bytes = 0", "a whole number of at least 1, got 0."),
    "worker_nice = -1": ("pipeline", "worker_nice = -1", "a whole number from 0 to 19, got -1."),
    "worker_nice = 20": ("pipeline", "worker_nice = 20", "a whole number from 0 to 19, got 20."),
}


@pytest.mark.parametrize("section,line,says", OUT_OF_RANGE.values(), ids=OUT_OF_RANGE.keys())
def test_out_of_range_numbers_are_refused_naming_file_key_and_range(autolog_home, section, line, says):
    cfg = autolog_home / "autolog.toml"
    cfg.write_text(f"[{section}]\n{line}\n")
    key = f"{section}.{line.split()[0]}"
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert message.startswith(f"Key '{key}' in config file {cfg} must be {says}"), message
    assert "Set a value in that range, or remove the key to use the default (" in message  # what to do


def test_numbers_at_the_ends_of_their_ranges_are_accepted(autolog_home):
    (autolog_home / "autolog.toml").write_text(
        "[pipeline]\nbacklog_bytes = 1\nflush_timeout = 0.001\nstall_timeout = 5\nupload_retries = 100\n"
        "[retention]\nkeep_last = 1\n"
    )
    s = load_settings()
    assert (s.backlog_bytes, s.flush_timeout, s.stall_timeout, s.upload_retries, s.keep_last) == (1, 0.001, 5.0, 100, 1)
    assert isinstance(s.stall_timeout, float)
    (autolog_home / "autolog.toml").write_text("[pipeline]\nupload_retries = 1\n")
    assert load_settings().upload_retries == 1
    for nice in (0, 19):
        (autolog_home / "autolog.toml").write_text(f"[pipeline]\nworker_nice = {nice}\n")
        assert load_settings().worker_nice == nice


def test_stall_timeout_defaults_to_30_seconds(autolog_home):
    s = load_settings()
    assert s.stall_timeout == 30.0
    assert (s.flush_timeout, s.upload_retries, s.keep_last, s.backlog_bytes) == (600.0, 5, None, 8 << 30)
    assert s.worker_nice == 10


def test_every_numeric_key_has_a_range():
    from autolog import config

    numeric = {attr for attr, typ in config._KEYS.values() if typ in (int, float)}
    assert numeric == set(config._RANGES)


def test_documented_example_config_is_valid(autolog_home):
    """The TOML example in the module docstring parses and passes every check."""
    from autolog import config

    example = config.__doc__.split("The TOML file::")[1].split("Numbers are range-checked")[0]
    assert "stall_timeout = 30" in example
    (autolog_home / "autolog.toml").write_text(textwrap.dedent(example))
    s = load_settings()
    assert s.stall_timeout == 30.0 and s.upload_retries == 5 and s.keep_last == 5


def test_config_file_with_a_utf8_byte_order_mark_is_read(autolog_home, tmp_path):
    cfg = autolog_home / "autolog.toml"
    cache = tmp_path / "c\u00e4che"  # non-ASCII too: the rest of the file is still read as UTF-8
    cfg.write_bytes(b"\xef\xbb\xbf" + f'[storage]\ncache_dir = "{cache}"\n'.encode("utf-8"))
    s = load_settings()
    assert s.config_file == cfg
    assert s.cache_dir == cache


def test_config_error_is_an_autolog_error_and_a_value_error():
    assert issubclass(ConfigError, AutologError)
    assert issubclass(ConfigError, ValueError)


def test_task_init_reports_a_malformed_config(autolog_home):
    from autolog import Task

    (autolog_home / "autolog.toml").write_text("[db]\nurl = 3\n")
    with pytest.raises(ConfigError, match="db.url"):
        Task.init(project_name="p", task_name="t")
    assert Task.current_task() is None


# -- the settings take effect --------------------------------------------------------------


def test_configured_default_output_uri_and_db_are_used(autolog_home, tmp_path):
    from autolog import Task

    out, db = tmp_path / "configured-out", tmp_path / "configured.db"
    write_config(autolog_home / "autolog.toml", out, db, tmp_path / "cache")
    (tmp_path / "w.bin").write_bytes(b"weights")
    task = Task.init(project_name="p", task_name="t", output_uri=True)
    uri = task.update_output_model(tmp_path / "w.bin", name="m")
    task.close()
    assert uri.startswith(str(out) + "/")
    assert Path(uri).read_bytes() == b"weights"
    assert db.is_file()
    assert not (autolog_home / "autolog.db").exists()


def test_env_default_output_uri_beats_config(autolog_home, tmp_path, monkeypatch):
    from autolog import Task

    write_config(autolog_home / "autolog.toml", tmp_path / "from-file", tmp_path / "x.db", tmp_path / "cache")
    monkeypatch.setenv("AUTOLOG_DEFAULT_OUTPUT_URI", str(tmp_path / "from-env"))
    task = Task.init(project_name="p", task_name="t", output_uri=True)
    assert task.output_uri == str(tmp_path / "from-env")


def test_configured_cache_dir_receives_extracted_folders(autolog_home, tmp_path):
    from autolog import Task

    cache = tmp_path / "my-cache"
    write_config(autolog_home / "autolog.toml", tmp_path / "out", tmp_path / "x.db", cache)
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "a.txt").write_text("a")
    task = Task.init(project_name="p", task_name="t", output_uri=True)
    task.upload_artifact("folder", folder)
    local = Path(task.artifacts["folder"].get_local_copy())
    assert cache in local.parents
    assert (local / "a.txt").read_text() == "a"


# -- redaction -----------------------------------------------------------------------------

REDACTED = [
    ("https://bob:hunter2@example.com/x", "hunter2", "https://bob:***@example.com/x"),
    ("s3://AKIAKEY:s3cr3t@bucket/prefix", "s3cr3t", "s3://AKIAKEY:***@bucket/prefix"),
    ("postgresql+psycopg://app:pa55word@db.internal:5432/autolog", "pa55word",
     "postgresql+psycopg://app:***@db.internal:5432/autolog"),
    ("https://u:p%40ss@host/x", "p%40ss", "https://u:***@host/x"),
    ("https://u:p@ss@host/x", "p@ss", "https://u:***@host/x"),
    ("https://host/f?X-Amz-Signature=abcdef&X-Amz-Expires=60", "abcdef", None),
    ("https://host/f?X-Amz-Credential=AKIAXYZ&region=eu", "AKIAXYZ", None),
    ("https://acct.blob.core.windows.net/c/b?sv=2020-01-01&sig=SASSIG", "SASSIG", None),
    ("https://host/f?access_token=tok123", "tok123", None),
    ("https://host/f?api_key=k-999", "k-999", None),
    ("https://host/f?password=pw1&user=bob", "pw1", None),
]


@pytest.mark.parametrize("url,secret,expected", REDACTED, ids=[r[0] for r in REDACTED])
def test_redact_url_hides_secrets(url, secret, expected):
    redacted = redact_url(url)
    assert secret not in redacted
    assert "***" in redacted
    if expected is not None:
        assert redacted == expected


def test_redact_url_keeps_non_secret_query_values():
    redacted = redact_url("https://host/f?X-Amz-Signature=abc&region=eu-west-1&user=bob")
    assert "region=eu-west-1" in redacted and "user=bob" in redacted
    assert "abc" not in redacted


UNCHANGED = [
    "/plain/local/path",
    "relative/path",
    "s3://bucket/prefix/model.pt",
    "gs://bucket/p",
    "https://example.com/data.csv",
    "file:///tmp/x/model.pt",
    "memory://bucket/prefix",
    "memory:///bucket/prefix",
    "sqlite:////tmp/autolog/autolog.db",
    "postgresql+psycopg://app@db.internal:5432/autolog",
]


@pytest.mark.parametrize("url", UNCHANGED)
def test_redact_url_leaves_secret_free_urls_alone(url):
    assert redact_url(url) == url
