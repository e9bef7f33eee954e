"""Stripe webhook handling through the web app: 1,000 signed deliveries at 50/s with 10 %
duplicates and 10 % out of order.

    python bench/stripe_webhooks.py [--deliveries 1000] [--rate 50] [--orgs 50]

Builds a throwaway cluster, one organisation per subscription, starts `compliance web` as its
own process (STRIPE_WEBHOOK_SECRET set) and posts, paced at --rate per second on one keep-alive
connection, each organisation's story: checkout.session.completed, then
customer.subscription.updated events (status, plan and cancel-at-period-end changing, one
second apart in Stripe's `created`), and for a fifth of them customer.subscription.deleted.
10 % of the deliveries are a redelivery of an event already sent, 10 % are an event sent after
the one Stripe created after it (adjacent pairs swapped). Signatures are computed by hand
(HMAC-SHA256 of "t.payload"). Prints p50/p95/max of the handling time (request sent -> answer
received, loopback) and compares every organisation's final subscription with the one its
newest event describes: "wrong states" must be 0. Target (issue 17): p95 <= 20 ms.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import itertools
import json
import random
import statistics
import time
import uuid
from typing import Any

import httpx
import psycopg
from web_common import WebProcess, machine, start_cluster

SECRET = "whsec_bench_stripe_webhooks_0123456789"  # noqa: S105 - a throwaway cluster
PRICES = {"price_team": "team", "price_pro": "pro"}
STATUSES = ("active", "past_due", "trialing", "unpaid", "active")


def signed(event: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(event, separators=(",", ":")).encode()
    t = int(time.time())
    v1 = hmac.new(SECRET.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return body, {"Content-Type": "application/json", "Stripe-Signature": f"t={t},v1={v1}"}


def story(org: str, rng: random.Random, length: int, start: int) -> list[dict[str, Any]]:
    """One organisation's events in Stripe's order (created strictly increasing)."""
    customer, sub = f"cus_{org[:8]}", f"sub_{org[:8]}"

    def event(kind: str, obj: dict[str, Any], created: int) -> dict[str, Any]:
        return {
            "id": f"evt_{uuid.uuid4().hex}",
            "object": "event",
            "created": created,
            "type": kind,
            "data": {"object": obj},
        }

    def subscription(status: str, price: str, cancel: bool) -> dict[str, Any]:
        return {
            "id": sub,
            "object": "subscription",
            "customer": customer,
            "status": status,
            "cancel_at_period_end": cancel,
            "current_period_end": start + 30 * 86400,
            "items": {"data": [{"quantity": 1, "price": {"id": price}}]},
        }

    events = [
        event(
            "checkout.session.completed",
            {
                "id": f"cs_{org[:8]}",
                "customer": customer,
                "subscription": sub,
                "client_reference_id": org,
                "metadata": {"price_id": "price_team"},
            },
            start,
        )
    ]
    deleted = rng.random() < 0.2
    for i in range(1, length - (1 if deleted else 0)):
        events.append(
            event(
                "customer.subscription.updated",
                subscription(rng.choice(STATUSES), rng.choice(list(PRICES)), rng.random() < 0.3),
                start + i,
            )
        )
    if deleted:
        last = events[-1]["data"]["object"]
        events.append(
            event(
                "customer.subscription.deleted",
                {**last, "status": "canceled", "cancel_at_period_end": False},
                start + length,
            )
        )
    return events


def expected(events: list[dict[str, Any]]) -> tuple[str, str | None, bool]:
    """The state the newest subscription event describes."""
    obj = max(events[1:], key=lambda e: e["created"])["data"]["object"]
    return (
        obj["status"],
        PRICES.get(obj["items"]["data"][0]["price"]["id"]),
        obj["cancel_at_period_end"],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--deliveries", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--orgs", type=int, default=50)
    parser.add_argument("--seed", type=int, default=17)
    args = parser.parse_args()
    rng = random.Random(args.seed)  # noqa: S311 - a benchmark's reproducible mix
    print(f"machine: {machine()}")
    _cluster, dsn = start_cluster()
    unique = round(args.deliveries * 0.9)
    per_org = unique // args.orgs
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "insert into app.billing_plans (stripe_price_id, plan, seats_included)"
            " values ('price_team', 'team', 25), ('price_pro', 'pro', 100)"
        )
        orgs = [
            str(
                conn.execute(
                    "insert into app.organizations (name, slug) values (%s, %s) returning id",
                    [f"Bench {i}", f"bench-{i}"],
                ).fetchone()[0]  # type: ignore[index]
            )
            for i in range(args.orgs)
        ]
    start = int(time.time()) - 3600
    stories = {org: story(org, rng, per_org, start + n * 1000) for n, org in enumerate(orgs)}
    # Stripe's order across organisations: interleaved; then 10 % out of order (an event sent
    # after its successor: adjacent events of one organisation swapped) and 10 % redeliveries.
    queue: list[dict[str, Any]] = []
    cursors = dict.fromkeys(orgs, 0)
    while any(cursors[o] < len(stories[o]) for o in orgs):
        org = rng.choice([o for o in orgs if cursors[o] < len(stories[o])])
        queue.append(stories[org][cursors[org]])
        cursors[org] += 1
    swaps = 0
    target_swaps = round(args.deliveries * 0.1)
    position = {id(e): i for i, e in enumerate(queue)}
    for org_events in stories.values():
        rng.shuffle(pairs := list(itertools.pairwise(org_events[1:])))
        for a, b in pairs[:2]:
            if swaps >= target_swaps:
                break
            i, j = position[id(a)], position[id(b)]
            queue[i], queue[j] = queue[j], queue[i]
            position[id(a)], position[id(b)] = j, i
            swaps += 1
    duplicates = args.deliveries - len(queue)
    for _ in range(duplicates):
        at = rng.randrange(1, len(queue))
        queue.insert(at, queue[rng.randrange(0, at)])
    print(
        f"{len(queue)} deliveries: {len(orgs)} organisations, {unique} events, "
        f"{duplicates} redeliveries, {swaps} sent after their successor; {args.rate:g}/s"
    )
    web = WebProcess(dsn, STRIPE_WEBHOOK_SECRET=SECRET)
    times: list[float] = []
    outcomes: dict[str, int] = {}
    errors = 0
    interval = 1 / args.rate
    with httpx.Client(base_url=web.base, timeout=10) as client:
        began = time.monotonic()
        for n, event in enumerate(queue):
            pause = began + n * interval - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            body, headers = signed(event)
            sent = time.perf_counter()
            response = client.post("/webhooks/stripe", content=body, headers=headers)
            times.append((time.perf_counter() - sent) * 1000)
            if response.status_code != 200:
                errors += 1
                continue
            outcome = response.json()["outcome"]
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
        elapsed = time.monotonic() - began
    cpu = web.cpu_seconds()
    web.stop()
    wrong = 0
    with psycopg.connect(dsn) as conn:
        for org in orgs:
            row = conn.execute(
                "select status::text, plan, cancel_at_period_end from app.subscriptions"
                " where org_id = %s",
                [org],
            ).fetchone()
            if row is None or tuple(row) != expected(stories[org]):
                wrong += 1
        stored = conn.execute("select count(*) from app.stripe_events").fetchone()
    times.sort()
    print(
        f"sent in {elapsed:.1f} s ({len(queue) / elapsed:.1f}/s); web app CPU {cpu:.1f} s; "
        f"non-200 answers: {errors}; outcomes: {dict(sorted(outcomes.items()))}; "
        f"events stored: {stored[0] if stored else '?'}"
    )
    print(
        f"handling time: p50 {statistics.median(times):.1f} ms, "
        f"p95 {times[int(len(times) * 0.95) - 1]:.1f} ms, max {times[-1]:.1f} ms "
        "(target p95 <= 20 ms)"
    )
    print(f"wrong states: {wrong} of {len(orgs)} organisations (target 0)")


if __name__ == "__main__":
    main()
