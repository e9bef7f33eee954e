"""Training record and course roster exports through the web app.

    python bench/web_records.py [--runs 5] [--modules 4] [--attendees 2000]

Builds a throwaway cluster with the demo organisation (`compliance db seed-demo`), then adds:
- a veteran employee with five years of monthly training: --modules module series x 60 months
  (one module per series and month, as Classroom's monthly course work makes them), one completed
  cycle each, every sixth completed late, every tenth corrected, a few exempted;
- a module with --attendees completions (as many new employees, in twelve monthly cycles) and
  some who did not complete.
Starts `compliance web` as its own process and times, as the HR admin, end to end over HTTP:
GET /export/training-record/{veteran}.pdf and .csv, GET /export/roster/{module}.pdf and .csv.
Prints the first (cold) request and the median of the following ones, and the SQL alone
(api.training_record / api.course_roster as the HR admin) for comparison.
Targets: training-record PDF <= 1 s; roster PDF of 2,000 completions <= 2 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any

import httpx
import psycopg
from web_common import WebProcess, machine, start_cluster, token

from compliance.seed import seed_demo


def build(conn: psycopg.Connection[Any], modules: int, attendees: int) -> dict[str, Any]:
    org, hr = conn.execute(
        "select u.org_id, u.id from app.app_users u where u.app_role = 'hr_admin'"
        " order by u.email limit 1"
    ).fetchone()
    dept = conn.execute(
        "select id from app.departments where org_id = %s order by name limit 1", [org]
    ).fetchone()[0]
    loc = conn.execute(
        "select id from app.locations where org_id = %s order by name limit 1", [org]
    ).fetchone()[0]
    veteran = conn.execute(
        "insert into app.employees (org_id, email, first_name, last_name, department_id,"
        " location_id, job_title, start_date) values (%s, 'vera.veteran@bench.test', 'Vera',"
        " 'Veteran', %s, %s, 'Dental Hygienist', '2019-12-01') returning id",
        [org, dept, loc],
    ).fetchone()[0]
    # module series x 60 months, Jan 2020 .. Dec 2024
    conn.execute(
        "insert into app.training_modules (org_id, name, month_key, due_date, validity_days,"
        " grace_period_days)"
        " select %s, format('Series %%s %%s', s, to_char(d, 'YYYY-MM')), to_char(d, 'YYYY-MM'),"
        " (d + interval '1 month - 1 day')::date, case when s = 1 then 365 end, 0"
        " from generate_series(1, %s) s,"
        " generate_series('2020-01-01'::date, '2024-12-01'::date, interval '1 month') d",
        [org, modules],
    )
    conn.execute(
        "insert into app.training_assignments (org_id, employee_id, module_id, due_date, status,"
        " completion_date, score, attempts)"
        " select m.org_id, %s, m.id, m.due_date, 'completed',"
        " m.due_date - 5 + (case when row_number() over (order by m.due_date, m.name) %% 6 = 0"
        "   then 9 else 0 end) + time '10:30', 80 + (row_number() over () %% 20), 1"
        " from app.training_modules m where m.org_id = %s and m.name like 'Series %%'",
        [veteran, org],
    )
    conn.execute(
        "insert into app.completion_corrections (org_id, assignment_id, employee_id, kind,"
        " previous_status, previous_completion_date, previous_score, attended, completion_date,"
        " score, reason, corrected_by)"
        " select a.org_id, a.id, a.employee_id, 'corrected', 'completed', a.completion_date"
        " + interval '1 day', a.score - 5, true, a.completion_date, a.score,"
        " 'Sign-in sheet shows the earlier day', %s"
        " from (select a.*, row_number() over (order by a.due_date) n"
        "       from app.training_assignments a where a.org_id = %s and a.employee_id = %s) a"
        " where a.n %% 10 = 0",
        [hr, org, veteran],
    )
    # the roster: one module, --attendees completions in twelve monthly cycles, plus absentees
    module = conn.execute(
        "insert into app.training_modules (org_id, name, month_key, due_date, grace_period_days,"
        " content_summary, trainer, trainer_qualifications) values (%s, 'Bloodborne Pathogens',"
        " '2025-01', '2025-01-31', 0, 'Exposure control plan, PPE, hepatitis B vaccination,"
        " post-exposure evaluation and follow-up.', 'Dana Reyes, RN',"
        " 'Registered nurse; OSHA 501 authorised trainer') returning id",
        [org],
    ).fetchone()[0]
    absent = max(attendees // 20, 1)
    conn.execute(
        "insert into app.employees (org_id, email, first_name, last_name, department_id,"
        " location_id, job_title)"
        " select %s, format('attendee%%s@bench.test', i), 'Attendee', format('Number %%s', i),"
        " %s, %s, case when i %% 3 = 0 then 'Medical Assistant' else 'Registered Nurse' end"
        " from generate_series(1, %s) i",
        [org, dept, loc, attendees + absent],
    )
    conn.execute(
        "insert into app.training_assignments (org_id, employee_id, module_id, due_date, status,"
        " completion_date, score, attempts)"
        " select e.org_id, e.id, %s,"
        " ('2025-01-31'::date + make_interval(months => (n %% 12)::int))::date,"
        " case when n <= %s then 'completed' else 'overdue' end::app.assignment_status,"
        " case when n <= %s then '2025-01-20'::date + make_interval(months => (n %% 12)::int)"
        "   + make_interval(mins => (n %% 600)::int) end,"
        " case when n <= %s then 80 + (n %% 21) end, case when n <= %s then 1 else 0 end"
        " from (select e.*, row_number() over (order by e.email) n from app.employees e"
        "       where e.org_id = %s and e.email like 'attendee%%@bench.test') e",
        [module, attendees, attendees, attendees, attendees, org],
    )
    cycles = conn.execute(
        "select count(*) from app.training_assignments where org_id = %s and employee_id = %s",
        [org, veteran],
    ).fetchone()[0]
    done = conn.execute(
        "select count(*) filter (where status = 'completed'), count(*)"
        " from app.training_assignments where org_id = %s and module_id = %s",
        [org, module],
    ).fetchone()
    return {
        "org": org,
        "hr": hr,
        "veteran": veteran,
        "module": module,
        "cycles": cycles,
        "completions": done[0],
        "roster_rows": done[1],
    }


def sql_seconds(dsn: str, hr: Any, query: str, target: Any, runs: int) -> float:
    times: list[float] = []
    with psycopg.connect(dsn) as conn:
        for _ in range(runs):
            with conn.transaction():
                conn.execute(
                    "select set_config('request.jwt.claims', %s, true),"
                    " set_config('role', 'authenticated', true)",
                    [f'{{"sub": "{hr}", "role": "authenticated"}}'],
                )
                started = time.monotonic()
                conn.execute(query, [target]).fetchone()
                times.append(time.monotonic() - started)
                conn.execute("reset role")
    return statistics.median(times)


def timed(web: WebProcess, path: str, headers: dict[str, str], runs: int) -> dict[str, float]:
    times: list[float] = []
    size = 0
    for _ in range(runs):
        started = time.monotonic()
        response = httpx.get(web.base + path, headers=headers, timeout=120)
        times.append(time.monotonic() - started)
        if response.status_code != 200:
            raise RuntimeError(f"{path} answered {response.status_code}: {response.text}")
        size = len(response.content)
    warm = times[1:] or times
    return {
        "first": times[0],
        "median": statistics.median(warm),
        "worst": max(warm),
        "kb": size / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="requests per export (first is cold)")
    parser.add_argument("--modules", type=int, default=4, help="module series of the veteran")
    parser.add_argument("--attendees", type=int, default=2000, help="completions of the roster")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    _cluster, dsn = start_cluster()
    with psycopg.connect(dsn) as conn:
        seed_demo(conn)
        conn.commit()
        world = build(conn, args.modules, args.attendees)
        conn.commit()
    print(
        f"data: demo organisation + a veteran with {world['cycles']} cycles "
        f"({args.modules} module series x 60 months, 1 in 10 corrected); a module with "
        f"{world['completions']} completions in 12 cycles ({world['roster_rows']} assignments)"
    )
    sql_record = sql_seconds(
        dsn, world["hr"], "select api.training_record(employee_id => %s)", world["veteran"], 5
    )
    sql_roster = sql_seconds(
        dsn, world["hr"], "select api.course_roster(module_id => %s)", world["module"], 5
    )
    web = WebProcess(dsn)
    headers = {"Authorization": f"Bearer {token(world['hr'])}"}
    results = {
        "training-record PDF": timed(
            web, f"/export/training-record/{world['veteran']}.pdf", headers, args.runs
        ),
        "training-record CSV": timed(
            web, f"/export/training-record/{world['veteran']}.csv", headers, args.runs
        ),
        "roster PDF": timed(web, f"/export/roster/{world['module']}.pdf", headers, args.runs),
        "roster CSV": timed(web, f"/export/roster/{world['module']}.csv", headers, args.runs),
    }
    web.stop()
    for name, r in results.items():
        print(
            f"{name}: first {r['first']:.2f} s, then median {r['median']:.2f} s "
            f"(worst {r['worst']:.2f} s) over {args.runs - 1} runs; {r['kb']:.0f} kB"
        )
    print(
        f"SQL alone (median of 5, as the HR admin): api.training_record {sql_record * 1000:.0f} ms,"
        f" api.course_roster {sql_roster * 1000:.0f} ms"
    )
    record_worst = results["training-record PDF"]["worst"]
    roster_worst = results["roster PDF"]["worst"]
    print(
        f"target training-record PDF <= 1 s: {'met' if record_worst <= 1 else 'NOT met'} "
        f"(worst warm {record_worst:.2f} s); roster PDF <= 2 s: "
        f"{'met' if roster_worst <= 2 else 'NOT met'} (worst warm {roster_worst:.2f} s)"
    )
    load = os.getloadavg()
    print(
        "conditions: as the demo HR admin, end to end over HTTP on 127.0.0.1 (token check, "
        "read + audit in one transaction, rendering in a worker thread); server `compliance web`"
        f" (1 process); load average at the end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )


if __name__ == "__main__":
    main()
