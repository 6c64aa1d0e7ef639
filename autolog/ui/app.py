"""The Starlette app: the routes of the contract, the page shell, and the one place where every error
becomes a response of one line (JSON under /api/, a small HTML page elsewhere), never a traceback.

Errors and their status: a bad parameter 400, an unknown id 404, a snapshot with no bytes to send 409,
bytes that do not match their recorded digest 500, an object store that cannot be read 502, a database
that cannot be read (down, locked, damaged, written by a newer autolog) 503; anything else 500, its
traceback in the server's log only.
"""
from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any, Callable

import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..context import Context
from ..errors import (AutologError, DatabaseCorruptError, DatabaseLockedError, DatabaseUnreachableError,
                      IntegrityError, NotFoundError, SchemaVersionError, StorageError)
from . import api, downloads, lineage_graph, queries
from .http import StrictJSONResponse, UIError, error_json, error_page
from .security import Guard

logger = logging.getLogger("autolog.ui")

STATIC = Path(__file__).resolve().parent / "static"
_DATABASE_ERRORS = (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.DatabaseError, DatabaseCorruptError,
                    DatabaseLockedError, DatabaseUnreachableError, SchemaVersionError)


def status_of(exc: BaseException) -> tuple[int, str]:
    """(HTTP status, one-line message) for an error a handler raised."""
    if isinstance(exc, UIError):
        return exc.status, exc.message
    if isinstance(exc, NotFoundError):
        return 404, str(exc)
    if isinstance(exc, IntegrityError):
        return 500, str(exc)
    if isinstance(exc, _DATABASE_ERRORS):
        detail = getattr(exc, "orig", None) or exc
        return 503, f"The metadata database cannot be read now: {type(detail).__name__}: {detail}"
    if isinstance(exc, (StorageError, OSError)):
        return 502, f"The stored object cannot be read: {type(exc).__name__}: {exc}"
    if isinstance(exc, AutologError):
        return 500, str(exc)
    return 500, f"Internal error ({type(exc).__name__}); the server's log has the details."


def _answer(page: bool, handler: Callable[..., Response]) -> Callable[[Request], Response]:
    """A sync endpoint (Starlette runs it in its thread pool: the database calls block) whose errors
    become one line."""
    @functools.wraps(handler)
    def endpoint(request: Request) -> Response:
        try:
            return handler(request)
        except Exception as exc:  # noqa: BLE001 - the one place errors become responses
            status, message = status_of(exc)
            if status == 500 and not isinstance(exc, (UIError, IntegrityError, AutologError)):
                logger.exception("autolog ui: %s %s failed", request.method, request.url.path)
            return error_page(status, message) if page else error_json(status, message)
    return endpoint


def create_app(ctx: Context, token: str | None = None, loopback_only: bool = False) -> Any:
    """The ASGI app over ctx's store. token: required on every request (security.py); loopback_only:
    answer only requests whose Host is this machine's loopback (the default bind, without a token)."""
    reader = api.Reader(ctx)
    app = Starlette(routes=_routes(reader), exception_handlers={HTTPException: _http_error})
    app.state.reader = reader
    return Guard(app, token, loopback_only)


def _routes(reader: api.Reader) -> list[Any]:
    def exists(kind: str, param: str) -> Callable[[Request], None]:
        def check(request: Request) -> None:
            with reader.read() as conn:
                queries.require(conn, kind, request.path_params[param])
        return check

    def lineage_root(request: Request) -> None:
        kind, ident, _, _ = lineage_graph.parse_request(dict(request.query_params))
        with reader.read() as conn:
            queries.require(conn, kind, ident)

    def json(handler: Callable[[Request], Any]) -> Callable[[Request], Response]:
        return _answer(False, lambda request: StrictJSONResponse(handler(request)))

    def download(handler: Callable[[Request], downloads.Outgoing]) -> Callable[[Request], Response]:
        return _answer(False, lambda request: downloads.response(handler(request)))

    p = lambda request, name: request.path_params[name]  # noqa: E731
    return [
        Route("/", _page(lambda request: None)),
        Route("/tasks/{task_id}", _page(exists("task", "task_id"))),
        Route("/models/{model_id}", _page(exists("model", "model_id"))),
        Route("/lineage", _page(lineage_root)),
        Route("/api/projects", json(lambda r: api.projects(reader))),
        Route("/api/tasks", json(lambda r: api.tasks(reader, r.query_params))),
        Route("/api/tasks/{task_id}", json(lambda r: api.task(reader, p(r, "task_id")))),
        Route("/api/tasks/{task_id}/scalars", json(lambda r: api.scalars(reader, p(r, "task_id"), r.query_params))),
        Route("/api/artifacts/{artifact_id}/preview", json(lambda r: api.artifact_preview(reader, p(r, "artifact_id")))),
        Route("/api/artifacts/{artifact_id}/download",
              download(lambda r: api.artifact_download(reader, p(r, "artifact_id")))),
        Route("/api/models/{model_id}", json(lambda r: api.model(reader, p(r, "model_id")))),
        Route("/api/snapshots/{snapshot_id}/download",
              download(lambda r: api.snapshot_download(reader, p(r, "snapshot_id")))),
        Route("/api/lineage", json(lambda r: api.lineage(reader, r.query_params))),
        Mount("/static", StaticFiles(directory=STATIC, check_dir=False), name="static"),
    ]


def _page(check: Callable[[Request], None]) -> Callable[[Request], Response]:
    """A page route: check(request) (the id exists), then the shell index.html, whose script routes on the
    path and reads the API."""
    def serve(request: Request) -> Response:
        check(request)
        shell = STATIC / "index.html"
        if not shell.is_file():
            raise UIError(500, f"The UI's pages are missing from this installation ({shell}); reinstall autolog[ui].")
        return FileResponse(shell, media_type="text/html", headers={"Cache-Control": "no-cache"})
    return _answer(True, serve)


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own errors (no such route, a method other than GET) in the app's shapes."""
    status = getattr(exc, "status_code", 500)
    message = {404: f"There is no page or API route {request.url.path!r}.",
               405: f"{request.method} is not allowed here: this server only reads (GET)."}.get(
        status, str(getattr(exc, "detail", "")) or "error")
    api_route = request.url.path.startswith("/api/")
    return error_json(status, message) if api_route else error_page(status, message)
