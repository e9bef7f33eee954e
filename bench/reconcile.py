"""Figures: the assignment reconciliation (db/functions/152_reconcile.sql) at 10,000 employees.

An organisation of 10,000 active employees in 5 departments of 2,000, 24 modules (2 required of
new hires, every department requiring 4 by rule) is imported in one INSERT (the go-live import:
every assignment created, due never in the past). Then, each in its own transaction:

1. a new department rule for one department of 2,000 (target <= 2 s);
2. 1,000 employees moved to another department in one UPDATE, the statement the Zenefits merge
   issues for a roster change (target <= 5 s), against the same UPDATE of a column that reconciles
   nothing (sync bookkeeping) in the same run.

    python bench/reconcile.py [employees]
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import psycopg
from sync_common import conditions, database

RULE_TARGET_SECONDS = 2.0
MOVE_TARGET_SECONDS = 5.0
DEPARTMENTS = 5
MODULES = 24


def timed(dsn: str, work: Callable[[psycopg.Connection], object]) -> tuple[float, object]:
    with psycopg.connect(dsn) as conn:
        started = time.perf_counter()
        result = work(conn)
        conn.commit()
        return time.perf_counter() - started, result


def assignments(conn: psycopg.Connection, org: str) -> tuple[int, int]:
    row = conn.execute(
        "select count(*), count(*) filter (where is_required) from app.training_assignments"
        " where org_id = %s",
        [org],
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def main() -> None:
    employees = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    per_department = employees // DEPARTMENTS
    moved = per_department // 2
    with database() as dsn:
        with psycopg.connect(dsn, autocommit=True) as conn:
            org = str(
                conn.execute(
                    "insert into app.organizations (name, slug) values ('Bench', 'bench-reconcile')"
                    " returning id"
                ).fetchone()[0]
            )  # type: ignore[index]
            conn.execute(
                "insert into app.departments (org_id, name)"
                " select %s, 'D' || i from generate_series(0, %s - 1) i",
                [org, DEPARTMENTS],
            )
            conn.execute(
                "insert into app.training_modules (org_id, name, month_key, due_date,"
                " required_for_new_hires, grace_period_days)"
                " select %s, 'M' || i, '2026-' || lpad((1 + i %% 12)::text, 2, '0'),"
                " date '2026-01-31' + i * 30, i < 2, 7 from generate_series(0, %s - 1) i",
                [org, MODULES],
            )
            # Every department requires 4 modules (M2..M21), from the start of the year.
            conn.execute(
                "insert into app.department_training_requirements (org_id, department_id,"
                " module_id, grace_days, effective_start)"
                " select %s, d.id, m.id, 14, date '2026-01-01'"
                " from app.departments d join app.training_modules m on m.org_id = d.org_id"
                " where d.org_id = %s"
                " and substr(m.name, 2)::int between 2 + 4 * substr(d.name, 2)::int"
                "                                and 5 + 4 * substr(d.name, 2)::int",
                [org, org])  # fmt: skip

        def go_live(conn: psycopg.Connection) -> object:
            return conn.execute(
                "insert into app.employees (org_id, email, first_name, last_name, start_date,"
                " department_id)"
                " select %s, 'e' || i || '@bench.example', 'E' || i, 'Bench',"
                " date '2010-01-01' + (i %% 5000), (select d.id from app.departments d"
                "   where d.org_id = %s and d.name = 'D' || (i %% %s))"
                " from generate_series(0, %s - 1) i",
                [org, org, DEPARTMENTS, employees]).rowcount  # fmt: skip

        go_live_seconds, _ = timed(dsn, go_live)
        with psycopg.connect(dsn) as conn:
            after_import = assignments(conn, org)
            cases = conn.execute(
                "select count(*) from app.assignment_exceptions where org_id = %s", [org]
            ).fetchone()[0]  # type: ignore[index]

        def new_rule(conn: psycopg.Connection) -> object:
            return conn.execute(
                "insert into app.department_training_requirements (org_id, department_id,"
                " module_id, grace_days, effective_start)"
                " select %s, d.id, m.id, 14, date '2026-01-01'"
                " from app.departments d, app.training_modules m"
                " where d.org_id = %s and d.name = 'D0' and m.org_id = %s and m.name = 'M23'",
                [org, org, org]).rowcount  # fmt: skip

        with psycopg.connect(dsn) as conn:
            before_rule = assignments(conn, org)
        rule_seconds, _ = timed(dsn, new_rule)
        with psycopg.connect(dsn) as conn:
            after_rule = assignments(conn, org)

        # (the same 1,000 employees of D1 in both statements: ordered by id)
        bookkeeping_sql = (
            "update app.employees set last_synced_at = now() where id in ("
            " select e.id from app.employees e join app.departments d on d.id = e.department_id"
            " where e.org_id = %s and d.name = 'D1' order by e.id limit %s)"
        )
        move_sql = (
            "update app.employees set department_id ="
            " (select id from app.departments where org_id = %s and name = 'D2') where id in ("
            " select e.id from app.employees e join app.departments d on d.id = e.department_id"
            " where e.org_id = %s and d.name = 'D1' order by e.id limit %s)"
        )

        def bookkeeping(conn: psycopg.Connection) -> object:
            return conn.execute(bookkeeping_sql, [org, moved]).rowcount

        def move(conn: psycopg.Connection) -> object:
            return conn.execute(move_sql, [org, org, moved]).rowcount

        baseline_seconds, _ = timed(dsn, bookkeeping)
        with psycopg.connect(dsn) as conn:
            before_move = assignments(conn, org)
        move_seconds, moved_rows = timed(dsn, move)
        with psycopg.connect(dsn) as conn:
            after_move = assignments(conn, org)

    print("Assignment reconciliation (bench/reconcile.py)")
    print(
        f"  conditions: {employees:,} active employees in {DEPARTMENTS} departments of "
        f"{per_department:,}, {MODULES} modules (2 required of new hires, 4 department rules per"
    )
    print("              department), audit and figures triggers on; " + conditions())
    print(
        f"  go-live import: {employees:,} employees in one INSERT: {go_live_seconds:.2f} s; "
        f"{after_import[0]:,} assignments created, {cases:,} overdue_on_arrival cases"
    )
    rule_met = "met" if rule_seconds <= RULE_TARGET_SECONDS else "NOT met"
    print(
        f"  new department rule for {per_department:,} employees: {rule_seconds:.2f} s; "
        f"{after_rule[0] - before_rule[0]:,} assignments created; target <= "
        f"{RULE_TARGET_SECONDS:.0f} s: {rule_met}"
    )
    released = before_move[1] - after_move[1] + (after_move[0] - before_move[0])
    print(
        f"  department move of {moved_rows:,} employees in one UPDATE: {move_seconds:.2f} s; "
        f"{after_move[0] - before_move[0]:,} assignments created, {released:,} released; target"
        f" <= {MOVE_TARGET_SECONDS:.0f} s: "
        f"{'met' if move_seconds <= MOVE_TARGET_SECONDS else 'NOT met'}"
    )
    print(
        f"  the same UPDATE of a bookkeeping column (nothing to reconcile): "
        f"{baseline_seconds:.2f} s; ratio move/bookkeeping {move_seconds / baseline_seconds:.1f}"
    )


if __name__ == "__main__":
    main()
