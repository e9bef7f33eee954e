"""RLS overhead: a page of 100 rows of api.training_assignments, hr_admin vs the owner.

    python bench/rls_overhead.py [--employees 10000 --modules 100 --runs 200]

Builds (in a throwaway cluster, or a scratch database on the server of DATABASE_URL) one
organisation with employees x modules training assignments (default 10,000 x 100 =
1,000,000) and a small second organisation, then times the page a front end asks for:

    select * from api.training_assignments where <filter> order by due_date, id limit 100

as an hr_admin through the PostgREST-style transaction (compliance.db.acting_as: role
authenticated, JWT claims, app.pre_request(), read-only GET), against the same query by the
owner (superuser: RLS off) on app.training_assignments with the organisation filter written
out. Prints medians over the runs, their ratio (target <= 1.10), the server-side execution
times from EXPLAIN ANALYZE, and the hr_admin plan, where the identity helpers appear as
InitPlans (evaluated once per query, loops=1), not per row.

The bulk load runs with session_replication_role = replica (the database's rules, audit and
outbox triggers are skipped for the load only: they would add per-row work the figure is not
about); everything measured afterwards runs with every trigger and policy in place.
"""

# SQL here is built from this file's own constants; values travel as parameters.
# ruff: noqa: S608

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo
from psycopg.rows import dict_row

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _cluster import machine, scratch_database, server_version

from compliance.db import acting_as, claims_for
from compliance.migrate import DEFAULT_DB_DIR, migrate

SEARCH_PATH = '"api", "public"'  # PostgREST: db-schemas, then db-extra-search-path
TARGET = 1.10


def seq_uuid(prefix: str, n: str) -> str:
    """SQL for an ordered uuid (so the bulk load appends to the primary key index)."""
    return f"('{prefix}' || lpad(to_hex({n}), 12, '0'))::uuid"


def bulk_load(dsn: str, employees: int, modules: int) -> dict[str, Any]:
    org, other = uuid.uuid4(), uuid.uuid4()
    hr_user = uuid.uuid4()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("set session_replication_role = replica")
        for org_id, slug, n_emp, n_mod, emp_prefix, mod_prefix, asg_prefix in [
            (
                org,
                "bench-measured",
                employees,
                modules,
                "00000000-0000-4000-8000-",
                "00000000-0000-4000-9000-",
                "00000000-0000-4000-a000-",
            ),
            (
                other,
                "bench-other",
                max(1, employees // 100),
                max(1, modules // 10),
                "00000001-0000-4000-8000-",
                "00000001-0000-4000-9000-",
                "00000001-0000-4000-a000-",
            ),
        ]:
            conn.execute(
                "insert into app.organizations (id, name, slug, paper_size)"
                " values (%s, %s, %s, 'letter')",
                [org_id, slug.title(), slug],
            )
            conn.execute(
                "insert into app.departments (org_id, id, name) values (%s, %s, 'Clinic')",
                [org_id, org_id],
            )
            conn.execute(
                "insert into app.locations (org_id, id, name) values (%s, %s, 'Main')",
                [org_id, org_id],
            )
            conn.execute(
                f"""
                insert into app.employees (org_id, id, email, first_name, last_name, department_id,
                                           location_id, job_title, start_date)
                select %(org)s, {seq_uuid(emp_prefix, "g")}, 'e' || g || '@bench.test',
                       'First' || g, 'Last' || g, %(org)s, %(org)s, 'Staff',
                       date '2020-01-01' + g %% 1000
                from generate_series(1, %(n)s) g""".encode(),
                {"org": org_id, "n": n_emp},
            )
            conn.execute(
                f"""
                insert into app.training_modules (org_id, id, month_key, name, due_date)
                select %(org)s, {seq_uuid(mod_prefix, "g")},
                       to_char(date '2024-01-01' + (g %% 24) * interval '1 month', 'YYYY-MM'),
                       'Module ' || g, date '2024-01-31' + (g %% 24) * 30
                from generate_series(1, %(n)s) g""".encode(),
                {"org": org_id, "n": n_mod},
            )
            conn.execute(
                f"""
                insert into app.training_assignments (org_id, id, employee_id, module_id, due_date,
                                                     grace_days, status, completion_date, score,
                                                     exemption_reason)
                select %(org)s, {seq_uuid(asg_prefix, "(e - 1) * %(m)s + m")},
                       {seq_uuid(emp_prefix, "e")}, {seq_uuid(mod_prefix, "m")},
                       date '2024-01-01' + ((e * 7 + m * 37) %% 730), 7,
                       s.status::app.assignment_status,
                       case when s.status = 'completed' then timestamptz '2024-06-01' end,
                       case when s.status = 'completed' then 80 + (e + m) %% 21 end,
                       case when s.status = 'exempted' then 'bench exemption' end
                from generate_series(1, %(e)s) e
                cross join generate_series(1, %(m)s) m
                cross join lateral (select case
                    when (e * 31 + m * 17) %% 100 < 60 then 'completed'
                    when (e * 31 + m * 17) %% 100 < 72 then 'in_progress'
                    when (e * 31 + m * 17) %% 100 < 85 then 'not_started'
                    when (e * 31 + m * 17) %% 100 < 97 then 'overdue'
                    else 'exempted' end as status) s
                order by e, m""".encode(),
                {"org": org_id, "e": n_emp, "m": n_mod},
            )
        conn.execute(
            """insert into app.app_users (org_id, id, email, display_name, app_role)
                        values (%s, %s, 'hr@bench.test', 'HR Admin', 'hr_admin')""",
            [org, hr_user],
        )
        conn.execute("reset session_replication_role")
        for table in (
            "app.training_assignments",
            "app.employees",
            "app.training_modules",
            "app.app_users",
            "app.organizations",
        ):
            conn.execute(f"vacuum analyze {table}".encode())
        counts = conn.execute(
            "select count(*) filter (where org_id = %s), count(*) from app.training_assignments",
            [org],
        ).fetchone()
        employee = conn.execute(
            "select id from app.employees where org_id = %s order by id offset %s limit 1",
            [org, employees // 2],
        ).fetchone()
        columns = conn.execute(
            """select string_agg(quote_ident(attname), ', ' order by attnum) from pg_attribute
               where attrelid = 'api.training_assignments'::regclass and attnum > 0"""
        ).fetchone()
    assert counts is not None
    assert employee is not None
    assert columns is not None
    return {
        "org": org,
        "hr_user": hr_user,
        "measured": counts[0],
        "total": counts[1],
        "employee": employee[0],
        "columns": columns[0],
    }


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def measure(
    dsn: str,
    world: dict[str, Any],
    where: str,
    params: dict[str, Any],
    runs: int,
    warmup: int,
    budget: float,
) -> dict[str, float]:
    api_sql = (
        f"select * from api.training_assignments where {where} order by due_date, id limit 100"
    )
    owner_sql = (
        f"select {world['columns']} from app.training_assignments "
        f"where org_id = %(org)s and {where} order by due_date, id limit 100"
    )
    claims = claims_for(str(world["hr_user"]), email="hr@bench.test")
    try:
        api_conn = psycopg.connect(make_conninfo(dsn, user="authenticator"), row_factory=dict_row)
    except psycopg.OperationalError:
        api_conn = psycopg.connect(dsn, row_factory=dict_row)  # e.g. a password is needed
    owner_conn = psycopg.connect(dsn, row_factory=dict_row)
    owner_params = {**params, "org": world["org"]}
    api_stmt: list[float] = []
    api_request: list[float] = []
    owner_stmt: list[float] = []
    rows_seen: list[int] = []

    def run_api() -> None:
        started = time.perf_counter()
        with acting_as(
            api_conn, claims, "GET", "/training_assignments", search_path=SEARCH_PATH
        ) as cur:
            t0 = time.perf_counter()
            cur.execute(api_sql.encode(), params)
            rows_seen.append(len(cur.fetchall()))
            t1 = time.perf_counter()
        api_stmt.append(t1 - t0)
        api_request.append(time.perf_counter() - started)

    def run_owner() -> None:
        with owner_conn.transaction(), owner_conn.cursor() as cur:
            t0 = time.perf_counter()
            cur.execute(owner_sql.encode(), owner_params)
            rows_seen.append(len(cur.fetchall()))
            owner_stmt.append(time.perf_counter() - t0)

    order: list[Callable[[], None]] = [run_api, run_owner]
    deadline = time.monotonic() + budget
    warmup_left = warmup
    while len(api_stmt) < runs:
        for fn in order if len(api_stmt) % 2 == 0 else reversed(order):  # alternate the order
            fn()
        if warmup_left:
            warmup_left -= 1
            if not warmup_left or time.monotonic() > deadline - budget * 0.8:
                warmup_left = 0  # a slow query gets a short warm-up
                api_stmt.clear()
                api_request.clear()
                owner_stmt.clear()
        elif time.monotonic() > deadline and len(api_stmt) >= 5:
            break  # the time budget is spent: fewer runs for a slow query (printed)
    assert len(set(rows_seen)) == 1, (
        f"both queries must return the same page; saw {sorted(set(rows_seen))} rows"
    )
    assert rows_seen[0] > 0, "the page is empty: nothing to measure"

    def server_times(explain_runs: int) -> tuple[list[float], list[float]]:
        api_times: list[float] = []
        owner_times: list[float] = []
        for _ in range(explain_runs):
            with acting_as(
                api_conn, claims, "GET", "/training_assignments", search_path=SEARCH_PATH
            ) as cur:
                cur.execute(
                    f"explain (analyze, timing off, format json) {api_sql}".encode(), params
                )
                plan = cur.fetchone()["QUERY PLAN"][0]  # type: ignore[index]
                api_times.append((plan["Planning Time"] + plan["Execution Time"]) / 1000)
            with owner_conn.transaction(), owner_conn.cursor() as cur:
                cur.execute(
                    f"explain (analyze, timing off, format json) {owner_sql}".encode(), owner_params
                )
                plan = cur.fetchone()["QUERY PLAN"][0]  # type: ignore[index]
                owner_times.append((plan["Planning Time"] + plan["Execution Time"]) / 1000)
        return api_times, owner_times

    each = max(api_stmt) + max(owner_stmt)
    server_api, server_owner = server_times(max(3, min(runs // 5, int(budget / 4 / each))))
    with acting_as(
        api_conn, claims, "GET", "/training_assignments", search_path=SEARCH_PATH
    ) as cur:
        cur.execute(
            f"explain (analyze, costs off, timing off, summary off) {api_sql}".encode(), params
        )
        plan_lines = [r["QUERY PLAN"] for r in cur.fetchall()]
    api_conn.close()
    owner_conn.close()
    return {
        "api": median_ms(api_stmt),
        "owner": median_ms(owner_stmt),
        "request": median_ms(api_request),
        "server_api": median_ms(server_api),
        "server_owner": median_ms(server_owner),
        "plan": plan_lines,  # type: ignore[dict-item]
        "rows": rows_seen[0],
        "runs": len(api_stmt),
    }


def report(
    dsn: str,
    world: dict[str, Any],
    label: str,
    where_sql: str,
    params: dict[str, Any],
    args: argparse.Namespace,
) -> bool:
    result = measure(dsn, world, where_sql, params, args.runs, args.warmup, args.budget)
    ratio = result["api"] / result["owner"]
    server_ratio = result["server_api"] / result["server_owner"]
    print()
    print(f"{label} (where {where_sql}; {result['rows']} rows a page; {result['runs']} runs):")
    print(f"  hr_admin through the harness, statement: median {result['api']:.3f} ms")
    print(f"  owner with RLS off, statement:           median {result['owner']:.3f} ms")
    print(
        f"  ratio {ratio:.2f} (target <= {TARGET:.2f}: {'met' if ratio <= TARGET else 'NOT met'})"
    )
    print(
        f"  server side (EXPLAIN ANALYZE planning + execution): hr_admin "
        f"{result['server_api']:.3f} ms, owner {result['server_owner']:.3f} ms, "
        f"ratio {server_ratio:.2f}"
    )
    print(
        "  whole harness request (begin, set_config, pre_request, statement, commit): "
        f"median {result['request']:.3f} ms"
    )
    print("  hr_admin plan (the identity helpers are InitPlans, run once: loops=1):")
    for line in result["plan"]:  # type: ignore[attr-defined]
        marker = "  <--" if "InitPlan" in line else ""
        print(f"    {line}{marker}")
    return ratio <= TARGET


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--employees", type=int, default=10_000)
    parser.add_argument("--modules", type=int, default=100)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument(
        "--budget",
        type=float,
        default=25.0,
        help="seconds per query: a slow one gets fewer runs (default 25)",
    )
    parser.add_argument("--db-dir", type=Path, default=DEFAULT_DB_DIR)
    args = parser.parse_args()

    with scratch_database("bench_rls") as (dsn, where):
        started = time.monotonic()
        migrate(dsn, args.db_dir, echo=lambda _line: None)
        migrated = time.monotonic() - started
        started = time.monotonic()
        world = bulk_load(dsn, args.employees, args.modules)
        loaded = time.monotonic() - started
        print(
            "RLS overhead: a page of 100 rows of api.training_assignments, ordered by due_date, id"
        )
        print(
            f"  rows: {world['measured']:,} assignments in the measured organisation "
            f"({args.employees:,} employees x {args.modules} modules), {world['total']:,} "
            "in the table (a second, small organisation too)"
        )
        print(
            f"  clients: 1; runs: up to {args.runs} per query after {args.warmup} warm-up "
            f"(or {args.budget:.0f} s a query), "
            "alternating hr_admin and owner"
        )
        print(f"  machine: {machine()}; {server_version(dsn)}; {where}")
        print(
            f"  set-up: migrate {migrated:.1f} s; bulk load {loaded:.1f} s with "
            "session_replication_role = replica (rules, audit and outbox triggers skipped for "
            "the load only)"
        )
        print(
            "  hr_admin: compliance.db.acting_as (role authenticated, JWT claims, "
            "app.pre_request(), read-only), connected as authenticator"
        )
        print(
            "  owner: superuser (RLS off) on app.training_assignments with "
            "org_id = <the organisation> written out"
        )
        ok = True
        cases = [
            ("overdue list", "status = 'overdue'", {}),
            ("one employee", "employee_id = %(employee)s", {"employee": world["employee"]}),
        ]
        for label, where_sql, params in cases:
            ok = report(dsn, world, label, where_sql, params, args) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
