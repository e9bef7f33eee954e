"""Bring a database up to date: yoyo migrations, then functions and policies re-applied.

``migrate(dsn)``:

1. applies the new yoyo migrations of ``db/migrations`` (tables, types, roles; never edited);
2. in ONE transaction, executes every ``*.sql`` of ``db/functions`` then ``db/policies`` in
   file-name order (each file whole, as one multi-statement execute, no parameters), sets the
   ``authenticator`` password when one is given, and ``NOTIFY pgrst, 'reload schema'``.

Running it twice changes nothing the second time. ``reset(dsn)`` drops and recreates the
database, then migrates. ``prepare_tests(dsn)`` readies a migrated database for the pgTAP files
of ``db/tests`` (what the test suite does, and ``pg_prove`` needs when run by hand).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from compliance.db import redact_dsn

__all__ = [
    "DEFAULT_DB_DIR",
    "MigrateError",
    "MigrationReport",
    "migrate",
    "prepare_tests",
    "reset",
    "yoyo_uri",
]

#: The ``db/`` folder (migrations/, functions/, policies/, tests/): ``$COMPLIANCE_DB_DIR``, else
#: the repository's (right for a checkout or an editable install; an installed wheel has no db/).
DEFAULT_DB_DIR = Path(
    os.environ.get("COMPLIANCE_DB_DIR") or Path(__file__).resolve().parent.parent / "db"
).resolve()

Echo = Callable[[str], None]


class MigrateError(Exception):
    """A migration or a function/policy file failed; the message says which and why."""


@dataclass
class MigrationReport:
    """What one ``migrate`` run did."""

    migrations: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _params(dsn: str) -> dict[str, Any]:
    try:
        return conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        raise MigrateError("DATABASE_URL is not a valid libpq connection string") from None


def yoyo_uri(dsn: str) -> str:
    """The yoyo URI (``postgresql+psycopg://``, i.e. psycopg 3) for a libpq DSN or URI."""
    params = _params(dsn)
    user = params.pop("user", None)
    password = params.pop("password", None)
    host = params.pop("host", None)
    port = params.pop("port", None)
    dbname = params.pop("dbname", None) or user or ""
    netloc = ""
    if user:
        netloc = quote(str(user), safe="")
        if password:
            netloc += ":" + quote(str(password), safe="")
        netloc += "@"
    if host and not str(host).startswith("/") and "," not in str(host):
        netloc += str(host)
        if port:
            netloc += f":{port}"
    else:
        # A unix-socket directory (or several hosts) cannot sit in the URI's authority.
        if host:
            params["host"] = host
        if port:
            params["port"] = port
    query = urlencode({k: str(v) for k, v in params.items()})
    return f"postgresql+psycopg://{netloc}/{quote(str(dbname), safe='')}" + (
        f"?{query}" if query else ""
    )


def _sql_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.sql"), key=lambda p: p.name) if folder.is_dir() else []


def _apply_migrations(dsn: str, migrations_dir: Path, echo: Echo) -> list[str]:
    from yoyo import get_backend, read_migrations
    from yoyo.exceptions import LockTimeout

    if not migrations_dir.is_dir():
        raise MigrateError(f"no migrations folder at {migrations_dir}")
    migrations = read_migrations(str(migrations_dir))
    backend = get_backend(yoyo_uri(dsn))
    try:
        with backend.lock(timeout=60):
            pending = backend.to_apply(migrations)
            names = [m.id for m in pending]
            for migration in pending:
                echo(f"  migration {migration.id}")
            try:
                backend.apply_migrations(pending)
            except psycopg.Error as exc:
                raise MigrateError(f"migration failed: {_describe(exc)}") from exc
            return names
    except LockTimeout:
        raise MigrateError(
            "another migrate holds the yoyo lock (table yoyo_lock); waited 60 s"
        ) from None
    finally:
        backend.connection.close()


def _describe(exc: psycopg.Error) -> str:
    diag = exc.diag
    text = diag.message_primary or str(exc).strip()
    parts = [f"{exc.sqlstate or '?'} {text}"]
    if diag.message_detail:
        parts.append(f"detail: {diag.message_detail}")
    if diag.context:
        parts.append(f"where: {diag.context.strip().splitlines()[0]}")
    if diag.statement_position:
        parts.append(f"at character {diag.statement_position}")
    return "; ".join(parts)


def migrate(
    dsn: str,
    db_dir: Path | str | None = None,
    *,
    authenticator_password: str | None = None,
    echo: Echo = print,
) -> MigrationReport:
    """Apply migrations, then re-apply functions and policies; see the module docstring.

    ``db_dir`` holds ``migrations/``, ``functions/`` and ``policies/`` (default: the repo's
    ``db/``). The password, when given, is set on role ``authenticator`` and never printed.
    """
    root = Path(db_dir) if db_dir is not None else DEFAULT_DB_DIR
    started = time.monotonic()
    report = MigrationReport()
    echo(f"migrating {redact_dsn(dsn)} from {root}")
    report.migrations = _apply_migrations(dsn, root / "migrations", echo)

    files = _sql_files(root / "functions") + _sql_files(root / "policies")
    with psycopg.connect(dsn) as conn:
        current: Path | None = None
        try:
            with conn.transaction():
                for current in files:
                    # No parameters: psycopg sends the file whole (simple query protocol),
                    # so it may hold many statements, dollar quotes and '%' freely.
                    conn.execute(current.read_text(encoding="utf-8").encode())
                    report.files.append(f"{current.parent.name}/{current.name}")
                    echo(f"  applied {current.parent.name}/{current.name}")
                current = None
                if authenticator_password:
                    conn.execute(
                        sql.SQL("alter role authenticator password {}").format(
                            sql.Literal(authenticator_password)
                        )
                    )
                    echo("  set the password of role authenticator")
                conn.execute("notify pgrst, 'reload schema'")
        except psycopg.Error as exc:
            where = f"{current.parent.name}/{current.name}" if current else "finishing"
            raise MigrateError(
                f"{where} failed, nothing of functions/ and policies/ was applied: {_describe(exc)}"
            ) from exc
    report.seconds = time.monotonic() - started
    echo(
        f"migrated: {len(report.migrations)} new migration(s), {len(report.files)} file(s) "
        f"re-applied in {report.seconds:.2f} s"
    )
    return report


def reset(
    dsn: str,
    db_dir: Path | str | None = None,
    *,
    authenticator_password: str | None = None,
    echo: Echo = print,
) -> MigrationReport:
    """Drop and recreate the database named in ``dsn`` (via database ``postgres``), migrate."""
    params = _params(dsn)
    dbname = params.get("dbname") or params.get("user")
    if not dbname:
        raise MigrateError("DATABASE_URL names no database to reset")
    if dbname in {"postgres", "template0", "template1"}:
        raise MigrateError(f"refusing to reset the system database {dbname!r}")
    maintenance = make_conninfo(dsn, dbname="postgres")
    with psycopg.connect(maintenance, autocommit=True) as conn:
        conn.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(dbname))
        )
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(dbname)))
    echo(f"recreated database {dbname}")
    return migrate(dsn, db_dir, authenticator_password=authenticator_password, echo=echo)


#: Where the pgTAP files find pgTAP (schema ``tap``) and the test helpers (schema ``tests``).
TEST_SEARCH_PATH = "public, tap, tests"


def prepare_tests(dsn: str, db_dir: Path | str | None = None, *, echo: Echo = print) -> list[str]:
    """Ready a migrated database for the pgTAP files of ``db/tests``; returns the helpers loaded.

    Installs pgTAP into schema ``tap`` (executable by every role, as the files switch roles) and
    plpgsql_check, sets the database's ``search_path`` to ``public, tap, tests`` and loads
    ``db/tests/helpers/*.sql`` in name order, in one transaction. Needs a superuser; running it
    again changes nothing. Never on a production database: the helpers create test fixtures.
    """
    root = Path(db_dir) if db_dir is not None else DEFAULT_DB_DIR
    dbname = _params(dsn).get("dbname")
    if not dbname:
        raise MigrateError("DATABASE_URL names no database to prepare for tests")
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("create schema if not exists tap")
            conn.execute("create extension if not exists pgtap schema tap")
            conn.execute("create extension if not exists plpgsql_check")
            conn.execute("grant usage on schema tap to public")
            conn.execute("grant execute on all functions in schema tap to public")
            conn.execute(
                sql.SQL("alter database {} set search_path = " + TEST_SEARCH_PATH).format(
                    sql.Identifier(str(dbname))
                )
            )
    except psycopg.Error as exc:
        raise MigrateError(
            f"installing pgTAP and plpgsql_check failed (apt-get install "
            f"postgresql-<major>-pgtap postgresql-<major>-plpgsql-check): {_describe(exc)}"
        ) from exc
    helpers = _sql_files(root / "tests" / "helpers")
    # A fresh connection, so the database's new search_path applies.
    with psycopg.connect(dsn) as conn:
        current: Path | None = None
        try:
            with conn.transaction():
                for current in helpers:
                    conn.execute(current.read_text(encoding="utf-8").encode())
                    echo(f"  loaded tests/helpers/{current.name}")
        except psycopg.Error as exc:
            where = f"tests/helpers/{current.name}" if current else "loading the helpers"
            raise MigrateError(f"{where} failed, no helper was loaded: {_describe(exc)}") from exc
    echo(f"ready for pgTAP: pg_prove -d {dbname} db/tests/<area>/test_*.sql")
    return [p.name for p in helpers]
