"""A small WebSocket client for the tests (the ``websockets`` package, asyncio)."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.web.conftest import ALLOWED_ORIGIN, WebServer, make_token


async def open_ws(
    server: WebServer,
    token: str | None,
    *,
    via: str = "subprotocol",
    origin: str | None = ALLOWED_ORIGIN,
    url_suffix: str = "",
    rcvbuf: int | None = None,
    max_queue: int | None = 16,
) -> ClientConnection:
    subprotocols: Any = None
    headers: dict[str, str] = {}
    if token is not None and via == "subprotocol":
        subprotocols = ["bearer", token]
    elif token is not None and via == "header":
        headers["Authorization"] = f"Bearer {token}"
    sock = None
    if rcvbuf is not None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.connect(("127.0.0.1", server.settings.web_port))
    return await connect(
        server.ws_url + url_suffix,
        subprotocols=subprotocols,
        additional_headers=headers or None,
        origin=origin,  # type: ignore[arg-type]
        open_timeout=10,
        max_queue=max_queue,
        sock=sock,
        compression=None,
    )


@dataclass
class Stream:
    """One client connection and everything it received."""

    ws: ClientConnection
    messages: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    last_event_id: int | None = None
    closed_code: int | None = None

    async def next(self, timeout: float = 5.0) -> dict[str, Any] | None:
        try:
            raw = await asyncio.wait_for(self.ws.recv(), timeout)
        except TimeoutError:
            return None
        except ConnectionClosed as exc:
            self.closed_code = exc.rcvd.code if exc.rcvd is not None else 1006
            return None
        message: dict[str, Any] = json.loads(raw)
        self.messages.append(message)
        if message["type"] == "events":
            self.events.extend(message["events"])
            self.last_event_id = message["last_event_id"]
        elif message["type"] in ("ready", "resumed"):
            self.last_event_id = message["last_event_id"]
        return message

    async def until(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10.0
    ) -> dict[str, Any] | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            left = deadline - loop.time()
            if left <= 0:
                return None
            message = await self.next(left)
            if message is None:
                return None
            if predicate(message):
                return message

    async def ready(self, timeout: float = 10.0) -> dict[str, Any]:
        message = await self.until(lambda m: m["type"] in ("ready", "resumed"), timeout)
        assert message is not None, f"no ready/resumed message: {self.messages}"
        return message

    async def until_event(self, event_id: int, timeout: float = 10.0) -> bool:
        if any(e["id"] == event_id for e in self.events):
            return True
        found = await self.until(
            lambda m: m["type"] == "events" and any(e["id"] == event_id for e in m["events"]),
            timeout,
        )
        return found is not None

    async def close(self) -> None:
        await self.ws.close()


async def stream_for(
    server: WebServer, user: Any, *, resume: int | None = None, **kwargs: Any
) -> Stream:
    ws = await open_ws(server, make_token(user), **kwargs)
    stream = Stream(ws)
    if resume is not None:
        await ws.send(json.dumps({"type": "resume", "last_event_id": resume}))
    await stream.ready()
    return stream
