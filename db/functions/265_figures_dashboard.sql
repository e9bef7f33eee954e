-- Compliance figures, part 4: api.dashboard() and api.employee_detail(employee_id) (DESIGN §7).
--
-- The dashboard answers in one call what the front end's landing page shows (the seed's
-- DashboardData), in a size that does not grow with the number of employees: the matrix is
-- department × module aggregates (per-employee cells are paged from /compliance_matrix).

create or replace function app.forbid_employees(p_what text) returns void
language plpgsql stable
set search_path = ''
as $$
begin
    if not app.reads_org_figures() then
        raise exception '% shows organisation-wide figures, which your role may not read', p_what
            using errcode = '42501',
                  detail = pg_catalog.format('Your role is %s.',
                                             coalesce(app.current_app_role()::text, 'none')),
                  hint = 'Use /rpc/employee_detail with your employee id, or /rpc/compliance_rate, for your own figures.';
    end if;
end
$$;
comment on function app.forbid_employees(text) is
    'Refuses (42501) callers who may not read organisation-wide figures.';
grant execute on function app.forbid_employees(text) to authenticated;

create or replace function api.dashboard() returns jsonb
language plpgsql stable
set search_path = ''
as $$
declare
    v_org uuid := app.current_org_id();
    v_result jsonb;
begin
    perform app.forbid_employees('the dashboard');
    with counters as materialized (
        select c.department_id, c.location_id, c.module_id, c.required_count, c.completed_count,
               c.in_progress_count, c.not_started_count, c.overdue_count, c.exempted_count
        from app.compliance_counters c
        where c.org_id = v_org
    ),
    totals as (
        select coalesce(pg_catalog.sum(c.required_count), 0)::bigint as required,
               coalesce(pg_catalog.sum(c.completed_count), 0)::bigint as completed,
               coalesce(pg_catalog.sum(c.overdue_count), 0)::bigint as overdue,
               coalesce(pg_catalog.sum(c.exempted_count), 0)::bigint as exempted
        from counters c
    ),
    due_soon as materialized (
        select d.department_id, d.location_id, d.due_soon
        from app.due_soon_counts d
        where d.org_id = v_org
    ),
    depts as (
        select f.*, coalesce(s.n, 0) as due_soon
        from app.department_figures f
        left join (select s.department_id, pg_catalog.sum(s.due_soon) as n
                   from due_soon s group by s.department_id) s
          on s.department_id = f.department_id
        where f.org_id = v_org
    ),
    locs as (
        select f.*, coalesce(s.n, 0) as due_soon
        from app.location_figures f
        left join (select s.location_id, pg_catalog.sum(s.due_soon) as n
                   from due_soon s group by s.location_id) s
          on s.location_id = f.location_id
        where f.org_id = v_org
    ),
    modules as (
        select m.id, m.name, m.month_key, m.due_date, m.active
        from app.training_modules m
        where m.org_id = v_org
          and (m.active or exists (select from counters c where c.module_id = m.id))
    ),
    cells as (
        select c.department_id, c.module_id,
               pg_catalog.sum(c.required_count)::bigint as required,
               pg_catalog.sum(c.completed_count)::bigint as completed,
               pg_catalog.sum(c.in_progress_count)::bigint as in_progress,
               pg_catalog.sum(c.not_started_count)::bigint as not_started,
               pg_catalog.sum(c.overdue_count)::bigint as overdue,
               pg_catalog.sum(c.exempted_count)::bigint as exempted
        from counters c
        group by c.department_id, c.module_id
        having pg_catalog.sum(c.required_count) <> 0
    ),
    -- The last 12 local months, each at its last day (this month: today, the live figure), from
    -- the source of compliance_as_of (app.figures_of_days): every month has its point.
    trend_days as materialized (
        select t.period, t.day from app.trend_days(v_org, 'month', 12) t
    ),
    trend as (
        select t.period, t.day as snapshot_date, f.source, f.compliance_rate,
               case when f.required - f.exempted > 0
                    then pg_catalog.round(100.0 * f.overdue / (f.required - f.exempted), 2)
                    else 0.00 end as overdue_rate
        from trend_days t
        join app.figures_of_days(v_org, (select pg_catalog.array_agg(d.day) from trend_days d)) f
          on f.day = t.day
    ),
    syncs as (
        select r.source, pg_catalog.max(r.completed_at) filter (where r.status in ('completed', 'partial')) as last_success,
               (pg_catalog.array_agg(r.status::text order by r.started_at desc))[1] as last_status,
               pg_catalog.max(r.started_at) as last_started
        from app.sync_runs r
        where r.org_id = v_org
        group by r.source
    ),
    summary as (
        select (select coalesce(pg_catalog.sum(h.active_employees), 0) from app.compliance_headcounts h
                where h.org_id = v_org) as total_employees,
               (select pg_catalog.count(*) from app.training_modules m
                where m.org_id = v_org and m.active) as total_modules,
               app.compliance_rate_of(t.completed, t.required, t.exempted) as rate,
               t.required, t.completed, t.overdue, t.exempted,
               (select coalesce(pg_catalog.sum(s.due_soon), 0) from due_soon s) as due_soon
        from totals t
    )
    select pg_catalog.jsonb_build_object(
        'matrix', pg_catalog.jsonb_build_object(
            'trainings', coalesce((
                select pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                           'id', m.id, 'name', m.name, 'monthKey', m.month_key,
                           'dueDate', m.due_date, 'active', m.active)
                       order by m.due_date nulls last, m.month_key, m.name)
                from modules m), '[]'),
            'cells', coalesce((
                select pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                           'departmentId', c.department_id, 'moduleId', c.module_id,
                           'required', c.required, 'completed', c.completed,
                           'inProgress', c.in_progress, 'notStarted', c.not_started,
                           'overdue', c.overdue, 'exempted', c.exempted,
                           'complianceRate', app.compliance_rate_of(c.completed, c.required, c.exempted))
                       order by c.department_id, c.module_id)
                from cells c), '[]')),
        'departments', coalesce((
            select pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                       'departmentId', d.department_id, 'department', d.department,
                       'employeeCount', d.active_employees, 'complianceRate', d.compliance_rate,
                       'completionTarget', d.completion_target, 'targetMet', d.target_met,
                       'modulesBelowTarget', d.modules_below_target,
                       'requiredCount', d.required_assignments,
                       'completedCount', d.completed_assignments,
                       'overdueCount', d.overdue_assignments,
                       'exemptedCount', d.exempted_assignments, 'dueSoonCount', d.due_soon)
                   order by d.department)
            from depts d), '[]'),
        'locations', coalesce((
            select pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                       'locationId', l.location_id, 'location', l.location,
                       'employeeCount', l.active_employees, 'complianceRate', l.compliance_rate,
                       'requiredCount', l.required_assignments,
                       'completedCount', l.completed_assignments,
                       'overdueCount', l.overdue_assignments,
                       'exemptedCount', l.exempted_assignments, 'dueSoonCount', l.due_soon)
                   order by l.location)
            from locs l), '[]'),
        'overallStats', (
            select pg_catalog.jsonb_build_object(
                       'totalCompletions', s.completed, 'overdueTrainings', s.overdue,
                       'dueSoonTrainings', s.due_soon, 'exemptedTrainings', s.exempted,
                       'requiredTrainings', s.required, 'complianceRate', s.rate,
                       'trendsData', coalesce((
                           select pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                                      'month', pg_catalog.to_char(t.period, 'YYYY-MM'),
                                      'snapshotDate', t.snapshot_date,
                                      'source', t.source,
                                      'completionRate', t.compliance_rate,
                                      'overdueRate', t.overdue_rate)
                                  order by t.period)
                           from trend t), '[]'))
            from summary s),
        'lastSync', (select pg_catalog.max(y.last_success) from syncs y),
        'syncSources', coalesce((
            select pg_catalog.jsonb_object_agg(y.source, pg_catalog.jsonb_build_object(
                       'lastSuccessAt', y.last_success, 'lastStartedAt', y.last_started,
                       'lastStatus', y.last_status))
            from syncs y), '{}'),
        'summary', (
            select pg_catalog.jsonb_build_object(
                       'totalEmployees', s.total_employees, 'totalModules', s.total_modules,
                       'overallComplianceRate', s.rate, 'overdueCount', s.overdue,
                       'dueSoonCount', s.due_soon, 'exemptedCount', s.exempted,
                       'completedCount', s.completed, 'requiredCount', s.required)
            from summary s),
        'asOf', pg_catalog.now(),
        'today', app.org_today(v_org),
        'billing', app.dashboard_billing(v_org))
    into v_result;
    return v_result;
end
$$;
comment on function api.dashboard() is
$$The compliance dashboard of your organisation in one call (the front end's DashboardData).

{matrix: {trainings: [{id, name, monthKey, dueDate, active}], cells: [{departmentId, moduleId,
required, completed, inProgress, notStarted, overdue, exempted, complianceRate}]},
departments: [{departmentId, department, employeeCount, complianceRate, completionTarget,
targetMet, modulesBelowTarget, requiredCount, completedCount, overdueCount, exemptedCount,
dueSoonCount}], locations: [...], overallStats: {totalCompletions, overdueTrainings,
dueSoonTrainings, exemptedTrainings, requiredTrainings, complianceRate, trendsData: [{month,
snapshotDate, source, completionRate, overdueRate}] (the last 12 local months at their last day,
this month today's live figure; source as in /rpc/compliance_as_of: live, snapshot or history)},
lastSync (latest successful sync of any source, or null), syncSources: {zenefits|classroom|...:
{lastSuccessAt, lastStartedAt, lastStatus}}, summary: {totalEmployees, totalModules,
overallComplianceRate, overdueCount, dueSoonCount, exemptedCount, completedCount, requiredCount},
asOf, today}.
The matrix is department × module aggregates, so the answer stays small for any head count; the
per-employee grid is /compliance_matrix (paged). Figures count required assignments of active
employees; exempted ones are not counted. Superadmins, HR admins, managers and viewers (403
for employees: use /rpc/employee_detail).$$;
grant execute on function api.dashboard() to authenticated;

-- An instant as the organisation's local date and time with its zone (text for people).
create or replace function app.local_timestamp_text(p_org_id uuid, p_at timestamptz) returns text
language sql stable
set search_path = ''
as $$
    select pg_catalog.to_char(pg_catalog.timezone(app.org_timezone(p_org_id), p_at), 'YYYY-MM-DD HH24:MI')
           || ' ' || app.org_timezone(p_org_id)
$$;
comment on function app.local_timestamp_text(uuid, timestamptz) is
    'An instant as the organisation''s local date and time, with the zone named (for text people read).';
grant execute on function app.local_timestamp_text(uuid, timestamptz) to authenticated;

create or replace function api.employee_detail(employee_id uuid) returns jsonb
language plpgsql stable
set search_path = ''
as $$
declare
    v_org uuid := app.current_org_id();
    v_employee_id uuid := employee_detail.employee_id;
    v_today date := app.org_today(v_org);
    v_employee jsonb;
    v_result jsonb;
begin
    if v_employee_id is null then
        raise exception 'employee_id is required'
            using errcode = '22023', hint = 'Call /rpc/employee_detail?employee_id=<id>.';
    end if;
    select pg_catalog.jsonb_build_object(
               'id', e.id, 'name', e.full_name, 'firstName', e.first_name,
               'lastName', e.last_name, 'email', e.email, 'departmentId', e.department_id,
               'department', d.name, 'locationId', e.location_id, 'location', l.name,
               'position', e.job_title, 'hireDate', e.start_date, 'status', e.status,
               'active', e.status = 'active', 'managerId', e.manager_id,
               'lastSyncAt', e.last_synced_at, 'syncStatus', e.sync_status)
    into v_employee
    from app.employees e
    left join app.departments d on d.org_id = e.org_id and d.id = e.department_id
    left join app.locations l on l.org_id = e.org_id and l.id = e.location_id
    where e.org_id = v_org and e.id = v_employee_id;
    if v_employee is null then
        raise exception 'employee % not found', v_employee_id
            using errcode = 'PT404',
                  detail = pg_catalog.format('No employee with id %s that you may see in your organisation.',
                                             v_employee_id),
                  hint = 'Check the id; employees see only their own record.';
    end if;

    with assignments as (
        select a.id, a.module_id, m.name as module, m.month_key, a.due_date, a.grace_days, a.status,
               a.is_required, a.completion_date, a.score, a.attempts, a.is_late,
               a.exemption_reason, a.exempted_at, a.created_at,
               r.priority as rule_priority
        from app.training_assignments a
        join app.training_modules m on m.org_id = a.org_id and m.id = a.module_id
        left join app.employees e on e.org_id = a.org_id and e.id = a.employee_id
        left join app.department_training_requirements r
          on r.org_id = a.org_id and r.department_id = e.department_id and r.module_id = a.module_id
        where a.org_id = v_org and a.employee_id = v_employee_id
    ),
    history as (
        select a.created_at as at, 'assigned' as action, a.module, a.id as assignment_id,
               pg_catalog.format('Assigned, due %s', a.due_date) as details, null::jsonb as correction
        from assignments a
        union all
        select a.completion_date, 'completed', a.module, a.id,
               pg_catalog.concat_ws(', ', 'Completed',
                                    'score ' || a.score::text, case when a.is_late then 'late' end), null
        from assignments a
        where a.status = 'completed' and a.completion_date is not null
        union all
        select a.exempted_at, 'exempted', a.module, a.id, 'Exempted: ' || a.exemption_reason, null
        from assignments a
        where a.status = 'exempted' and a.exempted_at is not null
        union all
        -- overdue from the first local day after due date + grace; days counted from the due date
        select app.end_of_local_day(v_org, a.due_date + a.grace_days), 'overdue', a.module, a.id,
               pg_catalog.format('Overdue since %s (%s days overdue)', a.due_date + a.grace_days + 1,
                                 app.days_overdue(a.due_date, v_today)), null
        from assignments a
        where a.status = 'overdue'
        union all
        -- corrections of completions (HR's completion editor): what changed, who, when and why
        select c.corrected_at,
               case when c.kind = 'recorded' then 'completion_recorded'
                    when not c.attended then 'completion_withdrawn'
                    else 'completion_corrected' end,
               m.name, c.assignment_id,
               pg_catalog.concat_ws('; ',
                   case when c.kind = 'recorded'
                        then pg_catalog.concat_ws(', ', 'Completion recorded: completed '
                                                  || app.local_timestamp_text(v_org, c.completion_date),
                                                  'score ' || c.score::text)
                        when not c.attended
                        then pg_catalog.concat_ws(', ', 'Completion withdrawn (did not attend): was completed '
                                                  || app.local_timestamp_text(v_org, c.previous_completion_date),
                                                  'score ' || c.previous_score::text)
                        else pg_catalog.concat_ws(', ', 'Completion corrected: completed '
                                                  || app.local_timestamp_text(v_org, c.previous_completion_date)
                                                  || ' -> ' || app.local_timestamp_text(v_org, c.completion_date),
                                                  'score ' || coalesce(c.previous_score::text, 'none')
                                                  || ' -> ' || coalesce(c.score::text, 'none')) end,
                   'by ' || coalesce(u.display_name, 'an administrator'),
                   'reason: ' || c.reason),
               pg_catalog.jsonb_build_object(
                   'kind', c.kind, 'attended', c.attended, 'reason', c.reason,
                   'correctedBy', c.corrected_by, 'correctedByName', u.display_name,
                   'correctedAt', c.corrected_at, 'previousStatus', c.previous_status,
                   'previousCompletedAt', c.previous_completion_date, 'previousScore', c.previous_score,
                   'completedAt', c.completion_date, 'score', c.score)
        from app.completion_corrections c
        join app.training_assignments a on a.org_id = c.org_id and a.id = c.assignment_id
        join app.training_modules m on m.org_id = a.org_id and m.id = a.module_id
        left join app.app_users u on u.org_id = c.org_id and u.id = c.corrected_by
        where c.org_id = v_org and c.employee_id = v_employee_id
        union all
        select h.changed_at, 'tier_changed', null, null,
               pg_catalog.concat_ws(' ', 'Tier', coalesce(ft.name, '(none)'), '->', tt.name,
                                    '(' || h.kind::text || ')', nullif(h.reason, '')), null
        from app.employee_tier_history h
        join app.compliance_tiers tt on tt.org_id = h.org_id and tt.id = h.to_tier_id
        left join app.compliance_tiers ft on ft.org_id = h.org_id and ft.id = h.from_tier_id
        where h.org_id = v_org and h.employee_id = v_employee_id
    )
    select pg_catalog.jsonb_build_object(
        'employee', v_employee,
        'complianceStats', (
            select pg_catalog.jsonb_build_object(
                       'totalRequired', c.required, 'completed', c.completed,
                       'inProgress', c.in_progress, 'notStarted', c.not_started,
                       'overdue', c.overdue, 'exempted', c.exempted,
                       'complianceRate', c.compliance_rate,
                       'averageScore', (select pg_catalog.round(pg_catalog.avg(a.score), 2)
                                        from assignments a
                                        where a.status = 'completed' and a.score is not null),
                       'requirements', (
                           select pg_catalog.jsonb_build_object(
                                      'total', s.total_requirements,
                                      'completed', s.completed_requirements,
                                      'inProgress', s.in_progress_requirements,
                                      'pending', s.pending_requirements,
                                      'completionPct', s.completion_pct,
                                      'totalPoints', s.total_points,
                                      'earnedPoints', s.earned_points)
                           from app.employee_compliance_stats s
                           where s.org_id = v_org and s.employee_id = v_employee_id))
            from app.employee_training_counts(v_org, v_employee_id) c),
        'upcomingDeadlines', coalesce((
            select pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                       'assignmentId', a.id, 'moduleId', a.module_id, 'moduleTitle', a.module,
                       'dueDate', a.due_date, 'daysUntilDue', a.due_date - v_today,
                       'status', a.status, 'isRequired', a.is_required,
                       'priority', case when a.status = 'overdue' or a.due_date - v_today <= 7 then 'high'
                                        when a.due_date - v_today <= 30 then 'medium'
                                        else 'low' end,
                       'rulePriority', a.rule_priority)
                   order by a.due_date, a.module)
            from assignments a
            where a.status in ('not_started', 'in_progress', 'overdue')), '[]'),
        'complianceHistory', coalesce((
            select pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                       'date', h.at, 'action', h.action, 'moduleTitle', h.module,
                       'assignmentId', h.assignment_id, 'details', h.details,
                       'correction', h.correction)
                   order by h.at desc, h.action)
            from (select * from history h order by h.at desc limit 100) h), '[]'),
        'trainings', coalesce((
            select pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                       'id', a.id, 'moduleId', a.module_id, 'moduleTitle', a.module,
                       'monthKey', a.month_key, 'status', a.status, 'dueDate', a.due_date,
                       'completedAt', a.completion_date, 'score', a.score,
                       'attempts', a.attempts, 'isRequired', a.is_required, 'isLate', a.is_late,
                       'daysOverdue', case when a.status = 'overdue'
                                           then app.days_overdue(a.due_date, v_today) else 0 end)
                   order by a.due_date desc, a.module)
            from assignments a), '[]'))
    into v_result;
    return v_result;
end
$$;
comment on function api.employee_detail(uuid) is
$$One employee's compliance page: {employee, complianceStats, upcomingDeadlines, complianceHistory, trainings}.

complianceStats: the employee's required assignments by status, complianceRate (completed ÷
(required - exempted) × 100; 100.00 when none), averageScore, and requirement figures (tier
requirements: total, completed, inProgress, pending, completionPct, points).
upcomingDeadlines: open assignments, soonest first, with daysUntilDue (negative: past due) and
priority high (overdue or due within 7 days) / medium (30) / low. complianceHistory: newest
first (assigned, completed, exempted, overdue, tier_changed, completion_recorded,
completion_corrected, completion_withdrawn), at most 100 entries: {date, action, moduleTitle,
assignmentId, details, correction}; correction (null for other actions) says who (correctedBy,
correctedByName), when (correctedAt), why (reason), and the completion before (previousStatus,
previousCompletedAt, previousScore) and after (completedAt, score, attended). overdue is dated
when the assignment became overdue (the end of its last day of grace) and says its days overdue
(app.days_overdue).
404 when the employee is unknown or not visible to you (employees see only themselves).$$;
grant execute on function api.employee_detail(uuid) to authenticated;
