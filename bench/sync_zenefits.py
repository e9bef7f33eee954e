"""Figure: a Zenefits roster of 10,000 people (100 pages of 100) from the fake at 0 ms latency,
end to end (fetch, stage, merge, with the engine's and the audit trail's triggers); then the
same roster again (0 rows written). Target: <= 10 s for the first sync.

    python bench/sync_zenefits.py [people]
"""

from __future__ import annotations

import sys

from sync_common import conditions, database, fake_upstreams, make_org, rows_written, run, settings

TARGET_SECONDS = 10.0


def main() -> None:
    people = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    with database() as dsn, fake_upstreams(people, courseworks=0) as env:
        slug = make_org(dsn)
        conf = settings(dsn, env, slug)
        first, seconds, merges, _, _ = run(conf, "zenefits")
        assert first.status == "completed", first.lines()
        before = rows_written(dsn, slug)
        again, again_seconds, again_merges, _, _ = run(conf, "zenefits")
        after = rows_written(dsn, slug)
        assert again.status == "completed", again.lines()

    merge = merges.get("sync.apply_zenefits_people", 0.0)
    print("Zenefits roster sync (bench/sync_zenefits.py)")
    print(f"  conditions: {people:,} people, {first.pages} pages fetched (people, employments,")
    print("              departments, locations; limit=100), one worker, " + conditions())
    print(
        f"  first sync:  {seconds:.2f} s end to end = {people / seconds:,.0f} people/s "
        f"(merge alone {merge:.2f} s = {people / merge:,.0f} people/s); created {first.created:,}, "
        f"status {first.status}; target <= {TARGET_SECONDS:.0f} s: "
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
