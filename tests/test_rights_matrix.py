"""The rights matrix: every api function that writes x every caller x every target.

The RLS matrix (tests/test_rls_matrix.py) covers the views; this covers the VOLATILE api
functions, which check the caller's right themselves (SECURITY DEFINER) and so are not
protected by row-level security. The world of tests/rls_world.py (two organisations) gets, in
each organisation, for every application role:

    <role>+   a login linked to an employee record of its own, who manages one employee
    <role>-   a login with NO linked employee record (every role but employee: an employee
              login must have one, app_users_employee_role_has_an_employee)

and one employee nobody manages (the "stranger": a null manager is nobody's report). Each
caller calls each function on each target:

    own       the caller's own employee record (linked callers only)
    report    the employee the caller manages (linked callers only)
    other     the stranger of the caller's organisation
    foreign   the stranger of the other organisation

as PostgREST runs a request (one transaction acting as the caller; rolled back). A function
whose status argument needs rights of its own is called once per such status (completing an
assignment; setting a requirement record inactive). The whole matrix runs twice: with the
organisation's evidence settings employee_self_report and hr_self_evidence off (the default),
then on. Outcomes:

    ok        the call returned and did what it was asked to the target
    none      the call returned and changed nothing (mark_notifications_read of others' ids)
    42501     refused: the role may not (PostgREST: 403)
    PT404     refused: the target is not one the caller may read (404)
    PT409     allowed to ask, refused on the facts: a self-advance when not yet eligible

A refusal must name the problem (message and detail). The expectations are README's permission
table, written out below function by function; a VOLATILE api function without one FAILS the
test. The run prints ``Rights matrix: N cells (...), M mismatches``.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from tests.conftest import DB_DIR, ApiHarness
from tests.rls_world import ROLES, Org, World, build_world, fresh_database
from tests.test_rls_matrix import run_as

ADMINS = ("superadmin", "hr_admin")
TARGETS = ("own", "report", "other", "foreign")


@dataclass(frozen=True)
class Caller:
    role: str
    linked: bool

    @property
    def key(self) -> str:
        return f"{self.role}{'+' if self.linked else '-'}"


CALLERS = tuple(
    Caller(role, linked)
    for role in ROLES
    for linked in (True, False)
    if linked or role != "employee"
)


# -- the world ------------------------------------------------------------------------------


@dataclass
class RightsOrg:
    """One organisation's callers and their targets' ids."""

    org: Org
    users: dict[str, uuid.UUID]  # caller key -> app_users id
    employees: dict[str, uuid.UUID]  # "self:<role>", "report:<role>", "stranger" -> employee id
    records: dict[tuple[uuid.UUID, str], uuid.UUID]  # (employee, what) -> row id
    notifications: dict[str, uuid.UUID]  # caller key -> one notification of theirs


def _add_callers(conn: psycopg.Connection[Any], org: Org) -> RightsOrg:
    o, ids = org.id, org.ids
    # A document requirement of the default tier that every employee gets; it is submitted
    # below, for the reviews.
    ids["r_review"] = uuid.uuid4()
    conn.execute(
        "insert into app.compliance_requirements (org_id, id, name, type, tier_id, points,"
        " review_required) values (%s, %s, 'Licence copy', 'document', %s, 10, true)",
        [o, ids["r_review"], ids["t1"]],
    )
    employees: dict[str, uuid.UUID] = {}

    def employee(key: str, manager: uuid.UUID | None) -> uuid.UUID:
        row = conn.execute(
            "insert into app.employees (org_id, email, first_name, last_name, department_id,"
            " location_id, job_title, manager_id) values (%s, %s, %s, 'Rights', %s, %s,"
            " 'Receptionist', %s) returning id",
            [o, f"{key.replace(':', '-')}@{org.slug}.test", key, ids["dept"], ids["loc"], manager],
        ).fetchone()
        assert row is not None
        employees[key] = row[0]
        return row[0]

    employee("stranger", None)
    users: dict[str, uuid.UUID] = {}
    for caller in CALLERS:
        linked = None
        if caller.linked:
            linked = employee(f"self:{caller.role}", None)
            employee(f"report:{caller.role}", linked)
        row = conn.execute(
            "insert into app.app_users (org_id, email, display_name, app_role, employee_id)"
            " values (%s, %s, %s, %s, %s) returning id",
            [o, f"rights-{caller.key}@{org.slug}.test", caller.key, caller.role, linked],
        ).fetchone()
        assert row is not None
        users[caller.key] = row[0]
    row = conn.execute(
        "insert into app.app_users (org_id, email, display_name, app_role, active)"
        " values (%s, %s, 'Inactive', 'viewer', false) returning id",
        [o, f"rights-inactive@{org.slug}.test"],
    ).fetchone()
    assert row is not None
    users["inactive"] = row[0]  # a login to reactivate (no caller)
    emp_ids = list(employees.values())
    # Every target's HIPAA (M1) assignment stays open; its M2 assignment is exempted (for
    # unexempt); its r_review record is submitted (for review). Set by the operator (no token).
    conn.execute(
        "update app.training_assignments set status = 'exempted', exemption_reason = 'world'"
        " where org_id = %s and employee_id = any(%s) and module_id = %s",
        [o, emp_ids, ids["m2"]],
    )
    conn.execute(
        "update app.employee_requirements set status = 'submitted', submitted_at = now(),"
        " evidence = %s where org_id = %s and employee_id = any(%s) and requirement_id = %s",
        [Jsonb({"note": "world"}), o, emp_ids, ids["r_review"]],
    )
    records: dict[tuple[uuid.UUID, str], uuid.UUID] = {}
    for key, table, column, ref in [
        ("open", "training_assignments", "module_id", ids["m1"]),
        ("exempted", "training_assignments", "module_id", ids["m2"]),
        ("document", "employee_requirements", "requirement_id", ids["r2"]),
        ("submitted", "employee_requirements", "requirement_id", ids["r_review"]),
    ]:
        rows = conn.execute(
            sql.SQL("select employee_id, id from app.{} where org_id = %s and {} = %s").format(
                sql.Identifier(table), sql.Identifier(column)
            ),
            [o, ref],
        ).fetchall()
        for emp, row_id in rows:
            records[(emp, key)] = row_id
    for emp in emp_ids:
        # an open exception case about each employee (to resolve)
        row = conn.execute(
            "insert into app.assignment_exceptions (org_id, kind, subject_key, rule, message,"
            " resolution_hint, employee_id) values (%s, 'duplicate_person', %s, 'world',"
            " 'A case of the rights world.', 'Resolve it.', %s) returning id",
            [o, str(emp), emp],
        ).fetchone()
        assert row is not None
        records[(emp, "exception")] = row[0]
        for key in ("open", "exempted", "document", "submitted"):
            assert (emp, key) in records, f"the world lacks the {key} row of employee {emp}"
    notifications: dict[str, uuid.UUID] = {}
    for key, user in users.items():
        row = conn.execute(
            "insert into app.notifications (org_id, recipient_id, type, title, message)"
            " values (%s, %s, 'world.fixture', 'Hello', 'A notification of the rights world.')"
            " returning id",
            [o, user],
        ).fetchone()
        assert row is not None
        notifications[key] = row[0]
    return RightsOrg(org, users, employees, records, notifications)


@dataclass
class RightsWorld:
    a: RightsOrg
    b: RightsOrg

    def other(self, org: RightsOrg) -> RightsOrg:
        return self.b if org is self.a else self.a


@pytest.fixture(scope="module")
def rights_dsn(dsn: str) -> Iterator[str]:
    with fresh_database(dsn, "rights_matrix", DB_DIR) as target:
        yield target


@pytest.fixture(scope="module")
def rights_world(rights_dsn: str) -> RightsWorld:
    world: World = build_world(rights_dsn, prefix="rights")
    with psycopg.connect(rights_dsn) as conn, conn.transaction():
        return RightsWorld(_add_callers(conn, world.a), _add_callers(conn, world.b))


@pytest.fixture
def rights_api(rights_dsn: str) -> Iterator[ApiHarness]:
    harness = ApiHarness(make_conninfo(rights_dsn, user="authenticator"))
    try:
        yield harness
    finally:
        harness.close()


# -- the expectations (README "Roles and permissions"; docs/engine.md "Endpoints") -----------


def _own_record_rule(caller: Caller, target: str, *, admin: str, manager_report: str) -> str:
    """The shape shared by the functions that act on one employee's assignment or record.

    Another organisation's target is not found; an employee reads only their own record (404
    for anything else); a viewer writes nothing; HR admins and superadmins reach the whole
    organisation (``admin``), managers their direct reports (``manager_report``)."""
    if target == "foreign" or (caller.role == "employee" and target != "own"):
        return "PT404"
    if caller.role == "viewer":
        return "42501"
    if caller.role in ADMINS and target != "own":
        return admin
    if caller.role == "manager" and target == "report":
        return manager_report
    return "42501"


def _admin_only(caller: Caller, target: str, own: str = "ok") -> str:
    """Functions for HR admins and superadmins only: the role is refused before any look-up."""
    if caller.role not in ADMINS:
        return "42501"
    if target == "foreign":
        return "PT404"
    return own if target == "own" else "ok"


@dataclass(frozen=True)
class Settings:
    """The organisation's evidence settings for one pass of the matrix."""

    employee_self_report: bool
    hr_self_evidence: bool

    @property
    def label(self) -> str:
        return (
            f"employee_self_report {'on' if self.employee_self_report else 'off'}, "
            f"hr_self_evidence {'on' if self.hr_self_evidence else 'off'}"
        )


SETTINGS = (Settings(False, False), Settings(True, True))

#: The operations of a function that need rights of their own (its status argument).
VARIANTS = {
    "update_assignment_status": ("", "/completed"),
    "update_requirement_status": ("", "/inactive"),
}


def operations(functions: list[str]) -> list[str]:
    return [f + v for f in functions for v in VARIANTS.get(f, ("",))]


def _own_result(caller: Caller, settings: Settings) -> str:
    """A completion or score on one's own assignment: evidence about oneself needs another
    person unless the organisation lets employees self-report (everyone but viewers) or HR
    admins act on their own evidence."""
    if caller.role == "viewer":
        return "42501"
    if settings.employee_self_report or (caller.role in ADMINS and settings.hr_self_evidence):
        return "ok"
    return "42501"


def expected(operation: str, caller: Caller, target: str, settings: Settings) -> str:
    own_admin = "ok" if settings.hr_self_evidence else "42501"
    if operation in ("update_assignment_status", "update_requirement_status"):
        # progress: the employee (own; every role but viewer), their manager, HR
        rule = _own_record_rule(caller, target, admin="ok", manager_report="ok")
        return "ok" if target == "own" and rule == "42501" and caller.role != "viewer" else rule
    if operation in ("record_assignment_result", "update_assignment_status/completed"):
        rule = _own_record_rule(caller, target, admin="ok", manager_report="ok")
        return _own_result(caller, settings) if target == "own" and rule == "42501" else rule
    if operation in ("exempt_assignment", "unexempt_assignment", "record_completion"):
        # HR admins and superadmins; on their own assignment only with hr_self_evidence
        return _admin_only(caller, target, own=own_admin)
    if operation == "correct_completion":
        # as record_completion; the open assignment of the world has no completion to correct,
        # so a caller who passes the rights check is told so (409)
        rule = _admin_only(caller, target, own=own_admin)
        return "PT409" if rule == "ok" else rule
    if operation == "update_requirement_status/inactive":
        # HR admins and superadmins (their own record only with hr_self_evidence); the record
        # is looked up first, so an employee asking for someone else's gets 404
        if target == "foreign" or (caller.role == "employee" and target != "own"):
            return "PT404"
        if caller.role not in ADMINS:
            return "42501"
        return own_admin if target == "own" else "ok"
    if operation == "submit_requirement":
        # one's own record only, every role but viewer
        if target == "foreign" or (caller.role == "employee" and target != "own"):
            return "PT404"
        return "ok" if target == "own" and caller.role != "viewer" else "42501"
    if operation == "review_requirement":
        # HR admins, superadmins, the employee's manager; never one's own submission
        return _own_record_rule(caller, target, admin="ok", manager_report="ok")
    if operation == "switch_tier":
        # HR admins and superadmins switch others by hand (themselves with hr_self_evidence);
        # everyone else but a viewer may only advance themselves when eligible: 409, not yet
        rule = _own_record_rule(caller, target, admin="ok", manager_report="42501")
        if target == "own" and caller.role in ADMINS and settings.hr_self_evidence:
            return "ok"
        return "PT409" if target == "own" and caller.role != "viewer" else rule
    if operation in ("deactivate_employee", "recalculate_employee", "resolve_assignment_exception"):
        return _admin_only(caller, target)
    if operation == "request_sync":
        return "ok" if caller.role in (*ADMINS, "manager") else "42501"
    if operation == "mark_notifications_read":
        return "ok" if target == "own" else "none"
    if operation in USER_FUNCTIONS:
        # superadmins only, refused before any look-up; targets are logins (invite: employees)
        if caller.role != "superadmin":
            return "42501"
        if target == "foreign":
            return "PT404"
        if target == "own":
            # invite: one's own employee has a login already; role: never one's own; deactivate
            # oneself: another superadmin remains; reactivate: one is active already
            return USER_FUNCTIONS[operation]
        return "ok"
    raise KeyError(operation)


#: The superadmins' user functions, with the outcome of calling them on oneself.
USER_FUNCTIONS = {
    "invite_user": "23505",
    "change_user_role": "42501",
    "deactivate_user": "ok",
    "reactivate_user": "PT409",
}


# -- the calls ------------------------------------------------------------------------------


@dataclass
class Call:
    statement: sql.Composed
    check: Callable[[Any], bool]  # the returned value shows the call did what was asked


def _call(function: str, **args: Any) -> sql.Composed:
    return sql.SQL("select api.{}({}) as result").format(
        sql.Identifier(function),
        sql.SQL(", ").join(
            sql.SQL("{} => {}").format(sql.Identifier(k), sql.Literal(v)) for k, v in args.items()
        ),
    )


def _is(field: str, *values: Any) -> Callable[[Any], bool]:
    return lambda result: isinstance(result, dict) and result.get(field) in values


def make_call(
    operation: str, world: RightsWorld, org: RightsOrg, caller: Caller, target: str
) -> Call | None:
    """The call of ``operation`` by ``caller`` on ``target``; None where the target does not
    exist for that caller (own and report of a login without an employee record)."""
    function, _, variant = operation.partition("/")
    if function == "request_sync":
        return Call(_call("request_sync", type="employees"), _is("type", "employees", "full"))
    if function == "mark_notifications_read":
        # targets are notifications: the caller's, another user's, another organisation's
        if target == "report":
            return None
        if target == "own":
            note = org.notifications[caller.key]
        elif target == "other":
            note = org.notifications["viewer-" if caller.key != "viewer-" else "viewer+"]
        else:
            note = world.other(org).notifications[caller.key]
        marked = 1 if target == "own" else 0
        return Call(_call(function, ids=[note]), lambda n: n == marked)
    home = world.other(org) if target == "foreign" else org
    if function in ("change_user_role", "deactivate_user", "reactivate_user"):
        # targets are logins: the caller's own, a viewer of the organisation (for reactivate:
        # an inactive one), the same of the other organisation; nobody's report has a login
        if target == "report":
            return None
        if target == "own":
            user = org.users[caller.key]
        elif function == "reactivate_user":
            user = home.users["inactive"]
        else:
            user = home.users["viewer-" if caller.key != "viewer-" else "viewer+"]
        if function == "change_user_role":
            return Call(_call(function, user_id=user, role="hr_admin"), _is("role", "hr_admin"))
        if function == "deactivate_user":
            return Call(_call(function, user_id=user, reason="rights matrix"), _is("active", False))
        return Call(_call(function, user_id=user), _is("active", True))
    if target in ("own", "report") and not caller.linked:
        return None
    employee = home.employees[
        {"own": f"self:{caller.role}", "report": f"report:{caller.role}"}.get(target, "stranger")
    ]
    rec = home.records

    def about(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
        """The result concerns the target employee and shows what was asked."""
        return lambda r: (
            isinstance(r, dict)
            and r.get("employee_id", r.get("employeeId")) == str(employee)
            and check(r)
        )

    if function == "update_assignment_status":
        status = variant or "in_progress"
        return Call(
            _call(function, assignment_id=rec[(employee, "open")], status=status),
            about(_is("status", status)),
        )
    if function == "record_assignment_result":
        return Call(
            _call(function, assignment_id=rec[(employee, "open")], score=95, minutes_spent=20),
            about(_is("status", "completed")),
        )
    if function == "exempt_assignment":
        return Call(
            _call(function, assignment_id=rec[(employee, "open")], reason="rights matrix"),
            about(_is("status", "exempted")),
        )
    if function == "record_completion":
        return Call(
            _call(function, assignment_id=rec[(employee, "open")], completed_at=datetime.now(UTC),
                  reason="rights matrix: sign-in sheet", score=95),
            about(_is("status", "completed")),
        )
    if function == "correct_completion":
        return Call(
            _call(function, assignment_id=rec[(employee, "open")], reason="rights matrix",
                  score=90),
            about(lambda r: True),
        )
    if function == "unexempt_assignment":
        return Call(
            _call(function, assignment_id=rec[(employee, "exempted")], reason="rights matrix"),
            about(_is("status", "not_started", "overdue")),
        )
    if function == "update_requirement_status":
        status = variant or "in_progress"
        return Call(
            _call(function, requirement_id=rec[(employee, "document")], status=status),
            about(_is("status", status)),
        )
    if function == "submit_requirement":
        return Call(
            _call(function, requirement_id=rec[(employee, "document")], evidence=Jsonb({"n": 1})),
            about(_is("status", "submitted", "approved")),
        )
    if function == "review_requirement":
        return Call(
            _call(function, id=rec[(employee, "submitted")], decision="approved"),
            about(_is("status", "approved")),
        )
    if function == "switch_tier":
        tier = home.org.ids["t2"]
        return Call(
            _call(function, employee_id=employee, tier_id=tier, reason="rights matrix"),
            about(_is("toTierId", str(tier))),
        )
    if function == "deactivate_employee":
        return Call(
            _call(function, employee_id=employee, reason="rights matrix"),
            about(_is("status", "inactive")),
        )
    if function == "resolve_assignment_exception":
        return Call(
            _call(function, exception_id=rec[(employee, "exception")], resolution="rights matrix"),
            _is("resolved", True),
        )
    if function == "invite_user":
        return Call(
            _call(
                function,
                email=f"invited-{uuid.uuid4().hex[:8]}@rights.test",
                role="employee",
                employee_id=employee,
            ),
            _is("employeeId", str(employee)),
        )
    if function == "recalculate_employee":
        return Call(_call(function, employee_id=employee), about(lambda r: True))
    raise KeyError(function)


def writing_functions(conn: psycopg.Connection[Any]) -> list[str]:
    rows = conn.execute(
        "select p.proname from pg_proc p where p.pronamespace = 'api'::regnamespace"
        " and p.provolatile = 'v' order by 1"
    ).fetchall()
    return [r["proname"] for r in rows]


# -- the matrix -----------------------------------------------------------------------------


@dataclass
class Cell:
    org: str
    settings: Settings
    caller: Caller
    operation: str
    target: str
    expected: str
    got: str = ""
    detail: str = ""

    @property
    def mismatch(self) -> bool:
        return self.got != self.expected

    def describe(self) -> str:
        return (
            f"{self.org}/{self.caller.key:<12} api.{self.operation}({self.target})"
            f" [{self.settings.label}]: expected {self.expected}, got {self.got}"
            + (f" ({self.detail})" if self.detail else "")
        )


def run_cell(api: ApiHarness, world: RightsWorld, org: RightsOrg, cell: Cell) -> None:
    call = make_call(cell.operation, world, org, cell.caller, cell.target)
    assert call is not None
    function = cell.operation.partition("/")[0]
    rows, _, error = run_as(
        api, org.users[cell.caller.key], call.statement, "POST", f"/rpc/{function}"
    )
    if error is not None:
        cell.got = error.sqlstate
        cell.detail = error.message
        if not (error.message and error.detail):
            cell.got += " without message and detail"
        return
    result = rows[0]["result"] if rows else None
    if call.check(result):
        cell.got = "none" if cell.expected == "none" else "ok"
    else:
        cell.got = "returned without doing it"
        cell.detail = str(result)[:200]


def _report(line: str, capsys: pytest.CaptureFixture[str]) -> None:
    with capsys.disabled():
        sys.stdout.write(f"\n{line}\n")
        sys.stdout.flush()


def test_every_writing_function_has_stated_expectations(rights_dsn: str) -> None:
    with psycopg.connect(rights_dsn, row_factory=dict_row) as conn:
        functions = writing_functions(conn)
    missing = []
    for operation in operations(functions):
        try:
            expected(operation, CALLERS[0], "other", SETTINGS[0])
        except KeyError:
            missing.append(operation)
    assert functions, "no VOLATILE api function found"
    assert not missing, (
        "every VOLATILE api function needs its rights written out in tests/test_rights_matrix.py "
        "(expected() and make_call()): " + ", ".join(missing)
    )


def test_rights_matrix(
    rights_api: ApiHarness,
    rights_world: RightsWorld,
    rights_dsn: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with psycopg.connect(rights_dsn, autocommit=True, row_factory=dict_row) as owner:
        functions = writing_functions(owner)
        cells: list[Cell] = []
        for settings in SETTINGS:
            owner.execute(
                "update app.organizations set employee_self_report = %s, hr_self_evidence = %s"
                " where id = any(%s)",
                [
                    settings.employee_self_report,
                    settings.hr_self_evidence,
                    [rights_world.a.org.id, rights_world.b.org.id],
                ],
            )
            for org in (rights_world.a, rights_world.b):
                for operation in operations(functions):
                    for caller in CALLERS:
                        for target in TARGETS:
                            if operation == "request_sync" and target != "other":
                                continue  # no target: once per caller
                            if make_call(operation, rights_world, org, caller, target) is None:
                                continue
                            cell = Cell(
                                org.org.slug[-1],
                                settings,
                                caller,
                                operation,
                                target,
                                expected(operation, caller, target, settings),
                            )
                            run_cell(rights_api, rights_world, org, cell)
                            cells.append(cell)
    mismatches = [c for c in cells if c.mismatch]
    refusals = sum(1 for c in cells if c.expected in ("42501", "PT404", "PT409"))
    line = (
        f"Rights matrix: {len(cells)} cells ({len(operations(functions))} operations of"
        f" {len(functions)} functions x {len(CALLERS)} callers x own/report/other/foreign x"
        f" {len(SETTINGS)} settings, {refusals} refusals), {len(mismatches)} mismatches"
    )
    _report(line, capsys)
    assert not mismatches, "\n".join([line, *("mismatch: " + c.describe() for c in mismatches)])
