"""HEAD on the exports, and GET /ws without the upgrade.

HEAD on an export answers what its GET would, without the file: the same checks in the same
order (token 401; filters and options such as ``excel`` by the same models, 400 naming the
field; department and location resolved as the caller, so an unknown one is the same 400; a
database refusal keeps its status) and the same headers (``Content-Type``,
``Content-Disposition`` with the file name, ``Cache-Control``). It does not run the export, so it
writes no ``compliance_export`` audit event (nothing was exported), takes no export slot (never
429) and reads in a READ ONLY transaction; it sends no ``Content-Length`` (the file's is unknown
until the file is made). A link checker or a browser's download manager can ask whether an
export would be served and under which name without making one.

``GET /ws`` without ``Upgrade: websocket`` is 426 in the error envelope: /ws is a WebSocket.
"""

from __future__ import annotations

from typing import Any

from litestar import HttpMethod, Request, get, route
from litestar.response.base import ASGIResponse
from pydantic import BaseModel

from web.auth import request_token
from web.db import acting_as
from web.errors import WebError
from web.exports import AuditCsvFilters, ComplianceCsvFilters, Export, file_headers
from web.filters import AuditFilters, ComplianceFilters, parse_filters, resolve
from web.openapi import BEARER, XLSX_MEDIA_TYPE, head_responses, ws_responses
from web.state import AppState

__all__ = ["EXPORTS", "export_queries", "head_handlers", "ws_without_upgrade"]

CSV = "text/csv; charset=utf-8"
XLSX = XLSX_MEDIA_TYPE
PDF = "application/pdf"

Query = type[ComplianceFilters] | type[AuditFilters]

#: Every export route: its kind, the model of its query (filters and options: a HEAD checks what
#: its GET checks), its media type and its title.
EXPORTS: dict[str, tuple[str, Query, str, str]] = {
    "/export/compliance.csv": (
        "compliance.csv", ComplianceCsvFilters, CSV, "Compliance export (CSV)",
    ),
    "/export/compliance.xlsx": (
        "compliance.xlsx", ComplianceFilters, XLSX, "Compliance export (Excel)",
    ),
    "/export/compliance.pdf": (
        "compliance.pdf", ComplianceFilters, PDF, "Compliance report (PDF)",
    ),
    "/export/audit.csv": ("audit.csv", AuditCsvFilters, CSV, "Audit trail export (CSV)"),
}  # fmt: skip


def export_queries() -> dict[str, type[BaseModel]]:
    """The model of each export's query, for /schema (web/openapi.py ``finish``)."""
    return {path: model for path, (_, model, _, _) in EXPORTS.items()}


_HEAD_DESCRIPTION = (
    "The checks and headers of the GET (token, filters, Content-Type, Content-Disposition with "
    "the file name) without the file: the export is not run, no audit event is written, no "
    "export slot is taken (never 429)."
)


async def _head(
    request: Request[Any, Any, Any],
    kind: str,
    model: Query,
    media_type: str,
) -> ASGIResponse:
    state = AppState.of(request)
    claims = state.auth.claims(request_token(request.headers))
    filters = parse_filters(model, list(request.query_params.multi_items()))
    async with (
        state.pool.connection(timeout=state.settings.web_db_timeout_seconds) as conn,
        acting_as(conn, claims, "HEAD", request.url.path) as cur,
    ):
        resolved = await resolve(cur, filters)
    export = Export(state, kind, request.url.path, claims, filters, resolved=resolved)
    ext = kind.rsplit(".", 1)[1]
    # Built as sent: a Response would say Content-Length: 0, which is not the file's length.
    return ASGIResponse(
        is_head_response=True,
        headers={"Content-Type": media_type, **file_headers(export.filename(ext))},
    )


def _head_route(
    path: str,
    kind: str,
    model: Query,
    media_type: str,
    summary: str,
) -> Any:
    """HEAD on one export. route(), not head(): head() refuses handlers that return a response
    object; this one is body-less by construction."""

    async def handler(request: Request[Any, Any, Any]) -> ASGIResponse:
        return await _head(request, kind, model, media_type)

    handler.__name__ = handler.__qualname__ = "head_" + kind.replace(".", "_")
    return route(
        path,
        http_method=[HttpMethod.HEAD],
        summary=f"{summary}: HEAD",
        description=_HEAD_DESCRIPTION,
        tags=["exports"],
        security=BEARER,
        responses=head_responses(),
    )(handler)


def head_handlers() -> list[Any]:
    """HEAD on every export of web/exports.py."""
    return [
        _head_route(path, kind, model, media_type, summary)
        for path, (kind, model, media_type, summary) in EXPORTS.items()
    ]


@get(
    "/ws",
    name="events-http",
    status_code=101,
    summary="Live change events (WebSocket)",
    tags=["live"],
    security=BEARER,
    responses=ws_responses(),
)
async def ws_without_upgrade(request: Request[Any, Any, Any]) -> None:
    """The WebSocket's entry in /schema; over plain HTTP, 426 (the description is /schema's)."""
    raise WebError(
        426,
        "/ws is a WebSocket: open it with Upgrade: websocket (see /schema for its messages)",
        headers={"Upgrade": "websocket", "Connection": "Upgrade"},
    )
