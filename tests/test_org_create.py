"""Onboarding: `compliance org create` makes an organisation with DESIGN §4's settings and its
first superadmin, says what to do next, changes nothing when run again, and refuses an unknown
time zone or a taken slug with what to do; `compliance doctor` notes an organisation whose
upstreams are not configured yet."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
from click.testing import CliRunner
from psycopg.rows import dict_row

from compliance.cli import cli
from compliance.doctor import Level, run_checks


def create(dsn: str, *args: str) -> Any:
    return CliRunner().invoke(cli, ["org", "create", *args], env={"DATABASE_URL": dsn})


def test_org_create_is_idempotent_and_validated(dsn: str) -> None:
    slug = f"new-clinic-{uuid.uuid4().hex[:6]}"
    args = [
        "--name",
        "New Clinic",
        "--slug",
        slug,
        "--timezone",
        "America/Detroit",
        "--admin-email",
        "IT@new-clinic.example",
    ]
    first = create(dsn, *args)
    assert first.exit_code == 0, first.output
    assert f"organisation {slug} (New Clinic, America/Detroit) created" in first.output
    assert "Next steps" in first.output
    assert f"COMPLIANCE_ORG_SLUG={slug}" in first.output
    again = create(dsn, *args)
    assert again.exit_code == 0, again.output
    assert "already exists (nothing changed)" in again.output
    with psycopg.connect(dsn, row_factory=dict_row) as conn:
        org = conn.execute(
            "select id, timezone, default_passing_score, audit_retention_months, escalation_days,"
            " reminder_days from app.organizations where slug = %s",
            [slug],
        ).fetchall()
        assert len(org) == 1
        assert (
            org[0]["default_passing_score"],
            org[0]["audit_retention_months"],
            org[0]["escalation_days"],
            org[0]["reminder_days"],
        ) == (80, 12, 14, 7)
        users = conn.execute(
            "select email, app_role::text, active from app.app_users where org_id = %s",
            [org[0]["id"]],
        ).fetchall()
        assert users == [
            {"email": "it@new-clinic.example", "app_role": "superadmin", "active": True}
        ]
        assert conn.execute(
            "select count(*) as n from audit.log"
            " where org_id = %s and event_type = 'organization_created'",
            [org[0]["id"]],
        ).fetchone() == {"n": 1}

    taken = create(dsn, "--name", "Other Clinic", *args[2:])
    assert taken.exit_code == 1
    assert f"the slug {slug} is taken" in taken.output
    assert "Choose another slug" in taken.output
    unknown = create(
        dsn,
        "--name",
        "Elsewhere",
        "--slug",
        f"{slug}-x",
        "--timezone",
        "Mars/Olympus",
        "--admin-email",
        "a@b.example",
    )
    assert unknown.exit_code == 1
    assert "unknown time zone 'Mars/Olympus'" in unknown.output
    assert "America/Detroit" in unknown.output
    bad_slug = create(
        dsn,
        "--name",
        "X",
        "--slug",
        "Not A Slug",
        "--timezone",
        "UTC",
        "--admin-email",
        "a@b.example",
    )
    assert bad_slug.exit_code == 1
    assert "is not a valid slug" in bad_slug.output
    with psycopg.connect(dsn, row_factory=dict_row) as conn:
        assert conn.execute(
            "select count(*) as n from app.organizations where slug like %s", [f"{slug}%"]
        ).fetchone() == {"n": 1}, "refusals created nothing"

    # The doctor notes the new organisation: no upstreams configured, never synced.
    findings = run_checks({"DATABASE_URL": dsn, "PATH": "/usr/bin:/bin"}, upstreams=False)
    notes = [f for f in findings if f.check == "organisations" and f.level is Level.NOTE]
    assert any("no upstreams configured yet" in f.message and slug in f.message for f in notes), (
        notes
    )
    assert not any(f.is_problem for f in notes)
