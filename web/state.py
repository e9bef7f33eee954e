"""What the running app holds: settings, the token checker, the pool, the relay and friends."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from litestar.connection import ASGIConnection

from web.auth import Authenticator
from web.db import AsyncPool
from web.errors import WebError
from web.relay import Listener, Presence, Relay
from web.settings import WebSettings

__all__ = ["AppState", "ExportLimiter"]


class ExportLimiter:
    """How many exports run at once, in the process and per user (429 beyond)."""

    def __init__(self, total: int, per_user: int) -> None:
        self.total = total
        self.per_user = per_user
        self.running = 0
        self.by_user: dict[str, int] = {}

    def acquire(self, user: str) -> None:
        if self.by_user.get(user, 0) >= self.per_user:
            raise WebError(
                429,
                f"you already have {self.per_user} exports running",
                {"limit": self.per_user, "scope": "user"},
                headers={"Retry-After": "5"},
            )
        if self.running >= self.total:
            raise WebError(
                429,
                "the server is busy with other exports",
                {"limit": self.total, "scope": "server"},
                headers={"Retry-After": "5"},
            )
        self.running += 1
        self.by_user[user] = self.by_user.get(user, 0) + 1

    def release(self, user: str) -> None:
        self.running = max(0, self.running - 1)
        left = self.by_user.get(user, 0) - 1
        if left > 0:
            self.by_user[user] = left
        else:
            self.by_user.pop(user, None)


@dataclass
class AppState:
    """The web app's process-wide objects (``app.state["web"]``)."""

    settings: WebSettings
    auth: Authenticator
    pool: AsyncPool
    limiter: ExportLimiter
    relay: Relay
    listener: Listener
    presence: Presence
    started_at: float = field(default_factory=time.time)

    @staticmethod
    def of(connection: ASGIConnection[Any, Any, Any, Any]) -> AppState:
        state: AppState = connection.app.state["web"]
        return state
