"""An organisation set up for the engine's Python tests (the pgTAP fixture, committed).

``build_engine_world(superuser, slug)`` runs ``tests.engine_org(slug)`` (db/tests/helpers/
30_engine_fixtures.sql) in one committed transaction and returns the ids it stored in its test
variables: users (hr, superadmin, viewer, mgr, emp_user, other_user), employees (mgr_emp, emp,
other), tiers (bronze, silver, gold), modules (m_hipaa, m_osha, m_fire), requirements (r_hipaa,
r_attest, r_ack, r_cpr, r_fire) and departments (dept, dept2).
"""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
from psycopg.rows import DictRow

NAMES = [
    *("org", "dept", "dept2", "hr", "superadmin", "viewer", "mgr", "mgr_emp", "emp", "emp_user"),
    *("other", "other_user", "bronze", "silver", "gold", "m_hipaa", "m_osha", "m_fire"),
    *("r_hipaa", "r_attest", "r_ack", "r_cpr", "r_fire"),
]


def unique_slug(prefix: str) -> str:
    """A fresh organisation slug (the session database is shared by all tests)."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def build_engine_world(conn: psycopg.Connection[DictRow], slug: str) -> dict[str, str]:
    """Create the engine fixture organisation; return its ids by name."""
    with conn.transaction():
        conn.execute("select tests.engine_org(%s)", [slug])
        row = conn.execute(
            "select " + ", ".join(f"tests.var(%s) as {name}" for name in NAMES), NAMES
        ).fetchone()
    assert row is not None
    return {name: str(row[name]) for name in NAMES}


def one_value(conn: psycopg.Connection[DictRow], query: str, params: Any = None) -> Any:
    """The first column of the first row of a superuser query."""
    row = conn.execute(query, params).fetchone()
    return None if row is None else next(iter(row.values()))


def stats_differences(conn: psycopg.Connection[DictRow], org_id: str) -> list[dict[str, Any]]:
    """``app.verify_stats()`` limited to one organisation."""
    return conn.execute("select * from app.verify_stats() where org_id = %s", [org_id]).fetchall()
