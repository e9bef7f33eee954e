"""Every trend reads the as-of figures: the PDF report's trend (staff: the organisation or the
report's department; an employee: their own), the dashboard's trendsData and
analytics.compliance_by_month give, for each day they show, exactly what /rpc/compliance_as_of
answers for that day (cached or computed from the history, whether or not a daily job ran), and
end on today's live figure, the headline. The employee detail shows corrections: who, when, why.

Organisations at UTC+14 and UTC-12 (the server's zone is neither). Past days are made by moving
what the organisation recorded back by whole days (tests/figures/test_history_api.shift).
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import DictRow, dict_row

from compliance.db import ApiError
from tests.conftest import ApiHarness
from tests.figures.test_history_api import ZONES, as_of, noon, shift


def one(su: psycopg.Connection[DictRow], query: str, params: Any = None) -> Any:
    row = su.execute(query, params).fetchone()
    assert row is not None
    return next(iter(row.values()))


def report(api: ApiHarness, user: str, **args: str) -> dict[str, Any]:
    named = ", ".join(f"{k} => %({k})s::uuid" for k in args)
    doc = api.one(
        user,
        f"select api.compliance_report({named}) as r",
        args,
        method="GET",
        path="/rpc/compliance_report",
    )["r"]
    assert isinstance(doc, dict)
    return doc


def employee_trend(api: ApiHarness, user: str, employee: str, day: date) -> dict[str, Any]:
    return api.one(
        user,
        "select * from api.employee_compliance_trend(employee_id => %s::uuid, from_day => %s,"
        " to_day => %s)",
        [employee, day, day],
        method="GET",
        path="/rpc/employee_compliance_trend",
    )


def figures(doc: dict[str, Any]) -> tuple[int, int, int, int, Decimal]:
    return (
        doc["requiredAssignments"],
        doc["completedAssignments"],
        doc["overdueAssignments"],
        doc["exemptedAssignments"],
        Decimal(str(doc["complianceRate"])),
    )


def point(p: dict[str, Any]) -> tuple[int, int, int, int, Decimal]:
    return (p["required"], p["completed"], p["overdue"], p["exempted"], Decimal(str(p["rate"])))


@pytest.fixture(params=ZONES)
def practice(superuser: psycopg.Connection[DictRow], request: Any) -> dict[str, Any]:
    """An organisation with two departments, three employees (Ada has a login), two modules
    (one long overdue), HR; everything recorded 30 days ago (records span 30 days)."""
    su = superuser
    zone = request.param
    slug = f"trend-{uuid.uuid4().hex[:8]}"
    org = one(
        su,
        "insert into app.organizations (name, slug, timezone) values ('Trend', %s, %s)"
        " returning id::text",
        [slug, zone],
    )
    depts = {
        name: one(
            su,
            "insert into app.departments (org_id, name) values (%s, %s) returning id::text",
            [org, name],
        )
        for name in ("Nursing", "Front desk")
    }
    today: date = one(su, "select app.org_today(%s)", [org])
    modules = {
        name: one(
            su,
            "insert into app.training_modules"
            " (org_id, name, month_key, due_date, grace_period_days)"
            " values (%s, %s, '2025-01', %s, %s) returning id::text",
            [org, name, today - timedelta(days=due), grace],
        )
        for name, due, grace in (("Infection control", 25, 7), ("HIPAA", -20, 0))
    }
    people = {}
    for first, dept in (("Ada", "Nursing"), ("Ben", "Nursing"), ("Cy", "Front desk")):
        people[first] = one(
            su,
            "insert into app.employees (org_id, email, first_name, last_name, department_id)"
            " values (%s, %s, %s, 'Staff', %s) returning id::text",
            [org, f"{first.lower()}@{slug}.example", first, depts[dept]],
        )
    su.execute(
        "insert into app.training_assignments (org_id, employee_id, module_id, due_date)"
        " select %s, e.id, m.id, m.due_date from app.employees e, app.training_modules m"
        " where e.org_id = %s and m.org_id = e.org_id on conflict do nothing",
        [org, org],
    )
    hr = one(
        su,
        "insert into app.app_users (org_id, email, display_name, app_role)"
        " values (%s, %s, 'Hannah HR', 'hr_admin') returning id::text",
        [org, f"hr@{slug}.example"],
    )
    ada_user = one(
        su,
        "insert into app.app_users (org_id, email, display_name, app_role, employee_id)"
        " values (%s, %s, 'Ada', 'employee', %s) returning id::text",
        [org, f"ada-login@{slug}.example", people["Ada"]],
    )
    shift(su, org, 30)
    assignment = {
        (first, name): one(
            su,
            "select id::text from app.training_assignments where employee_id = %s"
            " and module_id = %s",
            [people[first], modules[name]],
        )
        for first in people
        for name in modules
    }
    return {
        "org": org,
        "today": today,
        "depts": depts,
        "people": people,
        "hr": hr,
        "ada_user": ada_user,
        "assignment": assignment,
    }


def test_report_trend_is_the_as_of_figure_of_every_day(
    superuser: psycopg.Connection[DictRow], api: ApiHarness, practice: dict[str, Any]
) -> None:
    su, org, hr, today = superuser, practice["org"], practice["hr"], practice["today"]
    # Ada's infection control, completed 20 days ago, recorded only now (HR keys it in).
    api.call(
        hr,
        "select api.record_completion(%s::uuid, %s, 'In-person session, sign-in sheet')",
        [
            practice["assignment"][("Ada", "Infection control")],
            noon(su, org, today - timedelta(20)),
        ],
        path="/rpc/record_completion",
    )
    # A catch-up run cached one past day; no daily job ran for any other.
    cached = today - timedelta(days=5)
    su.execute("select app.snapshot_compliance(%s, %s)", [cached, org])

    doc = report(api, hr)
    assert doc["trend_scope"] == "organization"
    assert doc["trend_granularity"] == "day"
    trend = doc["trend"]
    assert [p["date"] for p in trend] == [
        (today - timedelta(days=n)).isoformat() for n in range(30, -1, -1)
    ]
    for p in trend:
        day = date.fromisoformat(p["date"])
        answer = as_of(api, hr, day)
        assert p["source"] == answer["source"], day
        assert point(p) == figures(answer["organization"]), day
    assert trend[-1]["source"] == "live"
    assert {p["source"] for p in trend[:-1]} == {"history", "snapshot"}
    assert next(p for p in trend if p["date"] == cached.isoformat())["source"] == "snapshot"
    # the last point is the headline
    assert Decimal(str(trend[-1]["rate"])) == Decimal(str(doc["summary"]["rate"]))
    assert trend[-1]["required"] == doc["summary"]["required"]
    assert trend[-1]["overdue"] == doc["summary"]["overdue"]
    # the completion of 20 days ago counts from that day on, overdue ones from due + grace
    before, after = (
        next(p for p in trend if p["date"] == (today - timedelta(days=d)).isoformat())
        for d in (21, 20)
    )
    assert (before["completed"], after["completed"]) == (0, 1)
    assert trend[0]["overdue"] == 0
    assert trend[-1]["overdue"] == 2

    # A department's report: the department's trend, its last point the department's headline.
    nursing = report(api, hr, department_id=practice["depts"]["Nursing"])
    assert nursing["trend_scope"] == "department"
    assert len(nursing["trend"]) == len(trend)
    for p in nursing["trend"][::7] + nursing["trend"][-1:]:
        answer = as_of(api, hr, date.fromisoformat(p["date"]), department="Nursing")
        assert point(p) == figures(answer["selection"]), p["date"]
    assert Decimal(str(nursing["trend"][-1]["rate"])) == Decimal(str(nursing["summary"]["rate"]))


def test_an_employee_report_has_their_own_trend(
    superuser: psycopg.Connection[DictRow], api: ApiHarness, practice: dict[str, Any]
) -> None:
    su, org, today = superuser, practice["org"], practice["today"]
    ada = practice["ada_user"]
    api.call(
        practice["hr"],
        "select api.record_completion(%s::uuid, %s, 'Session attended')",
        [practice["assignment"][("Ada", "Infection control")], noon(su, org, today - timedelta(3))],
        path="/rpc/record_completion",
    )
    doc = report(api, ada)
    assert doc["trend_scope"] == "employee"
    trend = doc["trend"]
    assert len(trend) == 31
    for p in trend[::5] + trend[-1:]:
        own = employee_trend(api, ada, practice["people"]["Ada"], date.fromisoformat(p["date"]))
        assert point(p) == (
            own["required"],
            own["completed"],
            own["overdue"],
            own["exempted"],
            own["compliance_rate"],
        ), p["date"]
    assert [p["completed"] for p in trend[-5:]] == [0, 1, 1, 1, 1]
    assert Decimal(str(trend[-1]["rate"])) == Decimal(str(doc["summary"]["rate"]))
    assert Decimal(str(trend[-1]["rate"])) == Decimal("50.00")
    assert trend[-1]["source"] == "live"
    assert {p["source"] for p in trend[:-1]} == {"history"}


def test_long_records_give_month_ends_everywhere(
    superuser: psycopg.Connection[DictRow], api: ApiHarness, practice: dict[str, Any]
) -> None:
    """Records of 100 days: the report's trend, the dashboard's trendsData and
    analytics.compliance_by_month give the figures of each local month's last day (this month's:
    today, live), each equal to compliance_as_of for that day."""
    su, org, hr = superuser, practice["org"], practice["hr"]
    shift(su, org, 70)
    today: date = one(su, "select app.org_today(%s)", [org])
    first: date = one(
        su, "select app.local_date(id, created_at) from app.organizations where id = %s", [org]
    )
    assert (today - first).days == 100

    month_ends = []
    month = date(first.year, first.month, 1)
    while month <= today:
        following = date(month.year + month.month // 12, month.month % 12 + 1, 1)
        month_ends.append((month, min(following - timedelta(days=1), today)))
        month = following
    expected = {day: as_of(api, hr, day) for _, day in month_ends}

    doc = report(api, hr)
    assert doc["trend_granularity"] == "month"
    assert [date.fromisoformat(p["date"]) for p in doc["trend"]] == [d for _, d in month_ends]
    for p in doc["trend"]:
        assert point(p) == figures(expected[date.fromisoformat(p["date"])]["organization"])
    assert doc["trend"][-1]["source"] == "live"

    dashboard = api.one(hr, "select api.dashboard() as d", method="GET", path="/rpc/dashboard")
    trends = dashboard["d"]["overallStats"]["trendsData"]
    assert [(t["month"], t["snapshotDate"]) for t in trends] == [
        (m.strftime("%Y-%m"), d.isoformat()) for m, d in month_ends
    ]
    for t in trends:
        answer = expected[date.fromisoformat(t["snapshotDate"])]
        assert Decimal(str(t["completionRate"])) == Decimal(
            str(answer["organization"]["complianceRate"])
        )
        assert t["source"] == answer["source"]
    assert Decimal(str(trends[-1]["completionRate"])) == Decimal(
        str(dashboard["d"]["summary"]["overallComplianceRate"])
    )

    with analyst_of(su, org) as conn:
        rows = conn.execute(
            "select month, snapshot_date, source, required_assignments, completed_assignments,"
            " overdue_assignments, exempted_assignments, compliance_rate"
            " from analytics.compliance_by_month where snapshot_date is not null order by month"
        ).fetchall()
    assert [(r["month"], r["snapshot_date"]) for r in rows] == month_ends
    for r in rows:
        answer = expected[r["snapshot_date"]]
        assert r["source"] == answer["source"]
        assert (
            r["required_assignments"],
            r["completed_assignments"],
            r["overdue_assignments"],
            r["exempted_assignments"],
            r["compliance_rate"],
        ) == figures(answer["organization"])


class analyst_of:
    """A connection acting as a fresh analyst login bound to one organisation."""

    def __init__(self, su: psycopg.Connection[DictRow], org: str) -> None:
        self.su = su
        self.org = org
        self.role = f"trend_analyst_{uuid.uuid4().hex[:8]}"
        self.conn: psycopg.Connection[DictRow] | None = None

    def __enter__(self) -> psycopg.Connection[DictRow]:
        self.su.execute(
            sql.SQL("create role {} login in role analyst").format(sql.Identifier(self.role))
        )
        self.su.execute(
            "insert into app.analyst_organizations (role_name, org_id) values (%s, %s)",
            [self.role, self.org],
        )
        info = self.su.info
        self.conn = psycopg.connect(
            host=info.host,
            port=info.port,
            dbname=info.dbname,
            user=self.role,
            autocommit=True,
            row_factory=dict_row,
        )
        return self.conn

    def __exit__(self, *exc: object) -> None:
        if self.conn is not None:
            self.conn.close()
        self.su.execute("delete from app.analyst_organizations where role_name = %s", [self.role])
        self.su.execute(sql.SQL("drop role {}").format(sql.Identifier(self.role)))


def test_employee_detail_shows_corrections(
    superuser: psycopg.Connection[DictRow], api: ApiHarness, practice: dict[str, Any]
) -> None:
    su, org, hr, today = superuser, practice["org"], practice["hr"], practice["today"]
    target = practice["assignment"][("Ada", "Infection control")]
    api.call(
        hr,
        "select api.record_completion(%s::uuid, %s, 'In-person session, sign-in sheet', 92)",
        [target, noon(su, org, today - timedelta(6))],
        path="/rpc/record_completion",
    )
    api.call(
        hr,
        "select api.correct_completion(%s::uuid, 'The session was a day later',"
        " completed_at => %s)",
        [target, noon(su, org, today - timedelta(5))],
        path="/rpc/correct_completion",
    )
    for user in (hr, practice["ada_user"]):
        detail = api.one(
            user,
            "select api.employee_detail(%s::uuid) as d",
            [practice["people"]["Ada"]],
            method="GET",
            path="/rpc/employee_detail",
        )["d"]
        entries = {
            h["action"]: h
            for h in detail["complianceHistory"]
            if h["action"].startswith("completion_")
        }
        assert set(entries) == {"completion_recorded", "completion_corrected"}
        corrected = entries["completion_corrected"]
        assert corrected["assignmentId"] == target
        assert corrected["moduleTitle"] == "Infection control"
        assert corrected["correction"]["reason"] == "The session was a day later"
        assert corrected["correction"]["correctedBy"] == hr
        assert corrected["correction"]["previousCompletedAt"] is not None
        assert (
            corrected["correction"]["previousCompletedAt"] != corrected["correction"]["completedAt"]
        )
        assert "The session was a day later" in corrected["details"]
        assert str(today - timedelta(6)) in corrected["details"]
        assert str(today - timedelta(5)) in corrected["details"]
        recorded = entries["completion_recorded"]
        assert recorded["correction"]["score"] == 92
        assert recorded["correction"]["previousStatus"] == "overdue"
        if user == hr:
            assert "by Hannah HR" in corrected["details"]
            assert corrected["correction"]["correctedByName"] == "Hannah HR"


def test_employee_detail_dates_overdue_by_the_local_day(
    api: ApiHarness, practice: dict[str, Any]
) -> None:
    today = practice["today"]
    detail = api.one(
        practice["hr"],
        "select api.employee_detail(%s::uuid) as d",
        [practice["people"]["Ben"]],
        method="GET",
        path="/rpc/employee_detail",
    )["d"]
    overdue = [h for h in detail["complianceHistory"] if h["action"] == "overdue"]
    assert len(overdue) == 1
    # due 25 days ago, grace 7: overdue from the local day 17 days ago, 25 days overdue today
    assert f"Overdue since {today - timedelta(days=17)} (25 days overdue)" == overdue[0]["details"]
    training = next(t for t in detail["trainings"] if t["moduleTitle"] == "Infection control")
    assert training["daysOverdue"] == 25


def test_figures_of_another_organisation_are_refused(
    superuser: psycopg.Connection[DictRow], api: ApiHarness, practice: dict[str, Any]
) -> None:
    """An analyst bound to another organisation, or staff of another, get no day figures."""
    su, org, today = superuser, practice["org"], practice["today"]
    other = one(su, "select tests.create_org(%s)::text", [f"trend-other-{uuid.uuid4().hex[:8]}"])
    with analyst_of(su, other) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("select * from app.figures_of_days(%s, array[%s::date])", [org, today])
        assert conn.execute("select * from app.trend_days(%s, 'month')", [org]).fetchall() == []
        assert conn.execute(
            "select count(*) as n from analytics.compliance_by_month where org_id = %s", [org]
        ).fetchone() == {"n": 0}
        own = conn.execute(
            "select * from app.figures_of_days(%s, array[app.org_today(%s)])", [other, other]
        ).fetchone()
        assert own is not None
        assert own["source"] == "live"
    hr_other = one(su, "select tests.create_user(%s, 'hr_admin')::text", [other])
    with pytest.raises(ApiError) as refused:
        api.call(
            hr_other, "select * from app.figures_of_days(%s::uuid, array[%s::date])", [org, today]
        )
    assert refused.value.sqlstate == "42501"
