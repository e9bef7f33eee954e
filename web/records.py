"""GET /export/training-record/{employee}.{pdf,csv} and GET /export/roster/{module}.{pdf,csv}.

The evidence an inspector asks for (docs/web.md "Training record and course roster"): an
employee's training record (``api.training_record``) and a module's course roster
(``api.course_roster``). Each export:

1. checks the token (401), the id in the path (400 naming it) and the query (only ``excel`` on
   a CSV), and takes an export slot (429);
2. in one transaction acting as the caller: reads the record (the database decides: 403 when the
   caller may not, 404 for an id unknown in the caller's organisation, another organisation's
   included) and writes the ``compliance_export`` audit event (``app.record_export``, kind
   ``training_record.pdf`` … ``roster.csv``, with the id) — committed before the first byte
   leaves, and nothing written when the read is refused;
3. renders the file: CSV in the documented dialect (:func:`csv_bytes`), PDF with
   :mod:`web.pdf_layout` on the organisation's paper, in a worker thread.

File names: ``training-record-<employee id>-YYYY-MM-DD.<ext>``,
``course-roster-<module id>-YYYY-MM-DD.<ext>``, the date the organisation's today.
"""

from __future__ import annotations

import csv
import io
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

import anyio
import anyio.to_thread
from litestar import HttpMethod, Request, Response, get, route
from litestar.openapi.spec import OpenAPIResponse, Operation
from litestar.params import Parameter
from litestar.response.base import ASGIResponse
from psycopg import sql
from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict

from web.auth import request_token
from web.db import acting_as
from web.errors import WebError
from web.exports import ExcelOption, file_headers
from web.filters import parse_filters
from web.openapi import BEARER, errors, file_response, head_responses
from web.state import AppState

__all__ = [
    "ROSTER_COLUMNS",
    "TRAINING_RECORD_COLUMNS",
    "csv_bytes",
    "record_handlers",
    "roster_rows",
    "training_record_rows",
]

log = logging.getLogger("web.records")

#: A UTF-8 byte order mark: what Excel on Windows needs to read a CSV as UTF-8 (``?excel=1``).
BOM = "\ufeff".encode()

MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "pdf": "application/pdf"}

TRAINING_RECORD_COLUMNS: tuple[str, ...] = (
    "employee_id",
    "employee_name",
    "job_title",
    "department",
    "location",
    "module",
    "month_key",
    "assigned_at",
    "due_date",
    "status",
    "required",
    "not_required_reason",
    "completed_at",
    "score",
    "attempts",
    "late",
    "days_late",
    "exemption_reason",
    "exempted_by",
    "exempted_at",
    "valid_until",
    "corrections",
    "time_zone",
)

ROSTER_COLUMNS: tuple[str, ...] = (
    "session",
    "module",
    "trainer",
    "employee_id",
    "employee_name",
    "job_title",
    "department",
    "attended",
    "status",
    "due_date",
    "completed_at",
    "score",
    "late",
    "exemption_reason",
    "time_zone",
)


# -- the CSV dialect ---------------------------------------------------------------------------


def cell(value: Any) -> str:
    """One value in the export dialect (docs/web.md "The export dialect"): booleans
    ``true``/``false``, empty for none; dates and local date-times are already ``YYYY-MM-DD`` /
    ``YYYY-MM-DDTHH:MM:SS`` in the records (``app.local_iso``)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def score(value: Any) -> str:
    """A score with two decimals (``98.00``), empty for none."""
    if value is None:
        return ""
    return f"{Decimal(str(value)):.2f}"


def csv_bytes(columns: Sequence[str], rows: Iterable[Sequence[Any]], *, excel: bool) -> bytes:
    """UTF-8 CSV with a header row, lines ended as COPY ends them (the other exports); a BOM
    first for Excel."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return (BOM if excel else b"") + out.getvalue().encode("utf-8")


def _person(value: Any) -> str:
    if not value:
        return ""
    name, role = value.get("name"), value.get("role")
    return f"{name} ({role})" if role else str(name or "")


def training_record_rows(record: dict[str, Any]) -> list[list[str]]:
    """One row per cycle of ``api.training_record``, in its order."""
    employee = record["employee"]
    zone = record["time_zone"]
    rows: list[list[str]] = []
    for c in record["cycles"]:
        exemption = c.get("exemption") or {}
        corrections = "; ".join(
            f"{k.get('at')} {_person(k.get('by'))}: {k.get('reason')}"
            for k in c.get("corrections") or []
        )
        rows.append(
            [
                cell(employee["id"]),
                cell(employee["name"]),
                cell(employee["job_title"]),
                cell(employee["department"]),
                cell(employee["location"]),
                cell(c["module"]),
                cell(c["month_key"]),
                cell(c["assigned_at"]),
                cell(c["due_date"]),
                cell(c["status"]),
                cell(c["required"]),
                cell(c["not_required_reason"]),
                cell(c["completed_at"]),
                score(c["score"]),
                cell(c["attempts"]),
                cell(c["late"]),
                cell(c["days_late"]),
                cell(exemption.get("reason")),
                _person(exemption.get("by")),
                cell(exemption.get("at")),
                cell(c["valid_until"]),
                corrections,
                zone,
            ]
        )
    return rows


def roster_rows(roster: dict[str, Any]) -> list[list[str]]:
    """One row per attendee, then per absentee, of each session of ``api.course_roster``."""
    module = roster["module"]
    zone = roster["time_zone"]
    rows: list[list[str]] = []
    for session in roster["sessions"]:
        for a in session["completed"]:
            rows.append(
                [
                    cell(session["cycle"]),
                    cell(module["name"]),
                    cell(module["trainer"]),
                    cell(a["employee_id"]),
                    cell(a["name"]),
                    cell(a["job_title"]),
                    cell(a["department"]),
                    "true",
                    "completed",
                    cell(a["due_date"]),
                    cell(a["completed_at"]),
                    score(a["score"]),
                    cell(a["late"]),
                    "",
                    zone,
                ]
            )
        for a in session["not_completed"]:
            rows.append(
                [
                    cell(session["cycle"]),
                    cell(module["name"]),
                    cell(module["trainer"]),
                    cell(a["employee_id"]),
                    cell(a["name"]),
                    cell(a["job_title"]),
                    cell(a["department"]),
                    "false",
                    cell(a["status"]),
                    cell(a["due_date"]),
                    "",
                    "",
                    "",
                    cell(a["exemption_reason"]),
                    zone,
                ]
            )
    return rows


# -- one export --------------------------------------------------------------------------------


def _target(file: str, ext: str, what: str) -> uuid.UUID:
    """The id of ``<id>.<ext>`` (400 naming ``what`` when it is not an id)."""
    stem = file[: -len(ext) - 1] if file.endswith("." + ext) else file
    try:
        return uuid.UUID(stem)
    except ValueError:
        message = "must be an id like 8a6e0804-2bd0-4672-b79d-d97027f9071a"
        raise WebError(
            400,
            f"invalid {what} {stem[:60]!r}: {message}",
            {"field": what, "errors": [{"field": what, "message": message}]},
        ) from None


class _CsvQuery(ExcelOption):
    """The query of a record's CSV: ``excel`` alone."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class _PdfQuery(BaseModel):
    """The query of a record's PDF: none."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _excel(request: Request[Any, Any, Any], ext: str) -> bool:
    """The query checked like the other exports' (a 400 naming the parameter): ``excel`` on a
    CSV, nothing else; whether the CSV starts with a BOM."""
    items = list(request.query_params.multi_items())
    if ext != "csv":
        parse_filters(_PdfQuery, items)
        return False
    return bool(parse_filters(_CsvQuery, items).excel)


async def _read_and_audit(
    request: Request[Any, Any, Any],
    claims: dict[str, Any],
    kind: str,
    function: str,
    argument: str,
    target: uuid.UUID,
) -> tuple[dict[str, Any], str]:
    """Read ``api.<function>(<argument> => target)`` as the caller and audit the export, in one
    transaction; the record and the organisation's today (ISO)."""
    state = AppState.of(request)
    user = str(claims["sub"])
    state.limiter.acquire(user)
    try:
        conn = await state.pool.getconn(timeout=state.settings.web_db_timeout_seconds)
        try:
            async with acting_as(conn, claims, "GET", request.url.path, read_only=False) as cur:
                await cur.execute(
                    sql.SQL(
                        "select api.{}({} => %s) as record,"
                        " app.org_today(app.current_org_id())::text as today"
                    ).format(sql.Identifier(function), sql.Identifier(argument)),
                    [target],
                )
                row = await cur.fetchone()
                assert row is not None
                await cur.execute(
                    "select app.record_export(%s, %s)", [kind, Jsonb({argument: str(target)})]
                )
        finally:
            await state.pool.putconn(conn)
    finally:
        state.limiter.release(user)
    return row["record"], row["today"]


@dataclass(frozen=True)
class RecordExport:
    """One kind of record export: its path, audit kind, api function and files."""

    path: str  # /export/<path>/{file}
    stem: str  # of the file name
    kind: str  # audit kind, before .pdf/.csv
    function: str  # api.<function>(<argument> => id)
    argument: str
    columns: Sequence[str]
    rows: Callable[[dict[str, Any]], list[list[str]]]
    render: str  # the renderer's name in web.records_pdf

    def check(
        self, request: Request[Any, Any, Any], file: str
    ) -> tuple[dict[str, Any], str, uuid.UUID, bool]:
        """The caller's claims (401 first), the extension (404 unless pdf/csv), the id (400)
        and whether the CSV starts with a BOM."""
        claims = AppState.of(request).auth.claims(request_token(request.headers))
        ext = file.rsplit(".", 1)[-1] if "." in file else ""
        if ext not in MEDIA_TYPES:
            raise WebError(
                404, f"no such export: {request.url.path} (ask for {self.path}/<id>.pdf or .csv)"
            )
        return claims, ext, _target(file, ext, self.argument), _excel(request, ext)

    def filename(self, target: uuid.UUID, today: str, ext: str) -> str:
        return f"{self.stem}-{target}-{today}.{ext}"


TRAINING_RECORD = RecordExport(
    path="/export/training-record",
    stem="training-record",
    kind="training_record",
    function="training_record",
    argument="employee_id",
    columns=TRAINING_RECORD_COLUMNS,
    rows=training_record_rows,
    render="render_training_record",
)
ROSTER = RecordExport(
    path="/export/roster",
    stem="course-roster",
    kind="roster",
    function="course_roster",
    argument="module_id",
    columns=ROSTER_COLUMNS,
    rows=roster_rows,
    render="render_roster",
)


async def _export(
    request: Request[Any, Any, Any], file: str, what: RecordExport
) -> Response[bytes]:
    claims, ext, target, excel = what.check(request, file)
    started = time.monotonic()
    record, today = await _read_and_audit(
        request, claims, f"{what.kind}.{ext}", what.function, what.argument, target
    )
    if ext == "csv":
        body = csv_bytes(what.columns, what.rows(record), excel=excel)
    else:
        import web.records_pdf  # reportlab is imported only when a PDF is asked for

        render: Callable[[dict[str, Any]], bytes] = getattr(web.records_pdf, what.render)
        body = await anyio.to_thread.run_sync(render, record)
    log.info(
        "exported %s %s in %.2f s (%d bytes)",
        what.kind,
        target,
        time.monotonic() - started,
        len(body),
    )
    return Response(
        body, media_type=MEDIA_TYPES[ext], headers=file_headers(what.filename(target, today, ext))
    )


async def _head(request: Request[Any, Any, Any], file: str, what: RecordExport) -> ASGIResponse:
    """What the GET would answer, without the file: the same checks, the database's verdict
    (403, 404) read in a READ ONLY transaction, the same headers; no audit event (nothing was
    exported), no export slot."""
    claims, ext, target, _excel_bom = what.check(request, file)
    state = AppState.of(request)
    async with (
        state.pool.connection(timeout=state.settings.web_db_timeout_seconds) as conn,
        acting_as(conn, claims, "HEAD", request.url.path) as cur,
    ):
        await cur.execute(
            sql.SQL(
                "select api.{}({} => %s) is not null as found,"
                " app.org_today(app.current_org_id())::text as today"
            ).format(sql.Identifier(what.function), sql.Identifier(what.argument)),
            [target],
        )
        row = await cur.fetchone()
    assert row is not None
    # Built as sent: a Response would say Content-Length: 0, which is not the file's length.
    return ASGIResponse(
        is_head_response=True,
        headers={
            "Content-Type": MEDIA_TYPES[ext],
            **file_headers(what.filename(target, row["today"], ext)),
        },
    )


@dataclass
class PdfOrCsvOperation(Operation):
    """The 200 of a record export is a PDF or a CSV, as the path's extension says."""

    def __post_init__(self) -> None:
        ok = (self.responses or {}).get("200")
        if isinstance(ok, OpenAPIResponse) and ok.content:
            media = next(iter(ok.content.values()))
            ok.content = {MEDIA_TYPES["pdf"]: media, MEDIA_TYPES["csv"]: media}


RECORD_STATUSES = (400, 401, 403, 404, 429, 500, 503)
RECORD_ERRORS = errors(
    *RECORD_STATUSES,
    e400="The id in the path is not an id, or a query parameter other than `excel` (CSV).",
    e403="The caller may not read this record (42501).",
    e404="No such employee or module in the caller's organisation, or not .pdf/.csv.",
)
FILE_DESCRIPTION = "The PDF (`<id>.pdf`) or the CSV (`<id>.csv`)."
EXCEL = "CSV only: 1 to start the file with a UTF-8 BOM (Excel); 0 (the default) not"


@get(
    "/export/training-record/{file:str}",
    summary="Training record of an employee (PDF or CSV)",
    description=(
        "`<employee id>.pdf` or `<employee id>.csv`: every assignment cycle ever (module, "
        "cycle, assigned, due, completed at in local time, score, attempts, late by N days, "
        "exemption with reason and by whom, valid until, corrections), requirements with their "
        "reviews and the tier history (PDF), who generated it when, and the audit chain's head "
        "to verify it against. The employee themself, their manager, HR admins, superadmins "
        "and viewers. CSV: one row per cycle; `?excel=1` starts it with a UTF-8 BOM. Audited "
        "(compliance_export, training_record.pdf/.csv). JSON: /rpc/training_record."
    ),
    tags=["exports"],
    security=BEARER,
    operation_class=PdfOrCsvOperation,
    responses={**file_response(MEDIA_TYPES["pdf"], FILE_DESCRIPTION), **RECORD_ERRORS},
)
async def export_training_record(
    request: Request[Any, Any, Any],
    file: str = Parameter(description="`<employee id>.pdf` or `<employee id>.csv`"),
    excel: Literal["0", "1", "true", "false"] | None = Parameter(default=None, description=EXCEL),
) -> Response[bytes]:
    return await _export(request, file, TRAINING_RECORD)


@get(
    "/export/roster/{file:str}",
    summary="Course roster of a module (PDF or CSV)",
    description=(
        "`<module id>.pdf` or `<module id>.csv`: the module's content summary, trainer and "
        "qualifications, and for each session (the month of the due date) who attended (name, "
        "job title, department, completed at, score, late) and who was assigned and did not. "
        "HR admins, superadmins and viewers: the organisation; managers: their direct reports. "
        "CSV: one row per person and session; `?excel=1` starts it with a UTF-8 BOM. Audited "
        "(compliance_export, roster.pdf/.csv). JSON: /rpc/course_roster."
    ),
    tags=["exports"],
    security=BEARER,
    operation_class=PdfOrCsvOperation,
    responses={**file_response(MEDIA_TYPES["pdf"], FILE_DESCRIPTION), **RECORD_ERRORS},
)
async def export_roster(
    request: Request[Any, Any, Any],
    file: str = Parameter(description="`<module id>.pdf` or `<module id>.csv`"),
    excel: Literal["0", "1", "true", "false"] | None = Parameter(default=None, description=EXCEL),
) -> Response[bytes]:
    return await _export(request, file, ROSTER)


def _head_route(what: RecordExport, summary: str) -> Any:
    """HEAD on one record export (route(), not head(): head() refuses handlers that return a
    response object; this one is body-less by construction)."""

    async def handler(request: Request[Any, Any, Any], file: str) -> ASGIResponse:
        return await _head(request, file, what)

    handler.__name__ = handler.__qualname__ = "head_" + what.kind
    return route(
        what.path + "/{file:str}",
        http_method=[HttpMethod.HEAD],
        summary=f"{summary}: HEAD",
        description=(
            "The checks and headers of the GET (token, id, the database's 403/404, "
            "Content-Type, Content-Disposition with the file name) without the file: no audit "
            "event is written, no export slot is taken (never 429)."
        ),
        tags=["exports"],
        security=BEARER,
        operation_class=PdfOrCsvOperation,
        responses=head_responses(RECORD_STATUSES),
    )(handler)


def record_handlers() -> list[Any]:
    """The route handlers of this module (GET and HEAD)."""
    return [
        export_training_record,
        export_roster,
        _head_route(TRAINING_RECORD, "Training record of an employee (PDF or CSV)"),
        _head_route(ROSTER, "Course roster of a module (PDF or CSV)"),
    ]
