"""The live event relay: one LISTEN connection, one shared reader, many WebSocket clients.

* :class:`Listener` holds the process's only ``LISTEN compliance_events`` connection. A
  notification (its payload is an event id) only wakes the relay; it carries no data.
* :class:`Relay` serves every connected client in *rounds*. A connection first **catches up**:
  ``app.web_relay_events`` (db/functions/410_web_relay.sql) reads, for each such client, what
  ``api.events_since(after_id, max_rows)`` gives that client's user — acting as that user, so
  row-level security decides (a new connection gets its head; a resume its missed events).
  Once a catch-up read came back complete, the connection is **live**: one shared read per
  round, ``app.event_audience`` (a global cursor in the outbox's commit-safe (tx_id, id) order,
  with the users the RLS policy lets read each event) serves every live connection, so a round
  costs per event, not per client. Each connection keeps its own position in that order
  (``Client.through``); an event goes to the connections whose user is in its audience and whose
  position is behind it. The same statement checks that the live connections' users are still
  active (and in the same organisation); a connection whose user is not goes back to catching
  up, where ``app.pre_request()`` refuses it (4401).
* A committed event may wait behind an older transaction that is still running (the horizon).
  The round that follows a notification records its snapshot's ``xmax``; until a round's
  ``xmin`` has passed it, the relay re-reads every ``web_relay_poll_seconds`` (even when no
  other notification comes). A safety round runs every ``web_relay_safety_poll_seconds``.
* Clients that get the same events in a round get the same :class:`Message`, whose frame is
  built once and written straight to each connection's socket while the client reads
  (web/wsserver.py): a round costs one write per client, not a trip through the ASGI stack.
  What a socket cannot take at once waits in the client's bounded outbox
  (``web_ws_queue_events`` events) and goes through ASGI, which waits for the client to read. A
  client that falls behind is not buffered without end: it gets ``resync_required`` and is
  closed with 1013.
* :class:`Presence` tracks who is connected per organisation and tells the organisation's
  clients of joins and leaves — each client only about users it may read in ``app_users``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import tuple_row
from psycopg.types.json import Jsonb

from web.db import AsyncPool
from web.wsserver import FrameWriter, text_frame

__all__ = ["INTERNAL_ERROR", "Client", "CloseCodes", "Listener", "Message", "Presence", "Relay"]

log = logging.getLogger("web.relay")

_T = TypeVar("_T")

CHANNEL = "compliance_events"
#: Readers per app.web_relay_events call (a round of more clients makes several calls).
READERS_PER_CALL = 500
#: Fewer readers than this are not split across connections.
MIN_READERS_PER_PART = 25
#: Rounds start at most this often (seconds). An event that comes after a quiet spell is read at
#: once; under a steady stream, the events of a few milliseconds share a round, and so one
#: message per client, which halves the messages (and the CPU) both ends spend per event.
MIN_ROUND_INTERVAL = 0.008


class CloseCodes:
    """WebSocket close codes the relay uses (README "WebSocket")."""

    NORMAL = 1000
    GOING_AWAY = 1001  # the server is shutting down
    UNSUPPORTED = 1003  # a binary message
    INVALID_PAYLOAD = 1007  # a message nested deeper than web.ws.MAX_MESSAGE_DEPTH
    POLICY = 1008  # flooding: too many messages
    TOO_BIG = 1009  # a message larger than WEB_WS_MAX_MESSAGE_BYTES (closed by the server stack)
    INTERNAL = 1011  # the server failed while serving this connection (alone)
    TRY_AGAIN = 1013  # resync_required: the client fell behind, or its resume point is gone
    UNAUTHORIZED = 4401  # the user was deactivated or removed while connected


#: What a connection is told before it is closed with 1011 (the server failed serving it).
INTERNAL_ERROR: dict[str, Any] = {
    "type": "error",
    "code": "INTERNAL_SERVER_ERROR",
    "message": "the server failed while serving this connection; reconnect and resume from the"
    " last event id you received",
}


def dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), default=str)


class Message:
    """One message for WebSocket clients. The relay gives the same Message to every client that
    gets the same batch, so its frame is built once, however many clients it goes to."""

    __slots__ = ("_frame", "events", "last_id", "text")

    def __init__(self, text: str, events: int = 0, last_id: int | None = None) -> None:
        self.text = text
        #: how many events it carries (they count against the client's queue limit)
        self.events = events
        #: the id of its last event (the client's resume point once it is sent)
        self.last_id = last_id
        self._frame: bytes | None = None

    @property
    def frame(self) -> bytes:
        if self._frame is None:
            self._frame = text_frame(self.text)
        return self._frame


@dataclass(eq=False)
class Client:
    """One WebSocket connection as the relay sees it."""

    claims: dict[str, Any]
    user_id: uuid.UUID
    org_id: uuid.UUID
    display_name: str
    queue_limit: int
    #: writes frames straight to the connection (None: every message goes through ASGI)
    writer: FrameWriter | None = None
    key: str = field(default_factory=lambda: uuid.uuid4().hex)
    #: the user's and the organisation's ids as text (the relay's shared read names them so)
    user_text: str = field(init=False)
    org_text: str = field(init=False)
    connected_at: float = field(default_factory=time.time)
    #: where the next read starts (api.events_since's after_id); None: at the head (new client)
    cursor: int | None = None
    #: (tx_id, id): the client has every event it may read up to here, in delivery order
    through: tuple[int, int] | None = None
    #: the last catch-up read was complete (fewer than max_rows): it may go live
    caught_up: bool = False
    #: served by the shared reader (app.event_audience) instead of its own reads
    live: bool = False
    #: the relay serves the client (after its resume message, or the resume wait)
    active: bool = False
    generation: int = 0
    #: messages waiting for the socket (the client did not read fast enough to write them now)
    outbox: deque[Message] = field(default_factory=deque)
    #: events in the outbox
    queued: int = 0
    #: the send loop is handing a message to the socket (later ones must wait their turn)
    sending: bool = False
    #: the last event id handed to the socket (told in resync_required)
    cursor_sent: int | None = None
    sent_events: int = 0
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    #: why the connection must end: (close code, reason, last message to send or None)
    ending: tuple[int, str, dict[str, Any] | None] | None = None

    def __post_init__(self) -> None:
        self.user_text = str(self.user_id)
        self.org_text = str(self.org_id)

    def push(self, message: Message) -> bool:
        """Send a message now if the socket takes it, else queue it; False (and the client is
        ended) when the queue would exceed the limit."""
        if self.ending is not None:
            return False
        if self.queued + message.events > self.queue_limit:
            self.end(
                CloseCodes.TRY_AGAIN,
                "slow consumer",
                {
                    "type": "resync_required",
                    "reason": "slow_consumer",
                    "message": (
                        f"more than {self.queue_limit} events were waiting for this connection; "
                        "reconnect and resume from the last event id you received"
                    ),
                    "last_event_id": self.cursor_sent,
                },
            )
            return False
        if (
            self.writer is not None
            and not self.outbox
            and not self.sending
            and self.writer.write(message.frame)
        ):
            self.sent(message)
            return True
        self.outbox.append(message)
        self.queued += message.events
        self.wakeup.set()
        return True

    def sent(self, message: Message) -> None:
        """The message is on its way (handed to the socket)."""
        if message.last_id is not None:
            self.cursor_sent = message.last_id
            self.sent_events += message.events

    def end(self, code: int, reason: str, message: dict[str, Any] | None = None) -> None:
        """Ask the connection to close (first reason wins)."""
        if self.ending is None:
            self.ending = (code, reason, message)
        self.done.set()
        self.wakeup.set()

    def resume(self, after_id: int) -> None:
        """Start (again) right after ``after_id``: whatever was queued is dropped."""
        self.generation += 1
        self.cursor = after_id
        self.through = None
        self.caught_up = False
        self.live = False
        self.cursor_sent = after_id
        self.outbox.clear()
        self.queued = 0
        self.active = True


Position = tuple[int, int]
"""A place in the outbox's delivery order: (transaction id, event id)."""


@dataclass
class RoundResult:
    events: list[tuple[int, int]] = field(default_factory=list)  # (event id, transaction id)
    head: int | None = None
    #: the horizon of the reader's statement (head / through rows)
    horizon: int | None = None
    error: tuple[str, str] | None = None


class Relay:
    """Reads events for every active client, in rounds, on its own connection."""

    def __init__(
        self,
        dsn: str,
        *,
        batch_rows: int,
        poll_seconds: float,
        safety_seconds: float,
        connections: int = 2,
        min_round_interval: float = MIN_ROUND_INTERVAL,
    ) -> None:
        self.dsn = dsn
        self.min_round_interval = min_round_interval
        self.connections = max(1, connections)
        self.batch_rows = batch_rows
        self.poll_seconds = poll_seconds
        self.safety_seconds = safety_seconds
        self.clients: dict[str, Client] = {}
        self.by_org: dict[uuid.UUID, set[str]] = {}
        self._wake = asyncio.Event()
        self._notified = False
        self._need_horizon = 0
        self._pending = False
        self._conns: list[AsyncConnection[Any] | None] = [None] * self.connections
        #: the shared reader's cursor; None while no client is live
        self.position: Position | None = None
        self.rounds = 0
        self.fanout_reads = 0
        self.catchup_reads = 0
        self.last_round_at: float | None = None
        self.last_error: str | None = None
        self.healthy = False

    # -- clients ------------------------------------------------------------------------------

    def add(self, client: Client) -> None:
        self.clients[client.key] = client
        self.by_org.setdefault(client.org_id, set()).add(client.key)

    def remove(self, client: Client) -> None:
        self.clients.pop(client.key, None)
        keys = self.by_org.get(client.org_id)
        if keys is not None:
            keys.discard(client.key)
            if not keys:
                self.by_org.pop(client.org_id, None)

    def org_clients(self, org_id: uuid.UUID) -> list[Client]:
        return [self.clients[k] for k in self.by_org.get(org_id, ()) if k in self.clients]

    def activate(self, client: Client) -> None:
        """Serve the client from the next round on."""
        client.active = True
        self.wake()

    # -- waking -------------------------------------------------------------------------------

    def notify(self) -> None:
        """A notification arrived: something committed (its id is not needed)."""
        self._notified = True
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    # -- the loop -------------------------------------------------------------------------------

    async def run(self) -> None:
        backoff = 0.2
        started = 0.0
        while True:
            timeout = self.poll_seconds if self._pending else self.safety_seconds
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            pause = started + self.min_round_interval - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)  # let the events of a busy moment share a round
            started = time.monotonic()
            self._wake.clear()
            notified, self._notified = self._notified, False
            try:
                await self.round(notified)
                backoff = 0.2
                self.healthy = True
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.healthy = False
                self.last_error = f"{type(exc).__name__}: {exc}".splitlines()[0]
                log.warning("relay round failed (%s); retrying in %.1f s", self.last_error, backoff)
                await self._drop_connection()
                self._notified = True  # read again after reconnecting
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                self._wake.set()

    async def _connection(self, index: int) -> AsyncConnection[Any]:
        conn = self._conns[index]
        if conn is None or conn.closed:
            conn = self._conns[index] = await AsyncConnection.connect(
                self.dsn, autocommit=True, row_factory=tuple_row
            )
        return conn

    async def _drop_connection(self) -> None:
        conns, self._conns = self._conns, [None] * self.connections
        for conn in conns:
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()

    async def close(self) -> None:
        await self._drop_connection()

    async def round(self, notified: bool) -> None:
        """Serve every active client once: the live ones with one shared read, the others
        (new connections, resumes) with a read each as their user.

        The catch-up reads are split into parts (at most READERS_PER_CALL readers a call) served
        concurrently on ``connections`` connections. They run after the shared read, so that a
        complete catch-up is at or past the shared cursor and the client can go live.
        """
        clients = [c for c in self.clients.values() if c.active and c.ending is None]
        now = time.monotonic()
        if not clients:
            self._pending = False
            self.position = None
            self.last_round_at = now
            return
        horizons: list[tuple[int, int]] = []
        live = [c for c in clients if c.live]
        if live:
            horizons.append(await self._fanout(live))
        else:
            self.position = None
        catching = [c for c in clients if not c.live and c.ending is None]
        if catching:
            horizons.extend(await self._catch_up(catching, now))
            self._promote(catching)
        if horizons:
            # Every read's snapshot was taken after the notifications that woke this round.
            xmin = min(h[0] for h in horizons)
            xmax = min(h[1] for h in horizons)
            if notified:
                self._need_horizon = max(self._need_horizon, xmax)
            self._pending = xmin < self._need_horizon
        if any(c.active and not c.live and c.ending is None for c in catching):
            self._pending = True  # not live yet: read again soon
        self.rounds += 1
        self.last_round_at = time.monotonic()

    async def _catch_up(self, clients: list[Client], now: float) -> list[tuple[int, int]]:
        parts_n = max(
            -(-len(clients) // READERS_PER_CALL),
            min(self.connections, -(-len(clients) // MIN_READERS_PER_PART)),
        )
        size = -(-len(clients) // parts_n)
        parts = [clients[i : i + size] for i in range(0, len(clients), size)]
        lanes = [parts[i :: self.connections] for i in range(min(self.connections, len(parts)))]
        results = await asyncio.gather(
            *(self._lane(index, lane, now) for index, lane in enumerate(lanes))
        )
        self.catchup_reads += len(clients)
        return [h for lane in results for h in lane]

    def _promote(self, clients: list[Client]) -> None:
        """Clients whose catch-up is complete and at or past the shared cursor go live."""
        ready = [
            c
            for c in clients
            if c.caught_up and c.through is not None and c.ending is None and not c.live
        ]
        if not ready:
            return
        if self.position is None:
            self.position = min(c.through for c in ready if c.through is not None)
        for c in ready:
            if c.through is not None and c.through >= self.position:
                c.live = True

    async def _fanout(self, live: list[Client]) -> tuple[int, int]:
        """One shared read (app.event_audience) for every live client; returns its horizon.

        Clients that get the same events get the same Message (one text, one frame): in a
        round, all the staff of an organisation typically share one.
        """
        conn = await self._connection(0)
        generations = {c.key: c.generation for c in live}
        after = self.position or (0, 0)

        async def read(clients: list[Client]) -> list[tuple[Any, ...]]:
            return await self._audience(conn, clients, after)

        live, rows = await self._isolate(conn, live, read)
        served = [(c, generations[c.key]) for c in live]
        self.fanout_reads += 1
        xmin, xmax, gone = rows[0][0], rows[0][1], rows[0][2]
        gone_users = set(gone.split(",")) if gone else set()
        by_user: dict[str, list[Client]] = {}
        for c, generation in served:
            if c.generation != generation or c.ending is not None or not c.live:
                continue  # resumed (or ended) while the read ran
            if c.user_text in gone_users:
                # Deactivated, removed or moved: its own read as the user decides (4401, 410).
                c.live = False
                c.caught_up = False
                c.through = None
                continue
            by_user.setdefault(c.user_text, []).append(c)
        # (position, body, audience) of each event, in delivery order
        events = [
            ((int(tx_id), event_id), body, set(audience.split(",")) if audience else set())
            for _x, _y, _g, event_id, tx_id, body, audience in rows
            if event_id is not None
        ]
        if not events:
            return int(xmin), int(xmax)
        self.position = events[-1][0]
        # Which events each client gets (as indexes into events), and the clients per selection.
        selections: dict[tuple[int, ...], list[Client]] = {}
        for user, clients in by_user.items():
            mine = tuple(i for i, event in enumerate(events) if user in event[2])
            if not mine:
                continue
            for c in clients:
                chosen = mine
                if c.through is not None and events[mine[0]][0] <= c.through:
                    # it had the first ones from its catch-up
                    through = c.through
                    chosen = tuple(i for i in mine if events[i][0] > through)
                    if not chosen:
                        continue
                selections.setdefault(chosen, []).append(c)
        for chosen, clients in selections.items():
            last_pos = events[chosen[-1]][0]
            bodies = ",".join(events[i][1] for i in chosen)
            message = Message(
                f'{{"type":"events","last_event_id":{last_pos[1]},"events":[{bodies}]}}',
                len(chosen),
                last_pos[1],
            )
            for c in clients:
                try:
                    if c.push(message):
                        c.cursor = last_pos[1]
                        c.through = last_pos
                except Exception:
                    self._reader_failed(c, "handing it events failed", exc_info=True)
        if len(events) >= self.batch_rows:
            self.wake()  # more are waiting
        return int(xmin), int(xmax)

    async def _audience(
        self, conn: AsyncConnection[Any], live: list[Client], after: Position
    ) -> list[tuple[Any, ...]]:
        """The shared read: the round's horizon, the users of ``live`` no longer active, and
        the next events after ``after`` with each one's audience among those users."""
        members = sorted({(c.user_text, c.org_text) for c in live})
        after_tx, after_id = after
        # One statement, one snapshot: the users' check and the events agree. Users and
        # audiences travel as text: the relay only compares them.
        cur = await conn.execute(
            "select h.xmin, h.xmax, h.gone, a.id, a.tx_id::text, a.body,"
            "       pg_catalog.array_to_string(a.audience, ',')"
            " from (select pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())::text"
            "              as xmin,"
            "          pg_catalog.pg_snapshot_xmax(pg_catalog.pg_current_snapshot())::text"
            "              as xmax,"
            # the users no longer active in the organisation their connections belong to
            "          (select pg_catalog.string_agg(m.user_id::text, ',')"
            "           from rows from (pg_catalog.unnest(%(users)s::uuid[]),"
            "                           pg_catalog.unnest(%(orgs)s::uuid[])) as m(user_id, org_id)"
            "           left join app.web_relay_users(%(users)s::uuid[]) u"
            "                  on u.user_id = m.user_id and u.org_id = m.org_id"
            "           where u.user_id is null) as gone) h"
            " left join lateral app.event_audience("
            "         %(tx)s::text::xid8, %(id)s, %(rows)s, %(users)s::uuid[])"
            "     with ordinality as a(org_id, id, tx_id, body, audience, o) on true"
            " order by a.o",
            {
                "users": "{" + ",".join(user for user, _org in members) + "}",
                "orgs": "{" + ",".join(org for _user, org in members) + "}",
                "tx": str(after_tx),
                "id": after_id,
                "rows": self.batch_rows,
            },
        )
        return await cur.fetchall()

    async def _lane(
        self, index: int, parts: list[list[Client]], now: float
    ) -> list[tuple[int, int]]:
        conn = await self._connection(index)
        return [await self._call(conn, part, now) for part in parts]

    async def _call(
        self, conn: AsyncConnection[Any], part: list[Client], now: float
    ) -> tuple[int, int]:
        generations = {c.key: c.generation for c in part}

        async def read(readers: list[Client]) -> list[tuple[Any, ...]]:
            cur = await conn.execute(
                "select kind, reader, event_id, body, error_code, error_message, tx_id"
                " from app.web_relay_events(%s, %s)",
                [
                    Jsonb(
                        [{"key": c.key, "claims": c.claims, "after_id": c.cursor} for c in readers]
                    ),
                    self.batch_rows,
                ],
            )
            return await cur.fetchall()

        part, rows = await self._isolate(conn, part, read)
        horizon = (0, 0)
        results: dict[str, RoundResult] = {}
        bodies: dict[int, str] = {}
        for kind, reader, event_id, body, error_code, error_message, tx_id in rows:
            if kind == "horizon":
                h = json.loads(body)
                horizon = (int(h["xmin"]), int(h["xmax"]))
            elif kind == "body":
                bodies[event_id] = body
            else:
                result = results.setdefault(reader, RoundResult())
                if kind == "event":
                    result.events.append((int(event_id), int(tx_id)))
                elif kind == "through":
                    result.horizon = int(tx_id)
                elif kind == "head":
                    result.head = int(event_id)
                    result.horizon = int(tx_id)
                elif kind == "error":
                    result.error = (error_code or "", error_message or "")
        for c in part:
            if c.generation != generations[c.key] or c.ending is not None:
                continue  # resumed (or ended) while the round ran: its results are stale
            try:
                self._deliver(c, results.get(c.key), bodies)
            except Exception:
                self._reader_failed(c, "handing it events failed", exc_info=True)
        return horizon

    # -- one reader's failure is that reader's ---------------------------------------------------

    async def _isolate(
        self,
        conn: AsyncConnection[Any],
        readers: list[Client],
        read: Callable[[list[Client]], Awaitable[_T]],
    ) -> tuple[list[Client], _T]:
        """``read(readers)``, and the readers it served. When that statement fails on a sound
        connection, the readers whose own read fails are ended (1011) and the others are read
        without them. The failure is the round's (it is raised) when it is no reader's: a read
        for no reader fails too, or no reader fails alone, or every one does."""
        try:
            return readers, await read(readers)
        except psycopg.Error as exc:
            if conn.broken or conn.closed:
                raise  # the database is gone: everyone's problem
            error = exc
        await read([])
        culprits = await self._culprits(conn, readers, read, error)
        if not culprits or (len(culprits) == len(readers) > 1):
            raise error
        for c, failure in culprits:
            self._reader_failed(c, f"{failure.sqlstate or type(failure).__name__}: {failure}")
        failed = {c.key for c, _exc in culprits}
        rest = [c for c in readers if c.key not in failed]
        return rest, await read(rest)

    async def _culprits(
        self,
        conn: AsyncConnection[Any],
        readers: list[Client],
        read: Callable[[list[Client]], Awaitable[Any]],
        error: psycopg.Error,
    ) -> list[tuple[Client, psycopg.Error]]:
        """The readers whose read fails on its own, given that ``read(readers)`` failed with
        ``error``: halving, about 2·log2(n) reads for each of them."""
        if len(readers) == 1:
            return [(readers[0], error)]
        culprits: list[tuple[Client, psycopg.Error]] = []
        middle = len(readers) // 2
        for half in (readers[:middle], readers[middle:]):
            try:
                await read(half)
            except psycopg.Error as exc:
                if conn.broken or conn.closed:
                    raise
                culprits += await self._culprits(conn, half, read, exc)
        return culprits

    def _reader_failed(self, c: Client, why: str, *, exc_info: bool = False) -> None:
        """Serving ``c`` failed: it alone is closed (1011), the round goes on for the others."""
        log.warning(
            "relay: serving connection %s of user %s failed (%s); closing it (1011)",
            c.key,
            c.user_id,
            why.splitlines()[0] if why else "?",
            exc_info=exc_info,
        )
        c.end(CloseCodes.INTERNAL, "internal error", INTERNAL_ERROR)

    def _deliver(self, c: Client, result: RoundResult | None, bodies: dict[int, str]) -> None:
        if result is None:
            return
        if result.error is not None:
            code, message = result.error
            if code == "PT410":
                c.end(
                    CloseCodes.TRY_AGAIN,
                    "resume point gone",
                    {
                        "type": "resync_required",
                        "reason": "resume_point_gone",
                        "message": message,
                        "last_event_id": c.cursor,
                    },
                )
            elif code in ("PT401", "PT403"):
                c.end(
                    CloseCodes.UNAUTHORIZED,
                    "unauthorized",
                    {"type": "error", "code": "UNAUTHORIZED", "message": message},
                )
            else:
                self._reader_failed(c, f"{code}: {message}")
            return
        if result.head is not None:
            c.cursor = result.head
            # It starts after everything below the horizon its head was taken under.
            c.through = (result.horizon or 0, 0)
            c.caught_up = True
            c.push(Message(dumps({"type": "ready", "last_event_id": result.head})))
            return
        complete = len(result.events) < self.batch_rows
        if result.events:
            texts = []
            for event_id, _tx in result.events:
                text = bodies.get(event_id)
                if text is None:  # pragma: no cover - the function sends every given event's body
                    log.error("relay: no body for event %s", event_id)
                    continue
                texts.append(text)
            last, last_tx = result.events[-1]
            message = f'{{"type":"events","last_event_id":{last},"events":[{",".join(texts)}]}}'
            if not c.push(Message(message, len(texts), last)):
                return
            c.cursor = last
            c.through = max(c.through or (0, 0), (last_tx, last))
        if complete and result.horizon is not None:
            # Fewer than max_rows: it has every event it may read below the read's horizon.
            c.through = max(c.through or (0, 0), (result.horizon, 0))
            c.caught_up = True
        else:
            c.caught_up = False
            self.wake()  # more are waiting for this client


class Listener:
    """The process's one LISTEN connection; wakes the relay on every notification."""

    def __init__(self, dsn: str, relay: Relay, heartbeat_seconds: float) -> None:
        self.dsn = dsn
        self.relay = relay
        self.heartbeat = heartbeat_seconds
        self.connected = False
        self.last_alive = 0.0
        self.notifications = 0
        self.reconnects = 0
        self.last_error: str | None = None

    @property
    def alive(self) -> bool:
        return self.connected and time.monotonic() - self.last_alive < 3 * self.heartbeat + 1

    async def run(self) -> None:
        backoff = 0.2
        while True:
            try:
                async with await AsyncConnection.connect(self.dsn, autocommit=True) as conn:
                    await conn.execute(f"listen {CHANNEL}")
                    self.connected = True
                    self.last_alive = time.monotonic()
                    backoff = 0.2
                    # Anything committed while nobody listened is read now.
                    self.relay.notify()
                    while True:
                        async for _ in conn.notifies(timeout=self.heartbeat):
                            self.notifications += 1
                            self.relay.notify()
                        await conn.execute("select 1")
                        self.last_alive = time.monotonic()
            except asyncio.CancelledError:
                self.connected = False
                raise
            except (psycopg.Error, OSError) as exc:
                self.connected = False
                self.reconnects += 1
                self.last_error = f"{type(exc).__name__}: {exc}".splitlines()[0]
                log.warning("listener lost (%s); reconnecting in %.1f s", self.last_error, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)


@dataclass
class PresenceEntry:
    display_name: str
    connections: int
    since: float


class Presence:
    """Who is connected, per organisation, in this process; join/leave announcements."""

    def __init__(self, pool: AsyncPool, relay: Relay, batch_seconds: float = 0.05) -> None:
        self.pool = pool
        self.relay = relay
        self.batch_seconds = batch_seconds
        self.by_org: dict[uuid.UUID, dict[uuid.UUID, PresenceEntry]] = {}
        self._changes: list[tuple[uuid.UUID, uuid.UUID, str, str, int]] = []
        self._wake = asyncio.Event()

    def users(self, org_id: uuid.UUID) -> dict[uuid.UUID, PresenceEntry]:
        return dict(self.by_org.get(org_id, {}))

    def join(self, client: Client) -> None:
        users = self.by_org.setdefault(client.org_id, {})
        entry = users.get(client.user_id)
        if entry is None:
            entry = users[client.user_id] = PresenceEntry(client.display_name, 0, time.time())
        entry.connections += 1
        if entry.connections == 1:
            self._announce(client.org_id, client.user_id, entry.display_name, "join", 1)

    def leave(self, client: Client) -> None:
        users = self.by_org.get(client.org_id, {})
        entry = users.get(client.user_id)
        if entry is None:
            return
        entry.connections -= 1
        if entry.connections <= 0:
            users.pop(client.user_id, None)
            if not users:
                self.by_org.pop(client.org_id, None)
            self._announce(client.org_id, client.user_id, entry.display_name, "leave", 0)

    def _announce(
        self, org: uuid.UUID, user: uuid.UUID, name: str, event: str, connections: int
    ) -> None:
        self._changes.append((org, user, name, event, connections))
        self._wake.set()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            await asyncio.sleep(self.batch_seconds)  # let joins and leaves gather
            self._wake.clear()
            changes, self._changes = self._changes, []
            by_org: dict[uuid.UUID, list[tuple[uuid.UUID, uuid.UUID, str, str, int]]] = {}
            for change in changes:
                by_org.setdefault(change[0], []).append(change)
            for org, org_changes in by_org.items():
                try:
                    await self._tell(org, org_changes)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.warning(
                        "presence: announcing to organisation %s failed", org, exc_info=True
                    )

    async def visible(
        self, readers: Iterable[Client], user_ids: list[uuid.UUID]
    ) -> dict[str, set[uuid.UUID]]:
        """For each reader: which of ``user_ids`` it may read (as that user, RLS decides)."""
        payload = [{"key": c.key, "claims": c.claims} for c in readers]
        out: dict[str, set[uuid.UUID]] = {}
        if not payload or not user_ids:
            return out
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "select reader, user_id from app.web_visible_users(%s, %s)",
                [Jsonb(payload), user_ids],
            )
            for row in await cur.fetchall():
                out.setdefault(row["reader"], set()).add(row["user_id"])
        return out

    async def _tell(
        self, org: uuid.UUID, changes: list[tuple[uuid.UUID, uuid.UUID, str, str, int]]
    ) -> None:
        readers = [c for c in self.relay.org_clients(org) if c.active and c.ending is None]
        if not readers:
            return
        users = list({change[1] for change in changes})
        visible = await self.visible(readers, users)
        for _org, user, name, event, connections in changes:
            message = Message(
                dumps(
                    {
                        "type": "presence",
                        "event": event,
                        "user": {"id": str(user), "display_name": name},
                        "connections": connections,
                    }
                ),
                1,
            )
            for c in readers:
                if user in visible.get(c.key, ()):
                    c.push(message)
