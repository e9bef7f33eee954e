"""Exports take whatever the database holds, and refuse filters no database value can match.

Values the api now refuses (a completion in 44 BC, an infinite due date, a megabyte of reason)
may still be stored: written before the refusals existed, or by an owner. Every export answers
them (CSV as PostgreSQL writes them; XLSX as text where Excel has no date or number for them;
PDF), never a 500 for the whole organisation. Control characters (NUL included) in a text filter
are a 400 VALIDATION_ERROR naming the field, on every export, and leave no audit entry.
"""

from __future__ import annotations

import csv
import io
import uuid
from datetime import date
from typing import Any

import httpx
import psycopg
import pytest
from openpyxl import load_workbook
from psycopg.rows import dict_row
from pypdf import PdfReader

from tests.web.conftest import WebServer, make_token
from tests.web.world import Org, World, _employee, _module, _org, _users

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

