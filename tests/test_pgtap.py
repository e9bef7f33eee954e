"""Every pgTAP file of db/tests (``**/test_*.sql``, helpers excluded), run two ways.

1. One pytest item per file, ``test_pgtap_file[<path under db/tests>]``: the file runs through
   pytest-pgtap's runner on its own connection to the test database and its TAP is reported
   by pytest-pgtap (one subtest per assertion; a failed assertion, a bad plan, an SQL error or
   a bail-out fails the item).
2. ``test_pg_prove``: pg_prove over the same files against the same database, exit 0 required.
3. ``test_pg_prove_by_hand``: the documented way to run them on a database of your own
   (``compliance db migrate``, ``compliance db prepare-tests``, then ``pg_prove``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from pytest_pgtap.pgtap import Runner
from pytest_pgtap.plugin.core import report_tap

from compliance.cli import cli
from tests.conftest import DB_DIR

TESTS_DIR = DB_DIR / "tests"
PG_PROVE_PACKAGE = "libtap-parser-sourcehandler-pgtap-perl"


def pgtap_files() -> list[Path]:
    """``db/tests/**/test_*.sql`` outside ``db/tests/helpers``, in path order."""
    if not TESTS_DIR.is_dir():
        return []
    return sorted(
        path
        for path in TESTS_DIR.rglob("test_*.sql")
        if path.relative_to(TESTS_DIR).parts[0] != "helpers"
    )


FILES = pgtap_files()

#: What pgTAP prints: results, the plan, diagnostics and bail-outs. A file's own set-up queries
#: return rows too (ids, counts); pg_prove ignores them, and so must we, or a value such as a
#: number could be read as a plan.
TAP_LINE = re.compile(r"^(?:(?:not )?ok\b|1\.\.\d+(?:\s|$)|\s*#|Bail out!)")


def tap_only(rows: list[Any]) -> list[str]:
    """The TAP lines among the rows a pgTAP file returned."""
    return [line for row in rows for line in str(row).splitlines() if TAP_LINE.match(line)]


def _label(path: Path) -> str:
    return path.relative_to(TESTS_DIR).as_posix()


@pytest.mark.parametrize("path", FILES, ids=[_label(p) for p in FILES])
def test_pgtap_file(path: Path, pgtap_dsn: str, request: pytest.FixtureRequest) -> None:
    # A connection per file, as pg_prove gives each file its own psql.
    with psycopg.connect(pgtap_dsn, autocommit=True) as conn:
        try:
            tap_lines = Runner(conn).run(path.read_text(encoding="utf-8").encode())
        except psycopg.Error as exc:
            diag = exc.diag
            where = f" (at character {diag.statement_position})" if diag.statement_position else ""
            context = f"\ncontext: {diag.context.strip()}" if diag.context else ""
            pytest.fail(
                f"{_label(path)}: SQL error {exc.sqlstate}: {diag.message_primary}{where}"
                + (f"\ndetail: {diag.message_detail}" if diag.message_detail else "")
                + context,
                pytrace=False,
            )
    report_tap(request.node, tap_only(tap_lines), _label(path))


def _pg_prove() -> str:
    pg_prove = shutil.which("pg_prove")
    if pg_prove is None:
        if os.environ.get("CI"):
            pytest.fail(f"pg_prove is not installed (apt-get install {PG_PROVE_PACKAGE})")
        pytest.skip(f"pg_prove is not installed (bin/test installs {PG_PROVE_PACKAGE})")
    return pg_prove


def test_pg_prove(pg_env: dict[str, str], pgtap_dsn: str) -> None:
    pg_prove = _pg_prove()
    if not FILES:
        pytest.skip(f"no test_*.sql files under {TESTS_DIR} yet")
    done = subprocess.run(
        [pg_prove, "--failures", *(str(p) for p in FILES)],
        env={**pg_env, "PGDATABASE": str(conninfo_to_dict(pgtap_dsn)["dbname"])},
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    output: Any = (done.stdout + done.stderr).strip()
    assert done.returncode == 0, f"pg_prove exited {done.returncode}:\n{output}"


def test_pg_prove_by_hand(pg_env: dict[str, str], dsn: str) -> None:
    """docs/foundation-tests.md: migrate, prepare-tests, then pg_prove finds pgTAP and helpers."""
    pg_prove = _pg_prove()
    name = f"by_hand_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    env = {**pg_env, "PGDATABASE": name}
    target = make_conninfo(dsn, dbname=name)
    files = [str(TESTS_DIR / "identity" / "test_pre_request.test.sql")]
    try:
        migrated = CliRunner().invoke(cli, ["db", "migrate"], env={"DATABASE_URL": target})
        assert migrated.exit_code == 0, migrated.output
        before = subprocess.run(
            [pg_prove, *files], env=env, capture_output=True, text=True, check=False, timeout=300
        )
        assert before.returncode != 0, "pg_prove passed on a database without pgTAP"
        assert "plan(integer) does not exist" in before.stdout + before.stderr

        prepared = CliRunner().invoke(cli, ["db", "prepare-tests"], env={"DATABASE_URL": target})
        assert prepared.exit_code == 0, prepared.output
        assert "loaded tests/helpers/10_fixtures.sql" in prepared.output
        again = CliRunner().invoke(cli, ["db", "prepare-tests"], env={"DATABASE_URL": target})
        assert again.exit_code == 0, again.output

        after = subprocess.run(
            [pg_prove, *files], env=env, capture_output=True, text=True, check=False, timeout=300
        )
        assert after.returncode == 0, (after.stdout + after.stderr).strip()
    finally:
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
            )
