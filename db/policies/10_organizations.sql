-- Organisations: every signed-in user reads their own; superadmins edit its settings.
drop policy if exists "members read their organization" on app.organizations;
create policy "members read their organization" on app.organizations
    for select to authenticated
    using (id = (select app.current_org_id()));

drop policy if exists "superadmins update their organization" on app.organizations;
create policy "superadmins update their organization" on app.organizations
    for update to authenticated
    using (id = (select app.current_org_id()) and (select app.current_role_in('superadmin')))
    with check (id = (select app.current_org_id()));

grant select on app.organizations to authenticated;
grant update (name, timezone, default_passing_score, audit_retention_months, escalation_days,
              reminder_days, employee_self_report, hr_self_evidence, paper_size)
    on app.organizations to authenticated;

create view api.organizations with (security_invoker = true) as
    select id, name, slug, timezone, default_passing_score, audit_retention_months,
           escalation_days, reminder_days, employee_self_report, hr_self_evidence, paper_size,
           created_at, updated_at
    from app.organizations;
comment on view api.organizations is
$$Your organisation and its compliance settings.

Superadmins may change the name, time zone, default passing score, audit retention (months;
HIPAA-covered organisations need at least 72), escalation and reminder days, and two evidence
settings: employee_self_report (employees may record the completion or score of their own
assignments) and hr_self_evidence (HR admins and superadmins may exempt, un-exempt, record
results on, inactivate or reopen requirement records of, and switch the tier of their own
employee record; off by default: evidence about oneself needs another person), and the paper
its PDFs are laid out for, paper_size: letter or a4 (at creation: letter for a United States or
Canadian time zone, a4 elsewhere).$$;
