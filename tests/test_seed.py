"""`compliance db seed-demo`: the demo organisation, deterministic and idempotent.

The seed runs twice (through the CLI) on a fresh, migrated database of the test cluster, with
every rule of db/ in place; the second run must write nothing: every row of every table of
app, audit and sync keeps its content AND its row version (xmin), so not even a no-op UPDATE
happened.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
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


def test_demo_completions_before_their_due_date_are_on_time(seed_dsn: str, seeded: Any) -> None:
    """The demo completes results a few days before their due date, recorded after the rules had
    marked them overdue: lateness is judged by the completion time, so none of them is late."""
    with psycopg.connect(seed_dsn, row_factory=dict_row) as conn:
        row = conn.execute(
            """select count(*) as completed,
                      count(*) filter (where a.is_late) as late,
                      count(*) filter (where (a.completion_date at time zone o.timezone)::date
                                             <= a.due_date) as by_due_date
               from app.training_assignments a join app.organizations o on o.id = a.org_id
               where o.slug = %s and a.status = 'completed'""",
            [DEMO_SLUG],
        ).fetchone()
    assert row is not None
    assert row["completed"] > 0
    assert row["by_due_date"] == row["completed"]
    assert row["late"] == 0
