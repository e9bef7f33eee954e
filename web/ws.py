"""WS /ws: the live event stream, and GET /presence.

Handshake (refused with an HTTP answer in the error envelope, before any WebSocket exists):
``Origin``, when the client sends one (browsers always do), must be one of
WEB_ALLOWED_ORIGINS (403); the token comes from ``Sec-WebSocket-Protocol: bearer, <jwt>`` or
``Authorization: Bearer <jwt>`` — never the URL (401); the user must be known and active (401).

Then the server says ``welcome``; the client may send ``{"type": "resume", "last_event_id": N}``
(within WEB_WS_RESUME_WAIT_SECONDS for a gapless start, or at any time to rewind); without it the
stream starts at the newest event (``ready`` tells its id). Events come in batches
``{"type": "events", "last_event_id": N, "events": [...]}``; keep ``last_event_id`` to resume.

Whatever a client sends, and whatever fails while serving it, is that connection's problem: a
value that does not fit where it lands is refused with an ``error`` message, a message nested
deeper than MAX_MESSAGE_DEPTH is refused before it is parsed (1007), and an exception in any of
the connection's loops ends that connection with 1011 and frees its slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import Coroutine
from typing import Any

from litestar import Request, get, websocket
from litestar.connection import WebSocket
from litestar.exceptions import WebSocketDisconnect

from compliance.db import ApiError
from web.auth import (
    BEARER_SUBPROTOCOL,
    bearer_from_authorization,
    bearer_from_subprotocols,
    request_token,
)
from web.db import acting_as
from web.errors import WebError, envelope, from_api_error
from web.openapi import BEARER, Presence, body, errors
from web.relay import INTERNAL_ERROR, Client, CloseCodes, Message, dumps
from web.state import AppState
from web.wsserver import REFUSAL_REASON, frame_writer, text_frame

__all__ = ["presence_handler", "ws_handler"]

log = logging.getLogger("web.ws")

#: The largest event id a client may resume after: app.events ids are bigints.
MAX_EVENT_ID = 2**63 - 1
#: Client messages are flat objects; deeper nesting is refused before json (which recurses once
#: per level) sees it.
MAX_MESSAGE_DEPTH = 8

#: JSON strings, an unterminated last one included (brackets inside them do not nest).
_JSON_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"?', re.S)
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")


def nesting_depth(text: str) -> int:
    """How deep arrays and objects nest in ``text``, found without parsing it."""
    depth = deepest = 0
    for bracket in _NOT_BRACKETS.sub("", _JSON_STRINGS.sub("", text)):
        if bracket in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _error(code: str, message: str) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": message}


class TokenBucket:
    """``rate`` messages a second, bursts of twice that."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, 2 * rate)
        self.tokens = self.capacity
        self.stamp = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


async def _refuse(socket: WebSocket[Any, Any, Any], error: WebError) -> None:
    """Answer the handshake with an HTTP error in the envelope (403 when the server cannot)."""
    body = json.dumps(envelope(error.code, error.message, error.details)).encode()
    with contextlib.suppress(Exception):
        await socket.receive()  # websocket.connect
    if "websocket.http.response" in (socket.scope.get("extensions") or {}):
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        headers += [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
        start: Any = {
            "type": "websocket.http.response.start",
            "status": error.status,
            "headers": headers,
        }
        await socket.send(start)
        end: Any = {"type": "websocket.http.response.body", "body": body}
        await socket.send(end)
    else:  # pragma: no cover - uvicorn supports the extension
        await socket.close(code=4000 + error.status, reason=error.message[:120])


def _offered_subprotocols(socket: WebSocket[Any, Any, Any]) -> list[str]:
    offered: list[str] = []
    for value in socket.headers.getall("sec-websocket-protocol", []):
        offered.extend(part.strip() for part in value.split(","))
    return [p for p in offered if p]


async def _authenticate(state: AppState, socket: WebSocket[Any, Any, Any]) -> tuple[Client, bool]:
    """The checked client (not yet registered) and whether the token came as a sub-protocol."""
    origin = socket.headers.get("origin")
    if origin is not None and origin.rstrip("/") not in state.settings.allowed_origins:
        raise WebError(
            403,
            f"origin {origin!r} may not open this WebSocket",
            {"hint": "Add it to WEB_ALLOWED_ORIGINS."},
        )
    from_subprotocol = bearer_from_subprotocols(_offered_subprotocols(socket))
    token = from_subprotocol or bearer_from_authorization(socket.headers.get("authorization"))
    claims = state.auth.claims(token)
    if len(state.relay.clients) >= state.settings.web_ws_max_connections:
        raise WebError(503, "too many connections; try again shortly")
    try:
        async with (
            state.pool.connection(timeout=state.settings.web_db_timeout_seconds) as conn,
            acting_as(conn, claims, "GET", "/ws") as cur,
        ):
            await cur.execute(
                "select app.current_org_id() as org_id, u.id as user_id, u.display_name"
                " from api.app_users u where u.id = app.current_user_id()"
            )
            row = await cur.fetchone()
    except ApiError as exc:
        raise from_api_error(exc) from None
    if row is None or row["org_id"] is None:
        raise WebError(401, "the token's user is not an active user")
    client = Client(
        claims=claims,
        user_id=row["user_id"],
        org_id=row["org_id"],
        display_name=row["display_name"],
        queue_limit=state.settings.web_ws_queue_events,
    )
    return client, from_subprotocol is not None


async def _receive_loop(state: AppState, socket: WebSocket[Any, Any, Any], client: Client) -> None:
    bucket = TokenBucket(state.settings.web_ws_max_messages_per_second)
    while client.ending is None:
        message: Any
        try:
            message = await socket.receive()
        except WebSocketDisconnect:
            message = {"type": "websocket.disconnect"}
        if message["type"] == "websocket.disconnect":
            client.end(-1, "client closed", None)  # -1: the socket is gone, send nothing
            return
        if not bucket.take():
            client.end(
                CloseCodes.POLICY,
                "too many messages",
                {"type": "error", "code": "RATE_LIMIT_EXCEEDED", "message": "too many messages"},
            )
            return
        text = message.get("text")
        if not isinstance(text, str):
            client.end(CloseCodes.UNSUPPORTED, "binary messages are not accepted", None)
            return
        _handle_message(state, client, text)


def _handle_message(state: AppState, client: Client, text: str) -> None:
    if nesting_depth(text) > MAX_MESSAGE_DEPTH:
        client.end(
            CloseCodes.INVALID_PAYLOAD,
            "message nested too deep",
            _error(
                "VALIDATION_ERROR",
                f"message nested deeper than {MAX_MESSAGE_DEPTH} levels; send"
                ' {"type": "resume", "last_event_id": N} or {"type": "ping"}',
            ),
        )
        return
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    kind = data.get("type") if isinstance(data, dict) else None
    if kind == "ping":
        client.push(Message(dumps({"type": "pong"})))
    elif kind == "resume":
        last = data.get("last_event_id") if isinstance(data, dict) else None
        if not isinstance(last, int) or isinstance(last, bool) or not 0 <= last <= MAX_EVENT_ID:
            shown = json.dumps(last)
            client.push(
                Message(
                    dumps(
                        _error(
                            "VALIDATION_ERROR",
                            "resume needs last_event_id, a whole number from 0 to"
                            f" {MAX_EVENT_ID} (an event id); got"
                            f" {shown if len(shown) <= 40 else shown[:37] + '...'}",
                        )
                    )
                )
            )
            return
        client.resume(last)
        client.push(Message(dumps({"type": "resumed", "last_event_id": last})))
        state.relay.wake()
    else:
        client.push(
            Message(
                dumps(
                    _error(
                        "VALIDATION_ERROR",
                        'unknown message; send {"type": "resume", "last_event_id": N}'
                        ' or {"type": "ping"}',
                    )
                )
            )
        )


async def _guarded(client: Client, loop: Coroutine[Any, Any, None]) -> None:
    """Runs one of a connection's loops: whatever it raises ends that connection alone."""
    try:
        await loop
    except (WebSocketDisconnect, OSError):  # the socket is gone (uvicorn: ClientDisconnected)
        client.end(-1, "client closed", None)
    except Exception:
        log.exception("websocket %s of user %s failed", client.key, client.user_id)
        client.end(CloseCodes.INTERNAL, "internal error", INTERNAL_ERROR)


async def _send_loop(state: AppState, socket: WebSocket[Any, Any, Any], client: Client) -> None:
    """Sends what the client could not take at once (Client.push writes directly while the
    socket takes it), through ASGI, which waits while the client does not read."""
    timeout = state.settings.web_ws_send_timeout_seconds
    while client.ending is None:
        await client.wakeup.wait()
        client.wakeup.clear()
        while client.outbox and client.ending is None:
            message = client.outbox.popleft()
            client.queued -= message.events
            client.sending = True
            try:
                # asyncio.timeout, not wait_for: no task per message
                async with asyncio.timeout(timeout):
                    await socket.send_text(message.text)
            except TimeoutError:
                client.end(
                    CloseCodes.TRY_AGAIN,
                    "slow consumer",
                    {
                        "type": "resync_required",
                        "reason": "slow_consumer",
                        "message": f"a message waited more than {timeout:g} s for this connection",
                        "last_event_id": client.cursor_sent,
                    },
                )
                return
            finally:
                client.sending = False
            client.sent(message)


async def _finish(socket: WebSocket[Any, Any, Any], client: Client) -> None:
    """Send the last word and the close frame, giving up on a stuck connection after 2 s."""
    if client.ending is None or client.ending[0] < 0:
        return
    code, reason, message = client.ending
    writer = client.writer
    if writer is not None and not writer.writable:
        # The client does not read (a slow consumer): the last word and the close frame go
        # behind what it has not read yet, and the connection closes once they are written.
        writer.close(text_frame(dumps(message)) if message is not None else None, code, reason)
        return
    with contextlib.suppress(Exception):
        async with asyncio.timeout(2.0):
            if message is not None:
                await socket.send_text(dumps(message))
            await socket.close(code=code, reason=reason)


@websocket(
    "/ws",
    name="events",
    summary="Live change events (WebSocket)",
    description=(
        "Streams the change events the caller may read, in commit-safe order, with resume. "
        "Token in Sec-WebSocket-Protocol (bearer, <jwt>) or Authorization; Origin checked."
    ),
)
async def ws_handler(socket: WebSocket[Any, Any, Any]) -> None:
    state = AppState.of(socket)
    try:
        client, via_subprotocol = await _authenticate(state, socket)
    except WebError as error:
        # logged as the handshake's access line (web/wsserver.py)
        socket.scope[REFUSAL_REASON] = error.message  # type: ignore[literal-required]
        await _refuse(socket, error)
        return
    await socket.accept(subprotocols=BEARER_SUBPROTOCOL if via_subprotocol else None)
    client.writer = frame_writer(socket.scope)
    relay, presence = state.relay, state.presence
    relay.add(client)
    log.info("websocket %s opened by user %s", client.key, client.user_id)
    client.push(
        Message(
            dumps(
                {
                    "type": "welcome",
                    "connection_id": client.key,
                    "user": {"id": str(client.user_id), "display_name": client.display_name},
                    "organization_id": str(client.org_id),
                    "resume_wait_seconds": state.settings.web_ws_resume_wait_seconds,
                }
            )
        )
    )
    tasks = [
        asyncio.create_task(_guarded(client, _receive_loop(state, socket, client))),
        asyncio.create_task(_guarded(client, _send_loop(state, socket, client))),
    ]
    joined = False
    try:
        # A resume message sent right after opening decides where the stream starts.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(state.settings.web_ws_resume_wait_seconds):
                while not client.active and client.ending is None:
                    await asyncio.sleep(0.01)
        if client.ending is None:
            relay.activate(client)
            presence.join(client)
            joined = True
            await client.done.wait()
    except Exception:
        log.exception("websocket %s of user %s failed", client.key, client.user_id)
        client.end(CloseCodes.INTERNAL, "internal error", INTERNAL_ERROR)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        relay.remove(client)
        if joined:
            presence.leave(client)
        await _finish(socket, client)
        code = client.ending[0] if client.ending else CloseCodes.NORMAL
        log.info(
            "websocket %s of user %s closed (%s, %d events sent)",
            client.key,
            client.user_id,
            "by the client" if code < 0 else code,
            client.sent_events,
        )


@get(
    "/presence",
    summary="Who is connected",
    description=(
        "The users of your organisation connected to WS /ws on this web process, as far as you "
        "may read them (superadmins and HR admins see everyone, others themselves)."
    ),
    tags=["live"],
    security=BEARER,
    responses={**body(Presence, "Who is connected."), **errors(401, 403, 500, 503)},
)
async def presence_handler(request: Request[Any, Any, Any]) -> dict[str, Any]:
    state = AppState.of(request)
    claims = state.auth.claims(request_token(request.headers))
    async with (
        state.pool.connection(timeout=state.settings.web_db_timeout_seconds) as conn,
        acting_as(conn, claims, "GET", "/presence") as cur,
    ):
        await cur.execute("select app.current_org_id() as org_id")
        row = await cur.fetchone()
        org_id = row["org_id"] if row else None
        if org_id is None:
            raise WebError(401, "the token's user is not an active user")
        connected = state.presence.users(org_id)
        await cur.execute(
            "select id, display_name, app_role::text as app_role from api.app_users"
            " where id = any(%s) order by display_name, id",
            [list(connected)],
        )
        rows = await cur.fetchall()
    users = [
        {
            "id": str(r["id"]),
            "display_name": r["display_name"],
            "app_role": r["app_role"],
            "connections": connected[r["id"]].connections,
            "connected_since": time.strftime(
                "%Y-%m-%dT%H:%M:%SZ", time.gmtime(connected[r["id"]].since)
            ),
        }
        for r in rows
        if r["id"] in connected
    ]
    return {"organization_id": str(org_id), "users": users, "count": len(users)}
