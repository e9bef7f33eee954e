"""audit.verify_chain() rows per second, and how long sealing takes.

    python bench/verify_chain.py [--rows 200000 --batch 20000]

In a scratch database (a throwaway cluster, or on the server of DATABASE_URL: see
bench/_cluster.py), one organisation gets --rows audit rows shaped like the trail's real rows
(row_update of a training assignment: old/new values of two columns, changed_fields, actor,
employee), committed in batches of --batch rows, one transaction each. Then:

    seal     audit.seal(org): chains every row (sha256 over each row's canonical bytes)
    verify   audit.verify_chain(org): seals (nothing left), then recomputes every hash from its
             row and checks every link, the order and that no row in the sealed range is missing
    verify from a checkpoint, full (p_full => true): the same plus the checkpoint comparison
    incremental seal of 100 new rows, and an incremental verify from the previous checkpoint

Prints rows per second for each, and the conditions.
"""

# SQL here is built from this file's own constants; values travel as parameters.

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path

import psycopg
from psycopg.rows import dict_row

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _cluster import machine, scratch_database, server_version

from compliance.migrate import DEFAULT_DB_DIR, migrate

LOAD = """
insert into audit.log (org_id, occurred_at, actor_user_id, actor_role, db_role, event_type,
                       table_name, op, entity_id, employee_id, old_values, new_values,
                       changed_fields)
select %(org)s, now() - make_interval(secs => (%(rows)s::bigint - i)), %(user)s, 'hr_admin',
       'authenticated', 'row_update', 'training_assignments', 'UPDATE', gen_random_uuid()::text,
       %(employee)s,
       jsonb_build_object('status', 'in_progress', 'minutes_spent', i %% 90),
       jsonb_build_object('status', 'completed', 'minutes_spent', i %% 90 + 5),
       '{status,minutes_spent}'
from generate_series(%(first)s::bigint, %(last)s::bigint) i
"""


def load(dsn: str, org: str, rows: int, batch: int) -> float:
    start = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        user, employee = str(uuid.uuid4()), str(uuid.uuid4())
        for first in range(1, rows + 1, batch):
            last = min(rows, first + batch - 1)
            conn.execute(
                LOAD,
                {
                    "org": org,
                    "rows": rows,
                    "user": user,
                    "employee": employee,
                    "first": first,
                    "last": last,
                },
            )
    return time.perf_counter() - start


def timed(dsn: str, query: str, params: list[object]) -> tuple[float, list[dict[str, object]]]:
    with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
        start = time.perf_counter()
        rows = conn.execute(query, params).fetchall()
        return time.perf_counter() - start, rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=20_000)
    args = parser.parse_args()
    n = args.rows

    with scratch_database("bench_verify_chain") as (dsn, where):
        migrate(dsn, DEFAULT_DB_DIR, echo=lambda _line: None)
        org = str(uuid.uuid4())
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(
                "insert into app.organizations (id, name, slug) values (%s, 'Bench', %s)",
                [org, f"bench-{org[:8]}"],
            )
            conn.execute("select audit.seal()")  # the organisation's own insert row
            conn.execute("vacuum analyze audit.log")
        load_s = load(dsn, org, n, args.batch)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("vacuum analyze audit.log")

        seal_s, sealed = timed(dsn, "select audit.seal(%s) as n", [org])
        sealed_n = int(sealed[0]["n"])  # type: ignore[call-overload]
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("vacuum analyze audit.chain")
            chain_n = conn.execute(
                "select count(*) from audit.chain where org_id = %s", [org]
            ).fetchone()
        total = int(chain_n[0]) if chain_n else 0
        verify_s, problems = timed(dsn, "select * from audit.verify_chain(%s)", [org])
        _, cp = timed(dsn, "select seq, hash from audit.checkpoint(%s)", [org])
        full_s, full_problems = timed(
            dsn,
            "select * from audit.verify_chain(%s, %s, %s, true)",
            [org, cp[0]["seq"], cp[0]["hash"]],
        )
        load(dsn, org, 100, 100)
        inc_seal_s, _ = timed(dsn, "select audit.seal(%s)", [org])
        inc_verify_s, inc_problems = timed(
            dsn, "select * from audit.verify_chain(%s, %s, %s)", [org, cp[0]["seq"], cp[0]["hash"]]
        )
        version = server_version(dsn)
        with psycopg.connect(dsn) as conn:
            size = conn.execute(
                "select pg_size_pretty(pg_total_relation_size('audit.log')),"
                " pg_size_pretty(pg_total_relation_size('audit.chain'))"
            ).fetchone()

    print("audit.verify_chain() and audit.seal()")
    print(f"  seal:   {sealed_n} rows in {seal_s:.2f} s = {sealed_n / seal_s:,.0f} rows/s")
    print(
        f"  verify: {total} chain entries in {verify_s:.2f} s = {total / verify_s:,.0f} rows/s"
        f" ({len(problems)} problems)"
    )
    print(
        f"  verify against a checkpoint, full: {full_s:.2f} s = {total / full_s:,.0f} rows/s"
        f" ({len(full_problems)} problems)"
    )
    print(
        f"  incremental: seal of 100 new rows {inc_seal_s * 1000:.1f} ms, verify from the"
        f" last checkpoint {inc_verify_s * 1000:.1f} ms ({len(inc_problems)} problems)"
    )
    print("Conditions:")
    print(
        f"  {n} audit rows of one organisation (row_update shape, two changed columns),"
        f" loaded in {load_s:.1f} s in batches of {args.batch} committed transactions;"
        f" audit.log {size[0] if size else '?'}, audit.chain {size[1] if size else '?'}"
    )
    print(
        f"  {version}; {where}; machine: {machine()}, shared with other work;"
        " one session, single-threaded SQL (no parallel query)"
    )
    return 0 if not problems and not full_problems and not inc_problems else 1


if __name__ == "__main__":
    raise SystemExit(main())
