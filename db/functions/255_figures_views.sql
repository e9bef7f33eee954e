-- Compliance figures, part 2: the figures per department, location and module (shared by the api
-- and analytics views), and the api views of DESIGN §7: compliance_matrix, department_compliance,
-- location_compliance, module_compliance, upcoming_deadlines, compliance_trend.
--
-- All views are security_invoker: RLS decides what a caller sees. Organisation-wide figures
-- (department/location/module compliance, trend) are for superadmins, HR admins, managers and
-- viewers; an employee sees no rows there (their own figure: /rpc/compliance_rate,
-- /rpc/employee_detail). compliance_matrix and upcoming_deadlines show an employee their own rows.
-- "Today" is the organisation's (app.today_in(o.timezone): its local date, or the day a daily
-- job or a test pins with app.today). Days overdue: app.days_overdue (db/functions/105).

-- Per department: counts and rate over app.compliance_counters, the department's active
-- employees (app.compliance_headcounts), and its completion target. The target is the HIGHEST completion_target among the
-- department's required rules in effect today (the strictest: a department meets its target
-- only when its rate reaches what its most demanding module asks for); 95.00 (the rules'
-- default) when it has none. modules_below_target counts the rules whose module, within the
-- department, is below that rule's own target.
drop view if exists app.department_figures cascade;
create view app.department_figures with (security_invoker = true) as
    with counts as (
        select c.org_id, c.department_id,
               pg_catalog.sum(c.required_count)::bigint as required,
               pg_catalog.sum(c.completed_count)::bigint as completed,
               pg_catalog.sum(c.in_progress_count)::bigint as in_progress,
               pg_catalog.sum(c.not_started_count)::bigint as not_started,
               pg_catalog.sum(c.overdue_count)::bigint as overdue,
               pg_catalog.sum(c.exempted_count)::bigint as exempted
        from app.compliance_counters c
        where c.department_id is not null
        group by c.org_id, c.department_id
    ),
    heads as (
        select h.org_id, h.department_id, pg_catalog.sum(h.active_employees) as active_employees
        from app.compliance_headcounts h
        where h.department_id is not null
        group by h.org_id, h.department_id
    ),
    rules as (
        select r.org_id, r.department_id,
               pg_catalog.max(r.completion_target) as target,
               pg_catalog.count(*) filter (
                   where app.compliance_rate_of(m.completed, m.required, m.exempted)
                         < r.completion_target) as modules_below_target
        from app.department_training_requirements r
        join app.organizations o on o.id = r.org_id
        left join lateral (
            select pg_catalog.sum(c.completed_count)::bigint as completed,
                   pg_catalog.sum(c.required_count)::bigint as required,
                   pg_catalog.sum(c.exempted_count)::bigint as exempted
            from app.compliance_counters c
            where c.org_id = r.org_id and c.department_id = r.department_id
              and c.module_id = r.module_id
        ) m on true
        where r.required and r.effective_start <= app.today_in(o.timezone)
          and (r.effective_end is null or r.effective_end >= app.today_in(o.timezone))
        group by r.org_id, r.department_id
    )
    select d.org_id, d.id as department_id, d.name as department,
           coalesce(h.active_employees, 0)::integer as active_employees,
           coalesce(c.required, 0) as required_assignments,
           coalesce(c.completed, 0) as completed_assignments,
           coalesce(c.in_progress, 0) as in_progress_assignments,
           coalesce(c.not_started, 0) as not_started_assignments,
           coalesce(c.overdue, 0) as overdue_assignments,
           coalesce(c.exempted, 0) as exempted_assignments,
           x.rate as compliance_rate,
           coalesce(r.target, 95.00) as completion_target,
           x.rate >= coalesce(r.target, 95.00) as target_met,
           coalesce(r.modules_below_target, 0)::integer as modules_below_target
    from app.departments d
    left join counts c on c.org_id = d.org_id and c.department_id = d.id
    left join heads h on h.org_id = d.org_id and h.department_id = d.id
    left join rules r on r.org_id = d.org_id and r.department_id = d.id
    cross join lateral (select app.compliance_rate_of(c.completed, c.required, c.exempted) as rate) x;
comment on view app.department_figures is
    'Compliance per department (counters), with the department''s completion target (highest in-effect rule target, default 95.00) and whether it is met.';

-- Per location: counts and rate (locations have no target).
drop view if exists app.location_figures cascade;
create view app.location_figures with (security_invoker = true) as
    with counts as (
        select c.org_id, c.location_id,
               pg_catalog.sum(c.required_count)::bigint as required,
               pg_catalog.sum(c.completed_count)::bigint as completed,
               pg_catalog.sum(c.in_progress_count)::bigint as in_progress,
               pg_catalog.sum(c.not_started_count)::bigint as not_started,
               pg_catalog.sum(c.overdue_count)::bigint as overdue,
               pg_catalog.sum(c.exempted_count)::bigint as exempted
        from app.compliance_counters c
        where c.location_id is not null
        group by c.org_id, c.location_id
    ),
    heads as (
        select h.org_id, h.location_id, pg_catalog.sum(h.active_employees) as active_employees
        from app.compliance_headcounts h
        where h.location_id is not null
        group by h.org_id, h.location_id
    )
    select l.org_id, l.id as location_id, l.name as location,
           coalesce(h.active_employees, 0)::integer as active_employees,
           coalesce(c.required, 0) as required_assignments,
           coalesce(c.completed, 0) as completed_assignments,
           coalesce(c.in_progress, 0) as in_progress_assignments,
           coalesce(c.not_started, 0) as not_started_assignments,
           coalesce(c.overdue, 0) as overdue_assignments,
           coalesce(c.exempted, 0) as exempted_assignments,
           app.compliance_rate_of(c.completed, c.required, c.exempted) as compliance_rate
    from app.locations l
    left join counts c on c.org_id = l.org_id and c.location_id = l.id
    left join heads h on h.org_id = l.org_id and h.location_id = l.id;
comment on view app.location_figures is 'Compliance per location (counters).';

-- Per module: counts and rate across the organisation.
drop view if exists app.module_figures cascade;
create view app.module_figures with (security_invoker = true) as
    with counts as (
        select c.org_id, c.module_id,
               pg_catalog.sum(c.required_count)::bigint as required,
               pg_catalog.sum(c.completed_count)::bigint as completed,
               pg_catalog.sum(c.in_progress_count)::bigint as in_progress,
               pg_catalog.sum(c.not_started_count)::bigint as not_started,
               pg_catalog.sum(c.overdue_count)::bigint as overdue,
               pg_catalog.sum(c.exempted_count)::bigint as exempted
        from app.compliance_counters c
        group by c.org_id, c.module_id
    )
    select m.org_id, m.id as module_id, m.name as module, m.month_key, m.due_date, m.active,
           coalesce(c.required, 0) as required_assignments,
           coalesce(c.completed, 0) as completed_assignments,
           coalesce(c.in_progress, 0) as in_progress_assignments,
           coalesce(c.not_started, 0) as not_started_assignments,
           coalesce(c.overdue, 0) as overdue_assignments,
           coalesce(c.exempted, 0) as exempted_assignments,
           app.compliance_rate_of(c.completed, c.required, c.exempted) as compliance_rate
    from app.training_modules m
    left join counts c on c.org_id = m.org_id and c.module_id = m.id;
comment on view app.module_figures is 'Compliance per training module (counters).';

-- Open counted assignments (not started / in progress) due between today and today + the
-- organisation's reminder days, per group and module: a sum over the counters' due dates.
drop view if exists app.due_soon_counts cascade;
create view app.due_soon_counts with (security_invoker = true) as
    select c.org_id, c.department_id, c.location_id, c.module_id,
           pg_catalog.sum(c.not_started_count + c.in_progress_count)::bigint as due_soon
    from app.compliance_counters c
    join app.organizations o on o.id = c.org_id
    where c.due_date >= app.today_in(o.timezone)
      and c.due_date <= app.today_in(o.timezone) + o.reminder_days
    group by c.org_id, c.department_id, c.location_id, c.module_id
    having pg_catalog.sum(c.not_started_count + c.in_progress_count) <> 0;
comment on view app.due_soon_counts is
    'Open counted assignments (not started / in progress) due between today and today + the organisation''s reminder days, per group and module.';

-- Whether the signed-in user reads organisation-wide figures (DESIGN §6): not employees.
create or replace function app.reads_org_figures() returns boolean
language sql stable
set search_path = ''
as $$
    select app.current_role_in('superadmin', 'hr_admin', 'manager', 'viewer')
$$;
comment on function app.reads_org_figures() is
    'Whether the signed-in user may read organisation-wide compliance figures (superadmin, hr_admin, manager, viewer).';

grant select on app.department_figures, app.location_figures, app.module_figures,
    app.due_soon_counts to authenticated;
grant execute on function app.reads_org_figures() to authenticated;

-- api.department_compliance ---------------------------------------------------------------------
create view api.department_compliance with (security_invoker = true) as
    select f.org_id, f.department_id, f.department, f.active_employees, f.required_assignments,
           f.completed_assignments, f.in_progress_assignments, f.not_started_assignments,
           f.overdue_assignments, f.exempted_assignments,
           coalesce(s.due_soon, 0)::integer as due_soon_assignments,
           f.compliance_rate, f.completion_target, f.target_met, f.modules_below_target
    from app.department_figures f
    left join (
        select d.org_id, d.department_id, pg_catalog.sum(d.due_soon) as due_soon
        from app.due_soon_counts d
        group by d.org_id, d.department_id
    ) s on s.org_id = f.org_id and s.department_id = f.department_id
    where (select app.reads_org_figures());
comment on view api.department_compliance is
$$Compliance rate of each department, with its completion target and whether it is met.

compliance_rate = completed ÷ (required - exempted) assignments of the department's active
employees × 100, 2 decimals; 100.00 when there are none. Exempted assignments are not counted.
completion_target is the highest target of the department's required rules in effect today
(department_training_requirements; 95.00 when it has none); target_met = rate >= target;
modules_below_target = rules whose module is below its own target in this department.
due_soon_assignments: open ones due within the organisation's reminder days.
Superadmins, HR admins, managers and viewers; employees see no rows.$$;

-- api.location_compliance -----------------------------------------------------------------------
create view api.location_compliance with (security_invoker = true) as
    select f.org_id, f.location_id, f.location, f.active_employees, f.required_assignments,
           f.completed_assignments, f.in_progress_assignments, f.not_started_assignments,
           f.overdue_assignments, f.exempted_assignments,
           coalesce(s.due_soon, 0)::integer as due_soon_assignments, f.compliance_rate
    from app.location_figures f
    left join (
        select d.org_id, d.location_id, pg_catalog.sum(d.due_soon) as due_soon
        from app.due_soon_counts d
        group by d.org_id, d.location_id
    ) s on s.org_id = f.org_id and s.location_id = f.location_id
    where (select app.reads_org_figures());
comment on view api.location_compliance is
$$Compliance rate of each location (site), same definition as department_compliance.

Superadmins, HR admins, managers and viewers; employees see no rows.$$;

-- api.module_compliance -------------------------------------------------------------------------
create view api.module_compliance with (security_invoker = true) as
    select f.org_id, f.module_id, f.module, f.month_key, f.due_date, f.active,
           f.required_assignments, f.completed_assignments, f.in_progress_assignments,
           f.not_started_assignments, f.overdue_assignments, f.exempted_assignments,
           f.compliance_rate
    from app.module_figures f
    where (select app.reads_org_figures());
comment on view api.module_compliance is
$$Compliance rate of each training module across the organisation (active employees, required
assignments, exempted not counted). Superadmins, HR admins, managers and viewers.$$;

-- api.compliance_matrix -------------------------------------------------------------------------
create view api.compliance_matrix with (security_invoker = true) as
    select a.org_id, a.id as assignment_id, a.employee_id, e.full_name as employee_name,
           e.email as employee_email, e.job_title, e.status as employee_status,
           e.department_id, d.name as department, e.location_id, l.name as location,
           a.module_id, m.name as module, m.month_key, a.due_date, a.status,
           case
               when a.status in ('completed', 'exempted', 'overdue') then a.status::text
               when not a.is_required then 'not_required'
               when a.due_date between app.today_in(o.timezone) and app.today_in(o.timezone) + o.reminder_days then 'due_soon'
               else a.status::text
           end as display_status,
           a.is_required, a.completion_date, a.score, a.attempts, a.is_late,
           case when a.status = 'overdue' then app.days_overdue(a.due_date, app.today_in(o.timezone))
                else 0 end as days_overdue,
           app.counts_toward_compliance(a.is_required, e.status) as counts_toward_rate
    from app.training_assignments a
    join app.organizations o on o.id = a.org_id
    join app.employees e on e.org_id = a.org_id and e.id = a.employee_id
    join app.training_modules m on m.org_id = a.org_id and m.id = a.module_id
    left join app.departments d on d.org_id = e.org_id and d.id = e.department_id
    left join app.locations l on l.org_id = e.org_id and l.id = e.location_id;
comment on view api.compliance_matrix is
$$The employee × module grid: one row per assignment, with the employee's department and location.

days_overdue = for an overdue assignment, the local days from its due date to the organisation's
today (app.days_overdue; computed on every read), else 0. display_status is the front end's cell state:
completed, exempted, overdue, not_required (optional and open), due_soon (open, due within the
organisation's reminder days), in_progress or not_started. counts_toward_rate: required and the
employee is active. Page it: ?department_id=eq.<id>&order=employee_name,due_date&limit=200.
Employees see their own row set only.$$;

-- api.upcoming_deadlines ------------------------------------------------------------------------
create view api.upcoming_deadlines with (security_invoker = true) as
    select a.org_id, a.id as assignment_id, a.employee_id, e.full_name as employee_name,
           e.department_id, d.name as department, e.location_id, l.name as location,
           a.module_id, m.name as module, m.month_key, a.due_date,
           a.due_date - app.today_in(o.timezone) as days_left, a.status, a.is_required,
           coalesce(r.priority, 'standard') as priority,
           coalesce(r.reminder_days_before, o.reminder_days) as reminder_days,
           a.due_date - app.today_in(o.timezone) <= coalesce(r.reminder_days_before, o.reminder_days) as due_soon
    from app.training_assignments a
    join app.organizations o on o.id = a.org_id
    join app.employees e on e.org_id = a.org_id and e.id = a.employee_id
    join app.training_modules m on m.org_id = a.org_id and m.id = a.module_id
    left join app.departments d on d.org_id = e.org_id and d.id = e.department_id
    left join app.locations l on l.org_id = e.org_id and l.id = e.location_id
    left join app.department_training_requirements r
      on r.org_id = a.org_id and r.department_id = e.department_id and r.module_id = a.module_id
    where a.status in ('not_started', 'in_progress', 'overdue') and e.status = 'active';
comment on view api.upcoming_deadlines is
$$Open assignments (not completed, not exempted) of active employees, with the days left.

days_left = due date - today (negative: past due). Due within N days: ?days_left=lte.N (add
&days_left=gte.0 to leave out the past-due ones); soonest first: &order=due_date.
priority and reminder_days come from the department's rule for the module (else standard and
the organisation's reminder days); due_soon = days_left <= reminder_days.
Employees see their own.$$;

-- api.compliance_trend --------------------------------------------------------------------------
-- The figures per day and scope (organization: the org-wide row; department, location: the sums
-- of their groups): the cached figures of ended days (app.compliance_snapshots, computed from the
-- history) and, as the last point, today's live figures, so the trend ends on the headline.
-- A view (not a CTE) so that filters reach the snapshot scans.
drop view if exists app.snapshot_scopes cascade;
create view app.snapshot_scopes with (security_invoker = true) as
    with days as (
        select s.org_id, s.snapshot_date, s.department_id, s.location_id, s.active_employees::bigint,
               s.required_assignments::bigint, s.completed_assignments::bigint,
               s.overdue_assignments::bigint, s.exempted_assignments::bigint
        from app.compliance_snapshots s
        where s.snapshot_date < app.org_today(s.org_id)
        union all
        select o.id, app.org_today(o.id), g.department_id, g.location_id, g.active_employees,
               g.required, g.completed, g.overdue, g.exempted
        from app.organizations o
        cross join lateral app.compliance_groups(o.id, app.org_today(o.id), 'live') g
        where (select app.reads_org_figures())
    )
    select s.org_id, s.snapshot_date, 'organization'::text as scope,
           null::uuid as department_id, null::uuid as location_id,
           s.active_employees, s.required_assignments, s.completed_assignments,
           s.overdue_assignments, s.exempted_assignments
    from days s
    where s.department_id is null and s.location_id is null
    union all
    select s.org_id, s.snapshot_date, 'department', s.department_id, null,
           pg_catalog.sum(s.active_employees)::bigint, pg_catalog.sum(s.required_assignments)::bigint,
           pg_catalog.sum(s.completed_assignments)::bigint, pg_catalog.sum(s.overdue_assignments)::bigint,
           pg_catalog.sum(s.exempted_assignments)::bigint
    from days s
    where s.department_id is not null
    group by s.org_id, s.snapshot_date, s.department_id
    union all
    select s.org_id, s.snapshot_date, 'location', null, s.location_id,
           pg_catalog.sum(s.active_employees)::bigint, pg_catalog.sum(s.required_assignments)::bigint,
           pg_catalog.sum(s.completed_assignments)::bigint, pg_catalog.sum(s.overdue_assignments)::bigint,
           pg_catalog.sum(s.exempted_assignments)::bigint
    from days s
    where s.location_id is not null
    group by s.org_id, s.snapshot_date, s.location_id;
comment on view app.snapshot_scopes is
    'Figures per organisation, department and location and day: the cached figures of ended days, and today''s live figures as the last point.';
grant select on app.snapshot_scopes to authenticated;

create view api.compliance_trend with (security_invoker = true) as
    with periods as (
        select 'day'::text as granularity, g.snapshot_date as period, g.*
        from app.snapshot_scopes g
        union all
        (select distinct on (g.org_id, g.scope, g.department_id, g.location_id,
                             pg_catalog.date_trunc('month', g.snapshot_date))
                'month', pg_catalog.date_trunc('month', g.snapshot_date::timestamp)::date, g.*
         from app.snapshot_scopes g
         order by g.org_id, g.scope, g.department_id, g.location_id,
                  pg_catalog.date_trunc('month', g.snapshot_date), g.snapshot_date desc)
    )
    select p.org_id, p.granularity, p.period, p.snapshot_date, p.scope, p.department_id,
           d.name as department, p.location_id, l.name as location, p.active_employees,
           p.required_assignments, p.completed_assignments, p.overdue_assignments,
           p.exempted_assignments,
           app.compliance_rate_of(p.completed_assignments, p.required_assignments,
                                  p.exempted_assignments) as compliance_rate
    from periods p
    left join app.departments d on d.org_id = p.org_id and d.id = p.department_id
    left join app.locations l on l.org_id = p.org_id and l.id = p.location_id;
comment on view api.compliance_trend is
$$Compliance over time, from the daily snapshots: per organisation, department or location.

granularity 'day' gives every snapshot; 'month' gives each month's last snapshot (period = the
first day of the month, snapshot_date = the day the figures are from). scope is organization,
department or location. Example: ?scope=eq.organization&granularity=eq.month&order=period.
Superadmins, HR admins, managers and viewers.$$;

grant select on api.department_compliance, api.location_compliance, api.module_compliance,
    api.compliance_matrix, api.upcoming_deadlines, api.compliance_trend to authenticated;

-- The trend's points -----------------------------------------------------------------------------
-- Every trend (the PDF report's, the dashboard's trendsData, analytics.compliance_by_month) reads
-- the figures of a day from the source of /rpc/compliance_as_of: an ended local day from its
-- cached answer when one was written after the day ended, else computed from the history; today
-- from the live counters (the headline). So a trend has a point for every day the organisation
-- has records of, whether or not a daily job ran, and its last point is the headline.

-- The role a request runs as, seen from inside a SECURITY DEFINER function (where current_user
-- is the function's owner): the role set by SET ROLE (PostgREST's `authenticated`), else the
-- login (an analyst connects as itself).
create or replace function app.invoking_role() returns name
language sql stable
set search_path = ''
as $$
    select coalesce(nullif(pg_catalog.current_setting('role'), 'none'), session_user)::name
$$;
comment on function app.invoking_role() is
    'The role a request runs as (SET ROLE, else the login), also inside SECURITY DEFINER functions.';
grant execute on function app.invoking_role() to authenticated, analyst;

-- The local days a trend shows, from the organisation's first local day to its today:
-- p_granularity 'month': the last day of each local month (today for the current month), the
-- last p_months months (all when null); 'auto': every day when the records span at most 62 days,
-- else as 'month'. period: the month's first day, or the day.
create or replace function app.trend_days(p_org_id uuid, p_granularity text, p_months integer default 12)
returns table (granularity text, period date, day date)
language sql stable security definer
set search_path = ''
as $$
    with bounds as (
        select app.org_today(o.id) as today, app.local_date(o.id, o.created_at) as first_day
        from app.organizations o
        where o.id = p_org_id
          -- the caller's own organisation, or one bound to the calling analyst
          and (o.id = app.current_org_id()
               or exists (select from app.analyst_organizations b
                          where b.org_id = o.id and b.role_name = app.invoking_role()))
    ),
    kind as (
        select b.*, case when p_granularity = 'auto' and b.today operator(pg_catalog.-) b.first_day <= 62
                         then 'day' else 'month' end as granularity
        from bounds b
    )
    select k.granularity, d.day::date, d.day::date
    from kind k
    cross join lateral pg_catalog.generate_series(k.first_day, k.today, interval '1 day') d(day)
    where k.granularity = 'day'
    union all
    select k.granularity, m.month::date,
           least((m.month operator(pg_catalog.+) interval '1 month -1 day')::date, k.today)
    from kind k
    cross join lateral pg_catalog.generate_series(
        greatest(pg_catalog.date_trunc('month', k.first_day::timestamp),
                 case when p_months is not null
                      then pg_catalog.date_trunc('month', k.today::timestamp)
                           operator(pg_catalog.-) pg_catalog.make_interval(months => p_months - 1) end),
        pg_catalog.date_trunc('month', k.today::timestamp), interval '1 month') m(month)
    where k.granularity = 'month'
    order by 2
$$;
comment on function app.trend_days(uuid, text, integer) is
    'The local days of a trend (first local day to today): month ends (today for this month) of the last p_months months, or every day (''auto'' when the records span at most 62 days). None for an organisation that is not the caller''s (or bound to the calling analyst).';
grant execute on function app.trend_days(uuid, text, integer) to authenticated, analyst;

-- Whether a group row (department × location; both null: the org-wide row) belongs to the
-- selection: the org-wide row when neither is chosen, else the groups of the chosen department
-- and/or location.
create or replace function app.in_selection(p_department_id uuid, p_location_id uuid,
                                            p_chosen_department uuid, p_chosen_location uuid)
returns boolean
language sql immutable parallel safe
as $$
    select case when p_chosen_department is null and p_chosen_location is null
                then p_department_id is null and p_location_id is null
                else (p_department_id is not null or p_location_id is not null)
                     and (p_chosen_department is null or p_department_id operator(pg_catalog.=) p_chosen_department)
                     and (p_chosen_location is null or p_location_id operator(pg_catalog.=) p_chosen_location) end
$$;
comment on function app.in_selection(uuid, uuid, uuid, uuid) is
    'Whether a figures group row (department, location) is in the selection (the org-wide row when none is chosen).';
grant execute on function app.in_selection(uuid, uuid, uuid, uuid) to authenticated, analyst;

-- The compliance figures at the end of each of some local days, by the as-of rule, for the
-- organisation or a department and/or location (that day's), from the source compliance_as_of
-- answers from (source): 'live' today, 'snapshot' an ended day with a cache row written after
-- the day ended, else 'history' (computed). Cached days are read in one scan. Security definer
-- because the history is read with its index whatever the caller's policies; the caller is
-- checked instead: a signed-in user who reads organisation figures, of that organisation, or an
-- analyst bound to it.
drop function if exists app.figures_of_day(uuid, date, uuid, uuid);
create or replace function app.figures_of_days(p_org_id uuid, p_days date[], p_department_id uuid default null,
                                               p_location_id uuid default null)
returns table (day date, source text, active_employees bigint, required bigint, completed bigint,
               overdue bigint, exempted bigint, compliance_rate numeric)
language plpgsql stable security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
    v_today date := app.org_today(p_org_id);
begin
    if not ((app.current_user_id() is not null and p_org_id is not distinct from app.current_org_id()
             and app.reads_org_figures())
            or exists (select from app.analyst_organizations b
                       where b.org_id = p_org_id and b.role_name = app.invoking_role())) then
        raise exception 'you may not read the figures of organisation %', p_org_id
            using errcode = '42501',
                  detail = 'Staff read their own organisation''s figures, analysts those of the organisations bound to them.',
                  hint = 'Ask for your own organisation.';
    end if;
    return query
    with days as (
        select distinct d.day
        from pg_catalog.unnest(p_days) d(day)
        where d.day is not null
    ),
    sourced as (
        select d.day,
               case when d.day >= v_today then 'live'
                    when exists (select from app.compliance_snapshots s
                                 where s.org_id = p_org_id and s.snapshot_date = d.day
                                   and s.department_id is null and s.location_id is null
                                   and s.created_at >= app.end_of_local_day(p_org_id, d.day)) then 'snapshot'
                    else 'history' end as source
        from days d
    ),
    groups as (
        select x.day, s.active_employees::bigint, s.required_assignments::bigint as required,
               s.completed_assignments::bigint as completed, s.overdue_assignments::bigint as overdue,
               s.exempted_assignments::bigint as exempted
        from sourced x
        join app.compliance_snapshots s on s.org_id = p_org_id and s.snapshot_date = x.day
        where x.source = 'snapshot'
          and app.in_selection(s.department_id, s.location_id, p_department_id, p_location_id)
        union all
        select x.day, g.active_employees, g.required, g.completed, g.overdue, g.exempted
        from sourced x
        cross join lateral app.compliance_groups(p_org_id, x.day, x.source) g
        where x.source <> 'snapshot'
          and app.in_selection(g.department_id, g.location_id, p_department_id, p_location_id)
    ),
    sums as (
        select x.day, x.source,
               coalesce(pg_catalog.sum(g.active_employees), 0)::bigint as active_employees,
               coalesce(pg_catalog.sum(g.required), 0)::bigint as required,
               coalesce(pg_catalog.sum(g.completed), 0)::bigint as completed,
               coalesce(pg_catalog.sum(g.overdue), 0)::bigint as overdue,
               coalesce(pg_catalog.sum(g.exempted), 0)::bigint as exempted
        from sourced x
        left join groups g on g.day = x.day
        group by x.day, x.source
    )
    select s.day, s.source, s.active_employees, s.required, s.completed, s.overdue, s.exempted,
           app.compliance_rate_of(s.completed, s.required, s.exempted)
    from sums s
    order by s.day;
end
$$;
comment on function app.figures_of_days(uuid, date[], uuid, uuid) is
    'The figures at the end of each of some local days (organisation, or a department and/or location), from compliance_as_of''s source: live today, else the valid cache, else the history. Staff of the organisation or its bound analysts.';
grant execute on function app.figures_of_days(uuid, date[], uuid, uuid) to authenticated, analyst;
