"""Billing: Stripe's webhooks in, Checkout and Billing Portal sessions out (docs/billing.md).

Python only talks to Stripe. ``POST /webhooks/stripe`` checks the raw body's signature with
``stripe.Webhook.construct_event`` (STRIPE_WEBHOOK_SECRET, STRIPE_WEBHOOK_TOLERANCE_SECONDS)
before anything else, then hands the body to ``app.apply_stripe_event`` in one transaction as
the web_app role; the database stores and applies it idempotently and order-safely.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
import stripe
from litestar import Request, Response, post

from compliance.db import api_error_from
from web.errors import WebError
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


def billing_handlers() -> list[Any]:
    """The billing routes of the web app."""
    return [stripe_webhook]
