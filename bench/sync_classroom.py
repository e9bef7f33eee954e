"""Figure: Google Classroom with 24 course works and 240,000 student submissions (10,000
students), from the fake at 0 ms latency: end to end (token, courses, course work, roster,
submissions; stage; merge with the engine's and the audit trail's triggers), the database merge
alone, then the same data again (0 rows written).
Targets: >= 20,000 submissions/s end to end, >= 50,000 rows/s for the merge.

To show where the time goes it also prints the merge without triggers, the floor (only writing
the merge's rows, on one connection and on as many as the merge has parts) and the machine's busy
CPU seconds of each step (/proc/stat: the database, the worker and the fakes share the cores).

    python bench/sync_classroom.py [students] [course_works]
"""

from __future__ import annotations

import os
import sys
import time
from typing import NamedTuple

import psycopg
from sync_common import (
    at_once,
    busy_cpu_seconds,
    conditions,
    database,
    fake_upstreams,
    make_org,
    rows_written,
    run,
    settings,
)

TARGET_END_TO_END = 20_000
TARGET_MERGE = 50_000
SUBMISSIONS = "sync.apply_classroom_submissions"
AUDIT_COLUMNS = (
    "org_id, actor_user_id, actor_role, db_role, event_type, table_name, op, entity_id,"
    " employee_id, new_values"
)


class Floor(NamedTuple):
    rows: int
    connections: int
    seconds: float  # wall clock, every connection's writes
    assignments: float  # the slowest connection's assignment rows
    audit: float  # the slowest connection's audit rows
    cpu: float  # busy CPU seconds of the machine


def write_floor(dsn: str, slug: str, connections: int) -> Floor:
    """What only writing the merge's rows costs: the organisation's assignments and their audit
    rows, split beforehand into one share per connection, copied by plain INSERT ... SELECT into
    tables like theirs (same columns, defaults and indexes; no trigger, no check, no merge logic)
    over that many connections at once; the tables are dropped afterwards."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        org = conn.execute("select id from app.organizations where slug = %s", [slug]).fetchone()
        assert org is not None
        conn.execute(
            "create table public.floor_assignments (like app.training_assignments including all)"
        )
        conn.execute("create table public.floor_audit (like audit.log including all)")
        rows = 0
        for i in range(connections):
            rows += conn.execute(
                f"create unlogged table public.floor_assignments_{i} as"  # noqa: S608
                " select * from app.training_assignments"
                f" where org_id = %s and (hashtext(id::text) & 2147483647) %% {connections} = {i}",
                [org[0]],
            ).rowcount
            conn.execute(
                f"create unlogged table public.floor_audit_{i} as"  # noqa: S608
                f" select {AUDIT_COLUMNS} from audit.log"
                " where org_id = %s and table_name = 'training_assignments' and op = 'INSERT'"
                f" and (hashtext(entity_id) & 2147483647) %% {connections} = {i}",
                [org[0]],
            )
        conn.execute("checkpoint")

    def share(i: int) -> tuple[float, float]:
        with psycopg.connect(dsn, autocommit=True) as conn:
            started = time.perf_counter()
            conn.execute(
                f"insert into public.floor_assignments select * from public.floor_assignments_{i}"  # noqa: S608
            )
            between = time.perf_counter()
            conn.execute(
                f"insert into public.floor_audit ({AUDIT_COLUMNS})"  # noqa: S608
                f" select {AUDIT_COLUMNS} from public.floor_audit_{i}"
            )
            return between - started, time.perf_counter() - between

    started, cpu = time.perf_counter(), busy_cpu_seconds()
    times = at_once(share, connections)
    seconds, cpu = time.perf_counter() - started, busy_cpu_seconds() - cpu
    with psycopg.connect(dsn, autocommit=True) as conn:
        shares = ", ".join(
            f"public.floor_assignments_{i}, public.floor_audit_{i}" for i in range(connections)
        )
        conn.execute(f"drop table public.floor_assignments, public.floor_audit, {shares}")
    return Floor(
        rows,
        connections,
        seconds,
        max(t[0] for t in times),
        max(t[1] for t in times),
        cpu,
    )


def main() -> None:
    students = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    works = int(sys.argv[2]) if len(sys.argv) > 2 else 24
    with database() as dsn, fake_upstreams(students, courseworks=works) as env:
        slug = make_org(dsn)
        conf = settings(dsn, env, slug)
        roster = run(conf, "zenefits").summary  # the employees the students are matched to
        assert roster.status == "completed", roster.lines()
        first, seconds, merges, cpu, merges_cpu = run(conf, "classroom")
        assert first.status == "completed", first.lines()
        before = rows_written(dsn, slug)
        again, again_seconds, again_merges, _, _ = run(conf, "classroom")
        after = rows_written(dsn, slug)
        assert again.status == "completed", again.lines()
        # The same first sync into a second organisation, the submissions merge without triggers.
        bare_slug = make_org(dsn)
        bare_conf = settings(dsn, env, bare_slug)
        run(bare_conf, "zenefits")
        bare, _, bare_merges, _, bare_merges_cpu = run(bare_conf, "classroom", bare_merge_dsn=dsn)
        parts = conf.compliance_sync_merge_parts
        floors = [write_floor(dsn, slug, n) for n in sorted({1, parts})]

    subs = first.merge["classroom_submissions"]
    submissions = int(subs["processed"])
    merge = merges[SUBMISSIONS]
    written_rows = int(subs["assignments_created"]) + int(subs["assignments_updated"])
    again_merge = again_merges[SUBMISSIONS]
    merge_cw = merges.get("sync.apply_classroom_coursework", 0.0)
    print("Google Classroom sync (bench/sync_classroom.py)")
    print(
        f"  conditions: {works} course works x {students:,} students = {submissions:,} submissions"
        f" ({subs['results']:,} graded results -> {subs['assignments_created']:,} assignments"
        f" created, {subs['students_linked']:,} students linked by e-mail), {first.pages} pages"
        f" (pageSize 1000), one worker, submissions merged in {conf.compliance_sync_merge_parts}"
        " concurrent parts (COMPLIANCE_SYNC_MERGE_PARTS), " + conditions()
    )
    print(
        f"  first sync:  {seconds:.2f} s end to end = {submissions / seconds:,.0f} submissions/s "
        f"(target >= {TARGET_END_TO_END:,}/s: "
        f"{'met' if submissions / seconds >= TARGET_END_TO_END else 'NOT met'})"
    )
    print(
        f"  merge alone: {SUBMISSIONS} {merge:.2f} s ({merges_cpu[SUBMISSIONS]:.2f} busy CPU s) = "
        f"{submissions / merge:,.0f} submissions/s read and matched, "
        f"{written_rows:,} assignment rows written = {written_rows / merge:,.0f} rows/s "
        f"(target >= {TARGET_MERGE:,} rows/s: "
        f"{'met' if submissions / merge >= TARGET_MERGE else 'NOT met'} counting submissions); "
        f"course work merge {merge_cw:.2f} s"
    )
    bare_merge = bare_merges[SUBMISSIONS]
    bare_rows = int(bare.merge["classroom_submissions"]["assignments_created"])
    print(
        f"  merge alone without triggers (engine rules, audit, FK checks off: "
        f"session_replication_role=replica): {bare_merge:.2f} s = {submissions / bare_merge:,.0f} "
        f"submissions/s, {bare_rows:,} rows written = {bare_rows / bare_merge:,.0f} rows/s; "
        f"{bare_merges_cpu[SUBMISSIONS]:.2f} busy CPU s; the triggers' share of the merge:"
        f" {merge - bare_merge:.2f} s, {merges_cpu[SUBMISSIONS] - bare_merges_cpu[SUBMISSIONS]:.2f}"
        " busy CPU s"
    )
    cores = os.cpu_count() or 1
    for floor in floors:
        print(
            f"  floor on {floor.connections} connection"
            f"{'s at once' if floor.connections > 1 else ''}: writing only the {floor.rows:,}"
            " assignment rows (plain INSERT ... SELECT of rows split beforehand into a table like"
            " app.training_assignments, its 5 indexes) and their audit rows (a table like"
            f" audit.log, its 6 indexes): {floor.seconds:.2f} s"
            f" (per connection at most {floor.assignments:.2f} s + {floor.audit:.2f} s),"
            f" {floor.cpu:.2f} busy CPU s = {submissions / floor.seconds:,.0f} submissions/s"
            f" (the merge target needs {submissions / TARGET_MERGE:.2f} s)"
        )
    merges_cpu_total = sum(merges_cpu.values())
    outside, outside_cpu = seconds - sum(merges.values()), cpu - merges_cpu_total
    fastest = min(floors, key=lambda f: f.seconds)
    in_turn = outside + fastest.seconds
    overlapped = (outside_cpu + fastest.cpu) / cores
    print(
        f"  outside the merges (token, fetch, stage, start and finish): {outside:.2f} s,"
        f" {outside_cpu:.2f} busy CPU s of the {outside * cores:.2f} the {cores} cores had; the"
        f" merges {sum(merges.values()):.2f} s, {merges_cpu_total:.2f} busy CPU s. With this"
        f" fetch and a merge that only wrote its rows (the fastest floor), the end to end would"
        f" take {in_turn:.2f} s = {submissions / in_turn:,.0f} submissions/s merging after the"
        f" fetch, and at least {overlapped:.2f} s = {submissions / overlapped:,.0f} submissions/s"
        f" with the merge overlapping the fetch on every core (the end-to-end target needs"
        f" {submissions / TARGET_END_TO_END:.2f} s)"
    )
    written = again.created + again.updated
    print(
        f"  re-sync:     {again_seconds:.2f} s end to end = {submissions / again_seconds:,.0f} "
        f"submissions/s (merge alone {again_merge:.2f} s = {submissions / again_merge:,.0f} "
        f"submissions/s compared); rows written {written} (row versions and audit rows "
        f"{'unchanged' if before == after else 'CHANGED'})"
    )
    print(f"  ratio first/re-sync: {seconds / again_seconds:.2f}")


if __name__ == "__main__":
    main()
