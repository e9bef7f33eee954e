-- The audit trail: superadmins, HR admins and viewers read the organisation's; managers read their
-- direct reports' and their own; employees their own. Nobody writes it but the database.
drop policy if exists "members read the audit trail they may see" on audit.log;
create policy "members read the audit trail they may see" on audit.log
    for select to authenticated
    using (org_id = (select app.current_org_id())
           and ((select app.current_role_in('superadmin', 'hr_admin', 'viewer'))
                or employee_id = (select app.current_employee_id())
                or ((select app.current_role_in('manager'))
                    and employee_id = any ((select app.direct_report_ids())::uuid[]))));

grant usage on schema audit to authenticated;
grant select on audit.log to authenticated;
-- The chain, its anchors: nobody but the database's own functions (audit.seal, audit.verify_chain,
-- the retention job) reads or writes them; RLS is forced and no policy exists.
revoke all on audit.chain, audit.chain_anchors from public;

create view api.audit_log with (security_invoker = true) as
    select org_id, id, occurred_at, actor_user_id, actor_role, db_role, event_type, table_name, op,
           entity_id, employee_id, old_values, new_values, changed_fields, details
    from audit.log;
comment on view api.audit_log is
$$The audit trail: every change to the domain tables and every named event, with its actor.

Append-only and hash-chained. Row changes have event_type row_insert, row_update or row_delete
(op, old_values, new_values, changed_fields); named events carry details. actor_role is the
signed-in user's application role, else the database role (db_role) of a service process.
Filter with PostgREST operators or use /rpc/audit_history.$$;
grant select on api.audit_log to authenticated;
