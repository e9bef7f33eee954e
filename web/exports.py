"""GET /export/compliance.{csv,xlsx,pdf} and GET /export/audit.csv.

Every export:
1. checks the token (401) and the filters (400 naming the field), takes an export slot (429);
2. in one transaction acting as the caller: resolves department/location names to ids and writes
   the ``compliance_export`` audit event with the filters (``app.record_export``) — committed
   before the first byte leaves, so an export that is cut short is still on record, and the
   long read below holds no transaction id (it never holds back the event relay's horizon);
3. reads in a READ ONLY transaction acting as the caller (row-level security decides):
   CSV straight from ``COPY (select …) TO STDOUT`` in chunks (constant memory, the connection
   goes back to the pool when the last chunk is out); XLSX through xlsxwriter in constant-memory
   mode into a temporary file, then streamed; PDF from ``api.compliance_report``, rendered with
   reportlab in a worker thread.
File names: ``compliance-report-YYYY-MM-DD.<ext>`` (``audit-log-YYYY-MM-DD.csv`` for the audit
trail), the date in the organisation's time zone.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import partial
from typing import Annotated, Any

import anyio
import anyio.to_thread
import psycopg
from litestar import Request, Response, get
from litestar.background_tasks import BackgroundTask
from litestar.params import Parameter, QueryParameter
from litestar.response import Stream
from psycopg import sql
from psycopg.rows import tuple_row
from psycopg.types.datetime import DateLoader, TimestampLoader, TimestamptzLoader
from psycopg.types.json import Jsonb
from psycopg_pool import PoolTimeout
from pydantic import BaseModel, Field, field_validator

from web.auth import request_token
from web.db import AsyncConn, acting_as
from web.filters import AuditFilters, ComplianceFilters, Resolved, parse_filters, resolve
from web.openapi import BEARER, XLSX_MEDIA_TYPE, export_responses
from web.state import AppState

__all__ = ["export_handlers"]

log = logging.getLogger("web.export")

#: The export dialect (docs/web.md "The export dialect"), the same in every CSV and XLSX export:
#: UTF-8 with a header row (``?excel=1`` prefixes the byte order mark), booleans ``true``/``false``,
#: dates YYYY-MM-DD, date-times the organisation's local wall-clock time YYYY-MM-DDTHH:MM:SS
#: (``app.local_iso``) with a ``time_zone`` column naming the IANA zone, as the last column.
COMPLIANCE_COLUMNS: tuple[str, ...] = (
    "assignment_id",
    "employee_id",
    "employee_name",
    "employee_email",
    "employee_status",
    "job_title",
    "department",
    "location",
    "module",
    "month_key",
    "due_date",
    "status",
    "completion_date",
    "score",
    "attempts",
    "is_required",
    "is_late",
    "exemption_reason",
    "days_overdue",
    "time_zone",
)
COMPLIANCE_ORDER = (
    "department, location, employee_name, employee_id, due_date, module, assignment_id"
)
#: Columns of api.compliance_export that hold an instant, and booleans (written as text in CSV).
COMPLIANCE_INSTANTS = frozenset({"completion_date"})
COMPLIANCE_BOOLEANS = frozenset({"is_required", "is_late"})

#: The audit CSV: actors as people (name and application role; a database role only for a
#: service account, named as such), what changed as text, every time in the organisation's
#: zone. The row's exact JSON stays in api.audit_log (``id`` points at it).
AUDIT_COLUMNS: tuple[str, ...] = (
    "id",
    "occurred_at",
    "actor",
    "actor_role",
    "actor_user_id",
    "event_type",
    "table_name",
    "op",
    "entity_id",
    "employee_id",
    "employee_name",
    "changed_fields",
    "changes",
    "details",
    "time_zone",
)

UTF8_BOM = b"\xef\xbb\xbf"

XLSX_MAX_ROWS = 1_048_576  # rows of an Excel sheet, header included
XLSX_BATCH = 5000


# -- one export's life --------------------------------------------------------------------


@dataclass
class Export:
    """The caller, the filters, the pooled connection and the slot of one export."""

    state: AppState
    kind: str
    path: str
    claims: dict[str, Any]
    filters: ComplianceFilters | AuditFilters
    resolved: Resolved | None = None
    conn: AsyncConn | None = None
    finished: bool = False
    _released: bool = field(default=False, repr=False)

    @property
    def user(self) -> str:
        return str(self.claims["sub"])

    async def start(self) -> None:
        """Take a slot and a connection; resolve the filters and audit the export (one commit)."""
        self.state.limiter.acquire(self.user)
        try:
            self.conn = await self.state.pool.getconn(
                timeout=self.state.settings.web_db_timeout_seconds
            )
        except PoolTimeout:
            self.state.limiter.release(self.user)
            self._released = True
            raise  # web.errors answers 503 with Retry-After
        try:
            async with acting_as(self.conn, self.claims, "GET", self.path, read_only=False) as cur:
                self.resolved = await resolve(cur, self.filters)
                details: dict[str, Any] = dict(self.filters.given())
                if self.resolved.department_id is not None:
                    details["department_id"] = str(self.resolved.department_id)
                if self.resolved.location_id is not None:
                    details["location_id"] = str(self.resolved.location_id)
                await cur.execute("select app.record_export(%s, %s)", [self.kind, Jsonb(details)])
        except BaseException:
            await self.close()
            raise

    def filename(self, ext: str) -> str:
        """Named for the organisation's today (its local date), never this machine's."""
        assert self.resolved is not None
        stem = "audit-log" if self.kind == "audit.csv" else "compliance-report"
        return f"{stem}-{self.resolved.today.isoformat()}.{ext}"

    async def close(self) -> None:
        """Give the connection back (closed if a read was cut short) and free the slot."""
        if self._released:
            return
        self._released = True
        with anyio.CancelScope(shield=True):
            conn, self.conn = self.conn, None
            if conn is not None:
                try:
                    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                        await conn.close()  # ends a COPY or a cursor the server still runs
                except Exception:  # pragma: no cover - closing a broken connection
                    log.warning("could not close an export connection cleanly", exc_info=True)
                await self.state.pool.putconn(conn)
            self.state.limiter.release(self.user)
            if not self.finished:
                log.info("export %s for user %s ended early", self.kind, self.user)


async def _begin(request: Request[Any, Any, Any], kind: str, model: type[Any]) -> Export:
    state = AppState.of(request)
    claims = state.auth.claims(request_token(request.headers))
    filters = parse_filters(model, list(request.query_params.multi_items()))
    export = Export(state, kind, request.url.path, claims, filters)
    await export.start()
    return export


def file_headers(filename: str) -> dict[str, str]:
    """The headers of a downloaded export file."""
    return {
        "Content-Disposition": f'attachment; filename="{filename}"',
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
    }


class ExcelOption(BaseModel):
    """``excel``: the CSV exports' one option beside their filters, checked like them (a 400
    naming it): ``1`` (or ``true``) prefixes the UTF-8 byte order mark, by which Excel on Windows
    knows the file is UTF-8; ``0``, ``false`` or absent, none."""

    excel: bool | None = Field(default=None, description="1: prefix the UTF-8 BOM for Excel")

    @field_validator("excel", mode="before")
    @classmethod
    def _one_or_zero(cls, value: Any) -> Any:
        if isinstance(value, str):
            if value.lower() in ("1", "true"):
                return True
            if value.lower() in ("0", "false"):
                return False
            raise ValueError(f"must be 1 or 0 (true or false), not {value!r}")
        return value


class ComplianceCsvFilters(ComplianceFilters, ExcelOption):
    """Filters of /export/compliance.csv, and ``excel``."""

    def given(self) -> dict[str, str]:
        return _excel_as_given(super().given(), self.excel)


class AuditCsvFilters(AuditFilters, ExcelOption):
    """Filters of /export/audit.csv, and ``excel``."""

    def given(self) -> dict[str, str]:
        return _excel_as_given(super().given(), self.excel)


def _excel_as_given(given: dict[str, str], excel: bool | None) -> dict[str, str]:
    if excel is not None:
        given["excel"] = "1" if excel else "0"
    return given


# -- SQL of the exports -----------------------------------------------------------------------


def _compliance_column(column: str, timezone: sql.Composable, *, csv: bool) -> sql.Composable:
    """One column of the compliance export: as the CSV dialect writes it (text made in the
    SELECT, so COPY streams it), or typed for the workbook (an instant as local time)."""
    ident = sql.Identifier(column)
    if column == "time_zone":
        return sql.SQL("{}::text as time_zone").format(timezone)
    if column in COMPLIANCE_INSTANTS:
        if csv:
            return sql.SQL("app.local_iso({}, {}) as {}").format(ident, timezone, ident)
        return sql.SQL("pg_catalog.timezone({}, {}) as {}").format(timezone, ident, ident)
    if csv and column in COMPLIANCE_BOOLEANS:
        return sql.SQL("{}::text as {}").format(ident, ident)  # true/false, not COPY's t/f
    return ident


def compliance_select(
    filters: ComplianceFilters, resolved: Resolved, *, csv: bool = True
) -> sql.Composed:
    """``select <columns> from api.compliance_export where <filters> order by …`` (literals
    inlined: COPY takes no parameters; every value was checked or resolved before). ``csv``:
    every value as the export dialect writes it; else typed values for the workbook."""
    where: list[sql.Composable] = []
    if resolved.department_id is not None:
        where.append(sql.SQL("department_id = {}").format(sql.Literal(resolved.department_id)))
    if resolved.location_id is not None:
        where.append(sql.SQL("location_id = {}").format(sql.Literal(resolved.location_id)))
    if filters.status is not None:
        where.append(
            sql.SQL("status = {}::app.assignment_status").format(sql.Literal(filters.status))
        )
    if filters.from_ is not None:
        where.append(sql.SQL("due_date >= {}::date").format(sql.Literal(filters.from_)))
    if filters.to is not None:
        where.append(sql.SQL("due_date <= {}::date").format(sql.Literal(filters.to)))
    tz = sql.Literal(resolved.timezone)
    return sql.SQL("select {} from api.compliance_export{} order by {}").format(
        sql.SQL(", ").join(_compliance_column(c, tz, csv=csv) for c in COMPLIANCE_COLUMNS),
        sql.SQL(" where ") + sql.SQL(" and ").join(where) if where else sql.SQL(""),
        sql.SQL(COMPLIANCE_ORDER),
    )


def audit_select(filters: AuditFilters, resolved: Resolved) -> sql.Composed:
    """``select <columns> from api.audit_log where <filters> order by occurred_at, id``, each
    entry as people read it (app.audit_entry_text, app.audit_actor_name: docs/web.md)."""
    where: list[sql.Composable] = []
    tz = sql.Literal(resolved.timezone)
    if filters.from_ is not None:
        where.append(
            sql.SQL("occurred_at >= ({}::date::timestamp at time zone {})").format(
                sql.Literal(filters.from_), tz
            )
        )
    if filters.to is not None:
        where.append(
            sql.SQL("occurred_at < (({}::date + 1)::timestamp at time zone {})").format(
                sql.Literal(filters.to), tz
            )
        )
    if filters.event_type is not None:
        where.append(sql.SQL("event_type = {}").format(sql.Literal(filters.event_type)))
    if filters.employee is not None:
        where.append(sql.SQL("employee_id = {}").format(sql.Literal(filters.employee)))
    for column, value in (
        ("department_id", resolved.department_id),
        ("location_id", resolved.location_id),
    ):
        if value is not None:
            where.append(
                sql.SQL("employee_id in (select e.id from api.employees e where e.{} = {})").format(
                    sql.Identifier(column), sql.Literal(value)
                )
            )
    columns = sql.SQL(
        "l.id,"
        " app.local_iso(l.occurred_at, {tz}) as occurred_at,"
        " case when l.actor_user_id is null then app.service_account_name(l.actor_role)"
        "      else coalesce(n.name, 'unknown user') end as actor,"
        " case when l.actor_user_id is null then 'service' else l.actor_role end as actor_role,"
        " l.actor_user_id, l.event_type, l.table_name, l.op, l.entity_id, l.employee_id,"
        " e.full_name as employee_name,"
        " pg_catalog.array_to_string(l.changed_fields, ', ') as changed_fields,"
        " x.changes, x.details,"
        " {tz}::text as time_zone"
    ).format(tz=tz)
    return sql.SQL(
        "select {} from (select * from api.audit_log{}) l"
        " left join api.employees e on e.org_id = l.org_id and e.id = l.employee_id"
        " left join app.audit_table_columns() t on t.table_name = l.table_name"
        # one look-up per distinct actor (the planner memoizes a lateral sub-select, never a
        # function call in the select list)
        " left join lateral (select app.audit_actor_name(l.actor_user_id) as name offset 0) n"
        "     on true"
        " left join lateral app.audit_entry_text(l.op, l.old_values, l.new_values,"
        "     l.changed_fields, t.columns, l.details, {}) x on true"
        " order by l.occurred_at, l.id"
    ).format(
        columns,
        sql.SQL(" where ") + sql.SQL(" and ").join(where) if where else sql.SQL(""),
        tz,
    )


# -- CSV: COPY straight through -------------------------------------------------------------


async def _csv_stream(export: Export, query: sql.Composed) -> Stream:
    """Stream ``COPY (query) TO STDOUT`` as CSV; the BOM first when ``?excel=1`` asked for it."""
    assert export.conn is not None
    assert export.resolved is not None
    conn = export.conn
    chunk_bytes = export.state.settings.web_export_chunk_bytes
    reader = acting_as(conn, export.claims, "GET", export.path)
    try:
        cur = await reader.__aenter__()
        await cur.execute(
            "select set_config('timezone', %s, true), set_config('datestyle', 'ISO, YMD', true)",
            [export.resolved.timezone],
        )
        copy_cm = cur.copy(sql.SQL("copy ({}) to stdout with (format csv, header)").format(query))
        copy = await copy_cm.__aenter__()
        # The header and the first row (each read() is one row) are read before the response
        # starts, so that a refusal of the query is still an HTTP error, not a truncated file.
        first = bytearray(UTF8_BOM if getattr(export.filters, "excel", None) else b"")
        ended = False
        for _ in range(2):
            data = await copy.read()
            if not data:
                ended = True
                break
            first += data
    except BaseException:
        await export.close()
        raise

    async def chunks() -> AsyncIterator[bytes]:
        try:
            yield bytes(first)
            buffer = bytearray()
            while not ended and (data := await copy.read()):
                buffer += data
                if len(buffer) >= chunk_bytes:
                    yield bytes(buffer)
                    buffer.clear()
            await copy_cm.__aexit__(None, None, None)
            await reader.__aexit__(None, None, None)  # commits the read-only transaction
            export.finished = True
            if buffer:
                yield bytes(buffer)
        except BaseException:
            # A database error mid-stream aborts the HTTP response (the client sees a broken
            # transfer, never a silently truncated file); a cancelled one just ends.
            await export.close()
            raise
        await export.close()

    return Stream(
        chunks(),
        media_type="text/csv; charset=utf-8",
        headers=file_headers(export.filename("csv")),
        background=BackgroundTask(export.close),
    )


@get(
    "/export/compliance.csv",
    summary="Compliance export (CSV)",
    description=(
        "One row per training assignment the caller may read (row-level security decides), "
        "streamed from the database. Filters: department and location (id or name), status, "
        "from/to (due date, inclusive). Every export is recorded in the audit trail."
    ),
    tags=["exports"],
    media_type="text/csv",
    security=BEARER,
    responses=export_responses("text/csv; charset=utf-8"),
)
async def export_compliance_csv(
    request: Request[Any, Any, Any],
    department: str | None = Parameter(default=None, description="department id or name"),
    location: str | None = Parameter(default=None, description="location id or name"),
    status: str | None = Parameter(
        default=None, description="not_started, in_progress, completed, overdue or exempted"
    ),
    from_: Annotated[
        str | None, QueryParameter(name="from", description="due on or after (YYYY-MM-DD)")
    ] = None,
    to: str | None = Parameter(default=None, description="due on or before (YYYY-MM-DD)"),
    excel: str | None = Parameter(
        default=None,
        description="1: begin the file with the UTF-8 byte order mark, for Excel on Windows",
    ),
) -> Stream:
    export = await _begin(request, "compliance.csv", ComplianceCsvFilters)
    assert export.resolved is not None
    assert isinstance(export.filters, ComplianceFilters)
    return await _csv_stream(export, compliance_select(export.filters, export.resolved))


@get(
    "/export/audit.csv",
    summary="Audit trail export (CSV)",
    description=(
        "The audit entries the caller may read, oldest first, streamed from the database. "
        "Filters: from/to (days in the organisation's time zone), event_type, employee, and "
        "department/location of the employee concerned. The export itself is audited."
    ),
    tags=["exports"],
    media_type="text/csv",
    security=BEARER,
    responses=export_responses("text/csv; charset=utf-8"),
)
async def export_audit_csv(
    request: Request[Any, Any, Any],
    department: str | None = Parameter(default=None, description="department id or name"),
    location: str | None = Parameter(default=None, description="location id or name"),
    event_type: str | None = Parameter(default=None, description="e.g. tier_change"),
    employee: str | None = Parameter(default=None, description="employee id"),
    from_: Annotated[
        str | None, QueryParameter(name="from", description="from this day (YYYY-MM-DD)")
    ] = None,
    to: str | None = Parameter(default=None, description="to this day, inclusive (YYYY-MM-DD)"),
    excel: str | None = Parameter(
        default=None,
        description="1: begin the file with the UTF-8 byte order mark, for Excel on Windows",
    ),
) -> Stream:
    export = await _begin(request, "audit.csv", AuditCsvFilters)
    assert export.resolved is not None
    assert isinstance(export.filters, AuditFilters)
    return await _csv_stream(export, audit_select(export.filters, export.resolved))


# -- XLSX: constant-memory workbook in a temporary file --------------------------------------


#: Excel's calendar starts in 1900 and its numbers hold 15 significant digits: a value outside
#: them is written as text, never refused (the export shows whatever the database holds).
XLSX_FIRST_YEAR = 1900
XLSX_MAX_EXACT = 10**15


class _TextWhenOutOfRange:
    """A date/time loader that hands over the database's text when Python cannot hold the value
    (infinity, -infinity, a year before 1 or after 9999)."""

    def load(self, data: Any) -> Any:
        try:
            return super().load(data)  # type: ignore[misc]
        except psycopg.DataError:
            return bytes(data).decode()


class _DateOrText(_TextWhenOutOfRange, DateLoader):
    pass


class _TimestampOrText(_TextWhenOutOfRange, TimestampLoader):
    pass


class _TimestamptzOrText(_TextWhenOutOfRange, TimestamptzLoader):
    pass


def _cell(value: Any) -> Any:
    """What one database value becomes in a cell: a number, date or text Excel can show."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, date):  # datetime too
        return value if value.year >= XLSX_FIRST_YEAR else value.isoformat()
    if isinstance(value, Decimal):
        exact = value.is_finite() and abs(value) < XLSX_MAX_EXACT
        return float(value) if exact else str(value)
    if isinstance(value, (int, float)):
        exact = math.isfinite(value) and abs(value) < XLSX_MAX_EXACT
        return value if exact else str(value)
    return str(value)  # UUID, enum, JSON, ...


#: Column widths of the workbook (characters), wide enough for typical values; a column not
#: listed is as wide as its header.
XLSX_WIDTHS: dict[str, float] = {
    "assignment_id": 38,
    "employee_id": 38,
    "employee_name": 26,
    "employee_email": 32,
    "employee_status": 16,
    "job_title": 22,
    "department": 20,
    "location": 18,
    "module": 32,
    "month_key": 10,
    "due_date": 12,
    "status": 13,
    "completion_date": 20,
    "score": 8,
    "attempts": 10,
    "is_required": 12,
    "is_late": 9,
    "exemption_reason": 32,
    "days_overdue": 14,
    "time_zone": 20,
}
#: Number formats by column: scores and rates with two decimals, counts whole.
XLSX_NUMBER_FORMATS: dict[str, str] = {
    "score": "0.00",
    "attempts": "0",
    "days_overdue": "0",
}
XLSX_DATE_FORMAT = "yyyy-mm-dd"
XLSX_DATETIME_FORMAT = "yyyy-mm-dd hh:mm:ss"


class _Workbook:
    """xlsxwriter in constant-memory mode: rows go to disk as they are written. Each sheet has
    its header row frozen and under an autofilter, set column widths, dates and date-times as
    Excel dates (date-times the organisation's local time, named by the ``time_zone`` column),
    numbers with their format (two decimals for scores) and booleans as booleans."""

    def __init__(self, path: str, title: str, columns: tuple[str, ...]) -> None:
        import xlsxwriter  # type: ignore[import-untyped]  # only the XLSX export needs it

        self.book = xlsxwriter.Workbook(
            path,
            {
                "constant_memory": True,
                "remove_timezone": True,
                "default_date_format": XLSX_DATE_FORMAT,
                "tmpdir": os.path.dirname(path),
            },
        )
        self.header = self.book.add_format({"bold": True})
        self.date = self.book.add_format({"num_format": XLSX_DATE_FORMAT})
        self.datetime = self.book.add_format({"num_format": XLSX_DATETIME_FORMAT})
        self.numbers = [
            self.book.add_format({"num_format": XLSX_NUMBER_FORMATS[c]})
            if c in XLSX_NUMBER_FORMATS
            else None
            for c in columns
        ]
        self.title = title
        self.columns = columns
        self.sheets = 0
        self.row = XLSX_MAX_ROWS  # forces a first sheet
        self.sheet: Any = None

    def _finish_sheet(self) -> None:
        if self.sheet is not None:
            self.sheet.autofilter(0, 0, max(self.row - 1, 0), len(self.columns) - 1)

    def _new_sheet(self) -> None:
        self._finish_sheet()
        self.sheets += 1
        name = self.title if self.sheets == 1 else f"{self.title} ({self.sheets})"
        self.sheet = self.book.add_worksheet(name[:31])
        for col, column in enumerate(self.columns):
            width = max(XLSX_WIDTHS.get(column, 0), len(column) + 2)
            self.sheet.set_column(col, col, width, self.numbers[col])
        self.sheet.write_row(0, 0, self.columns, self.header)
        self.sheet.freeze_panes(1, 0)
        self.row = 1

    def write(self, rows: list[tuple[Any, ...]]) -> None:
        for values in rows:
            if self.row >= XLSX_MAX_ROWS:
                self._new_sheet()
            for col, value in enumerate(values):
                cell = _cell(value)
                if isinstance(cell, datetime):
                    self.sheet.write_datetime(self.row, col, cell, self.datetime)
                elif isinstance(cell, date):
                    self.sheet.write_datetime(self.row, col, cell, self.date)
                elif isinstance(cell, bool):
                    self.sheet.write_boolean(self.row, col, cell)
                elif isinstance(cell, str):
                    self.sheet.write_string(self.row, col, cell)
                elif cell is not None:
                    self.sheet.write_number(self.row, col, cell, self.numbers[col])
            self.row += 1

    def close(self) -> None:
        if self.sheets == 0:
            self._new_sheet()
        self._finish_sheet()
        self.book.close()


async def _file_chunks(path: str, chunk: int) -> AsyncIterator[bytes]:
    async with await anyio.open_file(path, "rb") as f:
        while data := await f.read(chunk):
            yield data


@get(
    "/export/compliance.xlsx",
    summary="Compliance export (Excel)",
    description=(
        "The rows of /export/compliance.csv as an Excel workbook (dates and numbers typed), "
        "written in constant memory. Same filters; audited."
    ),
    tags=["exports"],
    media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    security=BEARER,
    responses=export_responses(XLSX_MEDIA_TYPE),
)
async def export_compliance_xlsx(
    request: Request[Any, Any, Any],
    department: str | None = Parameter(default=None, description="department id or name"),
    location: str | None = Parameter(default=None, description="location id or name"),
    status: str | None = Parameter(default=None, description="assignment status"),
    from_: Annotated[str | None, QueryParameter(name="from", description="due on or after")] = None,
    to: str | None = Parameter(default=None, description="due on or before"),
) -> Stream:
    export = await _begin(request, "compliance.xlsx", ComplianceFilters)
    assert export.conn is not None
    assert export.resolved is not None
    assert isinstance(export.filters, ComplianceFilters)
    tmpdir = tempfile.mkdtemp(prefix="compliance-xlsx-")
    path = os.path.join(tmpdir, "export.xlsx")

    def cleanup_files() -> None:
        shutil.rmtree(tmpdir, ignore_errors=True)

    try:
        book = _Workbook(path, "Assignments", COMPLIANCE_COLUMNS)
        async with acting_as(export.conn, export.claims, "GET", export.path) as cur:
            await cur.execute("select set_config('timezone', %s, true)", [export.resolved.timezone])
            async with export.conn.cursor(name="xlsx_export", row_factory=tuple_row) as named:
                named.adapters.register_loader("date", _DateOrText)
                named.adapters.register_loader("timestamp", _TimestampOrText)
                named.adapters.register_loader("timestamptz", _TimestamptzOrText)
                await named.execute(compliance_select(export.filters, export.resolved, csv=False))
                while rows := await named.fetchmany(XLSX_BATCH):
                    await anyio.to_thread.run_sync(book.write, rows)
        await anyio.to_thread.run_sync(book.close)
        export.finished = True
    except BaseException:
        await export.close()
        await anyio.to_thread.run_sync(cleanup_files)
        raise
    await export.close()  # the connection is back in the pool before the download starts

    async def chunks() -> AsyncIterator[bytes]:
        try:
            async for data in _file_chunks(path, export.state.settings.web_export_chunk_bytes):
                yield data
        finally:
            cleanup_files()

    return Stream(
        chunks(),
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers=file_headers(export.filename("xlsx")),
        background=BackgroundTask(anyio.to_thread.run_sync, cleanup_files),
    )


# -- PDF: the compliance report --------------------------------------------------------------


@get(
    "/export/compliance.pdf",
    summary="Compliance report (PDF)",
    description=(
        "A printable report of the assignments matching the filters: organisation, filters, "
        "generation time, summary figures, compliance by department and by location against "
        "their targets, the overdue list and the compliance trend (from /rpc/compliance_report). "
        "Audited."
    ),
    tags=["exports"],
    media_type="application/pdf",
    security=BEARER,
    responses=export_responses("application/pdf"),
)
async def export_compliance_pdf(
    request: Request[Any, Any, Any],
    department: str | None = Parameter(default=None, description="department id or name"),
    location: str | None = Parameter(default=None, description="location id or name"),
    status: str | None = Parameter(default=None, description="assignment status"),
    from_: Annotated[str | None, QueryParameter(name="from", description="due on or after")] = None,
    to: str | None = Parameter(default=None, description="due on or before"),
) -> Response[bytes]:
    from web.report import render_report  # reportlab is imported only when a PDF is asked for

    started = time.monotonic()
    export = await _begin(request, "compliance.pdf", ComplianceFilters)
    assert export.conn is not None
    assert export.resolved is not None
    filters = export.filters
    assert isinstance(filters, ComplianceFilters)
    try:
        async with acting_as(export.conn, export.claims, "GET", export.path) as cur:
            await cur.execute(
                "select api.compliance_report("
                " department_id => %s, location_id => %s, status => %s::app.assignment_status,"
                " due_from => %s, due_to => %s, overdue_limit => %s) as report,"
                " (select o.paper_size from api.organizations o) as paper_size",
                [
                    export.resolved.department_id,
                    export.resolved.location_id,
                    filters.status,
                    filters.from_,
                    filters.to,
                    export.state.settings.web_pdf_overdue_rows,
                ],
            )
            row = await cur.fetchone()
        export.finished = True
    finally:
        await export.close()
    assert row is not None
    labels = {
        "department": export.resolved.department_name,
        "location": export.resolved.location_name,
        "status": filters.status,
        "from": filters.from_.isoformat() if filters.from_ else None,
        "to": filters.to.isoformat() if filters.to else None,
    }
    pdf = await anyio.to_thread.run_sync(
        partial(render_report, paper=row["paper_size"] or "letter"), row["report"], labels
    )
    log.info(
        "rendered the compliance report for user %s in %.2f s (%d bytes)",
        export.user,
        time.monotonic() - started,
        len(pdf),
    )
    return Response(pdf, media_type="application/pdf", headers=file_headers(export.filename("pdf")))


def export_handlers() -> list[Any]:
    """The route handlers of this module."""
    return [export_compliance_csv, export_compliance_xlsx, export_compliance_pdf, export_audit_csv]
