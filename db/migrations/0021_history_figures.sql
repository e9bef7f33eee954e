-- depends: 0015_history
-- Point-in-time figures answered from a complete cache (DESIGN §5 "History"; docs/analytics.md
-- "History and point-in-time figures").
--
-- The cached figures of every ended day (app.compliance_snapshots) are kept exact in the writing
-- transaction when a completion changes a past day (db/functions/252_history.sql,
-- app.adjust_cached_figures), so a past day is read from the cache, never recomputed. Two
-- indexes serve what is still read from the history:
--
-- * an employee's version valid at an instant (the cache adjustment looks up, for each changed
--   assignment and cached day, the employee's department, location and status of that day);
create index employee_history_employee_idx on app.employee_history (org_id, employee_id);

-- * the versions that can make an assignment overdue on a past day (api.overdue_as_of): a
--   required version that is neither completed nor exempted, or a completed version that was
--   superseded later (its completion may have been corrected or withdrawn since). A completed
--   current version and any exempted version are never overdue, so they stay out of the index.
--   The last day of grace is in it too: overdue on D needs D > due date + grace.
create index assignment_history_may_be_overdue
    on app.assignment_history using gist (org_id, valid, (due_date + grace_days))
    where is_required
      and (status not in ('completed', 'exempted') or (status = 'completed' and not upper_inf(valid)));

-- Backfill: every ended day of the last 400 that has no cached figures yet, computed from the
-- history by the as-of rule (the function applied by the previous migrate; a database migrated
-- for the first time has no organisation yet). Cached days recorded before the history began
-- are kept as they were.
do $$
declare
    r record;
begin
    if to_regprocedure('app.compliance_groups_as_of(uuid, date)') is null then
        return;
    end if;
    for r in
        select o.id as org_id, d.day::date as day
        from app.organizations o
        cross join lateral generate_series(
            greatest(app.org_today(o.id) - 400, app.local_date(o.id, o.created_at)),
            app.org_today(o.id) - 1, interval '1 day') d(day)
        where not exists (select from app.compliance_snapshots s
                          where s.org_id = o.id and s.snapshot_date = d.day::date)
        order by o.id, d.day
    loop
        insert into app.compliance_snapshots (
            org_id, snapshot_date, department_id, location_id, active_employees,
            required_assignments, completed_assignments, overdue_assignments,
            exempted_assignments, compliance_rate, completed_recorded_later, corrected_later,
            created_at)
        select r.org_id, r.day, g.department_id, g.location_id, g.active_employees, g.required,
               g.completed, g.overdue, g.exempted,
               app.compliance_rate_of(g.completed, g.required, g.exempted),
               g.completed_recorded_later, g.corrected_later, now()
        from app.compliance_groups_as_of(r.org_id, r.day) g;
    end loop;
end
$$;

-- No index of every version valid at an instant: a past day's figures are read from the cache,
-- and computing a day (the daily job, or a day not cached yet) reads the organisation's versions
-- by the primary key's org_id as fast; the GiST index of all versions was the largest part of
-- the history's size and of its write cost.
drop index app.assignment_history_valid_at;
