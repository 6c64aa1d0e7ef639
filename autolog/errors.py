"""The errors autolog raises. Each message says what happened and ends with what to do."""
from __future__ import annotations


class AutologError(Exception):
    """Base of every error autolog raises on purpose."""


class ConfigError(AutologError, ValueError):
    """The config file or an AUTOLOG_* variable is malformed."""


class StorageError(AutologError, OSError):
    """An output_uri cannot be reached, written or read."""


class DatabaseUnreachableError(AutologError, ConnectionError):
    """The metadata database server refused, dropped or timed out the connection. The snapshot workers
    and the task's row retry on it for a while (snapshots/database_guard.py)."""


class SchemaVersionError(AutologError, RuntimeError):
    """The metadata database was written by a newer autolog than this one."""


class NotFoundError(AutologError, LookupError):
    """A task, model, snapshot or artifact does not exist in the store."""


class TaskNotFoundError(NotFoundError, ValueError):
    """No task matches (a ValueError too, as in ClearML)."""


class ModelNotFoundError(NotFoundError, ValueError):
    """No model matches."""


class IntegrityError(AutologError, ValueError):
    """Stored bytes do not match the sha256 recorded when they were saved."""


class TaskNotRunningError(AutologError, RuntimeError):
    """A write to a task this process is not running (fetched with Task.get_task, or closed)."""


class DatabaseCorruptError(AutologError, RuntimeError):
    """The embedded SQLite metadata database is damaged ("database disk image is malformed", "file is not a
    database"). The message is one line: what is wrong, how to set the file aside and salvage its rows."""


class DatabaseLockedError(AutologError, RuntimeError):
    """Another process holds a lock on the SQLite metadata database that keeps even readers out. The
    database is healthy: close that process (never move the file aside)."""
