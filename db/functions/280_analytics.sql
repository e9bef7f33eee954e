-- Analysts (DESIGN §1, §6): documented, read-only views in schema analytics.
--
-- An analyst is a LOGIN role that is a member of role analyst, bound to its organisation(s) in
-- app.analyst_organizations (operators add rows; see docs/analytics.md). Row-level policies
-- "to analyst" on the tables behind the views (db/policies/65_figures.sql) let it read the rows of
-- those organisations only; an unbound analyst reads nothing. The views are security_invoker, so
-- the policies apply to whoever queries them. Analysts get SELECT on the views and on just the
-- columns of app tables the views read; nothing in api, no writes.

-- The organisations the current role may read as an analyst (empty when unbound). Reads the
-- binding table through its own policy (a role sees its own bindings).
create or replace function app.analyst_org_ids() returns uuid[]
language sql stable
set search_path = ''
as $$
    select coalesce(pg_catalog.array_agg(b.org_id), '{}')
    from app.analyst_organizations b
    where b.role_name = current_user
$$;
comment on function app.analyst_org_ids() is
    'The organisations the current role is bound to as an analyst (app.analyst_organizations); empty when none.';

-- analytics.assignments_flat ---------------------------------------------------------------------
drop view if exists analytics.assignments_flat;
create view analytics.assignments_flat with (security_invoker = true) as
    select a.org_id, o.slug as organization, a.id as assignment_id, a.employee_id,
           e.full_name as employee_name, e.job_title, e.status as employee_status,
           e.start_date as employee_start_date, e.department_id, d.name as department,
           e.location_id, l.name as location, a.module_id, m.name as module, m.month_key,
           a.due_date, a.status, a.is_required, a.is_late, a.completion_date, a.score,
           a.attempts, a.minutes_spent, a.exempted_at, a.exemption_reason,
           case when a.status = 'overdue' then app.days_overdue(a.due_date, app.today_in(o.timezone))
                else 0 end as days_overdue,
           app.counts_toward_compliance(a.is_required, e.status) as counts_toward_rate,
           a.created_at, a.updated_at
    from app.training_assignments a
    join app.organizations o on o.id = a.org_id
    join app.employees e on e.org_id = a.org_id and e.id = a.employee_id
    join app.training_modules m on m.org_id = a.org_id and m.id = a.module_id
    left join app.departments d on d.org_id = e.org_id and d.id = e.department_id
    left join app.locations l on l.org_id = e.org_id and l.id = e.location_id;
comment on view analytics.assignments_flat is
$$One row per training assignment, with employee, department, location and module names.

The base table for ad-hoc questions. status: not_started, in_progress, completed, overdue,
exempted. counts_toward_rate: the assignment is in the compliance rate's population (required,
employee active); the rate is completed ÷ (counted - exempted) × 100.$$;
comment on column analytics.assignments_flat.organization is 'The organisation''s slug.';
comment on column analytics.assignments_flat.days_overdue is
    'Overdue: local days from the due date to the organisation''s today (app.days_overdue), else 0.';
comment on column analytics.assignments_flat.counts_toward_rate is
    'Required and the employee is active: the assignment is part of the compliance rate.';
comment on column analytics.assignments_flat.is_late is
    'Completed late: the completion''s local date (organisation''s zone) after due date plus grace days.';
comment on column analytics.assignments_flat.employee_status is 'active, inactive or terminated.';

-- analytics.compliance_by_department -------------------------------------------------------------
drop view if exists analytics.compliance_by_department;
create view analytics.compliance_by_department with (security_invoker = true) as
    select f.org_id, f.department_id, f.department, f.active_employees, f.required_assignments,
           f.completed_assignments, f.in_progress_assignments, f.not_started_assignments,
           f.overdue_assignments, f.exempted_assignments, f.compliance_rate,
           f.completion_target, f.target_met, f.modules_below_target
    from app.department_figures f;
comment on view analytics.compliance_by_department is
$$Live compliance per department: counts of required assignments of active employees by status,
the rate, the department's completion target and whether it is met.$$;
comment on column analytics.compliance_by_department.compliance_rate is
    'completed ÷ (required - exempted) × 100, 2 decimals; 100.00 when there are none.';
comment on column analytics.compliance_by_department.required_assignments is
    'Required assignments of active employees, any status (exempted included).';
comment on column analytics.compliance_by_department.completion_target is
    'Highest completion_target among the department''s required rules in effect today; 95.00 when none.';
comment on column analytics.compliance_by_department.modules_below_target is
    'Rules whose module, within this department, is below that rule''s own target.';

-- analytics.compliance_by_location ---------------------------------------------------------------
drop view if exists analytics.compliance_by_location;
create view analytics.compliance_by_location with (security_invoker = true) as
    select f.org_id, f.location_id, f.location, f.active_employees, f.required_assignments,
           f.completed_assignments, f.in_progress_assignments, f.not_started_assignments,
           f.overdue_assignments, f.exempted_assignments, f.compliance_rate
    from app.location_figures f;
comment on view analytics.compliance_by_location is
$$Live compliance per location (site): counts by status and the rate (same definition as by department).$$;
comment on column analytics.compliance_by_location.compliance_rate is
    'completed ÷ (required - exempted) × 100, 2 decimals; 100.00 when there are none.';

-- analytics.compliance_by_module -----------------------------------------------------------------
drop view if exists analytics.compliance_by_module;
create view analytics.compliance_by_module with (security_invoker = true) as
    select f.org_id, f.module_id, f.module, f.month_key, f.due_date, f.active,
           f.required_assignments, f.completed_assignments, f.in_progress_assignments,
           f.not_started_assignments, f.overdue_assignments, f.exempted_assignments,
           f.compliance_rate
    from app.module_figures f;
comment on view analytics.compliance_by_module is
$$Live compliance per training module across the organisation (required assignments of active employees).$$;
comment on column analytics.compliance_by_module.month_key is 'The month the module belongs to (YYYY-MM).';

-- analytics.compliance_by_month ------------------------------------------------------------------
-- The figures of each local month at its last day (the current month: today, live), from the
-- source of /rpc/compliance_as_of (app.figures_of_days: the valid cache, else the history), so every
-- month from the organisation's first day has its figures whether or not a daily job ran.
drop view if exists analytics.compliance_by_month;
create view analytics.compliance_by_month with (security_invoker = true) as
    with months as (
        select o.id as org_id, t.period as month, t.day
        from app.organizations o
        cross join lateral app.trend_days(o.id, 'month', null) t
    ),
    figures as (
        select m.org_id, m.month, f.day, f.source, f.active_employees, f.required, f.completed,
               f.overdue, f.exempted, f.compliance_rate
        from months m
        join (select o.id as org_id, x.*
              from app.organizations o
              cross join lateral app.figures_of_days(
                  o.id, array(select t.day from app.trend_days(o.id, 'month', null) t)) x) f
          on f.org_id = m.org_id and f.day = m.day
    ),
    activity as (
        select x.org_id, x.month,
               pg_catalog.count(*) filter (where x.kind = 'due') as assignments_due,
               pg_catalog.count(*) filter (where x.kind = 'completed') as completions,
               pg_catalog.count(*) filter (where x.kind = 'completed' and x.is_late) as late_completions
        from (
            select a.org_id, pg_catalog.date_trunc('month', a.due_date::timestamp)::date as month,
                   'due' as kind, a.is_late
            from app.training_assignments a
            where a.is_required
            union all
            -- the month of the completion's local date, in the organisation's zone
            select a.org_id,
                   pg_catalog.date_trunc('month', pg_catalog.timezone(o.timezone, a.completion_date))::date,
                   'completed', a.is_late
            from app.training_assignments a
            join app.organizations o on o.id = a.org_id
            where a.status = 'completed' and a.completion_date is not null
        ) x
        group by x.org_id, x.month
    )
    select coalesce(f.org_id, a.org_id) as org_id, coalesce(f.month, a.month) as month,
           f.day as snapshot_date, f.source, f.active_employees::integer as active_employees,
           f.required::integer as required_assignments, f.completed::integer as completed_assignments,
           f.overdue::integer as overdue_assignments, f.exempted::integer as exempted_assignments,
           f.compliance_rate,
           coalesce(a.assignments_due, 0) as assignments_due,
           coalesce(a.completions, 0) as completions,
           coalesce(a.late_completions, 0) as late_completions
    from figures f
    full join activity a on a.org_id = f.org_id and a.month = f.month;
comment on view analytics.compliance_by_month is
$$Per organisation and local month: the org-wide figures at the end of the month's last day (the
current month: today's live figures), and the month's activity (required assignments due,
completions, late completions) from the assignments.

The figures are those of /rpc/compliance_as_of for that day (source: snapshot = its cached answer,
history = computed from the history, live = today): the state the database had recorded by the
end of the day, completions judged by their completion time. Figure columns are null for months
outside the organisation's records (before its first day, or after today).$$;
comment on column analytics.compliance_by_month.month is 'First day of the local month.';
comment on column analytics.compliance_by_month.snapshot_date is 'The local day the figures are from: the month''s last day, or today for the current month.';
comment on column analytics.compliance_by_month.source is 'Where the figures come from: snapshot (the cached answer of the day), history (computed from the history) or live (today).';
comment on column analytics.compliance_by_month.assignments_due is 'Required assignments whose due date falls in the month.';
comment on column analytics.compliance_by_month.completions is 'Assignments completed in the month (the completion''s local date).';

-- analytics.audit_summary ------------------------------------------------------------------------
drop view if exists analytics.audit_summary;
create view analytics.audit_summary with (security_invoker = true) as
    select l.org_id, (l.occurred_at at time zone o.timezone)::date as day, l.event_type,
           l.table_name, l.op, l.actor_role, pg_catalog.count(*) as events,
           pg_catalog.count(distinct l.actor_user_id) as distinct_users,
           pg_catalog.count(distinct l.employee_id) as distinct_employees,
           pg_catalog.min(l.occurred_at) as first_at, pg_catalog.max(l.occurred_at) as last_at
    from audit.log l
    join app.organizations o on o.id = l.org_id
    group by l.org_id, (l.occurred_at at time zone o.timezone)::date, l.event_type, l.table_name,
             l.op, l.actor_role;
comment on view analytics.audit_summary is
$$Audit trail activity per organisation, day (in the organisation's time zone), event type,
table, operation and actor role: how many entries, by how many users, about how many employees.

Counts only; the entries themselves (old/new values) are not exposed to analysts.$$;
comment on column analytics.audit_summary.event_type is
    'row_insert / row_update / row_delete for table changes, or a named event (tier_change, requirement_review, compliance_export, ...).';
comment on column analytics.audit_summary.actor_role is
    'The application role of the signed-in user, or the database role of a service (sync_worker, web_app).';

grant usage on schema analytics to analyst;
grant select on analytics.assignments_flat, analytics.compliance_by_department,
    analytics.compliance_by_location, analytics.compliance_by_module,
    analytics.compliance_by_month, analytics.audit_summary to analyst;
grant execute on function app.analyst_org_ids() to analyst;
grant select on app.department_figures, app.location_figures, app.module_figures to analyst;
