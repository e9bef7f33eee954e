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

-- The export dialect (docs/web.md "The export dialect"): a date-time leaves an export as the
-- organisation's local wall-clock time, ISO 8601 without an offset (YYYY-MM-DDTHH:MM:SS, whole
-- seconds), beside a `time_zone` column naming the zone. Values no calendar date can show stay
-- PostgreSQL's text (infinity, -infinity); a year before 1 gets " BC". No SET clause (every name is
-- qualified), so a COPY of a million rows inlines it.
create or replace function app.local_iso(p_at timestamptz, p_timezone text) returns text
language sql stable parallel safe
as $$
    select case
        when not pg_catalog.isfinite(p_at) then p_at::text
        when pg_catalog.timezone(p_timezone, p_at) operator(pg_catalog.<) '0001-01-01'::timestamp
            then pg_catalog.to_char(pg_catalog.timezone(p_timezone, p_at),
                                    'YYYY-MM-DD"T"HH24:MI:SS" BC"')
        else pg_catalog.to_char(pg_catalog.timezone(p_timezone, p_at), 'YYYY-MM-DD"T"HH24:MI:SS')
    end
$$;
comment on function app.local_iso(timestamptz, text) is
    'An instant as the export dialect writes it: local wall-clock time in the zone, YYYY-MM-DDTHH:MM:SS (infinity as such, " BC" before year 1).';
grant execute on function app.local_iso(timestamptz, text) to authenticated, web_app, analyst;

-- The audit export shows people, not database roles: the actor's name (the HR name of their
-- employee record, else the login's display name) for a user of the caller's organisation. Only
-- for an id one already holds (actor_user_id of an entry row-level security let one read).
create or replace function app.audit_actor_name(p_user_id uuid) returns text
language sql stable security definer parallel safe
set search_path = ''
as $$
    select coalesce(e.full_name, u.display_name)
    from app.app_users u
    left join app.employees e on e.org_id = u.org_id and e.id = u.employee_id
    where u.id = p_user_id and u.org_id = app.current_org_id()
$$;
comment on function app.audit_actor_name(uuid) is
    'The name of the user who wrote an audit entry (employee name, else display name), within the caller''s organisation only.';
revoke execute on function app.audit_actor_name(uuid) from public;
grant execute on function app.audit_actor_name(uuid) to authenticated;

-- A database role that wrote an audit entry without a signed-in user, named as the service
-- account it is.
create or replace function app.service_account_name(p_role text) returns text
language sql immutable parallel safe
as $$
    select case p_role
        when 'sync_worker' then 'service: sync worker'
        when 'web_app' then 'service: web app'
        when 'analyst' then 'service: analyst'
        when 'authenticated' then 'service: API without a signed-in user'
        when 'anon' then 'service: anonymous API'
        when 'authenticator' then 'service: API gateway'
        else 'service: database administrator (' operator(pg_catalog.||) coalesce(p_role, 'unknown')
             operator(pg_catalog.||) ')'
    end
$$;
comment on function app.service_account_name(text) is
    'How the audit export names a database role that acted without a user: "service: sync worker", "service: database administrator (postgres)", ...';
grant execute on function app.service_account_name(text) to authenticated, web_app, analyst;

-- One value of an audit entry's old/new values or details, as a person reads it: text without
-- quotes, numbers and booleans as written, "(none)" for null, objects as {key: value, ...}, and
-- every instant written in the organisation's zone like the rest of the export (row images
-- hold timestamps as ISO 8601 with the offset of the writing session; they are turned into
-- local time, so the file has one zone throughout).
create or replace function app.audit_value_text(p_value jsonb, p_timezone text) returns text
language plpgsql stable parallel safe
set search_path = ''
as $$
declare
    v_text text;
begin
    case pg_catalog.jsonb_typeof(p_value)
    when 'string' then
        v_text := p_value #>> '{}';
        if v_text ~ '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?([+-]\d\d(:\d\d(:\d\d)?)?|Z)$' then
            begin
                return app.local_iso(v_text::timestamptz, p_timezone);
            exception when others then
                return v_text;  -- looks like an instant but is none: shown as written
            end;
        end if;
        return v_text;
    when 'object' then
        return '{' || coalesce((select pg_catalog.string_agg(
                                    k.key || ': ' || app.audit_value_text(k.value, p_timezone),
                                    ', ' order by k.key)
                                from pg_catalog.jsonb_each(p_value) k), '') || '}';
    when 'array' then
        return '[' || coalesce((select pg_catalog.string_agg(
                                    app.audit_value_text(a.value, p_timezone), ', '
                                    order by a.n)
                                from pg_catalog.jsonb_array_elements(p_value)
                                     with ordinality a(value, n)), '') || ']';
    when 'null' then
        return '(none)';
    else
        return coalesce(p_value::text, '(none)');  -- numbers, booleans; SQL null
    end case;
end
$$;
comment on function app.audit_value_text(jsonb, text) is
    'One audit value as a person reads it (instants in local time of the zone, "(none)" for null, objects as {key: value}).';
grant execute on function app.audit_value_text(jsonb, text) to authenticated, web_app;

-- The fields of a row image or of an event's details, "key: value; key: value": a table's columns
-- in their order in the table (p_table, a table of schema app), else by name; nulls left out.
create or replace function app.audit_fields_text(p_values jsonb, p_timezone text,
                                                 p_table text default null) returns text
language sql stable parallel safe
set search_path = ''
as $$
    select pg_catalog.string_agg(k.key || ': ' || app.audit_value_text(k.value, p_timezone), '; '
                                 order by a.attnum nulls last, k.key)
    from pg_catalog.jsonb_each(case when pg_catalog.jsonb_typeof(p_values) = 'object'
                                    then p_values end) k
    left join pg_catalog.pg_attribute a
           on p_table is not null
          and a.attrelid = pg_catalog.to_regclass('app.' || pg_catalog.quote_ident(p_table))
          and a.attname = k.key
    where pg_catalog.jsonb_typeof(k.value) <> 'null'
$$;
comment on function app.audit_fields_text(jsonb, text, text) is
    'A row image or event details as "key: value; ..." (columns in table order, nulls left out, instants in local time).';
grant execute on function app.audit_fields_text(jsonb, text, text) to authenticated, web_app;

-- What one audit row changed, as a person reads it: an update as "status: overdue -> completed;
-- completion_date: (none) -> 2026-03-12T06:30:00" (the changed fields in column order), an
-- insert or delete as the fields of the row written or removed.
create or replace function app.audit_changes(p_op text, p_table text, p_old jsonb, p_new jsonb,
                                             p_changed text[], p_timezone text) returns text
language sql stable parallel safe
set search_path = ''
as $$
    select case p_op
        when 'UPDATE' then (
            select pg_catalog.string_agg(
                       f.name || ': ' || app.audit_value_text(coalesce(p_old -> f.name, 'null'), p_timezone)
                       || ' -> ' || app.audit_value_text(coalesce(p_new -> f.name, 'null'), p_timezone),
                       '; ' order by f.n)
            from (select c.name, c.n from pg_catalog.unnest(p_changed) with ordinality c(name, n)
                  where p_changed is not null
                  union all
                  -- a primary-key change keeps the whole old and new rows, no changed_fields
                  select k.key, 1000 + a.attnum
                  from pg_catalog.jsonb_each(p_new) k
                  left join pg_catalog.pg_attribute a
                         on a.attrelid = pg_catalog.to_regclass('app.' || pg_catalog.quote_ident(p_table))
                        and a.attname = k.key
                  where p_changed is null and (p_old -> k.key) is distinct from k.value) f)
        when 'INSERT' then app.audit_fields_text(p_new, p_timezone, p_table)
        when 'DELETE' then app.audit_fields_text(p_old, p_timezone, p_table)
    end
$$;
comment on function app.audit_changes(text, text, jsonb, jsonb, text[], text) is
    'An audit row''s change as text: "field: old -> new; ..." for an update, the row''s fields for an insert or delete (instants in local time).';
grant execute on function app.audit_changes(text, text, jsonb, jsonb, text[], text)
    to authenticated, web_app;
