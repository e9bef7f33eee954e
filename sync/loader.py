"""Staging: each fetched page goes, raw, into ``sync.staged_records`` in one transaction.

PostgreSQL refuses ``COPY FROM`` into a table under row-level security for a role subject to it
(sync_worker is), so the page is COPYed (one row: the page's body as sent) into this session's
temporary table ``sync_page``, and one ``INSERT ... SELECT`` splits it into records under the
staging policy (only open runs; the policy reads them once per statement). Both happen in the
page's own transaction: a worker killed between pages leaves whole pages only, and the run open.

Staging a page is the database's work (parsing the body, splitting it, the run's key checked
per record), so long listings stage in the background (:meth:`Stager.stage_later`) over
``lanes`` connections at once, while the next pages are fetched; page numbers still follow the
order pages were fetched in.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any
from uuid import UUID

import psycopg

__all__ = ["Stager", "StagingError"]

_SETUP = (
    "create temporary table if not exists sync_page (body jsonb not null) on commit delete rows"
)
_COPY = "copy pg_temp.sync_page (body) from stdin"
_SPLIT = """
insert into sync.staged_records (org_id, run_id, kind, page, item, payload)
select r.org_id, r.run_id, %(kind)s, %(page)s, (e.ordinality - 1)::integer, e.value
from sync.open_runs() r
cross join pg_temp.sync_page p
cross join lateral jsonb_array_elements(
    case jsonb_typeof(p.body #> %(path)s::text[])
        when 'array' then p.body #> %(path)s::text[]
        when 'object' then jsonb_build_array(p.body #> %(path)s::text[])
        else '[]'::jsonb end) with ordinality e
where r.run_id = %(run_id)s
"""


class StagingError(Exception):
    """A page could not be staged (the run is closed, or the body is not storable JSON)."""


class Stager:
    """Stages pages of one run: :meth:`stage` over ``conn`` (autocommit; a transaction per page),
    :meth:`stage_later` in the background over ``lanes`` connections of its own to ``dsn``
    (opened when first needed; ``conn`` stays free for the caller)."""

    def __init__(
        self,
        conn: psycopg.Connection[Any],
        run_id: UUID | str,
        *,
        dsn: str | None = None,
        lanes: int = 1,
    ) -> None:
        self.conn = conn
        self.run_id = str(run_id)
        self.pages: dict[str, int] = {}
        self.records: dict[str, int] = {}
        self._dsn = dsn
        self._lanes = max(1, lanes) if dsn else 1  # 1: stage_later stages at once, on conn
        self._lock = threading.Lock()
        self._idle: queue.SimpleQueue[psycopg.Connection[Any]] = queue.SimpleQueue()
        self._own: list[psycopg.Connection[Any]] = []
        self._pool: ThreadPoolExecutor | None = None
        self._pending: deque[Future[int]] = deque()
        _prepare(conn)

    def stage(
        self, kind: str, body: bytes, path: Sequence[str], expected: int | None = None
    ) -> int:
        """Stage one page now (its records are at ``path`` in the body; [] = the body is the
        record). Returns the number of records staged; raises :class:`StagingError` when fewer
        than ``expected`` went in (the run is no longer open) or the body is refused."""
        return self._stage(self.conn, kind, self._number(kind), body, path, expected)

    def stage_later(
        self, kind: str, body: bytes, path: Sequence[str], expected: int | None = None
    ) -> None:
        """Stage one page in the background (numbered now, in fetch order). A page that fails
        raises its :class:`StagingError` from a later call or from :meth:`flush`. With one lane,
        the same as :meth:`stage`."""
        if self._lanes == 1:
            self.stage(kind, body, path, expected)
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self._lanes, thread_name_prefix="stage")
        page = self._number(kind)
        task = self._pool.submit(self._stage_on_lane, kind, page, body, path, expected)
        self._pending.append(task)
        while len(self._pending) > 2 * self._lanes:  # memory stays bounded: a few pages
            self._pending.popleft().result()

    def flush(self) -> None:
        """Wait for the pages staged in the background; raise the first one's failure."""
        failure: BaseException | None = None
        while self._pending:
            try:
                self._pending.popleft().result()
            except BaseException as exc:  # every page is waited for first
                failure = failure or exc
        if failure is not None:
            raise failure

    def close(self) -> None:
        """Wait for the background pages (their failures are the caller's to have seen) and
        close the extra connections."""
        try:
            self.flush()
        except Exception:  # noqa: S110 - already reported through flush or stage_later
            pass
        finally:
            if self._pool is not None:
                self._pool.shutdown()
                self._pool = None
            for conn in self._own:
                conn.close()
            self._own.clear()
            self._idle = queue.SimpleQueue()

    def _number(self, kind: str) -> int:
        with self._lock:
            page = self.pages.get(kind, 0) + 1
            self.pages[kind] = page
            return page

    def _stage_on_lane(
        self, kind: str, page: int, body: bytes, path: Sequence[str], expected: int | None
    ) -> int:
        conn = self._lane()
        try:
            return self._stage(conn, kind, page, body, path, expected)
        finally:
            self._idle.put(conn)

    def _lane(self) -> psycopg.Connection[Any]:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            if len(self._own) < self._lanes and self._dsn:
                conn = psycopg.connect(self._dsn, autocommit=True)
                _prepare(conn)
                self._own.append(conn)
                return conn
        return self._idle.get()

    def _stage(
        self,
        conn: psycopg.Connection[Any],
        kind: str,
        page: int,
        body: bytes,
        path: Sequence[str],
        expected: int | None,
    ) -> int:
        try:
            with conn.transaction(), conn.cursor() as cur:
                with cur.copy(_COPY) as copy:
                    copy.write_row((body.decode("utf-8", errors="replace"),))
                cur.execute(
                    _SPLIT,
                    {"kind": kind, "page": page, "path": list(path), "run_id": self.run_id},
                )
                staged = cur.rowcount
        except psycopg.DataError as exc:
            raise StagingError(
                f"{kind} page {page} could not be stored: {exc.diag.message_primary or exc}"
            ) from None
        if expected is not None and staged < expected:
            raise StagingError(
                f"{kind} page {page}: {staged} of {expected} records staged "
                f"(run {self.run_id} is no longer open)"
            )
        with self._lock:
            self.records[kind] = self.records.get(kind, 0) + staged
        return staged


def _prepare(conn: psycopg.Connection[Any]) -> None:
    """The session's page table."""
    with conn.transaction():
        conn.execute(_SETUP)
        # A page is read once, right away: compressing it for TOAST would only cost time.
        conn.execute("alter table pg_temp.sync_page alter column body set storage external")
