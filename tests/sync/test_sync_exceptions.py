"""What the sync cannot honour goes to the exception report, through the fake Zenefits and
Classroom: duplicate people in the roster, results for course work that is no module, students who
match no employee. The run does not fail for them, nothing is lost (the next sync that can record
a result records it and closes its case), and the same problem seen again stays one case."""

from __future__ import annotations

import dataclasses
from typing import Any

import psycopg

from tests.fakes import FakeUpstreams
from tests.fakes.dataset import Dataset, Employment, Person, Student
from tests.sync.conftest import RunSync
from tests.sync.helpers import Org, exception_cases, expected_results_normalised, results


def _open(conn: psycopg.Connection[Any], org: Org, kind: str) -> list[dict[str, Any]]:
    return [c for c in exception_cases(conn, org, kind) if c["resolved_at"] is None]


def _zids(conn: psycopg.Connection[Any], org: Org) -> set[str]:
    rows = conn.execute(
        "select zenefits_id from app.employees where org_id = %s and zenefits_id is not null",
        [org.id],
    ).fetchall()
    return {r["zenefits_id"] for r in rows}


def test_duplicate_people_in_the_roster_are_cases_not_silent_merges(
    run_sync: RunSync,
    superuser: psycopg.Connection[Any],
    org: Org,
    dataset: Dataset,
) -> None:
    first = next(p for p in dataset.people if p.status == "active")
    twin = dataclasses.replace(first, zid="9199001", employments=[], manager_zid=None)
    namesake_a = dataclasses.replace(
        first,
        zid="9199002",
        first_name="Noor",
        last_name="Sayed",
        work_email="noor.sayed@acme.test",
        date_of_birth="1984-02-29",
        manager_zid=None,
        employments=[Employment("3399002", "2020-01-06")],
    )
    namesake_b = dataclasses.replace(
        namesake_a,
        zid="9199003",
        work_email="nsayed@acme.test",
        last_name="SAYED",
        employments=[Employment("3399003", "2021-03-01")],
    )
    dataset.people += [twin, namesake_a, namesake_b]

    for _ in range(2):  # the same roster twice: the same two open cases
        summary = run_sync("zenefits")
        assert summary.status == "completed", summary.lines()
        assert summary.failed == 0
        cases = _open(superuser, org, "duplicate_person")
        assert [(c["subject_key"], c["rule"]) for c in cases] == [
            (f"zenefits:{first.zid}+{twin.zid}", "zenefits_duplicate_email"),
            ("zenefits:9199002+9199003", "zenefits_duplicate_name_and_date_of_birth"),
        ]
    email_case = cases[0]
    assert email_case["details"]["zenefits_ids"] == [first.zid, twin.zid]
    assert first.work_email
    assert first.work_email in email_case["message"]
    zids = _zids(superuser, org)
    assert first.zid in zids
    assert twin.zid not in zids
    assert {"9199002", "9199003"} <= zids  # same name and birth date: both imported

    # The twin is removed in Zenefits: the next complete roster closes its case.
    dataset.people.remove(twin)
    assert run_sync("zenefits").status == "completed"
    [still_open] = _open(superuser, org, "duplicate_person")
    assert still_open["subject_key"] == "zenefits:9199002+9199003"
    closed = next(
        c for c in exception_cases(superuser, org, "duplicate_person") if c["resolved_at"]
    )
    assert closed["subject_key"] == f"zenefits:{first.zid}+{twin.zid}"


def test_a_result_for_course_work_that_is_no_module_is_kept_until_it_can_be_recorded(
    run_sync: RunSync,
    superuser: psycopg.Connection[Any],
    org: Org,
    dataset: Dataset,
    upstreams: FakeUpstreams,
) -> None:
    draft = dataset.coursework[0]
    draft.state = "DRAFT"  # not listed by courseWork.list, but its submissions are
    upstreams.classroom.touch()
    expected = expected_results_normalised(dataset)
    on_draft = {sub_id for sub_id, r in expected.items() if r["cw_id"] == draft.id}
    assert on_draft

    for _ in range(2):
        summary = run_sync("all")
        assert summary.status == "completed", summary.lines()
        cases = _open(superuser, org, "unknown_module_result")
        assert {c["subject_key"] for c in cases} == {f"classroom:submission:{s}" for s in on_draft}
    case = cases[0]
    assert case["rule"] == "classroom_result_module"
    assert case["employee_id"] is not None
    assert case["details"]["course_id"] == draft.course_id
    assert case["details"]["coursework_id"] == draft.id
    assert case["details"]["submission"]["id"] == case["details"]["submission_id"]
    assert on_draft.isdisjoint(results(superuser, org))

    # Published: the next sync maps it to a module, records every result and closes the cases.
    draft.state = "PUBLISHED"
    upstreams.classroom.touch()
    assert run_sync("classroom").status == "completed"
    assert on_draft <= set(results(superuser, org))
    assert _open(superuser, org, "unknown_module_result") == []
    assert all(
        c["resolution"].startswith("The course work maps to module")
        for c in exception_cases(superuser, org, "unknown_module_result")
    )


def test_an_unmatched_student_is_a_case_until_they_match(
    run_sync: RunSync,
    superuser: psycopg.Connection[Any],
    org: Org,
    dataset: Dataset,
    upstreams: FakeUpstreams,
) -> None:
    guest: Student = dataset.students[-1]
    graded = next(s for s in dataset.submissions if s.user_id == guest.user_id)
    graded.state, graded.grade = "RETURNED", 95
    graded.turned_in = "2025-02-03T15:00:00.000Z"
    upstreams.classroom.touch()
    guest_results = {
        s.id
        for s in dataset.submissions
        if s.user_id == guest.user_id
        and s.grade is not None
        and s.state in ("TURNED_IN", "RETURNED")
    }

    assert guest_results
    for _ in range(2):
        summary = run_sync("all")
        assert summary.status == "completed", summary.lines()
        [case] = _open(superuser, org, "unmatched_student")
    assert case["subject_key"] == f"classroom:student:{guest.user_id}"
    assert guest.email
    assert guest.email in case["message"]
    assert case["details"]["student"]["email"] == guest.email
    assert {r["submission_id"] for r in case["details"]["results"]} == guest_results

    # HR hires the guest: the roster brings an employee with their e-mail, the student matches.
    dataset.people.append(
        Person(
            zid="9199100",
            first_name=guest.given_name,
            last_name=guest.family_name,
            work_email=guest.email,
            dept_zid=dataset.departments[0].zid,
        )
    )
    assert run_sync("all").status == "completed"
    assert _open(superuser, org, "unmatched_student") == []
    assert guest_results <= set(results(superuser, org))
