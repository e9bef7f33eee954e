"""api.compliance_rate() with 1,000,000 assignments: target <= 10 ms.

    python bench/compliance_rate.py [--employees 41667 --modules 24 --calls 200 --load triggers]

Builds the data set of bench/dashboard.py (10 departments x 3 locations, 24 monthly modules,
realistic statuses, 3 % inactive employees) at 41,667 employees x 24 modules = 1,000,008
assignments, in a throwaway cluster or a scratch database on the server of DATABASE_URL, and
calls, as an hr_admin through the PostgREST-style transaction (compliance.db.acting_as: role
authenticated, JWT claims, app.pre_request(), read-only GET, connected as authenticator), one
client:

    select api.compliance_rate()                     -- the organisation
    select api.compliance_rate(department => <id>)   -- one department

printing p50/p95 of the whole request and of the statement. For scale it also times, a few
times, what the rate costs without the counters: the same figure recomputed from the rows
(owner, RLS off), and checks that both give the same number.

Load: as in bench/dashboard.py, but --load replica is the default here (the triggers are skipped
for the load only, then app.rebuild_compliance_counters() fills the counters from the rows,
verified): through every trigger (--load triggers) a million assignments take several minutes
on a shared 2-core machine, and how the rows arrived does not change what a read costs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _cluster import machine, scratch_database, server_version
from dashboard import load_dataset, time_calls

from compliance.migrate import DEFAULT_DB_DIR, migrate

TARGET_MS = 10.0

RECOUNT = """
    select round(100.0 * count(*) filter (where a.status = 'completed')
                 / nullif(count(*) filter (where a.status <> 'exempted'), 0), 2)
    from app.training_assignments a
    join app.employees e on e.org_id = a.org_id and e.id = a.employee_id
    where a.org_id = %s and a.is_required and e.status = 'active'"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--employees", type=int, default=41_667)
    parser.add_argument("--modules", type=int, default=24)
    parser.add_argument("--calls", type=int, default=200, help="timed calls (at least 50)")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--recounts", type=int, default=5, help="timed recounts from the rows")
    parser.add_argument(
        "--load",
        choices=("triggers", "replica"),
        default="replica",
        help="replica mode + app.rebuild_compliance_counters() (default), or "
        "through every trigger (minutes)",
    )
    parser.add_argument("--db-dir", type=Path, default=DEFAULT_DB_DIR)
    args = parser.parse_args()
    calls = max(50, args.calls)

    with scratch_database("bench_rate") as (dsn, where):
        started = time.monotonic()
        migrate(dsn, args.db_dir, echo=lambda _line: None)
        migrated = time.monotonic() - started
        data = load_dataset(
            dsn,
            args.employees,
            args.modules,
            with_triggers=args.load == "triggers",
            snapshot_days=30,
        )
        with psycopg.connect(dsn) as conn:
            row = conn.execute(
                """select id from app.departments where org_id = %s
                                  order by name limit 1""",
                [data.org],
            ).fetchone()
            assert row is not None
            department = row[0]
            counters = conn.execute(
                "select count(*) from app.compliance_counters where org_id = %s", [data.org]
            ).fetchone()
            recount_times: list[float] = []
            recounted: Decimal | None = None
            for _ in range(max(1, args.recounts)):
                t0 = time.perf_counter()
                got = conn.execute(RECOUNT, [data.org]).fetchone()
                recount_times.append(time.perf_counter() - t0)
                recounted = got[0] if got else None
        org_stats, org_result, login = time_calls(
            dsn,
            data,
            "select api.compliance_rate() as r",
            "/rpc/compliance_rate",
            calls,
            args.warmup,
        )
        dept_stats, _dept_result, _ = time_calls(
            dsn,
            data,
            f"select api.compliance_rate(department => '{department}') as r",
            "/rpc/compliance_rate",
            calls,
            args.warmup,
        )
        rate = org_result["r"]
        recount_ms = statistics.median(recount_times) * 1000
        met = org_stats["request_p95"] <= TARGET_MS and dept_stats["request_p95"] <= TARGET_MS
        print("api.compliance_rate(): the organisation's (or a department's) compliance rate")
        print(
            f"  rows: {data.assignments:,} assignments in the measured organisation "
            f"({data.employees:,} employees x {args.modules} modules, 10 departments x "
            f"3 locations, 3 % inactive), {data.total_assignments:,} in the table; "
            f"{counters[0] if counters else '?'} counter rows"
        )
        print(
            f"  clients: 1; {calls} timed calls per case after {args.warmup} warm-up; "
            f"GET /rpc/compliance_rate as hr_admin via compliance.db.acting_as (role "
            f"authenticated, JWT claims, app.pre_request(), read-only), connected as {login}"
        )
        print(f"  machine: {machine()}; {server_version(dsn)}; {where}")
        print(
            f"  set-up: migrate {migrated:.1f} s; load {data.load_seconds:.1f} s "
            f"({data.load_mode}); counters verified against the rows"
        )
        print(
            f"  answer: {rate} (recomputed from the rows: {recounted}; "
            f"{'same' if rate == recounted else 'DIFFERENT'})"
        )
        for label, stats in (("organisation", org_stats), ("one department", dept_stats)):
            print(
                f"  {label}: whole request p50 {stats['request_p50']:.2f} ms, "
                f"p95 {stats['request_p95']:.2f} ms (max {stats['request_max']:.2f}); "
                f"statement p50 {stats['statement_p50']:.2f} ms, "
                f"p95 {stats['statement_p95']:.2f} ms"
            )
        print(
            f"  without the counters (recount from the rows, owner, RLS off): median "
            f"{recount_ms:.1f} ms over {len(recount_times)} runs; ratio to the counters' "
            f"statement p50: {recount_ms / max(org_stats['statement_p50'], 1e-6):.0f}x"
        )
        print(
            f"  target <= {TARGET_MS:.0f} ms (p95 of the whole request): "
            f"{'met' if met else 'NOT met'}"
        )
    return 0 if met and rate == recounted else 1


if __name__ == "__main__":
    sys.exit(main())
