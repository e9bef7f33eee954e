"""Every file says the same figures: the CSV, the XLSX and the PDF of the compliance report agree
on every rate, count and days overdue, with the organisation at UTC+14 and at UTC-12 (a day or
more from the server's date at any hour); and one assignment's days overdue is the same in the
grid, analytics, the CSV, the XLSX, the PDF and the overdue notification in the last hour of its
due date and in the first hour of the next day (app.days_overdue, counted from the due date in
the organisation's local days).
"""

from __future__ import annotations

import csv
import io
import re
import time
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import psycopg
import pytest
from openpyxl import load_workbook
from pypdf import PdfReader

from tests.conftest import ApiHarness
from tests.figures.test_trend_consumers import analyst_of
from tests.web.conftest import WebServer
from tests.web.test_exports import get, su  # noqa: F401 - su is a fixture
from tests.web.world import Org, World, _assign, _employee, _module, _org, _users

pytestmark = pytest.mark.e2e

STATUSES = ("completed", "in_progress", "not_started", "overdue", "exempted")


def truth(value: Any) -> bool:
    """A boolean cell of any dialect (t/f, true/false, TRUE/FALSE, a real bool)."""
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("t", "true", "1", "yes")


def rate(completed: int, counted: int, exempted: int) -> Decimal:
    if counted - exempted == 0:
        return Decimal("100.00")
    return (Decimal(100 * completed) / Decimal(counted - exempted)).quantize(
        Decimal("0.01"), rounding=ROUND_HALF_UP
    )


def figures_of(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Every figure of the report, computed from export rows alone: the summary, per department
    and per location (counted: required assignments of active employees), days overdue."""

    def block(items: list[dict[str, Any]]) -> dict[str, Any]:
        by = {s: sum(1 for r in items if r["status"] == s) for s in STATUSES}
        return {
            "employees": len({r["employee_id"] for r in items}),
            "required": len(items),
            **by,
            "rate": rate(by["completed"], len(items), by["exempted"]),
        }

    counted = [r for r in rows if truth(r["is_required"]) and str(r["employee_status"]) == "active"]
    groups: dict[str, dict[str, list[dict[str, Any]]]] = {"department": {}, "location": {}}
    for r in counted:
        for key in groups:
            groups[key].setdefault(str(r[key] or ""), []).append(r)
    return {
        "assignments": len(rows),
        "summary": block(counted),
        "department": {k: block(v) for k, v in groups["department"].items()},
        "location": {k: block(v) for k, v in groups["location"].items()},
        "days_overdue": {
            str(r["assignment_id"]): int(r["days_overdue"])
            for r in rows
            if r["days_overdue"] not in (None, "")
        },
    }


def csv_rows(text: str) -> list[dict[str, Any]]:
    return list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))


def xlsx_rows(content: bytes) -> list[dict[str, Any]]:
    sheet = load_workbook(io.BytesIO(content), read_only=True).worksheets[0]
    cells = [list(r) for r in sheet.iter_rows(values_only=True)]
    header = [str(c) for c in cells[0]]
    return [dict(zip(header, row, strict=False)) for row in cells[1:] if any(row)]


def pdf_text(content: bytes) -> str:
    return "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(content)).pages)


def number_after(text: str, label: str) -> int:
    match = re.search(re.escape(label) + r"\s+(\d+)", text)
    assert match is not None, f"{label!r} not in the PDF"
    return int(match.group(1))


def set_zone(conn: psycopg.Connection[Any], org: Org, zone: str) -> None:
    conn.execute("update app.organizations set timezone = %s where id = %s", [zone, org.id])


@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "Etc/GMT+12"])
def test_csv_xlsx_and_pdf_agree_on_every_figure(
    web_server: WebServer,
    world: World,
    su: Any,  # noqa: F811 - the fixture
    api: ApiHarness,
    zone: str,
) -> None:
    org = world.a
    user = org.users["hr_admin"]
    before = su.execute("select timezone from app.organizations where id = %s", [org.id]).fetchone()
    set_zone(su, org, zone)
    try:
        csv_response = get(web_server, "/export/compliance.csv", user)
        assert csv_response.status_code == 200, csv_response.text
        from_csv = figures_of(csv_rows(csv_response.text))
        xlsx_response = get(web_server, "/export/compliance.xlsx", user)
        assert xlsx_response.status_code == 200, xlsx_response.text
        from_xlsx = figures_of(xlsx_rows(xlsx_response.content))
        assert from_xlsx == from_csv
        # days overdue: local days from the due date to the organisation's today
        local = su.execute("select app.org_today(%s) as d", [org.id]).fetchone()["d"]
        overdue = su.execute(
            "select id::text, due_date from app.training_assignments"
            " where org_id = %s and status = 'overdue'",
            [org.id],
        ).fetchall()
        assert from_csv["days_overdue"] == {r["id"]: (local - r["due_date"]).days for r in overdue}
        assert min(from_csv["days_overdue"].values()) > 0

        pdf_response = get(web_server, "/export/compliance.pdf", user)
        assert pdf_response.status_code == 200, pdf_response.text
        text = pdf_text(pdf_response.content)
        summary = from_csv["summary"]
        assert f"{summary['rate']:.2f} %" in text
        assert number_after(text, "Employees") == summary["employees"]
        assert number_after(text, "Assignments in scope") == from_csv["assignments"]
        assert number_after(text, "Required (counted)") == summary["required"]
        assert number_after(text, "Completed") == summary["completed"]
        assert number_after(text, "In progress") == summary["in_progress"]
        assert number_after(text, "Not started") == summary["not_started"]
        assert number_after(text, "Exempted") == summary["exempted"]
        assert f"Overdue assignments ({summary['overdue']})" in text
        # one table row per department and location: employees, required, completed, overdue,
        # exempted, rate
        for key in ("department", "location"):
            for name, b in from_csv[key].items():
                shown = name or f"(no {key})"
                row = (
                    rf"{re.escape(shown)}\s+{b['employees']}\s+{b['required']}\s+"
                    rf"{b['completed']}\s+{b['overdue']}\s+{b['exempted']}\s+{b['rate']:.2f} %"
                )
                assert re.search(row, text), (key, shown, b)
        # the overdue table: each counted overdue assignment with its due date and days
        for row in csv_rows(csv_response.text):
            if row["status"] == "overdue" and row["employee_status"] == "active":
                days = from_csv["days_overdue"][row["assignment_id"]]
                assert re.search(rf"{row['due_date']}\s+{days}\b", text), row

        # the data behind the PDF is the same, and its trend ends on the headline
        report = api.one(user, "select api.compliance_report() as r", method="GET")["r"]
        assert Decimal(str(report["summary"]["rate"])) == summary["rate"]
        assert report["trend"], "the trend is never empty"
        assert Decimal(str(report["trend"][-1]["rate"])) == summary["rate"]
        assert report["trend"][-1]["date"] == local.isoformat()
    finally:
        set_zone(su, org, before["timezone"])


def hour_zones(conn: psycopg.Connection[Any]) -> tuple[str, str]:
    """Two zones, one hour apart, in which it is now the last hour of a local day and the first
    hour of the next (IANA Etc/GMT names have the sign inverted)."""
    while True:
        now = conn.execute(
            "select extract(hour from now() at time zone 'UTC')::int as h,"
            " extract(minute from now() at time zone 'UTC')::int as m"
        ).fetchone()
        if now["m"] < 57:
            break
        time.sleep(30)  # not across an hour's end: wait for the next hour
    offset = 23 - now["h"] if now["h"] >= 10 else -1 - now["h"]

    def name(hours: int) -> str:
        return "Etc/GMT" if hours == 0 else f"Etc/GMT{-hours:+d}"

    return name(offset), name(offset + 1)


def days_overdue_everywhere(
    web_server: WebServer, api: ApiHarness, org: Org, assignment: str
) -> dict[str, Any]:
    """The assignment's days overdue as each consumer gives it (None: not overdue there)."""
    user = org.users["hr_admin"]
    grid = api.one(
        user,
        "select days_overdue from api.compliance_matrix where assignment_id = %s",
        [assignment],
        method="GET",
        path="/compliance_matrix",
    )["days_overdue"]
    csv_row = next(
        r
        for r in csv_rows(get(web_server, "/export/compliance.csv", user).text)
        if r["assignment_id"] == assignment
    )
    xlsx_row = next(
        r
        for r in xlsx_rows(get(web_server, "/export/compliance.xlsx", user).content)
        if str(r["assignment_id"]) == assignment
    )
    report = api.one(user, "select api.compliance_report() as r", method="GET")["r"]
    in_report = [o["days_overdue"] for o in report["overdue"] if o["assignment_id"] == assignment]
    text = pdf_text(get(web_server, "/export/compliance.pdf", user).content)
    return {
        "grid": grid or None,
        "csv": int(csv_row["days_overdue"]) if csv_row["days_overdue"] else None,
        "xlsx": int(xlsx_row["days_overdue"]) if xlsx_row["days_overdue"] is not None else None,
        "pdf data": in_report[0] if in_report else None,
        "pdf": f"Overdue assignments ({report['overdue_total']})" in text
        and (report["overdue_total"] == 0 or str(report["overdue"][0]["due_date"]) in text),
    }


def test_days_overdue_agree_on_both_sides_of_local_midnight(
    web_server: WebServer,
    su: Any,  # noqa: F811 - the fixture
    api: ApiHarness,
) -> None:
    """23:xx on the due date (the due date is today: not overdue anywhere) and 00:xx the next
    day (the daily job marks it overdue: 1 day everywhere, the notification says so)."""
    evening, after_midnight = hour_zones(su)
    org = _org(su, "agree")
    set_zone(su, org, evening)
    _users(su, org)
    _employee(su, org, "nurse", department="Nursing", location="Main")
    due: date = su.execute("select app.org_today(%s) as d", [org.id]).fetchone()["d"]
    hour = su.execute(
        "select extract(hour from now() at time zone %s)::int as h", [evening]
    ).fetchone()["h"]
    assert hour == 23
    _module(su, org, "Hand hygiene", "2025-01", due)
    _assign(su, org, "employee", "Hand hygiene", due, "not_started")
    assignment = str(
        su.execute(
            "select id from app.training_assignments where org_id = %s and employee_id = %s",
            [org.id, org.employees["employee"]],
        ).fetchone()["id"]
    )

    with analyst_of(su, str(org.id)) as analyst:

        def flat() -> Any:
            row = analyst.execute(
                "select days_overdue, status from analytics.assignments_flat"
                " where assignment_id = %s",
                [assignment],
            ).fetchone()
            return row["days_overdue"] or None

        # 23:xx on the due date: due today, not overdue; the daily job of today changes nothing
        su.execute("select app.run_daily_jobs(%s, %s)", [org.id, due])
        seen = days_overdue_everywhere(web_server, api, org, assignment)
        assert seen == {"grid": None, "csv": None, "xlsx": None, "pdf data": None, "pdf": True}
        assert flat() is None

        # 00:xx the next day: the daily job of that day marks it overdue, 1 day everywhere
        set_zone(su, org, after_midnight)
        assert su.execute("select app.org_today(%s) as d", [org.id]).fetchone()["d"] == due + (
            timedelta(days=1)
        )
        su.execute("select app.run_daily_jobs(%s, %s)", [org.id, due + timedelta(days=1)])
        seen = days_overdue_everywhere(web_server, api, org, assignment)
        assert seen == {"grid": 1, "csv": 1, "xlsx": 1, "pdf data": 1, "pdf": True}
        assert flat() == 1
        text = pdf_text(get(web_server, "/export/compliance.pdf", org.users["hr_admin"]).content)
        assert re.search(rf"{due.isoformat()}\s+1\b", text)
        messages = [
            r["message"]
            for r in su.execute(
                "select message from app.notifications where org_id = %s and employee_id = %s",
                [org.id, org.employees["employee"]],
            ).fetchall()
        ]
        assert any("(1 days overdue)" in m for m in messages), messages
