"""The one error envelope of the web app (DESIGN §7):

    {"success": false, "error": {"code": "VALIDATION_ERROR", "message": "...", "details": ...}}

Every error the app produces itself goes through :func:`envelope`: its own refusals
(:class:`WebError`), Litestar's (unknown route, wrong method, bad parameters), database refusals
(:class:`compliance.db.ApiError`, with PostgREST's status) and anything unexpected (500, with no
internals in the body; the log has them).
"""

from __future__ import annotations

import logging
from typing import Any

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException
from psycopg_pool import PoolTimeout

from compliance.db import ApiError

__all__ = [
    "CODES",
    "WebError",
    "code_for",
    "envelope",
    "error_response",
    "exception_handlers",
]

log = logging.getLogger("web.errors")

#: HTTP status -> the envelope's code (DESIGN §7), plus METHOD_NOT_ALLOWED for 405.
CODES: dict[int, str] = {
    400: "VALIDATION_ERROR",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    422: "UNPROCESSABLE_ENTITY",
    429: "RATE_LIMIT_EXCEEDED",
    500: "INTERNAL_SERVER_ERROR",
    503: "SERVICE_UNAVAILABLE",
}


def code_for(status: int) -> str:
    """The envelope code of an HTTP status (4xx without its own code: VALIDATION_ERROR)."""
    if status in CODES:
        return CODES[status]
    if status >= 500:
        return "SERVICE_UNAVAILABLE" if status in (502, 504) else "INTERNAL_SERVER_ERROR"
    if status == 410:
        return "NOT_FOUND"
    if status == 413:
        return "VALIDATION_ERROR"
    return "VALIDATION_ERROR" if 400 <= status < 500 else "INTERNAL_SERVER_ERROR"


class WebError(Exception):
    """A refusal of the web app: HTTP status, a sentence for a person, and details."""

    def __init__(
        self,
        status: int,
        message: str,
        details: Any = None,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details
        self.code = code or code_for(status)
        self.headers = headers or {}


def envelope(code: str, message: str, details: Any = None) -> dict[str, Any]:
    """The body of every error response."""
    return {"success": False, "error": {"code": code, "message": message, "details": details}}


def error_response(error: WebError) -> Response[dict[str, Any]]:
    """A JSON response carrying ``error`` in the envelope."""
    return Response(
        envelope(error.code, error.message, error.details),
        status_code=error.status,
        media_type=MediaType.JSON,
        headers=error.headers,
    )


def from_api_error(error: ApiError) -> WebError:
    """A database refusal as the web app reports it.

    The pre-request check refuses unknown users (PT401) and inactive users (PT403); both are
    401 UNAUTHORIZED here. Server-side failures keep their internals out of the body.
    """
    status = error.http_status
    if error.sqlstate in ("PT401", "PT403") or (status == 401):
        return WebError(401, error.message, {"hint": error.hint} if error.hint else None)
    if status >= 500:
        return WebError(status, "the database could not answer", {"sqlstate": error.sqlstate})
    details = {"sqlstate": error.sqlstate, "detail": error.detail, "hint": error.hint}
    return WebError(status, error.message, {k: v for k, v in details.items() if v is not None})


def _web_error_handler(_request: Request[Any, Any, Any], exc: WebError) -> Response[Any]:
    return error_response(exc)


def _api_error_handler(_request: Request[Any, Any, Any], exc: ApiError) -> Response[Any]:
    return error_response(from_api_error(exc))


def _http_exception_handler(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    message = exc.detail or "request refused"
    details: Any = None
    extra = getattr(exc, "extra", None)
    if status == 404:
        message = f"no such endpoint: {request.method} {request.url.path}"
    elif status == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
    elif status == 400 and extra:
        details = extra
        message = "invalid request parameters"
    elif status >= 500:
        log.error("%s %s failed: %s", request.method, request.url.path, exc.detail)
        message = "the server could not answer"
    headers = dict(exc.headers or {})
    return error_response(WebError(status, message, details, headers=headers))


def _pool_timeout_handler(request: Request[Any, Any, Any], _exc: PoolTimeout) -> Response[Any]:
    log.warning("%s %s: no database connection was free in time", request.method, request.url.path)
    return error_response(
        WebError(
            503,
            "no database connection is free; try again shortly",
            headers={"Retry-After": "5"},
        )
    )


def _unexpected_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("%s %s failed unexpectedly", request.method, request.url.path, exc_info=exc)
    return error_response(WebError(500, "the server could not answer"))


exception_handlers: dict[type[Exception] | int, Any] = {
    WebError: _web_error_handler,
    ApiError: _api_error_handler,
    HTTPException: _http_exception_handler,
    PoolTimeout: _pool_timeout_handler,
    Exception: _unexpected_handler,
}
