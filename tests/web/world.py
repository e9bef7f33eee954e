"""Two organisations for the web tests, built as the superuser (set-up only, never assertions).

Organisation A ("web-a-…"): departments General and Nursing, locations Main and Wixom; users of
every role (superadmin, hr_admin, viewer without an employee record; manager and employee with
one, the employee reporting to the manager); six more employees across departments and
locations (one inactive, one without a department); three modules; an assignment of every module
for every employee, in every status, due on various dates. Organisation B: the same users and a
few assignments, so that nothing of B may ever show up for A.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg

from tests.conftest import engine_today

ROLES: tuple[str, ...] = ("superadmin", "hr_admin", "manager", "employee", "viewer")


@dataclass
class Org:
    id: uuid.UUID
    slug: str
    name: str
    users: dict[str, uuid.UUID] = field(default_factory=dict)
    employees: dict[str, uuid.UUID] = field(default_factory=dict)
    departments: dict[str, uuid.UUID] = field(default_factory=dict)
    locations: dict[str, uuid.UUID] = field(default_factory=dict)
    modules: dict[str, uuid.UUID] = field(default_factory=dict)


@dataclass
class World:
    a: Org
    b: Org


def _one(conn: psycopg.Connection[Any], query: str, params: Any = None) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return next(iter(row.values())) if isinstance(row, dict) else row[0]


def _org(conn: psycopg.Connection[Any], prefix: str) -> Org:
    slug = f"{prefix}-{uuid.uuid4().hex[:8]}"
    org_id = _one(conn, "select tests.create_org(%s)", [slug])
    name = _one(conn, "select name from app.organizations where id = %s", [org_id])
    org = Org(org_id, slug, name)
    org.departments["General"] = _one(
        conn, "select id from app.departments where org_id = %s and name = 'General'", [org_id]
    )
    org.locations["Main"] = _one(
        conn, "select id from app.locations where org_id = %s and name = 'Main'", [org_id]
    )
    org.departments["Nursing"] = _one(
        conn,
        "insert into app.departments (org_id, name) values (%s, 'Nursing') returning id",
        [org_id],
    )
    org.locations["Wixom"] = _one(
        conn,
        "insert into app.locations (org_id, name) values (%s, 'Wixom') returning id",
        [org_id],
    )
    return org


def _employee(
    conn: psycopg.Connection[Any],
    org: Org,
    key: str,
    *,
    department: str | None,
    location: str | None,
    manager: uuid.UUID | None = None,
    status: str = "active",
) -> uuid.UUID:
    first = key.replace("_", " ").title().replace(" ", "")
    emp = _one(
        conn,
        "insert into app.employees (org_id, email, first_name, last_name, department_id,"
        " location_id, manager_id, job_title) values (%s, %s, %s, 'Web', %s, %s, %s, 'Staff')"
        " returning id",
        [
            org.id,
            f"{key}@{org.slug}.test",
            first,
            org.departments.get(department) if department else None,
            org.locations.get(location) if location else None,
            manager,
        ],
    )
    if status != "active":
        conn.execute(
            "update app.employees set status = %s, deactivated_at = now()"
            " where org_id = %s and id = %s",
            [status, org.id, emp],
        )
    org.employees[key] = emp
    return emp


def _users(conn: psycopg.Connection[Any], org: Org) -> None:
    manager = _employee(conn, org, "manager", department="General", location="Main")
    employee = _employee(
        conn, org, "employee", department="Nursing", location="Wixom", manager=manager
    )
    for role in ROLES:
        linked = {"manager": manager, "employee": employee}.get(role)
        org.users[role] = _one(
            conn,
            "select tests.create_user(%s, %s::app.app_role, %s, %s)",
            [org.id, role, f"{role}.user@{org.slug}.test", linked],
        )


def _module(conn: psycopg.Connection[Any], org: Org, name: str, month: str, due: date) -> None:
    org.modules[name] = _one(
        conn,
        "insert into app.training_modules (org_id, name, month_key, due_date, grace_period_days)"
        " values (%s, %s, %s, %s, 0) returning id",
        [org.id, name, month, due],
    )


def _assign(
    conn: psycopg.Connection[Any],
    org: Org,
    employee: str,
    module: str,
    due: date,
    status: str,
    *,
    required: bool = True,
) -> None:
    completion = datetime.now(UTC) - timedelta(days=3) if status == "completed" else None
    conn.execute(
        "insert into app.training_assignments (org_id, employee_id, module_id, due_date, status,"
        " completion_date, score, attempts, is_required, exemption_reason)"
        " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " on conflict (org_id, employee_id, module_id, due_date)"
        " where not_required_reason is distinct from 'superseded_by_rehire' do update"
        " set status = excluded.status, completion_date = excluded.completion_date,"
        " score = excluded.score, attempts = excluded.attempts,"
        " is_required = excluded.is_required, exemption_reason = excluded.exemption_reason",
        [
            org.id,
            org.employees[employee],
            org.modules[module],
            due,
            status,
            completion,
            92.5 if status == "completed" else None,
            1 if status in ("completed", "in_progress") else 0,
            required,
            "Certified elsewhere" if status == "exempted" else None,
        ],
    )


def build_world(conn: psycopg.Connection[Any]) -> World:
    today = engine_today(conn)
    past, recent, future = date(2025, 1, 31), today - timedelta(days=20), today + timedelta(days=30)

    a = _org(conn, "web-a")
    _users(conn, a)
    _employee(conn, a, "nurse_one", department="Nursing", location="Main")
    _employee(conn, a, "nurse_two", department="Nursing", location="Wixom")
    _employee(conn, a, "clerk_one", department="General", location="Wixom")
    _employee(conn, a, "clerk_two", department="General", location="Main")
    _employee(conn, a, "floater", department=None, location="Main")
    _employee(conn, a, "former", department="Nursing", location="Main", status="inactive")
    _module(conn, a, "HIPAA Privacy", "2025-01", past)
    _module(conn, a, "Fire Safety", "2025-06", recent)
    _module(conn, a, "Bloodborne Pathogens", "2025-09", future)
    plan = {
        "manager": ("completed", "completed", "not_started"),
        "employee": ("overdue", "in_progress", "not_started"),
        "nurse_one": ("completed", "overdue", "in_progress"),
        "nurse_two": ("exempted", "completed", "not_started"),
        "clerk_one": ("overdue", "overdue", "completed"),
        "clerk_two": ("completed", "exempted", "not_started"),
        "floater": ("completed", "not_started", "not_started"),
        "former": ("overdue", "not_started", "not_started"),
    }
    dues = {"HIPAA Privacy": past, "Fire Safety": recent, "Bloodborne Pathogens": future}
    for employee, statuses in plan.items():
        for module, status in zip(dues, statuses, strict=True):
            _assign(conn, a, employee, module, dues[module], status)
    _assign(conn, a, "floater", "HIPAA Privacy", future, "not_started", required=False)

    b = _org(conn, "web-b")
    _users(conn, b)
    _employee(conn, b, "other", department="General", location="Main")
    _module(conn, b, "HIPAA Privacy", "2025-01", past)
    for employee in ("manager", "employee", "other"):
        _assign(conn, b, employee, "HIPAA Privacy", past, "overdue")
    return World(a, b)
