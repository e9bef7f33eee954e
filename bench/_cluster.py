"""A scratch database for a benchmark: in a throwaway cluster, or on the server of DATABASE_URL.

With ``DATABASE_URL`` set, a new database ``<prefix>_<random>`` is created on that server (the
URL's role needs CREATEDB) and dropped at the end; the database named by the URL is not touched.
Without it, a throwaway cluster (compliance.localpg.LocalCluster: initdb in a temporary folder,
fsync off) is started and deleted at the end.
"""

from __future__ import annotations

import os
import platform
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from compliance.localpg import LocalCluster


@contextmanager
def scratch_database(prefix: str) -> Iterator[tuple[str, str]]:
    """Yield (superuser DSN of an empty database, a one-line description of where it is)."""
    url = os.environ.get("DATABASE_URL")
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    if url:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
        params = conninfo_to_dict(url)
        try:
            yield (
                make_conninfo(url, dbname=name),
                (
                    f"database {name} on {params.get('host', 'localhost')}:"
                    f"{params.get('port', 5432)} (DATABASE_URL)"
                ),
            )
        finally:
            with psycopg.connect(url, autocommit=True) as admin:
                admin.execute(
                    sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
                )
        return
    folder = Path(tempfile.mkdtemp(prefix=f"{prefix}-pg-"))
    os.chmod(folder, 0o755)  # noqa: S103 - the postgres user enters it when we run as root
    cluster = LocalCluster(folder)
    try:
        cluster.start()
        dsn = cluster.create_database(name)
        yield dsn, f"throwaway cluster (fsync off) on 127.0.0.1:{cluster.port}, {cluster.bindir}"
    finally:
        try:
            cluster.stop()
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def machine() -> str:
    """Cores and CPU model, for the conditions line."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores ({model})"


def server_version(dsn: str) -> str:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("select current_setting('server_version')").fetchone()
    return f"PostgreSQL {row[0] if row else '?'}"
