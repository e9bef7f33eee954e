"""The cached figures of an ended day under concurrency: a completion back-dated to before that
day and the daily job caching that day, in two transactions that overlap, in both orders.
Whichever commits second must see the other's result, so that the cached day equals the
computation from the history.

Writers adjusting an organisation's cached days take its advisory lock shared;
app.snapshot_compliance takes it exclusive. Without it, the job caching the day from a snapshot
that does not see the uncommitted completion, and the writer adjusting a cached row it cannot see
yet, would each miss the other: the day would stay cached without the completion.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import date, timedelta

import psycopg
import pytest
from psycopg.rows import DictRow, dict_row

from tests.figures.test_history_api import noon, shift

Conn = psycopg.Connection[DictRow]


def make_org(su: Conn) -> tuple[str, str, date]:
    """An organisation of 10 days with one employee and one assignment due 8 days ago."""
    slug = f"cache-conc-{uuid.uuid4().hex[:8]}"
    org = su.execute(
        "insert into app.organizations (name, slug, timezone) values ('Cache', %s,"
        " 'Pacific/Kiritimati') returning id::text",
        [slug],
    ).fetchone()["id"]  # type: ignore[index]
    today = su.execute("select app.org_today(%s) as t", [org]).fetchone()["t"]  # type: ignore[index]
    module = su.execute(
        "insert into app.training_modules (org_id, name, month_key, due_date)"
        " values (%s, 'M', '2025-01', %s) returning id::text",
        [org, today - timedelta(days=8)],
    ).fetchone()["id"]  # type: ignore[index]
    employee = su.execute(
        "insert into app.employees (org_id, email, first_name, last_name)"
        " values (%s, %s, 'E', 'Test') returning id::text",
        [org, f"e@{slug}.example"],
    ).fetchone()["id"]  # type: ignore[index]
    assignment = su.execute(
        "insert into app.training_assignments (org_id, employee_id, module_id, due_date)"
        " values (%s, %s, %s, %s) returning id::text",
        [org, employee, module, today - timedelta(days=8)],
    ).fetchone()["id"]  # type: ignore[index]
    shift(su, org, 10)
    return org, assignment, today


def mismatches(su: Conn, org: str, day: date) -> int:
    row = su.execute(
        """with cache as (
               select department_id, location_id, active_employees::bigint,
                      required_assignments::bigint, completed_assignments::bigint,
                      overdue_assignments::bigint, exempted_assignments::bigint,
                      completed_recorded_later::bigint, corrected_later::bigint
               from app.compliance_snapshots where org_id = %(org)s and snapshot_date = %(d)s),
           history as (select * from app.compliance_groups_as_of(%(org)s, %(d)s))
           select (select count(*) from cache) as cached,
                  (select count(*) from ((table cache except table history)
                                         union all (table history except table cache)) x) as n""",
        {"org": org, "d": day},
    ).fetchone()
    assert row is not None
    assert row["cached"] >= 1
    return int(row["n"])


def wait_until_waiting(su: Conn, pid: int) -> None:
    """Until the backend `pid` waits on a lock (the other transaction holds it)."""
    for _ in range(600):
        row = su.execute(
            "select wait_event_type from pg_stat_activity where pid = %s", [pid]
        ).fetchone()
        if row is not None and row["wait_event_type"] == "Lock":
            return
        time.sleep(0.05)
    pytest.fail(f"backend {pid} never waited on a lock")


def in_thread(target: Callable[[], None]) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            target()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, errors


@pytest.mark.parametrize("first", ["completion", "job"])
def test_backdated_completion_and_the_daily_job(superuser: Conn, dsn: str, first: str) -> None:
    su = superuser
    org, assignment, today = make_org(su)
    day = today - timedelta(days=3)
    completed_at = noon(su, org, today - timedelta(days=5))
    writer = psycopg.connect(dsn, row_factory=dict_row)
    job = psycopg.connect(dsn, row_factory=dict_row)
    try:

        def complete() -> None:
            writer.execute(
                "update app.training_assignments set status = 'completed', score = 90,"
                " completion_date = %s where org_id = %s and id = %s",
                [completed_at, org, assignment],
            )

        def cache_day() -> None:
            job.execute("select app.snapshot_compliance(%s, %s)", [day, org])

        def complete_and_commit() -> None:
            complete()
            writer.commit()

        def cache_day_and_commit() -> None:
            cache_day()
            job.commit()

        if first == "completion":
            complete()
            thread, errors = in_thread(cache_day_and_commit)
            wait_until_waiting(su, job.info.backend_pid)
            writer.commit()
        else:
            cache_day()
            thread, errors = in_thread(complete_and_commit)
            wait_until_waiting(su, writer.info.backend_pid)
            job.commit()
        thread.join(timeout=60)
        assert not thread.is_alive()
        assert errors == []
    finally:
        writer.close()
        job.close()
    cached = su.execute(
        "select completed_assignments, overdue_assignments, completed_recorded_later"
        " from app.compliance_snapshots where org_id = %s and snapshot_date = %s"
        " and department_id is null and location_id is null",
        [org, day],
    ).fetchone()
    assert cached is not None
    assert (
        cached["completed_assignments"],
        cached["overdue_assignments"],
        cached["completed_recorded_later"],
    ) == (1, 0, 1)
    assert mismatches(su, org, day) == 0
