"""The app around the endpoints: health (and 503 when the database goes away), the error
envelope, OpenAPI, request logs without secrets, settings, token rules."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import uuid
from typing import Any

import httpx
import jwt
import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row

from compliance.settings import SettingsError
from tests.web.conftest import SECRET, WebServer, make_token
from tests.web.world import World
from web.auth import Authenticator, bearer_from_subprotocols
from web.errors import WebError
from web.settings import load_web_settings

pytestmark = pytest.mark.e2e


def test_health_reports_database_listener_and_syncs(
    web_server: WebServer, world: World, dsn: str
) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "insert into app.sync_runs (org_id, type, source, status, completed_at, errors)"
            " values (%s, 'employees', 'zenefits', 'completed', now(), '[]'),"
            "        (%s, 'completions', 'classroom', 'failed', now(), '[\"boom\"]')",
            [world.a.id, world.b.id],
        )
    response = httpx.get(web_server.base + "/health")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["listener"]["ok"] is True
    syncs = {s["source"]: s for s in body["checks"]["syncs"]}
    assert syncs["zenefits"]["last_status"] in ("completed", "failed", "partial", "started")
    assert syncs["classroom"]["failed_organizations"] >= 1
    assert body["status"] == "degraded"
    assert any("classroom" in reason for reason in body["reasons"])
    assert str(world.a.id) not in response.text  # no organisation is named


class Proxy:
    """A TCP proxy on 127.0.0.1 in front of PostgreSQL that the test can cut."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.loop = asyncio.new_event_loop()
        self.server: asyncio.base_events.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.port = 0
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.open()

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self.writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _cut(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        for writer in self.writers:
            writer.transport.abort()
        self.writers.clear()

    def open(self) -> None:
        self._run(self._start())

    def cut(self) -> None:
        self._run(self._cut())

    def close(self) -> None:
        self.cut()
        self.loop.call_soon_threadsafe(self.loop.stop)


def test_health_is_503_with_reasons_when_the_database_is_gone(start_web: Any, web_dsn: str) -> None:
    params = conninfo_to_dict(web_dsn)
    proxy = Proxy(str(params.get("host") or "127.0.0.1"), int(params.get("port") or 5432))
    try:
        server: WebServer = start_web(
            make_conninfo(web_dsn, host="127.0.0.1", port=str(proxy.port)),
            web_db_timeout_seconds=1.0,
            web_listener_heartbeat_seconds=0.5,
        )
        assert httpx.get(server.base + "/health").status_code == 200
        proxy.cut()
        deadline = time.monotonic() + 10
        response = httpx.get(server.base + "/health", timeout=10)
        while response.status_code != 503 and time.monotonic() < deadline:
            time.sleep(0.2)
            response = httpx.get(server.base + "/health", timeout=10)
        assert response.status_code == 503
        body = response.json()
        assert body["success"] is False
        assert body["error"]["code"] == "SERVICE_UNAVAILABLE"
        reasons = " ".join(body["error"]["details"]["reasons"])
        assert "database unreachable" in reasons
        assert "LISTEN" in reasons
        # a request that needs a connection none can give is told to come back, never a 500
        presence = httpx.get(
            server.base + "/presence",
            headers={"Authorization": f"Bearer {make_token(uuid.uuid4())}"},
            timeout=10,
        )
        assert presence.status_code == 503, presence.text
        assert presence.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
        assert presence.headers["retry-after"] == "5"
        proxy.open()  # the same port again
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            response = httpx.get(server.base + "/health", timeout=10)
            if response.status_code == 200 and response.json()["checks"]["listener"]["ok"]:
                break
            time.sleep(0.2)
        assert response.status_code == 200, response.text
    finally:
        proxy.close()


def test_errors_use_the_envelope(web_server: WebServer) -> None:
    response = httpx.get(web_server.base + "/no/such/thing")
    assert response.status_code == 404
    assert response.json() == {
        "success": False,
        "error": {"code": "NOT_FOUND", "message": "no such endpoint: GET /no/such/thing",
                  "details": None},
    }  # fmt: skip
    response = httpx.post(web_server.base + "/export/compliance.csv")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "METHOD_NOT_ALLOWED"
    response = httpx.get(
        web_server.base + "/export/compliance.csv", headers={"Authorization": "Basic abc"}
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "UNAUTHORIZED"
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_openapi_at_schema(web_server: WebServer) -> None:
    response = httpx.get(web_server.base + "/schema/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in (
        "/export/compliance.csv",
        "/export/compliance.xlsx",
        "/export/compliance.pdf",
        "/export/audit.csv",
        "/presence",
        "/health",
    ):
        assert path in paths, path
    parameters = {p["name"] for p in paths["/export/compliance.csv"]["get"]["parameters"]}
    assert {"department", "location", "status", "from", "to"} <= parameters


def test_request_logs_carry_no_token(
    web_server: WebServer, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    token = make_token(world.a.users["viewer"])
    with caplog.at_level(logging.INFO):
        httpx.get(
            web_server.base + "/export/compliance.csv?status=overdue&token=s3cr3t-value",
            headers={"Authorization": f"Bearer {token}"},
        )
        time.sleep(0.2)
    # what the server logged (the test's own HTTP client logs its URL, that is not ours)
    text = "\n".join(
        r.getMessage() for r in caplog.records if r.name.startswith(("web", "uvicorn"))
    )
    assert "/export/compliance.csv" in text
    assert "status=overdue" in text
    assert "token=***" in text
    assert "s3cr3t-value" not in text
    assert token not in text
    assert token.split(".")[2] not in text


def test_settings_are_checked_with_clear_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("JWT_SECRET", "DATABASE_URL", "WEB_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(SettingsError) as missing:
        load_web_settings()
    text = str(missing.value)
    assert "JWT_SECRET is not set" in text
    assert "WEB_DATABASE_URL is not set" in text
    monkeypatch.setenv("WEB_PORT", "99999")
    monkeypatch.setenv("WEB_ALLOWED_ORIGINS", "https://ok.example, not an origin")
    monkeypatch.setenv("WEB_WS_QUEUE_EVENTS", "zero")
    with pytest.raises(SettingsError) as bad:
        load_web_settings(jwt_secret=SECRET, database_url="postgresql://x@127.0.0.1/db")
    text = str(bad.value)
    assert "WEB_PORT is malformed" in text
    assert "WEB_ALLOWED_ORIGINS is malformed" in text
    assert "WEB_WS_QUEUE_EVENTS is malformed" in text
    # Each line says what is wrong with the value: the port's limit, the origin that is none.
    assert "WEB_PORT is malformed: Input should be less than or equal to 65535" in text
    assert "'not an origin' is not an origin" in text
    monkeypatch.delenv("WEB_PORT")
    monkeypatch.delenv("WEB_ALLOWED_ORIGINS")
    monkeypatch.delenv("WEB_WS_QUEUE_EVENTS")
    settings = load_web_settings(
        jwt_secret=SECRET, database_url="postgresql://owner:pw@127.0.0.1:5432/db"
    )
    dsn = conninfo_to_dict(settings.web_dsn)
    assert dsn["user"] == "web_app"
    assert "password" not in dsn  # the owner's password is never reused


def test_token_rules() -> None:
    user = str(uuid.uuid4())
    auth = Authenticator(SECRET, audience="compliance")
    good = make_token(user, aud="compliance")
    assert auth.claims(good)["sub"] == user
    for token in (make_token(user), make_token(user, aud="something-else")):
        with pytest.raises(WebError) as refused:
            auth.claims(token)
        assert refused.value.status == 401
    no_exp = jwt.encode({"sub": user, "role": "authenticated"}, SECRET, algorithm="HS256")
    with pytest.raises(WebError, match="exp"):
        Authenticator(SECRET).claims(no_exp)
    hs512 = jwt.encode(
        {"sub": user, "role": "authenticated", "exp": int(time.time()) + 60},
        SECRET,
        algorithm="HS512",
    )
    with pytest.raises(WebError, match="HS512"):
        Authenticator(SECRET).claims(hs512)
    # no audience configured: PostgREST ignores aud, so do we
    assert Authenticator(SECRET).claims(make_token(user, aud="anything"))["sub"] == user
    assert bearer_from_subprotocols(["bearer", "abc"]) == "abc"
    assert bearer_from_subprotocols(["graphql-ws"]) is None
    with pytest.raises(WebError):
        bearer_from_subprotocols(["bearer"])


def test_inactive_and_unknown_users_are_401_on_http(
    web_server: WebServer, world: World, dsn: str
) -> None:
    with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
        row = conn.execute(
            "select tests.create_user(%s, 'hr_admin') as id", [world.a.id]
        ).fetchone()
        assert row is not None
        conn.execute("update app.app_users set active = false where id = %s", [row["id"]])
    for user in (row["id"], uuid.uuid4()):
        response = httpx.get(
            web_server.base + "/export/compliance.csv",
            headers={"Authorization": f"Bearer {make_token(user)}"},
        )
        assert response.status_code == 401, response.text
        assert response.json()["error"]["code"] == "UNAUTHORIZED"
        presence = httpx.get(
            web_server.base + "/presence",
            headers={"Authorization": f"Bearer {make_token(user)}"},
        )
        assert presence.status_code == 401


@pytest.mark.parametrize(
    "call",
    [
        "select * from app.web_relay_events('[]'::jsonb, 10)",
        "select * from app.web_event_bodies('{}'::uuid[], '{}'::bigint[])",
        "select * from app.web_visible_users('[]'::jsonb, '{}'::uuid[])",
        "select * from app.web_sync_health()",
        "select * from app.event_audience('0'::xid8, 0, 10, null)",
        "select * from app.web_relay_users('{}'::uuid[])",
    ],
)
def test_users_cannot_call_the_relay_functions(api: Any, world: World, call: str) -> None:
    """They act as other users (or read around RLS): only the web_app login may call them."""
    from compliance.db import ApiError

    with pytest.raises(ApiError) as refused:
        api.call(world.a.users["superadmin"], call, method="GET")
    assert refused.value.sqlstate == "42501"


def test_record_export_needs_an_active_user(api: Any) -> None:
    from compliance.db import ApiError

    with pytest.raises(ApiError) as refused:
        api.call(None, "select app.record_export('compliance.csv', '{}')")
    assert refused.value.sqlstate == "42501"
