-- pgTAP fixtures (CONVENTIONS "pgTAP tests"). Created by the test set-up only, never by migrate.
create schema if not exists tests;
grant usage on schema tests to public;

-- An organisation with one department and one location; returns its id.
create or replace function tests.create_org(p_slug text) returns uuid
language plpgsql
set search_path = ''
as $$
declare
    v_org uuid;
begin
    insert into app.organizations (name, slug) values (initcap(replace(p_slug, '-', ' ')), p_slug)
    returning id into v_org;
    insert into app.departments (org_id, name) values (v_org, 'General');
    insert into app.locations (org_id, name) values (v_org, 'Main');
    return v_org;
end
$$;

-- An employee of the organisation (in its first department and location); returns its id.
create or replace function tests.create_employee(
    p_org uuid, p_email text, p_manager uuid default null, p_job_title text default 'Staff'
) returns uuid
language plpgsql
set search_path = ''
as $$
declare
    v_id uuid;
begin
    insert into app.employees (org_id, email, first_name, last_name, job_title, manager_id,
                               department_id, location_id)
    values (p_org, p_email, initcap(split_part(p_email, '@', 1)), 'Test', p_job_title, p_manager,
            (select d.id from app.departments d where d.org_id = p_org order by d.created_at, d.name limit 1),
            (select l.id from app.locations l where l.org_id = p_org order by l.created_at, l.name limit 1))
    returning id into v_id;
    return v_id;
end
$$;

-- A user of the organisation with an application role; an employee-role user gets an employee
-- record of their own unless one is given. Returns the user id.
create or replace function tests.create_user(
    p_org uuid, p_role app.app_role, p_email text default null, p_employee uuid default null
) returns uuid
language plpgsql
set search_path = ''
as $$
declare
    v_email text := coalesce(p_email, p_role::text || '.' || left(gen_random_uuid()::text, 8) || '@test.example');
    v_employee uuid := p_employee;
    v_id uuid;
begin
    if v_employee is null and p_role in ('employee', 'manager') then
        v_employee := tests.create_employee(p_org, v_email);
    end if;
    insert into app.app_users (org_id, email, display_name, app_role, employee_id)
    values (p_org, v_email, initcap(p_role::text) || ' User', p_role, v_employee)
    returning id into v_id;
    return v_id;
end
$$;

-- Act as a user for the rest of the transaction, exactly as PostgREST does for a request:
-- role authenticated, the claims, method and path, then the pre-request function.
create or replace function tests.authenticate_as(
    p_user uuid, p_method text default 'POST', p_path text default '/'
) returns void
language plpgsql
set search_path = ''
as $$
begin
    perform set_config('request.jwt.claims',
        jsonb_build_object('sub', p_user, 'role', 'authenticated',
                           'email', (select u.email from app.app_users u where u.id = p_user),
                           'exp', extract(epoch from now() + interval '1 hour')::bigint)::text,
        true);
    perform set_config('request.method', p_method, true);
    perform set_config('request.path', p_path, true);
    perform set_config('role', 'authenticated', true);
    perform app.pre_request();
end
$$;

-- Back to the test's own role (the superuser that owns the fixtures).
create or replace function tests.clear_authentication() returns void
language plpgsql
set search_path = ''
as $$
begin
    perform set_config('request.jwt.claims', '', true);
    perform set_config('role', 'none', true);
end
$$;

grant execute on all functions in schema tests to public;

-- Test-local variables that survive role switches (psql's \gset is not available to every runner):
-- select tests.set_var('org', tests.create_org('acme')::text); ... tests.var('org')::uuid
create or replace function tests.set_var(p_name text, p_value text) returns text
language sql
set search_path = ''
as $$ select pg_catalog.set_config('tests.' || p_name, p_value, true) $$;

create or replace function tests.var(p_name text) returns text
language sql stable
set search_path = ''
as $$ select nullif(pg_catalog.current_setting('tests.' || p_name, true), '') $$;

grant execute on all functions in schema tests to public;

-- The test organisation's today (the test variable org): its local date, or the pinned app.today.
-- Tests count days from it, never from the server's current_date.
create or replace function tests.today() returns date
language sql stable
set search_path = ''
as $$ select app.org_today(tests.var('org')::uuid) $$;

grant execute on function tests.today() to public;
