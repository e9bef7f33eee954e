"""POST /webhooks/stripe: the signature first (computed here by hand, never by the library),
then one SQL function applies the event: bad, missing or stale signatures are 400 and touch
nothing, a body over the limit 413, a redelivery writes nothing."""

from __future__ import annotations

import time
from typing import Any

import httpx
import psycopg

from tests.billing.conftest import BillingOrg, body_of, sign
from tests.fakes.stripe import FakeStripe
from tests.web.conftest import WebServer


def _checkout(fake: FakeStripe, org: BillingOrg) -> dict[str, Any]:
    return fake.event(
        "checkout.session.completed",
        {
            "id": "cs_test_1",
            "object": "checkout.session",
            "customer": org.customer,
            "subscription": "sub_webhook_1",
            "client_reference_id": org.id,
            "metadata": {"price_id": "price_team"},
        },
    )


def _post(server: WebServer, body: bytes, signature: str | None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["Stripe-Signature"] = signature
    return httpx.post(f"{server.base}/webhooks/stripe", content=body, headers=headers)


def _traces(owner: psycopg.Connection[Any], org: BillingOrg, event_id: str) -> tuple[int, int]:
    row = owner.execute(
        "select (select count(*) from app.stripe_events where id = %s) as events,"
        " (select count(*) from app.subscriptions where org_id = %s) as subscriptions",
        [event_id, org.id],
    ).fetchone()
    assert row is not None
    return row["events"], row["subscriptions"]


def test_a_signed_event_is_applied_once(
    billing_server: WebServer,
    billing_org: BillingOrg,
    owner: psycopg.Connection[Any],
    fake_stripe: FakeStripe,
) -> None:
    event = _checkout(fake_stripe, billing_org)
    body = body_of(event)
    first = _post(billing_server, body, sign(body))
    assert first.status_code == 200, first.text
    assert first.json()["outcome"] == "applied"
    assert _traces(owner, billing_org, event["id"]) == (1, 1)
    status = owner.execute(
        "select status::text, plan from app.subscriptions where org_id = %s", [billing_org.id]
    ).fetchone()
    assert status == {"status": "active", "plan": "team"}
    audit_before = owner.execute("select count(*) as n from audit.log").fetchone()
    again = _post(billing_server, body, sign(body))
    assert again.status_code == 200
    assert again.json()["outcome"] == "duplicate"
    assert owner.execute("select count(*) as n from audit.log").fetchone() == audit_before


def test_several_v1_signatures_with_one_valid_are_accepted(
    billing_server: WebServer,
    billing_org: BillingOrg,
    owner: psycopg.Connection[Any],
    fake_stripe: FakeStripe,
) -> None:
    event = _checkout(fake_stripe, billing_org)
    body = body_of(event)
    good = sign(body)
    t, v1 = good.split(",")
    wrong = sign(body, secret="whsec_rotated_out_0000000000000000").split(",")[1]
    response = _post(billing_server, body, f"{t},{wrong},{v1},v0=deadbeef")
    assert response.status_code == 200, response.text
    assert _traces(owner, billing_org, event["id"]) == (1, 1)


def _refused(
    server: WebServer,
    owner: psycopg.Connection[Any],
    org: BillingOrg,
    event: dict[str, Any],
    body: bytes,
    signature: str | None,
    status: int = 400,
) -> dict[str, Any]:
    response = _post(server, body, signature)
    assert response.status_code == status, response.text
    payload = response.json()
    assert payload["success"] is False
    assert _traces(owner, org, event["id"]) == (0, 0), "a refused webhook touched the database"
    return dict(payload["error"])


def test_no_signature_is_400(
    billing_server: WebServer,
    billing_org: BillingOrg,
    owner: psycopg.Connection[Any],
    fake_stripe: FakeStripe,
) -> None:
    event = _checkout(fake_stripe, billing_org)
    error = _refused(billing_server, owner, billing_org, event, body_of(event), None)
    assert error["code"] == "VALIDATION_ERROR"
    assert "Stripe-Signature" in error["message"]


def test_a_malformed_signature_header_is_400(
    billing_server: WebServer,
    billing_org: BillingOrg,
    owner: psycopg.Connection[Any],
    fake_stripe: FakeStripe,
) -> None:
    event = _checkout(fake_stripe, billing_org)
    _refused(billing_server, owner, billing_org, event, body_of(event), "v1=abc")


def test_the_wrong_secret_is_400(
    billing_server: WebServer,
    billing_org: BillingOrg,
    owner: psycopg.Connection[Any],
    fake_stripe: FakeStripe,
) -> None:
    event = _checkout(fake_stripe, billing_org)
    body = body_of(event)
    error = _refused(
        billing_server,
        owner,
        billing_org,
        event,
        body,
        sign(body, secret="whsec_someone_else_000000000000000"),
    )
    assert error["message"] == "the Stripe signature does not verify"


def test_an_altered_body_is_400(
    billing_server: WebServer,
    billing_org: BillingOrg,
    owner: psycopg.Connection[Any],
    fake_stripe: FakeStripe,
) -> None:
    event = _checkout(fake_stripe, billing_org)
    signature = sign(body_of(event))
    event["data"]["object"]["metadata"] = {"price_id": "price_enterprise"}
    _refused(billing_server, owner, billing_org, event, body_of(event), signature)


def test_a_stale_timestamp_is_400(
    billing_server: WebServer,
    billing_org: BillingOrg,
    owner: psycopg.Connection[Any],
    fake_stripe: FakeStripe,
) -> None:
    event = _checkout(fake_stripe, billing_org)
    body = body_of(event)
    tolerance = billing_server.settings.stripe_webhook_tolerance_seconds
    error = _refused(
        billing_server,
        owner,
        billing_org,
        event,
        body,
        sign(body, timestamp=int(time.time()) - tolerance - 60),
    )
    assert "tolerance" in str(error["details"]["reason"]).lower()


def test_a_replayed_old_delivery_is_400(
    billing_server: WebServer,
    billing_org: BillingOrg,
    owner: psycopg.Connection[Any],
    fake_stripe: FakeStripe,
) -> None:
    # A delivery captured a day ago (its signature was valid then), sent again now.
    event = _checkout(fake_stripe, billing_org)
    body = body_of(event)
    captured = sign(body, timestamp=int(time.time()) - 86400)
    _refused(billing_server, owner, billing_org, event, body, captured)


def test_a_validly_signed_body_that_is_not_json_is_400(
    billing_server: WebServer,
    billing_org: BillingOrg,
    owner: psycopg.Connection[Any],
    fake_stripe: FakeStripe,
) -> None:
    event = _checkout(fake_stripe, billing_org)
    body = b"not json at all"
    _refused(billing_server, owner, billing_org, event, body, sign(body))


def test_a_signed_body_that_is_not_an_event_is_400(
    billing_server: WebServer,
    billing_org: BillingOrg,
    owner: psycopg.Connection[Any],
    fake_stripe: FakeStripe,
) -> None:
    event = _checkout(fake_stripe, billing_org)
    body = b'{"id": "evt_x", "type": "invoice.paid"}'
    error = _refused(billing_server, owner, billing_org, event, body, sign(body))
    assert error["message"] == "this is not a Stripe event"


def test_a_body_over_the_limit_is_413(
    billing_server: WebServer,
    billing_org: BillingOrg,
    owner: psycopg.Connection[Any],
    fake_stripe: FakeStripe,
) -> None:
    event = _checkout(fake_stripe, billing_org)
    event["data"]["object"]["metadata"]["padding"] = "x" * (
        billing_server.settings.stripe_webhook_max_bytes + 1
    )
    body = body_of(event)
    _refused(billing_server, owner, billing_org, event, body, sign(body), status=413)


def test_without_a_secret_webhooks_are_503(
    web_server_without_secret: WebServer,
) -> None:
    body = b"{}"
    response = _post(web_server_without_secret, body, sign(body))
    assert response.status_code == 503
    assert "STRIPE_WEBHOOK_SECRET" in response.json()["error"]["message"]
