"""WS /ws through a real server and a real client (the websockets package): each connection
gets exactly the events row-level security lets its user read, in commit-safe order; resume
loses nothing while transactions commit out of id order; slow, flooding and oversized clients
are cut off with the documented codes; bad tokens and origins are refused at the handshake."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import threading
import time
import uuid
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.conftest import ApiHarness
from tests.web.conftest import ALLOWED_ORIGIN, SECRET, WebServer, make_token
from tests.web.world import ROLES, World
from tests.web.wsclient import Stream, open_ws, stream_for

pytestmark = pytest.mark.e2e


def emit(
    conn: psycopg.Connection[Any],
    org: uuid.UUID,
    *,
    employee: uuid.UUID | None = None,
    recipient: uuid.UUID | None = None,
    payload: dict[str, Any] | None = None,
    kind: str = "assignment.updated",
) -> int:
    row = conn.execute(
        "select app.emit_event(%s, %s, 'test', %s, %s, %s, %s) as id",
        [org, kind, uuid.uuid4().hex, employee, Jsonb(payload or {}), recipient],
    ).fetchone()
    assert row is not None
    return int(row["id"])


@pytest.fixture
def su(dsn: str) -> Any:
    with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
        yield conn


def readable(api: ApiHarness, user: uuid.UUID, ids: list[int]) -> list[int]:
    rows = api.call(
        user, "select id from api.events where id = any(%s) order by id", [ids], method="GET"
    )
    return [r["id"] for r in rows]


@pytest.mark.parametrize("rounds", ["one call", "split over connections"])
def test_each_role_gets_exactly_what_rls_allows(
    web_server: WebServer,
    start_web: Any,
    world: World,
    su: Any,
    api: ApiHarness,
    monkeypatch: pytest.MonkeyPatch,
    rounds: str,
) -> None:
    a, b = world.a, world.b
    if rounds != "one call":
        # every reader its own part, the parts spread over three connections
        monkeypatch.setattr("web.relay.MIN_READERS_PER_PART", 1)
        web_server = start_web(web_relay_connections=3)

    async def scenario() -> dict[tuple[str, str], list[int]]:
        streams: dict[tuple[str, str], Stream] = {}
        for org_key, org in (("a", a), ("b", b)):
            for role in ROLES:
                streams[(org_key, role)] = await stream_for(web_server, org.users[role])
        ids = [
            emit(su, a.id),  # org-wide
            emit(su, a.id, employee=a.employees["employee"]),  # about the employee user
            emit(su, a.id, employee=a.employees["nurse_one"]),  # about someone else
            emit(su, a.id, recipient=a.users["manager"]),  # addressed to the manager
            emit(su, a.id, recipient=a.users["employee"], employee=a.employees["employee"]),
            emit(su, a.id, recipient=a.users["hr_admin"]),
            emit(su, b.id),  # the other organisation
            emit(su, b.id, employee=b.employees["employee"]),
        ]
        # sentinels, seen by every role of their organisation, committed last
        sentinels = {
            "a": emit(su, a.id, employee=a.employees["employee"], kind="test.sentinel"),
            "b": emit(su, b.id, employee=b.employees["employee"], kind="test.sentinel"),
        }
        got: dict[tuple[str, str], list[int]] = {}
        for key, stream in streams.items():
            assert await stream.until_event(sentinels[key[0]]), key
            got[key] = [e["id"] for e in stream.events if e["id"] in ids]
            await stream.close()
        got[("ids", "")] = ids
        return got

    got = asyncio.run(scenario())
    ids = got.pop(("ids", ""))
    for (org_key, role), received in got.items():
        org = a if org_key == "a" else b
        expected = readable(api, org.users[role], ids)
        assert sorted(received) == expected, (org_key, role)
        assert len(received) == len(set(received)), "an event arrived twice"
    # what the policy says, spelled out for organisation A
    assert sorted(got[("a", "employee")]) == [ids[1], ids[4]]
    assert sorted(got[("a", "manager")]) == [ids[0], ids[1], ids[2], ids[3]]
    assert sorted(got[("a", "hr_admin")]) == [ids[0], ids[1], ids[2], ids[5]]
    assert sorted(got[("b", "viewer")]) == [ids[6], ids[7]]
    assert sorted(got[("b", "employee")]) == [ids[7]]


def test_event_bodies_are_the_api_events_rows(web_server: WebServer, world: World, su: Any) -> None:
    async def scenario() -> dict[str, Any]:
        stream = await stream_for(web_server, world.a.users["hr_admin"])
        event_id = emit(su, world.a.id, payload={"status": "completed", "n": 1})
        assert await stream.until_event(event_id)
        await stream.close()
        return next(e for e in stream.events if e["id"] == event_id)

    event = asyncio.run(scenario())
    assert event["org_id"] == str(world.a.id)
    assert event["type"] == "assignment.updated"
    assert event["payload"] == {"status": "completed", "n": 1}
    assert set(event) == {
        "org_id", "id", "type", "employee_id", "recipient_id", "entity", "entity_id",
        "payload", "created_at",
    }  # fmt: skip


def test_a_late_commit_is_delivered_before_what_followed_it(
    web_server: WebServer, world: World, su: Any, dsn: str
) -> None:
    org = world.a

    async def scenario() -> None:
        stream = await stream_for(web_server, org.users["hr_admin"])
        with psycopg.connect(dsn, row_factory=dict_row) as slow:
            early = emit(slow, org.id, payload={"n": "early"})  # smaller id, not committed
            late = emit(su, org.id, payload={"n": "late"})  # bigger id, committed first
            assert early < late
            # nothing may be delivered past the running transaction
            await asyncio.sleep(0.6)
            assert not any(e["id"] in (early, late) for e in stream.events)
            msg = await stream.next(timeout=0.5)
            assert (
                msg is None
                or msg["type"] != "events"
                or not any(e["id"] in (early, late) for e in msg["events"])
            )
            saved = stream.last_event_id
            await stream.close()
            slow.commit()
        after = emit(su, org.id, payload={"n": "after"})
        resumed = await stream_for(web_server, org.users["hr_admin"], resume=saved)
        assert await resumed.until_event(after)
        seen = [e["id"] for e in resumed.events]
        assert early in seen
        assert late in seen
        assert seen.index(early) < seen.index(late) < seen.index(after)  # commit-safe order
        assert len(seen) == len(set(seen))
        await resumed.close()

    asyncio.run(scenario())


def test_resume_loses_nothing_while_transactions_commit_out_of_order(
    web_server: WebServer, world: World, dsn: str
) -> None:
    """Writers hold their transactions open for random times (so commits come out of id order)
    while a client keeps disconnecting and resuming from the last id it saw."""
    org = world.a
    emitted: list[int] = []
    lock = threading.Lock()

    def writer(seed: int) -> None:
        rng = random.Random(seed)  # noqa: S311 - test timing, not secrets
        with psycopg.connect(dsn, row_factory=dict_row) as conn:
            for _ in range(25):
                ids = [emit(conn, org.id, payload={"w": seed}) for _ in range(rng.randint(1, 3))]
                time.sleep(rng.uniform(0.0, 0.15))
                conn.commit()
                with lock:
                    emitted.extend(ids)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(3)]

    async def scenario() -> list[int]:
        seen: list[int] = []
        last: int | None = None
        stream = await stream_for(web_server, org.users["viewer"])
        last = stream.last_event_id
        for t in threads:
            t.start()
        rng = random.Random(7)  # noqa: S311 - test timing, not secrets
        while any(t.is_alive() for t in threads):
            deadline = time.monotonic() + rng.uniform(0.05, 0.4)
            while time.monotonic() < deadline:
                msg = await stream.next(timeout=0.05)
                if msg is not None and msg["type"] == "events":
                    seen.extend(e["id"] for e in msg["events"])
                    last = msg["last_event_id"]
            await stream.close()  # disconnect, then resume from the last id seen
            stream = await stream_for(web_server, org.users["viewer"], resume=last)
        with lock:
            final = max(emitted)
        # drain: everything committed must arrive
        deadline = time.monotonic() + 15
        while final not in seen and time.monotonic() < deadline:
            msg = await stream.next(timeout=0.5)
            if msg is not None and msg["type"] == "events":
                seen.extend(e["id"] for e in msg["events"])
        await stream.close()
        return seen

    seen = asyncio.run(scenario())
    for t in threads:
        t.join()
    assert sorted(seen) == sorted(emitted), "an event was lost or repeated across resumes"
    assert len(seen) == len(set(seen))


def test_resume_from_a_purged_or_unknown_id_requires_a_resync(
    web_server: WebServer, world: World
) -> None:
    async def scenario() -> Stream:
        ws = await open_ws(web_server, make_token(world.a.users["hr_admin"]))
        stream = Stream(ws)
        await ws.send(json.dumps({"type": "resume", "last_event_id": 2_000_000_000}))
        await stream.until(lambda m: m["type"] == "resync_required", 10)
        await stream.next(timeout=5)  # the close
        return stream

    stream = asyncio.run(scenario())
    resync = [m for m in stream.messages if m["type"] == "resync_required"]
    assert resync
    assert resync[0]["reason"] == "resume_point_gone"
    assert stream.closed_code == 1013


def test_a_slow_client_is_cut_off_while_the_others_keep_their_pace(
    start_web: Any, world: World, su: Any
) -> None:
    server: WebServer = start_web(
        web_ws_queue_events=100, web_relay_batch_rows=20, web_ws_send_timeout_seconds=60
    )
    org = world.a
    total = 1500
    blob = uuid.uuid4().hex * 90  # ~2.9 kB per event

    async def scenario() -> tuple[Stream, Stream]:
        fast = await stream_for(server, org.users["hr_admin"])
        slow = await stream_for(server, org.users["viewer"], rcvbuf=4096, max_queue=1)
        slow_key = next(
            c.key for c in server.state.relay.clients.values() if c.user_id == org.users["viewer"]
        )
        ids: list[int] = []
        for _ in range(total // 100):
            with su.transaction():
                ids.extend(emit(su, org.id, payload={"blob": blob}) for _ in range(100))
            # the fast client keeps its pace: it reads as events come
            while len(fast.events) < len(ids) - 200:
                msg = await fast.next(timeout=10)
                assert msg is not None, "the fast client stalled"
        assert await fast.until_event(ids[-1], timeout=30)
        # the slow one (which reads nothing) was cut off, not buffered
        deadline = time.monotonic() + 20
        while slow_key in server.state.relay.clients and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert slow_key not in server.state.relay.clients
        # when it finally reads: what was on the wire, then resync_required, then 1013
        await slow.until(lambda m: m["type"] == "resync_required", 30)
        await slow.next(timeout=10)
        # and the fast client is still connected and served
        later = emit(su, org.id, payload={"n": "later"})
        assert await fast.until_event(later)
        await fast.close()
        return fast, slow

    fast, slow = asyncio.run(scenario())
    assert [e["id"] for e in fast.events] == sorted(e["id"] for e in fast.events)
    resync = [m for m in slow.messages if m["type"] == "resync_required"]
    assert resync, "the slow client was not told to resync"
    assert resync[0]["reason"] == "slow_consumer"
    assert slow.closed_code == 1013
    assert len(slow.events) < total


def test_a_client_that_reads_late_gets_everything_in_order(
    start_web: Any, world: World, su: Any
) -> None:
    """While a client does not read, what its socket cannot take waits in its queue (below the
    limit); when it reads again, later messages go out behind what waits: it gets every event
    once, in order, and the connection stays open."""
    server: WebServer = start_web(
        web_ws_queue_events=100_000, web_relay_batch_rows=20, web_ws_send_timeout_seconds=60
    )
    org = world.a
    blob = uuid.uuid4().hex * 110  # ~3.5 kB per event: ~5 MB in all, more than socket buffers hold

    async def scenario() -> tuple[Stream, list[int], int]:
        late = await stream_for(server, org.users["viewer"], rcvbuf=4096, max_queue=1)
        client = next(
            c for c in server.state.relay.clients.values() if c.user_id == org.users["viewer"]
        )
        ids: list[int] = []
        most_queued = 0
        for _ in range(15):
            with su.transaction():
                ids.extend(emit(su, org.id, payload={"blob": blob}) for _ in range(100))
            deadline = time.monotonic() + 2
            while client.cursor != ids[-1] and time.monotonic() < deadline:
                most_queued = max(most_queued, client.queued)
                await asyncio.sleep(0.01)
            most_queued = max(most_queued, client.queued)
        # it reads again while more events come: they go out behind what waits
        for n in range(100):
            ids.append(emit(su, org.id, payload={"n": n}))
            await late.next(timeout=0.05)
        assert await late.until_event(ids[-1], timeout=30)
        assert client.ending is None
        await late.close()
        return late, ids, most_queued

    late, ids, most_queued = asyncio.run(scenario())
    assert most_queued > 0, "the socket took everything at once: the test proves nothing"
    got = [e["id"] for e in late.events]
    assert got[got.index(ids[0]) :] == ids
    assert not [m for m in late.messages if m["type"] == "resync_required"]


def test_live_clients_get_frames_written_straight_to_their_socket(
    web_server: WebServer, world: World, su: Any
) -> None:
    """The server offers the relay its frame writer (web/wsserver.py), so a batch is framed once
    for all the clients that get it; the clients read ordinary WebSocket messages."""
    org = world.a

    async def scenario() -> list[Stream]:
        streams = [await stream_for(web_server, org.users[role]) for role in ("hr_admin", "viewer")]
        clients = [c for c in web_server.state.relay.clients.values() if c.org_id == org.id]
        assert clients
        assert all(c.writer is not None for c in clients)
        spies = [CountingWriter(c.writer) for c in clients]
        for c, spy in zip(clients, spies, strict=True):
            c.writer = spy
        event = emit(su, org.id, payload={"n": "shared"})
        for stream in streams:
            assert await stream.until_event(event)
            await stream.close()
        # (Not every client: one whose outbox still held a message queues behind it, rightly.)
        assert sum(spy.frames for spy in spies) > 0, "no frame went straight to a socket"
        return streams

    first, second = asyncio.run(scenario())
    assert first.messages[-1] == second.messages[-1]


class CountingWriter:
    """The connection's frame writer, counting the frames it took."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.frames = inner, 0

    def write(self, frame: bytes) -> bool:
        took: bool = self.inner.write(frame)
        self.frames += took
        return took

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def expect_refused(server: WebServer, status: int, **kwargs: Any) -> dict[str, Any]:
    async def attempt() -> InvalidStatus:
        try:
            ws = await open_ws(server, **kwargs)
        except InvalidStatus as exc:
            return exc
        await ws.close()
        raise AssertionError("the handshake was accepted")

    exc = asyncio.run(attempt())
    assert exc.response.status_code == status
    body: dict[str, Any] = json.loads(exc.response.body or b"{}")
    assert body["success"] is False
    return body


def test_bad_tokens_are_refused_at_the_handshake(
    web_server: WebServer, world: World, su: Any
) -> None:
    import jwt

    user = world.a.users["hr_admin"]
    good = make_token(user)
    header, payload, signature = good.split(".")
    tampered = f"{header}.{payload}.{signature[:-4]}AAAA"
    none_alg = jwt.encode({"sub": str(user), "role": "authenticated",
                           "exp": int(time.time()) + 600}, key=None, algorithm="none")  # fmt: skip
    for token in (
        None,
        "not-a-jwt",
        make_token(user, ttl=-120),  # expired
        tampered,
        none_alg,
        make_token(user, secret="another-secret-of-at-least-32-chars!!"),
        make_token(user, role="anon"),
        make_token(user, role="web_app"),
        make_token(uuid.uuid4()),  # unknown user
    ):
        body = expect_refused(web_server, 401, token=token)
        assert body["error"]["code"] == "UNAUTHORIZED"
    # the token is never taken from the URL
    expect_refused(web_server, 401, token=None, url_suffix=f"?token={good}")
    # an inactive user
    inactive = su.execute("select tests.create_user(%s, 'viewer') as id", [world.a.id]).fetchone()[
        "id"
    ]
    su.execute("update app.app_users set active = false where id = %s", [inactive])
    body = expect_refused(web_server, 401, token=make_token(inactive))
    assert "inactive" in body["error"]["message"]


def test_bad_origins_are_refused_and_allowed_ones_accepted(
    web_server: WebServer, world: World
) -> None:
    token = make_token(world.a.users["hr_admin"])
    body = expect_refused(web_server, 403, token=token, origin="http://evil.test")
    assert body["error"]["code"] == "FORBIDDEN"

    async def ok(**kwargs: Any) -> str | None:
        ws = await open_ws(web_server, token, **kwargs)
        subprotocol = ws.subprotocol
        welcome = json.loads(await ws.recv())
        assert welcome["type"] == "welcome"
        await ws.close()
        return subprotocol

    assert asyncio.run(ok(origin=ALLOWED_ORIGIN)) == "bearer"
    # non-browser clients: no Origin, token in the Authorization header
    assert asyncio.run(ok(origin=None, via="header")) is None


def test_oversized_flooding_and_binary_messages_close_the_connection(
    web_server: WebServer, world: World
) -> None:
    user = world.a.users["viewer"]

    async def close_code(action: Any) -> int | None:
        stream = await stream_for(web_server, user)
        with contextlib.suppress(ConnectionClosed):
            await action(stream.ws)
        while stream.closed_code is None:
            if await stream.next(timeout=5) is None and stream.closed_code is None:
                return None
        return stream.closed_code

    async def oversized(ws: Any) -> None:
        await ws.send(json.dumps({"type": "ping", "pad": "x" * 10_000}))

    async def flood(ws: Any) -> None:
        for _ in range(200):
            await ws.send(json.dumps({"type": "ping"}))

    async def binary(ws: Any) -> None:
        await ws.send(b"\x00\x01")

    assert asyncio.run(close_code(oversized)) == 1009
    assert asyncio.run(close_code(flood)) == 1008
    assert asyncio.run(close_code(binary)) == 1003


def test_ping_pong_and_bad_messages(web_server: WebServer, world: World) -> None:
    async def scenario() -> list[dict[str, Any]]:
        stream = await stream_for(web_server, world.a.users["viewer"])
        await stream.ws.send(json.dumps({"type": "ping"}))
        await stream.until(lambda m: m["type"] == "pong")
        await stream.ws.send("not json")
        await stream.until(lambda m: m["type"] == "error")
        await stream.ws.send(json.dumps({"type": "resume", "last_event_id": "seven"}))
        await stream.until(lambda m: m["type"] == "error" and "last_event_id" in m["message"])
        pong_waiter = await stream.ws.ping()  # protocol-level keep-alive
        await asyncio.wait_for(pong_waiter, 5)
        await stream.close()
        return stream.messages

    messages = asyncio.run(scenario())
    assert [m["type"] for m in messages].count("pong") == 1
    assert [m["code"] for m in messages if m["type"] == "error"] == [
        "VALIDATION_ERROR",
        "VALIDATION_ERROR",
    ]


def test_a_user_deactivated_while_connected_is_closed(
    start_web: Any, world: World, su: Any
) -> None:
    server: WebServer = start_web()
    user = su.execute("select tests.create_user(%s, 'viewer') as id", [world.a.id]).fetchone()["id"]

    async def scenario() -> Stream:
        stream = await stream_for(server, user)
        su.execute("update app.app_users set active = false where id = %s", [user])
        emit(su, world.a.id)  # wakes the relay
        await stream.until(lambda m: m["type"] == "error", 10)
        await stream.next(timeout=5)
        return stream

    stream = asyncio.run(scenario())
    assert any(m.get("code") == "UNAUTHORIZED" for m in stream.messages), stream.messages
    assert stream.closed_code == 4401


def test_presence(web_server: WebServer, world: World, su: Any) -> None:
    import httpx

    a = world.a

    def presence(user: uuid.UUID) -> dict[str, Any]:
        response = httpx.get(
            web_server.base + "/presence",
            headers={"Authorization": f"Bearer {make_token(user)}"},
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def scenario() -> None:
        hr = await stream_for(web_server, a.users["hr_admin"])
        employee = await stream_for(web_server, a.users["employee"])
        other_org = await stream_for(web_server, world.b.users["hr_admin"])
        joined = await hr.until(
            lambda m: (
                m["type"] == "presence"
                and m["event"] == "join"
                and m["user"]["id"] == str(a.users["employee"])
            )
        )
        assert joined is not None
        assert joined["user"]["display_name"] == "Employee User"
        # the HR admin sees both; the employee only themselves; nobody sees other organisations
        ids = {u["id"] for u in presence(a.users["hr_admin"])["users"]}
        assert {str(a.users["hr_admin"]), str(a.users["employee"])} <= ids
        assert str(world.b.users["hr_admin"]) not in ids
        assert {u["id"] for u in presence(a.users["employee"])["users"]} == {
            str(a.users["employee"])
        }
        await employee.close()
        left = await hr.until(
            lambda m: (
                m["type"] == "presence"
                and m["event"] == "leave"
                and m["user"]["id"] == str(a.users["employee"])
            )
        )
        assert left is not None
        assert str(a.users["employee"]) not in {
            u["id"] for u in presence(a.users["hr_admin"])["users"]
        }
        # the other organisation heard nothing of A
        await asyncio.sleep(0.3)
        while await other_org.next(timeout=0.1) is not None:
            pass
        assert all(
            m["user"]["id"] == str(world.b.users["hr_admin"])
            for m in other_org.messages
            if m["type"] == "presence"
        )
        await hr.close()
        await other_org.close()

    asyncio.run(scenario())
    assert presence(a.users["viewer"])["users"] == []


def test_secret_is_configured() -> None:
    assert len(SECRET) >= 32


# -- the live path: one shared read (app.event_audience) fanned out to every live connection --


def delivery_positions(su: Any, ids: list[int]) -> dict[int, tuple[int, int]]:
    """Each event's place in the delivery order: (transaction id, event id)."""
    rows = su.execute(
        "select id, tx_id::text as tx from app.events where id = any(%s)", [ids]
    ).fetchall()
    return {r["id"]: (int(r["tx"]), r["id"]) for r in rows}


def live_clients(server: WebServer) -> int:
    return sum(1 for c in server.state.relay.clients.values() if c.live)


def test_live_clients_share_one_read_and_get_exactly_their_events_in_order(
    start_web: Any, world: World, su: Any, api: ApiHarness, dsn: str
) -> None:
    """Every role of two organisations, live; writers commit out of id order (transactions held
    open for random times) a mix of org-wide, per-employee and addressed events; a connection
    joins (resume) while they write. Each connection gets exactly the events RLS lets its user
    read, each once, in (tx_id, id) order, none skipped; the live ones cost no read of their own.
    """
    server: WebServer = start_web()
    a, b = world.a, world.b
    emitted: list[int] = []
    lock = threading.Lock()

    def writer(seed: int) -> None:
        rng = random.Random(seed)  # noqa: S311 - test data, not secrets
        with psycopg.connect(dsn, row_factory=dict_row) as conn:
            for _ in range(15):
                ids = []
                for _ in range(rng.randint(1, 3)):
                    org = rng.choice((a, b))
                    shape = rng.randrange(5)
                    employee = rng.choice(list(org.employees.values())) if shape in (1, 3) else None
                    recipient = rng.choice(list(org.users.values())) if shape in (2, 3) else None
                    if shape == 4:  # addressed across organisations: nobody reads it
                        recipient = (b if org is a else a).users["hr_admin"]
                    ids.append(emit(conn, org.id, employee=employee, recipient=recipient))
                time.sleep(rng.uniform(0.0, 0.1))
                conn.commit()
                with lock:
                    emitted.extend(ids)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(3)]

    async def scenario() -> tuple[dict[tuple[str, str], list[int]], int, list[int]]:
        streams: dict[tuple[str, str], Stream] = {}
        for org_key, org in (("a", a), ("b", b)):
            for role in ROLES:
                streams[(org_key, role)] = await stream_for(server, org.users[role])
        deadline = time.monotonic() + 10
        while live_clients(server) < len(streams) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert live_clients(server) == len(streams), "the clients did not go live"
        relay = server.state.relay
        catchup_before, fanout_before = relay.catchup_reads, relay.fanout_reads
        start = emit(su, a.id)  # the late joiner resumes after this one
        for t in threads:
            t.start()
        await asyncio.sleep(0.4)
        streams[("a", "late")] = await stream_for(server, a.users["hr_admin"], resume=start)
        for t in threads:
            t.join()
        sentinels = {
            "a": emit(su, a.id, employee=a.employees["employee"], kind="test.sentinel"),
            "b": emit(su, b.id, employee=b.employees["employee"], kind="test.sentinel"),
        }
        got: dict[tuple[str, str], list[int]] = {}
        for key, stream in streams.items():
            assert await stream.until_event(sentinels[key[0]], timeout=20), key
            got[key] = [e["id"] for e in stream.events]
            await stream.close()
        assert relay.fanout_reads > fanout_before
        return got, relay.catchup_reads - catchup_before, [start, *sentinels.values()]

    got, catchup_reads, extra = asyncio.run(scenario())
    assert len(emitted) >= 45
    universe = sorted(emitted + extra)
    positions = delivery_positions(su, universe)
    for (org_key, role), received in got.items():
        org = a if org_key == "a" else b
        user = org.users["hr_admin" if role == "late" else role]
        mine = [i for i in received if i in positions]
        expected = readable(api, user, universe)
        if role == "late":
            expected = [i for i in expected if positions[i] > positions[extra[0]]]
        assert sorted(mine) == expected, (org_key, role)
        assert len(mine) == len(set(mine)), f"an event arrived twice ({org_key}, {role})"
        assert mine == sorted(mine, key=positions.__getitem__), f"out of order ({org_key}, {role})"
    # the ten live connections read nothing on their own: only the joiner caught up
    assert catchup_reads <= 5, catchup_reads


def test_a_live_client_gets_a_late_commit_before_what_followed_it(
    start_web: Any, world: World, su: Any, dsn: str
) -> None:
    server: WebServer = start_web()
    org = world.a

    async def scenario() -> list[int]:
        stream = await stream_for(server, org.users["viewer"])
        deadline = time.monotonic() + 10
        while live_clients(server) < 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        with psycopg.connect(dsn, row_factory=dict_row) as slow:
            early = emit(slow, org.id, payload={"n": "early"})
            late = emit(su, org.id, payload={"n": "late"})
            await asyncio.sleep(0.5)
            assert not any(e["id"] in (early, late) for e in stream.events)
            slow.commit()
        after = emit(su, org.id, payload={"n": "after"})
        assert await stream.until_event(after)
        await stream.close()
        seen = [e["id"] for e in stream.events]
        assert seen.index(early) < seen.index(late) < seen.index(after)
        return seen

    seen = asyncio.run(scenario())
    assert len(seen) == len(set(seen))


def test_a_live_clients_role_change_takes_effect_without_reconnecting(
    start_web: Any, world: World, su: Any
) -> None:
    """The audience is computed from app_users at each read, as RLS would for a request."""
    server: WebServer = start_web()
    org = world.a
    user = su.execute("select tests.create_user(%s, 'employee') as id", [org.id]).fetchone()["id"]

    async def scenario() -> tuple[list[int], int, int]:
        employee = su.execute(
            "select employee_id from app.app_users where id = %s", [user]
        ).fetchone()["employee_id"]
        stream = await stream_for(server, user)
        hidden = emit(su, org.id)  # org-wide: not for an employee
        assert await stream.until_event(emit(su, org.id, employee=employee))  # hidden was read
        su.execute("update app.app_users set app_role = 'viewer' where id = %s", [user])
        shown = emit(su, org.id)
        assert await stream.until_event(shown)
        await stream.close()
        return [e["id"] for e in stream.events], hidden, shown

    seen, hidden, shown = asyncio.run(scenario())
    assert shown in seen
    assert hidden not in seen
