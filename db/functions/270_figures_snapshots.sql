-- Compliance figures, part 5: daily snapshots and point-in-time figures (DESIGN §4
-- compliance_snapshots, §12 "compliance snapshot").
--
-- app.take_compliance_snapshots(day) records, under the label `day`, the figures as they are when
-- it runs: one row per organisation × department × location that has active employees or counted
-- assignments, plus one org-wide row (department and location null). The org-wide row covers
-- everyone; employees with neither a department nor a location appear only there (their group
-- would have the org-wide row's key). Running it again for the same day replaces that day's rows
-- with the figures of the moment (upsert; groups that no longer exist are removed): idempotent.
-- The figures are computed from the rows (app.compliance_facts), not from the live counters, so a
-- snapshot never inherits a counting fault.
--
-- api.compliance_as_of(day) answers that day's figures exactly as recorded. For today without a
-- snapshot yet it answers the live figures (source "live"); for any other day without a snapshot
-- it answers 404.

create or replace function app.snapshot_compliance(p_day date, p_org_id uuid)
returns integer
language plpgsql volatile security definer
set search_path = ''
as $$
declare
    v_day date := p_day;
    v_rows integer;
    v_org uuid;
begin
    if v_day is null then
        raise exception 'the snapshot day is required'
            using errcode = '22023', hint = 'Call app.take_compliance_snapshots(<date>).';
    end if;
    with facts as (
        select f.org_id, f.department_id, f.location_id,
               grouping(f.department_id, f.location_id) as g,
               pg_catalog.count(*) as required,
               pg_catalog.count(*) filter (where f.status = 'completed') as completed,
               pg_catalog.count(*) filter (where f.status = 'overdue') as overdue,
               pg_catalog.count(*) filter (where f.status = 'exempted') as exempted
        from app.compliance_facts f
        where p_org_id is null or f.org_id = p_org_id
        group by grouping sets ((f.org_id, f.department_id, f.location_id), (f.org_id))
    ),
    heads as (
        select e.org_id, e.department_id, e.location_id,
               grouping(e.department_id, e.location_id) as g,
               pg_catalog.count(*) as active_employees
        from app.employees e
        where e.status = 'active' and (p_org_id is null or e.org_id = p_org_id)
        group by grouping sets ((e.org_id, e.department_id, e.location_id), (e.org_id))
    ),
    org_wide as (
        select o.id as org_id, null::uuid as department_id, null::uuid as location_id,
               coalesce(h.active_employees, 0) as active_employees,
               coalesce(f.required, 0) as required, coalesce(f.completed, 0) as completed,
               coalesce(f.overdue, 0) as overdue, coalesce(f.exempted, 0) as exempted
        from app.organizations o
        left join facts f on f.org_id = o.id and f.g <> 0
        left join heads h on h.org_id = o.id and h.g <> 0
        where p_org_id is null or o.id = p_org_id
    ),
    grouped as (
        select x.org_id, x.department_id, x.location_id,
               pg_catalog.sum(x.active_employees)::bigint as active_employees,
               pg_catalog.sum(x.required)::bigint as required,
               pg_catalog.sum(x.completed)::bigint as completed,
               pg_catalog.sum(x.overdue)::bigint as overdue,
               pg_catalog.sum(x.exempted)::bigint as exempted
        from (
            select f.org_id, f.department_id, f.location_id, 0 as active_employees, f.required,
                   f.completed, f.overdue, f.exempted
            from facts f
            where f.g = 0
            union all
            select h.org_id, h.department_id, h.location_id, h.active_employees, 0, 0, 0, 0
            from heads h
            where h.g = 0
        ) x
        where x.department_id is not null or x.location_id is not null
        group by x.org_id, x.department_id, x.location_id
    ),
    all_rows as (
        select * from org_wide
        union all
        select * from grouped
    ),
    upserted as (
        insert into app.compliance_snapshots as s (
            org_id, snapshot_date, department_id, location_id, active_employees,
            required_assignments, completed_assignments, overdue_assignments,
            exempted_assignments, compliance_rate, created_at)
        select r.org_id, v_day, r.department_id, r.location_id, r.active_employees, r.required,
               r.completed, r.overdue, r.exempted,
               app.compliance_rate_of(r.completed, r.required, r.exempted), pg_catalog.now()
        from all_rows r
        order by r.org_id, r.department_id nulls first, r.location_id nulls first
        on conflict (org_id, snapshot_date, department_id, location_id) do update set
            active_employees = excluded.active_employees,
            required_assignments = excluded.required_assignments,
            completed_assignments = excluded.completed_assignments,
            overdue_assignments = excluded.overdue_assignments,
            exempted_assignments = excluded.exempted_assignments,
            compliance_rate = excluded.compliance_rate,
            created_at = excluded.created_at
        returning s.org_id, s.department_id, s.location_id
    ),
    removed as (
        delete from app.compliance_snapshots s
        where s.snapshot_date = v_day and (p_org_id is null or s.org_id = p_org_id)
          and not exists (
              select from upserted u
              where u.org_id = s.org_id
                and u.department_id is not distinct from s.department_id
                and u.location_id is not distinct from s.location_id)
        returning 1
    )
    select pg_catalog.count(*) into v_rows from upserted;

    -- Live dashboards reload their trend.
    for v_org in
        select o.id from app.organizations o where p_org_id is null or o.id = p_org_id order by o.id
    loop
        perform app.emit_event(v_org, 'metrics.refresh', 'compliance_snapshots', v_day::text, null,
                               pg_catalog.jsonb_build_object('snapshot_date', v_day));
    end loop;
    return v_rows;
end
$$;
comment on function app.snapshot_compliance(date, uuid) is
    'Records the compliance figures of the moment as the snapshot of p_day, for one organisation (or all when null); idempotent. Returns the rows written.';

-- The daily job's entry point (app.run_daily_jobs calls it): every organisation.
create or replace function app.take_compliance_snapshots(day date) returns integer
language sql volatile security definer
set search_path = ''
as $$
    select app.snapshot_compliance(take_compliance_snapshots.day, null)
$$;
comment on function app.take_compliance_snapshots(date) is
    'Records the compliance figures of the moment as the snapshot of `day` for every organisation; idempotent. Returns the rows written.';
grant execute on function app.take_compliance_snapshots(date) to sync_worker;

-- The figures document of compliance_as_of for one organisation: from that day's snapshot rows
-- (p_source 'snapshot': the org-wide row, and the department × location groups), or from the live
-- counters and head counts in the same shape (p_source 'live').
create or replace function app.compliance_figures_document(
    p_org_id uuid, p_day date, p_source text, p_taken_at timestamptz
) returns jsonb
language sql stable
set search_path = ''
as $$
    with live_groups as (
        select x.department_id, x.location_id,
               pg_catalog.sum(x.active_employees)::bigint as active_employees,
               pg_catalog.sum(x.required)::bigint as required,
               pg_catalog.sum(x.completed)::bigint as completed,
               pg_catalog.sum(x.overdue)::bigint as overdue,
               pg_catalog.sum(x.exempted)::bigint as exempted
        from (
            select c.department_id, c.location_id, 0 as active_employees, c.required_count as required,
                   c.completed_count as completed, c.overdue_count as overdue,
                   c.exempted_count as exempted
            from app.compliance_counters c
            where p_source = 'live' and c.org_id = p_org_id
            union all
            select h.department_id, h.location_id, h.active_employees, 0, 0, 0, 0
            from app.compliance_headcounts h
            where p_source = 'live' and h.org_id = p_org_id
        ) x
        group by x.department_id, x.location_id
        having pg_catalog.sum(x.required) <> 0 or pg_catalog.sum(x.active_employees) <> 0
    ),
    org_row as (
        select s.active_employees::bigint as active_employees,
               s.required_assignments::bigint as required,
               s.completed_assignments::bigint as completed,
               s.overdue_assignments::bigint as overdue,
               s.exempted_assignments::bigint as exempted
        from app.compliance_snapshots s
        where p_source = 'snapshot' and s.org_id = p_org_id and s.snapshot_date = p_day
          and s.department_id is null and s.location_id is null
        union all
        select coalesce(pg_catalog.sum(g.active_employees), 0)::bigint,
               coalesce(pg_catalog.sum(g.required), 0)::bigint,
               coalesce(pg_catalog.sum(g.completed), 0)::bigint,
               coalesce(pg_catalog.sum(g.overdue), 0)::bigint,
               coalesce(pg_catalog.sum(g.exempted), 0)::bigint
        from live_groups g
        having p_source = 'live'
    ),
    groups as (
        select s.department_id, s.location_id, s.active_employees::bigint as active_employees,
               s.required_assignments::bigint as required,
               s.completed_assignments::bigint as completed,
               s.overdue_assignments::bigint as overdue,
               s.exempted_assignments::bigint as exempted
        from app.compliance_snapshots s
        where p_source = 'snapshot' and s.org_id = p_org_id and s.snapshot_date = p_day
          and (s.department_id is not null or s.location_id is not null)
        union all
        select g.department_id, g.location_id, g.active_employees, g.required, g.completed,
               g.overdue, g.exempted
        from live_groups g
        where p_source = 'live' and (g.department_id is not null or g.location_id is not null)
    )
    select pg_catalog.jsonb_build_object(
        'date', p_day,
        'source', p_source,
        'takenAt', p_taken_at,
        'organization', (
            select pg_catalog.jsonb_build_object(
                       'activeEmployees', o.active_employees, 'requiredAssignments', o.required,
                       'completedAssignments', o.completed, 'overdueAssignments', o.overdue,
                       'exemptedAssignments', o.exempted,
                       'complianceRate', app.compliance_rate_of(o.completed, o.required, o.exempted))
            from org_row o),
        'departments', coalesce((
            select pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                       'departmentId', x.department_id, 'department', d.name,
                       'activeEmployees', x.active_employees, 'requiredAssignments', x.required,
                       'completedAssignments', x.completed, 'overdueAssignments', x.overdue,
                       'exemptedAssignments', x.exempted,
                       'complianceRate', app.compliance_rate_of(x.completed, x.required, x.exempted))
                   order by d.name, x.department_id)
            from (select g.department_id, pg_catalog.sum(g.active_employees)::bigint as active_employees,
                         pg_catalog.sum(g.required)::bigint as required,
                         pg_catalog.sum(g.completed)::bigint as completed,
                         pg_catalog.sum(g.overdue)::bigint as overdue,
                         pg_catalog.sum(g.exempted)::bigint as exempted
                  from groups g where g.department_id is not null
                  group by g.department_id) x
            left join app.departments d on d.org_id = p_org_id and d.id = x.department_id), '[]'),
        'locations', coalesce((
            select pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                       'locationId', x.location_id, 'location', l.name,
                       'activeEmployees', x.active_employees, 'requiredAssignments', x.required,
                       'completedAssignments', x.completed, 'overdueAssignments', x.overdue,
                       'exemptedAssignments', x.exempted,
                       'complianceRate', app.compliance_rate_of(x.completed, x.required, x.exempted))
                   order by l.name, x.location_id)
            from (select g.location_id, pg_catalog.sum(g.active_employees)::bigint as active_employees,
                         pg_catalog.sum(g.required)::bigint as required,
                         pg_catalog.sum(g.completed)::bigint as completed,
                         pg_catalog.sum(g.overdue)::bigint as overdue,
                         pg_catalog.sum(g.exempted)::bigint as exempted
                  from groups g where g.location_id is not null
                  group by g.location_id) x
            left join app.locations l on l.org_id = p_org_id and l.id = x.location_id), '[]'),
        'groups', coalesce((
            select pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                       'departmentId', g.department_id, 'locationId', g.location_id,
                       'activeEmployees', g.active_employees, 'requiredAssignments', g.required,
                       'completedAssignments', g.completed, 'overdueAssignments', g.overdue,
                       'exemptedAssignments', g.exempted,
                       'complianceRate', app.compliance_rate_of(g.completed, g.required, g.exempted))
                   order by g.department_id, g.location_id)
            from groups g), '[]'))
$$;
comment on function app.compliance_figures_document(uuid, date, text, timestamptz) is
    'The compliance_as_of document of one organisation, from that day''s snapshot rows or from the live counters.';
grant execute on function app.compliance_figures_document(uuid, date, text, timestamptz) to authenticated;

create or replace function api.compliance_as_of(day date) returns jsonb
language plpgsql stable
set search_path = ''
as $$
declare
    v_org uuid := app.current_org_id();
    v_day date := compliance_as_of.day;
    v_taken_at timestamptz;
    v_previous date;
begin
    perform app.forbid_employees('compliance_as_of');
    if v_day is null then
        raise exception 'day is required'
            using errcode = '22023', hint = 'Call /rpc/compliance_as_of?day=YYYY-MM-DD.';
    end if;
    select s.created_at into v_taken_at
    from app.compliance_snapshots s
    where s.org_id = v_org and s.snapshot_date = v_day
      and s.department_id is null and s.location_id is null;
    if found then
        return app.compliance_figures_document(v_org, v_day, 'snapshot', v_taken_at);
    end if;
    if v_day = app.org_today(v_org) then
        return app.compliance_figures_document(v_org, v_day, 'live', pg_catalog.now());
    end if;
    select pg_catalog.max(s.snapshot_date) into v_previous
    from app.compliance_snapshots s
    where s.org_id = v_org and s.snapshot_date < v_day
      and s.department_id is null and s.location_id is null;
    raise exception 'no compliance snapshot for %', v_day
        using errcode = 'PT404',
              detail = pg_catalog.format('Your organisation has no snapshot dated %s; the latest before it is %s.',
                                         v_day, coalesce(v_previous::text, 'none')),
              hint = 'Snapshots are taken by the daily job; list the days at /compliance_trend?scope=eq.organization&granularity=eq.day.';
end
$$;
comment on function api.compliance_as_of(date) is
$$The compliance figures of a past day, exactly as the daily snapshot recorded them.

{date, source: "snapshot" | "live", takenAt, organization: {activeEmployees, requiredAssignments,
completedAssignments, overdueAssignments, exemptedAssignments, complianceRate}, departments: [...],
locations: [...], groups: [department × location rows]}. A day with a snapshot answers it (today
too, once the daily job ran); today without one answers the live figures (source "live"); any
other day without a snapshot is 404. Superadmins, HR admins, managers and viewers (403 for
employees). Example: /rpc/compliance_as_of?day=2025-03-31.$$;
grant execute on function api.compliance_as_of(date) to authenticated;
