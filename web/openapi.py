"""What the web app's OpenAPI document (``/schema``) says, shared by every route module.

Route decorators take their documented answers from here, so that /schema shows the body a client
really gets:

    @get("/export/x.csv", security=BEARER, response_headers=FILE_HEADERS,
         responses=export_responses("text/csv"), ...)

* :data:`ErrorEnvelope` is the one error body of the app (``web/errors.py``), a component of the
  document; :func:`errors` gives the ``responses=`` entries of the error statuses a route can
  answer, each with the envelope and an example.
* :func:`file_response` documents a file download (a body of the given media type);
  :data:`FILE_HEADERS` its ``Content-Disposition`` (and ``Cache-Control``).
* :data:`BEARER` is the security requirement of the routes that need a token (the scheme,
  :data:`SECURITY_SCHEMES`, is declared once in the app's OpenAPI config).
* :func:`finish` completes the generated document with what Litestar cannot say through a
  decorator: the headers of 401/429 answers, the query filters of the exports typed from their
  validation models (enums, date and uuid formats), and ``/ws`` (a WebSocket: Litestar leaves it
  out of the document).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from litestar.datastructures import ResponseHeader
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import Example, SecurityScheme

from web.errors import CODES, envelope

__all__ = [
    "BEARER",
    "FILE_HEADERS",
    "SECURITY_SCHEMES",
    "ErrorDetail",
    "ErrorEnvelope",
    "errors",
    "export_responses",
    "file_response",
]

ErrorCode = Literal[
    "VALIDATION_ERROR",
    "UNAUTHORIZED",
    "FORBIDDEN",
    "NOT_FOUND",
    "METHOD_NOT_ALLOWED",
    "CONFLICT",
    "UNPROCESSABLE_ENTITY",
    "RATE_LIMIT_EXCEEDED",
    "INTERNAL_SERVER_ERROR",
    "SERVICE_UNAVAILABLE",
]


@dataclass
class ErrorDetail:
    """What went wrong: a code (by HTTP status), a sentence for a person, and details."""

    code: ErrorCode
    message: str
    details: Any
    """null, or an object whose shape depends on the error (e.g. ``field`` and ``errors`` for a
    bad filter, ``hint`` for a refused token, ``reasons`` and ``checks`` for /health)."""


@dataclass
class ErrorEnvelope:
    """The body of every error the web app answers (web/errors.py)."""

    success: Literal[False]
    error: ErrorDetail


#: The scheme name of the bearer token in the document's components.
BEARER_SCHEME = "bearer"

#: The security requirement of a route that needs a token.
BEARER: list[dict[str, list[str]]] = [{BEARER_SCHEME: []}]

SECURITY_SCHEMES: dict[str, SecurityScheme] = {
    BEARER_SCHEME: SecurityScheme(
        type="http",
        scheme="bearer",
        bearer_format="JWT",
        description=(
            "The PostgREST token (HS256 with JWT_SECRET, or the identity provider's RS256/ES256 "
            "token): `Authorization: Bearer <jwt>`. Never in the URL."
        ),
    )
}

#: When each error status is answered, as the documents of the routes say it.
ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "Bad request: a bad, unknown or repeated parameter (`details.field` names it).",
    401: (
        "No, malformed, expired or badly signed token, or the token's user is unknown or "
        "inactive. `WWW-Authenticate: Bearer` is sent."
    ),
    403: "Forbidden: the database refused the caller (42501) or the origin is not allowed.",
    404: "Not found.",
    409: "Conflict with the data in the database.",
    413: "The request body is too large.",
    422: "The request is well-formed but was refused (e.g. by Stripe).",
    429: "Too many at once: try again after `Retry-After` seconds.",
    500: "Unexpected failure: the body holds no internals; the server's log has them.",
    503: "Not available now (no database connection free, a service not configured or down).",
}

_EXAMPLE_MESSAGES: dict[int, tuple[str, Any]] = {
    400: (
        "invalid filter 'status': must be one of not_started, in_progress, completed, overdue, "
        "exempted",
        {"field": "status", "errors": [{"field": "status", "message": "must be one of ..."}]},
    ),
    401: ("the token has expired", {"hint": "Sign in again to get a new token."}),
    403: ("permission denied", {"sqlstate": "42501"}),
    404: ("not found", None),
    409: ("conflict", {"sqlstate": "23505"}),
    413: ("the request body is larger than allowed", None),
    422: ("refused", None),
    429: ("you already have 2 exports running", {"limit": 2, "scope": "user"}),
    500: ("the server could not answer", None),
    503: ("no database connection is free; try again shortly", None),
}


def error_spec(status: int, description: str | None = None) -> ResponseSpec:
    """The ``responses=`` entry of one error status: the envelope, described, with an example."""
    code = CODES.get(status, "VALIDATION_ERROR" if status < 500 else "INTERNAL_SERVER_ERROR")
    message, details = _EXAMPLE_MESSAGES.get(status, ("request refused", None))
    return ResponseSpec(
        data_container=ErrorEnvelope,
        generate_examples=False,
        description=description or ERROR_DESCRIPTIONS.get(status, "Error."),
        examples=[Example(summary=code, value=envelope(code, message, details))],
    )


def errors(*statuses: int, **described: str) -> dict[int, ResponseSpec]:
    """``responses=`` entries for these error statuses (``described``: ``e400="..."`` overrides
    the description of one)."""
    return {s: error_spec(s, described.get(f"e{s}")) for s in statuses}


def file_response(media_type: str, description: str) -> dict[int, ResponseSpec]:
    """The ``responses=`` entry of a 200 that is a file of ``media_type``."""
    return {
        200: ResponseSpec(
            data_container=bytes,
            generate_examples=False,
            media_type=media_type,
            description=description,
        )
    }


#: The headers of a file download (documentation only; the handlers set them).
FILE_HEADERS: list[ResponseHeader] = [
    ResponseHeader(
        name="Content-Disposition",
        documentation_only=True,
        description='attachment; filename="<name>-YYYY-MM-DD.<ext>" (the organisation\'s today)',
    ),
    ResponseHeader(name="Cache-Control", documentation_only=True, description="no-store"),
]

#: The error statuses every export can answer: a bad filter, no or a bad token, too many exports
#: at once, a refusal of the database, no database connection free, an unexpected failure.
EXPORT_ERRORS: tuple[int, ...] = (400, 401, 403, 429, 500, 503)


def export_responses(media_type: str, description: str = "The file.") -> dict[int, ResponseSpec]:
    """``responses=`` of an export route: its file and every error it can answer."""
    return {**file_response(media_type, description), **errors(*EXPORT_ERRORS)}
