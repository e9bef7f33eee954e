"""Done when (issue 15): a new organisation goes from `compliance org create` to a first
completed sync and an HR admin signed in with an RS256 token from the test identity provider."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import jwt
import psycopg
import pytest
from click.testing import CliRunner
from psycopg.conninfo import make_conninfo
from psycopg.rows import dict_row

from compliance.cli import cli
from sync.runner import SyncRunner
from tests.conftest import ApiHarness
from tests.fakes import FakeUpstreams
from tests.fakes.dataset import synthetic
from tests.sync.conftest import settings_for
from tests.sync.helpers import Org
from tests.web.conftest import WebServer
from tests.web.test_identity_provider import AUDIENCE, ISSUER, Jwks

pytestmark = pytest.mark.e2e


def test_from_org_create_to_a_synced_org_and_an_hr_admin_signed_in(
    dsn: str, start_web: Any, api: ApiHarness, tmp_path: Any
) -> None:
    slug = f"onboard-{uuid.uuid4().hex[:8]}"
    created = CliRunner().invoke(
        cli,
        ["org", "create", "--name", "Onboarded Clinic", "--slug", slug,
         "--timezone", "America/Detroit", "--admin-email", f"it@{slug}.test"],
        env={"DATABASE_URL": dsn},
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as su:
        org = su.execute(
            "select id::text as id from app.organizations where slug = %s", [slug]
        ).fetchone()
        assert org is not None
        su.execute(
            "update app.organizations set identity_issuer = %s where id = %s", [ISSUER, org["id"]]
        )
        admin = su.execute(
            "select id from app.app_users where org_id = %s and app_role = 'superadmin'",
            [org["id"]],
        ).fetchone()
        assert admin is not None

    # The first sync, as the worker runs it, from the fake upstreams.
    worker_dsn = make_conninfo(dsn, user="sync_worker")
    with (
        FakeUpstreams(synthetic(40, courseworks=2), key_dir=tmp_path / "keys") as upstreams,
        psycopg.connect(worker_dsn, autocommit=True) as worker,
    ):
        settings = settings_for(upstreams, Org(org["id"], slug), worker_dsn)
        summary = SyncRunner(worker, settings).run("all")
    assert summary.status == "completed", summary

    # The superadmin invites one of the synced people as HR admin.
    person = api.one(
        admin["id"],
        "select id, email from api.employees where email is not null order by email limit 1",
        method="GET",
    )
    invited = api.one(
        admin["id"],
        "select api.invite_user(email => %s, role => 'hr_admin', employee_id => %s) as u",
        [person["email"], person["id"]],
    )["u"]
    assert invited["role"] == "hr_admin"

    # They sign in with an RS256 token of the identity provider.
    jwks = Jwks()
    try:
        jwks.add_rsa("rsa-1")
        server: WebServer = start_web(
            jwt_jwks_url=jwks.url, jwt_issuer=ISSUER, jwt_audience=AUDIENCE
        )
        token = jwks.token("rsa-1", f"idp-{slug}", email=person["email"], email_verified=True)
        claims = jwt.decode(token, options={"verify_signature": False})
        rows = api.call(claims, "select count(*) as n from api.employees")  # POST: links
        assert rows[0]["n"] > 0
        response = httpx.get(
            server.base + "/export/compliance.csv",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 200, response.text
        assert person["email"].split("@")[0].split(".")[0].lower() in response.text.lower()
    finally:
        jwks.close()
    with psycopg.connect(dsn, row_factory=dict_row) as su:
        link = su.execute(
            "select user_id::text from app.identity_links where issuer = %s and subject = %s",
            [ISSUER, f"idp-{slug}"],
        ).fetchone()
    assert link == {"user_id": invited["id"]}
