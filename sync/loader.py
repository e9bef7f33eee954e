"""Staging: each fetched page goes, raw, into ``sync.staged_records`` in one transaction.

PostgreSQL refuses ``COPY FROM`` into a table under row-level security for a role subject to it
(sync_worker is), so the page is COPYed (one row: the page's body as sent) into this session's
temporary table ``sync_page``, and one ``INSERT ... SELECT`` splits it into records under the
staging policy (only open runs; the policy reads them once per statement). Both happen in the
page's own transaction: a worker killed between pages leaves whole pages only, and the run open.
"""

from __future__ import annotations

from collections.abc import Sequence
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
    """Stages pages of one run over one connection (autocommit; a transaction per page)."""

    def __init__(self, conn: psycopg.Connection[Any], run_id: UUID | str) -> None:
        self.conn = conn
        self.run_id = str(run_id)
        self.pages: dict[str, int] = {}
        self.records: dict[str, int] = {}
        with conn.transaction():
            conn.execute(_SETUP)
            # A page is read once, right away: compressing it for TOAST would only cost time.
            conn.execute("alter table pg_temp.sync_page alter column body set storage external")

    def stage(
        self, kind: str, body: bytes, path: Sequence[str], expected: int | None = None
    ) -> int:
        """Stage one page (its records are at ``path`` in the body; [] = the body is the record).

        Returns the number of records staged; raises :class:`StagingError` when fewer than
        ``expected`` went in (the run is no longer open) or the body is refused.
        """
        page = self.pages.get(kind, 0) + 1
        try:
            with self.conn.transaction(), self.conn.cursor() as cur:
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
        self.pages[kind] = page
        self.records[kind] = self.records.get(kind, 0) + staged
        return staged
