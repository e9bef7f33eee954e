"""api.dashboard() through the PostgREST harness: its shape, and its numbers against a
recomputation in Python from the raw rows (DESIGN §5 "Compliance rate", §7 DashboardData).

The organisation is built as the superuser (set-up only) with a deterministic mix of statuses,
exemptions, optional assignments, overdue ones, ones due within the reminder days and inactive
employees, over three departments and two locations; then every figure the dashboard returns
is recomputed here from app.training_assignments and app.employees with the definition:
completed / (required - exempted) assignments of active employees * 100, 2 decimals, 100.00
when there are none.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import psycopg
import pytest
from psycopg.rows import DictRow

from compliance.db import ApiError
from tests.conftest import ApiHarness, engine_today

STATUSES = ("not_started", "in_progress", "completed", "exempted")


def rate(completed: int, required: int, exempted: int) -> Decimal:
    """The definition, written out independently of the database."""
    countable = required - exempted
    if countable <= 0:
        return Decimal("100.00")
    return (Decimal(100) * completed / countable).quantize(Decimal("0.01"), ROUND_HALF_UP)


@dataclass
class Org:
    id: str
    hr_user: str
    employee_user: str
    employee_id: str


@pytest.fixture
def org(superuser: psycopg.Connection[DictRow]) -> Org:
    rnd = random.Random(20250101)  # noqa: S311 - test data, not secrets
    slug = f"fig-py-{uuid.uuid4().hex[:8]}"
    su = superuser
    org_id = su.execute(
        "insert into app.organizations (name, slug) values ('Figures Py', %s) returning id::text",
        [slug],
    ).fetchone()["id"]  # type: ignore[index]
    departments = [
        su.execute(
            "insert into app.departments (org_id, name) values (%s, %s) returning id::text",
            [org_id, name],
        ).fetchone()["id"]  # type: ignore[index]
        for name in ("Clinical", "Front Desk", "Billing")
    ]
    locations = [
        su.execute(
            "insert into app.locations (org_id, name) values (%s, %s) returning id::text",
            [org_id, name],
        ).fetchone()["id"]  # type: ignore[index]
        for name in ("Ann Arbor", "Wixom")
    ]
    today = engine_today(su)
    modules: list[dict[str, Any]] = []
    for i, offset in enumerate((-60, -20, 2, 5, 30, 90), start=1):
        module = su.execute(
            """insert into app.training_modules (org_id, name, month_key, due_date)
               values (%s, %s, %s, %s) returning id::text, due_date""",
            [org_id, f"Module {i}", f"2025-{i:02d}", today + timedelta(days=offset)],
        ).fetchone()
        assert module is not None
        modules.append(module)
    employees = []
    for i in range(24):
        row = su.execute(
            """insert into app.employees (org_id, email, first_name, last_name, department_id,
                                          location_id, job_title)
               values (%s, %s, %s, 'Test', %s, %s, 'Staff') returning id::text""",
            [org_id, f"p{i}@{slug}.example", f"P{i}", departments[i % 3], locations[i % 2]],
        ).fetchone()
        assert row is not None
        employees.append(row["id"])
    for emp in employees:
        for module in modules:
            if rnd.random() < 0.1:
                continue  # not everyone has every module
            status = rnd.choice(STATUSES)
            su.execute(
                """insert into app.training_assignments (org_id, employee_id, module_id, due_date,
                                                         status, is_required, exemption_reason)
                   values (%s, %s, %s, %s, %s, %s, %s)""",
                [
                    org_id,
                    emp,
                    module["id"],
                    module["due_date"],
                    status,
                    rnd.random() > 0.15,
                    "covered elsewhere" if status == "exempted" else None,
                ],
            )
    # Three leave: their assignments stop counting.
    su.execute(
        "update app.employees set status = 'terminated' where org_id = %s and id = any(%s::uuid[])",
        [org_id, employees[:3]],
    )
    su.execute(
        """insert into app.sync_runs (org_id, type, source, status, started_at, completed_at)
           values (%s, 'employees', 'zenefits', 'completed', now() - interval '3 hours',
                   now() - interval '2 hours'),
                  (%s, 'completions', 'classroom', 'partial', now() - interval '1 hour',
                   now() - interval '50 minutes')""",
        [org_id, org_id],
    )
    hr_user = su.execute(
        """insert into app.app_users (org_id, email, display_name, app_role)
           values (%s, %s, 'HR', 'hr_admin') returning id::text""",
        [org_id, f"hr@{slug}.example"],
    ).fetchone()["id"]  # type: ignore[index]
    employee_user = su.execute(
        """insert into app.app_users (org_id, email, display_name, app_role, employee_id)
           values (%s, %s, 'P5', 'employee', %s) returning id::text""",
        [org_id, f"p5.login@{slug}.example", employees[5]],
    ).fetchone()["id"]  # type: ignore[index]
    return Org(org_id, hr_user, employee_user, employees[5])


def raw_rows(su: psycopg.Connection[DictRow], org_id: str) -> list[dict[str, Any]]:
    return su.execute(
        """select a.module_id::text, a.status::text, a.is_required, a.due_date,
                  e.department_id::text, e.location_id::text, e.status::text as employee_status
           from app.training_assignments a
           join app.employees e on e.org_id = a.org_id and e.id = a.employee_id
           where a.org_id = %s""",
        [org_id],
    ).fetchall()


def test_dashboard_numbers_match_the_rows(
    api: ApiHarness, superuser: psycopg.Connection[DictRow], org: Org
) -> None:
    doc = api.one(org.hr_user, "select api.dashboard() as d", method="GET", path="/rpc/dashboard")[
        "d"
    ]

    # Shape: the seed's DashboardData keys, camelCase.
    assert {"matrix", "departments", "locations", "overallStats", "lastSync", "summary"} <= set(doc)
    assert set(doc["summary"]) >= {
        "totalEmployees",
        "totalModules",
        "overallComplianceRate",
        "overdueCount",
        "dueSoonCount",
    }
    assert set(doc["matrix"]) == {"trainings", "cells"}
    assert set(doc["overallStats"]) >= {
        "totalCompletions",
        "overdueTrainings",
        "dueSoonTrainings",
        "complianceRate",
        "trendsData",
    }

    # The recomputation.
    rows = raw_rows(superuser, org.id)
    counted = [r for r in rows if r["is_required"] and r["employee_status"] == "active"]
    assert any(r["status"] == "overdue" for r in counted), "the data must include overdue ones"
    assert any(r["status"] == "exempted" for r in counted)
    assert any(not r["is_required"] for r in rows)
    assert any(r["employee_status"] != "active" for r in rows)
    reminder_days = superuser.execute(
        "select reminder_days from app.organizations where id = %s", [org.id]
    ).fetchone()["reminder_days"]  # type: ignore[index]
    today = superuser.execute("select app.today() as d").fetchone()["d"]  # type: ignore[index]

    def figures(subset: list[dict[str, Any]]) -> tuple[int, int, int, int, Decimal]:
        by = Counter(r["status"] for r in subset)
        return (
            len(subset),
            by["completed"],
            by["exempted"],
            by["overdue"],
            rate(by["completed"], len(subset), by["exempted"]),
        )

    def due_soon(subset: list[dict[str, Any]]) -> int:
        return sum(
            1
            for r in subset
            if r["status"] in ("not_started", "in_progress")
            and today <= r["due_date"] <= today + timedelta(days=reminder_days)
        )

    required, completed, exempted, overdue, overall = figures(counted)
    active = superuser.execute(
        "select count(*) as n from app.employees where org_id = %s and status = 'active'",
        [org.id],
    ).fetchone()["n"]  # type: ignore[index]
    summary = doc["summary"]
    assert Decimal(str(summary["overallComplianceRate"])) == overall
    assert summary["totalEmployees"] == active == 21
    assert summary["totalModules"] == 6
    assert summary["overdueCount"] == overdue
    assert summary["dueSoonCount"] == due_soon(counted)
    assert summary["exemptedCount"] == exempted
    assert summary["completedCount"] == completed
    assert summary["requiredCount"] == required
    assert doc["overallStats"]["totalCompletions"] == completed
    assert Decimal(str(doc["overallStats"]["complianceRate"])) == overall
    # The same figure as the rate endpoint.
    assert api.one(org.hr_user, "select api.compliance_rate() as r", method="GET")["r"] == overall

    # Per department and per location.
    by_dept: dict[str, list[dict[str, Any]]] = defaultdict(list)
    by_loc: dict[str, list[dict[str, Any]]] = defaultdict(list)
    by_cell: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in counted:
        by_dept[r["department_id"]].append(r)
        by_loc[r["location_id"]].append(r)
        by_cell[(r["department_id"], r["module_id"])].append(r)
    assert len(doc["departments"]) == 3
    for d in doc["departments"]:
        n, done, ex, late, expected = figures(by_dept[d["departmentId"]])
        assert Decimal(str(d["complianceRate"])) == expected, d["department"]
        assert (d["requiredCount"], d["completedCount"], d["exemptedCount"], d["overdueCount"]) == (
            n,
            done,
            ex,
            late,
        )
        assert d["dueSoonCount"] == due_soon(by_dept[d["departmentId"]])
        assert Decimal(str(d["completionTarget"])) == Decimal("95.00")
        assert d["targetMet"] == (expected >= Decimal("95.00"))
    assert len(doc["locations"]) == 2
    for loc in doc["locations"]:
        n, done, ex, late, expected = figures(by_loc[loc["locationId"]])
        assert Decimal(str(loc["complianceRate"])) == expected, loc["location"]
        assert (
            loc["requiredCount"],
            loc["completedCount"],
            loc["exemptedCount"],
            loc["overdueCount"],
        ) == (n, done, ex, late)
        assert loc["dueSoonCount"] == due_soon(by_loc[loc["locationId"]])
    cells = {(c["departmentId"], c["moduleId"]): c for c in doc["matrix"]["cells"]}
    assert set(cells) == set(by_cell)
    for key, subset in by_cell.items():
        n, done, ex, late, expected = figures(subset)
        cell = cells[key]
        assert (cell["required"], cell["completed"], cell["exempted"], cell["overdue"]) == (
            n,
            done,
            ex,
            late,
        )
        assert Decimal(str(cell["complianceRate"])) == expected

    # Last sync: the latest successful (completed or partial) run.
    last = superuser.execute(
        """select max(completed_at) as t from app.sync_runs
           where org_id = %s and status in ('completed', 'partial')""",
        [org.id],
    ).fetchone()["t"]  # type: ignore[index]
    assert doc["lastSync"] is not None
    assert doc["lastSync"][:19] == last.isoformat()[:19]


def test_dashboard_is_for_staff_and_detail_is_own_only(api: ApiHarness, org: Org) -> None:
    with pytest.raises(ApiError) as refused:
        api.call(org.employee_user, "select api.dashboard()", method="GET", path="/rpc/dashboard")
    assert (refused.value.sqlstate, refused.value.http_status) == ("42501", 403)

    own = api.one(
        org.employee_user,
        "select api.employee_detail(%s) as d",
        [org.employee_id],
        method="GET",
        path="/rpc/employee_detail",
    )["d"]
    assert own["employee"]["id"] == org.employee_id
    assert set(own) == {
        "employee",
        "complianceStats",
        "upcomingDeadlines",
        "complianceHistory",
        "trainings",
    }

    with pytest.raises(ApiError) as missing:
        api.call(
            org.hr_user,
            "select api.employee_detail(%s)",
            [str(uuid.uuid4())],
            method="GET",
            path="/rpc/employee_detail",
        )
    assert (missing.value.sqlstate, missing.value.http_status) == ("PT404", 404)
