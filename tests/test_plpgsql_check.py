"""plpgsql_check finds no error in any PL/pgSQL function of app, api, audit, sync, analytics.

Every plpgsql function is checked with ``plpgsql_check_function_tb`` (all findings, not only
the first); a trigger function is checked once for every table it is attached to (with its
transition tables, if the trigger declares them), since what it may reference (NEW.column)
depends on the table. Findings at level ``error`` fail the test, each reported with the
function, the table, the line, the statement and the message. Warnings are not failures.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

SCHEMAS = ["app", "api", "audit", "sync", "analytics"]


@dataclass(frozen=True)
class Target:
    function: str
    oid: int
    relid: int = 0
    table: str = ""
    oldtable: str | None = None
    newtable: str | None = None

    def label(self) -> str:
        return f"{self.function} on {self.table}" if self.table else self.function


def targets(conn: psycopg.Connection[Any]) -> tuple[list[Target], list[str]]:
    """What to check, and the trigger functions attached to no table (they cannot be checked)."""
    functions = conn.execute(
        """select p.oid::int as oid, p.oid::regprocedure::text as name,
                  p.prorettype = 'pg_catalog.trigger'::regtype as is_trigger,
                  p.prorettype = 'pg_catalog.event_trigger'::regtype as is_event_trigger
           from pg_catalog.pg_proc p
           join pg_catalog.pg_language l on l.oid = p.prolang
           where l.lanname = 'plpgsql'
             and p.pronamespace::regnamespace::text = any (%s)
             and not exists (select from pg_catalog.pg_depend d
                             where d.classid = 'pg_catalog.pg_proc'::regclass
                               and d.objid = p.oid and d.deptype = 'e')
           order by 2""",
        [SCHEMAS],
    ).fetchall()
    found: list[Target] = []
    unattached: list[str] = []
    for f in functions:
        if not f["is_trigger"]:
            found.append(Target(f["name"], f["oid"]))
            continue
        # One check per table: the transition tables of all its triggers calling the function
        # (an INSERT trigger declares only NEW TABLE, an UPDATE one both, ...).
        triggers = conn.execute(
            """select t.tgrelid::int as relid, t.tgrelid::regclass::text as tbl,
                      max(t.tgoldtable::text) as oldtable, max(t.tgnewtable::text) as newtable
               from pg_catalog.pg_trigger t
               where t.tgfoid = %s and not t.tgisinternal
               group by 1, 2 order by 2""",
            [f["oid"]],
        ).fetchall()
        if not triggers:
            unattached.append(f["name"])
        found.extend(
            Target(f["name"], f["oid"], t["relid"], t["tbl"], t["oldtable"], t["newtable"])
            for t in triggers
        )
    return found, unattached


def check(conn: psycopg.Connection[Any], target: Target) -> list[dict[str, Any]]:
    """plpgsql_check's findings for one target (a failure to check is a finding too)."""
    try:
        return conn.execute(
            """select level, lineno, statement, sqlstate, message, detail, hint, query
               from plpgsql_check_function_tb(
                   %(oid)s::regprocedure, %(relid)s::regclass, fatal_errors => false,
                   oldtable => %(oldtable)s, newtable => %(newtable)s)""",
            {
                "oid": target.oid,
                "relid": target.relid,
                "oldtable": target.oldtable,
                "newtable": target.newtable,
            },
        ).fetchall()
    except psycopg.Error as error:
        return [
            {
                "level": "error",
                "lineno": None,
                "statement": None,
                "sqlstate": error.sqlstate,
                "message": f"plpgsql_check could not check it: {error.diag.message_primary}",
                "detail": error.diag.message_detail,
                "hint": None,
                "query": None,
            }
        ]


def describe(target: Target, finding: dict[str, Any]) -> str:
    where = f" line {finding['lineno']}" if finding["lineno"] else ""
    if finding["statement"]:
        where += f" ({finding['statement']})"
    text = f"{target.label()}{where}: {finding['sqlstate']} {finding['message']}"
    if finding["detail"]:
        text += f"; detail: {finding['detail']}"
    if finding["query"]:
        text += f"; query: {' '.join(str(finding['query']).split())[:200]}"
    return text


TEMP_TABLE = re.compile(
    r"create\s+(?:local\s+)?(?:temp|temporary)\s+table\s+(?:if\s+not\s+exists\s+)?"
    r"([a-z_][a-z0-9_$]*)",
    re.IGNORECASE,
)


def temp_tables(conn: psycopg.Connection[Any], oid: int) -> set[str]:
    """The temporary tables a function creates itself (plpgsql_check cannot see them)."""
    row = conn.execute("select prosrc from pg_catalog.pg_proc where oid = %s", [oid]).fetchone()
    return {name.lower() for name in TEMP_TABLE.findall(row["prosrc"] if row else "")}


def classify(conn: psycopg.Connection[Any], found: list[Target]) -> tuple[list[str], list[str]]:
    """(errors, findings that cannot be checked statically) over every target."""
    errors: list[str] = []
    unchecked: list[str] = []
    by_function: dict[int, list[tuple[Target, list[dict[str, Any]]]]] = {}
    for target in found:
        findings = [f for f in check(conn, target) if f["level"] == "error"]
        by_function.setdefault(target.oid, []).append((target, findings))
    for oid, results in by_function.items():
        temps = temp_tables(conn, oid)
        # A trigger function serving several tables may branch on the table (TG_TABLE_NAME):
        # a statement is wrong only if it is wrong for every table the function serves.
        keys_per_table = [{(f["lineno"], f["sqlstate"]) for f in fs} for _, fs in results]
        everywhere = set.intersection(*keys_per_table) if keys_per_table else set()
        reported: set[tuple[Any, ...]] = set()
        for target, findings in results:
            for finding in findings:
                key = (finding["lineno"], finding["sqlstate"])
                text = describe(target, finding)
                if temps and (
                    (
                        finding["sqlstate"] == "42P01"
                        and any(f'"{t}"' in finding["message"] for t in temps)
                    )
                    or (finding["sqlstate"] == "55000" and "not assigned yet" in finding["message"])
                ):
                    unchecked.append(text)
                elif (key in everywhere or len(results) == 1) and (
                    (target.function, *key) not in reported
                ):
                    reported.add((target.function, *key))
                    errors.append(text)
    return errors, unchecked


def test_every_plpgsql_function_passes_plpgsql_check(superuser: psycopg.Connection[Any]) -> None:
    try:
        superuser.execute("create extension if not exists plpgsql_check")
    except psycopg.Error as error:  # pragma: no cover - depends on the machine
        pytest.fail(
            "plpgsql_check is not installed (apt-get install postgresql-15-plpgsql-check): "
            f"{error.diag.message_primary}"
        )
    found, unattached = targets(superuser)
    assert found, "no plpgsql function found in " + ", ".join(SCHEMAS)
    errors, unchecked = classify(superuser, found)
    errors += [
        f"{name}: trigger function attached to no table (attach it or drop it)"
        for name in unattached
    ]
    if unchecked:
        warnings.warn(
            f"plpgsql_check cannot check {len(unchecked)} statement(s) that use temporary tables "
            "the function creates itself; declare them with "
            "perform plpgsql_check_pragma('table: name(column type, ...)'):\n  "
            + "\n  ".join(unchecked[:20]),
            stacklevel=1,
        )
    assert not errors, (
        f"plpgsql_check: {len(errors)} error(s) in {len(found)} function/table pairs:\n  "
        + "\n  ".join(errors)
    )
