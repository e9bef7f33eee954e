"""Event latency from commit to WebSocket receipt, 200 connected clients, 200 events/s.

    python bench/web_events.py [--clients 200] [--rate 200] [--seconds 20]

Builds a throwaway cluster with one organisation (150 staff users who read every event, 50
employee users who read the events about themselves), starts `compliance web` as its own
process, connects the clients (one asyncio process with `picows`, whose frame callback notes
the receipt time as soon as the bytes are read; `msgspec` decodes of each message only its type
and its events' ids, so that the clients' own CPU inflates the latencies little), then a writer
process commits one event per transaction at the given rate (app.emit_event, as the engine
does) and records each commit time. Latency = client receipt time - commit time, over every
(client, event) pair the client may read, for the events committed in the measured window.
Targets: p50 <= 20 ms, p99 <= 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import resource
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

import msgspec
import psycopg
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect
from psycopg.types.json import Jsonb
from web_common import WebProcess, machine, start_cluster, token

STAFF_ROLES = ("hr_admin", "viewer", "superadmin")
ORIGIN = "http://bench.test"


def setup(dsn: str, clients: int) -> tuple[uuid.UUID, list[tuple[uuid.UUID, uuid.UUID | None]]]:
    """The organisation, and the users: (user id, employee id for employee users)."""
    employees_n = max(1, clients // 4)
    staff_n = clients - employees_n
    users: list[tuple[uuid.UUID, uuid.UUID | None]] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        org = conn.execute(
            "insert into app.organizations (name, slug) values ('Bench Live', 'bench-live')"
            " returning id"
        ).fetchone()[0]
        for i in range(employees_n):
            emp = conn.execute(
                "insert into app.employees (org_id, email, first_name, last_name)"
                " values (%s, %s, 'Emp', %s) returning id",
                [org, f"emp{i}@bench.test", f"N{i}"],
            ).fetchone()[0]
            uid = conn.execute(
                "insert into app.app_users (org_id, email, display_name, app_role, employee_id)"
                " values (%s, %s, %s, 'employee', %s) returning id",
                [org, f"emp{i}@bench.test", f"Employee {i}", emp],
            ).fetchone()[0]
            users.append((uid, emp))
        for i in range(staff_n):
            uid = conn.execute(
                "insert into app.app_users (org_id, email, display_name, app_role)"
                " values (%s, %s, %s, %s) returning id",
                [org, f"staff{i}@bench.test", f"Staff {i}", STAFF_ROLES[i % len(STAFF_ROLES)]],
            ).fetchone()[0]
            users.append((uid, None))
        conn.execute("analyze")
    return org, users


def writer(
    dsn: str,
    org: uuid.UUID,
    employees: list[uuid.UUID],
    rate: float,
    seconds: float,
    out: Any,
) -> None:
    """Commit one event per transaction at ``rate``/s; send [(id, commit time)] back."""
    commits: list[tuple[int, float]] = []
    interval = 1.0 / rate
    with psycopg.connect(dsn) as conn:
        start = time.monotonic()
        n = 0
        while True:
            due = start + n * interval
            now = time.monotonic()
            if now - start >= seconds:
                break
            if due > now:
                time.sleep(due - now)
            employee = employees[n % len(employees)]
            event_id = conn.execute(
                "select app.emit_event(%s, 'assignment.updated', 'bench', %s, %s, %s)",
                [org, str(n), employee, Jsonb({"n": n})],
            ).fetchone()[0]
            conn.commit()
            commits.append((event_id, time.time()))
            n += 1
    out.send(commits)
    out.close()


class Event(msgspec.Struct):
    id: int


class Message(msgspec.Struct):
    """What the client reads of a server message: its type and its events' ids (nothing else)."""

    type: str
    events: list[Event] = []


DECODE = msgspec.json.Decoder(Message).decode


class Receiver(WSListener):
    """One WebSocket client: records when each event id first arrived (the frame callback runs as
    soon as the bytes are read, no task per message)."""

    def __init__(self, received: dict[int, float], ready: asyncio.Event) -> None:
        self.received = received
        self.ready = ready

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        now = time.time()
        if frame.msg_type == WSMsgType.TEXT:
            assert frame.fin, "the server does not fragment its messages"
            message = DECODE(frame.get_payload_as_memoryview())
            if message.type == "events":
                for event in message.events:
                    self.received.setdefault(event.id, now)
            elif message.type == "ready":
                self.ready.set()
        elif frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()


async def client(
    url: str, jwt_token: str, received: dict[int, float], ready: asyncio.Event, stop: asyncio.Event
) -> None:
    transport, _ = await ws_connect(
        lambda: Receiver(received, ready),
        url,
        extra_headers={"Sec-WebSocket-Protocol": f"bearer, {jwt_token}", "Origin": ORIGIN},
        websocket_handshake_timeout=60,
    )
    await stop.wait()
    transport.send_close()
    transport.disconnect()


async def run(args: argparse.Namespace) -> None:
    print(f"machine: {machine()}")
    _cluster, dsn = start_cluster()
    if args.extra_sql:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(Path(args.extra_sql).read_text(encoding="utf-8").encode())
        print(f"applied {args.extra_sql} after migrating")
    org, users = setup(dsn, args.clients)
    employees = [emp for _uid, emp in users if emp is not None]
    web = WebProcess(dsn, WEB_WS_RESUME_WAIT_SECONDS="0", WEB_WS_MAX_CONNECTIONS="10000")
    url = web.base.replace("http://", "ws://") + "/ws"
    stop = asyncio.Event()
    received: list[dict[int, float]] = [{} for _ in users]
    readies = [asyncio.Event() for _ in users]
    tasks = []
    for i, (uid, _emp) in enumerate(users):
        tasks.append(asyncio.create_task(client(url, token(uid), received[i], readies[i], stop)))
        if i % 20 == 19:
            await asyncio.sleep(0.05)
    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 120)
    print(f"{len(users)} clients connected ({len(employees)} employees, rest staff)")
    cpu_before = web.cpu_seconds()
    own_before = resource.getrusage(resource.RUSAGE_SELF)
    parent, child = mp.Pipe(duplex=False)
    proc = mp.Process(
        target=writer, args=(dsn, org, employees, args.rate, args.seconds + args.warmup, child)
    )
    started = time.time()
    proc.start()
    commits: list[tuple[int, float]] = await asyncio.to_thread(parent.recv)
    await asyncio.to_thread(proc.join)
    # let the last events arrive: until nothing new came for 3 s (at most 60 s)
    last_total, quiet_since, deadline = -1, time.monotonic(), time.monotonic() + 60
    while time.monotonic() < deadline and time.monotonic() - quiet_since < 3:
        await asyncio.sleep(0.25)
        total = sum(len(r) for r in received)
        if total != last_total:
            last_total, quiet_since = total, time.monotonic()
    cpu = web.cpu_seconds() - cpu_before
    own_after = resource.getrusage(resource.RUSAGE_SELF)
    client_cpu = (own_after.ru_utime + own_after.ru_stime) - (
        own_before.ru_utime + own_before.ru_stime
    )
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    web.stop()

    window_start = started + args.warmup
    measured = [(eid, t) for eid, t in commits if t >= window_start]
    by_employee = {eid: employees[i % len(employees)] for i, (eid, _t) in enumerate(commits)}
    latencies: list[float] = []
    missing = 0
    for (_uid, emp), got in zip(users, received, strict=True):
        for eid, t_commit in measured:
            if emp is not None and by_employee[eid] != emp:
                continue  # not this employee's event: RLS hides it
            t_recv = got.get(eid)
            if t_recv is None:
                missing += 1
            else:
                latencies.append((t_recv - t_commit) * 1000)
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))]

    duration = commits[-1][1] - commits[0][1] if commits else 0
    print(
        f"events committed: {len(commits)} in {duration:.1f} s ({len(commits) / duration:.0f}/s),"
        f" measured {len(measured)} after a {args.warmup:.0f} s warm-up"
    )
    print(f"deliveries measured: {len(latencies):,} (client, event) pairs, missing {missing}")
    print(
        f"latency commit -> client receipt: p50 {pct(50):.1f} ms, p90 {pct(90):.1f} ms,"
        f" p99 {pct(99):.1f} ms, max {latencies[-1]:.1f} ms,"
        f" mean {statistics.fmean(latencies):.1f} ms"
    )
    print(
        f"targets: p50 <= 20 ms {'met' if pct(50) <= 20 else 'NOT met'}; "
        f"p99 <= 100 ms {'met' if pct(99) <= 100 else 'NOT met'}"
    )
    print(
        f"server CPU during the run: {cpu:.1f} s over {duration:.1f} s of writing "
        f"({100 * cpu / duration:.0f} % of one core); the clients' process: {client_cpu:.1f} s"
        f" ({100 * client_cpu / duration:.0f} %)"
    )
    print(
        f"conditions: {len(users)} clients in one asyncio process (picows; msgspec decodes type "
        f"and event ids), {args.rate:.0f} events/s from a separate writer process (one "
        "transaction each), server `compliance web` (1 process), PostgreSQL on the same machine"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument(
        "--extra-sql", default=None, help="SQL file applied after migrating (to try a change)"
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
