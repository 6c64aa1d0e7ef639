"""The `autolog` command: look at what was logged, and fetch it.

    autolog task list [--project P] [--name N] [--status S] [--tag T] [--limit N]
    autolog task show TASK_ID
    autolog task scalars TASK_ID                every reported series: last, min, max (--json: all values)
    autolog model list [--project P] [--name N] [--task TASK_ID] [--framework F] [--limit N]
    autolog model show MODEL_ID
    autolog model download MODEL_ID DEST [--version SEQ]
    autolog artifact download TASK_ID NAME DEST
    autolog sync [--force]                      finish snapshots a killed run left pending
    autolog gc --keep-last N [--project P] [--model MODEL_ID] [--dry-run]
    autolog push --to DB_URL [--storage URI] [--task ID ... | --project P] [--dry-run]
                                                copy runs (and their objects) into a team store
    autolog ui [--host 127.0.0.1] [--port 8080] [--db URL] [--token T]
                                                a read-only web app over the store (pip install autolog[ui])

Ids may be shortened to any unique prefix. Add --json for machine-readable output: strict JSON,
in which a NaN or infinite number (a metric, a metadata value) is written as null.
Known errors print one line; AUTOLOG_DEBUG=1 prints the traceback too. With no store yet (the
SQLite file of AUTOLOG_HOME or AUTOLOG_DB_URL does not exist) every command says so, creates
nothing and exits with status 2.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
from typing import Any, Callable, Sequence
from urllib.parse import unquote

from . import cli_reports, cli_scalars
from .cli_format import (as_dict, emit, format_duration, format_size, format_time, indented, model_design_lines,
                         model_heading, one_line, snapshot_table, table)
from .config import env_flag
from .errors import AutologError

NO_STORE_EXIT = 2  # as for a usage error: there is nothing to look at, which is not a failure of ours


class NoStore(AutologError):
    """The configured SQLite store does not exist: nothing was logged there yet."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        # Every command reads the store first; opening a missing SQLite file would create an empty
        # store (and its folder) wherever a mistyped AUTOLOG_HOME points, and show "(none)".
        if getattr(args, "db", None):  # `autolog ui --db URL`: AUTOLOG_DB_URL for this command
            os.environ["AUTOLOG_DB_URL"] = args.db
        _require_store()
        args.run(args)
    except NoStore as exc:
        print(f"autolog: {exc}", file=sys.stderr)
        return NO_STORE_EXIT
    except (AutologError, LookupError, ValueError, OSError) as exc:
        if env_flag("AUTOLOG_DEBUG"):
            raise
        print(f"autolog: error: {exc}", file=sys.stderr)
        return 1
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="autolog", description="Look at and fetch what autolog recorded.")
    nouns = parser.add_subparsers(title="commands", metavar="{task,model,artifact,sync,gc,push,ui}")

    task = nouns.add_parser("task", help="list and show tasks").add_subparsers(metavar="{list,show,scalars}")
    cmd = _command(task, "list", "list tasks, newest first", task_list)
    cmd.add_argument("--project")
    cmd.add_argument("--name")
    cmd.add_argument("--status", choices=["running", "completed", "failed"])
    cmd.add_argument("--tag", action="append", dest="tags")
    cmd.add_argument("--limit", type=int, default=50)
    cmd = _command(task, "show", "a task with its artifacts and input/output models", task_show)
    cmd.add_argument("task_id")
    cli_scalars.add_command(task, _command)

    model = nouns.add_parser("model", help="list, show and download models").add_subparsers(
        metavar="{list,show,download,sha256}"
    )
    cmd = _command(model, "list", "list models, most recently saved first", model_list)
    cmd.add_argument("--project")
    cmd.add_argument("--name")
    cmd.add_argument("--task", dest="task_id")
    cmd.add_argument("--framework")
    cmd.add_argument("--limit", type=int, default=50)
    cmd = _command(model, "show", "a model with its snapshots and the tasks that loaded it", model_show)
    cmd.add_argument("model_id")
    cmd = _command(model, "download", "copy a model snapshot to DEST", model_download)
    cmd.add_argument("model_id")
    cmd.add_argument("dest")
    cmd.add_argument("--version", type=int, help="snapshot seq (default: newest; -2 = the one before)")
    cmd = _command(model, "sha256", "the sha256 of a model snapshot (computed from its verified copy once, "
                   "then kept), to compare with sha256sum", model_sha256)
    cmd.add_argument("model_id")
    cmd.add_argument("--version", type=int, help="snapshot seq (default: newest; -2 = the one before)")

    artifact = nouns.add_parser("artifact", help="download artifacts").add_subparsers(metavar="{download}")
    cmd = _command(artifact, "download", "copy an artifact to DEST", artifact_download)
    cmd.add_argument("task_id")
    cmd.add_argument("name")
    cmd.add_argument("dest")

    cmd = _command(nouns, "sync", "finish snapshots that a crashed or killed run left pending", sync)
    cmd.add_argument("--force", action="store_true", help="also take over snapshots of runs that look alive")
    cmd = _command(nouns, "gc", "keep the newest N stored snapshots per model, delete older objects", gc)
    cmd.add_argument("--keep-last", type=int, help="default: [retention] keep_last from the config")
    cmd.add_argument("--project")
    cmd.add_argument("--model", dest="model_id")
    cmd.add_argument("--dry-run", action="store_true")
    cmd = _command(nouns, "push", "copy runs recorded here, objects included, into a team store", push)
    cmd.add_argument("--to", required=True, dest="target", metavar="DB_URL",
                     help="SQLAlchemy URL of the team database (a password is better in PGPASSWORD)")
    cmd.add_argument("--storage", metavar="URI", help="where objects go (default: the configured default_output_uri)")
    which = cmd.add_mutually_exclusive_group()
    which.add_argument("--task", action="append", dest="task_ids", metavar="ID", help="push this task (repeatable)")
    which.add_argument("--project", help="push the tasks of this project (default: every task)")
    cmd.add_argument("--dry-run", action="store_true", help="say what would be pushed; write nothing")
    cmd = nouns.add_parser("ui", help="a read-only web app over the store", description=ui.__doc__)
    cmd.set_defaults(run=ui)
    _ui_arguments(cmd)
    return parser


def _ui_arguments(cmd: argparse.ArgumentParser) -> None:
    from .ui.server import add_arguments  # autolog/ui/server.py imports no web package at import

    add_arguments(cmd)


def ui(args: argparse.Namespace) -> None:
    """Serve a read-only web app over the store: tasks, models, lineage, downloads (pip install autolog[ui])."""
    from .ui.server import serve

    serve(args)


_SQLITE_URL = re.compile(r"sqlite(\+\w+)?:///")


def _require_store() -> None:
    """Raise NoStore when the configured database is an SQLite file that does not exist yet."""
    from .config import load_settings

    settings = load_settings()
    path = _sqlite_file(settings.db_url)
    if path is None or os.path.exists(path):
        return
    default = settings.db_url == f"sqlite:///{settings.home / 'autolog.db'}"
    where = f"with AUTOLOG_HOME={settings.home}" if default else "to the configured AUTOLOG_DB_URL / [db] url"
    raise NoStore(f"No autolog store at {os.path.abspath(path)} yet: nothing has been logged {where}. "
                  "Run a script with Task.init() first, or set AUTOLOG_HOME / AUTOLOG_DB_URL.")


def _sqlite_file(url: str) -> str | None:
    """The file an SQLite URL names; None for other databases and in-memory or URI-style SQLite."""
    start = _SQLITE_URL.match(url)
    if not start:
        return None
    path, _, query = url[start.end():].partition("?")
    if not path or path == ":memory:" or "uri=true" in query.lower():
        return None  # nothing to check: a memory database, or a "file:..." URI SQLite parses itself
    return unquote(path)


def _command(group: Any, name: str, help: str, run: Callable[[argparse.Namespace], None]) -> argparse.ArgumentParser:
    cmd = group.add_parser(name, help=help, description=help)
    cmd.add_argument("--json", action="store_true",
                     help="print strict JSON instead of tables (NaN and infinite numbers become null)")
    cmd.set_defaults(run=run)
    return cmd


# -- commands ---------------------------------------------------------------------------
def task_list(args: argparse.Namespace) -> None:
    from .task import Task

    task_filter: dict[str, Any] = {"page": 0, "page_size": args.limit} if args.limit else {}
    if args.status:
        task_filter["status"] = [args.status]
    name = f"^{re.escape(args.name)}$" if args.name else None  # --name is a name; get_tasks takes a pattern
    tasks = Task.get_tasks(project_name=args.project, task_name=name, tags=args.tags, task_filter=task_filter)
    records = [t._record for t in tasks]
    emit(args, [as_dict(r, drop=("run_info", "parameters", "configuration")) for r in records], lambda: table(
        ["id", "project", "name", "status", "started", "duration", "tags"],
        [[r.id[:12], r.project, r.name, r.status, format_time(r.created), format_duration(r.created, r.ended),
          ",".join(r.tags)] for r in records],
    ))


def task_show(args: argparse.Namespace) -> None:
    from . import configuration, parameters
    from .task import Task

    task = Task.get_task(task_id=args.task_id)
    record = task._ctx.store.get_task(task.id)
    artifacts = list(task.artifacts.values())
    models = task.models
    data = as_dict(record)
    data["artifacts"] = [as_dict(a._record) for a in artifacts]
    data["models"] = {
        direction: [dict(as_dict(m._record), snapshots=[as_dict(s) for s in m.snapshots]) for m in models[direction]]
        for direction in ("input", "output")
    }
    data["scalars"] = cli_scalars.summaries(task)
    data.update(cli_reports.summary(task))  # single values, plots, debug samples, console (labels: the record's)

    def human() -> str:
        info = record.run_info
        lines = [
            f"task      {record.id}",
            f"project   {record.project}",
            f"name      {record.name}",
            f"status    {record.status}" + (f" ({record.status_message})" if record.status_message else ""),
            f"started   {format_time(record.created)}   duration {format_duration(record.created, record.ended)}",
            f"output    {record.output_uri or '(paths only, no copies)'}",
            f"script    {info.get('script')}   git {info.get('git_commit', '-')}",
            f"host      {info.get('host')}   python {info.get('python')}",
        ]
        lines += parameters.summary_lines(record.parameters) + configuration.summary_lines(record.configuration)
        lines += ["", f"artifacts ({len(artifacts)})"]
        if artifacts:
            lines.append(table(["name", "type", "size", "sha256", "preview"], [
                [a.name, a.type, format_size(a.size), (a.sha256 or "")[:12], one_line(a.preview)] for a in artifacts
            ]))
        for direction in ("input", "output"):
            lines += ["", f"{direction} models ({len(models[direction])})"]
            for m in models[direction]:
                lines.append(model_heading(m))
                lines.append(indented(snapshot_table(m.snapshots)))
        lines += cli_scalars.show_section(data["scalars"], table)
        lines += cli_reports.show_lines(data, record.labels, table)
        return "\n".join(lines)

    emit(args, data, human)


def model_list(args: argparse.Namespace) -> None:
    from .model import Model

    models = Model.query_models(args.project, args.name, framework=args.framework, task_id=args.task_id,
                                max_results=args.limit)
    records = [m._record for m in models]
    emit(args, [as_dict(r) for r in records], lambda: table(
        ["id", "name", "project", "framework", "task", "origin", "updated"],
        [[r.id[:12], r.name, r.project, r.framework or "", (r.task_id or "")[:12], r.origin, format_time(r.updated)]
         for r in records],
    ))


def model_show(args: argparse.Namespace) -> None:
    from .model import Model

    model = Model(args.model_id)
    snapshots = model.snapshots
    loads = model._ctx.store.loads_of_model(model.id)
    data = dict(as_dict(model._record), labels=model.labels, config_text=model.config_text,
                snapshots=[as_dict(s) for s in snapshots], loaded_by=[as_dict(load) for load in loads])

    def human() -> str:
        lines = [model_heading(model), f"  source  {model.source_path}", *model_design_lines(model),
                 "", "snapshots", snapshot_table(snapshots), "", f"loaded by ({len(loads)})"]
        if loads:
            lines.append(table(["task", "snapshot", "path", "when"], [
                [load.task_id[:12], next((str(s.seq) for s in snapshots if s.id == load.snapshot_id), "?"),
                 load.path or "", format_time(load.created)] for load in loads
            ]))
        return "\n".join(lines)

    emit(args, data, human)


def model_download(args: argparse.Namespace) -> None:
    from .model import Model

    _copy_out(Model(args.model_id).get_local_copy(version=args.version), args)


def model_sha256(args: argparse.Namespace) -> None:
    from .model import Model

    model = Model(args.model_id)
    sha = model.sha256(version=args.version)
    snap = model.snapshot(args.version)
    emit(args, {"model_id": model.id, "seq": snap.seq, "digest": snap.digest, "sha256": sha},
          lambda: f"{sha}  {model.name} snapshot {snap.seq}")


def artifact_download(args: argparse.Namespace) -> None:
    from .task import Task

    artifacts = Task.get_task(task_id=args.task_id).artifacts
    if args.name not in artifacts:
        raise LookupError(f"Task {args.task_id} has no artifact {args.name!r}; it has: {sorted(artifacts)}")
    _copy_out(artifacts[args.name].get_local_copy(raise_on_error=True), args)  # the cause, not None


def sync(args: argparse.Namespace) -> None:
    from .context import default_context
    from .snapshots import sync as snapshot_sync

    report = snapshot_sync.sync(default_context(), force=args.force)
    data = {
        "stored": [as_dict(s) for s in report.stored],
        "failed": [dict(as_dict(s), reason=reason) for s, reason in report.failed],
        "still_running": [as_dict(s) for s in report.live],
        "tasks_marked_failed": [t.id for t in report.closed_tasks],
    }

    def human() -> str:
        lines = [f"stored {len(report.stored)} snapshot(s), marked {len(report.failed)} failed, "
                 f"left {len(report.live)} to running processes, closed {len(report.closed_tasks)} dead task(s)"]
        lines += [f"  stored  {s.id[:12]} seq {s.seq}  {s.uri}" for s in report.stored]
        lines += [f"  failed  {s.id[:12]} seq {s.seq}  {reason}" for s, reason in report.failed]
        return "\n".join(lines)

    emit(args, data, human)


def gc(args: argparse.Namespace) -> None:
    from .context import default_context
    from .snapshots import retention

    ctx = default_context()
    keep_last = args.keep_last or ctx.settings.keep_last
    if not keep_last:
        raise ValueError("Say how many snapshots to keep: autolog gc --keep-last N (or [retention] keep_last).")
    models = [ctx.store.get_model(args.model_id)] if args.model_id else ctx.store.find_models(project=args.project)
    deleted = {m.id: retention.prune(ctx, m.id, keep_last, dry_run=args.dry_run) for m in models}
    data = {"keep_last": keep_last, "dry_run": args.dry_run,
            "deleted": {mid: [as_dict(s) for s in snaps] for mid, snaps in deleted.items() if snaps}}
    total = sum(len(v) for v in deleted.values())
    verb = "would delete" if args.dry_run else "deleted"
    emit(args, data, lambda: f"{verb} {total} snapshot(s) of {sum(1 for v in deleted.values() if v)} model(s), "
                              f"keeping the newest {keep_last} of each")


def push(args: argparse.Namespace) -> None:
    from . import push as pushing
    from .context import default_context

    report = pushing.push(default_context(), args.target, task_ids=args.task_ids, project=args.project,
                          storage=args.storage, dry_run=args.dry_run)
    emit(args, report.as_dict(), report.summary)
    if report.held_back:
        raise AutologError(report.held_back_message())


def _copy_out(local: str, args: argparse.Namespace) -> None:
    dest = args.dest
    if os.path.isdir(dest):
        dest = os.path.join(dest, os.path.basename(local.rstrip(os.sep)))
    if os.path.isdir(local):
        shutil.copytree(local, dest, dirs_exist_ok=True)
    elif os.path.exists(local):
        shutil.copyfile(local, dest)
    else:  # a checkpoint prefix: copy every file of it
        folder, prefix = os.path.split(local)
        os.makedirs(os.path.dirname(os.path.abspath(dest)) or ".", exist_ok=True)
        for name in os.listdir(folder):
            if name.startswith(prefix + "."):
                shutil.copyfile(os.path.join(folder, name), os.path.join(os.path.dirname(dest) or ".",
                                                                         os.path.basename(dest) + name[len(prefix):]))
    emit(args, {"path": os.path.abspath(dest)}, lambda: os.path.abspath(dest))


if __name__ == "__main__":
    sys.exit(main())
