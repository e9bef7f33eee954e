"""The RLS matrix: every api view x every application role x SELECT/INSERT/UPDATE/DELETE.

Two organisations with rows in every table (tests/rls_world.py) and a user of every role in
each, in a database of their own (migrated from db/ like the session's; dropped at the end).
Every statement runs as PostgREST runs a request (tests/conftest.py's ApiHarness connection and
compliance.db.acting_as: one transaction, role authenticated, the JWT claims, method and path,
app.pre_request(), then the statement); GET runs read-only, writes are rolled back. Each cell
has a stated expectation (DESIGN §6):

    rows   the caller sees / writes at least one row of their own organisation
    none   no row and no error
    42501  refused: no privilege, or a row-level WITH CHECK violation (PostgREST: 403)
    55000  the view is not updatable (a computed view: it only reads)

Besides the cells, every returned row is checked:
    - it belongs to the caller's organisation (else a cross-org LEAK);
    - an employee sees only rows about themselves (employee_id = their record, or addressed to
      them), a manager's audit trail only their own and their direct reports' (else a mismatch);
    - writing into the other organisation (INSERT with its org_id and ids) must fail (else a
      LEAK); UPDATE and DELETE run over both organisations' rows and may touch only the
      caller's (else a LEAK); they run once more with no WHERE and no RETURNING, where only the
      write policy (not the SELECT one) filters, and may touch no more rows than the caller's
      organisation holds (else a LEAK).

The views are enumerated from the catalog: a view without a stated expectation FAILS the test.
The run prints ``RLS matrix: N cells, M mismatches, L cross-org leaks``.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg.rows import dict_row

from compliance.db import ApiError, acting_as
from tests.conftest import DB_DIR, POSTGREST_SEARCH_PATH, ApiHarness
from tests.rls_world import ROLES, Org, World, build_world, fresh_database

COMMANDS = ("SELECT", "INSERT", "UPDATE", "DELETE")
ALL = "rows"
ORG_STAFF_WRITE = "rows rows 42501 42501 42501"  # superadmin, hr_admin write; the others refused
ORG_STAFF_EDIT = "rows rows none none none"  # ... and the others' UPDATE/DELETE reach no row
READ_ONLY = {"INSERT": "42501", "UPDATE": "42501", "DELETE": "42501"}
COMPUTED = {"INSERT": "55000", "UPDATE": "55000", "DELETE": "55000"}

Query = sql.SQL | sql.Composed


def _cells(**by_command: str) -> dict[str, str]:
    return by_command


# Expectations, per view and command: one token for every role, or five tokens in the order
# superadmin hr_admin manager employee viewer. DESIGN §6 is the reference; each line says why.
EXPECTED: dict[str, dict[str, str]] = {
    # Every member reads their organisation; only superadmins change its settings.
    "organizations": _cells(
        SELECT=ALL, INSERT="42501", UPDATE="rows none none none none", DELETE="42501"
    ),
    # The catalog: everyone reads it; superadmins and HR admins create, edit, delete it.
    **{
        view: _cells(
            SELECT=ALL, INSERT=ORG_STAFF_WRITE, UPDATE=ORG_STAFF_EDIT, DELETE=ORG_STAFF_EDIT
        )
        for view in (
            "departments",
            "locations",
            "training_modules",
            "department_training_requirements",
            "compliance_tiers",
            "role_tier_mappings",
            "compliance_requirements",
        )
    },
    # Employees: staff read the organisation, an employee their own record (scope check);
    # superadmins and HR admins create and edit; nobody deletes (deactivation is a status).
    "employees": _cells(SELECT=ALL, INSERT=ORG_STAFF_WRITE, UPDATE=ORG_STAFF_EDIT, DELETE="42501"),
    # Users: everyone reads their own login, admins the organisation's; only superadmins
    # manage users and roles.
    "app_users": _cells(
        SELECT=ALL,
        INSERT="rows 42501 42501 42501 42501",
        UPDATE="rows none none none none",
        DELETE="42501",
    ),
    # Personal records: staff read the organisation's, an employee their own; written only
    # through the api functions and the database's rules.
    **{
        view: _cells(SELECT=ALL, **READ_ONLY)
        for view in (
            "training_assignments",
            "employee_requirements",
            "employee_tiers",
            "employee_tier_history",
            "employee_compliance_stats",
        )
    },
    # The training record's corrections (a join view): staff read the organisation's, an
    # employee their own; written only through record_completion / correct_completion.
    "completion_corrections": _cells(SELECT=ALL, **COMPUTED),
    # Operations: everyone but plain employees reads them; written by functions and workers.
    **{
        view: _cells(SELECT="rows rows rows none rows", **READ_ONLY)
        for view in ("sync_runs", "sync_requests", "compliance_snapshots")
    },
    # The exception report: staff and viewers the organisation's cases, managers their direct
    # reports'; raised by the rules, resolved through a function.
    "assignment_exceptions": _cells(SELECT="rows rows rows none rows", **READ_ONLY),
    # Billing: superadmins read their organisation's subscription, Stripe events and usage;
    # nobody else; written only by app.apply_stripe_event and the weekly job.
    **{
        view: _cells(SELECT="rows none none none none", **READ_ONLY)
        for view in ("subscriptions", "stripe_events", "usage_snapshots")
    },
    # Notifications: each user reads and marks read their own.
    "notifications": _cells(SELECT=ALL, INSERT="42501", UPDATE=ALL, DELETE="42501"),
    # Events: what the reader may read (employees: their own and those addressed to them).
    "events": _cells(SELECT=ALL, **READ_ONLY),
    # Audit trail: superadmin, HR, viewer the organisation; managers their direct reports'
    # (and their own); employees their own. Append-only for everyone.
    "audit_log": _cells(SELECT=ALL, **READ_ONLY),
    # Computed views of DESIGN §7: they only read. Per-employee rows (matrix, deadlines, the
    # export's one row per assignment): staff and viewers the organisation, an employee their
    # own. Organisation-wide figures (per department, location, module; trends from the
    # snapshots): everyone but plain employees ("read org-wide compliance: own only").
    "compliance_matrix": _cells(SELECT=ALL, **COMPUTED),
    "upcoming_deadlines": _cells(SELECT=ALL, **COMPUTED),
    "compliance_export": _cells(SELECT=ALL, **COMPUTED),
    "department_compliance": _cells(SELECT="rows rows rows none rows", **COMPUTED),
    "location_compliance": _cells(SELECT="rows rows rows none rows", **COMPUTED),
    "module_compliance": _cells(SELECT="rows rows rows none rows", **COMPUTED),
    "compliance_trend": _cells(SELECT="rows rows rows none rows", **COMPUTED),
}

#: Column that names the organisation of a row, where it is not ``org_id``.
ORG_COLUMN = {"organizations": "id"}
#: Views whose rows an employee may see only about themselves, and the column naming the
#: employee (default: ``employee_id`` when the view has it). ``None``: no per-employee scope.
EMPLOYEE_COLUMN: dict[str, str | None] = {
    "employees": "id",
    "organizations": None,
    "departments": None,
    "locations": None,
    "training_modules": None,
    "department_training_requirements": None,
    "compliance_tiers": None,
    "role_tier_mappings": None,
    "compliance_requirements": None,
    "department_compliance": None,
    "location_compliance": None,
    "module_compliance": None,
    "compliance_trend": None,
    "subscriptions": None,
    "stripe_events": None,
    "usage_snapshots": None,
}
#: DELETE targets: the spare (unreferenced) rows of both organisations, so a permitted delete
#: is not stopped by a foreign key. Other views delete every visible row.
DELETE_TARGET = {
    "departments": "dept_spare",
    "locations": "loc_spare",
    "training_modules": "m3",
    "compliance_tiers": "t3",
    "compliance_requirements": "r3",
    "role_tier_mappings": "mapping",
    "department_training_requirements": "rule",
}
#: UPDATE sets this column to itself (a real UPDATE that changes nothing), on every visible row.
UPDATE_COLUMN_PREFERENCE = (
    "name",
    "display_name",
    "read_at",
    "job_title",
    "description",
    "address",
    "code",
    "job_role",
    "status",
)

Payload = Callable[[Org, str], dict[str, Any]]


def _payloads() -> dict[str, Payload]:
    """A valid new row of each writable view, for an organisation (and a unique suffix)."""
    return {
        "organizations": lambda o, s: {"name": f"Org {s}", "slug": f"org-{s}"},
        "departments": lambda o, s: {"org_id": o.id, "name": f"Dept {s}"},
        "locations": lambda o, s: {"org_id": o.id, "name": f"Site {s}"},
        "training_modules": lambda o, s: {
            "org_id": o.id,
            "name": f"Module {s}",
            "month_key": "2026-06",
        },
        "department_training_requirements": lambda o, s: {
            "org_id": o.id,
            "department_id": o.ids["dept_spare"],
            "module_id": o.ids["m3"],
        },
        "compliance_tiers": lambda o, s: {"org_id": o.id, "name": f"Tier {s}", "level": 9},
        "role_tier_mappings": lambda o, s: {
            "org_id": o.id,
            "job_role": f"Role {s}",
            "tier_id": o.ids["t1"],
        },
        "compliance_requirements": lambda o, s: {
            "org_id": o.id,
            "name": f"Req {s}",
            "type": "document",
            "tier_id": o.ids["t1"],
        },
        "employees": lambda o, s: {
            "org_id": o.id,
            "email": f"new-{s}@example.test",
            "first_name": "New",
            "last_name": s,
            "department_id": o.ids["dept"],
            "location_id": o.ids["loc"],
            "job_title": "Receptionist",
        },
        "app_users": lambda o, s: {
            "org_id": o.id,
            "email": f"user-{s}@example.test",
            "display_name": f"User {s}",
            "app_role": "viewer",
        },
    }


PAYLOADS = _payloads()


@dataclass
class Cell:
    org: str
    role: str
    view: str
    command: str
    expected: str
    got: str = ""
    detail: str = ""
    leaks: list[str] = field(default_factory=list)
    scope: list[str] = field(default_factory=list)

    @property
    def mismatch(self) -> bool:
        return self.got != self.expected or bool(self.scope)

    def describe(self) -> str:
        text = f"{self.org}/{self.role:<10} {self.command:<6} api.{self.view}: "
        text += f"expected {self.expected}, got {self.got}"
        if self.detail:
            text += f" ({self.detail})"
        if self.scope:
            text += f"; out of scope: {'; '.join(self.scope[:3])}"
        return text


class _Rollback(Exception):
    def __init__(self, rows: list[dict[str, Any]], rowcount: int) -> None:
        super().__init__("rollback")
        self.rows = rows
        self.rowcount = rowcount


def run_as(
    api: ApiHarness,
    user: uuid.UUID,
    statement: Query,
    method: str,
    path: str,
) -> tuple[list[dict[str, Any]], int, ApiError | None]:
    """Run one statement as PostgREST would for ``user``: (rows, rowcount, error).

    GET runs read-only and commits; every other method is rolled back.
    """
    try:
        with acting_as(
            api.connection,
            api.claims(str(user)),
            method=method,
            path=path,
            search_path=POSTGREST_SEARCH_PATH,
        ) as cur:
            cur.execute(statement)
            rows = [dict(r) for r in cur.fetchall()] if cur.description is not None else []
            if method != "GET":
                raise _Rollback(rows, cur.rowcount)
    except _Rollback as done:
        return done.rows, done.rowcount, None
    except ApiError as error:
        return [], 0, error
    return rows, len(rows), None


def expectation(view: str, command: str, role: str) -> str | None:
    spec = EXPECTED.get(view, {}).get(command)
    if spec is None:
        return None
    tokens = spec.split()
    if len(tokens) == 1:
        return tokens[0]
    assert len(tokens) == len(ROLES), f"api.{view} {command}: give 1 or {len(ROLES)} expectations"
    return tokens[ROLES.index(role)]


@dataclass
class ViewInfo:
    name: str
    columns: list[str]
    updatable_by_authenticated: list[str]
    types: dict[str, str]


def api_views(conn: psycopg.Connection[Any]) -> dict[str, ViewInfo]:
    rows = conn.execute(
        """select c.relname as view,
                  array_agg(a.attname::text order by a.attnum) as columns,
                  array_agg(a.attname::text order by a.attnum) filter (
                      where has_column_privilege('authenticated', c.oid, a.attnum, 'UPDATE'))
                      as updatable,
                  jsonb_object_agg(a.attname, format_type(a.atttypid, a.atttypmod)) as types
           from pg_class c
           join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
           where c.relnamespace = 'api'::regnamespace and c.relkind = 'v'
           group by c.relname order by c.relname"""
    ).fetchall()
    return {
        r["view"]: ViewInfo(r["view"], r["columns"], r["updatable"] or [], r["types"]) for r in rows
    }


@pytest.fixture(scope="module")
def world_dsn(dsn: str) -> Iterator[str]:
    """A database of its own (the world is committed; other tests must not see it)."""
    with fresh_database(dsn, "rls_matrix", DB_DIR) as target:
        yield target


@pytest.fixture(scope="module")
def world(world_dsn: str) -> World:
    return build_world(world_dsn, prefix="rls")


@pytest.fixture
def owner(world_dsn: str) -> Iterator[psycopg.Connection[Any]]:
    """The superuser on the world's database (set-up and counting only: it bypasses RLS)."""
    with psycopg.connect(world_dsn, autocommit=True, row_factory=dict_row) as conn:
        yield conn


@pytest.fixture
def world_api(world_dsn: str) -> Iterator[ApiHarness]:
    """tests/conftest.py's PostgREST harness, on the world's database."""
    harness = ApiHarness(make_conninfo(world_dsn, user="authenticator"))
    try:
        yield harness
    finally:
        harness.close()


class Matrix:
    def __init__(
        self,
        api: ApiHarness,
        world: World,
        views: dict[str, ViewInfo],
        superuser: psycopg.Connection[Any],
    ) -> None:
        self.api = api
        self.world = world
        self.views = views
        self.superuser = superuser
        self.own_rows: dict[tuple[str, str], int] = {}
        self.cells: list[Cell] = []
        self.leaks: list[str] = []

    # -- checks of returned rows ---------------------------------------------------------------

    def _check_rows(self, cell: Cell, org: Org, view: ViewInfo, rows: list[dict[str, Any]]) -> int:
        """Count own-org rows; record leaks and out-of-scope rows on the cell."""
        org_col = ORG_COLUMN.get(view.name, "org_id")
        if rows and org_col not in rows[0]:
            cell.leaks.append(
                f"api.{view.name} has no {org_col} column: say in ORG_COLUMN "
                "which column names the organisation"
            )
            return len(rows)
        key = "id" if rows and "id" in rows[0] else org_col
        own = [r for r in rows if r[org_col] == org.id]
        for r in rows:
            if r[org_col] != org.id:
                cell.leaks.append(
                    f"{cell.org}/{cell.role} {cell.command} api.{view.name}: "
                    f"row {key}={r[key]} of organisation {r[org_col]}"
                )
        self._check_scope(cell, org, view, own)
        return len(own)

    def _check_scope(
        self, cell: Cell, org: Org, view: ViewInfo, rows: list[dict[str, Any]]
    ) -> None:
        role = cell.role
        user = org.users[role]
        if view.name == "app_users" and role not in ("superadmin", "hr_admin"):
            cell.scope += [f"user {r['id']}" for r in rows if r["id"] != user]
            return
        column = EMPLOYEE_COLUMN.get(
            view.name, "employee_id" if "employee_id" in view.columns else None
        )
        if column is None:
            return
        if role == "employee":
            me = org.employee_of(role)
            cell.scope += [
                f"{column}={r.get(column)}"
                for r in rows
                if r.get(column) != me and r.get("recipient_id") != user
            ]
        elif role == "manager" and view.name == "audit_log":
            allowed = org.direct_reports_of(role) | {org.employee_of(role)}
            cell.scope += [
                f"employee_id={r['employee_id']}" for r in rows if r["employee_id"] not in allowed
            ]

    # -- one cell ------------------------------------------------------------------------------

    def run_cell(self, org: Org, role: str, view: ViewInfo, command: str, expected: str) -> Cell:
        cell = Cell(org=org.slug[-1], role=role, view=view.name, command=command, expected=expected)
        user = org.users[role]
        target = sql.Identifier("api", view.name)
        path = f"/{view.name}"
        if command == "SELECT":
            statement: Query = sql.SQL("select * from {}").format(target)
            rows, _, error = run_as(self.api, user, statement, "GET", path)
        elif command == "INSERT":
            rows, _, error = run_as(self.api, user, self._insert(view, org), "POST", path)
            self._probe_foreign_insert(cell, org, view)
        elif command == "UPDATE":
            column = self._update_column(view)
            statement = sql.SQL("update {} set {} = {} returning *").format(
                target, sql.Identifier(column), sql.Identifier(column)
            )
            rows, _, error = run_as(self.api, user, statement, "PATCH", path)
            self._probe_blind_write(cell, org, view, "PATCH")
        else:
            statement = sql.SQL("delete from {} {} returning *").format(
                target, self._delete_filter(view)
            )
            rows, _, error = run_as(self.api, user, statement, "DELETE", path)
            self._probe_blind_write(cell, org, view, "DELETE")
        if error is not None:
            cell.got = error.sqlstate
            cell.detail = error.message
        else:
            own = self._check_rows(cell, org, view, rows)
            cell.got = "rows" if own else "none"
            if command == "INSERT" and rows and not own:
                cell.detail = "inserted into another organisation"
        return cell

    def _insert(
        self, view: ViewInfo, org: Org, into: Org | None = None, returning: bool = True
    ) -> Query:
        target = sql.Identifier("api", view.name)
        payload = PAYLOADS.get(view.name)
        tail = sql.SQL(" returning *" if returning else "")
        if payload is None:
            return sql.SQL("insert into {} default values{}").format(target, tail)
        row = payload(into or org, uuid.uuid4().hex[:8])
        return sql.SQL("insert into {} ({}) values ({}){}").format(
            target,
            sql.SQL(", ").join(map(sql.Identifier, row)),
            sql.SQL(", ").join(map(sql.Literal, row.values())),
            tail,
        )

    def _probe_foreign_insert(self, cell: Cell, org: Org, view: ViewInfo) -> None:
        """Inserting a row of the OTHER organisation (its org_id and ids) must fail.

        No RETURNING: a RETURNING clause would also apply the SELECT policy and could hide a
        permissive INSERT policy (PostgREST's return=minimal sends none).
        """
        if view.name not in PAYLOADS or view.name == "organizations":
            return
        other = self.world.other(org)
        statement = self._insert(view, org, into=other, returning=False)
        _, count, error = run_as(self.api, org.users[cell.role], statement, "POST", f"/{view.name}")
        if error is None and count:
            cell.leaks.append(
                f"{cell.org}/{cell.role} INSERT api.{view.name}: wrote a row into "
                f"organisation {other.slug}"
            )

    def _probe_blind_write(self, cell: Cell, org: Org, view: ViewInfo, method: str) -> None:
        """UPDATE/DELETE with no WHERE and no RETURNING (only the write policy applies, not the
        SELECT policy): touching more rows than the caller's organisation holds is a leak."""
        if not view.updatable_by_authenticated and method == "PATCH":
            return
        target = sql.Identifier("api", view.name)
        if method == "PATCH":
            value = self._blind_value(view)
            if value is None:
                return
            statement: Query = sql.SQL("update {} set {} = {}").format(
                target, sql.Identifier(value[0]), value[1]
            )
        else:
            statement = sql.SQL("delete from {}").format(target)
        _, count, error = run_as(self.api, org.users[cell.role], statement, method, f"/{view.name}")
        own = self.own_rows.setdefault((view.name, org.slug), self._count_own(view, org))
        if error is None and count > own:
            cell.leaks.append(
                f"{cell.org}/{cell.role} {cell.command} api.{view.name} (no WHERE): "
                f"{count} rows touched, the organisation holds {own}"
            )

    def _blind_value(self, view: ViewInfo) -> tuple[str, Query] | None:
        column = self._update_column(view)
        kind = view.types.get(column, "")
        if kind == "text":
            return column, sql.SQL("gen_random_uuid()::text")
        if kind.startswith("timestamp"):
            return column, sql.SQL("now()")
        return None

    def _count_own(self, view: ViewInfo, org: Org) -> int:
        org_col = ORG_COLUMN.get(view.name, "org_id")
        row = self.superuser.execute(
            sql.SQL("select count(*) as n from {} where {} = %s").format(
                sql.Identifier("api", view.name), sql.Identifier(org_col)
            ),
            [org.id],
        ).fetchone()
        return int(row["n"]) if row else 0

    def _update_column(self, view: ViewInfo) -> str:
        for column in UPDATE_COLUMN_PREFERENCE:
            if column in view.updatable_by_authenticated:
                return column
        if view.updatable_by_authenticated:
            return view.updatable_by_authenticated[0]
        for column in view.columns:  # nothing is granted: any column shows the refusal
            if column not in ("org_id", "id"):
                return column
        return view.columns[0]

    def _delete_filter(self, view: ViewInfo) -> Query:
        key = DELETE_TARGET.get(view.name)
        if key is None:
            return sql.SQL("")
        ids = [org.ids[key] for org in self.world.orgs]
        return sql.SQL("where id = any({})").format(sql.Literal(ids))

    # -- everything ----------------------------------------------------------------------------

    def run(self) -> Iterator[Cell]:
        for org in self.world.orgs:
            for view in self.views.values():
                for role in ROLES:
                    for command in COMMANDS:
                        expected = expectation(view.name, command, role)
                        assert expected is not None
                        cell = self.run_cell(org, role, view, command, expected)
                        self.cells.append(cell)
                        self.leaks.extend(cell.leaks)
                        yield cell


def _report(line: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Show the line in every pytest mode (-q, captured or not)."""
    with capsys.disabled():
        sys.stdout.write(f"\n{line}\n")
        sys.stdout.flush()


def test_every_api_view_has_stated_expectations(owner: psycopg.Connection[Any]) -> None:
    views = api_views(owner)
    missing = []
    for name in views:
        absent = [c for c in COMMANDS if c not in EXPECTED.get(name, {})]
        if absent:
            missing.append(f"api.{name}: no expectation for {', '.join(absent)}")
    assert not missing, (
        "every api view needs a stated expectation per role and command in "
        "tests/test_rls_matrix.py EXPECTED (DESIGN §6):\n  " + "\n  ".join(missing)
    )


def test_rls_matrix(
    world_api: ApiHarness,
    world: World,
    owner: psycopg.Connection[Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    views = {
        name: info
        for name, info in api_views(owner).items()
        if all(c in EXPECTED.get(name, {}) for c in COMMANDS)
    }
    matrix = Matrix(world_api, world, views, owner)
    cells = list(matrix.run())
    mismatches = [c for c in cells if c.mismatch]
    line = (
        f"RLS matrix: {len(cells)} cells, {len(mismatches)} mismatches, "
        f"{len(matrix.leaks)} cross-org leaks"
    )
    _report(line, capsys)
    absent = sorted(set(EXPECTED) - set(api_views(owner)))
    details = [line]
    if absent:
        details.append("stated but not (yet) in the catalog: " + ", ".join(absent))
    details += ["mismatch: " + c.describe() for c in mismatches]
    details += ["LEAK: " + leak for leak in matrix.leaks]
    failed = bool(mismatches or matrix.leaks)
    assert not failed, "\n".join(details)
