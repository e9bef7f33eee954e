"""The audit chain under real concurrency (DESIGN §9, docs/audit.md).

Writers commit audit rows out of id order (each holds its transaction open a random while) and
two sealers run ``audit.seal`` at the same time, over and over. Afterwards every committed audit
row of the organisation is chained exactly once, in (tx_id, id) order, with no fork and no gap,
and ``audit.verify_chain`` finds nothing. Then a row is changed behind the triggers' back and the
verification finds it. Also: the actor of a PostgREST request, and api.audit_history over the
harness.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from dataclasses import dataclass

import psycopg
import pytest
from psycopg.rows import DictRow

from compliance.db import ApiError
from tests.conftest import ApiHarness


@dataclass
class Org:
    id: str
    hr: str


@pytest.fixture
def org(superuser: psycopg.Connection[DictRow]) -> Org:
    slug = f"chain-{uuid.uuid4().hex[:10]}"
    row = superuser.execute("select tests.create_org(%s)::text as id", [slug]).fetchone()
    assert row is not None
    hr = superuser.execute(
        "select tests.create_user(%s, 'hr_admin', %s)::text as id",
        [row["id"], f"hr@{slug}.example"],
    ).fetchone()
    assert hr is not None
    return Org(id=row["id"], hr=hr["id"])


def write(dsn: str, org_id: str, seed: int, transactions: int) -> None:
    """Audited writes (departments inserted and renamed) plus named events, held open a while."""
    rng = random.Random(seed)  # noqa: S311 - test timing, not secrets
    with psycopg.connect(dsn) as conn:
        for t in range(transactions):
            name = f"Dept {seed}-{t}"
            conn.execute(
                "insert into app.departments (org_id, name) values (%s, %s)", [org_id, name]
            )
            time.sleep(rng.uniform(0, 0.01))
            conn.execute(
                "update app.departments set code = %s where org_id = %s and name = %s",
                [f"C{t}", org_id, name],
            )
            conn.execute(
                "select audit.record_event(%s, 'sync_run', null, null, %s)", [org_id, name]
            )
            time.sleep(rng.uniform(0, 0.02))
            if rng.random() < 0.1:
                conn.rollback()
            else:
                conn.commit()


def seal_repeatedly(dsn: str, org_id: str, stop: threading.Event, counts: list[int]) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        while not stop.is_set():
            row = conn.execute("select audit.seal(%s)", [org_id]).fetchone()
            assert row is not None
            counts.append(int(row[0]))
            time.sleep(0.003)


@pytest.mark.slow
def test_concurrent_writers_and_sealers_build_one_verifiable_chain(
    dsn: str, superuser: psycopg.Connection[DictRow], org: Org
) -> None:
    stop = threading.Event()
    sealed: list[int] = []
    writers = [threading.Thread(target=write, args=(dsn, org.id, w, 20)) for w in range(5)]
    sealers = [
        threading.Thread(target=seal_repeatedly, args=(dsn, org.id, stop, sealed)) for _ in range(2)
    ]
    for thread in writers + sealers:
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    for thread in sealers:
        thread.join()
    assert sum(sealed) > 0, "the sealers ran while the writers wrote"

    assert superuser.execute("select * from audit.verify_chain(%s)", [org.id]).fetchall() == []
    chain = superuser.execute(
        "select c.seq, c.log_id, l.tx_id::text::numeric as tx from audit.chain c"
        " join audit.log l on l.org_id = c.org_id and l.id = c.log_id"
        " where c.org_id = %s order by c.seq",
        [org.id],
    ).fetchall()
    logged = superuser.execute(
        "select count(*) as n from audit.log where org_id = %s", [org.id]
    ).fetchone()
    assert logged is not None
    assert len(chain) == logged["n"], "every committed audit row is chained"
    assert [r["seq"] for r in chain] == list(range(1, len(chain) + 1)), "no gap, no fork"
    assert len({r["log_id"] for r in chain}) == len(chain), "no row chained twice"
    positions = [(r["tx"], r["log_id"]) for r in chain]
    assert positions == sorted(positions), "chained in (tx_id, id) order"
    ids = [r["log_id"] for r in chain]
    assert ids != sorted(ids), "some transaction committed out of id order (the hard case)"

    # A checkpoint taken now proves the past later; tampering behind the triggers is found.
    checkpoint = superuser.execute(
        "select seq, hash from audit.checkpoint(%s)", [org.id]
    ).fetchone()
    assert checkpoint is not None
    victim = chain[len(chain) // 2]["log_id"]
    cp = [org.id, checkpoint["seq"], checkpoint["hash"]]
    with psycopg.connect(dsn) as conn:  # one transaction, rolled back: nothing really changes
        conn.execute("alter table audit.log disable trigger append_only_refuse_update")
        conn.execute(
            "update audit.log set details = '{\"tampered\": true}' where org_id = %s and id = %s",
            [org.id, victim],
        )
        full = conn.execute(
            "select problem, log_id from audit.verify_chain(%s)", [org.id]
        ).fetchall()
        against_checkpoint = conn.execute(
            "select problem, log_id from audit.verify_chain(%s, %s, %s, true)", cp
        ).fetchall()
        conn.rollback()
    assert full == [("row_changed", victim)]
    assert against_checkpoint == [("row_changed", victim)]
    assert (
        superuser.execute("select * from audit.verify_chain(%s, %s, %s, true)", cp).fetchall() == []
    )
    assert superuser.execute("select * from audit.verify_chain(%s)", [org.id]).fetchall() == []


def test_a_request_is_audited_with_its_user_and_read_back_through_the_api(
    superuser: psycopg.Connection[DictRow], api: ApiHarness, org: Org
) -> None:
    dept = api.one(
        org.hr,
        "insert into api.departments (org_id, name) values (%s, 'Radiology') returning id",
        [org.id],
    )["id"]
    api.call(org.hr, "update api.departments set code = 'RAD' where id = %s", [dept])

    entries = api.call(
        org.hr,
        "select * from api.audit_history(entity => 'departments', entity_id => %s)",
        [str(dept)],
        method="GET",
        path="/rpc/audit_history",
    )
    assert [e["op"] for e in entries] == ["UPDATE", "INSERT"], "newest first"
    update = entries[0]
    assert update["changed_fields"] == ["code"]
    assert update["old_values"] == {"code": None}
    assert update["new_values"] == {"code": "RAD"}
    assert str(update["actor_user_id"]) == org.hr
    assert update["actor_role"] == "hr_admin"
    assert update["db_role"] == "authenticated"
    assert update["total_count"] == 2

    with pytest.raises(ApiError) as refused:
        api.call(org.hr, "select * from api.audit_history(page_size => 0)", method="GET")
    assert refused.value.sqlstate == "22023"
    assert refused.value.http_status == 400
    assert "page_size must be between 1 and 500" in refused.value.message

    # Sealed by the worker's call later; the entries are in the chain then.
    superuser.execute("select audit.seal(%s)", [org.id])
    chained = superuser.execute(
        "select count(*) as n from audit.chain c join audit.log l"
        " on l.org_id = c.org_id and l.id = c.log_id"
        " where c.org_id = %s and l.table_name = 'departments' and l.entity_id = %s",
        [org.id, str(dept)],
    ).fetchone()
    assert chained is not None
    assert chained["n"] == 2
