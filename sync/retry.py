"""Retries of upstream calls: exponential backoff with jitter, Retry-After honoured, a bounded
number of attempts, and a stop event that cuts any wait short (SIGTERM)."""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

__all__ = [
    "FetchError",
    "Page",
    "PermanentError",
    "Retry",
    "Stopped",
    "TransientError",
    "parse_retry_after",
]

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class Page:
    """One upstream answer (a page of a list, or one object): its raw body, staged as sent, and
    the records it holds."""

    body: bytes
    items: list[dict[str, Any]] = field(default_factory=list)


class TransientError(Exception):
    """A failure worth another attempt (timeout, connection reset, 429, 5xx, malformed body)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(Exception):
    """A failure another attempt will not fix (401/403, 404, 400)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class FetchError(Exception):
    """The call failed for good: a permanent error, or every attempt failed."""


class Stopped(Exception):
    """The worker was asked to stop (SIGTERM) while waiting or between pages."""


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


@dataclass
class Retry:
    """How to retry one upstream call.

    ``attempts`` calls at most; between them ``base * 2**(n-1)`` seconds (capped at ``cap``),
    jittered to between half and all of it, or the server's Retry-After when it sent one
    (capped at ``max_retry_after``). ``stop`` set = stop now (raises :class:`Stopped`).
    """

    attempts: int = 3
    base: float = 1.0
    cap: float = 30.0
    max_retry_after: float = 120.0
    stop: threading.Event = field(default_factory=threading.Event)
    rand: Callable[[], float] = random.random
    sleep: Callable[[float], None] | None = None
    #: Every wait taken (seconds), for tests and logs.
    waits: list[float] = field(default_factory=list)

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        step = min(self.cap, self.base * 2.0 ** (attempt - 1))
        return step / 2 + self.rand() * step / 2

    def wait(self, seconds: float) -> None:
        """Sleep, unless asked to stop (then raise :class:`Stopped`)."""
        self.waits.append(seconds)
        if self.sleep is not None:
            self.sleep(seconds)
        elif seconds > 0 and self.stop.wait(seconds):
            raise Stopped("stop requested while waiting to retry")
        if self.stop.is_set():
            raise Stopped("stop requested")

    def call(self, func: Callable[[], T], what: str) -> T:
        """``func()``, retried on :class:`TransientError`; raises :class:`FetchError` at the end."""
        attempt = 0
        while True:
            if self.stop.is_set():
                raise Stopped("stop requested")
            attempt += 1
            started = time.monotonic()
            try:
                return func()
            except PermanentError as exc:
                raise FetchError(f"{what}: {exc}") from exc
            except TransientError as exc:
                if attempt >= self.attempts:
                    raise FetchError(
                        f"{what}: {exc} (gave up after {attempt} attempt"
                        f"{'s' if attempt > 1 else ''})"
                    ) from exc
                pause = self.delay(attempt, exc.retry_after)
                log.warning(
                    "%s failed after %.2f s (attempt %d of %d): %s; retrying in %.2f s",
                    what,
                    time.monotonic() - started,
                    attempt,
                    self.attempts,
                    exc,
                    pause,
                )
                self.wait(pause)
