-- Sync runs, sync requests and compliance snapshots: everyone but plain employees reads the
-- organisation's; only the database's functions and the sync worker write them.
do $ops$
declare
    t text;
begin
    foreach t in array array['sync_runs', 'sync_requests', 'compliance_snapshots'] loop
        execute format('drop policy if exists "staff read %1$s of their org" on app.%1$I', t);
        execute format($p$create policy "staff read %1$s of their org" on app.%1$I
            for select to authenticated
            using (org_id = (select app.current_org_id())
                   and (select app.current_role_in('superadmin', 'hr_admin', 'manager', 'viewer')))$p$, t);
        execute format('grant select on app.%I to authenticated', t);
    end loop;
end
$ops$;

create view api.sync_runs with (security_invoker = true) as
    select org_id, id, type, source, triggered_by, request_id, status, complete_fetch,
           processed_count, created_count, updated_count, failed_count, details, errors,
           warnings, started_at, completed_at, duration
    from app.sync_runs;
comment on view api.sync_runs is
$$Every sync run (Zenefits roster, Google Classroom results) with counts, warnings and errors.

status is started, in_progress, completed, failed or partial. Queue a new run with /rpc/request_sync.$$;

create view api.sync_requests with (security_invoker = true) as
    select org_id, id, type, requested_by, status, requested_at, picked_at, finished_at, run_id
    from app.sync_requests;
comment on view api.sync_requests is
$$On-demand sync requests and the run that served each one.$$;

-- Notifications: a row per recipient; each user reads and marks read only their own.
drop policy if exists "users read their own notifications" on app.notifications;
create policy "users read their own notifications" on app.notifications
    for select to authenticated
    using (org_id = (select app.current_org_id()) and recipient_id = (select app.current_user_id()));

drop policy if exists "users mark their own notifications read" on app.notifications;
create policy "users mark their own notifications read" on app.notifications
    for update to authenticated
    using (org_id = (select app.current_org_id()) and recipient_id = (select app.current_user_id()))
    with check (org_id = (select app.current_org_id()) and recipient_id = (select app.current_user_id()));

grant select on app.notifications to authenticated;
grant update (read_at) on app.notifications to authenticated;

create view api.notifications with (security_invoker = true) as
    select org_id, id, recipient_id, type, title, message, action_url, priority, employee_id,
           created_at, read_at
    from app.notifications;
comment on view api.notifications is
$$Your notifications, newest first when ordered by created_at.desc.

Mark them read with /rpc/mark_notifications_read (or PATCH read_at).$$;

-- Events: the outbox of change events. A user reads the events of their organisation that concern
-- what they may read: employees only their own (and those addressed to them); an event addressed to
-- one recipient is that recipient's alone.
drop policy if exists "members read events they may see" on app.events;
create policy "members read events they may see" on app.events
    for select to authenticated
    using (org_id = (select app.current_org_id())
           and (recipient_id is null or recipient_id = (select app.current_user_id()))
           and ((select app.current_app_role()) <> 'employee'
                or employee_id = (select app.current_employee_id())
                or recipient_id = (select app.current_user_id())));
grant select on app.events to authenticated;

create view api.compliance_snapshots with (security_invoker = true) as
    select org_id, id, snapshot_date, department_id, location_id, active_employees,
           required_assignments, completed_assignments, overdue_assignments,
           exempted_assignments, compliance_rate
    from app.compliance_snapshots;
comment on view api.compliance_snapshots is
$$Daily compliance figures per department × location, kept for trends and point-in-time reports.$$;
