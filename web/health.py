"""GET /health: is this web process able to serve?

Unhealthy (503, error envelope, ``details.reasons``): the database does not answer within 2 s,
or the LISTEN connection is down (live events would stop). Degraded (200, ``reasons``): a sync
source's latest run failed for some organisation, or the relay's last round failed. The sync
figures name no organisation: /health answers without a token.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from litestar import Request, Response, get

from web.errors import envelope
from web.openapi import Health, body, errors
from web.state import AppState

__all__ = ["health_handler"]

DB_TIMEOUT = 2.0


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


async def _database(state: AppState) -> tuple[dict[str, Any], list[dict[str, Any]] | None]:
    started = time.monotonic()
    try:
        async with asyncio.timeout(DB_TIMEOUT):
            async with state.pool.connection(timeout=DB_TIMEOUT) as conn:
                cur = await conn.execute(
                    "select source, organizations, last_started_at, last_completed_at,"
                    " last_status, failed_organizations, running_organizations"
                    " from app.web_sync_health()"
                )
                rows = await cur.fetchall()
    except Exception as exc:
        text = str(exc).strip()
        first = text.splitlines()[0] if text else ""
        return {"ok": False, "error": f"{type(exc).__name__}: {first}"}, None
    checks = {"ok": True, "latency_ms": round((time.monotonic() - started) * 1000, 1)}
    syncs = [
        {
            "source": r["source"],
            "organizations": r["organizations"],
            "last_status": r["last_status"],
            "last_started_at": _iso(r["last_started_at"]),
            "last_completed_at": _iso(r["last_completed_at"]),
            "failed_organizations": r["failed_organizations"],
            "running_organizations": r["running_organizations"],
        }
        for r in rows
    ]
    return checks, syncs


@get(
    "/health",
    summary="Health of the web app",
    description=(
        "Database reachable, LISTEN connection alive, relay rounds, last sync per source. "
        "200 when healthy or degraded (with reasons); 503 with reasons when not healthy. "
        "No token needed."
    ),
    tags=["operations"],
    security=[],
    responses={
        **body(Health, "Healthy, or degraded (with reasons)."),
        **errors(
            503, e503="Not healthy: `details.reasons` says why, `details.checks` what was checked."
        ),
    },
)
async def health_handler(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    state = AppState.of(request)
    database, syncs = await _database(state)
    listener = state.listener
    relay = state.relay
    checks: dict[str, Any] = {
        "database": database,
        "listener": {
            "ok": listener.alive,
            "connected": listener.connected,
            "notifications": listener.notifications,
            "reconnects": listener.reconnects,
            **(
                {"error": listener.last_error} if not listener.alive and listener.last_error else {}
            ),
        },
        "relay": {
            "ok": relay.healthy or relay.rounds == 0,
            "rounds": relay.rounds,
            "connections": len(relay.clients),
            **({"error": relay.last_error} if not relay.healthy and relay.last_error else {}),
        },
        "syncs": syncs if syncs is not None else [],
    }
    unhealthy: list[str] = []
    degraded: list[str] = []
    if not database["ok"]:
        unhealthy.append(f"database unreachable ({database.get('error')})")
    if not listener.alive:
        unhealthy.append("the LISTEN connection is down: live events are not relayed")
    if not checks["relay"]["ok"]:
        degraded.append(f"the last relay round failed ({relay.last_error})")
    for sync in syncs or []:
        if sync["failed_organizations"]:
            degraded.append(
                f"sync {sync['source']}: the latest run failed for "
                f"{sync['failed_organizations']} organisation(s)"
            )
    if unhealthy:
        body = envelope(
            "SERVICE_UNAVAILABLE",
            "not healthy: " + "; ".join(unhealthy),
            {"reasons": unhealthy + degraded, "checks": checks},
        )
        return Response(body, status_code=503, headers={"Cache-Control": "no-store"})
    return Response(
        {
            "status": "degraded" if degraded else "ok",
            "reasons": degraded,
            "checks": checks,
            "uptime_seconds": round(time.time() - state.started_at, 1),
        },
        status_code=200,
        headers={"Cache-Control": "no-store"},
    )
