"""Checkout and portal sessions for superadmins through the stripe library against the fake
Stripe, and the fake's signed deliveries: in order, out of order, twice and late."""

from __future__ import annotations

import time
from typing import Any

import httpx
import psycopg

from tests.billing.conftest import BillingOrg
from tests.fakes.stripe import FakeStripe
from tests.web.conftest import WebServer, make_token


def _call(
    server: WebServer, path: str, user: str, body: Any = None, **headers: str
) -> httpx.Response:
    return httpx.post(
        f"{server.base}{path}",
        json=body,
        headers={"Authorization": f"Bearer {make_token(user)}", **headers},
        timeout=30,
    )


def _state(owner: psycopg.Connection[Any], org: BillingOrg) -> dict[str, Any] | None:
    return owner.execute(
        "select status::text, plan, stripe_subscription_id from app.subscriptions"
        " where org_id = %s",
        [org.id],
    ).fetchone()


def _subscribe(server: WebServer, fake: FakeStripe, org: BillingOrg) -> list[dict[str, Any]]:
    response = _call(server, "/billing/checkout", org.superadmin, {"price_id": "price_team"})
    assert response.status_code == 200, response.text
    session_id = response.json()["id"]
    assert response.json()["url"].endswith(session_id)
    return fake.complete_checkout(session_id)


def test_a_superadmin_subscribes_through_checkout(
    billing_server: WebServer,
    fake_stripe: FakeStripe,
    billing_org: BillingOrg,
    owner: psycopg.Connection[Any],
) -> None:
    events = _subscribe(billing_server, fake_stripe, billing_org)
    session = events[0]["data"]["object"]
    assert session["client_reference_id"] == billing_org.id
    assert session["metadata"] == {"org_id": billing_org.id, "price_id": "price_team"}
    for event in events:
        response = fake_stripe.deliver(event)
        assert response.status_code == 200, response.text
        assert response.json()["outcome"] == "applied"
    state = _state(owner, billing_org)
    assert state is not None
    assert (state["status"], state["plan"]) == ("active", "team")
    portal = _call(billing_server, "/billing/portal", billing_org.superadmin)
    assert portal.status_code == 200, portal.text
    assert portal.json()["url"].startswith(fake_stripe.url)


def test_deliveries_out_of_order_and_twice_end_in_the_same_state(
    billing_server: WebServer,
    fake_stripe: FakeStripe,
    billing_org: BillingOrg,
    owner: psycopg.Connection[Any],
) -> None:
    now = int(time.time())
    events = _subscribe(billing_server, fake_stripe, billing_org)
    session = fake_stripe.sessions[events[0]["data"]["object"]["id"]]
    sub = session["subscription"]
    past_due = fake_stripe.event(
        "customer.subscription.updated",
        fake_stripe.subscription(session, sub, status="past_due"),
        now + 10,
    )
    recovered = fake_stripe.event(
        "customer.subscription.updated",
        fake_stripe.subscription(session, sub, status="active", price="price_pro"),
        now + 20,
    )
    deliveries = [*events, past_due, recovered]
    deliveries += [deliveries[4], deliveries[0], deliveries[2]]  # redeliveries
    outcomes = [
        fake_stripe.deliver(e).json()["outcome"] for e in [recovered, *reversed(deliveries)]
    ]
    assert outcomes.count("duplicate") == 4
    state = _state(owner, billing_org)
    assert state is not None
    assert (state["status"], state["plan"], state["stripe_subscription_id"]) == (
        "active",
        "pro",
        sub,
    ), outcomes


def test_a_late_delivery_is_refused_and_changes_nothing(
    billing_server: WebServer,
    fake_stripe: FakeStripe,
    billing_org: BillingOrg,
    owner: psycopg.Connection[Any],
) -> None:
    events = _subscribe(billing_server, fake_stripe, billing_org)
    late = fake_stripe.deliver(events[0], timestamp=int(time.time()) - 3600)
    assert late.status_code == 400
    assert _state(owner, billing_org) is None


def test_only_superadmins_open_sessions(
    billing_server: WebServer, fake_stripe: FakeStripe, billing_org: BillingOrg
) -> None:
    created = len(fake_stripe.created)
    for path in ("/billing/checkout", "/billing/portal"):
        response = _call(billing_server, path, billing_org.hr_admin, {"price_id": "price_team"})
        assert response.status_code == 403, response.text
        assert response.json()["error"]["code"] == "FORBIDDEN"
        assert response.json()["error"]["message"] == "only superadmins manage billing"
    assert len(fake_stripe.created) == created, "a refused call reached Stripe"


def test_an_unknown_plan_is_400_before_stripe(
    billing_server: WebServer, fake_stripe: FakeStripe, billing_org: BillingOrg
) -> None:
    created = len(fake_stripe.requests)
    response = _call(
        billing_server, "/billing/checkout", billing_org.superadmin, {"price_id": "price_nope"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "price_nope is not a plan of this deployment"
    assert len(fake_stripe.requests) == created
    bad = _call(billing_server, "/billing/checkout", billing_org.superadmin, {"quantity": 0})
    assert bad.status_code == 400
    assert {d["field"] for d in bad.json()["error"]["details"]} == {"price_id", "quantity"}


def test_stripe_refusals_come_back_in_the_envelope(
    billing_server: WebServer,
    fake_stripe: FakeStripe,
    billing_org: BillingOrg,
    owner: psycopg.Connection[Any],
) -> None:
    # a plan of this deployment that Stripe does not know
    owner.execute(
        "insert into app.billing_plans (stripe_price_id, plan, seats_included)"
        " values ('price_ghost', 'ghost', 5) on conflict do nothing"
    )
    response = _call(
        billing_server, "/billing/checkout", billing_org.superadmin, {"price_id": "price_ghost"}
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "UNPROCESSABLE_ENTITY"
    assert error["message"] == "Stripe refused the checkout session: No such price: 'price_ghost'"
    portal = _call(billing_server, "/billing/portal", billing_org.superadmin)
    assert portal.status_code == 409
    assert portal.json()["error"]["message"] == "the organisation has no Stripe customer yet"


def test_the_same_idempotency_key_opens_one_session(
    billing_server: WebServer, fake_stripe: FakeStripe, billing_org: BillingOrg
) -> None:
    created = len(fake_stripe.created)
    ids = {
        _call(
            billing_server,
            "/billing/checkout",
            billing_org.superadmin,
            {"price_id": "price_team"},
            **{"Idempotency-Key": f"checkout-{billing_org.id}"},
        ).json()["id"]
        for _ in range(3)
    }
    assert len(ids) == 1
    assert len(fake_stripe.created) == created + 1


def test_opening_the_checkout_url_pays_and_delivers_the_webhooks(
    billing_server: WebServer,
    fake_stripe: FakeStripe,
    billing_org: BillingOrg,
    owner: psycopg.Connection[Any],
) -> None:
    response = _call(
        billing_server, "/billing/checkout", billing_org.superadmin, {"price_id": "price_team"}
    )
    paid = httpx.get(response.json()["url"], timeout=30)
    assert paid.status_code == 303
    assert paid.headers["location"] == billing_server.settings.stripe_return_url
    assert paid.json() == {"delivered": [200, 200, 200]}
    state = _state(owner, billing_org)
    assert state is not None
    assert (state["status"], state["plan"]) == ("active", "team")
