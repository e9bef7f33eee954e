"""Audit trigger overhead on a single-row write: audit triggers on vs off (target <= 1.15).

    python bench/audit_overhead.py [--writes 400 --rounds 12]

In a scratch database (a throwaway cluster, or on the server of DATABASE_URL: see
bench/_cluster.py), one organisation with one employee and one training assignment. The write
is a single-row UPDATE of that assignment by primary key (minutes_spent + 1, so every write
really changes a column and writes one audit row), from one client session, as a prepared
statement. Two arms, alternated round by round in the same session:

    on   every trigger of app.training_assignments, the audit trigger audit_update included
    off  the same, with ONLY audit_update disabled (ALTER TABLE ... DISABLE TRIGGER audit_update)

The engine's own triggers on the table (status machine, counters, stats, events, updated_at)
stay enabled in both arms; the figure is the audit trail's share of a real write.

Three measures, each the median over the rounds of the mean time per write:

    per transaction  each write its own transaction (autocommit), commit included (the
                     headline ratio of the figure)
    per statement    the writes inside one open transaction (no commit): the server-side
                     cost of the statement alone, to show the trigger's own microseconds
    per API call     the same write as PostgREST makes it: one transaction with role
                     authenticated, the JWT claims of an hr_admin, app.pre_request(), then
                     api.update_assignment_status(assignment, 'in_progress', 1)

Prints the figures, the ratio, and the conditions (cluster settings that matter: fsync,
synchronous_commit; machine; rows).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo
from psycopg.rows import dict_row

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _cluster import machine, scratch_database, server_version

from compliance.db import acting_as, claims_for
from compliance.migrate import DEFAULT_DB_DIR, migrate

TARGET = 1.15
UPDATE = (
    "update app.training_assignments set minutes_spent = minutes_spent + 1"
    " where org_id = %s and id = %s"
)


API_CALL = "select api.update_assignment_status(%s, 'in_progress', 1)"


def setup(dsn: str) -> tuple[str, str, str]:
    """One organisation, employee, module, assignment and hr_admin; returns their ids."""
    org = str(uuid.uuid4())
    with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
        conn.execute(
            "insert into app.organizations (id, name, slug) values (%s, 'Bench', %s)",
            [org, f"bench-{org[:8]}"],
        )
        dept = conn.execute(
            "insert into app.departments (org_id, name) values (%s, 'General') returning id", [org]
        ).fetchone()
        emp = conn.execute(
            "insert into app.employees (org_id, email, first_name, last_name, department_id)"
            " values (%s, 'bench@bench.example', 'Ben', 'Ch', %s) returning id",
            [org, dept["id"] if dept else None],
        ).fetchone()
        module = conn.execute(
            "insert into app.training_modules (org_id, name, month_key, due_date)"
            " values (%s, 'Bench module', '2025-01', current_date + 30) returning id",
            [org],
        ).fetchone()
        assert emp is not None
        assert module is not None
        existing = conn.execute(
            "select id from app.training_assignments where org_id = %s and employee_id = %s"
            " and module_id = %s",
            [org, emp["id"], module["id"]],
        ).fetchone()
        if existing is None:
            existing = conn.execute(
                "insert into app.training_assignments (org_id, employee_id, module_id, due_date)"
                " values (%s, %s, %s, current_date + 30) returning id",
                [org, emp["id"], module["id"]],
            ).fetchone()
        assert existing is not None
        hr = conn.execute(
            "insert into app.app_users (org_id, email, display_name, app_role)"
            " values (%s, 'hr@bench.example', 'HR', 'hr_admin') returning id",
            [org],
        ).fetchone()
        assert hr is not None
        return org, str(existing["id"]), str(hr["id"])


def set_audit(admin: psycopg.Connection[Any], on: bool) -> None:
    action = "enable" if on else "disable"
    admin.execute(f"alter table app.training_assignments {action} trigger audit_update")


def timed_writes(conn: psycopg.Connection[Any], params: list[str], writes: int, mode: str) -> float:
    """Mean seconds per write."""
    if mode == "api":
        assignment, user = params[1], params[2]
        claims = claims_for(user)
        start = time.perf_counter()
        for _ in range(writes):
            with acting_as(
                conn, claims, "POST", "/rpc/update_assignment_status", search_path='"api", "public"'
            ) as cur:
                cur.execute(API_CALL, [assignment], prepare=True)
        return (time.perf_counter() - start) / writes
    params = params[:2]
    if mode == "transaction":
        start = time.perf_counter()
        for _ in range(writes):
            conn.execute(UPDATE, params, prepare=True)
        return (time.perf_counter() - start) / writes
    with conn.transaction():
        start = time.perf_counter()
        for _ in range(writes):
            conn.execute(UPDATE, params, prepare=True)
        elapsed = time.perf_counter() - start
    return elapsed / writes


def backend_cpu_ms(pid: int) -> float | None:
    """CPU time (ms) of a server process on this machine, None when it cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/sched").read_text().splitlines():
            if line.startswith("se.sum_exec_runtime"):
                return float(line.split(":", 1)[1])
    except (OSError, ValueError):
        pass
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(fields[11]) + int(fields[12])  # utime + stime
        return ticks * 1000.0 / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def measure(
    dsn: str, params: list[str], writes: int, rounds: int, mode: str
) -> dict[str, float | None]:
    """Median wall time per write (us) of each arm, and the backend's CPU time per write."""
    samples: dict[str, list[float]] = {"on": [], "off": []}
    cpu: dict[str, list[float]] = {"on": [], "off": []}
    # The API measure logs in as PostgREST does (authenticator), the others as the owner.
    client_dsn = make_conninfo(dsn, user="authenticator") if mode == "api" else dsn
    with (
        psycopg.connect(dsn, autocommit=True) as admin,
        psycopg.connect(client_dsn, autocommit=(mode != "api")) as conn,
    ):
        for arm in ("on", "off"):  # warm both plans and the caches
            set_audit(admin, arm == "on")
            timed_writes(conn, params, 50, mode)
        pid = conn.info.backend_pid
        for r in range(rounds):
            order = ("on", "off") if r % 2 == 0 else ("off", "on")
            for arm in order:
                set_audit(admin, arm == "on")
                before = backend_cpu_ms(pid)
                samples[arm].append(timed_writes(conn, params, writes, mode))
                after = backend_cpu_ms(pid)
                if before is not None and after is not None:
                    cpu[arm].append((after - before) * 1000.0 / writes)
        set_audit(admin, True)
    result: dict[str, float | None] = {
        arm: statistics.median(values) * 1e6 for arm, values in samples.items()
    }
    for arm, values in cpu.items():
        result[f"cpu_{arm}"] = statistics.median(values) if len(values) == rounds else None
    return result


def line(label: str, m: dict[str, float | None]) -> str:
    on, off = m["on"] or 0.0, m["off"] or 1.0
    text = f"  {label:<48} wall: on {on:7.1f} us, off {off:7.1f} us, ratio {on / off:.3f}"
    if m.get("cpu_on") is not None and m.get("cpu_off"):
        cpu_on, cpu_off = m["cpu_on"] or 0.0, m["cpu_off"] or 1.0
        text += (
            f"; server CPU: on {cpu_on:6.1f} us, off {cpu_off:6.1f} us,"
            f" ratio {cpu_on / cpu_off:.3f}"
        )
    return text


def conditions(dsn: str) -> dict[str, Any]:
    with psycopg.connect(dsn, row_factory=dict_row) as conn:
        settings = {
            r["name"]: r["setting"]
            for r in conn.execute(
                "select name, setting from pg_settings where name in"
                " ('fsync', 'synchronous_commit', 'shared_buffers', 'wal_level')"
            ).fetchall()
        }
        triggers = [
            r["tgname"]
            for r in conn.execute(
                "select tgname from pg_trigger where tgrelid = 'app.training_assignments'::regclass"
                " and not tgisinternal order by tgname"
            ).fetchall()
        ]
        audit_rows = conn.execute("select count(*) as n from audit.log").fetchone()
    return {
        "settings": settings,
        "triggers": triggers,
        "audit_rows": audit_rows["n"] if audit_rows else 0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writes", type=int, default=400, help="writes per arm per round")
    parser.add_argument("--rounds", type=int, default=12, help="rounds (arms alternate)")
    args = parser.parse_args()

    with scratch_database("bench_audit_overhead") as (dsn, where):
        migrate(dsn, DEFAULT_DB_DIR, echo=lambda _line: None)
        org, assignment, hr = setup(dsn)
        params = [org, assignment, hr]
        per_tx = measure(dsn, params, args.writes, args.rounds, "transaction")
        per_stmt = measure(dsn, params, args.writes, args.rounds, "statement")
        per_api = measure(dsn, params, args.writes, args.rounds, "api")
        info = conditions(dsn)
        version = server_version(dsn)

    ratio = (per_tx["on"] or 0.0) / (per_tx["off"] or 1.0)
    total = args.writes * args.rounds
    print("Audit trigger overhead on a single-row write (UPDATE of one training assignment by key)")
    print(line("per transaction (autocommit, commit included):", per_tx))
    print(line("per statement (inside one open transaction):", per_stmt))
    print(line("per API call (PostgREST-style transaction):", per_api))
    print(
        f"  headline (per transaction, wall): ratio {ratio:.3f},"
        f" target <= {TARGET}: {'met' if ratio <= TARGET else 'NOT met'}"
    )
    print("Conditions:")
    print(
        f"  {total} writes per arm per measure ({args.rounds} rounds x {args.writes},"
        f" arms alternated, median of round means), 1 client session, prepared statement;"
        " server CPU = the client's backend process (/proc), steadier than wall time on a"
        " shared machine; it leaves out WAL flushes and the client"
    )
    others = ", ".join(t for t in info["triggers"] if t != "audit_update")
    print(
        "  audit arm off = ALTER TABLE app.training_assignments DISABLE TRIGGER audit_update;"
        f" the other triggers stay on in both arms: {others}"
    )
    settings = info["settings"]
    print(
        f"  {version}; {where}; fsync={settings.get('fsync')},"
        f" synchronous_commit={settings.get('synchronous_commit')},"
        f" shared_buffers={settings.get('shared_buffers')} (8kB pages)"
    )
    print(
        f"  machine: {machine()}, shared with other work;"
        f" audit.log rows at the end: {info['audit_rows']}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
