-- The exception report: superadmins, HR admins and viewers read the organisation's cases,
-- managers those about their direct reports; nobody writes them directly (the rules raise them,
-- api.resolve_assignment_exception closes them).
drop policy if exists "staff read exception cases of their org" on app.assignment_exceptions;
create policy "staff read exception cases of their org" on app.assignment_exceptions
    for select to authenticated
    using (org_id = (select app.current_org_id())
           and ((select app.current_role_in('superadmin', 'hr_admin', 'viewer'))
                or ((select app.current_role_in('manager'))
                    and employee_id = any ((select app.direct_report_ids())::uuid[]))));
grant select on app.assignment_exceptions to authenticated;

create view api.assignment_exceptions with (security_invoker = true) as
    select org_id, id, kind, rule, message, resolution_hint, employee_id, module_id, assignment_id,
           details, raised_at, last_seen_at, resolved_at is not null as resolved, resolved_at,
           resolved_by, resolution
    from app.assignment_exceptions;
comment on view api.assignment_exceptions is
$$The exception report: what the assignment rules could not honour, or a person must decide.

kind is overdue_on_arrival, duplicate_person, unknown_module_result, unmatched_student,
regrade_below_passing or grade_removed; rule names the rule that raised it and resolution_hint
what to do. Open cases first: order=resolved,raised_at.desc. Close one with
/rpc/resolve_assignment_exception.$$;
