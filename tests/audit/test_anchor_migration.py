"""Migration 0010 chains the retention anchors made before it (docs/audit.md "Retention anchors").

A database is migrated up to the migration before 0010, with no functions (as an installation
of then would hold them, minus the triggers, which play no part here), and given anchors as the
retention job of then wrote them: one organisation purged in time, one whose anchor was forged
at the head of the chain with a cutoff of now (the early-purge attack). Then the whole of db/ is
migrated. Every anchor is chained with the bytes audit.anchor_canonical signs (the migration
writes them inline), the in-time purge verifies, the forged one is reported.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg

from compliance.migrate import migrate
from tests.conftest import DB_DIR
from tests.rls_world import fresh_database

ANCHOR_MIGRATION = "0010_audit_anchor_chain.sql"


def _before_0010(tmp_path: Path) -> Path:
    old = tmp_path / "db"
    (old / "migrations").mkdir(parents=True)
    for path in sorted((DB_DIR / "migrations").glob("*.sql")):
        if path.name < ANCHOR_MIGRATION:
            shutil.copy(path, old / "migrations" / path.name)
    return old


def test_migration_0010_chains_existing_anchors(dsn: str, tmp_path: Path) -> None:
    with fresh_database(dsn, "anchor_migration", _before_0010(tmp_path)) as target:
        with psycopg.connect(target) as conn:
            row = conn.execute(
                "insert into app.organizations (name, slug) values ('In Time', 'in-time'),"
                " ('Forged', 'forged') returning id::text"
            ).fetchall()
            in_time, forged = row[0][0], row[1][0]
            conn.execute(
                """
                insert into audit.chain_anchors
                    (org_id, seq, hash, log_tx, log_id, purged_before, rows_purged, created_at)
                values (%(a)s, 3, sha256('a'), '5', 7, now() - interval '14 months', 3,
                        now() - interval '1 month'),
                       (%(a)s, 5, sha256('b'), '9', 11, now() - interval '13 months', 2, now()),
                       (%(b)s, 4, sha256('c'), '8', 9, now(), 4, now())
                """,
                {"a": in_time, "b": forged},
            )
        migrate(target, DB_DIR, echo=lambda _line: None)
        with psycopg.connect(target) as conn:
            anchors = conn.execute(
                """
                select a.org_id::text, a.seq, a.from_seq, a.retention_months,
                       a.prev_hash
                           = coalesce(lag(a.anchor_hash) over w, audit.genesis_hash(a.org_id)),
                       a.anchor_hash = sha256(a.prev_hash || audit.anchor_canonical(a))
                from audit.chain_anchors a
                window w as (partition by a.org_id order by a.seq)
                order by a.org_id = %s desc, a.seq
                """,
                [in_time],
            ).fetchall()
            assert anchors == [
                (in_time, 3, 0, 12, True, True),
                (in_time, 5, 3, 12, True, True),
                (forged, 4, 0, 12, True, True),
            ]
            assert conn.execute("select * from audit.verify_chain(%s)", [in_time]).fetchall() == []
            problems = conn.execute(
                "select problem from audit.verify_chain(%s)", [forged]
            ).fetchall()
            assert problems == [("purge_before_retention",)]
