"""Billing tests: a web server with a Stripe webhook secret, an organisation with a superadmin,
and Stripe-Signature headers computed here, independently of the stripe library (HMAC-SHA256 of
"t.payload" with the endpoint secret, as docs.stripe.com/webhooks#verify-manually describes)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo
from psycopg.rows import dict_row

from tests.fakes.stripe import API_KEY, WEBHOOK_SECRET, FakeStripe, signature_header
from tests.web.conftest import WebServer, start_server


def sign(payload: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """A Stripe-Signature header for ``payload`` (signed now unless ``timestamp`` says when)."""
    return signature_header(payload, secret, timestamp)


def body_of(event: dict[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode()


@dataclass
class BillingOrg:
    id: str
    superadmin: str
    hr_admin: str
    customer: str


@pytest.fixture(scope="module")
def fake_stripe() -> Iterator[FakeStripe]:
    with FakeStripe() as fake:
        yield fake  # type: ignore[misc]


@pytest.fixture(scope="module")
def billing_server(dsn: str, fake_stripe: FakeStripe) -> Iterator[WebServer]:
    """The web app with the fake Stripe's API key, API base and webhook secret."""
    server = start_server(
        make_conninfo(dsn, user="web_app", application_name="compliance-billing-test"),
        stripe_webhook_secret=WEBHOOK_SECRET,
        stripe_webhook_max_bytes=64 * 1024,
        stripe_api_key=API_KEY,
        stripe_api_base=fake_stripe.url,
        stripe_return_url="http://app.test/billing",
    )
    fake_stripe.webhook_url = f"{server.base}/webhooks/stripe"
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def billing_org(dsn: str) -> BillingOrg:
    """A new organisation with a superadmin and an HR admin, and the team plan."""
    slug = f"billing-{uuid.uuid4().hex[:10]}"
    with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
        conn.execute(
            "insert into app.billing_plans (stripe_price_id, plan, seats_included)"
            " values ('price_team', 'team', 25), ('price_pro', 'pro', 100) on conflict do nothing"
        )
        org = conn.execute(
            "insert into app.organizations (name, slug) values (%s, %s) returning id::text",
            [slug.title(), slug],
        ).fetchone()
        assert org is not None
        users = {}
        for role in ("superadmin", "hr_admin"):
            row = conn.execute(
                "insert into app.app_users (org_id, email, display_name, app_role)"
                " values (%s, %s, %s, %s) returning id::text",
                [org["id"], f"{role}@{slug}.test", role.title(), role],
            ).fetchone()
            assert row is not None
            users[role] = row["id"]
    return BillingOrg(
        org["id"], users["superadmin"], users["hr_admin"], f"cus_{uuid.uuid4().hex[:14]}"
    )


@pytest.fixture
def owner(dsn: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
        yield conn


@pytest.fixture(scope="module")
def web_server_without_secret(dsn: str) -> Iterator[WebServer]:
    server = start_server(make_conninfo(dsn, user="web_app"))
    try:
        yield server
    finally:
        server.stop()
