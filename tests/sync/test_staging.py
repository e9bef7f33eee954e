"""Staging pages in the background (Stager.stage_later): pages keep their fetch order, every
record is counted, and a page that cannot be staged fails the fetch instead of vanishing."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

from sync.loader import Stager, StagingError
from tests.sync.helpers import Org

pytestmark = pytest.mark.external


def _page(n: int, size: int) -> bytes:
    items = [{"id": f"s{n}-{i}", "n": n} for i in range(size)]
    return json.dumps({"studentSubmissions": items}).encode()


def test_pages_staged_in_the_background_keep_their_order_and_count(
    worker_dsn: str, org: Org, superuser: psycopg.Connection[Any]
) -> None:
    with psycopg.connect(worker_dsn, autocommit=True) as conn:
        run = conn.execute(
            "select sync.start_run(%s, 'completions', 'classroom')", [org.slug]
        ).fetchone()
        assert run is not None
        stager = Stager(conn, run[0], dsn=worker_dsn, lanes=3)
        try:
            for n in range(1, 21):
                stager.stage_later("classroom_submission", _page(n, 7), ["studentSubmissions"], 7)
            stager.flush()
            assert stager.pages == {"classroom_submission": 20}
            assert stager.records == {"classroom_submission": 140}
            rows = superuser.execute(
                "select page, payload ->> 'n' as n from sync.staged_records"
                " where run_id = %s and item = 0 order by page",
                [run[0]],
            ).fetchall()
            assert [(r["page"], int(r["n"])) for r in rows] == [(n, n) for n in range(1, 21)]
        finally:
            stager.close()
            conn.execute("select sync.finish_run(%s)", [run[0]])


def test_a_page_that_cannot_be_staged_fails_at_flush(worker_dsn: str, org: Org) -> None:
    with psycopg.connect(worker_dsn, autocommit=True) as conn:
        run = conn.execute(
            "select sync.start_run(%s, 'completions', 'classroom')", [org.slug]
        ).fetchone()
        assert run is not None
        stager = Stager(conn, run[0], dsn=worker_dsn, lanes=2)
        try:
            stager.stage_later("classroom_submission", _page(1, 3), ["studentSubmissions"], 3)
            stager.stage_later("classroom_submission", b'{"studentSubmissions": [', [], None)
            with pytest.raises(StagingError, match="classroom_submission page 2"):
                stager.flush()
            assert stager.records == {"classroom_submission": 3}
        finally:
            stager.close()
            conn.execute("select sync.finish_run(%s)", [run[0]])
