"""Exports through a real server: contents equal the database rows (as row-level security would
filter them) for every filter and role; XLSX and PDF open and hold the same data; bad filters
are 400 naming the field; every export leaves its audit row."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import date, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from openpyxl import load_workbook
from psycopg import sql
from psycopg.rows import dict_row
from pypdf import PdfReader

from tests.conftest import ApiHarness, engine_today
from tests.web.conftest import WebServer, make_token
from tests.web.world import ROLES, Org, World

pytestmark = pytest.mark.e2e

# The export's columns, computed here from the app tables (not from the export view), written
# as the export dialect says: booleans true/false, the completion as local time, the zone last.
EXPECTED_SELECT = """
    select a.id as assignment_id, e.id as employee_id,
           e.first_name || ' ' || e.last_name as employee_name, e.email as employee_email,
           e.status as employee_status, e.job_title, d.name as department,
           l.name as location, m.name as module, m.month_key, a.due_date, a.status,
           to_char(a.completion_date at time zone o.timezone, 'YYYY-MM-DD"T"HH24:MI:SS')
               as completion_date,
           a.score, a.attempts,
           case when a.is_required then 'true' else 'false' end as is_required,
           case when a.is_late then 'true' else 'false' end as is_late,
           a.exemption_reason,
           case when a.status = 'overdue' and isfinite(a.due_date)
                then greatest((now() at time zone o.timezone)::date - a.due_date, 0) end
               as days_overdue,
           o.timezone as time_zone
    from app.training_assignments a
    join app.organizations o on o.id = a.org_id
    join app.employees e on e.org_id = a.org_id and e.id = a.employee_id
    join app.training_modules m on m.org_id = a.org_id and m.id = a.module_id
    left join app.departments d on d.org_id = e.org_id and d.id = e.department_id
    left join app.locations l on l.org_id = e.org_id and l.id = e.location_id
"""
ORDER = (
    " order by department, location, employee_name, employee_id, due_date, module, assignment_id"
)


def expected_csv(
    conn: psycopg.Connection[Any], org: Org, employee: uuid.UUID | None, filters: dict[str, str]
) -> list[list[str]]:
    """The rows the export must hold, as COPY CSV text, computed as the superuser."""
    where = [sql.SQL("a.org_id = {}").format(sql.Literal(org.id))]
    if employee is not None:
        where.append(sql.SQL("a.employee_id = {}").format(sql.Literal(employee)))
    by_lower = {k.lower(): v for k, v in {**org.departments, **org.locations}.items()}
    if "department" in filters:
        dept = by_lower.get(filters["department"].lower(), filters["department"])
        where.append(sql.SQL("e.department_id = {}::uuid").format(sql.Literal(str(dept))))
    if "location" in filters:
        loc = by_lower.get(filters["location"].lower(), filters["location"])
        where.append(sql.SQL("e.location_id = {}::uuid").format(sql.Literal(str(loc))))
    if "status" in filters:
        where.append(
            sql.SQL("a.status = {}::app.assignment_status").format(sql.Literal(filters["status"]))
        )
    if "from" in filters:
        where.append(sql.SQL("a.due_date >= {}::date").format(sql.Literal(filters["from"])))
    if "to" in filters:
        where.append(sql.SQL("a.due_date <= {}::date").format(sql.Literal(filters["to"])))
    query = sql.SQL("select * from ({} where {}) x {}").format(
        sql.SQL(EXPECTED_SELECT), sql.SQL(" and ").join(where), sql.SQL(ORDER)
    )
    tz = conn.execute("select timezone from app.organizations where id = %s", [org.id]).fetchone()
    assert tz is not None
    out = io.BytesIO()
    with conn.transaction():
        conn.execute("select set_config('timezone', %s, true)", [tz["timezone"]])
        with conn.cursor().copy(
            sql.SQL("copy ({}) to stdout with (format csv, header)").format(query)
        ) as copy:
            for data in copy:
                out.write(data)
    return list(csv.reader(io.StringIO(out.getvalue().decode())))


def get(server: WebServer, path: str, user: uuid.UUID | None, **params: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {make_token(user)}"} if user is not None else {}
    return httpx.get(server.base + path, params=params, headers=headers, timeout=30)


def last_export_audit(conn: psycopg.Connection[Any], user: uuid.UUID) -> dict[str, Any] | None:
    return conn.execute(
        "select * from audit.log where event_type = 'compliance_export' and actor_user_id = %s"
        " order by id desc limit 1",
        [user],
    ).fetchone()


@pytest.fixture
def su(dsn: str) -> Any:
    with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
        yield conn


def filter_cases(today: date) -> list[dict[str, str]]:
    """Export filters to try, the day ranges around the engine's today."""
    return [
        {},
        {"department": "Nursing"},
        {"department": "general"},  # names match case-insensitively
        {"location": "Wixom"},
        {"status": "overdue"},
        {"status": "completed"},
        {"from": (today - timedelta(days=60)).isoformat()},
        {"to": "2025-12-31"},
        {"department": "Nursing", "location": "Main", "status": "overdue"},
        {
            "from": "2025-01-01",
            "to": (today + timedelta(days=60)).isoformat(),
            "location": "Main",
        },
    ]


@pytest.mark.parametrize("role", ROLES)
def test_csv_equals_the_rows_the_role_may_read(
    web_server: WebServer, world: World, su: Any, role: str
) -> None:
    org = world.a
    user = org.users[role]
    own = org.employees["employee"] if role == "employee" else None
    for filters in filter_cases(engine_today(su)):
        response = get(web_server, "/export/compliance.csv", user, **filters)
        assert response.status_code == 200, response.text
        rows = list(csv.reader(io.StringIO(response.text)))
        assert rows == expected_csv(su, org, own, filters), (role, filters)
        assert rows[0][0] == "assignment_id"
        # nothing of the other organisation, ever
        assert str(world.b.id) not in response.text
        names = {r[2] for r in rows[1:]}
        assert "Other Web" not in names
    if role == "employee":
        assert {r[1] for r in rows[1:]} <= {str(own)}


def test_filters_by_id_equal_filters_by_name(web_server: WebServer, world: World) -> None:
    user = world.a.users["hr_admin"]
    by_name = get(web_server, "/export/compliance.csv", user, department="Nursing").text
    by_id = get(
        web_server, "/export/compliance.csv", user, department=str(world.a.departments["Nursing"])
    ).text
    assert by_name == by_id
    assert len(by_name.splitlines()) > 1


def test_file_name_content_type_and_audit(web_server: WebServer, world: World, su: Any) -> None:
    user = world.a.users["viewer"]
    response = get(web_server, "/export/compliance.csv", user, status="overdue", location="Main")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    disposition = response.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="compliance-report-')
    assert disposition.endswith('.csv"')
    entry = last_export_audit(su, user)
    assert entry is not None
    assert entry["org_id"] == world.a.id
    assert entry["actor_role"] == "viewer"
    assert entry["entity_id"] == "compliance.csv"
    assert entry["details"]["filters"] == {
        "status": "overdue",
        "location": "Main",
        "location_id": str(world.a.locations["Main"]),
    }
    assert entry["details"]["export"] == "compliance.csv"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "finished"}, "status"),
        ({"from": "31/01/2025"}, "from"),
        ({"to": "2025-02-30"}, "to"),
        ({"from": "2025-03-01", "to": "2025-02-01"}, "from"),
        ({"department": "Astrology"}, "department"),
        ({"location": str(uuid.uuid4())}, "location"),
        ({"colour": "blue"}, "colour"),
        ({"department": ""}, "department"),
    ],
)
def test_bad_filters_are_400_naming_the_field(
    web_server: WebServer, world: World, su: Any, params: dict[str, str], field: str
) -> None:
    user = world.a.users["hr_admin"]
    before = last_export_audit(su, user)
    for path in ("/export/compliance.csv", "/export/compliance.xlsx", "/export/compliance.pdf"):
        response = get(web_server, path, user, **params)
        assert response.status_code == 400, (path, response.text)
        body = response.json()
        assert body["success"] is False
        assert body["error"]["code"] == "VALIDATION_ERROR"
        assert field in body["error"]["message"]
        assert body["error"]["details"]["field"] == field
    # a refused export leaves no audit entry
    assert last_export_audit(su, user) == before


def test_repeated_filter_is_refused(web_server: WebServer, world: World) -> None:
    token = make_token(world.a.users["hr_admin"])
    response = httpx.get(
        web_server.base + "/export/compliance.csv?status=overdue&status=completed",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["details"]["field"] == "status"


def test_other_organisations_department_is_unknown(web_server: WebServer, world: World) -> None:
    response = get(
        web_server,
        "/export/compliance.csv",
        world.a.users["hr_admin"],
        department=str(world.b.departments["Nursing"]),
    )
    assert response.status_code == 400
    assert response.json()["error"]["details"]["field"] == "department"


@pytest.mark.parametrize("role", ["hr_admin", "employee"])
def test_xlsx_opens_with_the_same_rows(
    web_server: WebServer, world: World, su: Any, role: str
) -> None:
    org = world.a
    user = org.users[role]
    filters = {"department": "Nursing"} if role == "hr_admin" else {}
    response = get(web_server, "/export/compliance.xlsx", user, **filters)
    assert response.status_code == 200, response.text
    assert response.headers["content-disposition"].endswith('.xlsx"')
    book = load_workbook(io.BytesIO(response.content), read_only=True)
    sheet = book.worksheets[0]
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    own = org.employees["employee"] if role == "employee" else None
    expected = expected_csv(su, org, own, filters)
    assert [str(c) for c in rows[0]] == expected[0]
    assert len(rows) == len(expected)
    for got, want in zip(rows[1:], expected[1:], strict=True):
        assert str(got[0]) == want[0]  # assignment_id
        assert got[2] == want[2]  # employee_name
        assert got[6] == (want[6] or None)  # department
        assert got[10].date().isoformat() == want[10]  # due_date, a real date
        assert got[11] == want[11]  # status
        assert (got[13] is None) == (want[13] == "")
        if got[13] is not None:
            assert float(got[13]) == float(want[13])  # score, a number
        assert (got[12] is None) == (want[12] == "")  # completion: a local date-time
        if got[12] is not None:
            assert abs(got[12] - datetime.fromisoformat(want[12])) < timedelta(seconds=1)
        assert got[15] is (want[15] == "true")  # is_required, a boolean
        assert got[-1] == want[-1]  # time_zone
    entry = last_export_audit(su, user)
    assert entry is not None
    assert entry["entity_id"] == "compliance.xlsx"


def test_pdf_parses_and_holds_the_figures(
    web_server: WebServer, world: World, su: Any, api: ApiHarness
) -> None:
    org = world.a
    user = org.users["hr_admin"]
    response = get(web_server, "/export/compliance.pdf", user)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"].endswith('.pdf"')
    reader = PdfReader(io.BytesIO(response.content))
    text = "\n".join(page.extract_text() for page in reader.pages)
    for needle in (
        "Compliance report",
        org.name,
        "Generated at",
        "Compliance by department",
        "Compliance by location",
        "Compliance trend",
        "Nursing",
        "Wixom",
        "ClerkOne Web",  # overdue
        "HIPAA Privacy",
    ):
        assert needle in text, needle
    # the figures are the database's (api.compliance_report, as the same user)
    report = api.one(user, "select api.compliance_report() as r", method="GET")["r"]
    assert f"{float(report['summary']['rate']):.2f} %" in text
    for dept in report["departments"]:
        assert f"{float(dept['rate']):.2f} %" in text
    assert f"Overdue assignments ({report['overdue_total']})" in text
    assert "Former Web" not in text  # inactive employees do not count
    assert str(world.b.id) not in text
    entry = last_export_audit(su, user)
    assert entry is not None
    assert entry["entity_id"] == "compliance.pdf"


def test_pdf_with_filters_names_them(web_server: WebServer, world: World) -> None:
    response = get(
        web_server,
        "/export/compliance.pdf",
        world.a.users["manager"],
        department="Nursing",
        status="overdue",
        **{"from": "2025-01-01"},
    )
    assert response.status_code == 200, response.text
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(response.content)).pages)
    assert "department: Nursing" in text
    assert "status: overdue" in text
    assert "from: 2025-01-01" in text


def expected_audit_ids(conn: psycopg.Connection[Any], where: sql.Composable) -> list[str]:
    query = sql.SQL("select id::text from audit.log where {} order by occurred_at, id").format(
        where
    )
    return [r["id"] for r in conn.execute(query)]


def test_audit_csv_holds_the_audit_rows(web_server: WebServer, world: World, su: Any) -> None:
    org = world.a
    hr = org.users["hr_admin"]
    response = get(web_server, "/export/audit.csv", hr)
    assert response.status_code == 200, response.text
    assert response.headers["content-disposition"].startswith('attachment; filename="audit-log-')
    rows = list(csv.DictReader(io.StringIO(response.text)))
    # the export's own audit entry was committed before the export read the trail
    expected = expected_audit_ids(su, sql.SQL("org_id = {}").format(sql.Literal(org.id)))
    assert [r["id"] for r in rows] == expected[: len(rows)]
    assert len(rows) >= len(expected) - 1
    assert any(
        r["event_type"] == "compliance_export" and "export: audit.csv" in r["details"] for r in rows
    )
    assert str(world.b.id) not in response.text

    # an employee reads only the entries about themselves
    employee = org.users["employee"]
    own = get(web_server, "/export/audit.csv", employee, event_type="compliance_export")
    assert own.status_code == 200
    own_rows = list(csv.DictReader(io.StringIO(own.text)))
    assert len(own_rows) >= 1  # this very export is about the employee
    assert {r["employee_id"] for r in own_rows} == {str(org.employees["employee"])}

    # filters: event type and day range; days are the organisation's, so the day of the
    # export's own entry is taken in its zone
    day = su.execute(
        "select (l.occurred_at at time zone o.timezone)::date::text as day"
        " from audit.log l join app.organizations o on o.id = l.org_id"
        " where l.org_id = %s and l.event_type = 'compliance_export'"
        " order by l.occurred_at desc limit 1",
        [org.id],
    ).fetchone()["day"]
    filtered = get(
        web_server, "/export/audit.csv", hr, event_type="compliance_export", **{"from": day}
    )
    assert filtered.status_code == 200
    frows = list(csv.DictReader(io.StringIO(filtered.text)))
    assert len(frows) >= 1
    assert {r["event_type"] for r in frows} == {"compliance_export"}
    assert all(r["occurred_at"].startswith(day) or r["occurred_at"] > day for r in frows)
    bad = get(web_server, "/export/audit.csv", hr, status="overdue")
    assert bad.status_code == 400
    assert bad.json()["error"]["details"]["field"] == "status"


def test_exports_need_a_token(web_server: WebServer) -> None:
    for path in (
        "/export/compliance.csv",
        "/export/compliance.xlsx",
        "/export/compliance.pdf",
        "/export/audit.csv",
    ):
        response = httpx.get(web_server.base + path)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "UNAUTHORIZED"


@pytest.mark.parametrize("timezone", ["Pacific/Kiritimati", "Etc/GMT+12"])
def test_csv_xlsx_and_pdf_agree_on_days_overdue(
    web_server: WebServer, world: World, su: Any, timezone: str
) -> None:
    """Days overdue: local days from the due date to the organisation's today, the same figure
    in the CSV, the XLSX and the PDF, with the organisation at UTC+14 or UTC-12 (a day or more
    from the server's date at any hour); the file names carry that today."""
    org = world.a
    user = org.users["hr_admin"]
    before = su.execute("select timezone from app.organizations where id = %s", [org.id]).fetchone()
    su.execute("update app.organizations set timezone = %s where id = %s", [timezone, org.id])
    try:
        local = su.execute("select (now() at time zone %s)::date as d", [timezone]).fetchone()["d"]
        due = su.execute(
            "select a.id::text, a.due_date from app.training_assignments a"
            " where a.org_id = %s and a.status = 'overdue'",
            [org.id],
        ).fetchall()
        want = {r["id"]: (local - r["due_date"]).days for r in due}
        assert want
        assert min(want.values()) > 0

        csv_response = get(web_server, "/export/compliance.csv", user, status="overdue")
        assert csv_response.status_code == 200, csv_response.text
        assert (
            f"compliance-report-{local.isoformat()}.csv"
            in csv_response.headers["content-disposition"]
        )
        rows = list(csv.DictReader(io.StringIO(csv_response.text)))
        assert {r["assignment_id"]: int(r["days_overdue"]) for r in rows} == want

        xlsx_response = get(web_server, "/export/compliance.xlsx", user, status="overdue")
        assert xlsx_response.status_code == 200, xlsx_response.text
        assert (
            f"compliance-report-{local.isoformat()}.xlsx"
            in xlsx_response.headers["content-disposition"]
        )
        sheet = load_workbook(io.BytesIO(xlsx_response.content), read_only=True).worksheets[0]
        cells = [list(r) for r in sheet.iter_rows(values_only=True)]
        at = cells[0].index("days_overdue")
        assert {str(r[0]): int(r[at]) for r in cells[1:]} == want

        pdf_response = get(web_server, "/export/compliance.pdf", user, status="overdue")
        assert pdf_response.status_code == 200, pdf_response.text
        assert (
            f"compliance-report-{local.isoformat()}.pdf"
            in pdf_response.headers["content-disposition"]
        )
        text = "\n".join(
            p.extract_text() for p in PdfReader(io.BytesIO(pdf_response.content)).pages
        )
        # the PDF lists the counted (active employees') overdue ones: due date, then its days
        counted = {r["assignment_id"] for r in rows if r["employee_status"] == "active"}
        for r in rows:
            if r["assignment_id"] in counted:
                assert f"{r['due_date']}\n{want[r['assignment_id']]}\n" in text, r
    finally:
        su.execute(
            "update app.organizations set timezone = %s where id = %s",
            [before["timezone"], org.id],
        )
