-- Identity (DESIGN §6): the JWT claims are read in one place; organisation, application role and
-- employee are looked up in app_users on every request, never taken from the token.

create or replace function app.jwt_claims() returns jsonb
language sql stable
set search_path = ''
as $$
    select coalesce(nullif(pg_catalog.current_setting('request.jwt.claims', true), ''), '{}')::jsonb
$$;
comment on function app.jwt_claims() is 'The claims of the request''s JWT, as PostgREST set them (empty when none).';

create or replace function app.current_user_id() returns uuid
language sql stable
set search_path = ''
as $$
    select case
        when app.jwt_claims() ->> 'sub' ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
        then (app.jwt_claims() ->> 'sub')::uuid
    end
$$;
comment on function app.current_user_id() is 'The app_users id named by the token''s sub claim, or null.';

create or replace function app.current_org_id() returns uuid
language sql stable security definer
set search_path = ''
as $$
    select u.org_id from app.app_users u where u.id = app.current_user_id() and u.active
$$;
comment on function app.current_org_id() is 'The organisation of the signed-in, active user.';

create or replace function app.current_app_role() returns app.app_role
language sql stable security definer
set search_path = ''
as $$
    select u.app_role from app.app_users u where u.id = app.current_user_id() and u.active
$$;
comment on function app.current_app_role() is 'The application role of the signed-in, active user.';

create or replace function app.current_employee_id() returns uuid
language sql stable security definer
set search_path = ''
as $$
    select u.employee_id from app.app_users u where u.id = app.current_user_id() and u.active
$$;
comment on function app.current_employee_id() is 'The employee record linked to the signed-in user, if any.';

create or replace function app.direct_report_ids() returns uuid[]
language sql stable security definer
set search_path = ''
as $$
    select coalesce(pg_catalog.array_agg(e.id), '{}')
    from app.app_users u
    join app.employees e on e.org_id = u.org_id and e.manager_id = u.employee_id
    where u.id = app.current_user_id() and u.active
$$;
comment on function app.direct_report_ids() is 'The employees whose manager is the signed-in user''s employee.';

create or replace function app.current_role_in(variadic roles app.app_role[]) returns boolean
language sql stable
set search_path = ''
as $$
    select coalesce(app.current_app_role() = any (roles), false)
$$;
comment on function app.current_role_in(app.app_role[]) is 'Whether the signed-in user holds one of the given application roles.';

create or replace function app.pre_request() returns void
language plpgsql stable security definer
set search_path = ''
as $$
declare
    claims jsonb := app.jwt_claims();
    user_row app.app_users;
begin
    if pg_catalog.current_setting('role', true) = 'anon' or claims = '{}'::jsonb then
        return;  -- anonymous requests reach only what anon is granted (health)
    end if;
    if app.current_user_id() is null then
        raise exception 'the token does not name a user'
            using errcode = 'PT401',
                  detail = pg_catalog.format('The token''s "sub" claim is %s, not a user id.',
                                             coalesce(pg_catalog.quote_literal(claims ->> 'sub'), 'missing')),
                  hint = 'Sign in again to get a new token.';
    end if;
    select * into user_row from app.app_users u where u.id = app.current_user_id();
    if not found then
        raise exception 'unknown user'
            using errcode = 'PT401',
                  detail = pg_catalog.format('No user has the id %s.', app.current_user_id()),
                  hint = 'Sign in again; the account may have been removed.';
    end if;
    if not user_row.active then
        raise exception 'user % is inactive', user_row.email
            using errcode = 'PT403',
                  detail = pg_catalog.format('The account %s was deactivated.', user_row.email),
                  hint = 'Ask a superadmin of your organisation to reactivate it.';
    end if;
end
$$;
comment on function app.pre_request() is 'PostgREST pre-request hook: refuses unknown (401) and inactive (403) users.';

grant execute on function app.jwt_claims(), app.current_user_id(), app.current_org_id(),
    app.current_app_role(), app.current_employee_id(), app.direct_report_ids(),
    app.current_role_in(app.app_role[]) to authenticated, web_app;
grant execute on function app.pre_request() to anon, authenticated;
