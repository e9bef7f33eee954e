"""Figure: Google Classroom with 24 course works and 240,000 student submissions (10,000
students), from the fake at 0 ms latency: end to end (token, courses, course work, roster,
submissions; stage; merge with the engine's and the audit trail's triggers), the database merge
alone, then the same data again (0 rows written).
Targets: >= 20,000 submissions/s end to end, >= 50,000 rows/s for the merge.

    python bench/sync_classroom.py [students] [course_works]
"""

from __future__ import annotations

import sys
import time

import psycopg
from sync_common import conditions, database, fake_upstreams, make_org, rows_written, run, settings

TARGET_END_TO_END = 20_000
TARGET_MERGE = 50_000


def write_floor(dsn: str, slug: str) -> tuple[int, float, float]:
    """What only writing the merge's rows costs: the organisation's assignments and their audit
    rows copied by plain INSERT ... SELECT into tables like theirs (same columns, defaults and
    indexes; no trigger, no check, no merge logic), rolled back. (rows, seconds, seconds)."""
    with psycopg.connect(dsn) as conn:
        org = conn.execute("select id from app.organizations where slug = %s", [slug]).fetchone()
        assert org is not None
        conn.execute(
            "create table public.floor_assignments (like app.training_assignments including all)"
        )
        conn.execute("create table public.floor_audit (like audit.log including all)")
        started = time.perf_counter()
        rows = conn.execute(
            "insert into public.floor_assignments select * from app.training_assignments"
            " where org_id = %s",
            [org[0]],
        ).rowcount
        assignments = time.perf_counter() - started
        started = time.perf_counter()
        conn.execute(
            "insert into public.floor_audit (org_id, actor_user_id, actor_role, db_role,"
            " event_type, table_name, op, entity_id, employee_id, new_values)"
            " select org_id, actor_user_id, actor_role, db_role, event_type, table_name, op,"
            " entity_id, employee_id, new_values from audit.log"
            " where org_id = %s and table_name = 'training_assignments' and op = 'INSERT'",
            [org[0]],
        )
        audit = time.perf_counter() - started
        conn.rollback()
    return rows, assignments, audit


def main() -> None:
    students = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    works = int(sys.argv[2]) if len(sys.argv) > 2 else 24
    with database() as dsn, fake_upstreams(students, courseworks=works) as env:
        slug = make_org(dsn)
        conf = settings(dsn, env, slug)
        roster, _, _ = run(conf, "zenefits")  # the employees the students are matched to
        assert roster.status == "completed", roster.lines()
        first, seconds, merges = run(conf, "classroom")
        assert first.status == "completed", first.lines()
        before = rows_written(dsn, slug)
        again, again_seconds, again_merges = run(conf, "classroom")
        after = rows_written(dsn, slug)
        assert again.status == "completed", again.lines()
        # The same first sync into a second organisation, the submissions merge without triggers.
        bare_slug = make_org(dsn)
        bare_conf = settings(dsn, env, bare_slug)
        run(bare_conf, "zenefits")
        bare, _, bare_merges = run(bare_conf, "classroom", bare_merge_dsn=dsn)
        floor_rows, floor_assignments, floor_audit = write_floor(dsn, slug)

    subs = first.merge["classroom_submissions"]
    submissions = int(subs["processed"])
    merge = merges.get("sync.apply_classroom_submissions", 0.0)
    written_rows = int(subs["assignments_created"]) + int(subs["assignments_updated"])
    again_merge = again_merges.get("sync.apply_classroom_submissions", 0.0)
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
        f"  merge alone: sync.apply_classroom_submissions {merge:.2f} s = "
        f"{submissions / merge:,.0f} submissions/s read and matched, "
        f"{written_rows:,} assignment rows written = {written_rows / merge:,.0f} rows/s "
        f"(target >= {TARGET_MERGE:,} rows/s: "
        f"{'met' if submissions / merge >= TARGET_MERGE else 'NOT met'} counting submissions); "
        f"course work merge {merge_cw:.2f} s"
    )
    bare_merge = bare_merges.get("sync.apply_classroom_submissions", 0.0)
    bare_rows = int(bare.merge["classroom_submissions"]["assignments_created"])
    print(
        f"  merge alone without triggers (engine rules, audit, FK checks off: "
        f"session_replication_role=replica): {bare_merge:.2f} s = {submissions / bare_merge:,.0f} "
        f"submissions/s, {bare_rows:,} rows written = {bare_rows / bare_merge:,.0f} rows/s; "
        f"the triggers' share of the merge: {merge - bare_merge:.2f} s"
    )
    print(
        f"  floor: writing only the {floor_rows:,} assignment rows (plain INSERT ... SELECT into a"
        f" table like app.training_assignments, its 5 indexes) {floor_assignments:.2f} s and"
        f" their audit rows (a table like audit.log, its 6 indexes) {floor_audit:.2f} s, one"
        f" connection: {floor_assignments + floor_audit:.2f} s ="
        f" {submissions / (floor_assignments + floor_audit):,.0f} submissions/s"
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
