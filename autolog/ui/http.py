"""Responses the app sends: strict JSON, the one-line error (JSON or a small HTML page), and the errors
handlers raise to produce them."""
from __future__ import annotations

import html
import json
from typing import Any

from starlette.responses import HTMLResponse, JSONResponse, Response

from ..cli_format import finite  # the CLI's --json rule: NaN and infinities as null
from ..config import scrub


class UIError(Exception):
    """A request the app answers with `status` and one line: a bad parameter (400), an unknown id (404), a
    snapshot that is not stored (409)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class Unavailable(UIError):
    """The metadata database cannot be read now (down, locked, damaged, newer schema): 503."""

    def __init__(self, message: str):
        super().__init__(503, message)




class StrictJSONResponse(JSONResponse):
    """JSON a browser's JSON.parse accepts: NaN and infinities become null (Python writes NaN)."""

    def render(self, content: Any) -> bytes:
        try:
            text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        except ValueError:  # a NaN somewhere: walk the document only then (rare, and it costs a copy)
            text = json.dumps(finite(content), ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        return text.encode("utf-8")


def one_line(message: str) -> str:
    """A message as the error responses carry it: one line, with any secret redact_url has seen hidden."""
    return " ".join(scrub(str(message)).split()) or "error"


def error_json(status: int, message: str) -> Response:
    return StrictJSONResponse({"error": one_line(message), "status": status}, status_code=status)


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>autolog: {title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel=stylesheet href=/static/style.css></head>
<body class="error-page"><main class="error"><h1>{status} {title}</h1><p class="error-message">{message}</p>
<p><a href="/">All tasks</a></p></main></body></html>
"""

_TITLES = {400: "Bad request", 401: "Token required", 404: "Not found", 405: "Method not allowed",
           409: "Not available", 500: "Server error", 503: "Database unavailable"}


def error_page(status: int, message: str) -> Response:
    """The small HTML page a page route answers an error with (the pages' stylesheet, the message)."""
    body = _PAGE.format(status=status, title=_TITLES.get(status, "Error"), message=html.escape(one_line(message)))
    return HTMLResponse(body, status_code=status)
