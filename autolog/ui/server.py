"""`autolog ui [--host 127.0.0.1] [--port 8080] [--db URL] [--token T]`: serve the app with uvicorn.

The listening socket is opened here, before uvicorn starts, so the URL printed is one that already
accepts connections (with --port 0, the port the system picked). The store is opened once before that,
to say at start when it cannot be read; the app opens it again on each request until it can.
"""
from __future__ import annotations

import argparse
import os
import socket
import sys

from ..errors import AutologError

REFUSED_EXIT = 2  # as for a usage error: nothing was started


class MissingExtra(AutologError):
    """starlette or uvicorn is not installed."""


def add_arguments(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--host", default="127.0.0.1",
                     help="address to listen on (default 127.0.0.1; any other needs --token)")
    cmd.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 = any free port)")
    cmd.add_argument("--db", metavar="URL", help="database URL to read (default: AUTOLOG_DB_URL / the config)")
    cmd.add_argument("--token", help="require this token on every request (default: $AUTOLOG_UI_TOKEN)")


def serve(args: argparse.Namespace) -> None:
    """Check the bind rule, open the socket and the store, print the URL, and serve until interrupted."""
    try:
        import uvicorn
        from .app import create_app
    except ImportError as exc:
        raise MissingExtra(f"`autolog ui` needs the web server packages ({exc.name} is not installed): "
                           "pip install 'autolog[ui]'") from None
    from ..config import load_settings, redact_url
    from ..context import Context
    from .security import TOKEN_ENV, is_loopback

    token = args.token or os.environ.get(TOKEN_ENV) or None
    if not is_loopback(args.host) and token is None:
        print(f"autolog ui: refusing to listen on {args.host} without a token: anyone who can reach it could read "
              f"every run in the store. Pass --token T (or set {TOKEN_ENV}), or keep the default --host 127.0.0.1.",
              file=sys.stderr)
        raise SystemExit(REFUSED_EXIT)
    if not 0 <= args.port <= 65535:
        print(f"autolog ui: --port {args.port} is not a port: use 1 to 65535 (or 0 for any free port).", file=sys.stderr)
        raise SystemExit(REFUSED_EXIT)
    sock = _listen(args.host, args.port)
    ctx = Context(load_settings())
    _open_store(ctx)
    app = create_app(ctx, token=token, loopback_only=token is None and is_loopback(args.host))
    url = _url(args.host, sock.getsockname()[1])
    print(f"autolog ui: serving {redact_url(ctx.settings.db_url)} at {url}" + (f"?token={token}" if token else ""),
          flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", server_header=False)
    uvicorn.Server(config).run(sockets=[sock])


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    try:
        return socket.create_server((host.strip("[]"), port), family=family, backlog=128)
    except OSError as exc:
        raise AutologError(f"Cannot listen on {host}:{port}: {exc.strerror or exc}. "
                           "Pick another --port (0 = any free one) or --host.") from None


def _open_store(ctx: object) -> None:
    try:
        ctx.store.engine  # type: ignore[attr-defined]  # noqa: B018
    except Exception as exc:  # noqa: BLE001 - served anyway: each request answers 503 until it can be read
        print(f"autolog ui: warning: the metadata database cannot be read now ({exc}); pages answer 503 until it can.",
              file=sys.stderr, flush=True)


def _url(host: str, port: int) -> str:
    shown = host.strip("[]")
    if shown in ("0.0.0.0", "::", ""):
        shown = socket.gethostname()
    return f"http://[{shown}]:{port}/" if ":" in shown else f"http://{shown}:{port}/"
