"""Test database for the whole session, and the fixtures that reach it.

Unless ``COMPLIANCE_TEST_DATABASE_URL`` names an existing database, the session makes a
throwaway PostgreSQL cluster in a temporary folder, creates ``compliance_test``, migrates it
(``db/``), installs pgTAP (schema ``tap``) and plpgsql_check, sets the database's
``search_path = public, tap, tests`` and loads ``db/tests/helpers/*.sql`` in name order. The
cluster is stopped and its folder deleted at the end, on Ctrl-C and at interpreter exit. Its
``timezone`` is ``$COMPLIANCE_TEST_SERVER_TIMEZONE`` when set (``bin/test --at`` sets it).

Fixtures:
    dsn                 superuser DSN of the test database (str, session)
    authenticator_dsn   the same database as role ``authenticator`` (str, session)
    pg_env              os.environ + PGHOST/PGPORT/PGDATABASE/PGUSER, for subprocesses (session)
    superuser           psycopg connection as superuser, autocommit, dict rows (per test)
    api                 ApiHarness: ``api.call(user, sql, params, method=, path=)`` runs SQL as
                        PostgREST would for that user (per test)
    pgtap_connection    pytest-pgtap's connection, pointed at the test database (session)

``engine_today(conn, org)`` is the engine's today: the only "today" a test may use.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import tempfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import date
from pathlib import Path
from types import FrameType
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import DictRow, dict_row, tuple_row

from compliance.db import acting_as, claims_for, redact_dsn
from compliance.localpg import LocalCluster
from compliance.migrate import DEFAULT_DB_DIR, migrate, prepare_tests

DB_DIR = Path(os.environ.get("COMPLIANCE_TEST_DB_DIR", str(DEFAULT_DB_DIR))).resolve()
TEST_DBNAME = "compliance_test"
#: PostgREST's search_path for a request: db-schemas, then db-extra-search-path.
POSTGREST_SEARCH_PATH = '"api", "public"'


# -- the session database ----------------------------------------------------------------------


class _Database:
    """Where the session's test database lives, and how to take it down."""

    def __init__(self) -> None:
        self.cluster: LocalCluster | None = None
        self.tmpdir: Path | None = None
        self.dsn = ""

    def start(self) -> None:
        external = os.environ.get("COMPLIANCE_TEST_DATABASE_URL")
        if external:
            self.dsn = external
        else:
            self.tmpdir = Path(tempfile.mkdtemp(prefix="compliance-test-pg-"))
            # the postgres user must enter it when we run as root
            os.chmod(self.tmpdir, 0o755)  # noqa: S103
            # `bin/test --at` puts the server in a zone far from any organisation's.
            zone = os.environ.get("COMPLIANCE_TEST_SERVER_TIMEZONE")
            self.cluster = LocalCluster(self.tmpdir, settings={"timezone": zone} if zone else None)
            atexit.register(self.stop)
            _exit_cleanly_on_sigterm()
            self.cluster.start()
            self.dsn = self.cluster.create_database(TEST_DBNAME)
        prepare_database(self.dsn)

    def stop(self) -> None:
        cluster, self.cluster = self.cluster, None
        if cluster is not None:
            try:
                cluster.stop()
            finally:
                if self.tmpdir is not None:
                    shutil.rmtree(self.tmpdir, ignore_errors=True)


def _exit_cleanly_on_sigterm() -> None:
    """Make SIGTERM (a CI timeout, a killed terminal) run atexit, hence stop the cluster."""

    def handler(signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        with contextlib.suppress(ValueError):  # not the main thread
            signal.signal(signal.SIGTERM, handler)


def prepare_database(dsn: str) -> None:
    """Migrate, then ready the database for pgTAP (``compliance db prepare-tests``)."""
    migrate(dsn, DB_DIR, echo=lambda _line: None)
    prepare_tests(dsn, DB_DIR, echo=lambda _line: None)


@pytest.fixture(scope="session")
def dsn() -> Iterator[str]:
    """Superuser DSN of the migrated, pgTAP-ready test database."""
    database = _Database()
    try:
        database.start()
        yield database.dsn
    finally:
        database.stop()


@pytest.fixture(scope="session")
def pgtap_dsn(dsn: str) -> Iterator[str]:
    """A database of its own for the pgTAP files, prepared like the session's.

    pgTAP files roll back what they do and may count rows across organisations (the daily job
    runs for all of them), so they get a database no pytest test commits into.
    """
    name = f"pgtap_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    target = make_conninfo(dsn, dbname=name)
    try:
        prepare_database(target)
        yield target
    finally:
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
            )


@pytest.fixture(scope="session")
def authenticator_dsn(dsn: str) -> str:
    """The test database as role ``authenticator`` (how PostgREST logs in)."""
    return make_conninfo(dsn, user="authenticator")


@pytest.fixture(scope="session")
def pg_env(dsn: str) -> dict[str, str]:
    """os.environ plus PGHOST/PGPORT/PGDATABASE/PGUSER(/PGPASSWORD) of the test database."""
    params = conninfo_to_dict(dsn)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    mapping = {
        "host": "PGHOST",
        "port": "PGPORT",
        "dbname": "PGDATABASE",
        "user": "PGUSER",
        "password": "PGPASSWORD",
    }
    for key, var in mapping.items():
        if params.get(key) is not None:
            env[var] = str(params[key])
    return env


@pytest.fixture
def superuser(dsn: str) -> Iterator[psycopg.Connection[DictRow]]:
    """A superuser connection (autocommit, dict rows). It bypasses RLS: set up, never assert."""
    with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
        yield conn


def engine_today(conn: psycopg.Connection[Any], org: Any = None) -> date:
    """The engine's today for an organisation (``app.org_today``), or, before one exists, today
    in the zone new organisations get by default: the day its rules, figures and exports use.

    Tests take their dates from it, never from the machine's clock, so they pass at any hour.
    """
    with conn.cursor(row_factory=tuple_row) as cur:
        if org is not None:
            row = cur.execute("select app.org_today(%s)", [str(org)]).fetchone()
        else:
            row = cur.execute(_DEFAULT_ZONE_TODAY).fetchone()
    assert row is not None
    day: date = row[0]
    return day


#: Today in the zone of organizations.timezone's default (a new organisation's zone).
_DEFAULT_ZONE_TODAY = r"""
    select app.today_in((regexp_match(c.column_default, '''([^'']+)'''))[1])
    from information_schema.columns c
    where c.table_schema = 'app' and c.table_name = 'organizations' and c.column_name = 'timezone'
"""


# -- acting as PostgREST -------------------------------------------------------------------------


Claims = Mapping[str, Any]
UserRef = str | int | Claims | None


class ApiHarness:
    """Runs SQL the way PostgREST runs a request, over one ``authenticator`` connection.

    ``call(user, sql, params=None, method="POST", path="/rpc/x")``: ``user`` is an app_users
    id (claims ``{"sub": id, "role": "authenticated"}``), a dict of JWT claims, or ``None``
    (anonymous, role ``anon``). Returns the rows as dicts ([] for a statement without rows);
    a database error raises :class:`compliance.db.ApiError` (``.sqlstate``, ``.http_status``,
    ``.message``, ``.detail``, ``.hint``). Each call is its own committed transaction.
    """

    def __init__(self, authenticator_dsn: str) -> None:
        self._dsn = authenticator_dsn
        self._conn: psycopg.Connection[DictRow] | None = None

    @property
    def connection(self) -> psycopg.Connection[DictRow]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self._dsn, row_factory=dict_row)
        return self._conn

    @staticmethod
    def claims(user: UserRef) -> dict[str, Any] | None:
        if user is None:
            return None
        if isinstance(user, Mapping):
            return dict(user)
        return claims_for(user)

    def call(
        self,
        user: UserRef,
        query: str,
        params: Sequence[Any] | Mapping[str, Any] | None = None,
        method: str = "POST",
        path: str = "/rpc/x",
    ) -> list[dict[str, Any]]:
        conn = self.connection
        with acting_as(
            conn, self.claims(user), method=method, path=path, search_path=POSTGREST_SEARCH_PATH
        ) as cur:
            cur.execute(query.encode(), params)
            rows = cur.fetchall() if cur.description is not None else []
        return [dict(row) for row in rows]

    def one(self, user: UserRef, query: str, params: Any = None, **kwargs: Any) -> dict[str, Any]:
        """Like :meth:`call`, for a statement that must return exactly one row."""
        rows = self.call(user, query, params, **kwargs)
        assert len(rows) == 1, f"expected one row, got {len(rows)}: {rows!r}"
        return rows[0]

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


@pytest.fixture
def api(authenticator_dsn: str) -> Iterator[ApiHarness]:
    """Call the database as PostgREST would, for a user id or a dict of claims."""
    harness = ApiHarness(authenticator_dsn)
    try:
        yield harness
    finally:
        harness.close()


# -- pytest-pgtap ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pgtap_connection(dsn: str) -> Iterator[psycopg.Connection[Any]]:
    """pytest-pgtap's connection (its marker mode), pointed at the session's test database."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        yield conn


def pytest_configure(config: pytest.Config) -> None:
    # pytest-pgtap prints --pgtap-uri (default: $DATABASE_URL, password included) in the
    # report header; we never use it (pgtap_connection above), so say what we do use instead.
    if getattr(config.option, "pgtap_uri", None):
        config.option.pgtap_uri = redact_dsn(config.option.pgtap_uri) + " (ignored)"
    else:
        config.option.pgtap_uri = "throwaway test cluster (tests/conftest.py)"
