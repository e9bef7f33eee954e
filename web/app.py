"""The Litestar application: ``create_app(settings)``.

Start-up opens the pool (role web_app), checks who it logged in as, starts the LISTEN
connection, the relay and the presence announcer. On a stop uvicorn closes every WebSocket
(1012) and waits at most WEB_STOP_TIMEOUT_SECONDS for them; shutdown then ends whatever
connection is left (1001) and closes the rest. Requests are logged one line each, without
tokens or secrets.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from compliance.db import redact_dsn
from web.auth import Authenticator
from web.billing import billing_handlers
from web.db import make_async_pool
from web.errors import exception_handlers
from web.exports import export_handlers
from web.heads import export_queries, head_handlers, ws_without_upgrade
from web.health import health_handler
from web.openapi import SECURITY_SCHEMES, finish
from web.records import record_handlers
from web.relay import CloseCodes, Listener, Presence, Relay
from web.settings import WebSettings
from web.state import AppState, ExportLimiter
from web.ws import presence_handler, ws_handler

__all__ = ["create_app", "redact"]

log = logging.getLogger("web")
access_log = logging.getLogger("web.access")

_SECRET_PARAMS = re.compile(
    r"((?:access_?)?token|jwt|api_?key|apikey|password|secret|authorization)=[^&\s\"']*", re.I
)


def redact(text: str) -> str:
    """``text`` with the values of token-like query parameters replaced by ``***``."""
    return _SECRET_PARAMS.sub(lambda m: f"{m.group(1)}=***", text)


class RedactingFilter(logging.Filter):
    """Masks token-like query parameters in any log line (uvicorn's included)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.args = tuple(
                redact(a) if isinstance(a, str) else a
                for a in (record.args if isinstance(record.args, tuple) else (record.args,))
            )
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def access_logging(app: ASGIApp) -> ASGIApp:
    """One line per HTTP request: method, path (secrets masked), status, bytes, duration."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if str(scope["type"]) != "http":
            await app(scope, receive, send)
            return
        started = time.monotonic()
        status = 0
        sent = 0

        async def sending(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await app(scope, receive, sending)
        finally:
            query = scope.get("query_string", b"").decode("latin-1")
            path = scope.get("path", "") + (f"?{query}" if query else "")
            access_log.info(
                "%s %s %s %d bytes %.1f ms",
                scope.get("method", "?"),
                redact(path),
                status or "-",
                sent,
                (time.monotonic() - started) * 1000,
            )

    return middleware


def _lifespan(settings: WebSettings) -> Any:
    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        dsn = settings.web_dsn
        log.info("web app starting: database %s", redact_dsn(dsn))
        pool = await make_async_pool(
            dsn,
            min_size=settings.web_db_pool_min,
            max_size=settings.web_db_pool_max,
            timeout=settings.web_db_timeout_seconds,
        )
        async with pool.connection() as conn:
            cur = await conn.execute(
                "select current_user::text as login, r.rolsuper, r.rolbypassrls,"
                " pg_has_role(current_user, 'authenticated', 'member') as member"
                " from pg_roles r where r.rolname = current_user"
            )
            me = await cur.fetchone()
        if me is not None:
            if me["login"] != "web_app":
                log.warning(
                    "the web app logged in as %s, not web_app (see WEB_DATABASE_URL)", me["login"]
                )
            if me["rolsuper"] or me["rolbypassrls"]:
                log.warning("the web app's login bypasses row-level security outside requests")
            if not me["member"]:
                await pool.close()
                raise RuntimeError(
                    f"role {me['login']} cannot act as authenticated: grant authenticated to it"
                )
        relay = Relay(
            dsn,
            batch_rows=settings.web_relay_batch_rows,
            poll_seconds=settings.web_relay_poll_seconds,
            safety_seconds=settings.web_relay_safety_poll_seconds,
            connections=settings.web_relay_connections,
        )
        listener = Listener(dsn, relay, settings.web_listener_heartbeat_seconds)
        presence = Presence(pool, relay)
        assert settings.jwt_secret is not None
        state = AppState(
            settings=settings,
            auth=Authenticator(
                settings.jwt_secret.get_secret_value(),
                settings.jwt_audience,
                jwks_url=settings.jwt_jwks_url,
                jwks_file=settings.jwt_jwks_file,
                issuer=settings.jwt_issuer,
                role_claim=settings.jwt_role_claim,
                jwks_cache_seconds=settings.jwt_jwks_cache_seconds,
                jwks_refetch_seconds=settings.jwt_jwks_refetch_seconds,
            ),
            pool=pool,
            limiter=ExportLimiter(
                settings.web_export_max_concurrent, settings.web_export_max_per_user
            ),
            relay=relay,
            listener=listener,
            presence=presence,
        )
        app.state["web"] = state
        # What start-up built (modules, routes, models: ~100k objects) lives as long as the
        # process: keep it out of the collector's full passes, which otherwise stop the loop,
        # and every live client with it, for tens of milliseconds.
        gc.collect()
        gc.freeze()
        tasks = [
            asyncio.create_task(relay.run(), name="relay"),
            asyncio.create_task(listener.run(), name="listener"),
            asyncio.create_task(presence.run(), name="presence"),
        ]
        try:
            yield
        finally:
            for client in list(relay.clients.values()):
                client.end(CloseCodes.GOING_AWAY, "server shutting down", None)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(3):
                    while relay.clients:
                        await asyncio.sleep(0.05)
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(BaseException):
                    await task
            await relay.close()
            await pool.close()
            log.info("web app stopped")

    return lifespan


def create_app(settings: WebSettings) -> Litestar:
    """The web app for these settings (nothing connects before start-up)."""
    redacting = RedactingFilter()
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "web", "web.access"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(redacting)
    origins = sorted(settings.allowed_origins)
    app = Litestar(
        route_handlers=[
            *export_handlers(),
            *head_handlers(),
            *billing_handlers(),
            *record_handlers(),
            ws_handler,
            ws_without_upgrade,
            presence_handler,
            health_handler,
        ],
        lifespan=[_lifespan(settings)],
        exception_handlers=exception_handlers,
        middleware=[access_logging],
        cors_config=CORSConfig(
            allow_origins=origins,
            allow_methods=["GET", "HEAD", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type"],
            # a browser's script may read the file name and how long to wait after a 429
            expose_headers=["Content-Disposition", "Retry-After"],
            max_age=600,
        )
        if origins
        else None,
        openapi_config=OpenAPIConfig(
            title="Compliance web app",
            version="1.0.0",
            description=(
                "Exports (CSV, XLSX, PDF), the live event WebSocket (GET /ws), presence and "
                'health. Errors: {"success": false, "error": {"code", "message", "details"}} '
                "(the ErrorEnvelope schema). Authentication: Authorization: Bearer <JWT> (the "
                "PostgREST token; Authorize in Swagger UI)."
            ),
            path="/schema",
            render_plugins=[SwaggerRenderPlugin()],
            components=Components(security_schemes=dict(SECURITY_SCHEMES)),
        ),
        logging_config=None,
        debug=False,
    )
    # What decorators cannot say (web/openapi.py); the document is built once, here.
    finish(app.openapi_schema, export_queries())
    return app
