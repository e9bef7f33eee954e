"""Figure: a Zenefits roster of 10,000 people (100 pages of 100) from the fake at 0 ms latency,
end to end (fetch, stage, merge, with the engine's and the audit trail's triggers); then the
same roster again (0 rows written). Target: <= 10 s for the first sync.

The organisation has a training catalog before the first sync, so the merge reconciles too: 24
modules (2 required of new hires) and, for each of the roster's departments (created beforehand,
matched by name), department rules for 4 modules; every person gets their assignments in the
merge's transaction.

    python bench/sync_zenefits.py [people]
"""

from __future__ import annotations

import sys

import psycopg
from sync_common import conditions, database, fake_upstreams, make_org, rows_written, run, settings

TARGET_SECONDS = 10.0
MODULES = 24


def add_catalog(dsn: str, slug: str) -> None:
    """The roster's departments, 24 modules and 4 department rules per department."""
    from tests.fakes.dataset import synthetic

    names = [d.name for d in synthetic(1).departments]
    with psycopg.connect(dsn, autocommit=True) as conn:
        org = conn.execute("select id from app.organizations where slug = %s", [slug]).fetchone()
        assert org is not None
        conn.execute(
            "insert into app.departments (org_id, name) select %s, unnest(%s::text[])",
            [org[0], names],
        )
        conn.execute(
            "insert into app.training_modules (org_id, name, month_key, due_date,"
            " required_for_new_hires, grace_period_days)"
            " select %s, 'M' || i, '2026-' || lpad((1 + i %% 12)::text, 2, '0'),"
            " date '2026-01-31' + i * 30, i < 2, 7 from generate_series(0, %s - 1) i",
            [org[0], MODULES],
        )
        # Department k (in the roster's order) requires modules M(2 + 4k) .. M(5 + 4k).
        conn.execute(
            "insert into app.department_training_requirements (org_id, department_id,"
            " module_id, grace_days, effective_start)"
            " select %s, d.id, m.id, 14, date '2026-01-01'"
            " from unnest(%s::text[]) with ordinality as k(name, n)"
            " join app.departments d on d.org_id = %s and d.name = k.name"
            " join app.training_modules m on m.org_id = d.org_id"
            " and substr(m.name, 2)::int between 2 + 4 * (k.n - 1) and 5 + 4 * (k.n - 1)",
            [org[0], names, org[0]])  # fmt: skip


def assignments(dsn: str, slug: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "select count(*) from app.training_assignments a join app.organizations o"
            " on o.id = a.org_id where o.slug = %s",
            [slug],
        ).fetchone()
        assert row is not None
        return int(row[0])


def main() -> None:
    people = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    with database() as dsn, fake_upstreams(people, courseworks=0) as env:
        slug = make_org(dsn)
        add_catalog(dsn, slug)
        conf = settings(dsn, env, slug)
        first, seconds, merges, _, _ = run(conf, "zenefits")
        assert first.status == "completed", first.lines()
        created = assignments(dsn, slug)
        before = rows_written(dsn, slug)
        again, again_seconds, again_merges, _, _ = run(conf, "zenefits")
        after = rows_written(dsn, slug)
        assert again.status == "completed", again.lines()

    merge = merges.get("sync.apply_zenefits_people", 0.0)
    print("Zenefits roster sync (bench/sync_zenefits.py)")
    print(f"  conditions: {people:,} people, {first.pages} pages fetched (people, employments,")
    print(
        f"              departments, locations; limit=100), a catalog of {MODULES} modules (2"
        " required of new hires, 4 department rules per department), one worker, " + conditions()
    )
    print(
        f"  first sync:  {seconds:.2f} s end to end = {people / seconds:,.0f} people/s "
        f"(merge alone {merge:.2f} s = {people / merge:,.0f} people/s); created {first.created:,}, "
        f"{created:,} assignments; status {first.status}; target <= {TARGET_SECONDS:.0f} s: "
        f"{'met' if seconds <= TARGET_SECONDS else 'NOT met'}"
    )
    written = again.created + again.updated
    unchanged = before == after
    print(
        f"  re-sync:     {again_seconds:.2f} s end to end (merge alone "
        f"{again_merges.get('sync.apply_zenefits_people', 0.0):.2f} s); rows written {written} "
        f"(row versions and audit rows {'unchanged' if unchanged else 'CHANGED'})"
    )
    print(f"  ratio first/re-sync: {seconds / again_seconds:.2f}")


if __name__ == "__main__":
    main()
