"""PDF compliance report of the demo organisation through the web app.

    python bench/web_pdf.py [--runs 5] [--render-only]

Builds a throwaway cluster, loads the demo organisation (`compliance db seed-demo`: Ann Arbor
Family Medicine), adds a year of daily organisation-wide snapshots for the trend chart, starts
`compliance web` as its own process and times GET /export/compliance.pdf as the HR admin
(end to end: token check, audit entry, api.compliance_report, reportlab in a worker thread,
two passes for "page N of M", on the organisation's paper). Prints the first (cold) request and
the median of the following ones, the pages and the paper. Target: <= 2 s.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import time
from datetime import date

import httpx
import psycopg
from pypdf import PdfReader
from web_common import WebProcess, machine, start_cluster, token

from compliance.seed import seed_demo


def render_largest(runs: int) -> None:
    """render_report alone on the largest report the export builds: WEB_PDF_OVERDUE_ROWS (500)
    overdue rows, 40 departments, a year of daily trend points."""
    from web.report import render_report

    groups = [
        {
            "name": f"Department {i:02d}",
            "employees": 25,
            "required": 75,
            "completed": 60,
            "overdue": 10,
            "exempted": 2,
            "rate": 82.19,
            "target": 95,
            "target_met": False,
        }
        for i in range(40)
    ]
    report = {
        "organization": {"name": "Bench practice", "timezone": "America/Detroit"},
        "generated_at": "2026-03-08T14:00:00+00:00",
        "summary": {"rate": 82.19, "target": 95, "target_met": False, "employees": 1000},
        "departments": groups,
        "locations": groups[:5],
        "overdue": [
            {
                "employee_name": f"Person {i:04d}",
                "department": f"Department {i % 40:02d}",
                "location": "Main",
                "module": "HIPAA Privacy",
                "due_date": "2026-01-31",
                "days_overdue": 36,
            }
            for i in range(500)
        ],
        "overdue_total": 800,
        "trend": [
            {
                "date": date.fromordinal(date(2025, 3, 8).toordinal() + d).isoformat(),
                "rate": 70 + d % 25,
            }
            for d in range(365)
        ],
    }
    times: list[float] = []
    for _ in range(runs):
        started = time.monotonic()
        pdf = render_report(report, {}, paper="letter")
        times.append(time.monotonic() - started)
    pages = len(PdfReader(io.BytesIO(pdf)).pages)
    print(
        f"render only, 500 overdue rows + 40 departments + 365 trend points: median "
        f"{statistics.median(times):.2f} s over {runs} runs ({pages} pages)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--render-only", action="store_true", help="only time render_report on the largest report"
    )
    args = parser.parse_args()
    if args.render_only:
        print(f"machine: {machine()}")
        render_largest(args.runs)
        return
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
            select %s, app.org_today(%s) - d, 600, 420 + d %% 90, 30,
                   round((70 + 25 * sin(d / 40.0))::numeric, 2)
            from generate_series(1, 365) d
            on conflict do nothing
            """,
            [org, org],
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
        content = response.content
    web.stop()
    reader = PdfReader(io.BytesIO(content))
    box = reader.pages[0].mediabox
    paper = f"{float(box.width):.0f} x {float(box.height):.0f} pt"
    warm = statistics.median(times[1:]) if len(times) > 1 else times[0]
    print(
        f"PDF report: first request {times[0]:.2f} s (loads reportlab), then median "
        f"{warm:.2f} s over {len(times) - 1} runs (min {min(times[1:] or times):.2f} s); "
        f"{size / 1024:.0f} kB, {len(reader.pages)} pages of {paper}"
    )
    print(f"target <= 2 s: {'met' if max(times) <= 2 else 'NOT met'} (worst {max(times):.2f} s)")
    render_largest(args.runs)
    print(
        "conditions: GET /export/compliance.pdf as the demo HR admin, no filters, end to end "
        "over HTTP on 127.0.0.1; server `compliance web` (1 process); load average "
        + " ".join(f"{x:.2f}" for x in os.getloadavg())
        + " at the end"
    )


if __name__ == "__main__":
    main()
