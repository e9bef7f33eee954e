"""After a canceled subscription's paid period, requests run as PostgREST runs them: a write is
402 naming the state and what to do, a read and a STABLE function called by POST (PostgREST
runs it read-only) still answer, and the web app's export still streams."""

from __future__ import annotations

from typing import Any

import httpx
import psycopg
import pytest
from psycopg.types.json import Jsonb

from compliance.db import ApiError
from tests.billing.conftest import BillingOrg
from tests.conftest import ApiHarness
from tests.web.conftest import WebServer, make_token


@pytest.fixture
def paused(billing_org: BillingOrg, owner: psycopg.Connection[Any]) -> BillingOrg:
    """The organisation's subscription was canceled; it was paid until 2001 (long past)."""
    deleted = {
        "id": f"evt_paused_{billing_org.customer}",
        "type": "customer.subscription.deleted",
        "created": 978307200,
        "data": {
            "object": {
                "id": "sub_paused",
                "customer": billing_org.customer,
                "status": "canceled",
                "current_period_end": 978307200,
                "metadata": {"org_id": billing_org.id},
            }
        },
    }
    owner.execute("select app.apply_stripe_event(%s)", [Jsonb(deleted)])
    return billing_org


def test_writes_are_402_and_reads_go_on(api: ApiHarness, paused: BillingOrg) -> None:
    with pytest.raises(ApiError) as refused:
        api.call(paused.hr_admin, "select api.mark_notifications_read()", method="POST")
    assert refused.value.http_status == 402
    assert refused.value.message == "changing records is paused: the subscription is canceled"
    assert refused.value.detail == (
        "The organisation's subscription is canceled and was paid until 2000-12-31."
    )
    assert "billing portal" in (refused.value.hint or "")
    rows = api.call(paused.hr_admin, "select count(*) as n from api.app_users", method="GET")
    assert rows == [{"n": 2}]
    subscription = api.one(
        paused.superadmin, "select status::text from api.subscriptions", method="GET"
    )
    assert subscription == {"status": "canceled"}


def test_an_export_still_streams(billing_server: WebServer, paused: BillingOrg) -> None:
    response = httpx.get(
        f"{billing_server.base}/export/audit.csv",
        headers={"Authorization": f"Bearer {make_token(paused.hr_admin)}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert "subscription_changed" in response.text
