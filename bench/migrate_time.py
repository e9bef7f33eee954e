"""`compliance db migrate` on an empty database: seconds.

    python bench/migrate_time.py [--repeat 3]

Runs the real command (``python -m compliance.cli db migrate``, a new process each time, as an
operator or the compose migrate service would) against a new, empty database, --repeat times
(a fresh database each time), then once more against the last, already migrated database (the
re-apply of functions/ and policies/ that every deploy does). Prints the median wall time, the
spread, and the conditions. In a throwaway cluster, or on the server of DATABASE_URL (a scratch
database is created there and dropped).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _cluster import machine, scratch_database, server_version

from compliance.migrate import DEFAULT_DB_DIR


def run_migrate(dsn: str, db_dir: Path) -> float:
    env = {**os.environ, "DATABASE_URL": dsn}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "compliance.cli", "db", "migrate", "--db-dir", str(db_dir)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(
            f"compliance db migrate failed ({done.returncode}):\n{done.stdout}{done.stderr}"
        )
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--db-dir", type=Path, default=DEFAULT_DB_DIR)
    args = parser.parse_args()
    files = {
        part: len(list((args.db_dir / part).glob("*.sql")))
        for part in ("migrations", "functions", "policies")
    }
    with scratch_database("bench_migrate") as (first_dsn, where):
        empty: list[float] = []
        last = first_dsn
        for i in range(args.repeat):
            target = first_dsn
            if i:
                name = f"bench_migrate_{uuid.uuid4().hex[:8]}"
                with psycopg.connect(first_dsn, autocommit=True) as admin:
                    admin.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
                target = make_conninfo(first_dsn, dbname=name)
            empty.append(run_migrate(target, args.db_dir))
            last = target
        again = run_migrate(last, args.db_dir)
        with psycopg.connect(last) as conn:
            row = conn.execute(
                """select count(*) filter (where c.relkind in ('r', 'p')) as tables,
                          count(*) filter (where c.relkind = 'v') as views
                   from pg_class c
                   where c.relnamespace::regnamespace::text in
                         ('app', 'api', 'audit', 'sync', 'analytics')"""
            ).fetchone()
            functions = conn.execute(
                """select count(*) from pg_proc
                   where pronamespace::regnamespace::text in
                         ('app', 'api', 'audit', 'sync', 'analytics')"""
            ).fetchone()
        version = server_version(last)
    assert row is not None
    assert functions is not None
    print("compliance db migrate on an empty database")
    print(
        f"  median {statistics.median(empty):.2f} s over {len(empty)} fresh databases "
        f"(min {min(empty):.2f} s, max {max(empty):.2f} s); wall time of the command, "
        "Python start-up included"
    )
    print(f"  again on the migrated database (re-apply functions/ and policies/): {again:.2f} s")
    print(
        f"  db/: {files['migrations']} migrations, {files['functions']} function files, "
        f"{files['policies']} policy files -> {row[0]} tables, {row[1]} views, "
        f"{functions[0]} functions"
    )
    print(f"  machine: {machine()}; {version}; {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
