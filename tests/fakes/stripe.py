"""A fake of the Stripe API for billing (the calls the ``stripe`` library makes for Checkout and
the Billing Portal), and a webhook sender that signs its deliveries the way Stripe documents
(``Stripe-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "t.payload")>``), computed here
without the library.

- ``Authorization: Bearer sk_...`` on every call, else 401 with Stripe's error body;
- form-encoded bodies with bracketed keys (``line_items[0][price]=...``);
- ``Idempotency-Key``: the same key answers the same object again (and creates nothing);
- ``POST /v1/checkout/sessions`` (mode subscription, one price of the fake's catalogue, a
  client_reference_id) and ``POST /v1/billing_portal/sessions`` (a known customer); anything
  else is Stripe's ``invalid_request_error`` (400) or ``resource_missing`` (404).

Paying: ``GET <session url>`` (``/c/pay/<id>``, no key: the customer's browser) or
``POST /_fake/checkout/<id>/complete`` completes the session and delivers its events.

Webhooks: :meth:`FakeStripe.complete_checkout` turns a Checkout session into the events Stripe
sends (``checkout.session.completed``, ``customer.subscription.created``, ``invoice.paid``);
:meth:`FakeStripe.event` builds any other; :meth:`FakeStripe.deliver` posts one, signed (with
a chosen timestamp or secret, for late or forged deliveries), to ``webhook_url``.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
import uuid
from typing import Any
from urllib.parse import parse_qs

import httpx

from tests.fakes.server import FakeServer, Reply, Request

__all__ = ["FakeStripe", "signature_header"]

API_KEY = "sk_test_fake_stripe_key"
WEBHOOK_SECRET = "whsec_fake_stripe_webhook_secret"


def signature_header(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """``t=<timestamp>,v1=<hex HMAC-SHA256(secret, "t.payload")>`` (docs.stripe.com/webhooks)."""
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def _form(body: bytes) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}


class FakeStripe(FakeServer):
    name = "stripe"

    def __init__(
        self,
        prices: dict[str, str] | None = None,
        api_key: str = API_KEY,
        webhook_secret: str = WEBHOOK_SECRET,
        webhook_url: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.api_key = api_key
        self.webhook_secret = webhook_secret
        self.webhook_url = webhook_url
        #: price id -> product name
        self.prices = dict(prices or {"price_team": "Team", "price_pro": "Pro"})
        self.sessions: dict[str, dict[str, Any]] = {}
        self.customers: set[str] = set()
        self.created: list[str] = []  # ids of the objects created, in order
        self._idempotent: dict[str, Reply] = {}
        self._ids = itertools.count(1)
        self._run = uuid.uuid4().hex[:8]  # ids unique across fakes sharing one database
        self._lock = threading.Lock()

    def _id(self, prefix: str) -> str:
        return f"{prefix}_fake{self._run}{next(self._ids):06d}"

    def error_body(self, status: int, message: str) -> Any:
        kind = "api_error" if status >= 500 else "invalid_request_error"
        return {"error": {"type": kind, "message": message}}

    def _invalid(self, message: str, param: str, status: int = 400, code: str = "") -> Reply:
        error: dict[str, Any] = {
            "type": "invalid_request_error",
            "message": message,
            "param": param,
        }
        if code:
            error["code"] = code
        return Reply(status, {"error": error})

    # -- the API --------------------------------------------------------------------------------

    def route(self, request: Request) -> Reply:
        if request.method == "GET" and request.path.startswith("/c/pay/"):
            return self._pay(request.path.removeprefix("/c/pay/"))
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return Reply(
                401,
                {
                    "error": {
                        "type": "invalid_request_error",
                        "message": "Invalid API Key provided.",
                    }
                },
            )
        key = request.headers.get("idempotency-key")
        with self._lock:
            if key is not None and key in self._idempotent:
                return self._idempotent[key]
            reply = self._create(request)
            if key is not None and reply.status < 500:
                self._idempotent[key] = reply
            return reply

    def _create(self, request: Request) -> Reply:
        if request.method != "POST":
            return self._invalid(f"Unrecognized request URL ({request.path}).", "url", 404)
        form = _form(request.body)
        if request.path == "/v1/checkout/sessions":
            return self._checkout(form)
        if request.path == "/v1/billing_portal/sessions":
            customer = form.get("customer", "")
            if customer not in self.customers:
                return self._invalid(
                    f"No such customer: '{customer}'", "customer", 404, "resource_missing"
                )
            session: dict[str, Any] = {
                "id": self._id("bps"),
                "object": "billing_portal.session",
                "customer": customer,
                "return_url": form.get("return_url"),
                "url": f"{self.url}/p/session/{customer}",
            }
            self.created.append(session["id"])
            return Reply(200, session)
        return self._invalid(f"Unrecognized request URL (POST: {request.path}).", "url", 404)

    def _checkout(self, form: dict[str, str]) -> Reply:
        if form.get("mode") != "subscription":
            return self._invalid("You must provide mode=subscription here.", "mode")
        price = form.get("line_items[0][price]", "")
        if price not in self.prices:
            return self._invalid(
                f"No such price: '{price}'", "line_items[0][price]", 400, "resource_missing"
            )
        for param in ("success_url", "cancel_url"):
            if not form.get(param):
                return self._invalid(f"Missing required param: {param}.", param)
        customer = form.get("customer") or self._id("cus")
        session: dict[str, Any] = {
            "id": self._id("cs_test"),
            "object": "checkout.session",
            "mode": "subscription",
            "status": "open",
            "customer": customer,
            "client_reference_id": form.get("client_reference_id"),
            "metadata": {
                k[len("metadata[") : -1]: v for k, v in form.items() if k.startswith("metadata[")
            },
            "subscription_metadata": {
                k[len("subscription_data[metadata][") : -1]: v
                for k, v in form.items()
                if k.startswith("subscription_data[metadata][")
            },
            "price": price,
            "quantity": int(form.get("line_items[0][quantity]") or 1),
            "success_url": form["success_url"],
            "cancel_url": form["cancel_url"],
            "url": "",
        }
        session["url"] = f"{self.url}/c/pay/{session['id']}"
        self.sessions[session["id"]] = session
        self.created.append(session["id"])
        return Reply(200, {k: v for k, v in session.items() if k != "subscription_metadata"})

    def _pay(self, session_id: str) -> Reply:
        """The customer pays (the page a Checkout session's url opens): the session completes,
        its events are delivered to ``webhook_url``, and the browser goes to success_url."""
        session = self.sessions.get(session_id)
        if session is None or session["status"] != "open":
            return self._invalid(f"No open checkout session: '{session_id}'", "session", 404)
        answers = [self.deliver(event).status_code for event in self.complete_checkout(session_id)]
        return Reply(303, {"delivered": answers}, {"Location": session["success_url"]})

    def control(self, request: Request) -> Reply | None:
        """``POST /_fake/checkout/<session id>/complete``: the customer paid (as ``/c/pay``)."""
        parts = request.path.strip("/").split("/")
        if (
            request.method == "POST"
            and len(parts) == 4
            and parts[1] == "checkout"
            and parts[3] == "complete"
        ):
            return self._pay(parts[2])
        return None

    # -- webhooks -------------------------------------------------------------------------------

    def event(
        self, event_type: str, obj: dict[str, Any], created: int | None = None
    ) -> dict[str, Any]:
        """An event as Stripe sends it."""
        return {
            "id": self._id("evt"),
            "object": "event",
            "api_version": "2024-06-20",
            "created": int(time.time()) if created is None else created,
            "livemode": False,
            "type": event_type,
            "data": {"object": obj},
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
        }

    def subscription(
        self,
        session: dict[str, Any],
        subscription_id: str,
        status: str = "active",
        price: str | None = None,
        period_end: int | None = None,
        cancel_at_period_end: bool = False,
    ) -> dict[str, Any]:
        """The subscription object of a completed Checkout session."""
        return {
            "id": subscription_id,
            "object": "subscription",
            "customer": session["customer"],
            "status": status,
            "cancel_at_period_end": cancel_at_period_end,
            "current_period_end": period_end or int(time.time()) + 30 * 86400,
            "trial_end": None,
            "metadata": session["subscription_metadata"],
            "items": {
                "object": "list",
                "data": [
                    {
                        "id": f"si_{subscription_id}",
                        "quantity": session["quantity"],
                        "price": {"id": price or session["price"]},
                    }
                ],
            },
        }

    def complete_checkout(
        self, session_id: str, created: int | None = None
    ) -> list[dict[str, Any]]:
        """The events Stripe sends when a customer pays a Checkout session, in Stripe's order."""
        session = self.sessions[session_id]
        session["status"] = "complete"
        self.customers.add(session["customer"])
        subscription_id = self._id("sub")
        session["subscription"] = subscription_id
        at = int(time.time()) if created is None else created
        completed = {k: v for k, v in session.items() if k != "subscription_metadata"}
        return [
            self.event("checkout.session.completed", completed, at),
            self.event(
                "customer.subscription.created", self.subscription(session, subscription_id), at
            ),
            self.event(
                "invoice.paid",
                {
                    "id": self._id("in"),
                    "object": "invoice",
                    "customer": session["customer"],
                    "subscription": subscription_id,
                    "status": "paid",
                },
                at + 1,
            ),
        ]

    def signed(
        self, event: dict[str, Any], *, timestamp: int | None = None, secret: str | None = None
    ) -> tuple[bytes, dict[str, str]]:
        """The body and headers of a delivery of ``event``."""
        body = json.dumps(event, separators=(",", ":")).encode()
        return body, {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": signature_header(body, secret or self.webhook_secret, timestamp),
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        }

    def deliver(
        self,
        event: dict[str, Any],
        *,
        timestamp: int | None = None,
        secret: str | None = None,
        client: httpx.Client | None = None,
    ) -> httpx.Response:
        """POST one signed delivery of ``event`` to ``webhook_url``."""
        if self.webhook_url is None:
            raise RuntimeError("FakeStripe.webhook_url is not set")
        body, headers = self.signed(event, timestamp=timestamp, secret=secret)
        if client is not None:
            return client.post(self.webhook_url, content=body, headers=headers)
        return httpx.post(self.webhook_url, content=body, headers=headers, timeout=10)
