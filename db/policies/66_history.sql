-- History (app.assignment_history, app.employee_history) and completion corrections: read like the
-- records they are the history of (db/policies/20_personal_records.sql): superadmins, HR admins,
-- managers and viewers read the organisation's, an employee only their own. Nobody writes them
-- directly: the history triggers and api.record_completion / api.correct_completion do.
do $history$
declare
    t text;
begin
    foreach t in array array['assignment_history', 'employee_history', 'completion_corrections'] loop
        execute format('drop policy if exists "org staff and the employee read %1$s" on app.%1$I', t);
        execute format($p$create policy "org staff and the employee read %1$s"
            on app.%1$I for select to authenticated
            using (org_id = (select app.current_org_id())
                   and ((select app.current_app_role()) <> 'employee'
                        or employee_id = (select app.current_employee_id())))$p$, t);
        execute format('grant select on app.%I to authenticated', t);
    end loop;
end
$history$;

