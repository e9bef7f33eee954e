"""A complete sync makes the database hold exactly the source; the same data again writes
nothing; changed rows update; a person gone from a complete roster is terminated."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from sync.settings import SyncSettings
from tests.fakes import FakeUpstreams
from tests.fakes.dataset import (
    Dataset,
    expected_employees,
    expected_modules,
)
from tests.sync.conftest import RunSync
from tests.sync.helpers import (
    Org,
    differences,
    employees,
    expected_results_normalised,
    modules,
    results,
    snapshot,
)

pytestmark = pytest.mark.external


def assert_matches_source(conn: psycopg.Connection[Any], org: Org, ds: Dataset) -> None:
    assert differences(expected_employees(ds), employees(conn, org)) == []
    assert differences(expected_modules(ds), modules(conn, org)) == []
    assert differences(expected_results_normalised(ds), results(conn, org)) == []


def test_first_sync_holds_exactly_the_source(
    run_sync: RunSync, superuser: psycopg.Connection[Any], org: Org, dataset: Dataset
) -> None:
    summary = run_sync("all")

    assert summary.status == "completed", summary.lines()
    assert summary.complete_fetch
    assert summary.failed == 0
    assert summary.errors == 0
    assert_matches_source(superuser, org, dataset)
    people = len(expected_employees(dataset))
    assert summary.merge["zenefits"]["employees_created"] == people
    assert summary.merge["classroom_coursework"]["created"] == len(dataset.coursework)
    assert summary.merge["classroom_submissions"]["results"] == len(
        expected_results_normalised(dataset)
    )
    # Students found by e-mail are linked to their Classroom user id.
    linked = superuser.execute(
        "select count(*) as n from app.employees"
        " where org_id = %s and classroom_user_id is not null",
        [org.id],
    ).fetchone()
    assert linked is not None
    assert linked["n"] == people


def test_an_unmatched_student_is_a_warning_naming_the_student(
    run_sync: RunSync, superuser: psycopg.Connection[Any], org: Org, dataset: Dataset
) -> None:
    guest = dataset.students[-1]
    summary = run_sync("classroom")

    run = superuser.execute(
        "select warnings from app.sync_runs where org_id = %s and id = %s", [org.id, summary.run_id]
    ).fetchone()
    assert run is not None
    named = [w for w in run["warnings"] if guest.user_id in w["message"]]
    assert len(named) == 1, run["warnings"]
    assert guest.email in named[0]["message"]
    assert f"{guest.given_name} {guest.family_name}" in named[0]["message"]
    assert "4 submission(s) not recorded" in named[0]["message"]
    assert named[0]["student"]["email"] == guest.email


def test_the_same_data_twice_writes_nothing_the_second_time(
    run_sync: RunSync, superuser: psycopg.Connection[Any], org: Org
) -> None:
    first = run_sync("all")
    assert first.status == "completed"
    before = snapshot(superuser, org)

    second = run_sync("all")

    assert second.status == "completed"
    assert (second.created, second.updated, second.failed) == (0, 0, 0)
    assert snapshot(superuser, org) == before  # no row version, audit row or event added


def test_changed_source_rows_update_and_only_those(
    run_sync: RunSync,
    superuser: psycopg.Connection[Any],
    org: Org,
    dataset: Dataset,
    upstreams: FakeUpstreams,
) -> None:
    assert run_sync("all").status == "completed"
    people = [p for p in dataset.people if p.status == "active"]
    people[0].title = "Chief Compliance Officer"
    people[1].dept_zid = (
        dataset.departments[-1].zid
        if people[1].dept_zid != dataset.departments[-1].zid
        else dataset.departments[0].zid
    )
    people[2].status = "leave_of_absence"
    people[3].last_name = "Renamed"
    graded = next(
        s
        for s in dataset.submissions
        if s.state == "RETURNED"
        and s.grade is not None
        and s.user_id == dataset.students[5].user_id
    )
    work = next(w for w in dataset.coursework if w.id == graded.cw_id)
    graded.grade = round((work.max_points or 100) * 0.97, 2)
    graded.updated = "2025-06-01T10:00:00.000Z"
    upstreams.classroom.touch()

    summary = run_sync("all")

    assert summary.status == "completed", summary.lines()
    assert summary.merge["zenefits"]["employees_updated"] == 4
    assert summary.merge["zenefits"]["employees_created"] == 0
    assert summary.merge["classroom_submissions"]["assignments_updated"] == 1
    assert summary.merge["classroom_submissions"]["assignments_created"] == 0
    assert_matches_source(superuser, org, dataset)
    row = superuser.execute(
        "select a.score, a.classroom_grade from app.training_assignments a"
        " where a.org_id = %s and a.classroom_submission_id = %s",
        [org.id, graded.id],
    ).fetchone()
    assert row is not None
    assert row["classroom_grade"] == Decimal(str(graded.grade))


def test_a_person_gone_from_a_complete_roster_is_terminated(
    run_sync: RunSync, superuser: psycopg.Connection[Any], org: Org, dataset: Dataset
) -> None:
    assert run_sync("zenefits").status == "completed"
    gone = next(p for p in dataset.people if p.status == "active")
    dataset.people.remove(gone)

    summary = run_sync("zenefits")

    assert summary.status == "completed"
    assert summary.merge["zenefits"]["employees_terminated"] == 1
    status = superuser.execute(
        "select status::text from app.employees where org_id = %s and zenefits_id = %s",
        [org.id, gone.zid],
    ).fetchone()
    assert status == {"status": "terminated"}
    assert (
        differences(
            {k: v for k, v in expected_employees(dataset).items()},
            {k: v for k, v in employees(superuser, org).items() if k != gone.zid},
        )
        == []
    )


def test_an_incomplete_roster_terminates_nobody_and_changes_no_status(
    run_sync: RunSync,
    superuser: psycopg.Connection[Any],
    org: Org,
    dataset: Dataset,
    upstreams: FakeUpstreams,
) -> None:
    assert run_sync("zenefits").status == "completed"
    actives = [p for p in dataset.people if p.status == "active"]
    gone, changed = actives[0], actives[1]
    dataset.people.remove(gone)
    changed.status = "terminated"
    upstreams.zenefits.faults.add("vanish", match="/people?limit=100&starting_after=", times=None)
    statuses_before = {k: v["status"] for k, v in employees(superuser, org).items()}

    summary = run_sync("zenefits")

    assert summary.status == "partial"
    assert not summary.complete_fetch
    assert any("gone" in e["message"] for e in summary.first_errors), summary.first_errors
    statuses_after = {k: v["status"] for k, v in employees(superuser, org).items()}
    assert statuses_after == statuses_before
    assert summary.merge["zenefits"]["employees_terminated"] == 0

    upstreams.zenefits.faults.clear()
    assert run_sync("zenefits").status == "completed"
    after = employees(superuser, org)
    assert after[gone.zid]["status"] == "terminated"
    assert after[changed.zid]["status"] == "terminated"


def test_an_empty_complete_roster_terminates_nobody(
    run_sync: RunSync, superuser: psycopg.Connection[Any], org: Org, dataset: Dataset
) -> None:
    assert run_sync("zenefits").status == "completed"
    dataset.people.clear()

    summary = run_sync("zenefits")

    assert summary.status == "partial"
    assert any("empty roster" in e["message"] for e in summary.first_errors)
    active = superuser.execute(
        "select count(*) as n from app.employees where org_id = %s and status = 'active'", [org.id]
    ).fetchone()
    assert active is not None
    assert active["n"] > 0


def test_records_that_cannot_be_applied_fail_alone_with_a_named_error(
    run_sync: RunSync, superuser: psycopg.Connection[Any], org: Org, dataset: Dataset
) -> None:
    bad = dataset.people[7]
    bad.work_email = "not-an-address"
    bad.personal_email = None
    nameless = dataset.people[8]
    nameless.last_name = " "

    summary = run_sync("zenefits")

    assert summary.status == "partial"
    assert summary.failed == 2
    messages = " | ".join(e["message"] for e in summary.first_errors)
    assert f"person {bad.zid}" in messages
    assert "malformed e-mail" in messages
    assert f"person {nameless.zid}" in messages
    assert "no last name" in messages
    rows = employees(superuser, org)
    assert bad.zid not in rows
    assert nameless.zid not in rows
    assert len(rows) == len(expected_employees(dataset)) - 2


def test_matching_by_email_links_an_existing_employee(
    run_sync: RunSync, superuser: psycopg.Connection[Any], org: Org, dataset: Dataset
) -> None:
    person = dataset.people[3]
    superuser.execute(
        "insert into app.employees (org_id, email, first_name, last_name)"
        " values (%s, %s, 'Old', 'Name')",
        [org.id, (person.work_email or "").upper()],
    )

    summary = run_sync("zenefits")

    assert summary.status == "completed"
    rows = superuser.execute(
        "select zenefits_id, first_name from app.employees where org_id = %s and lower(email) = %s",
        [org.id, person.work_email],
    ).fetchall()
    assert rows == [{"zenefits_id": person.zid, "first_name": person.first_name}]


def test_a_second_sync_while_one_runs_is_refused(
    worker_conn: psycopg.Connection[Any], settings: SyncSettings, worker_dsn: str, run_sync: RunSync
) -> None:
    with psycopg.connect(worker_dsn, autocommit=True) as other:
        other.execute(
            "select sync.start_run(%s, 'employees', 'zenefits')", [settings.compliance_org_slug]
        )
        with pytest.raises(psycopg.Error) as refused:
            run_sync("zenefits")
        assert refused.value.sqlstate == "PT409"
        assert "already running" in (refused.value.diag.message_primary or "")
        other_pid = other.info.backend_pid
    # The other session ended without finishing (its lock goes when its backend has exited,
    # a moment after the client closed): the next run closes its run as abandoned.
    deadline = time.monotonic() + 30
    while (
        worker_conn.execute("select 1 from pg_stat_activity where pid = %s", [other_pid]).fetchone()
        and time.monotonic() < deadline
    ):
        time.sleep(0.05)
    summary = run_sync("zenefits")
    assert summary.status == "completed"
    abandoned = worker_conn.execute(
        "select 1 from sync.open_runs() where run_id <> %s", [summary.run_id]
    ).fetchall()
    assert abandoned == []


def test_a_result_for_a_module_nobody_requires_is_an_optional_completion(
    run_sync: RunSync, superuser: psycopg.Connection[Any], org: Org
) -> None:
    # No department rule and no module required of new hires: every Classroom result is for a
    # module the employee need not take (a volunteer).
    summary = run_sync("all")
    assert summary.status == "completed", summary.lines()
    rows = superuser.execute(
        "select a.is_required, a.not_required_reason, count(*) as n"
        " from app.training_assignments a"
        " where a.org_id = %s and a.classroom_submission_id is not null"
        " group by 1, 2",
        [org.id],
    ).fetchall()
    assert [(r["is_required"], r["not_required_reason"]) for r in rows] == [(False, "optional")]
    counted = superuser.execute(
        "select coalesce(sum(training_assigned), 0) as n from app.employee_compliance_stats"
        " where org_id = %s",
        [org.id],
    ).fetchone()
    assert counted is not None
    assert counted["n"] == 0  # never in a rate

    # A rule that later requires the module counts the completions already made.
    completed = superuser.execute(
        "select a.employee_id, a.module_id, e.department_id from app.training_assignments a"
        " join app.employees e on e.org_id = a.org_id and e.id = a.employee_id"
        " where a.org_id = %s and a.status = 'completed' and e.department_id is not null"
        " and e.status = 'active' limit 1",
        [org.id],
    ).fetchone()
    assert completed is not None
    superuser.execute(
        "insert into app.department_training_requirements (org_id, department_id, module_id,"
        " effective_start) values (%s, %s, %s, date '2000-01-01')",
        [org.id, completed["department_id"], completed["module_id"]],
    )
    now_counted = superuser.execute(
        "select count(*) as n from app.training_assignments"
        " where org_id = %s and employee_id = %s and module_id = %s and is_required"
        " and status = 'completed'",
        [org.id, completed["employee_id"], completed["module_id"]],
    ).fetchone()
    assert now_counted is not None
    assert now_counted["n"] == 1
