"""The machinery of the fake upstreams: a threaded HTTP/1.1 server on 127.0.0.1, switchable
faults, a request log and a small control API (``/_fake/...``).

Faults (``server.faults.add(kind, match=..., times=..., after=...)``), applied to requests whose
path+query contains ``match``; ``after`` lets that many matching requests through first and
``times`` is how many get the fault (None = all):

    status      answer ``status`` (500 by default) with the upstream's error body
    retry_after 429 with ``Retry-After: <retry_after>``
    slow        wait ``delay`` seconds, then answer normally
    hang        wait ``delay`` seconds and close without an answer (a client timeout)
    truncate    promise the whole body (Content-Length), send half of it, close
    malformed   200 with a body that is not JSON
    drop        close the connection without an answer
    vanish      404 with the upstream's "not found" body (a page that is gone)

Control API (JSON over HTTP, also used by ``compliance fake-upstreams`` users and the e2e test):
``GET /_fake/state``, ``POST /_fake/faults`` (a fault as JSON), ``DELETE /_fake/faults``,
``POST /_fake/latency`` ({"seconds": s}), plus each fake's data edits.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["FakeServer", "Fault", "Faults", "Reply", "Request"]

log = logging.getLogger(__name__)

FAULT_KINDS = ("status", "retry_after", "slow", "hang", "truncate", "malformed", "drop", "vanish")


@dataclass
class Fault:
    kind: str
    match: str = ""
    times: int | None = 1
    after: int = 0
    status: int = 500
    retry_after: float | None = 1.0
    delay: float = 0.5
    seen: int = 0
    applied: int = 0


class Faults:
    """Thread-safe list of faults; :meth:`pick` says which one applies to a request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[Fault] = []

    def add(self, kind: str, match: str = "", **options: Any) -> Fault:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; one of {', '.join(FAULT_KINDS)}")
        fault = Fault(kind, match, **options)
        with self._lock:
            self._items.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def pick(self, target: str) -> Fault | None:
        with self._lock:
            for fault in self._items:
                if fault.match not in target:
                    continue
                fault.seen += 1
                if fault.seen <= fault.after:
                    continue
                if fault.times is not None and fault.applied >= fault.times:
                    continue
                fault.applied += 1
                return fault
        return None

    def describe(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(f) for f in self._items]


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def one(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default


@dataclass
class Reply:
    status: int
    body: Any  # dict/list -> JSON; bytes -> as is
    headers: dict[str, str] | None = None

    def encoded(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body, separators=(",", ":")).encode()


Route = Callable[[Request], Reply]


class FakeServer:
    """A fake upstream on 127.0.0.1 (port 0 = a free one). Subclasses implement :meth:`route`
    and :meth:`error_body`. Use as a context manager, or start()/stop()."""

    name = "fake"

    def __init__(self, port: int = 0, host: str = "127.0.0.1", latency: float = 0.0) -> None:
        self.faults = Faults()
        self.latency = latency
        self.requests: list[tuple[str, str, int]] = []
        self._log_lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body leave in two writes: without this, Nagle's algorithm and the
            # client's delayed ACK add ~40 ms to every answer.
            disable_nagle_algorithm = True
            server_version = f"{outer.name}-fake/1.0"

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("%s: " + format, outer.name, *args)

            def do_GET(self) -> None:
                outer._handle(self, "GET")

            def do_POST(self) -> None:
                outer._handle(self, "POST")

            def do_DELETE(self) -> None:
                outer._handle(self, "DELETE")

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"{self.name}-fake", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def count(self, fragment: str) -> int:
        """How many requests had ``fragment`` in their path+query."""
        with self._log_lock:
            return sum(1 for _m, target, _s in self.requests if fragment in target)

    # -- to implement -------------------------------------------------------------------------

    def route(self, request: Request) -> Reply:  # pragma: no cover - abstract
        raise NotImplementedError

    def error_body(self, status: int, message: str) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def control(self, request: Request) -> Reply | None:
        """Data edits of a subclass under /_fake/ (None = not one)."""
        return None

    # -- dispatch -----------------------------------------------------------------------------

    def _control(self, request: Request) -> Reply:
        path = request.path
        if path == "/_fake/state" and request.method == "GET":
            return Reply(
                200,
                {
                    "faults": self.faults.describe(),
                    "latency": self.latency,
                    "requests": len(self.requests),
                },
            )
        if path == "/_fake/faults" and request.method == "POST":
            spec = json.loads(request.body or b"{}")
            kind = spec.pop("kind", None)
            try:
                fault = self.faults.add(str(kind), **spec)
            except (TypeError, ValueError) as exc:
                return Reply(400, {"error": str(exc)})
            return Reply(201, asdict(fault))
        if path == "/_fake/faults" and request.method == "DELETE":
            self.faults.clear()
            return Reply(200, {"faults": []})
        if path == "/_fake/latency" and request.method == "POST":
            self.latency = float(json.loads(request.body or b"{}").get("seconds", 0))
            return Reply(200, {"latency": self.latency})
        reply = self.control(request)
        return reply if reply is not None else Reply(404, {"error": f"no control {path}"})

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        request = Request(
            method=method,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in handler.headers.items()},
            body=body,
        )
        target = handler.path
        if parts.path.startswith("/_fake/"):
            self._send(handler, self._control(request))
            return
        if self.latency:
            time.sleep(self.latency)
        fault = self.faults.pick(target)
        if fault is not None:
            with self._log_lock:
                self.requests.append((method, target, -1))
            self._apply(handler, fault, request)
            return
        try:
            reply = self.route(request)
        except Exception as exc:  # a bug of the fake: say so, as a 500
            log.exception("%s fake failed on %s", self.name, target)
            reply = Reply(500, self.error_body(500, f"fake error: {exc}"))
        with self._log_lock:
            self.requests.append((method, target, reply.status))
        self._send(handler, reply)

    def _send(self, handler: BaseHTTPRequestHandler, reply: Reply) -> None:
        data = reply.encoded()
        try:
            handler.send_response(reply.status)
            handler.send_header("Content-Type", "application/json; charset=UTF-8")
            handler.send_header("Content-Length", str(len(data)))
            for key, value in (reply.headers or {}).items():
                handler.send_header(key, value)
            handler.end_headers()
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            handler.close_connection = True

    def _apply(self, handler: BaseHTTPRequestHandler, fault: Fault, request: Request) -> None:
        kind = fault.kind
        if kind == "status":
            self._send(
                handler, Reply(fault.status, self.error_body(fault.status, "injected failure"))
            )
        elif kind == "retry_after":
            headers = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
            self._send(handler, Reply(429, self.error_body(429, "rate limit exceeded"), headers))
        elif kind == "vanish":
            self._send(handler, Reply(404, self.error_body(404, "Requested entity was not found.")))
        elif kind == "malformed":
            self._send(handler, Reply(200, b'{"data": {"data": [{"id": "1",, oops'))
        elif kind == "slow":
            time.sleep(fault.delay)
            self._send(handler, self.route(request))
        elif kind == "hang":
            time.sleep(fault.delay)
            handler.close_connection = True
        elif kind == "drop":
            handler.close_connection = True
        elif kind == "truncate":
            data = self.route(request).encoded()
            try:
                handler.send_response(200)
                handler.send_header("Content-Type", "application/json; charset=UTF-8")
                handler.send_header("Content-Length", str(len(data)))
                handler.end_headers()
                handler.wfile.write(data[: max(1, len(data) // 2)])
                handler.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass
            handler.close_connection = True
