-- Exports of the web app (DESIGN §7 "web"): the rows of the compliance export, and the
-- audit entry every export leaves. The web app streams `copy (select … from api.compliance_export
-- where <filters>) to stdout` acting as the requesting user, so row-level security decides which
-- rows leave; PostgREST serves the same view for anyone who prefers JSON.

create or replace view api.compliance_export with (security_invoker = true) as
    select a.org_id,
           a.id as assignment_id,
           e.id as employee_id,
           e.full_name as employee_name,
           e.email as employee_email,
           e.status as employee_status,
           e.job_title,
           e.department_id,
           d.name as department,
           e.location_id,
           l.name as location,
           m.id as module_id,
           m.name as module,
           m.month_key,
           a.due_date,
           a.status,
           a.completion_date,
           a.score,
           a.attempts,
           a.is_required,
           a.is_late,
           a.exemption_reason,
           case when a.status = 'overdue' and isfinite(a.due_date)
                then app.days_overdue(a.due_date, app.today_in(o.timezone)) end
               as days_overdue
    from app.training_assignments a
    join app.organizations o on o.id = a.org_id
    join app.employees e on e.org_id = a.org_id and e.id = a.employee_id
    join app.training_modules m on m.org_id = a.org_id and m.id = a.module_id
    left join app.departments d on d.org_id = e.org_id and d.id = e.department_id
    left join app.locations l on l.org_id = e.org_id and l.id = e.location_id;
comment on view api.compliance_export is
$$One row per training assignment with its employee, department, location and module: what the
compliance exports (CSV, XLSX, PDF) contain.

Row-level security of the underlying tables decides: employees see their own assignments only.
days_overdue: for an overdue assignment, the local days from its due date to the organisation's
today (app.days_overdue, the one definition of the grid, analytics, reports and notifications);
null otherwise, and for an infinite due date.$$;
grant select on api.compliance_export to authenticated;

-- The audit entry of one export, written as the exporting user before the first byte is sent.
create or replace function app.record_export(p_export text, p_filters jsonb default '{}')
returns bigint
language plpgsql volatile security definer
set search_path = ''
as $$
declare
    v_org uuid := app.current_org_id();
begin
    if v_org is null then
        raise exception 'only a signed-in, active user can export'
            using errcode = '42501',
                  detail = 'The request carries no active user.',
                  hint = 'Sign in again.';
    end if;
    if p_export is null or p_export not in ('compliance.csv', 'compliance.xlsx', 'compliance.pdf',
                                            'audit.csv', 'training_record.csv',
                                            'training_record.pdf', 'roster.csv', 'roster.pdf') then
        raise exception 'unknown export %', coalesce(pg_catalog.quote_literal(p_export), 'null')
            using errcode = '22023',
                  detail = pg_catalog.format('The export is %s.', coalesce(p_export, 'null')),
                  hint = 'Use compliance.csv, compliance.xlsx, compliance.pdf, audit.csv, '
                         'training_record.csv, training_record.pdf, roster.csv or roster.pdf.';
    end if;
    return audit.record_event(
        v_org, 'compliance_export', app.current_employee_id(), null, p_export,
        pg_catalog.jsonb_build_object('export', p_export,
                                      'filters', coalesce(p_filters, '{}'::jsonb),
                                      'method', pg_catalog.current_setting('request.method', true),
                                      'path', pg_catalog.current_setting('request.path', true)));
end
$$;
comment on function app.record_export(text, jsonb) is
    'Writes the compliance_export audit event of one export (with its filters) as the signed-in user.';
revoke execute on function app.record_export(text, jsonb) from public;
grant execute on function app.record_export(text, jsonb) to authenticated;
