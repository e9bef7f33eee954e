"""Any past local day through the PostgREST harness, with real commits: a missed daily job, a
catch-up run after a termination, the named overdue list of a past day, a completion recorded
later and then corrected. Organisations at UTC+14 and UTC-12 (the server's zone is neither).

Each request is its own committed transaction, so the history's versions are closed and opened
across transactions as in production. To stand on past days, the test moves everything the
organisation recorded so far back by whole days (``shift``): its history, its creation and its
rows' creation times; the order of events is kept, and everything after is recorded "now".
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.rows import DictRow

from compliance.db import ApiError
from tests.conftest import ApiHarness

ZONES = ("Pacific/Kiritimati", "Etc/GMT+12")


def shift(su: psycopg.Connection[DictRow], org: str, days: int) -> None:
    """Move what the organisation recorded so far `days` days into the past."""
    back = timedelta(days=days)
    for table in ("app.assignment_history", "app.employee_history"):
        su.execute(
            f"update {table} set valid = tstzrange(lower(valid) - %s, upper(valid) - %s)"  # noqa: S608
            " where org_id = %s",
            [back, back, org],
        )
    su.execute(
        "update app.organizations set created_at = created_at - %s where id = %s", [back, org]
    )
    su.execute(
        "update app.training_assignments set created_at = created_at - %s where org_id = %s",
        [back, org],
    )


def noon(su: psycopg.Connection[DictRow], org: str, day: date) -> Any:
    row = su.execute("select tests.local_noon(%s, %s) as at", [org, day]).fetchone()
    assert row is not None
    return row["at"]


def as_of(api: ApiHarness, user: str, day: date, **filters: str) -> dict[str, Any]:
    args = ", ".join(f"{k} => %({k})s" for k in filters)
    doc = api.one(
        user,
        f"select api.compliance_as_of(%(day)s{', ' + args if args else ''}) as d",
        {"day": day, **filters},
        method="GET",
        path="/rpc/compliance_as_of",
    )["d"]
    assert isinstance(doc, dict)
    return doc


def overdue(api: ApiHarness, user: str, day: date) -> list[tuple[str, int, bool]]:
    doc = api.one(
        user,
        "select api.overdue_as_of(%s) as l",
        [day],
        method="GET",
        path="/rpc/overdue_as_of",
    )["l"]
    return [
        (p["employee"], o["daysOverdue"], o["correctedLater"])
        for p in doc["people"]
        for o in p["overdue"]
    ]


@pytest.mark.parametrize("zone", ZONES)
def test_past_days_from_the_history(
    superuser: psycopg.Connection[DictRow], api: ApiHarness, zone: str
) -> None:
    su = superuser
    slug = f"hist-py-{uuid.uuid4().hex[:8]}"
    org = su.execute(
        "insert into app.organizations (name, slug, timezone) values ('History', %s, %s)"
        " returning id::text",
        [slug, zone],
    ).fetchone()["id"]  # type: ignore[index]
    su.execute("insert into app.departments (org_id, name) values (%s, 'Nursing')", [org])
    today = su.execute("select app.org_today(%s) as t", [org]).fetchone()["t"]  # type: ignore[index]
    # Module due 25 days before today (grace 7: overdue from T-17 on), as of 30 days ago.
    module = su.execute(
        "insert into app.training_modules (org_id, name, month_key, due_date, grace_period_days)"
        " values (%s, 'Infection control', '2025-01', %s, 7) returning id::text",
        [org, today - timedelta(days=25)],
    ).fetchone()["id"]  # type: ignore[index]
    people = {}
    for first in ("Ada", "Ben"):
        people[first] = su.execute(
            "insert into app.employees (org_id, email, first_name, last_name, department_id)"
            " select %s, %s, %s, 'Nurse', d.id from app.departments d where d.org_id = %s"
            " returning id::text",
            [org, f"{first.lower()}@{slug}.example", first, org],
        ).fetchone()["id"]  # type: ignore[index]
    su.execute(
        "insert into app.training_assignments (org_id, employee_id, module_id, due_date)"
        " select %s, e.id, %s, %s from app.employees e where e.org_id = %s on conflict do nothing",
        [org, module, today - timedelta(days=25), org],
    )
    hr = su.execute(
        "insert into app.app_users (org_id, email, display_name, app_role)"
        " values (%s, %s, 'HR', 'hr_admin') returning id::text",
        [org, f"hr@{slug}.example"],
    ).fetchone()["id"]  # type: ignore[index]
    ada_assignment = su.execute(
        "select id::text from app.training_assignments where org_id = %s and employee_id = %s",
        [org, people["Ada"]],
    ).fetchone()["id"]  # type: ignore[index]
    shift(su, org, 20)  # all that was recorded 20 days ago (T-20)

    # T-10: Ben is terminated, through the API.
    api.call(
        hr,
        "select api.deactivate_employee(%s::uuid, 'left the practice')",
        [people["Ben"]],
        path="/rpc/deactivate_employee",
    )
    shift(su, org, 10)  # creation now T-30, termination T-10

    day = today - timedelta(days=12)
    # A missed daily job: nothing was ever marked overdue (the rows and their recorded history
    # say not_started), and the day is still right.
    su.execute("set session_replication_role = replica")
    su.execute(
        "update app.training_assignments set status = 'not_started' where org_id = %s", [org]
    )
    su.execute("reset session_replication_role")
    su.execute("update app.assignment_history set status = 'not_started' where org_id = %s", [org])
    marked = su.execute(
        "select count(*) as n from app.assignment_history where org_id = %s and status = 'overdue'",
        [org],
    ).fetchone()
    assert marked is not None
    assert marked["n"] == 0
    doc = as_of(api, hr, day)
    assert doc["source"] == "history"
    assert doc["organization"]["overdueAssignments"] == 2
    assert overdue(api, hr, day) == [("Ada Nurse", 13, False), ("Ben Nurse", 13, False)]

    # A catch-up run now (after Ben's termination was recorded) for that day: Ben still counts.
    su.execute("select app.snapshot_compliance(%s, %s)", [day, org])
    doc = as_of(api, hr, day, department="Nursing")
    assert doc["source"] == "snapshot"
    assert (doc["selection"]["activeEmployees"], doc["selection"]["overdueAssignments"]) == (2, 2)
    later = as_of(api, hr, today - timedelta(days=5))
    assert later["organization"]["activeEmployees"] == 1
    assert later["organization"]["requiredAssignments"] == 1

    # Today HR records Ada's in-person session of T-15: T-12 changes, flagged recorded later.
    api.call(
        hr,
        "select api.record_completion(%s::uuid, %s, 'In-person session, sign-in sheet')",
        [ada_assignment, noon(su, org, today - timedelta(days=15))],
        path="/rpc/record_completion",
    )
    doc = as_of(api, hr, day)
    assert doc["source"] == "snapshot"  # the cached day, adjusted by the recording
    assert doc["organization"]["completedAssignments"] == 1
    assert doc["organization"]["completedRecordedLater"] == 1
    computed = su.execute(
        "select app.compliance_figures_document(%s, %s, 'history', now(), null, null) as d",
        [org, day],
    ).fetchone()
    assert computed is not None
    assert computed["d"]["groups"] == doc["groups"]
    assert computed["d"]["organization"] == doc["organization"]
    assert overdue(api, hr, day) == [("Ben Nurse", 13, False)]
    # Move on: creation T-42, Ben's termination T-22, Ada's completion recorded on T-12.
    shift(su, org, 12)

    # Today HR corrects it: the session was really on T-11. On T-12 Ada was overdue after all
    # (named corrected later); from T-11 she is completed.
    api.call(
        hr,
        "select api.correct_completion(%s::uuid, 'The session was on T-11', completed_at => %s)",
        [ada_assignment, noon(su, org, today - timedelta(days=11))],
        path="/rpc/correct_completion",
    )
    assert overdue(api, hr, day) == [("Ada Nurse", 13, True)]
    after = as_of(api, hr, today - timedelta(days=11))["organization"]
    assert (after["completedAssignments"], after["correctedLater"]) == (1, 1)
    record = api.call(
        hr,
        "select kind, reason, previous_completion_date, completion_date"
        " from api.completion_corrections where assignment_id = %s order by kind desc",
        [ada_assignment],
        method="GET",
        path="/completion_corrections",
    )
    assert [r["kind"] for r in record] == ["recorded", "corrected"]
    assert record[1]["previous_completion_date"] == record[0]["completion_date"]

    # A future day and one before the organisation: refused with a clear 400.
    for bad in (today + timedelta(days=1), today - timedelta(days=60)):
        with pytest.raises(ApiError) as refused:
            as_of(api, hr, bad)
        assert refused.value.sqlstate == "22023"
        assert str(bad) in refused.value.message
