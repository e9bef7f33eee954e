-- The compliance report: the figures the PDF export prints, as one JSON document.
-- It summarises exactly the rows of api.compliance_export that match the filters (so a PDF and
-- a CSV with the same filters agree), with the rate defined once by app.counts_toward_compliance
-- and app.compliance_rate_of (db/functions/250_figures_counters.sql). Security invoker: row-level
-- security decides what it counts.

create or replace function api.compliance_report(
    department_id uuid default null,
    location_id uuid default null,
    status app.assignment_status default null,
    due_from date default null,
    due_to date default null,
    overdue_limit integer default 500
) returns jsonb
language plpgsql stable
set search_path = ''
as $$
#variable_conflict use_column
declare
    v_org record;
    v_default_target constant numeric := 95.00;
    v_today date;
    v_result jsonb;
    v_trend jsonb;
    v_trend_scope text;
    v_employee uuid := app.current_employee_id();
begin
    if overdue_limit is null or overdue_limit not between 0 and 100000 then
        raise exception 'overdue_limit must be between 0 and 100000, not %', overdue_limit
            using errcode = '22023', hint = 'List at most 100000 overdue assignments.';
    end if;
    if due_from is not null and due_to is not null and due_from > due_to then
        raise exception 'due_from (%) is after due_to (%)', due_from, due_to
            using errcode = '22023', hint = 'Give the earlier date as due_from.';
    end if;
    select o.id, o.name, o.timezone into v_org
    from app.organizations o
    where o.id = app.current_org_id();
    if not found then
        raise exception 'only a signed-in, active user has a compliance report'
            using errcode = '42501', hint = 'Sign in again.';
    end if;
    perform app.check_department_location(v_org.id, compliance_report.department_id,
                                          compliance_report.location_id);
    v_today := app.org_today(v_org.id);

    -- The trend: the figures at the end of each day of app.trend_days, from the source of
    -- compliance_as_of (its last point is today's live figure), for the report's department and/or
    -- location or the organisation; for a caller who reads only their own figures, their own
    -- (employee_compliance_trend).
    if app.reads_org_figures() then
        v_trend_scope := case when compliance_report.department_id is not null
                                   and compliance_report.location_id is not null then 'department_location'
                              when compliance_report.department_id is not null then 'department'
                              when compliance_report.location_id is not null then 'location'
                              else 'organization' end;
        select pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                   'date', f.day, 'rate', f.compliance_rate, 'source', f.source,
                   'required', f.required, 'completed', f.completed, 'overdue', f.overdue,
                   'exempted', f.exempted) order by f.day)
        into v_trend
        from app.figures_of_days(v_org.id, array(select t.day from app.trend_days(v_org.id, 'auto') t),
                                 compliance_report.department_id, compliance_report.location_id) f;
    elsif v_employee is not null then
        v_trend_scope := 'employee';
        select pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                   'date', t.day, 'rate', f.compliance_rate,
                   'source', case when t.day >= v_today then 'live' else 'history' end,
                   'required', f.required, 'completed', f.completed, 'overdue', f.overdue,
                   'exempted', f.exempted) order by t.day)
        into v_trend
        from app.trend_days(v_org.id, 'auto') t
        cross join lateral api.employee_compliance_trend(employee_id => v_employee, from_day => t.day,
                                                         to_day => t.day) f;
    end if;
    v_trend := coalesce(v_trend, '[]');

    with scope as (
        select x.*, app.counts_toward_compliance(x.is_required, x.employee_status) as counts
        from api.compliance_export x
        where (compliance_report.department_id is null
               or x.department_id = compliance_report.department_id)
          and (compliance_report.location_id is null
               or x.location_id = compliance_report.location_id)
          and (compliance_report.status is null or x.status = compliance_report.status)
          and (due_from is null or x.due_date >= due_from)
          and (due_to is null or x.due_date <= due_to)
    ),
    counted as (select * from scope where counts),
    dept_targets as (
        select r.department_id, pg_catalog.max(r.completion_target) as target
        from app.department_training_requirements r
        where r.org_id = v_org.id and r.required
          and r.effective_start <= v_today
          and (r.effective_end is null or r.effective_end >= v_today)
        group by r.department_id
    ),
    groups as (
        select grouping(c.department_id) as g_dept,
               grouping(c.location_id) as g_loc,
               c.department_id, c.department, c.location_id, c.location,
               pg_catalog.count(*) as required,
               pg_catalog.count(*) filter (where c.status = 'completed') as completed,
               pg_catalog.count(*) filter (where c.status = 'in_progress') as in_progress,
               pg_catalog.count(*) filter (where c.status = 'not_started') as not_started,
               pg_catalog.count(*) filter (where c.status = 'overdue') as overdue,
               pg_catalog.count(*) filter (where c.status = 'exempted') as exempted,
               pg_catalog.count(distinct c.employee_id) as employees
        from counted c
        group by grouping sets ((), (c.department_id, c.department), (c.location_id, c.location))
    ),
    figures as (
        select g.*, app.compliance_rate_of(g.completed, g.required, g.exempted) as rate,
               case when g.g_dept = 0 then coalesce(t.target, v_default_target)
                    else v_default_target end as target
        from groups g
        left join dept_targets t on g.g_dept = 0 and t.department_id is not distinct from g.department_id
    )
    select pg_catalog.jsonb_build_object(
        'organization', pg_catalog.jsonb_build_object('id', v_org.id, 'name', v_org.name,
                                                      'timezone', v_org.timezone),
        'generated_at', pg_catalog.now(),
        'today', v_today,
        'filters', pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
            'department_id', compliance_report.department_id,
            'location_id', compliance_report.location_id,
            'status', compliance_report.status, 'due_from', due_from, 'due_to', due_to)),
        'summary', (
            select pg_catalog.jsonb_build_object(
                'assignments', (select pg_catalog.count(*) from scope),
                'employees', coalesce(f.employees, 0), 'required', coalesce(f.required, 0),
                'completed', coalesce(f.completed, 0), 'in_progress', coalesce(f.in_progress, 0),
                'not_started', coalesce(f.not_started, 0), 'overdue', coalesce(f.overdue, 0),
                'exempted', coalesce(f.exempted, 0),
                'rate', coalesce(f.rate, 100.00), 'target', v_default_target,
                'target_met', coalesce(f.rate, 100.00) >= v_default_target)
            from (select 1) one
            left join figures f on f.g_dept = 1 and f.g_loc = 1),
        'departments', coalesce((
            select pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                       'id', f.department_id, 'name', coalesce(f.department, '(no department)'),
                       'employees', f.employees, 'required', f.required,
                       'completed', f.completed, 'overdue', f.overdue, 'exempted', f.exempted,
                       'rate', f.rate, 'target', f.target, 'target_met', f.rate >= f.target)
                   order by f.department nulls last)
            from figures f where f.g_dept = 0), '[]'),
        'locations', coalesce((
            select pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                       'id', f.location_id, 'name', coalesce(f.location, '(no location)'),
                       'employees', f.employees, 'required', f.required,
                       'completed', f.completed, 'overdue', f.overdue, 'exempted', f.exempted,
                       'rate', f.rate, 'target', f.target, 'target_met', f.rate >= f.target)
                   order by f.location nulls last)
            from figures f where f.g_loc = 0), '[]'),
        'overdue_total', (select pg_catalog.count(*) from counted where status = 'overdue'),
        'overdue', coalesce((
            select pg_catalog.jsonb_agg(pg_catalog.to_jsonb(o) order by o.days_overdue desc,
                                        o.employee_name, o.module)
            from (select c.assignment_id, c.employee_id, c.employee_name, c.department,
                         c.location, c.module, c.due_date, c.days_overdue
                  from counted c
                  where c.status = 'overdue'
                  order by c.days_overdue desc, c.employee_name, c.module
                  limit overdue_limit) o), '[]'),
        'trend', v_trend,
        'trend_scope', v_trend_scope,
        'trend_granularity', (select t.granularity from app.trend_days(v_org.id, 'auto') t limit 1))
    into v_result;
    return v_result;
end
$$;
comment on function api.compliance_report(uuid, uuid, app.assignment_status, date, date, integer) is
$$The compliance report: summary figures, compliance by department and by location against
their targets, the overdue assignments and the organisation's compliance trend.

It summarises the rows of compliance_export that match the filters (department, location,
status, due dates from/to), counting as compliance does: required assignments of active
employees; rate = completed ÷ (counted − exempted) × 100, 100.00 when none. A department's
target is the highest completion target of its rules in effect (95.00 when it has none);
locations and the organisation are measured against 95.00. A department or location that is not
in your organisation answers 404 (as /rpc/compliance_rate does). overdue lists at most overdue_limit
assignments (overdue_total counts them all).
trend: [{date, rate, source, required, completed, overdue, exempted}] at the end of each local
day shown (trend_granularity 'day': every day when the organisation's records span at most 62
days; 'month': the last day of each of the last 12 months), by the as-of rule of
/rpc/compliance_as_of (source live, snapshot or history); the last point is today's live figure.
trend_scope: organization, department, location or department_location (the report's
department/location filters; status and due dates do not apply to it), or employee for a caller
who reads only their own figures (their employee_compliance_trend).$$;
grant execute on function api.compliance_report(uuid, uuid, app.assignment_status, date, date, integer)
    to authenticated;
