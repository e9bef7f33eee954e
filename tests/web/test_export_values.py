"""Exports take whatever the database holds, and refuse filters no database value can match.

Values the api now refuses (a completion in 44 BC, an infinite due date, a megabyte of reason)
may still be stored: written before the refusals existed, or by an owner. Every export answers
them (CSV as PostgreSQL writes them; XLSX as text where Excel has no date or number for them;
PDF), never a 500 for the whole organisation. Control characters (NUL included) in a text filter
are a 400 VALIDATION_ERROR naming the field, on every export, and leave no audit entry.

The export dialect, as a spreadsheet opens it (docs/web.md "The export dialect"): UTF-8 with a
BOM on ``?excel=1``, ``true``/``false``, dates YYYY-MM-DD, date-times local YYYY-MM-DDTHH:MM:SS
beside a ``time_zone`` column; the workbook's widths, filter, frozen header and number formats;
the audit CSV in one zone, with its actors as people and its changes as text.
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest
from openpyxl import load_workbook
from psycopg.rows import dict_row
from pypdf import PdfReader

from tests.conftest import ApiHarness
from tests.web.conftest import WebServer, make_token
from tests.web.world import ROLES, Org, World, _assign, _employee, _module, _org, _users
from web.exports import AUDIT_COLUMNS

pytestmark = pytest.mark.e2e

LONG_REASON = "Certified elsewhere; " * 5000  # 105,000 characters: more than an XLSX cell holds
LONG_MODULE = "Annual refresher " * 3000  # 51,000 characters: taller than a PDF page in a cell

#: (label, due date, status, completion date, attempts, exemption reason), written as stored
#: values with the rules' triggers off, as an owner could have written them.
ODD_ROWS: list[tuple[str, str, str, str | None, int, str | None]] = [
    ("completed at -infinity", "2025-01-01", "completed", "-infinity", 1, None),
    ("completed at infinity", "2025-01-02", "completed", "infinity", 1, None),
    ("completed in year 1", "2025-01-03", "completed", "0001-06-15 12:00:00+00", 1, None),
    ("completed in 44 BC", "2025-01-04", "completed", "0044-03-15 12:00:00+00 BC", 1, None),
    ("completed in 1899", "2025-01-05", "completed", "1899-06-15 12:00:00+00", 1, None),
    ("due at infinity, overdue", "infinity", "overdue", None, 0, None),
    ("due at -infinity, overdue", "-infinity", "overdue", None, 0, None),
    ("due in 44 BC, overdue", "0044-03-15 BC", "overdue", None, 0, None),
    ("most attempts", "2025-01-06", "in_progress", None, 2_147_483_647, None),
    ("long reason", "2025-01-07", "exempted", None, 0, LONG_REASON),
]


@pytest.fixture(scope="module")
def odd(dsn: str, world: World) -> Org:
    """An organisation whose assignments hold every value of ODD_ROWS."""
    with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
        org = _org(conn, "web-odd")
        _users(conn, org)
        _employee(conn, org, "holder", department="Nursing", location="Main")
        _module(conn, org, "Odd Values", "2025-01", date(2025, 1, 31))
        _module(conn, org, LONG_MODULE, "2025-02", date(2025, 2, 28))
        with conn.transaction():
            conn.execute("set local session_replication_role = replica")
            for _label, due, status, completed, attempts, reason in ODD_ROWS:
                conn.execute(
                    "insert into app.training_assignments (org_id, employee_id, module_id,"
                    " due_date, status, completion_date, score, attempts, minutes_spent,"
                    " exemption_reason, grace_days)"
                    " values (%s, %s, %s, %s::date, %s, %s::timestamptz, %s, %s, 1000000, %s, 7)",
                    [
                        org.id,
                        org.employees["holder"],
                        org.modules["Odd Values"],
                        due,
                        status,
                        completed,
                        90 if status == "completed" else None,
                        attempts,
                        reason,
                    ],
                )
            conn.execute(
                "insert into app.training_assignments (org_id, employee_id, module_id, due_date,"
                " status, grace_days) values (%s, %s, %s, '2025-02-28', 'overdue', 7)",
                [org.id, org.employees["holder"], org.modules[LONG_MODULE]],
            )
    return org


def get(server: WebServer, path: str, user: uuid.UUID, **params: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {make_token(user)}"}
    return httpx.get(server.base + path, params=params, headers=headers, timeout=60)


def test_every_export_answers_any_stored_value(web_server: WebServer, odd: Org) -> None:
    hr = odd.users["hr_admin"]

    response = get(web_server, "/export/compliance.csv", hr)
    assert response.status_code == 200, response.text
    rows = list(csv.DictReader(io.StringIO(response.text)))
    odd_dues = {due for _label, due, *_rest in ODD_ROWS}
    holder = [
        r for r in rows if r["employee_email"].startswith("holder@") and r["due_date"] in odd_dues
    ]
    assert len(holder) == len(ODD_ROWS)
    completions = {r["completion_date"] for r in holder}
    assert {"-infinity", "infinity"} <= completions
    assert any(c.startswith("0001-06-15") for c in completions)
    assert any(c.endswith(" BC") for c in completions)
    assert any(c.startswith("1899-06-15") for c in completions)
    dues = {r["due_date"]: r for r in holder}
    assert dues["infinity"]["days_overdue"] == ""  # no count of days from an infinite date
    # the dialect's date-times: local ISO 8601; what no calendar shows stays PostgreSQL's text
    assert any(c.startswith("0001-06-15T") for c in completions)
    assert any(c.startswith("0044-03-15T") and c.endswith(" BC") for c in completions)
    assert "1899-06-15T06:27:49" in completions  # noon UTC in Detroit local mean time
    assert dues["-infinity"]["days_overdue"] == ""
    assert int(dues["0044-03-15 BC"]["days_overdue"]) > 700_000
    assert "2147483647" in {r["attempts"] for r in holder}
    assert LONG_REASON in {r["exemption_reason"] for r in holder}

    response = get(web_server, "/export/compliance.xlsx", hr)
    assert response.status_code == 200, response.text
    sheet = load_workbook(io.BytesIO(response.content), read_only=True).worksheets[0]
    cells = [list(r) for r in sheet.iter_rows(values_only=True)]
    header = [str(c) for c in cells[0]]
    book_rows = [dict(zip(header, r, strict=True)) for r in cells[1:]]
    assert len(book_rows) == len(rows)
    odd_cells = [r for r in book_rows if r["module"] == "Odd Values"]
    book_completions = {r["completion_date"] for r in odd_cells}
    # what Excel cannot date is text, as the database wrote it
    assert {"-infinity", "infinity"} <= book_completions
    assert any(isinstance(c, str) and c.startswith("0001-06-15") for c in book_completions)
    assert any(isinstance(c, str) and c.startswith("1899-06-15") for c in book_completions)
    assert "infinity" in {r["due_date"] for r in odd_cells}
    assert 2_147_483_647 in {r["attempts"] for r in odd_cells}

    response = get(web_server, "/export/compliance.pdf", hr)
    assert response.status_code == 200, response.text
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(response.content)).pages)
    assert "Overdue assignments (4)" in text
    assert "infinity" in text
    assert "Annual refresher" in text  # the long name, shortened to fit its cell

    response = get(web_server, "/export/audit.csv", hr)
    assert response.status_code == 200, response.text


TEXT_FILTERS = {
    "compliance.csv": ("department", "location", "status", "from", "to"),
    "compliance.xlsx": ("department", "location", "status", "from", "to"),
    "compliance.pdf": ("department", "location", "status", "from", "to"),
    "audit.csv": ("department", "location", "event_type", "employee", "from", "to"),
}
CONTROL_VALUES = ("Nurs\x00ing", "\x00", "Main\x01", "Wixom\n", "General\x7f")


@pytest.mark.parametrize(
    ("export", "field"), [(e, f) for e, fields in TEXT_FILTERS.items() for f in fields]
)
def test_control_characters_in_a_filter_are_400_naming_it(
    web_server: WebServer, world: World, dsn: str, export: str, field: str
) -> None:
    user = world.a.users["hr_admin"]
    with psycopg.connect(dsn, autocommit=True) as conn:
        audited = conn.execute(
            "select count(*) from audit.log where event_type = 'compliance_export'"
            " and actor_user_id = %s",
            [user],
        ).fetchone()
        for value in CONTROL_VALUES:
            response = get(web_server, f"/export/{export}", user, **{field: value})
            assert response.status_code == 400, (export, field, value, response.text)
            error = response.json()["error"]
            assert error["code"] == "VALIDATION_ERROR"
            assert error["details"]["field"] == field
            assert field in error["message"]
            assert "control character" in error["message"]
        after = conn.execute(
            "select count(*) from audit.log where event_type = 'compliance_export'"
            " and actor_user_id = %s",
            [user],
        ).fetchone()
    assert after == audited  # a refused export is not on record


# -- the export dialect ----------------------------------------------------------------------

ZONE = "America/Detroit"
#: 10:30 UTC on the first Monday of daylight-saving time in 2012: 06:30 in Detroit (UTC-4)
COMPLETED_AT = "2012-03-12 10:30:00+00"
COMPLETED_LOCAL = "2012-03-12T06:30:00"
ACCENTED = ("Zoë", "Ñúñez-Þórsdóttir")
LOCAL_ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$")
#: a time with an offset, as PostgreSQL or JSON would write it: never in a file of this dialect
WITH_OFFSET = re.compile(r"\d\d:\d\d:\d\d(\.\d+)?([+-]\d\d(:?\d\d)?|Z)\b")


@pytest.fixture(scope="module")
def fmt(dsn: str, world: World) -> Org:
    """An organisation in Detroit whose employee has a name beyond ASCII, one assignment not
    started and one completed at COMPLETED_AT (a time with an offset in the database)."""
    with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
        org = _org(conn, "web-fmt")
        conn.execute("update app.organizations set timezone = %s where id = %s", [ZONE, org.id])
        _users(conn, org)
        conn.execute(
            "update app.employees set first_name = %s, last_name = %s"
            " where org_id = %s and id = %s",
            [*ACCENTED, org.id, org.employees["employee"]],
        )
        _module(conn, org, "Hand Hygiene", "2012-03", date(2012, 3, 31))
        _module(conn, org, "Fire Safety", "2012-04", date(2012, 4, 30))
        _assign(conn, org, "employee", "Hand Hygiene", date(2012, 3, 31), "not_started")
        _assign(conn, org, "employee", "Fire Safety", date(2012, 4, 30), "completed")
        conn.execute(
            "update app.training_assignments set completion_date = %s, score = 98"
            " where org_id = %s and module_id = %s",
            [COMPLETED_AT, org.id, org.modules["Fire Safety"]],
        )
        conn.execute(  # assigned before COMPLETED_AT, so a result at that time is accepted
            "update app.training_assignments set created_at = '2012-03-01 12:00+00'"
            " where org_id = %s",
            [org.id],
        )
    return org


def test_csv_dialect_booleans_dates_local_times_and_zone(web_server: WebServer, fmt: Org) -> None:
    response = get(web_server, "/export/compliance.csv", fmt.users["hr_admin"])
    assert response.status_code == 200, response.text
    assert not response.content.startswith(b"\xef\xbb\xbf")  # no BOM unless asked
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8"))))
    assert rows
    assert list(rows[0])[-1] == "time_zone"
    done = next(r for r in rows if r["module"] == "Fire Safety")
    assert done["employee_name"] == " ".join(ACCENTED)
    assert done["completion_date"] == COMPLETED_LOCAL
    assert done["time_zone"] == ZONE
    assert done["due_date"] == "2012-04-30"
    assert done["score"] == "98.00"
    open_one = next(r for r in rows if r["module"] == "Hand Hygiene")
    assert open_one["completion_date"] == ""
    for row in rows:
        assert row["is_required"] in ("true", "false")
        assert row["is_late"] in ("true", "false")
        assert row["time_zone"] == ZONE
        assert re.fullmatch(r"\d{4}-\d\d-\d\d", row["due_date"])
        assert row["completion_date"] == "" or LOCAL_ISO.match(row["completion_date"])
    assert not WITH_OFFSET.search(response.text)


@pytest.mark.parametrize("path", ["/export/compliance.csv", "/export/audit.csv"])
def test_excel_option_prefixes_the_bom(web_server: WebServer, fmt: Org, path: str) -> None:
    hr = fmt.users["hr_admin"]
    plain = get(web_server, path, hr, excel="0")
    assert plain.status_code == 200, plain.text
    assert not plain.content.startswith(b"\xef\xbb\xbf")
    excel = get(web_server, path, hr, excel="1")
    assert excel.status_code == 200, excel.text
    assert excel.content.startswith(b"\xef\xbb\xbf")
    text = excel.content.decode("utf-8-sig")
    assert text.startswith("id," if path.endswith("audit.csv") else "assignment_id,")
    assert " ".join(ACCENTED) in text
    if path == "/export/compliance.csv":
        assert excel.content[3:] == plain.content  # the BOM and nothing else differs


@pytest.mark.parametrize("value", ["yes", "2", "", "excel"])
@pytest.mark.parametrize("path", ["/export/compliance.csv", "/export/audit.csv"])
def test_excel_option_is_checked_like_a_filter(
    web_server: WebServer, fmt: Org, path: str, value: str
) -> None:
    response = get(web_server, path, fmt.users["hr_admin"], excel=value)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert error["details"]["field"] == "excel"
    assert "excel" in error["message"]
    assert "1 or 0" in error["message"]


def test_excel_option_is_only_for_csv(web_server: WebServer, fmt: Org) -> None:
    for path in ("/export/compliance.xlsx", "/export/compliance.pdf"):
        response = get(web_server, path, fmt.users["hr_admin"], excel="1")
        assert response.status_code == 400, (path, response.text)
        assert response.json()["error"]["details"]["field"] == "excel"


def test_xlsx_widths_filter_frozen_header_and_formats(web_server: WebServer, fmt: Org) -> None:
    response = get(web_server, "/export/compliance.xlsx", fmt.users["hr_admin"])
    assert response.status_code == 200, response.text
    sheet = load_workbook(io.BytesIO(response.content)).worksheets[0]
    header = [c.value for c in sheet[1]]
    assert header[-1] == "time_zone"
    last = sheet.cell(row=1, column=len(header)).column_letter
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == f"A1:{last}{sheet.max_row}"
    for cell in sheet[1]:
        width = sheet.column_dimensions[cell.column_letter].width
        assert width >= len(str(cell.value)), cell.value  # every header fits its column
    assert sheet.column_dimensions["A"].width >= 36  # an id fits
    col = {name: i for i, name in enumerate(header)}
    rows = {r[col["module"]].value: r for r in sheet.iter_rows(min_row=2)}
    done = rows["Fire Safety"]
    score = done[col["score"]]
    assert score.value == 98
    assert score.number_format == "0.00"
    due = done[col["due_date"]]
    assert due.is_date
    assert due.number_format == "yyyy-mm-dd"
    assert due.value.date() == date(2012, 4, 30)
    completed = done[col["completion_date"]]
    assert completed.is_date
    assert "hh:mm" in completed.number_format
    assert completed.value == datetime.fromisoformat(COMPLETED_LOCAL)  # local, not UTC
    assert done[col["time_zone"]].value == ZONE
    for row in rows.values():
        assert row[col["is_required"]].value is True
        assert row[col["is_late"]].value in (True, False)
        assert row[col["attempts"]].number_format == "0"
    assert rows["Hand Hygiene"][col["completion_date"]].value is None


def test_audit_csv_people_changes_and_one_zone(
    web_server: WebServer, fmt: Org, dsn: str, api: ApiHarness
) -> None:
    hr = fmt.users["hr_admin"]
    # a change made by a person through the API, with a completion time ...
    hygiene = api.one(
        hr,
        "select id from api.training_assignments where module_id = %s",
        [fmt.modules["Hand Hygiene"]],
        method="GET",
    )["id"]
    api.call(
        hr,
        "select api.record_assignment_result(assignment_id => %s, score => 91, completed_at => %s)",
        [hygiene, COMPLETED_AT],
    )
    # ... and an entry of the sync worker, a service account, with an instant in its details
    with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
        conn.execute(
            "insert into audit.log (org_id, actor_role, db_role, event_type, details)"
            " values (%s, 'sync_worker', 'sync_worker', 'sync_run',"
            " jsonb_build_object('source', 'zenefits', 'started_at', %s::timestamptz))",
            [fmt.id, COMPLETED_AT],
        )
        names = {
            r["id"]: r["name"]
            for r in conn.execute(
                "select u.id, coalesce(e.full_name, u.display_name) as name from app.app_users u"
                " left join app.employees e on e.org_id = u.org_id and e.id = u.employee_id"
                " where u.org_id = %s",
                [fmt.id],
            )
        }
        stored = {
            r["id"]: r
            for r in conn.execute(
                "select id, occurred_at, actor_user_id, actor_role from audit.log"
                " where org_id = %s order by occurred_at, id",
                [fmt.id],
            )
        }

    response = get(web_server, "/export/audit.csv", hr)
    assert response.status_code == 200, response.text
    reader = csv.DictReader(io.StringIO(response.text))
    assert reader.fieldnames == list(AUDIT_COLUMNS)  # the documented columns, in order
    rows = list(reader)
    assert [int(r["id"]) for r in rows][: len(stored)] == list(stored)
    assert '{"' not in response.text  # no raw JSON
    assert not WITH_OFFSET.search(response.text)  # one zone: local, without offsets
    zone = ZoneInfo(ZONE)
    for row in rows:
        assert row["time_zone"] == ZONE
        assert LOCAL_ISO.match(row["occurred_at"]), row
        entry = stored.get(int(row["id"]))
        if entry is None:
            continue  # this export's own entry, written after the read above
        local = entry["occurred_at"].astimezone(zone).replace(tzinfo=None, microsecond=0)
        assert row["occurred_at"] == local.isoformat()
        if entry["actor_user_id"] is None:
            assert row["actor"].startswith("service: "), row
            assert row["actor_role"] == "service"
        else:
            assert row["actor"] == names[entry["actor_user_id"]]
            assert row["actor_role"] == entry["actor_role"]
            assert row["actor_role"] in ROLES
    assert {r["actor_role"] for r in rows} <= {*ROLES, "service"}  # no database role as a role

    update = next(
        r
        for r in rows
        if r["op"] == "UPDATE" and r["entity_id"] == str(hygiene) and r["actor_user_id"] == str(hr)
    )
    assert update["actor"] == names[hr]
    assert update["actor_role"] == "hr_admin"
    assert update["employee_name"] == " ".join(ACCENTED)
    assert "status: overdue -> completed" in update["changes"]  # due in 2012: overdue
    assert f"completion_date: (none) -> {COMPLETED_LOCAL}" in update["changes"]
    assert "score: (none) -> 91.00" in update["changes"]
    assert update["changed_fields"].split(", ")[0] in update["changes"]

    sync = next(r for r in rows if r["event_type"] == "sync_run")
    assert sync["actor"] == "service: sync worker"
    assert sync["details"] == f"source: zenefits; started_at: {COMPLETED_LOCAL}"
    # the set-up rows were written by the database owner in psql: a service, named as such
    inserts = [r for r in rows if r["op"] == "INSERT" and r["table_name"] == "employees"]
    assert inserts
    assert all(r["actor"].startswith("service: database administrator (") for r in inserts)
    assert all("first_name: " in r["changes"] for r in inserts)

    # an employee reads the entries about themselves, with the HR admin's name as the actor
    own = get(web_server, "/export/audit.csv", fmt.users["employee"])
    assert own.status_code == 200, own.text
    own_rows = list(csv.DictReader(io.StringIO(own.text)))
    assert {r["employee_id"] for r in own_rows} == {str(fmt.employees["employee"])}
    mine = next(r for r in own_rows if r["id"] == update["id"])
    assert mine["actor"] == names[hr]
    assert mine["changes"] == update["changes"]
    assert not any(r["event_type"] == "sync_run" for r in own_rows)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ('"2012-03-12T10:30:00+00:00"', "2012-03-12T06:30:00"),  # an instant: local time
        ('"2012-03-12T10:30:00.123456Z"', "2012-03-12T06:30:00"),
        ('"2024-02-29T12:00:00+05:30"', "2024-02-29T01:30:00"),
        ('"2025-02-30T10:00:00Z"', "2025-02-30T10:00:00Z"),  # no such day: as written
        ('"0000-01-01T00:00:00Z"', "0000-01-01T00:00:00Z"),  # no year 0
        ('"2025-01-31"', "2025-01-31"),  # a date stays a date
        ('"infinity"', "infinity"),
        ('"overdue"', "overdue"),
        ("91.50", "91.50"),
        ("true", "true"),
        ("null", "(none)"),
        ('{"md5": "ab", "at": "2012-03-12T10:30:00Z"}', "{at: 2012-03-12T06:30:00, md5: ab}"),
        ('[1, null, "x"]', "[1, (none), x]"),
    ],
)
def test_audit_values_as_people_read_them(dsn: str, value: str, text: str) -> None:
    with psycopg.connect(dsn) as conn:
        got = conn.execute(
            "select app.audit_value_text(%s::jsonb, 'America/Detroit')", [value]
        ).fetchone()
    assert got == (text,)


def test_audit_entry_text_of_insert_delete_and_key_change(dsn: str) -> None:
    """An insert or delete: the row's fields in table order, nulls left out; an update without
    changed_fields (a primary-key change keeps both rows whole): the fields that differ."""
    with psycopg.connect(dsn) as conn:
        columns = conn.execute(
            "select columns from app.audit_table_columns() where table_name = 'departments'"
        ).fetchone()
        assert columns is not None
        assert columns[0][:2] == ["org_id", "id"]
        row = '{"name": "Nursing", "id": "d1", "org_id": "o1", "description": null}'
        inserted = conn.execute(
            "select * from app.audit_entry_text('INSERT', null, %s::jsonb, null, %s, null,"
            " 'America/Detroit')",
            [row, columns[0]],
        ).fetchone()
        assert inserted == ("org_id: o1; id: d1; name: Nursing", None)
        deleted = conn.execute(
            "select changes from app.audit_entry_text('DELETE', %s::jsonb, null, null, %s, null,"
            " 'UTC')",
            [row, columns[0]],
        ).fetchone()
        assert deleted == ("org_id: o1; id: d1; name: Nursing",)
        moved = conn.execute(
            "select changes from app.audit_entry_text('UPDATE', %s::jsonb, %s::jsonb, null, %s,"
            " null, 'UTC')",
            [row, row.replace('"d1"', '"d2"'), columns[0]],
        ).fetchone()
        assert moved == ("id: d1 -> d2",)
        details = conn.execute(
            "select details from app.audit_entry_text(null, null, null, null, null,"
            ' \'{"export": "audit.csv", "filters": {}, "x": null}\'::jsonb, \'UTC\')'
        ).fetchone()
        assert details == ("export: audit.csv; filters: {}",)
