"""web.relay without a server: a message goes straight to the socket while the socket takes it
and nothing waits, otherwise it queues, and later ones queue behind it; a read that fails for
some readers ends those readers alone."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import psycopg
import pytest
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from web.relay import INTERNAL_ERROR, Client, CloseCodes, Message, Relay
from web.wsserver import text_frame


class FakeWriter:
    """Stands for web.wsserver.FrameWriter: takes frames while ``takes``."""

    def __init__(self) -> None:
        self.takes = True
        self.frames: list[bytes] = []

    def write(self, frame: bytes) -> bool:
        if self.takes:
            self.frames.append(frame)
        return self.takes


def client(writer: FakeWriter | None, queue_limit: int = 10) -> Client:
    return Client(
        claims={},
        user_id=uuid.uuid4(),
        org_id=uuid.uuid4(),
        display_name="Someone",
        queue_limit=queue_limit,
        writer=writer,  # type: ignore[arg-type]
    )


def events(n: int) -> Message:
    return Message(f'{{"type":"events","last_event_id":{n},"events":[{{"id":{n}}}]}}', 1, n)


def test_a_message_goes_straight_to_the_socket_while_it_takes_it() -> None:
    writer = FakeWriter()
    c = client(writer)
    first = events(1)
    assert c.push(first)
    assert writer.frames == [first.frame]
    assert not c.outbox
    assert c.queued == 0
    assert (c.cursor_sent, c.sent_events) == (1, 1)


def test_later_messages_queue_behind_what_waits() -> None:
    writer = FakeWriter()
    c = client(writer)
    writer.takes = False
    second, third, fourth = events(2), events(3), events(4)
    assert c.push(second)
    writer.takes = True  # the socket would take the next one, but one waits before it
    assert c.push(third)
    assert list(c.outbox) == [second, third]
    assert c.queued == 2
    assert writer.frames == []
    # the send loop is handing the waiting ones to the socket: still nothing jumps the queue
    c.outbox.clear()
    c.queued = 0
    c.sending = True
    assert c.push(fourth)
    assert list(c.outbox) == [fourth]
    assert writer.frames == []
    assert c.cursor_sent is None


def test_a_full_queue_ends_the_client_with_resync_required() -> None:
    writer = FakeWriter()
    writer.takes = False
    c = client(writer, queue_limit=2)
    assert c.push(events(1))
    assert c.push(events(2))
    assert not c.push(events(3))
    assert c.ending is not None
    code, reason, last = c.ending
    assert code == CloseCodes.TRY_AGAIN
    assert reason == "slow consumer"
    assert last is not None
    assert last["type"] == "resync_required"


def test_without_a_writer_every_message_goes_through_the_send_loop() -> None:
    c = client(None)
    message = events(1)
    assert c.push(message)
    assert list(c.outbox) == [message]
    assert c.wakeup.is_set()


def test_a_message_is_framed_once_as_a_plain_text_frame() -> None:
    message = events(7)
    assert message.frame is message.frame
    assert message.frame == text_frame(message.text)
    reader = StreamReader()
    reader.feed_data(message.frame)
    parser = Frame.parse(reader.read_exact, mask=False)
    try:
        next(parser)
    except StopIteration as done:
        frame = done.value
    else:  # pragma: no cover - the frame is complete
        raise AssertionError("the frame is incomplete")
    assert frame.opcode is Opcode.TEXT
    assert frame.fin
    assert frame.data.decode() == message.text


# -- one reader's failure is that reader's: Relay._isolate ---------------------------------------


class FakeConnection:
    """Stands for the relay's psycopg connection: sound unless told otherwise."""

    broken = False
    closed = False


def isolate(
    readers: list[Client], fails: Callable[[list[Client]], bool]
) -> tuple[list[Client], list[list[str]], list[Client]]:
    """Relay._isolate over ``readers`` with a read that fails when ``fails(its readers)``:
    the readers served, the reads made (keys), and the readers served by the last read."""
    relay = Relay("", batch_rows=10, poll_seconds=1, safety_seconds=1)
    reads: list[list[str]] = []

    async def read(part: list[Client]) -> list[Client]:
        reads.append([c.key for c in part])
        if fails(part):
            raise psycopg.errors.NumericValueOutOfRange("value out of range for type bigint")
        return part

    served, last = asyncio.run(relay._isolate(FakeConnection(), readers, read))  # type: ignore[arg-type]
    return served, reads, last


def test_the_readers_whose_own_read_fails_are_ended_and_the_others_served() -> None:
    readers = [client(None) for _ in range(16)]
    bad = {readers[3].key, readers[12].key}
    served, reads, last = isolate(readers, lambda part: any(c.key in bad for c in part))
    assert [c.key for c in served] == [c.key for c in readers if c.key not in bad]
    assert last == served
    for c in readers:
        if c.key in bad:
            assert c.ending is not None
            assert c.ending[0] == CloseCodes.INTERNAL
            assert c.ending[2] == INTERNAL_ERROR
        else:
            assert c.ending is None
    assert len(reads) <= 2 + 2 * 2 * 4 + 1  # the whole, nobody, halving to each culprit, the rest


def test_a_failure_that_is_no_readers_fails_the_round() -> None:
    readers = [client(None) for _ in range(4)]
    cases: list[Callable[[list[Client]], bool]] = [
        lambda part: True,  # a read for nobody fails too: the database's problem
        lambda part: len(part) > 0,  # every reader fails alone
        lambda part: len(part) == 4,  # nobody fails alone (the failure came and went)
    ]
    for fails in cases:
        with pytest.raises(psycopg.errors.NumericValueOutOfRange):
            isolate(readers, fails)
        assert all(c.ending is None for c in readers)


def test_a_lost_connection_fails_the_round_without_blaming_anyone() -> None:
    relay = Relay("", batch_rows=10, poll_seconds=1, safety_seconds=1)
    conn = FakeConnection()
    conn.broken = True
    readers = [client(None) for _ in range(4)]

    async def read(part: list[Client]) -> None:
        raise psycopg.OperationalError("server closed the connection unexpectedly")

    with pytest.raises(psycopg.OperationalError):
        asyncio.run(relay._isolate(conn, readers, read))  # type: ignore[arg-type]
    assert all(c.ending is None for c in readers)
