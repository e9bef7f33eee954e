"""Classroom grading as teachers use it, against the fake Classroom: an attempt is a turn-in
(the TURNED_IN entries of the submission's history), never a regrade; a completed result
regraded below the passing score, or whose grade is removed, never fails the sync: the change
is recorded, the completion stays as evidence and a case opens in the exception report; module
due dates keep Classroom's due time and zone."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import psycopg

from tests.fakes import FakeUpstreams
from tests.fakes.dataset import Dataset, Submission
from tests.sync.conftest import RunSync
from tests.sync.helpers import Org, exception_cases


def _assignment(conn: psycopg.Connection[Any], org: Org, sub: Submission) -> dict[str, Any]:
    row = conn.execute(
        "select a.id, a.status::text as status, a.score, a.attempts, a.classroom_grade,"
        " a.completion_date, a.is_late"
        " from app.training_assignments a where a.org_id = %s and a.classroom_submission_id = %s",
        [org.id, sub.id],
    ).fetchone()
    assert row is not None, sub.id
    return dict(row)


def _pick(dataset: Dataset, state: str, index: int) -> Submission:
    """The index-th submission in a state, of an active employee, on course work worth 100 points
    (so a grade is the score)."""
    works = {w.id: w for w in dataset.coursework}
    active = {
        st.user_id
        for st, person in zip(dataset.students, dataset.people, strict=False)
        if person.status == "active"
    }
    picked = [
        s
        for s in dataset.submissions
        if s.state == state
        and (state != "RETURNED" or (s.grade or 0) >= 85)  # RETURNED: a passing grade
        and s.user_id in active
        and works[s.cw_id].max_points == 100
    ]
    return picked[index]


def _completed(dataset: Dataset, index: int = 0) -> Submission:
    return _pick(dataset, "RETURNED", index)


def _ungraded(dataset: Dataset, index: int = 0) -> Submission:
    return _pick(dataset, "CREATED", index)


def test_regrades_are_not_attempts(
    run_sync: RunSync,
    superuser: psycopg.Connection[Any],
    org: Org,
    dataset: Dataset,
    upstreams: FakeUpstreams,
) -> None:
    assert run_sync("all").status == "completed"
    sub = _ungraded(dataset)
    sub.state, sub.turned_in = "RETURNED", "2025-03-10T15:00:00.000Z"
    grades: list[float] = []
    for grade in (79.5, 60, 70, 90):  # one turn-in, regraded three times; passing is 80
        sub.earlier_grades, sub.grade = list(grades), grade
        grades.append(grade)
        upstreams.classroom.touch()
        summary = run_sync("classroom")
        assert summary.status == "completed", summary.lines()
        got = _assignment(superuser, org, sub)
        assert got["attempts"] == 1, (grade, got)
        assert (got["status"] == "completed") == (grade >= 80), (grade, got)
    assert _assignment(superuser, org, sub)["score"] == Decimal("90.00")


def test_a_second_turn_in_is_a_second_attempt(
    run_sync: RunSync,
    superuser: psycopg.Connection[Any],
    org: Org,
    dataset: Dataset,
    upstreams: FakeUpstreams,
) -> None:
    assert run_sync("all").status == "completed"
    sub = _ungraded(dataset, 1)
    sub.state, sub.turned_in, sub.grade = "RETURNED", "2025-03-10T15:00:00.000Z", 50
    upstreams.classroom.touch()
    assert run_sync("classroom").status == "completed"
    first = _assignment(superuser, org, sub)
    assert first["attempts"] == 1
    assert first["status"] != "completed"  # a failed attempt (overdue: due in 2025)
    sub.earlier_turn_ins, sub.turned_in = [sub.turned_in], "2025-03-12T15:00:00.000Z"
    sub.earlier_grades, sub.grade = [50], 85
    upstreams.classroom.touch()
    assert run_sync("classroom").status == "completed"
    got = _assignment(superuser, org, sub)
    assert (got["attempts"], got["status"], got["score"]) == (2, "completed", Decimal("85.00"))


def test_a_completed_result_regraded_below_passing_stays_completed_with_a_case(
    run_sync: RunSync,
    superuser: psycopg.Connection[Any],
    org: Org,
    dataset: Dataset,
    upstreams: FakeUpstreams,
) -> None:
    assert run_sync("all").status == "completed"
    sub = _completed(dataset)
    before = _assignment(superuser, org, sub)
    assert before["status"] == "completed"
    original = sub.grade
    assert original is not None
    sub.earlier_grades, sub.grade = [original], 55
    upstreams.classroom.touch()

    for _ in range(2):  # every later sync too: completed, never partial
        summary = run_sync("classroom")
        assert summary.status == "completed", summary.lines()
        after = _assignment(superuser, org, sub)
        assert (after["status"], after["score"], after["completion_date"]) == (
            "completed",
            before["score"],
            before["completion_date"],
        )  # the completion stands as evidence
        assert after["classroom_grade"] == Decimal("55.00")  # the change is recorded
        [case] = exception_cases(superuser, org, "regrade_below_passing")
        assert (case["subject_key"], case["assignment_id"], case["resolved_at"]) == (
            sub.id,
            before["id"],
            None,
        )
        assert Decimal(str(case["details"]["new_score"])) == Decimal("55.00")

    # The teacher puts a passing grade back: the result follows and the case closes itself.
    sub.earlier_grades, sub.grade = [original, 55], 96
    upstreams.classroom.touch()
    assert run_sync("classroom").status == "completed"
    assert _assignment(superuser, org, sub)["score"] == Decimal("96.00")
    [case] = exception_cases(superuser, org, "regrade_below_passing")
    assert case["resolved_at"] is not None


def test_a_removed_grade_keeps_the_completion_and_opens_a_case(
    run_sync: RunSync,
    superuser: psycopg.Connection[Any],
    org: Org,
    dataset: Dataset,
    upstreams: FakeUpstreams,
) -> None:
    assert run_sync("all").status == "completed"
    sub = _completed(dataset, 1)
    before = _assignment(superuser, org, sub)
    sub.grade = None
    upstreams.classroom.touch()

    summary = run_sync("classroom")

    assert summary.status == "completed", summary.lines()
    after = _assignment(superuser, org, sub)
    assert (after["status"], after["score"], after["completion_date"]) == (
        "completed",
        before["score"],
        before["completion_date"],
    )
    assert after["classroom_grade"] is None
    [case] = exception_cases(superuser, org, "grade_removed")
    assert (case["subject_key"], case["assignment_id"], case["resolved_at"]) == (
        sub.id,
        before["id"],
        None,
    )


def test_module_due_dates_keep_classroom_due_time_and_zone(
    run_sync: RunSync,
    superuser: psycopg.Connection[Any],
    org: Org,
    dataset: Dataset,
    upstreams: FakeUpstreams,
) -> None:
    superuser.execute(
        "update app.organizations set timezone = 'America/Detroit' where id = %s", [org.id]
    )
    midnight, evening = dataset.coursework[0], dataset.coursework[1]
    midnight.due, midnight.due_time = (2026, 3, 10), (0, 0)  # 00:00 UTC: 19:00/20:00 the day before
    evening.due, evening.due_time = (2026, 11, 1), (23, 59)  # 23:59 UTC: 18:59 the same day
    upstreams.classroom.touch()

    assert run_sync("all").status == "completed"

    due = {
        r["classroom_coursework_id"]: (r["due_date"], r["classroom_due_at"])
        for r in superuser.execute(
            "select classroom_coursework_id, due_date, classroom_due_at from app.training_modules"
            " where org_id = %s",
            [org.id],
        ).fetchall()
    }
    assert due[midnight.id][0] == date(2026, 3, 9)
    assert due[midnight.id][1] == datetime(2026, 3, 10, 0, 0, tzinfo=UTC)
    assert due[evening.id][0] == date(2026, 11, 1)
