"""api.update_assignment_status through a PostgREST-style transaction vs a plain owner UPDATE.

    python bench/assignment_status.py [--clients 8 --seconds 15 --rounds 2 --employees 1000]

In a scratch database (a throwaway cluster, or on the server of DATABASE_URL: see
bench/_cluster.py), migrated from db/: one organisation, ``--employees`` employees x 10 modules
= the assignments (all in_progress), one HR admin. pgbench (``-M prepared``, ``--clients``
clients, 2 threads) runs two custom scripts, alternated round by round:

    api    bench/pgbench/assignment_status_api.sql, as role authenticator (PostgREST's login):
           BEGIN; set role authenticated + JWT claims + method/path/headers; app.pre_request();
           the RPC call as PostgREST 12 builds it (json_to_record, named arguments, JSON body)
           -> api.update_assignment_status(<random assignment>, 'in_progress', 1): rights check,
           the row locked and updated, the status machine trigger, the statement trigger
           (events, stats), the audit trigger; COMMIT
    plain  bench/pgbench/assignment_status_plain.sql, as the owner (superuser): BEGIN; UPDATE
           the same kind of row (status in_progress, minutes_spent + 1) by primary key; COMMIT
           (the table's triggers run for this writer too)

Each picks a random assignment among all of them, so clients rarely wait on the same row.
Prints calls/s of each arm (the best round), the ratio plain / api, the targets (>= 1,000
calls/s, ratio <= 2) and the conditions.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _cluster import machine, scratch_database, server_version

from compliance.localpg import find_bindir
from compliance.migrate import DEFAULT_DB_DIR, migrate

HERE = Path(__file__).resolve().parent
API_SCRIPT = HERE / "pgbench" / "assignment_status_api.sql"
PLAIN_SCRIPT = HERE / "pgbench" / "assignment_status_plain.sql"
MODULES = 10
TARGET_CALLS = 1000.0
TARGET_RATIO = 2.0


def setup(dsn: str, employees: int) -> tuple[str, str, int]:
    """The organisation, its people and assignments; returns (org id, HR user id, rows)."""
    org = str(uuid.uuid4())
    with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
        conn.execute(
            "insert into app.organizations (id, name, slug) values (%s, 'Bench', %s)",
            [org, f"bench-{org[:8]}"],
        )
        conn.execute("insert into app.departments (org_id, name) values (%s, 'General')", [org])
        conn.execute(
            "insert into app.training_modules (org_id, name, month_key, due_date)"
            " select %s, 'Module ' || g, '2025-01', current_date + 60"
            " from generate_series(1, %s) g",
            [org, MODULES],
        )
        conn.execute(
            "insert into app.employees (org_id, email, first_name, last_name, department_id)"
            " select %s, 'e' || g || '@bench.example', 'E' || g, 'Bench',"
            "        (select id from app.departments where org_id = %s)"
            " from generate_series(1, %s) g",
            [org, org, employees],
        )
        # Assignment ids follow the scripts' pattern 00000000-0000-4000-8000-<k>.
        conn.execute(
            "insert into app.training_assignments (org_id, id, employee_id, module_id, due_date)"
            " select %s, format('00000000-0000-4000-8000-%%s', lpad(x.k::text, 12, '0'))::uuid,"
            "        x.employee_id, x.module_id, current_date + 60"
            " from (select e.id as employee_id, m.id as module_id,"
            "              row_number() over (order by e.id, m.id) as k"
            "       from app.employees e cross join app.training_modules m"
            "       where e.org_id = %s and m.org_id = %s) x",
            [org, org, org],
        )
        conn.execute(
            "update app.training_assignments set status = 'in_progress' where org_id = %s", [org]
        )
        hr = conn.execute(
            "insert into app.app_users (org_id, email, display_name, app_role)"
            " values (%s, 'hr@bench.example', 'HR', 'hr_admin') returning id",
            [org],
        ).fetchone()
        rows = conn.execute(
            "select count(*) as n from app.training_assignments where org_id = %s", [org]
        ).fetchone()
        conn.execute("vacuum analyze")
    assert hr is not None
    assert rows is not None
    return org, str(hr["id"]), int(rows["n"])


def pgbench(
    dsn: str, user: str, script: Path, defines: dict[str, str], clients: int, seconds: int
) -> float:
    """Run one pgbench arm; return transactions per second (without connection time)."""
    params = conninfo_to_dict(dsn)
    cmd = [
        str(find_bindir() / "pgbench"),
        "-n",
        "-M",
        "prepared",
        "-c",
        str(clients),
        "-j",
        "2",
        "-T",
        str(seconds),
        "-h",
        str(params.get("host", "127.0.0.1")),
        "-p",
        str(params.get("port", 5432)),
        "-U",
        user,
        "-f",
        str(script),
    ]
    for name, value in defines.items():
        cmd += ["-D", f"{name}={value}"]
    cmd.append(str(params.get("dbname")))
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"pgbench failed ({script.name}):\n{done.stdout}\n{done.stderr}")
    match = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", done.stdout)
    failed = re.search(r"number of failed transactions: (\d+)", done.stdout)
    if match is None:
        raise SystemExit(f"no tps in pgbench output:\n{done.stdout}")
    if failed and int(failed.group(1)) > 0:
        raise SystemExit(f"pgbench reported failed transactions:\n{done.stdout}")
    return float(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=int, default=15, help="per arm and round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--employees", type=int, default=1000)
    args = parser.parse_args()

    with scratch_database("bench_assignment_status") as (dsn, where):
        migrate(dsn, DEFAULT_DB_DIR, echo=lambda _line: None)
        org, hr, rows = setup(dsn, args.employees)
        superuser = str(conninfo_to_dict(dsn).get("user") or "postgres")
        results: dict[str, list[float]] = {"api": [], "plain": []}
        for round_no in range(1, args.rounds + 1):
            api = pgbench(
                dsn,
                "authenticator",
                API_SCRIPT,
                {"rows": str(rows), "user_id": hr},
                args.clients,
                args.seconds,
            )
            plain = pgbench(
                dsn,
                superuser,
                PLAIN_SCRIPT,
                {"rows": str(rows), "org_id": org},
                args.clients,
                args.seconds,
            )
            results["api"].append(api)
            results["plain"].append(plain)
            print(f"round {round_no}: api {api:,.0f} calls/s, plain {plain:,.0f} updates/s")
        with psycopg.connect(dsn) as conn:
            settings = conn.execute(
                "select string_agg(name || '=' || setting, ', ' order by name) from pg_settings"
                " where name in ('fsync', 'synchronous_commit', 'shared_buffers')"
            ).fetchone()
            events = conn.execute("select count(*) from app.events").fetchone()
        api_best, plain_best = max(results["api"]), max(results["plain"])
        ratio = plain_best / api_best
        print()
        print(
            f"api.update_assignment_status (PostgREST-style transaction): {api_best:,.0f} calls/s"
            f"  [target >= {TARGET_CALLS:,.0f}: {'met' if api_best >= TARGET_CALLS else 'NOT met'}]"
        )
        print(f"plain owner UPDATE of the same row: {plain_best:,.0f} updates/s")
        print(
            f"ratio plain / api: {ratio:.2f}  [target <= {TARGET_RATIO:.0f}: "
            f"{'met' if ratio <= TARGET_RATIO else 'NOT met'}]"
        )
        print()
        print(
            f"conditions: {rows:,} assignments ({args.employees:,} employees x {MODULES} modules),"
            f" random row per transaction, {args.clients} clients, pgbench -M prepared -j 2,"
            f" {args.seconds} s per arm x {args.rounds} rounds (best round shown),"
            f" {events[0] if events else '?':,} events written"
        )
        print(
            f"            {where}; {server_version(dsn)}; {settings[0] if settings else ''};"
            f" machine: {machine()} shared with other work"
        )


if __name__ == "__main__":
    main()
