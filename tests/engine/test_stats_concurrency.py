"""Concurrent writers never lose a stats update.

Several sessions at once change the same employees' assignments (each its own assignment, as
PostgREST requests would), complete trainings (whose requirement approval recomputes the stats
from scratch) and run a sync-style bulk UPDATE. The training figures move by commutative deltas
and the full recomputation locks the stats row before it reads, so afterwards
``app.verify_stats()`` must be empty.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import psycopg
from psycopg.rows import DictRow

from compliance.db import ApiError, acting_as, claims_for
from tests.conftest import POSTGREST_SEARCH_PATH
from tests.engine.world import build_engine_world, stats_differences, unique_slug


def test_concurrent_writers_keep_stats_right(
    superuser: psycopg.Connection[DictRow], authenticator_dsn: str, dsn: str
) -> None:
    world = build_engine_world(superuser, unique_slug("conc"))
    org = world["org"]
    # Ten more modules for Ann and Bob, so that each writer has assignments of its own.
    with superuser.transaction():
        superuser.execute(
            "insert into app.training_modules (org_id, name, month_key, due_date)"
            " select %s, 'Extra ' || g, '2025-06', app.org_today(%s) + 20"
            " from generate_series(1, 10) g",
            [org, org],
        )
        superuser.execute(
            "insert into app.training_assignments (org_id, employee_id, module_id, due_date)"
            " select %s, e.id, m.id, app.org_today(%s) + 20 from app.employees e"
            " join app.training_modules m on m.org_id = e.org_id and m.name like 'Extra %%'"
            " where e.org_id = %s and e.id in (%s, %s)",
            [org, org, org, world["emp"], world["other"]],
        )
    rows = superuser.execute(
        "select id::text from app.training_assignments where org_id = %s order by id", [org]
    ).fetchall()
    assignments = [r["id"] for r in rows]
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def api_writer(part: list[str], score: int) -> None:
        try:
            with psycopg.connect(authenticator_dsn) as conn:
                start.wait()
                for n, assignment in enumerate(part):
                    try:
                        with acting_as(
                            conn,
                            claims_for(world["hr"]),
                            "POST",
                            "/rpc/x",
                            search_path=POSTGREST_SEARCH_PATH,
                        ) as cur:
                            if n % 2:
                                cur.execute(
                                    "select api.update_assignment_status(%s, 'completed')",
                                    [assignment],
                                )
                            else:
                                cur.execute(
                                    "select api.record_assignment_result(%s, %s, %s, 5)",
                                    [assignment, score, dt.datetime.now(dt.UTC)],
                                )
                    except ApiError as error:  # a refused request; the writer goes on
                        if error.sqlstate not in {"PT409", "40P01"}:
                            raise
        except BaseException as error:
            errors.append(error)

    def bulk_writer() -> None:
        try:
            with psycopg.connect(dsn) as conn:
                start.wait()
                for days in (1, 2, 3):
                    try:
                        with conn.transaction():
                            conn.execute(
                                "update app.training_assignments set due_date = due_date + %s"
                                " where org_id = %s and status in ('not_started', 'in_progress')",
                                [days, org],
                            )
                    except psycopg.errors.DeadlockDetected:
                        pass  # a deadlock aborts one transaction whole: nothing half-written
        except BaseException as error:
            errors.append(error)

    parts: list[list[Any]] = [assignments[i::5] for i in range(5)]
    threads = [
        threading.Thread(target=api_writer, args=(part, 60 + 10 * i))
        for i, part in enumerate(parts)
    ]
    threads.append(threading.Thread(target=bulk_writer))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert stats_differences(superuser, org) == []
