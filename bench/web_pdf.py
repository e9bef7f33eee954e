"""PDF compliance report of the demo organisation through the web app.

    python bench/web_pdf.py [--runs 5]

Builds a throwaway cluster, loads the demo organisation (`compliance db seed-demo`: Ann Arbor
Family Medicine), adds a year of daily organisation-wide snapshots for the trend chart, starts
`compliance web` as its own process and times GET /export/compliance.pdf as the HR admin
(end to end: token check, audit entry, api.compliance_report, reportlab in a worker thread).
Prints the first (cold) request and the median of the following ones. Target: <= 2 s.
"""

from __future__ import annotations

import argparse
import statistics
import time

import httpx
import psycopg
from web_common import WebProcess, machine, start_cluster, token

from compliance.seed import seed_demo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    _cluster, dsn = start_cluster()
    with psycopg.connect(dsn) as conn:
        seed_demo(conn)
        conn.commit()
        org, user = conn.execute(
            "select u.org_id, u.id from app.app_users u where u.app_role = 'hr_admin'"
            " order by u.email limit 1"
        ).fetchone()
        conn.execute(
            """
            insert into app.compliance_snapshots (org_id, snapshot_date, required_assignments,
                completed_assignments, overdue_assignments, compliance_rate)
            select %s, current_date - d, 600, 420 + d %% 90, 30,
                   round((70 + 25 * sin(d / 40.0))::numeric, 2)
            from generate_series(1, 365) d
            on conflict do nothing
            """,
            [org],
        )
        counts = conn.execute(
            "select (select count(*) from app.employees where org_id = %(o)s),"
            " (select count(*) from app.training_assignments where org_id = %(o)s)",
            {"o": org},
        ).fetchone()
        conn.commit()
    print(f"demo organisation: {counts[0]} employees, {counts[1]} assignments, 365 snapshots")
    web = WebProcess(dsn)
    headers = {"Authorization": f"Bearer {token(user)}"}
    times: list[float] = []
    size = 0
    for _ in range(args.runs):
        started = time.monotonic()
        response = httpx.get(web.base + "/export/compliance.pdf", headers=headers, timeout=60)
        times.append(time.monotonic() - started)
        if response.status_code != 200:
            raise RuntimeError(f"the report answered {response.status_code}: {response.text}")
        size = len(response.content)
    web.stop()
    warm = statistics.median(times[1:]) if len(times) > 1 else times[0]
    print(
        f"PDF report: first request {times[0]:.2f} s (loads reportlab), then median "
        f"{warm:.2f} s over {len(times) - 1} runs (min {min(times[1:] or times):.2f} s); "
        f"{size / 1024:.0f} kB"
    )
    print(f"target <= 2 s: {'met' if max(times) <= 2 else 'NOT met'} (worst {max(times):.2f} s)")
    print(
        "conditions: GET /export/compliance.pdf as the demo HR admin, no filters, end to end "
        "over HTTP on 127.0.0.1; server `compliance web` (1 process)"
    )


if __name__ == "__main__":
    main()
