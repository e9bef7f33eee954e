"""CSV export of 1,000,000 assignment rows through the web app, against `psql \\copy` of the
same query as the same user, in the same run.

    python bench/web_export.py [--rows 1000000] [--audit-rows 200000]

Builds a throwaway cluster, loads one organisation (20,000 employees x 50 modules = 1,000,000
assignments by default; bulk-loaded with triggers off), starts `compliance web` as its own
process, then runs once each: `curl` of GET /export/compliance.csv (time to first byte, total
time, bytes) and `psql` with the caller's role and claims doing `\\copy (the export's query)`.
Prints rows/s, MB/s, TTFB, the server's peak RSS (VmHWM) and the ratio to psql.
Targets: >= 0.8 of psql's throughput, peak RSS <= 150 MB.

With ``--audit-rows N`` (e.g. ``--rows 1000 --audit-rows 200000`` for that part alone): N audit
entries (4 in 5 updates of an assignment, 1 in 5 whole-row inserts; half by a person, half by the
sync worker) and GET /export/audit.csv against psql of the same query, and against psql of the raw
columns (JSON as stored) that the audit CSV wrote before it was made readable.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
import uuid

import psycopg
from psycopg.conninfo import conninfo_to_dict
from web_common import WebProcess, machine, start_cluster, token

from web.exports import audit_select, compliance_select
from web.filters import AuditFilters, ComplianceFilters, Resolved

MODULES = 50


def load(dsn: str, rows: int) -> tuple[uuid.UUID, uuid.UUID, str, str]:
    employees = max(1, rows // MODULES)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("set session_replication_role = replica")  # bulk load: triggers off
        org = conn.execute(
            "insert into app.organizations (name, slug, paper_size)"
            " values ('Bench Medical', 'bench-medical', 'letter') returning id"
        ).fetchone()[0]
        conn.execute(
            "insert into app.departments (org_id, name)"
            " select %s, 'Department ' || g from generate_series(1, 10) g",
            [org],
        )
        conn.execute(
            "insert into app.locations (org_id, name)"
            " select %s, l from unnest(array['Ann Arbor', 'Wixom', 'Plymouth']) l",
            [org],
        )
        conn.execute(
            """
            insert into app.employees (org_id, email, first_name, last_name, department_id,
                                       location_id, job_title, start_date)
            select %(org)s, 'person' || g || '@bench.test', 'First' || g, 'Last' || (g %% 997),
                   (select id from app.departments where org_id = %(org)s
                    order by name offset (g %% 10) limit 1),
                   (select id from app.locations where org_id = %(org)s
                    order by name offset (g %% 3) limit 1),
                   'Staff', date '2020-01-01' + (g %% 1000)
            from generate_series(1, %(n)s) g
            """,
            {"org": org, "n": employees},
        )
        conn.execute(
            "insert into app.training_modules (org_id, name, month_key, due_date)"
            " select %s, 'Module ' || g, '2025-' || lpad(((g %% 12) + 1)::text, 2, '0'),"
            " date '2025-01-31' + g * 7 from generate_series(1, %s) g",
            [org, MODULES],
        )
        conn.execute(
            """
            insert into app.training_assignments (org_id, employee_id, module_id, due_date,
                                                  status, completion_date, score, attempts,
                                                  grace_days)
            select e.org_id, e.id, m.id, m.due_date,
                   s.status::app.assignment_status,
                   case when s.status = 'completed' then timestamptz '2025-06-01 10:00+00' end,
                   case when s.status = 'completed' then 91.5 end,
                   case when s.status = 'completed' then 1 else 0 end,
                   7
            from app.employees e
            cross join app.training_modules m
            cross join lateral (select (array['completed', 'completed', 'in_progress',
                                              'not_started', 'overdue'])
                                       [1 + abs(hashtext(e.id::text || m.id::text)) %% 5]
                                       as status) s
            where e.org_id = %(org)s and m.org_id = %(org)s
            """,
            {"org": org},
        )
        user = conn.execute(
            "insert into app.app_users (org_id, email, display_name, app_role)"
            " values (%s, 'hr@bench.test', 'Bench HR', 'hr_admin') returning id",
            [org],
        ).fetchone()[0]
        conn.execute("analyze")
        count = conn.execute(
            "select count(*) from app.training_assignments where org_id = %s", [org]
        ).fetchone()[0]
        today = conn.execute("select app.org_today(%s)", [org]).fetchone()[0]
        resolved = Resolved(
            organization_id=org,
            organization_name="Bench",
            timezone="America/Detroit",
            today=today,
        )
        query = compliance_select(ComplianceFilters(), resolved).as_string(conn)
        typed = compliance_select(ComplianceFilters(), resolved, csv=False).as_string(conn)
    print(f"loaded {count:,} assignments ({employees:,} employees x {MODULES} modules)")
    return org, user, query, typed


RAW_AUDIT = (
    "select id, occurred_at, actor_user_id, actor_role, event_type, table_name, op, entity_id,"
    " employee_id, changed_fields, details, old_values, new_values from api.audit_log"
    " order by occurred_at, id"
)


def load_audit(dsn: str, org: uuid.UUID, user: uuid.UUID, entries: int) -> str:
    """``entries`` audit rows for the organisation; returns the audit export's query."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("set session_replication_role = replica")  # bulk load: triggers off
        conn.execute(
            """
            insert into audit.log (org_id, occurred_at, actor_user_id, actor_role, db_role,
                                   event_type, table_name, op, entity_id, employee_id,
                                   changed_fields, old_values, new_values)
            select a.org_id, timestamptz '2025-06-01 10:00+00' + g * interval '1 second',
                   case when g %% 2 = 0 then %(user)s end,
                   case when g %% 2 = 0 then 'hr_admin' else 'sync_worker' end,
                   case when g %% 2 = 0 then 'authenticated' else 'sync_worker' end,
                   case when g %% 5 = 0 then 'row_insert' else 'row_update' end,
                   'training_assignments',
                   case when g %% 5 = 0 then 'INSERT' else 'UPDATE' end,
                   a.id::text, a.employee_id,
                   case when g %% 5 <> 0 then '{status,completion_date,score,attempts}'::text[] end,
                   case when g %% 5 <> 0 then jsonb_build_object('status', 'overdue',
                        'completion_date', null, 'score', null, 'attempts', 0) end,
                   case when g %% 5 = 0 then to_jsonb(a)
                        else jsonb_build_object('status', 'completed', 'completion_date',
                             timestamptz '2025-06-01 10:00+00' + g * interval '1 second',
                             'score', 91.5, 'attempts', 1) end
            from generate_series(1, %(n)s) g
            join lateral (select * from app.training_assignments x where x.org_id = %(org)s
                          offset (g %% 1000) limit 1) a on true
            """,
            {"org": org, "user": user, "n": entries},
        )
        conn.execute("analyze audit.log")
        today = conn.execute("select app.org_today(%s)", [org]).fetchone()[0]
        resolved = Resolved(
            organization_id=org, organization_name="Bench", timezone="America/Detroit", today=today
        )
        query = audit_select(AuditFilters(), resolved).as_string(conn)
    print(f"loaded {entries:,} audit entries")
    return query


def run_curl(
    base: str, jwt_token: str, path: str = "/export/compliance.csv"
) -> tuple[float, float, int]:
    out = subprocess.run(
        [
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-H",
            f"Authorization: Bearer {jwt_token}",
            "-w",
            "%{http_code} %{time_starttransfer} %{time_total} %{size_download}",
            base + path,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    if out[0] != "200":
        raise RuntimeError(f"export answered {out[0]}")
    return float(out[1]), float(out[2]), int(out[3])


def run_psql(dsn: str, user: uuid.UUID, query: str) -> tuple[float, int]:
    params = conninfo_to_dict(dsn)
    claims = json.dumps({"sub": str(user), "role": "authenticated"})
    started = time.monotonic()
    done = subprocess.run(
        [
            "psql",
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            str(params["host"]),
            "-p",
            str(params["port"]),
            "-U",
            "web_app",
            "-d",
            str(params["dbname"]),
            "-c",
            "set role authenticated",
            "-c",
            "set timezone = 'America/Detroit'",
            "-c",
            "set datestyle = 'ISO, YMD'",
            "-c",
            f"do $$begin perform set_config('request.jwt.claims', '{claims}', false);"
            " perform app.pre_request(); end$$",
            "-c",
            f"\\copy ({query}) to pstdout with (format csv, header)",
        ],
        capture_output=True,
        check=True,
    )
    return time.monotonic() - started, len(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--audit-rows", type=int, default=0, help="also time the audit CSV")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    _cluster, dsn = start_cluster()
    org, user, query, typed = load(dsn, args.rows)
    audit_query = load_audit(dsn, org, user, args.audit_rows) if args.audit_rows else None
    web = WebProcess(dsn)
    rss_idle = web.status("VmRSS")
    jwt_token = token(user)
    ttfb, total, size = run_curl(web.base, jwt_token)
    peak = web.status("VmHWM")
    psql_seconds, psql_bytes = run_psql(dsn, user, query)
    typed_seconds, typed_bytes = run_psql(dsn, user, typed)
    if audit_query is not None:
        a_ttfb, a_total, a_size = run_curl(web.base, jwt_token, "/export/audit.csv")
        a_psql, _a_psql_bytes = run_psql(dsn, user, audit_query)
        a_raw, a_raw_bytes = run_psql(dsn, user, RAW_AUDIT)
    web.stop()
    rows = args.rows
    mb = size / 1e6
    print(
        f"web  GET /export/compliance.csv: {rows:,} rows, {mb:.1f} MB in {total:.2f} s -> "
        f"{rows / total:,.0f} rows/s, {mb / total:.1f} MB/s;"
        f" time to first byte {ttfb * 1000:.0f} ms"
    )
    print(
        f"psql \\copy of the same query as the same user: {psql_bytes / 1e6:.1f} MB in "
        f"{psql_seconds:.2f} s -> {rows / psql_seconds:,.0f} rows/s, "
        f"{psql_bytes / 1e6 / psql_seconds:.1f} MB/s"
    )
    ratio = psql_seconds / total
    print(
        f"ratio web/psql throughput: {ratio:.2f} (target >= 0.80: "
        f"{'met' if ratio >= 0.8 else 'NOT met'})"
    )
    print(
        f"server peak RSS (VmHWM): {peak / 1024:.1f} MB (idle before the export "
        f"{rss_idle / 1024:.1f} MB; target <= 150 MB: {'met' if peak <= 150 * 1024 else 'NOT met'})"
    )
    print(
        f"psql \\copy of the same rows without the dialect's formatting (COPY's own t/f and"
        f" offsets): {typed_bytes / 1e6:.1f} MB in {typed_seconds:.2f} s -> the dialect costs"
        f" {psql_seconds / typed_seconds:.2f}x its time"
    )
    if psql_bytes != size:
        print(f"note: sizes differ (web {size} bytes, psql {psql_bytes} bytes)")
    if audit_query is not None:
        n = args.audit_rows
        print(
            f"web  GET /export/audit.csv: {n:,} entries, {a_size / 1e6:.1f} MB in {a_total:.2f} s"
            f" -> {n / a_total:,.0f} entries/s; time to first byte {a_ttfb * 1000:.0f} ms"
        )
        print(
            f"psql \\copy of the same query: {a_psql:.2f} s -> ratio web/psql"
            f" {a_psql / a_total:.2f};"
            f" of the raw columns (JSON as stored, {a_raw_bytes / 1e6:.1f} MB): {a_raw:.2f} s ->"
            f" readable text costs {a_psql / a_raw:.1f}x the raw read"
        )
    with open("/proc/loadavg") as f:
        print(f"load average after: {' '.join(f.read().split()[:3])}")
    print(
        "conditions: one run each, curl and psql write to /dev/null on the same machine; "
        "the server is `compliance web` (uvicorn, 1 process) as role web_app; RLS applies to both"
    )


if __name__ == "__main__":
    main()
