"""WS /ws against hostile clients, with a real server and real clients: a value that does not fit
where it lands is refused to that client alone, a read that fails for one reader ends that
reader alone (the relay goes on for everyone else), a message nested too deep or a handler that
fails ends its connection with the documented close code and frees its slot, and SIGTERM stops
`compliance web` within its stop timeout whatever its clients do."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from websockets.exceptions import ConnectionClosed

from tests.web.conftest import ALLOWED_ORIGIN, SECRET, WebServer, free_port, make_token
from tests.web.world import World
from tests.web.wsclient import Stream, open_ws, stream_for
from web.ws import nesting_depth

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
BIGINT_MAX = 9_223_372_036_854_775_807


def emit(
    conn: psycopg.Connection[Any], org: uuid.UUID, payload: dict[str, Any] | None = None
) -> int:
    row = conn.execute(
        "select app.emit_event(%s, 'assignment.updated', 'test', %s, null, %s, null) as id",
        [org, uuid.uuid4().hex, Jsonb(payload or {})],
    ).fetchone()
    assert row is not None
    return int(row["id"])


@pytest.fixture
def su(dsn: str) -> Any:
    with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
        yield conn


async def wait_for(check: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


def live(server: WebServer, user: uuid.UUID) -> Any:
    """The relay's client of ``user`` once it is live (served by the shared read)."""
    return next(
        (c for c in server.state.relay.clients.values() if c.user_id == user and c.live), None
    )


async def still_served(server: WebServer, su: Any, world: World, *streams: Stream) -> None:
    """New events of both organisations reach every one of ``streams``."""
    ids = {"a": emit(su, world.a.id, {"n": "after"}), "b": emit(su, world.b.id, {"n": "after"})}
    for stream in streams:
        org = "a" if stream.messages[0]["organization_id"] == str(world.a.id) else "b"
        assert await stream.until_event(ids[org], timeout=10), f"organisation {org} got nothing"


async def pong(stream: Stream) -> bool:
    await stream.ws.send(json.dumps({"type": "ping"}))
    return await stream.until(lambda m: m["type"] == "pong", 5) is not None


async def closed_with(stream: Stream, timeout: float = 10.0) -> int | None:
    deadline = time.monotonic() + timeout
    while stream.closed_code is None and time.monotonic() < deadline:
        await stream.next(timeout=max(0.01, deadline - time.monotonic()))
    return stream.closed_code


# -- 1. values that do not fit where they land ---------------------------------------------------


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ('{"type": "ping"}', 1),
        ('{"type": "resume", "last_event_id": [[1], {"a": [2]}]}', 4),
        ('{"type": "[[[[[[[[[[", "x": "]]]"}', 1),  # brackets in strings do not nest
        ('{"a": "\\"[[[["}', 1),  # nor after an escaped quote
        ('"[[[[', 0),  # an unterminated string runs to the end
        ("[" * 2000 + "]" * 2000, 2000),
        ("not json", 0),
    ],
)
def test_nesting_depth_is_found_without_parsing(text: str, depth: int) -> None:
    assert nesting_depth(text) == depth


def test_a_resume_id_outside_bigint_is_refused_to_that_client_and_others_keep_receiving(
    start_web: Any, world: World, su: Any
) -> None:
    server: WebServer = start_web()

    async def scenario() -> tuple[Stream, list[dict[str, Any]]]:
        others = [
            await stream_for(server, world.a.users["hr_admin"]),
            await stream_for(server, world.b.users["viewer"]),
        ]
        bad = await stream_for(server, world.a.users["viewer"])
        errors = []
        for value in (10**30, BIGINT_MAX + 1, -1, 1.5, True, "7", None, [1], {"id": 1}):
            await bad.ws.send(json.dumps({"type": "resume", "last_event_id": value}))
            error = await bad.until(lambda m: m["type"] == "error", 5)
            assert error is not None, f"no error for last_event_id {value!r}"
            errors.append(error)
        # the connection stays, is still served, and so is everyone else
        assert await pong(bad)
        await still_served(server, su, world, *others, bad)
        assert server.state.relay.healthy
        for stream in (*others, bad):
            await stream.close()
        return bad, errors

    bad, errors = asyncio.run(scenario())
    assert bad.closed_code is None
    for error in errors:
        assert error["code"] == "VALIDATION_ERROR"
        assert "last_event_id" in error["message"]
        assert str(BIGINT_MAX) in error["message"]
    assert "1000000000000000000000000000000" in errors[0]["message"]  # the value it got


def test_the_largest_bigint_resume_id_is_taken_and_answered_as_unknown(
    start_web: Any, world: World
) -> None:
    server: WebServer = start_web()

    async def scenario() -> Stream:
        stream = Stream(await open_ws(server, make_token(world.a.users["viewer"])))
        await stream.ws.send(json.dumps({"type": "resume", "last_event_id": BIGINT_MAX}))
        await stream.until(lambda m: m["type"] == "resync_required", 10)
        await closed_with(stream)
        return stream

    stream = asyncio.run(scenario())
    assert {"type": "resumed", "last_event_id": BIGINT_MAX} in stream.messages
    resync = next(m for m in stream.messages if m["type"] == "resync_required")
    assert resync["reason"] == "resume_point_gone"
    assert stream.closed_code == 1013


def test_a_catch_up_reader_whose_values_do_not_fit_gets_an_error_row_of_its_own(
    web_dsn: str, world: World
) -> None:
    """app.web_relay_events reads each reader's values inside that reader's subtransaction."""
    readers = [
        {"key": "good", "claims": {"sub": str(world.a.users["hr_admin"]), "role": "authenticated"}},
        {"key": "huge", "claims": {"sub": str(world.a.users["viewer"])}, "after_id": 10**30},
        {"key": "text", "claims": {"sub": str(world.a.users["viewer"])}, "after_id": "seven"},
        {"key": "claims", "claims": [1, 2], "after_id": 0},
        {"key": "last", "claims": {"sub": str(world.b.users["viewer"]), "role": "authenticated"}},
    ]
    with psycopg.connect(web_dsn, autocommit=True) as conn:
        rows = conn.execute(
            "select kind, reader, error_code from app.web_relay_events(%s, 10)", [Jsonb(readers)]
        ).fetchall()
    by_reader = {reader: (kind, code) for kind, reader, code in rows if reader is not None}
    assert by_reader["good"] == ("head", None)
    assert by_reader["last"] == ("head", None)
    assert by_reader["huge"] == ("error", "22003")
    assert by_reader["text"] == ("error", "22P02")
    assert by_reader["claims"] == ("error", "22023")


@pytest.mark.parametrize("path", ["catching up", "live"])
def test_a_read_that_fails_for_one_reader_ends_that_reader_alone(
    start_web: Any, world: World, su: Any, path: str
) -> None:
    """Past the message check (a value the server's own code put there): one catch-up reader's
    id that fits no bigint, or one live reader's user id that is no uuid. That connection is
    closed with 1011; the relay keeps serving every other connection of both organisations."""
    server: WebServer = start_web()

    async def scenario() -> Stream:
        others = [
            await stream_for(server, world.a.users["hr_admin"]),
            await stream_for(server, world.b.users["viewer"]),
        ]
        bad = await stream_for(server, world.a.users["viewer"])
        assert await wait_for(lambda: live(server, world.a.users["viewer"]) is not None)
        client = live(server, world.a.users["viewer"])
        if path == "catching up":
            client.resume(10**30)
        else:
            client.user_text = "not-a-user-id"
        server.state.relay.wake()
        assert await closed_with(bad) is not None, "the failing reader was not closed"
        await still_served(server, su, world, *others)
        assert server.state.relay.healthy
        for stream in others:
            await stream.close()
        return bad

    bad = asyncio.run(scenario())
    assert bad.closed_code == 1011
    error = next(m for m in bad.messages if m["type"] == "error")
    assert error["code"] == "INTERNAL_SERVER_ERROR"


# -- 2. whatever a client sends, its handler ends cleanly ---------------------------------------


def test_a_deeply_nested_message_is_answered_closed_and_its_slot_released(
    start_web: Any, world: World, su: Any
) -> None:
    server: WebServer = start_web(web_ws_max_connections=3)
    user = world.a.users["viewer"]

    async def scenario() -> tuple[Stream, list[Stream]]:
        other = await stream_for(server, world.a.users["hr_admin"])
        bad = await stream_for(server, user)
        # nested within the limit: a bad message, the connection stays
        await bad.ws.send(json.dumps({"type": "resume", "last_event_id": [[[[1]]]]}))
        assert await bad.until(lambda m: m["type"] == "error", 5) is not None
        deep = "[" * 2000 + "]" * 2000  # 4 kB, under WEB_WS_MAX_MESSAGE_BYTES
        assert len(deep) <= server.settings.web_ws_max_message_bytes
        await bad.ws.send(deep)
        await closed_with(bad)
        # the others are served and answered
        assert await pong(other)
        await still_served(server, su, world, other)
        # its slot is free: the limit's worth of connections open beside the other one
        assert await wait_for(lambda: len(server.state.relay.clients) == 1)
        more = [await stream_for(server, user) for _ in range(2)]
        for stream in more:
            assert await pong(stream)
        for stream in (other, *more):
            await stream.close()
        return bad, more

    bad, _more = asyncio.run(scenario())
    assert bad.closed_code == 1007
    error = [m for m in bad.messages if m["type"] == "error"][-1]
    assert error["code"] == "VALIDATION_ERROR"
    assert "nested" in error["message"]


def test_an_exception_in_a_clients_handler_closes_it_with_1011(
    start_web: Any, world: World, su: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import web.ws

    handle = web.ws._handle_message

    def failing(state: Any, client: Any, text: str) -> None:
        if "boom" in text:
            raise KeyError("an unexpected failure")
        handle(state, client, text)

    monkeypatch.setattr(web.ws, "_handle_message", failing)
    server: WebServer = start_web(web_ws_max_connections=2)

    async def scenario() -> Stream:
        other = await stream_for(server, world.b.users["hr_admin"])
        bad = await stream_for(server, world.a.users["viewer"])
        await bad.ws.send(json.dumps({"type": "boom"}))
        await closed_with(bad)
        assert await pong(other)
        await still_served(server, su, world, other)
        assert await wait_for(lambda: len(server.state.relay.clients) == 1)
        again = await stream_for(server, world.a.users["viewer"])
        assert await pong(again)
        await again.close()
        await other.close()
        return bad

    bad = asyncio.run(scenario())
    assert bad.closed_code == 1011
    error = next(m for m in bad.messages if m["type"] == "error")
    assert error["code"] == "INTERNAL_SERVER_ERROR"
    assert "an unexpected failure" not in json.dumps(bad.messages)  # no internals to clients


# -- SIGTERM, whatever the clients do ------------------------------------------------------------

#: compliance up's supervisor (and docker's default stop_grace_period) kills after 10 s.
SUPERVISOR_STOP_TIMEOUT = 10.0


def test_sigterm_stops_compliance_web_within_its_stop_timeout_whatever_clients_did(
    web_dsn: str, world: World, su: Any, tmp_path: Path
) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "DATABASE_URL"))}
    env.update(
        {
            "WEB_DATABASE_URL": web_dsn,
            "JWT_SECRET": SECRET,
            "WEB_PORT": str(port),
            "WEB_ALLOWED_ORIGINS": ALLOWED_ORIGIN,
            "WEB_WS_RESUME_WAIT_SECONDS": "0.2",
            "WEB_WS_SEND_TIMEOUT_SECONDS": "600",
            "WEB_WS_QUEUE_EVENTS": "100000",
            "WEB_STOP_TIMEOUT_SECONDS": "3",
            "PYTHONUNBUFFERED": "1",
        }
    )
    log_path = tmp_path / "web.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", "from compliance.cli import main; main()", "web"],
            env=env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, log_path.read_text()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(base + "/health", timeout=1).status_code in (200, 503):
                    break
            assert time.monotonic() < deadline, "compliance web did not start"
            time.sleep(0.1)
        # what open_ws needs of a server
        server: Any = SimpleNamespace(
            ws_url=f"ws://127.0.0.1:{port}/ws", settings=SimpleNamespace(web_port=port)
        )

        async def misbehave() -> tuple[Stream, Any, float]:
            good = await stream_for(server, world.a.users["hr_admin"])
            # one that sends a message nested too deep, then nothing
            deep = await stream_for(server, world.a.users["viewer"])
            await deep.ws.send("[" * 2000 + "]" * 2000)
            # one that reads nothing while the server has megabytes for it
            stuck = await open_ws(
                server, make_token(world.b.users["viewer"]), rcvbuf=4096, max_queue=1
            )
            # 2,500 events of 3.8 kB: 9.5 MB, more than the socket buffers hold
            for _ in range(25):
                with su.transaction():
                    for _ in range(100):
                        emit(su, world.b.id, {"blob": os.urandom(1900).hex()})
            await asyncio.sleep(1.0)  # the server's buffers for it fill up
            proc.send_signal(signal.SIGTERM)
            stopped = time.monotonic()
            await closed_with(good, SUPERVISOR_STOP_TIMEOUT)
            while proc.poll() is None and time.monotonic() - stopped < SUPERVISOR_STOP_TIMEOUT:
                await asyncio.sleep(0.05)
            took = time.monotonic() - stopped
            with contextlib.suppress(ConnectionClosed, TimeoutError):
                await asyncio.wait_for(stuck.close(), 1)
            return good, deep, took

        good, _deep, took = asyncio.run(misbehave())
        code = proc.poll()
        assert code is not None, (
            f"compliance web still running {took:.1f} s after SIGTERM:\n{log_path.read_text()}"
        )
        assert code in (0, -signal.SIGTERM), log_path.read_text()  # uvicorn re-raises it
        assert good.closed_code == 1012, good.closed_code  # uvicorn: "service restart"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
