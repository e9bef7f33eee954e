"""Billing: Stripe's webhooks in, Checkout and Billing Portal sessions out (docs/billing.md).

Python only talks to Stripe. ``POST /webhooks/stripe`` checks the raw body's signature with
``stripe.Webhook.construct_event`` (STRIPE_WEBHOOK_SECRET, STRIPE_WEBHOOK_TOLERANCE_SECONDS)
before anything else, then hands the body to ``app.apply_stripe_event`` in one transaction as
the web_app role; the database stores and applies it idempotently and order-safely.
"""

from __future__ import annotations

import hashlib
import logging
import time
from typing import Any

import psycopg
import stripe
from litestar import Request, Response, post
from pydantic import BaseModel, Field, ValidationError
from stripe.params.checkout import SessionCreateParams as CheckoutSessionParams

from compliance.db import api_error_from
from web.auth import request_token
from web.db import acting_as
from web.errors import WebError
from web.openapi import BEARER, StripeSession, WebhookReceipt, body, errors
from web.state import AppState

__all__ = ["billing_handlers"]

log = logging.getLogger("web.billing")


async def _read_body(request: Request[Any, Any, Any], limit: int) -> bytes:
    """The raw body, refused with 413 as soon as it exceeds ``limit`` bytes."""
    too_large = WebError(
        413,
        f"the webhook body is larger than {limit} bytes",
        {"limit_bytes": limit},
    )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


@post(
    "/webhooks/stripe",
    summary="Stripe webhook endpoint",
    description=(
        "Stripe's events, signed (Stripe-Signature). A missing, wrong or stale signature is "
        "400 and changes nothing; a body over STRIPE_WEBHOOK_MAX_BYTES is 413. A verified event "
        "is stored and applied once (a redelivery is acknowledged and writes nothing); the "
        "answer says how it was applied: applied, stale, ignored, unmatched or duplicate."
    ),
    tags=["billing"],
    status_code=200,
    security=[],
    responses={
        **body(WebhookReceipt, "The event, verified and applied."),
        **errors(400, 413, 500, 503),
    },
)
async def stripe_webhook(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    state = AppState.of(request)
    settings = state.settings
    if settings.stripe_webhook_secret is None:
        raise WebError(503, "Stripe webhooks are not configured: STRIPE_WEBHOOK_SECRET is not set")
    body = await _read_body(request, settings.stripe_webhook_max_bytes)
    signature = request.headers.get("stripe-signature")
    if not signature:
        raise WebError(400, "the Stripe-Signature header is missing")
    try:
        stripe.Webhook.construct_event(
            payload=body,
            sig_header=signature,
            secret=settings.stripe_webhook_secret.get_secret_value(),
            tolerance=settings.stripe_webhook_tolerance_seconds,
        )
    except stripe.SignatureVerificationError as error:
        log.warning("Stripe webhook refused: %s", error.user_message or "bad signature")
        raise WebError(
            400,
            "the Stripe signature does not verify",
            {"reason": error.user_message or str(error)},
        ) from None
    except ValueError:
        raise WebError(400, "the webhook body is not JSON") from None
    async with state.pool.connection() as conn:
        try:
            async with conn.transaction():
                cur = await conn.execute(
                    "select app.apply_stripe_event(event => %s::jsonb) as result",
                    [body.decode("utf-8")],
                )
                row = await cur.fetchone()
        except psycopg.Error as error:
            if not error.sqlstate:
                raise
            raise api_error_from(error, authenticated=False) from error
    assert row is not None
    result: dict[str, Any] = row["result"]
    log.info(
        "Stripe event %s (%s): %s", result.get("event_id"), result.get("type"), result["outcome"]
    )
    return Response({"received": True, **result}, status_code=200)


class CheckoutRequest(BaseModel):
    """What a superadmin subscribes to."""

    price_id: str = Field(min_length=1, max_length=255, description="a plan's Stripe price id")
    quantity: int = Field(default=1, ge=1, le=1000, description="units of the plan")


def _stripe_client(request: Request[Any, Any, Any]) -> stripe.StripeClient:
    """The process's Stripe client (STRIPE_API_KEY, STRIPE_API_BASE), made on first use."""
    app_state = request.app.state
    client: stripe.StripeClient | None = app_state.get("stripe")
    if client is None:
        settings = AppState.of(request).settings
        if settings.stripe_api_key is None:
            raise WebError(503, "Stripe is not configured: STRIPE_API_KEY is not set")
        client = stripe.StripeClient(
            settings.stripe_api_key.get_secret_value(),
            base_addresses={"api": settings.stripe_api_base} if settings.stripe_api_base else {},
            http_client=stripe.HTTPXClient(timeout=15),
            max_network_retries=2,
        )
        app_state["stripe"] = client
    return client


async def _context(request: Request[Any, Any, Any], price_id: str | None) -> dict[str, Any]:
    """The caller's organisation and Stripe customer (app.billing_session_context: superadmins
    only; a price must be a plan). The lookup only reads, so it runs as a GET would."""
    state = AppState.of(request)
    claims = state.auth.claims(request_token(request.headers))
    async with (
        state.pool.connection() as conn,
        acting_as(conn, claims, "GET", request.url.path) as cur,
    ):
        await cur.execute(
            "select app.billing_session_context(p_price_id => %s) as context", [price_id]
        )
        row = await cur.fetchone()
    assert row is not None
    context: dict[str, Any] = row["context"]
    return context


def _idempotency_key(request: Request[Any, Any, Any], *parts: object) -> str:
    """The caller's Idempotency-Key, else one that makes repeats within ten minutes one."""
    given = request.headers.get("idempotency-key")
    if given:
        if len(given) > 200:
            raise WebError(400, "the Idempotency-Key header is longer than 200 characters")
        return given
    window = int(time.time() // 600)
    digest = hashlib.sha256("|".join(map(str, (*parts, window))).encode()).hexdigest()
    return f"ctm-{digest[:40]}"


def _from_stripe(error: stripe.StripeError, what: str) -> WebError:
    """Stripe's refusal in the web app's envelope (no key or internals in it)."""
    message = error.user_message or "Stripe refused the request"
    details = {"stripe_status": error.http_status, "stripe_code": error.code}
    log.warning("Stripe refused %s: %s (%s)", what, message, error.http_status)
    if isinstance(error, stripe.InvalidRequestError):
        return WebError(422, f"Stripe refused the {what}: {message}", details)
    if isinstance(error, stripe.RateLimitError):
        return WebError(429, f"Stripe is rate limiting: {message}", details)
    if isinstance(error, stripe.AuthenticationError):
        return WebError(503, "Stripe refused this server's API key (STRIPE_API_KEY)", details)
    return WebError(503, f"Stripe could not create the {what}: {message}", details)


@post(
    "/billing/checkout",
    summary="Open a Stripe Checkout session (superadmins)",
    description=(
        'Body {"price_id", "quantity"}: a plan of this deployment (api.billing_plans lists '
        'none to others; 400 for an unknown price). Answers {"id", "url"}: send the superadmin '
        "to url. An Idempotency-Key header makes a retry return the same session."
    ),
    tags=["billing"],
    status_code=200,
    security=BEARER,
    responses={
        **body(StripeSession, "The session."),
        **errors(400, 401, 403, 409, 422, 429, 500, 503),
    },
)
async def billing_checkout(request: Request[Any, Any, Any]) -> dict[str, Any]:
    try:
        body = CheckoutRequest.model_validate_json(await request.body() or b"{}")
    except ValidationError as error:
        raise WebError(
            400,
            "invalid checkout request",
            [{"field": ".".join(map(str, e["loc"])), "message": e["msg"]} for e in error.errors()],
        ) from None
    context = await _context(request, body.price_id)
    settings = AppState.of(request).settings
    client = _stripe_client(request)
    params: CheckoutSessionParams = {
        "mode": "subscription",
        "line_items": [{"price": body.price_id, "quantity": body.quantity}],
        "client_reference_id": context["org_id"],
        "success_url": settings.stripe_return_url,
        "cancel_url": settings.stripe_return_url,
        "metadata": {"org_id": context["org_id"], "price_id": body.price_id},
        "subscription_data": {"metadata": {"org_id": context["org_id"]}},
    }
    if context.get("customer"):
        params["customer"] = context["customer"]
    key = _idempotency_key(request, "checkout", context["org_id"], body.price_id, body.quantity)
    try:
        session = await client.v1.checkout.sessions.create_async(
            params,
            {"idempotency_key": key},
        )
    except stripe.StripeError as error:
        raise _from_stripe(error, "checkout session") from None
    return {"id": session.id, "url": session.url}


@post(
    "/billing/portal",
    summary="Open a Stripe Billing Portal session (superadmins)",
    description=(
        'Answers {"id", "url"}: the portal where a superadmin changes the plan, the payment '
        "method or cancels. 409 before the organisation's first checkout (no Stripe customer)."
    ),
    tags=["billing"],
    status_code=200,
    security=BEARER,
    responses={
        **body(StripeSession, "The session."),
        **errors(400, 401, 403, 409, 422, 429, 500, 503),
    },
)
async def billing_portal(request: Request[Any, Any, Any]) -> dict[str, Any]:
    context = await _context(request, None)
    if not context.get("customer"):
        raise WebError(
            409,
            "the organisation has no Stripe customer yet",
            {"hint": "Subscribe to a plan through POST /billing/checkout first."},
        )
    settings = AppState.of(request).settings
    key = _idempotency_key(request, "portal", context["org_id"], context["customer"])
    try:
        session = await _stripe_client(request).v1.billing_portal.sessions.create_async(
            {"customer": context["customer"], "return_url": settings.stripe_return_url},
            {"idempotency_key": key},
        )
    except stripe.StripeError as error:
        raise _from_stripe(error, "billing portal session") from None
    return {"id": session.id, "url": session.url}


def billing_handlers() -> list[Any]:
    """The billing routes of the web app."""
    return [stripe_webhook, billing_checkout, billing_portal]
