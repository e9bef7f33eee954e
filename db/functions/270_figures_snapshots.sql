-- Compliance figures, part 5: snapshots as a cache of the as-of answer, and the point-in-time
-- figures (DESIGN §5 "History", §12 "compliance snapshot"; docs/analytics.md).
--
-- The figures of a past local day are computed from the history (252_history.sql,
-- app.compliance_groups_as_of: the state at the end of that day). app.snapshot_compliance(day,
-- org) stores that answer in app.compliance_snapshots: one org-wide row (department and location
-- null) and one row per department × location group with active employees or counted assignments
-- (employees with neither are in the org-wide row only). The daily job caches the day that has
-- just ended (app.take_compliance_snapshots(day) caches day - 1, and fills a few ended days that
-- were never cached: missed jobs). The cache stays exact: only a completion can change an ended
-- day (every other fact counts by when it was recorded), and a completion recorded, corrected or
-- withdrawn for an earlier day adjusts the cached days it touches in the same transaction
-- (252_history.sql, app.adjust_cached_figures). A cache row written before its day ended is not
-- used (the day was not over).
--
-- api.compliance_as_of(day, department, location) answers any day from the day the organisation
-- was created to today: today from the live counters (the headline figure), an ended day from the
-- cache or, for a day not cached yet, the history. api.overdue_as_of lists, paged, who was
-- overdue that day and on what.

drop function if exists app.forget_cached_figures(uuid[], date[]);
drop function if exists app.compliance_figures_document(uuid, date, text, timestamptz);

-- Cache the figures of local day p_day (from the history) for one organisation, or for every
-- organisation when p_org_id is null. Idempotent: the day's rows are replaced. Returns the rows
-- written.
create or replace function app.snapshot_compliance(p_day date, p_org_id uuid)
returns integer
language plpgsql volatile security definer
set search_path = ''
as $$
declare
    v_rows integer := 0;
    v_count integer;
    v_org uuid;
begin
    if p_day is null then
        raise exception 'the snapshot day is required'
            using errcode = '22023', hint = 'Call app.snapshot_compliance(<date>, <organisation id or null>).';
    end if;
    for v_org in
        select o.id from app.organizations o where p_org_id is null or o.id = p_org_id order by o.id
    loop
        -- Writers adjusting this organisation's cached days wait, and are waited for.
        perform pg_catalog.pg_advisory_xact_lock(app.cached_figures_lock_key(v_org));
        delete from app.compliance_snapshots s where s.org_id = v_org and s.snapshot_date = p_day;
        insert into app.compliance_snapshots (
            org_id, snapshot_date, department_id, location_id, active_employees,
            required_assignments, completed_assignments, overdue_assignments,
            exempted_assignments, compliance_rate, completed_recorded_later, corrected_later,
            created_at)
        select v_org, p_day, g.department_id, g.location_id, g.active_employees, g.required,
               g.completed, g.overdue, g.exempted,
               app.compliance_rate_of(g.completed, g.required, g.exempted),
               g.completed_recorded_later, g.corrected_later, pg_catalog.now()
        from app.compliance_groups_as_of(v_org, p_day) g
        order by g.department_id nulls first, g.location_id nulls first;
        get diagnostics v_count = row_count;
        v_rows := v_rows + v_count;
        -- Live dashboards reload their trend.
        perform app.emit_event(v_org, 'metrics.refresh', 'compliance_snapshots', p_day::text, null,
                               pg_catalog.jsonb_build_object('snapshot_date', p_day));
    end loop;
    return v_rows;
end
$$;
comment on function app.snapshot_compliance(date, uuid) is
    'Caches the compliance figures at the end of local day p_day (computed from the history) for one organisation, or all when null; idempotent. Returns the rows written.';

-- The daily job's entry point (app.run_daily_jobs(org, day) calls it for its organisation): the
-- job for `day` runs after that day's local midnight, so the day that has just ended is day - 1.
-- For the organisation (every organisation when p_org_id is null) it caches that day, then fills
-- up to 7 more ended days of the last 400 that have no valid cache (days whose job never ran),
-- newest first. A day that has not ended in the organisation's zone is never cached here.
-- Returns the rows written.
drop function if exists app.take_compliance_snapshots(date);
create or replace function app.take_compliance_snapshots(day date, p_org_id uuid default null)
returns integer
language plpgsql volatile security definer
set search_path = ''
as $$
declare
    v_rows integer := 0;
    r record;
begin
    for r in
        select o.id as org_id, d.day
        from app.organizations o
        cross join lateral (
            select x.day::date as day
            from pg_catalog.generate_series(take_compliance_snapshots.day - 1,
                                            greatest(take_compliance_snapshots.day - 400,
                                                     app.local_date(o.id, o.created_at)),
                                            interval '-1 day') x(day)
            where app.end_of_local_day(o.id, x.day::date) <= pg_catalog.now()
              and not exists (
                  select from app.compliance_snapshots s
                  where s.org_id = o.id and s.snapshot_date = x.day::date
                    and s.department_id is null and s.location_id is null
                    and s.created_at >= app.end_of_local_day(o.id, x.day::date))
            order by x.day desc
            limit 8
        ) d
        where p_org_id is null or o.id = p_org_id
        order by o.id, d.day desc
    loop
        v_rows := v_rows + app.snapshot_compliance(r.day, r.org_id);
    end loop;
    return v_rows;
end
$$;
comment on function app.take_compliance_snapshots(date, uuid) is
    'The daily job for `day`: caches the figures of the day that ended (day - 1) and fills up to 7 more uncached ended days of the last 400, for one organisation (all when null); idempotent. Returns the rows written.';
grant execute on function app.take_compliance_snapshots(date, uuid) to sync_worker;

-- A department or location named by id or by name, in the caller's organisation; PT404 otherwise.
-- p_kind: 'department' or 'location'.
create or replace function app.resolve_place(p_org_id uuid, p_kind text, p_value text) returns uuid
language plpgsql stable
set search_path = ''
as $$
declare
    v_id uuid;
begin
    if p_value is null then
        return null;
    end if;
    select x.id into v_id
    from (select d.id, d.name from app.departments d where p_kind = 'department' and d.org_id = p_org_id
          union all
          select l.id, l.name from app.locations l where p_kind = 'location' and l.org_id = p_org_id) x
    where x.id::text = pg_catalog.lower(p_value) or x.name = p_value
    order by x.id::text = pg_catalog.lower(p_value) desc
    limit 1;
    if v_id is null then
        raise exception '% % not found', p_kind, p_value
            using errcode = 'PT404',
                  detail = pg_catalog.format('No %s with id or name "%s" in your organisation.', p_kind, p_value),
                  hint = pg_catalog.format('List %ss at /%ss.', p_kind, p_kind);
    end if;
    return v_id;
end
$$;
comment on function app.resolve_place(uuid, text, text) is
    'The id of a department or location (p_kind) given by id or name in the organisation; PT404 when there is none.';
grant execute on function app.resolve_place(uuid, text, text) to authenticated;

create or replace function app.resolve_department(p_org_id uuid, p_department text) returns uuid
language sql stable
set search_path = ''
as $$ select app.resolve_place(p_org_id, 'department', p_department) $$;
comment on function app.resolve_department(uuid, text) is
    'The id of a department given by id or name in the organisation; PT404 when there is none.';
grant execute on function app.resolve_department(uuid, text) to authenticated;

create or replace function app.resolve_location(p_org_id uuid, p_location text) returns uuid
language sql stable
set search_path = ''
as $$ select app.resolve_place(p_org_id, 'location', p_location) $$;
comment on function app.resolve_location(uuid, text) is
    'The id of a location given by id or name in the organisation; PT404 when there is none.';
grant execute on function app.resolve_location(uuid, text) to authenticated;

-- The day an as-of question may ask about: from the organisation's first local day to its today.
-- A missing day, a future day or a day before the organisation existed is refused (22023).
drop function if exists app.check_as_of_day(uuid, date, text);
-- p_argument names the argument that carried the day (day, to_day), for the message.
create or replace function app.check_as_of_day(p_org_id uuid, p_day date, p_what text,
                                               p_argument text default 'day') returns void
language plpgsql stable
set search_path = ''
as $$
declare
    v_today date := app.org_today(p_org_id);
    v_first date;
begin
    if p_day is null then
        raise exception '% is required', p_argument
            using errcode = '22023', hint = pg_catalog.format('Call /rpc/%s?%s=YYYY-MM-DD.', p_what, p_argument);
    end if;
    if p_day > v_today then
        raise exception '% % is in the future', p_argument, p_day
            using errcode = '22023',
                  detail = pg_catalog.format('Today in your organisation (%s) is %s; a figure of %s does not exist yet.',
                                             app.org_timezone(p_org_id), v_today, p_day),
                  hint = 'Ask for today or an earlier day.';
    end if;
    select app.local_date(o.id, o.created_at) into v_first from app.organizations o where o.id = p_org_id;
    if p_day < v_first then
        raise exception '% % is before your organisation''s records begin', p_argument, p_day
            using errcode = '22023',
                  detail = pg_catalog.format('Your organisation was created on %s (%s); there is no record of %s.',
                                             v_first, app.org_timezone(p_org_id), p_day),
                  hint = pg_catalog.format('Ask for a day from %s to %s.', v_first, v_today);
    end if;
end
$$;
comment on function app.check_as_of_day(uuid, date, text, text) is
    'Refuses (22023) a missing day, a day after the organisation''s today, or a day before it was created.';
grant execute on function app.check_as_of_day(uuid, date, text, text) to authenticated;

create or replace function app.figures_json(
    p_active bigint, p_required bigint, p_completed bigint, p_overdue bigint, p_exempted bigint,
    p_recorded_later bigint, p_corrected_later bigint
) returns jsonb
language sql immutable
set search_path = ''
as $$
    select pg_catalog.jsonb_build_object(
        'activeEmployees', p_active, 'requiredAssignments', p_required,
        'completedAssignments', p_completed, 'overdueAssignments', p_overdue,
        'exemptedAssignments', p_exempted,
        'complianceRate', app.compliance_rate_of(p_completed, p_required, p_exempted),
        'completedRecordedLater', p_recorded_later, 'correctedLater', p_corrected_later)
$$;
comment on function app.figures_json(bigint, bigint, bigint, bigint, bigint, bigint, bigint) is
    'One set of compliance figures as the JSON object of compliance_as_of.';
grant execute on function app.figures_json(bigint, bigint, bigint, bigint, bigint, bigint, bigint) to authenticated;

-- The figures document of compliance_as_of from group rows of one source, for the whole
-- organisation and for the selected department and/or location.
create or replace function app.compliance_figures_document(
    p_org_id uuid, p_day date, p_source text, p_taken_at timestamptz, p_department_id uuid,
    p_location_id uuid
) returns jsonb
language sql stable
set search_path = ''
as $$
    with rows as materialized (
        select * from app.compliance_groups(p_org_id, p_day, p_source)
    ),
    groups as (
        select * from rows r
        where (r.department_id is not null or r.location_id is not null)
          and (p_department_id is null or r.department_id = p_department_id)
          and (p_location_id is null or r.location_id = p_location_id)
    ),
    org_row as (
        select * from rows r where r.department_id is null and r.location_id is null
    ),
    selection as (
        select * from org_row where p_department_id is null and p_location_id is null
        union all
        select null, null, coalesce(pg_catalog.sum(g.active_employees), 0)::bigint,
               coalesce(pg_catalog.sum(g.required), 0)::bigint, coalesce(pg_catalog.sum(g.completed), 0)::bigint,
               coalesce(pg_catalog.sum(g.overdue), 0)::bigint, coalesce(pg_catalog.sum(g.exempted), 0)::bigint,
               coalesce(pg_catalog.sum(g.completed_recorded_later), 0)::bigint,
               coalesce(pg_catalog.sum(g.corrected_later), 0)::bigint
        from groups g
        having p_department_id is not null or p_location_id is not null
    ),
    -- The figures of each department and of each location (summed over its groups), named.
    places as (
        select x.kind, x.id, coalesce(d.name, l.name) as name,
               app.figures_json(x.active_employees, x.required, x.completed, x.overdue, x.exempted,
                                x.recorded_later, x.corrected_later) as figures
        from (select k.kind, k.id, pg_catalog.sum(g.active_employees)::bigint as active_employees,
                     pg_catalog.sum(g.required)::bigint as required,
                     pg_catalog.sum(g.completed)::bigint as completed,
                     pg_catalog.sum(g.overdue)::bigint as overdue,
                     pg_catalog.sum(g.exempted)::bigint as exempted,
                     pg_catalog.sum(g.completed_recorded_later)::bigint as recorded_later,
                     pg_catalog.sum(g.corrected_later)::bigint as corrected_later
              from groups g
              cross join lateral (values ('department', g.department_id), ('location', g.location_id)) k(kind, id)
              where k.id is not null
              group by k.kind, k.id) x
        left join app.departments d on x.kind = 'department' and d.org_id = p_org_id and d.id = x.id
        left join app.locations l on x.kind = 'location' and l.org_id = p_org_id and l.id = x.id
    )
    select pg_catalog.jsonb_build_object(
        'date', p_day,
        'source', p_source,
        'takenAt', p_taken_at,
        'departmentId', p_department_id,
        'locationId', p_location_id,
        'organization', (select app.figures_json(o.active_employees, o.required, o.completed, o.overdue,
                                                 o.exempted, o.completed_recorded_later, o.corrected_later)
                         from org_row o),
        'selection', (select app.figures_json(s.active_employees, s.required, s.completed, s.overdue,
                                              s.exempted, s.completed_recorded_later, s.corrected_later)
                      from selection s),
        'departments', coalesce((
            select pg_catalog.jsonb_agg(
                       pg_catalog.jsonb_build_object('departmentId', p.id, 'department', p.name) || p.figures
                   order by p.name, p.id)
            from places p where p.kind = 'department'), '[]'),
        'locations', coalesce((
            select pg_catalog.jsonb_agg(
                       pg_catalog.jsonb_build_object('locationId', p.id, 'location', p.name) || p.figures
                   order by p.name, p.id)
            from places p where p.kind = 'location'), '[]'),
        'groups', coalesce((
            select pg_catalog.jsonb_agg(
                       pg_catalog.jsonb_build_object('departmentId', g.department_id, 'locationId', g.location_id)
                       || app.figures_json(g.active_employees, g.required, g.completed, g.overdue,
                                           g.exempted, g.completed_recorded_later, g.corrected_later)
                   order by g.department_id, g.location_id)
            from groups g), '[]'))
$$;
comment on function app.compliance_figures_document(uuid, date, text, timestamptz, uuid, uuid) is
    'The compliance_as_of document of one organisation and day from one source (cache, history, live), with the selected department/location.';
grant execute on function app.compliance_figures_document(uuid, date, text, timestamptz, uuid, uuid) to authenticated;

create or replace function api.compliance_as_of(day date, department text default null,
                                                location text default null) returns jsonb
language plpgsql stable
set search_path = ''
as $$
declare
    v_org uuid := app.current_org_id();
    v_day date := compliance_as_of.day;
    v_department uuid;
    v_location uuid;
    v_taken_at timestamptz;
begin
    perform app.forbid_employees('compliance_as_of');
    perform app.check_as_of_day(v_org, v_day, 'compliance_as_of');
    v_department := app.resolve_department(v_org, compliance_as_of.department);
    v_location := app.resolve_location(v_org, compliance_as_of.location);
    if v_day = app.org_today(v_org) then
        return app.compliance_figures_document(v_org, v_day, 'live', pg_catalog.now(), v_department, v_location);
    end if;
    select s.created_at into v_taken_at
    from app.compliance_snapshots s
    where s.org_id = v_org and s.snapshot_date = v_day
      and s.department_id is null and s.location_id is null
      and s.created_at >= app.end_of_local_day(v_org, v_day);
    if found then
        return app.compliance_figures_document(v_org, v_day, 'snapshot', v_taken_at, v_department, v_location);
    end if;
    return app.compliance_figures_document(v_org, v_day, 'history', pg_catalog.now(), v_department, v_location);
end
$$;
comment on function api.compliance_as_of(date, text, text) is
$$The compliance figures at the end of any local day, exactly, from the history.

{date, source: "live" | "snapshot" | "history", takenAt, departmentId, locationId,
organization: {activeEmployees, requiredAssignments, completedAssignments, overdueAssignments,
exemptedAssignments, complianceRate, completedRecordedLater, correctedLater}, selection: the same
for the chosen department and/or location (id or name), departments: [...], locations: [...],
groups: [department × location rows]}. The state at the end of the day in the organisation's
zone: what the database had recorded by then, with completions judged by their completion time
(completedRecordedLater: completions of that day recorded afterwards; correctedLater: completions
corrected afterwards). Today answers the live figures (the headline); an ended day the cached
answer ("snapshot") or the history. 400 for a future day or one before the organisation existed,
404 for an unknown department or location, 403 for employees.
Example: /rpc/compliance_as_of?day=2025-03-31&department=Nursing.$$;
grant execute on function api.compliance_as_of(date, text, text) to authenticated;

create or replace function api.overdue_as_of(day date, department text default null,
                                             location text default null, page_size integer default 50,
                                             after uuid default null) returns jsonb
language plpgsql stable
set search_path = ''
as $$
declare
    v_org uuid := app.current_org_id();
    v_day date := overdue_as_of.day;
    v_department uuid;
    v_location uuid;
    v_after_name text;
    v_people jsonb;
    v_size integer := overdue_as_of.page_size;
begin
    perform app.forbid_employees('overdue_as_of');
    perform app.check_as_of_day(v_org, v_day, 'overdue_as_of');
    if v_size is null or v_size not between 1 and 500 then
        raise exception 'page_size must be between 1 and 500'
            using errcode = '22023', detail = pg_catalog.format('page_size was %s.', coalesce(v_size::text, 'null')),
                  hint = 'Ask for at most 500 people a page (default 50).';
    end if;
    v_department := app.resolve_department(v_org, overdue_as_of.department);
    v_location := app.resolve_location(v_org, overdue_as_of.location);
    if overdue_as_of.after is not null then
        select e.full_name into v_after_name
        from app.employees e where e.org_id = v_org and e.id = overdue_as_of.after;
        if not found then
            raise exception 'employee % not found', overdue_as_of.after
                using errcode = 'PT404',
                      detail = 'The paging cursor `after` names no employee of your organisation.',
                      hint = 'Pass the nextAfter value of the previous page.';
        end if;
    end if;
    with overdue as materialized (
        select f.*
        from app.assignments_as_of(v_org, v_day, null, true) f
        where (v_department is null or f.department_id = v_department)
          and (v_location is null or f.location_id = v_location)
    ),
    people as materialized (
        select o.employee_id, e.full_name, pg_catalog.min(o.department_id::text)::uuid as department_id,
               pg_catalog.min(o.location_id::text)::uuid as location_id
        from overdue o
        join app.employees e on e.org_id = v_org and e.id = o.employee_id
        where overdue_as_of.after is null or (e.full_name, e.id) > (v_after_name, overdue_as_of.after)
        group by o.employee_id, e.full_name
        order by e.full_name, o.employee_id
        limit v_size + 1
    ),
    lists as (
        select o.employee_id,
               pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                   'assignmentId', o.assignment_id, 'moduleId', o.module_id,
                   'module', m.name, 'dueDate', o.due_date,
                   'graceDays', o.grace_days, 'daysOverdue', o.days_overdue,
                   'correctedLater', o.corrected_later)
               order by o.due_date, m.name, o.assignment_id) as overdue
        from people p
        join overdue o on o.employee_id = p.employee_id
        join app.training_modules m on m.org_id = v_org and m.id = o.module_id
        group by o.employee_id
    )
    select pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
               'employeeId', p.employee_id, 'employee', p.full_name,
               'departmentId', p.department_id, 'department', d.name,
               'locationId', p.location_id, 'location', l.name,
               'overdue', x.overdue)
           order by p.full_name, p.employee_id)
    into v_people
    from people p
    join lists x on x.employee_id = p.employee_id
    left join app.departments d on d.org_id = v_org and d.id = p.department_id
    left join app.locations l on l.org_id = v_org and l.id = p.location_id;
    v_people := coalesce(v_people, '[]');
    return pg_catalog.jsonb_build_object(
        'date', v_day, 'departmentId', v_department, 'locationId', v_location,
        'people', case when pg_catalog.jsonb_array_length(v_people) > v_size
                       then v_people operator(pg_catalog.-) v_size else v_people end,
        'nextAfter', case when pg_catalog.jsonb_array_length(v_people) > v_size
                          then v_people -> (v_size - 1) -> 'employeeId' end);
end
$$;
comment on function api.overdue_as_of(date, text, text, integer, uuid) is
$$Who was overdue at the end of a local day, and on what, paged by person (name order).

{date, departmentId, locationId, people: [{employeeId, employee, departmentId, department,
locationId, location, overdue: [{assignmentId, moduleId, module, dueDate, graceDays, daysOverdue,
correctedLater}]}], nextAfter}: the same as-of rule as compliance_as_of (counted assignments,
not completed by then, not exempted, past due date + grace); daysOverdue counts local days from
the due date. Pass nextAfter as `after` for the next page (null on the last). page_size 1–500
(default 50). 400 for a future day, one before the organisation existed or a bad page size; 404
for an unknown department, location or cursor; 403 for employees.
Example: /rpc/overdue_as_of?day=2025-03-31&location=Wixom&page_size=20.$$;
grant execute on function api.overdue_as_of(date, text, text, integer, uuid) to authenticated;

-- One employee's own trend: their required assignments at the end of each local day of a range,
-- by the as-of rule (the figure api.compliance_rate gives an employee, day by day).
create or replace function api.employee_compliance_trend(employee_id uuid default null,
                                                         from_day date default null,
                                                         to_day date default null)
returns table (day date, required bigint, completed bigint, overdue bigint, exempted bigint,
               compliance_rate numeric)
language plpgsql stable
set search_path = ''
as $$
declare
    v_org uuid := app.current_org_id();
    v_employee uuid := coalesce(employee_compliance_trend.employee_id, app.current_employee_id());
    v_to date := coalesce(employee_compliance_trend.to_day, app.org_today(v_org));
    v_from date := coalesce(employee_compliance_trend.from_day, v_to - 29);
begin
    if v_employee is null
       or not exists (select from app.employees e where e.org_id = v_org and e.id = v_employee) then
        raise exception 'employee % not found', coalesce(v_employee::text, '(none linked to your login)')
            using errcode = 'PT404',
                  detail = 'No employee with that id is visible to you in your organisation.',
                  hint = 'Pass employee_id; employees see only their own trend.';
    end if;
    if v_from > v_to or v_to - v_from > 366 then
        raise exception 'from_day % to to_day % is not a range of at most 367 days', v_from, v_to
            using errcode = '22023', hint = 'Ask for at most a year, from_day on or before to_day.';
    end if;
    v_from := greatest(v_from, (select app.local_date(o.id, o.created_at) from app.organizations o where o.id = v_org));
    perform app.check_as_of_day(v_org, v_to, 'employee_compliance_trend', 'to_day');
    return query
    select d.day::date,
           pg_catalog.count(f.assignment_id),
           pg_catalog.count(*) filter (where f.state = 'completed'),
           pg_catalog.count(*) filter (where f.state = 'overdue'),
           pg_catalog.count(*) filter (where f.state = 'exempted'),
           app.compliance_rate_of(pg_catalog.count(*) filter (where f.state = 'completed'),
                                  pg_catalog.count(f.assignment_id),
                                  pg_catalog.count(*) filter (where f.state = 'exempted'))
    from pg_catalog.generate_series(v_from, v_to, interval '1 day') d(day)
    left join lateral (
        select x.* from app.assignments_as_of(v_org, d.day::date, v_employee) x where x.required
    ) f on true
    group by d.day
    order by d.day;
end
$$;
comment on function api.employee_compliance_trend(uuid, date, date) is
$$One employee's compliance at the end of each local day of a range (default the last 30 days).

Rows {day, required, completed, overdue, exempted, compliance_rate}: their required assignments
by the as-of rule of /rpc/compliance_as_of (the state recorded by the end of that day,
completions by their completion time). Employees see their own (employee_id may be omitted);
staff any employee of the organisation they may read. At most 367 days; 404 for an employee you
cannot see. Example: /rpc/employee_compliance_trend?from_day=2025-01-01&to_day=2025-03-31.$$;
grant execute on function api.employee_compliance_trend(uuid, date, date) to authenticated;
