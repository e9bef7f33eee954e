"""`compliance db seed-demo`: the demo organisation, deterministic and idempotent.

The seed runs twice (through the CLI) on a fresh, migrated database of the test cluster, with
every rule of db/ in place; the second run must write nothing: every row of every table of
app, audit and sync keeps its content AND its row version (xmin), so not even a no-op UPDATE
happened.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import jwt
import psycopg
import pytest
from click.testing import CliRunner
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg.rows import dict_row

from compliance.cli import cli
from compliance.migrate import migrate
from compliance.seed import DEMO_DOMAIN, DEMO_SLUG, DEMO_USERS, demo_id
from tests.conftest import DB_DIR

SECRET = "seed-test-secret-" + "x" * 32

Query = sql.SQL | sql.Composed


@pytest.fixture(scope="module")
def seed_dsn(dsn: str) -> Iterator[str]:
    name = f"seed_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    target = make_conninfo(dsn, dbname=name)
    try:
        migrate(target, DB_DIR, echo=lambda _line: None)
        yield target
    finally:
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
            )


def fingerprint(target: str) -> dict[str, tuple[int, str]]:
    """Rows and a digest of (xmin, row) of every table of app, audit and sync."""
    with psycopg.connect(target, row_factory=dict_row) as conn:
        tables = [
            r["t"]
            for r in conn.execute(
                """select format('%I.%I', n.nspname, c.relname) as t
               from pg_class c join pg_namespace n on n.oid = c.relnamespace
               where c.relkind in ('r', 'p') and n.nspname in ('app', 'audit', 'sync')
               order by 1"""
            ).fetchall()
        ]
        found = {}
        for table in tables:
            row = conn.execute(
                sql.SQL(
                    "select count(*) as n, md5(coalesce(string_agg(x.xmin::text || ':' || x::text, "
                    "'|' order by x::text), '')) as digest from {} x"
                ).format(sql.SQL(table))
            ).fetchone()
            assert row is not None
            found[table] = (int(row["n"]), str(row["digest"]))
        return found


def seed(target: str) -> str:
    result = CliRunner().invoke(cli, ["db", "seed-demo"], env={"DATABASE_URL": target})
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def seeded(seed_dsn: str) -> tuple[dict[str, tuple[int, str]], dict[str, tuple[int, str]]]:
    assert "seeded the demo organisation" in seed(seed_dsn)
    first = fingerprint(seed_dsn)
    seed(seed_dsn)
    return first, fingerprint(seed_dsn)


def test_a_second_run_writes_nothing(seeded: Any) -> None:
    first, second = seeded
    changed = [
        f"{t}: {first[t][0]} -> {second[t][0]} rows"
        + (" (same count, rows rewritten)" if first[t][0] == second[t][0] else "")
        for t in first
        if first[t] != second[t]
    ]
    assert not changed, "the second seed-demo changed:\n  " + "\n  ".join(changed)


def _one(conn: psycopg.Connection[Any], query: str | Query, *params: Any) -> Any:
    row = conn.execute(query.encode() if isinstance(query, str) else query, params).fetchone()
    assert row is not None
    return row[0]


def test_the_demo_organisation(seed_dsn: str, seeded: Any) -> None:
    with psycopg.connect(seed_dsn) as conn:
        org = _one(conn, "select id from app.organizations where slug = %s", DEMO_SLUG)
        assert org == demo_id("organization", DEMO_SLUG)

        def count(table: str, where: str = "true") -> int:
            query = sql.SQL("select count(*) from {} where org_id = %s and {}").format(
                sql.SQL(table), sql.SQL(where)
            )
            return int(_one(conn, query, org))

        assert sorted(
            r[0] for r in conn.execute("select name from app.locations where org_id = %s", [org])
        ) == ["Ann Arbor", "Plymouth", "Wixom"]
        assert count("app.departments") == 6
        assert count("app.employees") == 60
        assert (
            count(
                "app.employees",
                "zenefits_id is not null and classroom_user_id is not null "
                "and job_title is not null",
            )
            == 60
        )
        # One head: the practice administrator; every department manager reports to them.
        assert count("app.employees", "manager_id is null") == 1
        assert count("app.training_modules") == 12
        assert _one(
            conn,
            "select array_agg(distinct substr(month_key, 6) order by substr(month_key, 6))"
            " from app.training_modules where org_id = %s",
            org,
        ) == [f"{m:02d}" for m in range(1, 13)]
        assert (
            count(
                "app.training_modules",
                "due_date = (date_trunc('month', due_date) + interval '1 month - 1 day')::date"
                " and classroom_coursework_id is not null",
            )
            == 12
        )
        assert count("app.department_training_requirements") >= 6 * 8
        assert count("app.compliance_tiers") == 3
        assert count("app.compliance_tiers", "is_default and level = 1") == 1
        assert {
            r[0]
            for r in conn.execute(
                "select distinct type::text from app.compliance_requirements where org_id = %s",
                [org],
            )
        } == {"training", "document", "certification", "attestation"}
        assert count("app.compliance_requirements", "type = 'training' and module_id is null") == 0
        assert count("app.role_tier_mappings") >= 3
        # The database's rules gave every employee their assignments (when they are in db/);
        # most of those already due have a passing result.
        if count("app.training_assignments"):
            assert count("app.training_assignments", "status = 'completed' and score >= 80") > 0


def test_one_login_of_every_role(seed_dsn: str, seeded: Any) -> None:
    with psycopg.connect(seed_dsn) as conn:
        users = {
            r[0]: r[1:]
            for r in conn.execute(
                """select u.email, u.app_role::text, u.employee_id, e.manager_id
               from app.app_users u
               left join app.employees e on e.org_id = u.org_id and e.id = u.employee_id"""
            )
        }
    assert {email: role for email, (role, _, _) in users.items()} == {
        email: role for email, (role, _) in DEMO_USERS.items()
    }
    manager_employee = users[f"manager@{DEMO_DOMAIN}"][1]
    employee_employee, employee_manager = users[f"employee@{DEMO_DOMAIN}"][1:]
    assert manager_employee is not None
    assert employee_employee is not None
    assert employee_manager == manager_employee, "the demo employee reports to the demo manager"


def test_a_token_for_every_demo_login(seed_dsn: str, seeded: Any) -> None:
    for email in DEMO_USERS:
        result = CliRunner().invoke(
            cli, ["token", "--email", email], env={"DATABASE_URL": seed_dsn, "JWT_SECRET": SECRET}
        )
        assert result.exit_code == 0, result.output
        claims = jwt.decode(
            result.output.strip(), SECRET, algorithms=["HS256"], options={"verify_aud": False}
        )
        assert claims["sub"] == str(demo_id("user", email))


def test_demo_completions_by_their_due_date_are_on_time(seed_dsn: str, seeded: Any) -> None:
    """The demo records results on their own day, some after the rules had marked them overdue:
    lateness is judged by the completion time, so none completed by its due date is late."""
    with psycopg.connect(seed_dsn, row_factory=dict_row) as conn:
        row = conn.execute(
            """select count(*) as by_due_date, count(*) filter (where a.is_late) as late
               from app.training_assignments a join app.organizations o on o.id = a.org_id
               where o.slug = %s and a.status = 'completed'
                 and (a.completion_date at time zone o.timezone)::date <= a.due_date""",
            [DEMO_SLUG],
        ).fetchone()
    assert row is not None
    assert row["by_due_date"] > 0
    assert row["late"] == 0


# -- the demo's story, on days of the year ------------------------------------------------------


@pytest.fixture(scope="module", params=["2026-03-08", "2026-12-21"])
def story(request: pytest.FixtureRequest, dsn: str) -> Iterator[tuple[str, Any]]:
    """A database seeded for a given day (a DST change day and a December day)."""
    from datetime import date

    from compliance.seed import demo_calendar, seed_demo

    today = date.fromisoformat(request.param)
    name = f"story_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    target = make_conninfo(dsn, dbname=name)
    try:
        migrate(target, DB_DIR, echo=lambda _line: None)
        with psycopg.connect(target) as conn:
            seed_demo(conn, today=today)
            conn.commit()
        yield target, demo_calendar(today)
    finally:
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
            )


def _rows(target: str, query: str, *params: Any) -> list[dict[str, Any]]:
    with psycopg.connect(target, row_factory=dict_row) as conn:
        conn.execute("select set_config('app.today', %s, false)", [params[0].isoformat()])
        return conn.execute(query.encode(), params[1:]).fetchall()


_ASSIGNMENTS = """
    select a.*, e.zenefits_id, e.start_date, m.month_key, m.due_date as module_due,
           app.local_date(a.org_id, a.completion_date) as completed_on
    from app.training_assignments a
    join app.employees e on e.org_id = a.org_id and e.id = a.employee_id
    join app.training_modules m on m.org_id = a.org_id and m.id = a.module_id
    where a.org_id = %s
"""


def test_the_story_no_assignment_is_due_before_its_module_existed(story: Any) -> None:
    target, cal = story
    org = demo_id("organization", DEMO_SLUG)
    rows = _rows(target, _ASSIGNMENTS, cal.today, org)
    introduced = {m.key: m.introduced for m in cal.modules}
    assert rows
    early = [r for r in rows if r["due_date"] < introduced[r["month_key"]]]
    assert not early, f"{len(early)} assignments due before their module existed: {early[:3]}"


def test_the_story_results_are_mostly_on_time_and_late_by_days(story: Any) -> None:
    target, cal = story
    org = demo_id("organization", DEMO_SLUG)
    done = [
        r for r in _rows(target, _ASSIGNMENTS, cal.today, org)
        if r["status"] == "completed" and r["is_required"]
    ]  # fmt: skip
    assert len(done) >= 50
    late = [r for r in done if r["is_late"]]
    assert 0.80 <= 1 - len(late) / len(done) <= 0.97, (len(late), len(done))
    assert late, "a few results are late"
    assert all(1 <= r["days_late"] <= 30 for r in late), [r["days_late"] for r in late]
    # lateness is a fact of the completion day in the organisation's zone
    assert all(
        r["is_late"] == (r["completed_on"] > r["due_date"] + timedelta(days=r["grace_days"]))
        for r in done
    )


def test_the_story_a_handful_overdue_by_days_or_weeks(story: Any) -> None:
    target, cal = story
    org = demo_id("organization", DEMO_SLUG)
    overdue = [
        r for r in _rows(target, _ASSIGNMENTS, cal.today, org)
        if r["status"] == "overdue" and r["is_required"]
    ]  # fmt: skip
    assert overdue, "someone is overdue"
    assert len(overdue) <= 60, len(overdue)
    assert max((cal.today - r["due_date"]).days for r in overdue) <= 75


def test_the_story_exemption_move_rule_rehire_and_recertification(story: Any) -> None:
    target, cal = story
    org = demo_id("organization", DEMO_SLUG)
    rows = _rows(target, _ASSIGNMENTS, cal.today, org)
    by_person: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_person.setdefault(str(r["employee_id"]), []).append(r)
    # one exemption, with its reason
    exempted = [r for r in rows if r["status"] == "exempted"]
    assert len(exempted) == 1
    assert exempted[0]["exemption_reason"]
    # the department move: Nursing's clinical modules, owed from the move day
    moved = by_person[str(demo_id("employee", cal.moved))]
    # (Bloodborne Pathogens is required of everyone hired, so only Nursing's other two are new)
    clinical = {cal.module(n).key for n in (5, 6) if cal.module(n).introduced < cal.move_day}
    owed = [r for r in moved if r["month_key"] in clinical and r["is_required"]]
    if cal.move_day <= cal.today:
        assert {r["month_key"] for r in owed} == clinical
        assert all(r["due_date"] >= cal.move_day for r in owed)
    # the rule added mid-year reaches the Laboratory's staff, due no earlier than it was added
    rule_module = cal.module(7).key
    lab = _rows(
        target,
        "select id from app.employees"
        " where org_id = %s and department_id = %s and status = 'active'",
        cal.today, org, demo_id("department", "laboratory"),
    )  # fmt: skip
    lab_ids = {str(r["id"]) for r in lab}
    lab_rows = [
        r for r in rows if str(r["employee_id"]) in lab_ids and r["month_key"] == rule_module
    ]
    if cal.rule_day <= cal.today:
        assert len({str(r["employee_id"]) for r in lab_rows}) == len(lab_ids)
        assert all(r["due_date"] >= cal.rule_day for r in lab_rows)
    # the rehire: nothing from the first employment counts, the new ones are due after return
    rehired = by_person[str(demo_id("employee", cal.rehired))]
    if cal.rehire_day <= cal.today:
        counting_open = [
            r for r in rehired
            if r["is_required"] and r["status"] in ("not_started", "in_progress", "overdue")
        ]  # fmt: skip
        assert all(r["due_date"] >= cal.rehire_day for r in counting_open)
        assert any(r["not_required_reason"] == "superseded_by_rehire" for r in rehired)
    # recertification: a completion of an annual module whose window (30 days before expiry) has
    # opened has its next cycle, due on the expiry date
    annual = {m.key: m.validity for m in cal.modules if m.validity}
    windows = [
        r for r in rows
        if r["month_key"] in annual and r["status"] == "completed"
        and r["completed_on"] + timedelta(days=annual[r["month_key"]] - 30) <= cal.today
    ]  # fmt: skip
    for r in windows:
        later = [
            x for x in by_person[str(r["employee_id"])]
            if x["month_key"] == r["month_key"] and x["due_date"] > r["due_date"]
        ]  # fmt: skip
        assert later, f"no next cycle for a completion of {r['completed_on']}"
        assert later[0]["due_date"] == r["completed_on"] + timedelta(days=annual[r["month_key"]])
