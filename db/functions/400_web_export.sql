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

-- The audit export's text (docs/web.md "The audit CSV"). These run once or more per exported
-- row, so they are plain SQL without a SET clause (every function name qualified): the scalar
-- ones are inlined into the query that calls them.

-- A text of an audit value that is an instant (ISO 8601 with an offset, as row images and details
-- hold them) in the organisation's local time, like every time of the export; any other text as
-- it is. Only a text that is surely a valid instant is converted (pattern, year 1 or later, a
-- day the month has), so that no stored value can make the export fail.
create or replace function app.audit_instant_text(p_text text, p_timezone text) returns text
language sql stable parallel safe
as $$
    select case
        when p_text ~ '^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,6})?(Z|[+-](0\d|1[0-5])(:?[0-5]\d(:[0-5]\d)?)?)$'
             and pg_catalog.left(p_text, 4) <> '0000'
        then case
            when pg_catalog.substr(p_text, 9, 2)::integer <= pg_catalog.date_part('day',
                     pg_catalog.make_date(pg_catalog.left(p_text, 4)::integer,
                                          pg_catalog.substr(p_text, 6, 2)::integer, 1)
                     + interval '1 month' - interval '1 day')
            then app.local_iso(p_text::timestamptz, p_timezone)
            else p_text
        end
        else p_text
    end
$$;
comment on function app.audit_instant_text(text, text) is
    'An audit value''s text: an ISO 8601 instant with an offset as local time in the zone (app.local_iso), any other text unchanged.';

-- An object or array inside an audit value (created first: app.audit_value_text calls it, and
-- it calls app.audit_value_text for each element when it runs).
create or replace function app.audit_nested_text(p_value jsonb, p_timezone text) returns text
language plpgsql stable parallel safe
set search_path = ''
as $$
begin
    if pg_catalog.jsonb_typeof(p_value) = 'object' then
        return '{' || coalesce((select pg_catalog.string_agg(
                                    k.key || ': ' || app.audit_value_text(k.value, p_timezone),
                                    ', ' order by k.key)
                                from pg_catalog.jsonb_each(p_value) k), '') || '}';
    end if;
    return '[' || coalesce((select pg_catalog.string_agg(
                                app.audit_value_text(a.value, p_timezone), ', ' order by a.n)
                            from pg_catalog.jsonb_array_elements(p_value)
                                 with ordinality a(value, n)), '') || ']';
end
$$;
comment on function app.audit_nested_text(jsonb, text) is
    'An object or array inside an audit value as {key: value, ...} or [value, ...] (app.audit_value_text of each).';

-- One value of an audit entry's old/new values or details, as a person reads it: text without
-- quotes (instants in local time), numbers and booleans as written, "(none)" for null, objects
-- as {key: value, ...} and arrays as [value, ...].
create or replace function app.audit_value_text(p_value jsonb, p_timezone text) returns text
language sql stable parallel safe
as $$
    select case pg_catalog.jsonb_typeof(p_value)
        when 'string' then app.audit_instant_text(p_value #>> '{}', p_timezone)
        when 'null' then '(none)'
        when 'object' then app.audit_nested_text(p_value, p_timezone)
        when 'array' then app.audit_nested_text(p_value, p_timezone)
        else coalesce(p_value::text, '(none)')  -- numbers, booleans; SQL null
    end
$$;
comment on function app.audit_value_text(jsonb, text) is
    'One audit value as a person reads it (instants in local time of the zone, "(none)" for null, objects as {key: value}).';

-- The columns of each table of schema app in their order: read once per export, so that a row
-- image's fields are written in the order of the table.
create or replace function app.audit_table_columns()
returns table (table_name text, columns text[])
language sql stable parallel safe
as $$
    select c.relname::text, pg_catalog.array_agg(a.attname::text order by a.attnum)
    from pg_catalog.pg_class c
    join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
    where c.relnamespace = 'app'::regnamespace and c.relkind in ('r', 'p')
    group by c.relname
$$;
comment on function app.audit_table_columns() is
    'Each table of schema app with its columns in table order (the order the audit export writes a row''s fields in).';

-- What one audit row says, as a person reads it (one row of two texts):
--   changes  an update as "status: overdue -> completed; completion_date: (none) ->
--            2026-03-12T06:30:00" (the changed fields, in column order); an insert or delete as
--            the fields of the row written or removed, "field: value; ..." in the order of
--            p_columns (the table's columns: app.audit_table_columns), nulls left out;
--   details  a named event's details the same way, by key.
-- A set-returning SQL function of one SELECT, so that `left join lateral app.audit_entry_text(…)`
-- is inlined into the export's query: its sub-selects run per row as plain sub-plans (a scalar
-- SQL function would start an executor per row, ten times slower).
create or replace function app.audit_entry_text(p_op text, p_old jsonb, p_new jsonb,
                                                p_changed text[], p_columns text[],
                                                p_details jsonb, p_timezone text)
returns table (changes text, details text)
language sql stable parallel safe
as $$
    select
        case
            when p_op = 'UPDATE' then (
                select pg_catalog.string_agg(
                           f.name || ': '
                           || app.audit_value_text(coalesce(p_old -> f.name, 'null'), p_timezone)
                           || ' -> '
                           || app.audit_value_text(coalesce(p_new -> f.name, 'null'), p_timezone),
                           '; ' order by f.n, f.name)
                from (select c.name, c.n
                      from pg_catalog.unnest(p_changed) with ordinality c(name, n)
                      union all
                      -- a primary-key change keeps the whole old and new rows, no changed_fields
                      select k.key, pg_catalog.array_position(p_columns, k.key)
                      from pg_catalog.jsonb_each(p_new) k
                      where p_changed is null and (p_old -> k.key) is distinct from k.value) f)
            when p_op in ('INSERT', 'DELETE') then (
                select pg_catalog.string_agg(k.key || ': ' || app.audit_value_text(k.value, p_timezone),
                                             '; ' order by pg_catalog.array_position(p_columns, k.key)
                                                           nulls last, k.key)
                from pg_catalog.jsonb_each(case when p_op = 'INSERT' then p_new else p_old end) k
                where pg_catalog.jsonb_typeof(k.value) <> 'null')
        end,
        (select pg_catalog.string_agg(k.key || ': ' || app.audit_value_text(k.value, p_timezone),
                                      '; ' order by k.key)
         from pg_catalog.jsonb_each(case when pg_catalog.jsonb_typeof(p_details) = 'object'
                                         then p_details end) k
         where pg_catalog.jsonb_typeof(k.value) <> 'null')
$$;
comment on function app.audit_entry_text(text, jsonb, jsonb, text[], text[], jsonb, text) is
    'An audit row as text: changes ("field: old -> new; ..." for an update, the row''s fields for an insert or delete) and details ("key: value; ..."), instants in local time.';

grant execute on function app.audit_instant_text(text, text), app.audit_value_text(jsonb, text),
    app.audit_nested_text(jsonb, text), app.audit_table_columns(),
    app.audit_entry_text(text, jsonb, jsonb, text[], text[], jsonb, text)
    to authenticated, web_app;
