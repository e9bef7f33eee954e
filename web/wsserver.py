"""uvicorn's sans-I/O WebSocket protocol, plus a direct way to hand it ready-made frames.

The relay sends the same message to many connections (every staff client gets the same batch of
events). Through the ASGI ``send`` each copy costs a trip through Litestar's and uvicorn's layers,
a frame built anew, and a task switch; with 200 clients that is most of a round. The protocol
below offers, as the ASGI scope extension ``"compliance.websocket.frames"``, a
:class:`FrameWriter`: the app builds a message's frame once (:func:`text_frame`) and writes the
same bytes to every connection's transport.

The writer only writes while uvicorn itself would: after the handshake, before a close, and
while the transport is below its high-water mark (uvicorn's ``writable``). Otherwise it refuses,
and the caller queues the message and sends it through ASGI, which waits for the client to read
(backpressure; the relay cuts off a client whose queue grows too long).

A handshake the app refuses (an HTTP answer instead of the upgrade, or a close before accepting)
is logged as one INFO access line on ``web.access`` —
``WS /ws 401 162 bytes 1.2 ms: a token is required`` (the reason when the app put one in the
scope under :data:`REFUSAL_REASON`) — instead of uvicorn's and websockets' lines about it, and
without uvicorn's ERROR "ASGI callable returned without completing handshake", which it logs
after every HTTP answer to a handshake although the answer was complete.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.exceptions import InvalidState
from websockets.frames import Frame, Opcode

__all__ = [
    "FRAMES_EXTENSION",
    "REFUSAL_REASON",
    "FrameWriter",
    "RelayWebSocketProtocol",
    "frame_writer",
    "text_frame",
]

FRAMES_EXTENSION = "compliance.websocket.frames"
#: The scope key where the app leaves why it refused a handshake (a sentence, for the log line).
REFUSAL_REASON = "compliance.refusal_reason"

access_log = logging.getLogger("web.access")
#: Where uvicorn's and websockets' own lines about a refused handshake go: nowhere (the one
#: access line replaces them).
_quiet = logging.getLogger("web.wsserver.refused")
_quiet.disabled = True
_quiet.propagate = False


def text_frame(text: str) -> bytes:
    """A complete, unmasked, unfragmented server text frame carrying ``text``."""
    return Frame(Opcode.TEXT, text.encode()).serialize(mask=False)


class FrameWriter:
    """Writes ready-made frames to one connection's transport (see the module docstring)."""

    __slots__ = ("_protocol",)

    def __init__(self, protocol: WebSocketsSansIOProtocol) -> None:
        self._protocol = protocol

    @property
    def open(self) -> bool:
        p = self._protocol
        return (
            p.handshake_complete
            and p.initial_response is None
            and not p.close_sent
            and not p.disconnected
            and not p.transport.is_closing()
        )

    @property
    def writable(self) -> bool:
        """Open and below the transport's high-water mark."""
        return self.open and self._protocol.writable.is_set()

    def write(self, frame: bytes) -> bool:
        """Write ``frame`` now, or return False (closed, or the client is not reading)."""
        if not self.writable:
            return False
        self._protocol.transport.write(frame)
        return True

    def close(self, last: bytes | None, code: int, reason: str) -> bool:
        """Queue ``last`` (a frame) and the close frame behind whatever the transport holds,
        whether or not the client reads: for a connection being cut off. The transport is
        closed when the app returns, after what it holds has been written (or the peer left).
        False when the connection is closed already."""
        p = self._protocol
        if not self.open:
            return False
        try:
            p.conn.send_close(code, reason)
        except InvalidState:
            return False
        if last is not None:
            p.transport.write(last)
        p.transport.write(b"".join(p.conn.data_to_send()))
        p.close_sent = True
        return True


class RelayWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's ``websockets-sansio`` protocol with the frame writer in the scope, and one access
    line for a refused handshake (see the module docstring)."""

    _handshake_started = 0.0

    def handle_connect(self, event: Any) -> None:
        self._handshake_started = time.monotonic()
        super().handle_connect(event)
        scope: Any = getattr(self, "scope", None)
        # Frames are written as they are: only without extensions (no per-message deflate).
        if scope is not None and not self.conn.extensions:
            scope["extensions"][FRAMES_EXTENSION] = {"writer": FrameWriter(self)}

    async def send(self, message: Any) -> None:
        kind = message["type"]
        refusing = not self.handshake_complete and (
            kind in ("websocket.close", "websocket.http.response.start")
            or (kind == "websocket.http.response.body" and self.initial_response is not None)
        )
        if not refusing:
            await super().send(message)
            return
        logger, conn_logger = self.logger, self.conn.logger
        self.logger = self.conn.logger = _quiet
        try:
            await super().send(message)
        finally:
            self.logger, self.conn.logger = logger, conn_logger
        if kind == "websocket.close":
            self._log_refusal(403, 0)  # uvicorn answers 403 with no body
        elif kind == "websocket.http.response.body" and not message.get("more_body", False):
            assert self.initial_response is not None
            # The answer is complete: uvicorn would otherwise log an ERROR when the app returns.
            self.handshake_complete = True
            self._log_refusal(self.initial_response[0], len(self.initial_response[2]))

    def _log_refusal(self, status: int, sent: int) -> None:
        scope: Any = getattr(self, "scope", None) or {}
        path = scope.get("path", "?")
        query = scope.get("query_string", b"").decode("latin-1")
        reason = scope.get(REFUSAL_REASON)
        access_log.info(
            "WS %s %d %d bytes %.1f ms%s",
            path + (f"?{query}" if query else ""),
            status,
            sent,
            (time.monotonic() - self._handshake_started) * 1000,
            f": {reason}" if reason else "",
        )


def frame_writer(scope: Any) -> FrameWriter | None:
    """The connection's frame writer, when the server offers one."""
    extension = (scope.get("extensions") or {}).get(FRAMES_EXTENSION)
    writer = extension.get("writer") if isinstance(extension, dict) else None
    return writer if isinstance(writer, FrameWriter) else None
