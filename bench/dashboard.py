"""api.dashboard() with 10,000 employees x 24 modules (240,000 assignments): p50 and p95.

    python bench/dashboard.py [--employees 10000 --modules 24 --calls 200 --load replica]

Builds (in a throwaway cluster, or a scratch database on the server of DATABASE_URL) one
organisation of 10 departments x 3 locations, 24 monthly modules (18 past due, one due in 3 days,
5 later), employees x modules assignments with realistic statuses (past modules mostly completed,
some exempted, some overdue; future ones open), 3 % of employees inactive, a year of daily
compliance snapshots and sync runs, and a small second organisation. Then calls

    select api.dashboard()

as an hr_admin through the PostgREST-style transaction (compliance.db.acting_as: role
authenticated, JWT claims, app.pre_request(), read-only GET, connected as authenticator), one
client, and prints p50/p95 (target p95 <= 50 ms) of the whole request and of the statement alone.

Load (--load triggers, the default): generate_series as the superuser, through every trigger of
the other parts (status machine, stats, audit, outbox, counters), in statements of 1,000
employees' assignments (about a minute for 240,000 on a shared 2-core machine). --load replica
skips the triggers for the load only (session_replication_role = replica) and then fills the
counters with app.rebuild_compliance_counters(): seconds instead of a minute, same figures.
Either way app.verify_compliance_counters() must come back empty, and the database is vacuumed,
analysed and checkpointed, before anything is timed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from dataclasses import dataclass
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
TARGET_P95_MS = 50.0


@dataclass
class Dataset:
    org: uuid.UUID
    hr_user: uuid.UUID
    employees: int
    assignments: int
    total_assignments: int
    snapshots: int
    sync_runs: int
    load_seconds: float
    load_mode: str


def _load_org(
    conn: psycopg.Connection[Any],
    org: uuid.UUID,
    slug: str,
    employees: int,
    modules: int,
    departments: int,
    locations: int,
    chunk: int | None,
) -> None:
    """One organisation's catalog, employees and assignments (server-side generate_series)."""
    conn.execute(
        # created 400 days ago: its records (and the year of snapshots below) begin then, so the
        # trend has its twelve months
        "insert into app.organizations (id, name, slug, created_at, paper_size)"
        " values (%s, %s, %s, now() - interval '400 days', 'letter')",
        [org, slug.replace("-", " ").title(), slug],
    )
    conn.execute(
        """insert into app.departments (org_id, name)
           select %s, 'Department ' || lpad(g::text, 2, '0') from generate_series(1, %s) g""",
        [org, departments],
    )
    conn.execute(
        """insert into app.locations (org_id, name)
                    select %s, 'Location ' || g from generate_series(1, %s) g""",
        [org, locations],
    )
    # Monthly modules: the 19th of 24 is due in 3 days, the 18 before it are past due.
    conn.execute(
        """
        insert into app.training_modules (org_id, name, month_key, due_date, estimated_minutes)
        select %(org)s, 'Module ' || lpad(g::text, 2, '0'),
               to_char(current_date + 3 + (g - %(due_soon)s) * interval '1 month', 'YYYY-MM'),
               (current_date + 3 + (g - %(due_soon)s) * interval '1 month')::date, 30
        from generate_series(1, %(n)s) g""",
        {"org": org, "n": modules, "due_soon": max(1, modules - 5)},
    )
    conn.execute(
        """
        with d as (select id, row_number() over (order by name) - 1 as n
                   from app.departments where org_id = %(org)s),
             l as (select id, row_number() over (order by name) - 1 as n
                   from app.locations where org_id = %(org)s)
        insert into app.employees (org_id, email, first_name, last_name, department_id,
                                   location_id, job_title, start_date, status)
        select %(org)s, 'e' || g || '@' || %(slug)s || '.test', 'First' || g, 'Last' || g,
               d.id, l.id, 'Staff', current_date - 900,
               case when g %% 33 = 0 then 'inactive' else 'active' end::app.employee_status
        from generate_series(1, %(n)s) g
        join d on d.n = g %% %(departments)s
        join l on l.n = (g / %(departments)s) %% %(locations)s""",
        {
            "org": org,
            "slug": slug,
            "n": employees,
            "departments": departments,
            "locations": locations,
        },
    )
    statement = """
        insert into app.training_assignments (org_id, employee_id, module_id, due_date, status,
                                              completion_date, score, exemption_reason)
        select e.org_id, e.id, m.id, m.due_date, s.status,
               case when s.status = 'completed' then m.due_date - 5 + time '10:00' end,
               case when s.status = 'completed' then 80 + h.r %% 21 end,
               case when s.status = 'exempted' then 'bench exemption' end
        from (select id, org_id from app.employees where org_id = %(org)s
              order by id offset %(offset)s limit %(limit)s) e
        cross join app.training_modules m
        cross join lateral (select abs(hashtext(e.id::text || m.id::text)) %% 100 as r) h
        cross join lateral (select case
            when m.due_date < current_date then
                case when h.r < 85 then 'completed' when h.r < 88 then 'exempted'
                     else 'overdue' end
            else case when h.r < 25 then 'completed' when h.r < 45 then 'in_progress'
                      else 'not_started' end
            end::app.assignment_status as status) s
        where m.org_id = %(org)s
        order by e.id, m.id"""
    step = chunk or employees
    for offset in range(0, employees, step):
        conn.execute(statement, {"org": org, "offset": offset, "limit": step})


def load_dataset(
    dsn: str,
    employees: int,
    modules: int,
    *,
    departments: int = 10,
    locations: int = 3,
    with_triggers: bool = False,
    snapshot_days: int = 365,
) -> Dataset:
    """Build the measured organisation (and a small second one); returns what was built."""
    org, other, hr_user = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    started = time.monotonic()
    with psycopg.connect(dsn, autocommit=True) as conn:
        if not with_triggers:
            conn.execute("set session_replication_role = replica")
        chunk = 1000 if with_triggers else None
        _load_org(conn, org, "bench-figures", employees, modules, departments, locations, chunk)
        _load_org(conn, other, "bench-other", max(10, employees // 100), modules, 2, 1, chunk)
        conn.execute(
            """insert into app.app_users (org_id, id, email, display_name, app_role)
                        values (%s, %s, 'hr@bench-figures.test', 'HR Admin', 'hr_admin')""",
            [org, hr_user],
        )
        # A year of sync runs: the roster (Zenefits) and results (Classroom) every day.
        conn.execute(
            """
            insert into app.sync_runs (org_id, type, source, status, started_at, completed_at,
                                       processed_count)
            select %s, t.type::app.sync_run_type, t.source::app.sync_source,
                   case when d %% 29 = 0 then 'failed' else 'completed' end::app.sync_run_status,
                   current_date - d + time '02:00', current_date - d + time '02:03', 100
            from generate_series(1, 365) d
            cross join (values ('employees', 'zenefits'),
                               ('completions', 'classroom')) t(type, source)""",
            [org],
        )
        conn.execute("reset session_replication_role")
        if not with_triggers:
            conn.execute("select app.rebuild_compliance_counters(null)")
        # Today's figures (the live counters) as a snapshot, then a year of them derived from it.
        conn.execute(
            """
            insert into app.compliance_snapshots (org_id, snapshot_date, department_id, location_id,
                active_employees, required_assignments, completed_assignments,
                overdue_assignments, exempted_assignments, compliance_rate)
            select %(org)s, current_date, g.department_id, g.location_id, g.active_employees,
                   g.required, g.completed, g.overdue, g.exempted,
                   app.compliance_rate_of(g.completed, g.required, g.exempted)
            from app.compliance_groups(%(org)s, current_date, 'live') g""",
            {"org": org},
        )
        conn.execute(
            """
            insert into app.compliance_snapshots (org_id, snapshot_date, department_id, location_id,
                active_employees, required_assignments, completed_assignments,
                overdue_assignments, exempted_assignments, compliance_rate)
            select s.org_id, current_date - d, s.department_id, s.location_id, s.active_employees,
                   s.required_assignments, x.completed, s.overdue_assignments,
                   s.exempted_assignments,
                   app.compliance_rate_of(x.completed, s.required_assignments,
                                          s.exempted_assignments)
            from app.compliance_snapshots s
            cross join generate_series(1, %s) d
            cross join lateral (select greatest(0, s.completed_assignments
                                                   - (s.completed_assignments * d / 1000))::bigint
                                       as completed) x
            where s.org_id = %s and s.snapshot_date = current_date""",
            [snapshot_days, org],
        )
        # The whole database, so that no autovacuum of what the load wrote (audit trail,
        # outbox, stats) competes with the timed calls.
        conn.execute("vacuum analyze")
        conn.execute("checkpoint")  # and no write-back of the load during the timed calls
        diff = conn.execute("select count(*) from app.verify_compliance_counters()").fetchone()
        if diff is None or diff[0] != 0:
            raise SystemExit(f"the counters do not match the rows ({diff}): not timing")
        row = conn.execute(
            """
            select (select count(*) from app.employees where org_id = %(org)s),
                   (select count(*) from app.training_assignments where org_id = %(org)s),
                   (select count(*) from app.training_assignments),
                   (select count(*) from app.compliance_snapshots where org_id = %(org)s),
                   (select count(*) from app.sync_runs where org_id = %(org)s)""",
            {"org": org},
        ).fetchone()
    assert row is not None
    return Dataset(
        org=org,
        hr_user=hr_user,
        employees=row[0],
        assignments=row[1],
        total_assignments=row[2],
        snapshots=row[3],
        sync_runs=row[4],
        load_seconds=time.monotonic() - started,
        load_mode="through every trigger, 1,000 employees' assignments per statement"
        if with_triggers
        else "session_replication_role = replica, then app.rebuild_compliance_counters()",
    )


def percentile(samples: list[float], pct: float) -> float:
    """Nearest-rank percentile of a list of seconds, in milliseconds."""
    ordered = sorted(samples)
    rank = max(1, round(pct / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1] * 1000


def time_calls(
    dsn: str,
    data: Dataset,
    query: str,
    path: str,
    calls: int,
    warmup: int,
) -> tuple[dict[str, float], Any, str]:
    """Call `query` as the HR admin through acting_as; returns stats (ms), last result, login."""
    claims = claims_for(str(data.hr_user), email="hr@bench-figures.test")
    try:
        conn = psycopg.connect(make_conninfo(dsn, user="authenticator"), row_factory=dict_row)
        login = "authenticator"
    except psycopg.OperationalError:
        conn = psycopg.connect(dsn, row_factory=dict_row)  # e.g. a password is needed
        login = "the DATABASE_URL role (authenticator needs a password)"
    request: list[float] = []
    statement: list[float] = []
    result: Any = None
    with conn:
        for i in range(warmup + calls):
            started = time.perf_counter()
            with acting_as(conn, claims, "GET", path, search_path=SEARCH_PATH) as cur:
                t0 = time.perf_counter()
                cur.execute(query.encode())
                row = cur.fetchone()
                t1 = time.perf_counter()
            done = time.perf_counter()
            if i >= warmup:
                request.append(done - started)
                statement.append(t1 - t0)
            result = row
    stats = {
        "request_p50": percentile(request, 50),
        "request_p95": percentile(request, 95),
        "request_mean": statistics.mean(request) * 1000,
        "request_max": max(request) * 1000,
        "statement_p50": percentile(statement, 50),
        "statement_p95": percentile(statement, 95),
    }
    return stats, result, login


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--employees", type=int, default=10_000)
    parser.add_argument("--modules", type=int, default=24)
    parser.add_argument("--calls", type=int, default=200, help="timed calls (at least 50)")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument(
        "--load",
        choices=("triggers", "replica"),
        default="triggers",
        help="through every trigger (default), or replica mode + app.rebuild_compliance_counters()",
    )
    parser.add_argument("--db-dir", type=Path, default=DEFAULT_DB_DIR)
    args = parser.parse_args()
    calls = max(50, args.calls)

    with scratch_database("bench_dashboard") as (dsn, where):
        started = time.monotonic()
        migrate(dsn, args.db_dir, echo=lambda _line: None)
        migrated = time.monotonic() - started
        triggers = args.load == "triggers"
        data = load_dataset(dsn, args.employees, args.modules, with_triggers=triggers)
        stats, result, login = time_calls(
            dsn, data, "select api.dashboard() as d", "/rpc/dashboard", calls, args.warmup
        )
        doc = result["d"]
        size = len(json.dumps(doc))
        met = stats["request_p95"] <= TARGET_P95_MS
        print("api.dashboard(): the whole dashboard of one organisation in one call")
        print(
            f"  rows: {data.assignments:,} assignments in the measured organisation "
            f"({data.employees:,} employees x {args.modules} modules, 10 departments x "
            f"3 locations, 3 % inactive), {data.total_assignments:,} in the table; "
            f"{data.snapshots:,} snapshot rows (a year), {data.sync_runs} sync runs"
        )
        print(
            f"  clients: 1; {calls} timed calls after {args.warmup} warm-up; "
            f"GET /rpc/dashboard as hr_admin via compliance.db.acting_as (role authenticated, "
            f"JWT claims, app.pre_request(), read-only), connected as {login}"
        )
        print(f"  machine: {machine()}; {server_version(dsn)}; {where}")
        print(
            f"  set-up: migrate {migrated:.1f} s; load {data.load_seconds:.1f} s "
            f"({data.load_mode}); counters verified against the rows"
        )
        print(f"  answer: {size:,} bytes of JSON; summary {json.dumps(doc['summary'])}")
        print(
            f"  whole request (begin, set_config, pre_request, statement, commit): "
            f"p50 {stats['request_p50']:.2f} ms, p95 {stats['request_p95']:.2f} ms "
            f"(mean {stats['request_mean']:.2f}, max {stats['request_max']:.2f})"
        )
        print(
            f"  statement alone: p50 {stats['statement_p50']:.2f} ms, "
            f"p95 {stats['statement_p95']:.2f} ms"
        )
        print(f"  target p95 <= {TARGET_P95_MS:.0f} ms: {'met' if met else 'NOT met'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
