"""The compliance counters under concurrency: an employee's move and a change to one of their
assignments, in two transactions that overlap, in both orders. Whichever commits second must
see the other's result, so that app.verify_compliance_counters() stays empty (no lost count).

The assignment trigger takes FOR SHARE on the employee row (then reads it in a new statement), so
the employee's UPDATE and the assignment change serialise: without the lock, the first scenario
leaves the assignment's new status counted in the department the employee just left; reading the
employee in the locking statement itself, the second one counted the change twice (an
EvalPlanQual re-check of that query returned the wrong rows).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import psycopg
import pytest
from psycopg.rows import DictRow, dict_row

Conn = psycopg.Connection[DictRow]


@dataclass
class World:
    org: str
    employee: str
    assignment: str
    departments: list[str]


@pytest.fixture
def world(superuser: psycopg.Connection[DictRow]) -> World:
    su = superuser
    slug = f"fig-conc-{uuid.uuid4().hex[:8]}"
    row = su.execute(
        "insert into app.organizations (name, slug) values ('Conc', %s) returning id::text",
        [slug],
    ).fetchone()
    assert row is not None
    org = row["id"]
    departments = []
    for name in ("One", "Two"):
        dept = su.execute(
            "insert into app.departments (org_id, name) values (%s, %s) returning id::text",
            [org, name],
        ).fetchone()
        assert dept is not None
        departments.append(dept["id"])
    module = su.execute(
        """insert into app.training_modules (org_id, name, month_key, due_date)
           values (%s, 'M', '2025-01', app.org_today(%s) + 30) returning id::text""",
        [org, org],
    ).fetchone()
    employee = su.execute(
        """insert into app.employees (org_id, email, first_name, last_name, department_id)
           values (%s, %s, 'E', 'Test', %s) returning id::text""",
        [org, f"e@{slug}.example", departments[0]],
    ).fetchone()
    assert module is not None
    assert employee is not None
    assignment = su.execute(
        """insert into app.training_assignments (org_id, employee_id, module_id, due_date)
           values (%s, %s, %s, app.org_today(%s) + 30) returning id::text""",
        [org, employee["id"], module["id"], org],
    ).fetchone()
    assert assignment is not None
    return World(org, employee["id"], assignment["id"], departments)


@pytest.fixture
def connections(dsn: str) -> Iterator[tuple[Conn, Conn]]:
    first = psycopg.connect(dsn, row_factory=dict_row)
    second = psycopg.connect(dsn, row_factory=dict_row)
    for conn in (first, second):
        conn.execute("set lock_timeout = '20s'")
        conn.commit()
    try:
        yield first, second
    finally:
        first.close()
        second.close()


def overlap(
    hold: Callable[[], None],
    holder: psycopg.Connection[DictRow],
    blocked: Callable[[], None],
) -> bool:
    """Run `hold` (left uncommitted), then `blocked` in a thread, then commit the holder.

    Returns whether `blocked` was still waiting when the holder committed.
    """
    errors: list[BaseException] = []

    def run() -> None:
        try:
            blocked()
        except BaseException as exc:  # reported to the main thread
            errors.append(exc)

    hold()
    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(0.5)
    waited = thread.is_alive()
    holder.commit()
    thread.join(timeout=30)
    assert not thread.is_alive(), "the second transaction never finished"
    if errors:
        raise errors[0]
    return waited


def differences(su: psycopg.Connection[DictRow], org: str) -> list[dict[str, object]]:
    return su.execute("select * from app.verify_compliance_counters(%s)", [org]).fetchall()


def test_assignment_change_then_employee_move(
    world: World,
    connections: tuple[Conn, Conn],
    superuser: Conn,
) -> None:
    changer, mover = connections

    def change() -> None:
        changer.execute(
            """update app.training_assignments set status = 'in_progress'
               where org_id = %s and id = %s""",
            [world.org, world.assignment],
        )

    def move() -> None:
        mover.execute(
            "update app.employees set department_id = %s where org_id = %s and id = %s",
            [world.departments[1], world.org, world.employee],
        )
        mover.commit()

    waited = overlap(change, changer, move)
    assert waited, "the move waits for the assignment change (FOR SHARE on the employee)"
    assert differences(superuser, world.org) == [], str(differences(superuser, world.org))
    row = superuser.execute(
        """select department_id::text, in_progress_count from app.compliance_counters
           where org_id = %s and required_count <> 0""",
        [world.org],
    ).fetchall()
    assert row == [{"department_id": world.departments[1], "in_progress_count": 1}]


def test_employee_move_then_assignment_change(
    world: World,
    connections: tuple[Conn, Conn],
    superuser: Conn,
) -> None:
    changer, mover = connections

    def move() -> None:
        mover.execute(
            "update app.employees set department_id = %s where org_id = %s and id = %s",
            [world.departments[1], world.org, world.employee],
        )

    def change() -> None:
        changer.execute(
            """update app.training_assignments set status = 'in_progress'
               where org_id = %s and id = %s""",
            [world.org, world.assignment],
        )
        changer.commit()

    waited = overlap(move, mover, change)
    assert waited, "the assignment change waits for the move (FOR SHARE on the employee)"
    assert differences(superuser, world.org) == [], str(differences(superuser, world.org))
    row = superuser.execute(
        """select department_id::text, in_progress_count from app.compliance_counters
           where org_id = %s and required_count <> 0""",
        [world.org],
    ).fetchall()
    assert row == [{"department_id": world.departments[1], "in_progress_count": 1}]
