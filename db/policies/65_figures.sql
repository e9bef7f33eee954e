-- Compliance figures and analysts: policies and grants for app.compliance_counters and
-- app.analyst_organizations, and the analyst role's read access to the rows behind the analytics
-- views (db/functions/280_analytics.sql, docs/analytics.md).

-- Compliance counters and head counts: organisation-wide figures, for superadmins, HR admins, managers and viewers
-- (DESIGN §6); employees read their own figure through /rpc/compliance_rate. Written only by the
-- database (the counter triggers).
drop policy if exists "staff read compliance counters of their org" on app.compliance_counters;
create policy "staff read compliance counters of their org" on app.compliance_counters
    for select to authenticated
    using (org_id = (select app.current_org_id())
           and (select app.reads_org_figures()));
grant select on app.compliance_counters to authenticated;

drop policy if exists "staff read compliance headcounts of their org" on app.compliance_headcounts;
create policy "staff read compliance headcounts of their org" on app.compliance_headcounts
    for select to authenticated
    using (org_id = (select app.current_org_id())
           and (select app.reads_org_figures()));
grant select on app.compliance_headcounts to authenticated;

-- Analyst bindings: an analyst reads its own (app.analyst_org_ids reads them); operators (the
-- database owner) add and remove them. No API role reads or writes them.
drop policy if exists "analysts read their own bindings" on app.analyst_organizations;
create policy "analysts read their own bindings" on app.analyst_organizations
    for select to analyst
    using (role_name = current_user);
grant select (role_name, org_id) on app.analyst_organizations to analyst;

-- Analysts read the rows of the organisations they are bound to, in the tables the analytics views
-- read, and only the columns those views use (no e-mail addresses, raw source records, evidence,
-- audit values). Nothing else: no api schema, no writes.
grant usage on schema app, audit to analyst;

drop policy if exists "analysts read their bound organizations" on app.organizations;
create policy "analysts read their bound organizations" on app.organizations
    for select to analyst
    using (id = any ((select app.analyst_org_ids())::uuid[]));
grant select (id, slug, timezone) on app.organizations to analyst;

do $analyst$
declare
    t record;
begin
    for t in
        select * from (values
            ('app', 'departments', 'org_id, id, name'),
            ('app', 'locations', 'org_id, id, name'),
            ('app', 'training_modules', 'org_id, id, name, month_key, due_date, active'),
            ('app', 'department_training_requirements',
             'org_id, department_id, module_id, required, completion_target, effective_start, effective_end'),
            ('app', 'employees',
             'org_id, id, full_name, job_title, status, start_date, department_id, location_id'),
            ('app', 'training_assignments',
             'org_id, id, employee_id, module_id, due_date, status, is_required, is_late, '
             'completion_date, score, attempts, minutes_spent, exempted_at, exemption_reason, '
             'created_at, updated_at'),
            ('app', 'compliance_counters',
             'org_id, department_id, location_id, module_id, required_count, completed_count, '
             'in_progress_count, not_started_count, overdue_count, exempted_count'),
            ('app', 'compliance_headcounts', 'org_id, department_id, location_id, active_employees'),
            ('app', 'compliance_snapshots',
             'org_id, snapshot_date, department_id, location_id, active_employees, '
             'required_assignments, completed_assignments, overdue_assignments, '
             'exempted_assignments, compliance_rate'),
            ('audit', 'log',
             'org_id, occurred_at, event_type, table_name, op, actor_role, actor_user_id, employee_id')
        ) as x(schema_name, table_name, columns)
    loop
        execute format('drop policy if exists "analysts read %2$s of their bound orgs" on %1$I.%2$I',
                       t.schema_name, t.table_name);
        execute format($p$create policy "analysts read %2$s of their bound orgs" on %1$I.%2$I
            for select to analyst
            using (org_id = any ((select app.analyst_org_ids())::uuid[]))$p$, t.schema_name, t.table_name);
        execute format('grant select (%s) on %I.%I to analyst', t.columns, t.schema_name, t.table_name);
    end loop;
end
$analyst$;
