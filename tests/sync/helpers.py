"""Reading the database back, to compare it with a data set row by row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from tests.fakes.dataset import Dataset, expected_results


@dataclass
class Org:
    id: str
    slug: str


def employees(conn: psycopg.Connection[Any], org: Org) -> dict[str, dict[str, Any]]:
    """zenefits id -> the employee as the expected_employees() of the data set describes it."""
    rows = conn.execute(
        """
        select e.zenefits_id, e.email, e.first_name, e.last_name, e.job_title,
               e.status::text as status, d.name as department, l.name as location,
               m.zenefits_id as manager_zenefits_id, e.start_date::text as start_date
        from app.employees e
        left join app.departments d on d.org_id = e.org_id and d.id = e.department_id
        left join app.locations l on l.org_id = e.org_id and l.id = e.location_id
        left join app.employees m on m.org_id = e.org_id and m.id = e.manager_id
        where e.org_id = %s and e.zenefits_id is not null
        """,
        [org.id],
    ).fetchall()
    return {r["zenefits_id"]: dict(r) for r in map(dict, rows)}


def modules(conn: psycopg.Connection[Any], org: Org) -> dict[tuple[str, str], dict[str, Any]]:
    rows = conn.execute(
        """
        select classroom_course_id, classroom_coursework_id, name, due_date::text as due_date,
               month_key, active, classroom_max_points
        from app.training_modules where org_id = %s and classroom_coursework_id is not null
        """,
        [org.id],
    ).fetchall()
    out = {}
    for r in map(dict, rows):
        key = (r.pop("classroom_course_id"), r.pop("classroom_coursework_id"))
        r["classroom_max_points"] = (
            None if r["classroom_max_points"] is None else float(r["classroom_max_points"])
        )
        out[key] = r
    return out


def results(conn: psycopg.Connection[Any], org: Org) -> dict[str, dict[str, Any]]:
    """submission id -> the recorded result (assignments holding a score from Classroom)."""
    rows = conn.execute(
        """
        select a.classroom_submission_id as sub_id, lower(e.email) as email,
               m.classroom_course_id as course_id, m.classroom_coursework_id as cw_id,
               a.score, a.classroom_grade as grade, a.completion_date
        from app.training_assignments a
        join app.employees e on e.org_id = a.org_id and e.id = a.employee_id
        join app.training_modules m on m.org_id = a.org_id and m.id = a.module_id
        where a.org_id = %s and a.classroom_submission_id is not null and a.score is not null
        """,
        [org.id],
    ).fetchall()
    return {r["sub_id"]: dict(r) for r in map(dict, rows)}


def differences(
    expected: dict[Any, dict[str, Any]], actual: dict[Any, dict[str, Any]]
) -> list[str]:
    """Every row or field that differs, as readable lines (empty = identical)."""
    out = [f"missing {key}" for key in expected.keys() - actual.keys()]
    out += [f"unexpected {key}" for key in actual.keys() - expected.keys()]
    for key in expected.keys() & actual.keys():
        for field, want in expected[key].items():
            got = actual[key].get(field)
            if got != want:
                out.append(f"{key}.{field}: expected {want!r}, got {got!r}")
    return sorted(out)


def expected_results_normalised(ds: Dataset) -> dict[str, dict[str, Any]]:
    """expected_results() with completion as a datetime (as the database returns it)."""
    out = {}
    for key, row in expected_results(ds).items():
        row = dict(row)
        row["completion_date"] = datetime.fromisoformat(
            row.pop("completion").replace("Z", "+00:00")
        )
        out[key] = row
    return out


#: Tables whose rows of an organisation a sync may write (directly or through the engine).
WRITTEN_TABLES = (
    "employees",
    "departments",
    "locations",
    "training_modules",
    "training_assignments",
    "employee_requirements",
    "employee_tiers",
    "employee_compliance_stats",
    "notifications",
)


def snapshot(conn: psycopg.Connection[Any], org: Org) -> dict[str, Any]:
    """Every row version of the organisation (ctid + xmin change on ANY update, even one that
    changes no value), row-change audit entries and non-sync events: equal snapshots = nothing
    was written."""
    out: dict[str, Any] = {}
    for table in WRITTEN_TABLES:
        row = conn.execute(
            f"select count(*) as n, md5(coalesce(string_agg(ctid::text || ':' || xmin::text, ','"  # noqa: S608
            f" order by ctid), '')) as versions from app.{table} where org_id = %s",
            [org.id],
        ).fetchone()
        out[table] = tuple(row.values()) if isinstance(row, dict) else tuple(row or ())
    audit = conn.execute(
        "select count(*) from audit.log where org_id = %s and op is not null"
        " and table_name not in ('sync_runs', 'sync_requests')",
        [org.id],
    ).fetchone()
    events = conn.execute(
        "select count(*) from app.events where org_id = %s and type not like 'sync.%%'", [org.id]
    ).fetchone()
    out["audit_row_changes"] = _first(audit)
    out["events"] = _first(events)
    return out


def _first(row: Any) -> Any:
    if row is None:
        return None
    return next(iter(row.values())) if isinstance(row, dict) else row[0]


def exception_cases(conn: psycopg.Connection[Any], org: Org, kind: str) -> list[dict[str, Any]]:
    """The organisation's exception cases of a kind, open and resolved, oldest first."""
    rows = conn.execute(
        "select x.subject_key, x.rule, x.message, x.employee_id, x.assignment_id, x.details,"
        " x.resolved_at, x.resolution from app.assignment_exceptions x"
        " where x.org_id = %s and x.kind = %s order by x.raised_at, x.subject_key",
        [org.id, kind],
    ).fetchall()
    return [dict(r) for r in rows]
