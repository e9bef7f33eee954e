"""What the web app's OpenAPI document (``/schema``) says, shared by every route module.

Route decorators take their documented answers from here, so that /schema shows the body a client
really gets:

    @get("/export/x.csv", security=BEARER, responses=export_responses("text/csv"), ...)

* :data:`ErrorEnvelope` is the one error body of the app (``web/errors.py``), a component of the
  document; :func:`errors` gives the ``responses=`` entries of the error statuses a route can
  answer, each with the envelope and an example.
* :func:`file_response` documents a file download (a body of the given media type); its
  ``Content-Disposition`` and ``Cache-Control`` are added by :func:`finish`.
* :data:`BEARER` is the security requirement of the routes that need a token (the scheme,
  :data:`SECURITY_SCHEMES`, is declared once in the app's OpenAPI config).
* :func:`finish` completes the generated document with what Litestar cannot say through a
  decorator: the headers of file downloads (a 200 that is not JSON, and its HEAD) and of
  401/426/429 answers, the query filters of the exports typed from their
  validation models (enums, date and uuid formats), and ``/ws`` (a WebSocket: Litestar leaves it
  out of the document).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from litestar.openapi import ResponseSpec
from litestar.openapi.spec import (
    Example,
    OpenAPI,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Parameter,
    RequestBody,
    Schema,
    SecurityScheme,
)
from pydantic import BaseModel

from web.errors import code_for, envelope

__all__ = [
    "BEARER",
    "FILE_HEADERS",
    "SECURITY_SCHEMES",
    "ErrorDetail",
    "ErrorEnvelope",
    "Health",
    "Presence",
    "StripeSession",
    "WebhookReceipt",
    "body",
    "errors",
    "export_responses",
    "file_response",
    "finish",
    "head_responses",
    "ws_responses",
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


# -- the bodies of the JSON answers (documentation: the handlers build plain dicts) -------------


@dataclass
class PresentUser:
    """A user connected to /ws on this web process."""

    id: UUID
    display_name: str
    app_role: Literal["superadmin", "hr_admin", "manager", "employee", "viewer"]
    connections: int
    connected_since: datetime


@dataclass
class Presence:
    """Who of the caller's organisation is connected (as far as the caller may read them)."""

    organization_id: UUID
    users: list[PresentUser]
    count: int


@dataclass
class HealthChecks:
    """What /health checked (database, LISTEN connection, relay) and the last sync per source."""

    database: dict[str, Any]
    listener: dict[str, Any]
    relay: dict[str, Any]
    syncs: list[dict[str, Any]]


@dataclass
class Health:
    """The web app serves: ``ok``, or ``degraded`` with the reasons."""

    status: Literal["ok", "degraded"]
    reasons: list[str]
    checks: HealthChecks
    uptime_seconds: float


@dataclass
class StripeSession:
    """A Stripe Checkout or Billing Portal session: send the superadmin to ``url``."""

    id: str
    url: str


@dataclass
class WebhookReceipt:
    """How a verified Stripe event was applied."""

    received: Literal[True]
    event_id: str
    type: str
    outcome: Literal["applied", "stale", "ignored", "unmatched", "duplicate"]


def body(data: type, description: str) -> dict[int, ResponseSpec]:
    """The ``responses=`` entry of a 200 whose JSON body is ``data`` (a dataclass above)."""
    return {
        200: ResponseSpec(data_container=data, generate_examples=False, description=description)
    }


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
    426: ("/ws is a WebSocket: open it with Upgrade: websocket (see /schema)", None),
    429: ("you already have 2 exports running", {"limit": 2, "scope": "user"}),
    500: ("the server could not answer", None),
    503: ("no database connection is free; try again shortly", None),
}


def error_spec(status: int, description: str | None = None) -> ResponseSpec:
    """The ``responses=`` entry of one error status: the envelope, described, with an example."""
    code = code_for(status)
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


XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

#: The headers of a file download (a 200 whose body is not JSON, and the 200 of its HEAD).
FILE_HEADERS: dict[str, OpenAPIHeader] = {
    "Content-Disposition": OpenAPIHeader(
        schema=Schema(type=OpenAPIType.STRING),
        description='attachment; filename="<name>-YYYY-MM-DD.<ext>" (the organisation\'s today)',
    ),
    "Cache-Control": OpenAPIHeader(schema=Schema(type=OpenAPIType.STRING), description="no-store"),
}

#: The error statuses every export can answer: a bad filter, no or a bad token, too many exports
#: at once, a refusal of the database, no database connection free, an unexpected failure.
EXPORT_ERRORS: tuple[int, ...] = (400, 401, 403, 429, 500, 503)


def export_responses(media_type: str, description: str = "The file.") -> dict[int, ResponseSpec]:
    """``responses=`` of an export route: its file and every error it can answer."""
    return {**file_response(media_type, description), **errors(*EXPORT_ERRORS)}


def head_responses(statuses: tuple[int, ...] = EXPORT_ERRORS) -> dict[int, ResponseSpec]:
    """``responses=`` of HEAD on an export whose GET may refuse with ``statuses``: the same
    answers without bodies, never 429."""
    return {
        200: ResponseSpec(
            data_container=None,
            description="The export would be served: its headers, no body.",
        ),
        **{
            status: ResponseSpec(
                data_container=None,
                description=ERROR_DESCRIPTIONS[status] + " (No body: HEAD.)",
            )
            for status in statuses
            if status != 429
        },
    }


#: What /schema says about WS /ws (Litestar leaves WebSocket routes out; GET /ws carries it).
WS_DESCRIPTION = """\
**A WebSocket**: open it with `GET /ws` and `Upgrade: websocket` (`ws://` or `wss://`). Over
plain HTTP, without the upgrade, the answer is 426.

**Handshake** (a refusal is an HTTP answer in the error envelope; no WebSocket is opened):
`Origin`, when sent (browsers always do), must be one of WEB_ALLOWED_ORIGINS (else 403); the
token comes as the sub-protocol pair `Sec-WebSocket-Protocol: bearer, <jwt>` (browsers; the
server then answers with the sub-protocol `bearer`) or as `Authorization: Bearer <jwt>` (else
401), never in the URL; the user must be known and active (else 401); more than
WEB_WS_MAX_CONNECTIONS connections is 503. A malformed handshake (no `Sec-WebSocket-Key`, a
wrong version) is answered by the server itself with 400 or 426 as text.

**Messages** (JSON text frames):

* server → `{"type": "welcome", "connection_id", "user": {"id", "display_name"},
  "organization_id", "resume_wait_seconds"}`
* → server `{"type": "resume", "last_event_id": N}`: start (or restart) right after event N
  (0 to 9223372036854775807). Sent first, within `resume_wait_seconds`, for a gapless start.
* server → `{"type": "resumed", "last_event_id": N}`, or `{"type": "ready", "last_event_id": N}`
  without a resume (the stream starts after the newest event, N)
* server → `{"type": "events", "last_event_id": N, "events": [<api.events rows>]}`: keep
  `last_event_id` to resume
* server → `{"type": "presence", "event": "join" | "leave", "user": {"id", "display_name"},
  "connections"}`
* → server `{"type": "ping"}`, server → `{"type": "pong"}`
* server → `{"type": "resync_required", "reason": "slow_consumer" | "resume_point_gone",
  "message", "last_event_id"}`, then close 1013
* server → `{"type": "error", "code", "message"}`: a bad client message (the connection stays),
  or the last word before a close (4401, 1007, 1008, 1011)

**Close codes**: 1000 normal; 1001, 1012 the server is stopping (reconnect and resume); 1003 a
binary message; 1007 a message nested deeper than 8 levels; 1008 flooding (more than
WEB_WS_MAX_MESSAGES_PER_SECOND); 1009 a message larger than WEB_WS_MAX_MESSAGE_BYTES; 1011 the
server failed serving this connection (reconnect and resume); 1013 after `resync_required`;
4401 the user was deactivated or removed while connected.
"""


def ws_responses() -> dict[int, ResponseSpec]:
    """``responses=`` of GET /ws: the upgrade, the refused handshakes, plain HTTP."""
    return {
        101: ResponseSpec(
            data_container=None,
            description=(
                "Switching Protocols: the WebSocket is open (with `Sec-WebSocket-Protocol: "
                "bearer` when the token came as a sub-protocol). Messages: see the description."
            ),
        ),
        400: ResponseSpec(
            data_container=str,
            generate_examples=False,
            media_type="text/plain",
            description="A malformed WebSocket handshake, answered by the server itself.",
        ),
        **errors(
            401,
            403,
            503,
            e403="The `Origin` is not one of WEB_ALLOWED_ORIGINS.",
            e503="Too many connections (WEB_WS_MAX_CONNECTIONS), or no database connection free.",
        ),
        426: error_spec(
            426,
            "Upgrade Required: a plain HTTP request to the WebSocket (no `Upgrade: websocket`). "
            "`Upgrade: websocket` is sent.",
        ),
    }


_RESPONSE_HEADERS: dict[str, dict[str, OpenAPIHeader]] = {
    "401": {
        "WWW-Authenticate": OpenAPIHeader(
            schema=Schema(type=OpenAPIType.STRING),
            description='Bearer realm="compliance"',
        )
    },
    "426": {
        "Upgrade": OpenAPIHeader(schema=Schema(type=OpenAPIType.STRING), description="websocket")
    },
    "429": {
        "Retry-After": OpenAPIHeader(
            schema=Schema(type=OpenAPIType.INTEGER, minimum=0),
            description="seconds to wait before trying again",
        )
    },
}


def _schema(js: dict[str, Any]) -> Schema:
    """A JSON Schema of pydantic (one field or a flat model) as Litestar's Schema; ``null`` left
    out of an optional value (a query parameter is absent, not null)."""
    if "anyOf" in js:
        kept = [s for s in js["anyOf"] if s.get("type") != "null"]
        if len(kept) == 1:
            return _schema({**kept[0], **{k: v for k, v in js.items() if k != "anyOf"}})
        return Schema(any_of=[_schema(s) for s in kept], description=js.get("description"))
    kind = js.get("type")
    return Schema(
        type=OpenAPIType(kind) if kind else None,
        enum=js.get("enum"),
        format=js.get("format"),
        min_length=js.get("minLength"),
        max_length=js.get("maxLength"),
        minimum=js.get("minimum"),
        maximum=js.get("maximum"),
        pattern=js.get("pattern"),
        default=js.get("default"),
        description=js.get("description"),
        properties={k: _schema(v) for k, v in js["properties"].items()}
        if "properties" in js
        else None,
        required=js.get("required"),
        additional_properties=False if js.get("additionalProperties") is False else None,
    )


#: How a yes/no query option is written (web/exports.py reads 1/0 or true/false).
_YES_NO = Schema(type=OpenAPIType.STRING, enum=["1", "0", "true", "false"])


def _filter_schemas(model: type[BaseModel]) -> dict[str, Schema]:
    properties = model.model_json_schema(by_alias=True)["properties"]
    typed = {name: _schema(field) for name, field in properties.items()}
    for schema in typed.values():
        if schema.type == OpenAPIType.BOOLEAN:
            schema.type, schema.enum = _YES_NO.type, _YES_NO.enum
    return typed


def _ok(operation: Any) -> OpenAPIResponse | None:
    response = (operation.responses or {}).get("200") if operation is not None else None
    return response if isinstance(response, OpenAPIResponse) else None


def _is_file(response: OpenAPIResponse | None) -> bool:
    """A 200 whose body is not JSON: a file download."""
    return bool(
        response is not None
        and response.content
        and not any(media.startswith("application/json") for media in response.content)
    )


def _add_headers(response: OpenAPIResponse | None, headers: dict[str, OpenAPIHeader]) -> None:
    if response is not None:
        response.headers = {**(response.headers or {}), **headers}


def finish(openapi: OpenAPI, filters: Mapping[str, type[BaseModel]]) -> OpenAPI:
    """Complete the document Litestar generated (in place; returned for convenience): headers
    of file downloads and of 401/426/429 answers, the query of each path of ``filters`` typed
    from the model that validates it (enums, formats), HEAD with its GET's parameters, GET /ws
    described as the WebSocket, the body of POST /billing/checkout."""
    paths = openapi.paths or {}
    for path, item in paths.items():
        operations = [
            op for op in (item.get, item.head, item.post, item.put, item.patch, item.delete) if op
        ]
        for operation in operations:
            for status, response in (operation.responses or {}).items():
                if status in _RESPONSE_HEADERS and isinstance(response, OpenAPIResponse):
                    _add_headers(response, _RESPONSE_HEADERS[status])
        if _is_file(_ok(item.get)):
            _add_headers(_ok(item.get), FILE_HEADERS)
            _add_headers(_ok(item.head), FILE_HEADERS)
        model = filters.get(path)
        if model is not None and item.get is not None:
            typed = _filter_schemas(model)
            for parameter in item.get.parameters or []:
                if (
                    isinstance(parameter, Parameter)
                    and parameter.param_in == "query"
                    and parameter.name in typed
                ):
                    parameter.schema = typed[parameter.name]
                    parameter.description = parameter.description or parameter.schema.description
        if item.head is not None and item.get is not None and not item.head.parameters:
            item.head.parameters = item.get.parameters
    ws = paths.get("/ws")
    if ws is not None and ws.get is not None:
        ws.get.description = WS_DESCRIPTION
    checkout = paths.get("/billing/checkout")
    if checkout is not None and checkout.post is not None:
        from web.billing import CheckoutRequest

        checkout.post.request_body = RequestBody(
            content={
                "application/json": OpenAPIMediaType(
                    schema=_schema(CheckoutRequest.model_json_schema())
                )
            },
            required=True,
            description="The plan to subscribe to (an empty body is refused: price_id).",
        )
    return openapi
