"""Two organisations with rows in every table, and a user of every application role in each.

Built as the superuser (it bypasses RLS: set-up only, never assertions) for the RLS matrix and
the constraint tests. Each organisation has:

- departments General (used) and Spare (unreferenced), locations Main and Spare;
- two of every row the constraint tests need a pair of (rules, mappings, sync runs, requests,
  staged records), with their references filled in;
- employees admin, manager (reports to admin), employee (reports to manager), other (reports
  to admin); users superadmin, hr_admin, viewer (no employee record), manager and employee
  (linked to their employee records);
- modules M1 (required by the General department, linked by requirement R1), M2, M3 (spare);
  tiers T1 (default), T2 and T3 (spare); mappings Nurse -> T2, Physician -> T1; department
  rules General x M1 and General x M2; requirements R1 (training, T1),
  R2 (document, T1), R3 (attestation, T2; spare);
- for every employee: an assignment of M1 due in ten days, requirement records for R1 and R2,
  tier T1, a tier history row, a stats row, audit entries and events; for every user a
  notification and an event addressed to them; a sync run (with a staged record), a sync
  request and two compliance snapshots.

Rules added by later migrations (triggers that initialise new employees, keep stats, audit
changes) fire as they would in production; rows they create are kept, and the explicit inserts
below skip rows that already exist.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg.types.json import Jsonb

from compliance.migrate import migrate
from tests.conftest import engine_today

ROLES: tuple[str, ...] = ("superadmin", "hr_admin", "manager", "employee", "viewer")


@dataclass
class Org:
    """The ids of one organisation of the world."""

    id: uuid.UUID
    slug: str
    users: dict[str, uuid.UUID] = field(default_factory=dict)
    employees: dict[str, uuid.UUID] = field(default_factory=dict)
    ids: dict[str, uuid.UUID] = field(default_factory=dict)

    def employee_of(self, role: str) -> uuid.UUID | None:
        """The employee record linked to the user of ``role`` (manager, employee), if any."""
        return self.employees.get(role)

    def direct_reports_of(self, role: str) -> set[uuid.UUID]:
        return {self.employees["employee"]} if role == "manager" else set()


@dataclass
class World:
    a: Org
    b: Org

    @property
    def orgs(self) -> tuple[Org, Org]:
        return (self.a, self.b)

    def other(self, org: Org) -> Org:
        return self.b if org is self.a else self.a


def _new() -> uuid.UUID:
    return uuid.uuid4()


def _insert(
    conn: psycopg.Connection[Any], table: str, row: dict[str, Any], conflict: str = ""
) -> None:
    schema, name = table.split(".")
    conn.execute(
        sql.SQL("insert into {} ({}) values ({}) {}").format(
            sql.Identifier(schema, name),
            sql.SQL(", ").join(map(sql.Identifier, row)),
            sql.SQL(", ").join(sql.Placeholder() * len(row)),
            sql.SQL(conflict),
        ),
        list(row.values()),
    )


def _exists(conn: psycopg.Connection[Any], table: str) -> bool:
    row = conn.execute("select to_regclass(%s) is not null", [table]).fetchone()
    return bool(row and row[0])


def _build_org(conn: psycopg.Connection[Any], slug: str) -> Org:
    org = Org(id=_new(), slug=slug)
    o = org.id
    ids = org.ids
    today = engine_today(conn)
    _insert(
        conn, "app.organizations", {"id": o, "name": slug.replace("-", " ").title(), "slug": slug}
    )
    for key, table, name in [
        ("dept", "app.departments", "General"),
        ("dept_spare", "app.departments", "Spare"),
        ("loc", "app.locations", "Main"),
        ("loc_spare", "app.locations", "Spare"),
    ]:
        ids[key] = _new()
        _insert(conn, table, {"org_id": o, "id": ids[key], "name": name})
    for key, month, name in [
        ("m1", "01", "HIPAA Privacy"),
        ("m2", "02", "Bloodborne Pathogens"),
        ("m3", "03", "Fire Safety"),
    ]:
        ids[key] = _new()
        _insert(
            conn,
            "app.training_modules",
            {
                "org_id": o,
                "id": ids[key],
                "name": name,
                "month_key": f"{today.year}-{month}",
                "due_date": today + timedelta(days=10),
                "classroom_course_id": f"course-{slug}",
                "classroom_coursework_id": f"cw-{key}-{slug}",
            },
        )
    for key, level, name in [("t1", 1, "Level 1"), ("t2", 2, "Level 2"), ("t3", 3, "Level 3")]:
        ids[key] = _new()
        _insert(
            conn,
            "app.compliance_tiers",
            {
                "org_id": o,
                "id": ids[key],
                "name": name,
                "level": level,
                "is_default": level == 1,
                "min_completion_pct": 40 * (level - 1),
                "min_points": 50 * (level - 1),
            },
        )
    for key, job_role, tier in [("mapping", "Nurse", "t2"), ("mapping2", "Physician", "t1")]:
        ids[key] = _new()
        _insert(
            conn,
            "app.role_tier_mappings",
            {"org_id": o, "id": ids[key], "job_role": job_role, "tier_id": ids[tier]},
        )
    for key, rtype, tier, module, name in [
        ("r1", "training", "t1", "m1", "HIPAA training"),
        ("r2", "document", "t1", None, "Signed handbook"),
        ("r3", "attestation", "t2", None, "Conflict of interest attestation"),
    ]:
        ids[key] = _new()
        _insert(
            conn,
            "app.compliance_requirements",
            {
                "org_id": o,
                "id": ids[key],
                "name": name,
                "type": rtype,
                "tier_id": ids[tier],
                "module_id": ids[module] if module else None,
                "points": 10,
            },
        )
    # Employees: admin <- manager <- employee; other reports to admin.
    for key, manager, title in [
        ("admin", None, "Practice Administrator"),
        ("manager", "admin", "Nurse Manager"),
        ("employee", "manager", "Medical Assistant"),
        ("other", "admin", "Receptionist"),
    ]:
        org.employees[key] = _new()
        _insert(
            conn,
            "app.employees",
            {
                "org_id": o,
                "id": org.employees[key],
                "email": f"{key}@{slug}.test",
                "first_name": key.title(),
                "last_name": slug.split("-")[-1].title(),
                "department_id": ids["dept"],
                "location_id": ids["loc"],
                "job_title": title,
                "manager_id": org.employees[manager] if manager else None,
                "zenefits_id": f"zen-{key}-{slug}",
                "classroom_user_id": f"cls-{key}-{slug}",
                "start_date": today - timedelta(days=400),
            },
        )
    for key, module in [("rule", "m1"), ("rule2", "m2")]:
        ids[key] = _new()
        _insert(
            conn,
            "app.department_training_requirements",
            {
                "org_id": o,
                "id": ids[key],
                "department_id": ids["dept"],
                "module_id": ids[module],
                "priority": "critical",
                "effective_start": today - timedelta(days=30),
            },
        )
    for role in ROLES:
        org.users[role] = _new()
        _insert(
            conn,
            "app.app_users",
            {
                "org_id": o,
                "id": org.users[role],
                "email": f"{role}@{slug}.test",
                "display_name": f"{role.replace('_', ' ').title()} {slug}",
                "app_role": role,
                "employee_id": org.employees.get(role),
            },
        )
    for key, emp in org.employees.items():
        _insert(
            conn,
            "app.training_assignments",
            {
                "org_id": o,
                "employee_id": emp,
                "module_id": ids["m1"],
                "due_date": today + timedelta(days=10),
            },
            "on conflict do nothing",
        )
        for req in ("r1", "r2"):
            _insert(
                conn,
                "app.employee_requirements",
                {"org_id": o, "employee_id": emp, "requirement_id": ids[req]},
                "on conflict do nothing",
            )
        _insert(
            conn,
            "app.employee_tiers",
            {"org_id": o, "employee_id": emp, "tier_id": ids["t1"]},
            "on conflict do nothing",
        )
        _insert(
            conn,
            "app.employee_tier_history",
            {
                "org_id": o,
                "employee_id": emp,
                "from_tier_id": None,
                "to_tier_id": ids["t1"],
                "kind": "initial",
                "reason": "world",
            },
        )
        _insert(
            conn,
            "app.employee_compliance_stats",
            {"org_id": o, "employee_id": emp},
            "on conflict do nothing",
        )
        _insert(
            conn,
            "audit.log",
            {
                "org_id": o,
                "event_type": "world_fixture",
                "employee_id": emp,
                "table_name": "employees",
                "entity_id": str(emp),
                "details": Jsonb({"key": key}),
            },
        )
        _insert(
            conn,
            "app.events",
            {
                "org_id": o,
                "type": "employee.updated",
                "employee_id": emp,
                "entity": "employee",
                "entity_id": str(emp),
            },
        )
    _insert(conn, "audit.log", {"org_id": o, "event_type": "world_fixture", "details": Jsonb({})})
    _insert(conn, "app.events", {"org_id": o, "type": "metrics.refresh"})
    for role, user in org.users.items():
        _insert(
            conn,
            "app.notifications",
            {
                "org_id": o,
                "recipient_id": user,
                "type": "world.fixture",
                "title": f"Hello {role}",
                "message": "A notification of the test world.",
                "employee_id": org.employees.get(role),
            },
        )
        _insert(
            conn,
            "app.events",
            {
                "org_id": o,
                "type": "notification.created",
                "recipient_id": user,
                "employee_id": org.employees.get(role),
                "entity": "notification",
                "entity_id": role,
            },
        )
    for role, emp in org.employees.items():
        _insert(
            conn,
            "app.assignment_exceptions",
            {
                "org_id": o,
                "kind": "overdue_on_arrival",
                "subject_key": f"world:{role}",
                "rule": "Due dates are never in the past on the day they are made",
                "message": f"An assignment of the {role} would have been overdue on arrival.",
                "resolution_hint": "Confirm the later due date, or exempt.",
                "employee_id": emp,
            },
        )
    _insert(
        conn,
        "app.assignment_exceptions",
        {
            "org_id": o,
            "kind": "unmatched_student",
            "subject_key": "world:student",
            "rule": "Classroom results are matched by user id, then e-mail",
            "message": "A Classroom result matches no employee.",
            "resolution_hint": "Link the student to an employee.",
            "resolved_at": "now()",
            "resolved_by": org.users["hr_admin"],
            "resolution": "student left the course",
        },
    )
    ids["run"] = _new()
    _insert(
        conn,
        "app.sync_runs",
        {
            "org_id": o,
            "id": ids["run"],
            "type": "employees",
            "source": "zenefits",
            "status": "in_progress",
        },
    )
    # Billing: the organisation's subscription, a Stripe event applied to it, a week's usage.
    cus = "cus_" + slug.replace("-", "_")
    _insert(
        conn,
        "app.subscriptions",
        {
            "org_id": o,
            "stripe_customer_id": cus,
            "stripe_subscription_id": "sub_" + slug.replace("-", "_"),
            "status": "active",
            "status_since": "now()",
            "state_as_of": "now()",
            "last_event_id": "evt_" + slug.replace("-", "_"),
        },
    )
    _insert(
        conn,
        "app.stripe_events",
        {
            "id": "evt_" + slug.replace("-", "_"),
            "org_id": o,
            "type": "customer.subscription.created",
            "created": "now()",
            "payload_sha256": "0" * 64,
            "outcome": "applied",
        },
    )
    _insert(
        conn,
        "app.usage_snapshots",
        {
            "org_id": o,
            "week_start": date(2026, 1, 5),
            "iso_week": "2026-W02",
            "active_employees": 3,
            "active_users": 5,
            "completions": 1,
        },
    )
    ids["run2"] = _new()
    _insert(
        conn,
        "app.sync_runs",
        {
            "org_id": o,
            "id": ids["run2"],
            "type": "completions",
            "source": "classroom",
            "status": "completed",
            "completed_at": "now()",
            "started_at": "now()",
        },
    )
    for item in (1, 2):
        _insert(
            conn,
            "sync.staged_records",
            {
                "org_id": o,
                "run_id": ids["run"],
                "kind": "zenefits_person",
                "page": 1,
                "item": item,
                "payload": Jsonb({"id": f"p{item}"}),
            },
        )
    ids["request"] = _new()
    _insert(
        conn,
        "app.sync_requests",
        {"org_id": o, "id": ids["request"], "requested_by": org.users["hr_admin"]},
    )
    ids["request2"] = _new()
    _insert(
        conn,
        "app.sync_requests",
        {
            "org_id": o,
            "id": ids["request2"],
            "requested_by": org.users["manager"],
            "status": "done",
            "picked_at": "now()",
            "finished_at": "now()",
            "run_id": ids["run2"],
        },
    )
    _insert(
        conn,
        "app.employee_tier_history",
        {
            "org_id": o,
            "employee_id": org.employees["other"],
            "from_tier_id": ids["t1"],
            "to_tier_id": ids["t2"],
            "kind": "manual",
            "reason": "world",
        },
    )
    # Tables of later migrations, when they exist.
    if _exists(conn, "app.completion_corrections"):
        for emp in org.employees.values():
            conn.execute(
                "insert into app.completion_corrections (org_id, assignment_id, employee_id, kind,"
                " previous_status, attended, completion_date, reason)"
                " select a.org_id, a.id, a.employee_id, 'recorded', a.status, true, a.created_at,"
                " 'world' from app.training_assignments a"
                " where a.org_id = %s and a.employee_id = %s",
                [o, emp],
            )
    if _exists(conn, "app.analyst_organizations"):
        _insert(conn, "app.analyst_organizations", {"role_name": "analyst", "org_id": o})
    for dept, loc in [(ids["dept"], ids["loc"]), (None, None)]:
        _insert(
            conn,
            "app.compliance_snapshots",
            {
                "org_id": o,
                "snapshot_date": today - timedelta(days=1),
                "department_id": dept,
                "location_id": loc,
                "active_employees": 4,
                "required_assignments": 4,
                "completed_assignments": 2,
                "compliance_rate": 50,
            },
        )
    return org


@contextmanager
def fresh_database(dsn: str, prefix: str, db_dir: Any) -> Iterator[str]:
    """A new database beside the session's, migrated from ``db_dir``; dropped afterwards.

    The world is committed (the RLS matrix reads it over other connections), so it lives in a
    database of its own: tests that count rows across all organisations never see it.
    """
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    try:
        target = make_conninfo(dsn, dbname=name)
        migrate(target, db_dir, echo=lambda _line: None)
        yield target
    finally:
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
            )


def build_world(dsn: str, prefix: str = "rls") -> World:
    """Create the two organisations (committed) and return their ids."""
    suffix = uuid.uuid4().hex[:8]
    with psycopg.connect(dsn) as conn, conn.transaction():
        a = _build_org(conn, f"{prefix}-{suffix}-a")
        b = _build_org(conn, f"{prefix}-{suffix}-b")
    return World(a=a, b=b)
