"""A real web server (uvicorn, in a thread, on a free 127.0.0.1 port) over the session's test
database, logged in as role web_app; tokens; and a small two-organisation world.

Fixtures:
    web_server      the session's server (default settings, origins http://allowed.test)
    start_web       factory: start_web(**settings) -> another server, stopped after the test
    world           two organisations with data for exports and events (module scope)
    token_for       token_for(user_id, **claims) -> a JWT the server accepts
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import jwt
import psycopg
import pytest
import uvicorn
from psycopg.conninfo import make_conninfo
from psycopg.rows import dict_row

from tests.web.world import World, build_world
from web.app import create_app
from web.cli import uvicorn_config
from web.settings import WebSettings, load_web_settings

SECRET = "test-secret-for-the-web-app-0123456789abcdef"
ALLOWED_ORIGIN = "http://allowed.test"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class WebServer:
    settings: WebSettings
    server: uvicorn.Server
    thread: threading.Thread

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.settings.web_port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.settings.web_port}/ws"

    @property
    def state(self) -> Any:
        return self.server.config.app.state["web"]  # type: ignore[union-attr]

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


def make_token(user_id: Any, *, secret: str = SECRET, ttl: int = 600, **claims: Any) -> str:
    now = int(time.time())
    body: dict[str, Any] = {
        "sub": str(user_id),
        "role": "authenticated",
        "iat": now,
        "exp": now + ttl,
    }
    body.update(claims)
    body = {k: v for k, v in body.items() if v is not None}
    return jwt.encode(body, secret, algorithm="HS256")


def start_server(web_dsn: str, **overrides: Any) -> WebServer:
    values: dict[str, Any] = {
        "web_database_url": web_dsn,
        "jwt_secret": SECRET,
        "web_port": free_port(),
        "web_allowed_origins": ALLOWED_ORIGIN,
        "web_ws_resume_wait_seconds": 0.2,
        "web_listener_heartbeat_seconds": 1.0,
        "web_relay_safety_poll_seconds": 1.0,
    }
    values.update(overrides)
    settings = load_web_settings(**values)
    config = uvicorn_config(settings, create_app(settings))
    assert isinstance(config, uvicorn.Config)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="web-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the web server did not start")
        time.sleep(0.02)
    return WebServer(settings, server, thread)


@pytest.fixture(scope="session")
def web_dsn(dsn: str) -> str:
    """The test database as role web_app (how the web app logs in)."""
    return make_conninfo(dsn, user="web_app", application_name="compliance-web-test")


@pytest.fixture(scope="session")
def web_server(web_dsn: str) -> Iterator[WebServer]:
    server = start_server(web_dsn)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def start_web(web_dsn: str) -> Iterator[Callable[..., WebServer]]:
    started: list[WebServer] = []

    def start(dsn: str | None = None, **overrides: Any) -> WebServer:
        server = start_server(dsn or web_dsn, **overrides)
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()


@pytest.fixture
def token_for() -> Callable[..., str]:
    return make_token


@pytest.fixture(scope="module")
def world(dsn: str) -> World:
    with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
        return build_world(conn)
