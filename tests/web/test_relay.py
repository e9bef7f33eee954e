"""web.relay's Client without a server: a message goes straight to the socket while the socket
takes it and nothing waits; otherwise it queues, and later ones queue behind it."""

from __future__ import annotations

import uuid

from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from web.relay import Client, CloseCodes, Message
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
