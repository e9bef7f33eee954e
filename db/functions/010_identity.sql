-- Identity (DESIGN §6): the JWT claims are read in one place; organisation, application role and
-- employee are looked up in app_users on every request, never taken from the token.

create or replace function app.jwt_claims() returns jsonb
language sql stable
as $$
    select coalesce(nullif(pg_catalog.current_setting('request.jwt.claims', true), ''), '{}')::jsonb
$$;
comment on function app.jwt_claims() is 'The claims of the request''s JWT, as PostgREST set them (empty when none).';

create or replace function app.current_user_id() returns uuid
language sql stable
as $$
    select case
        when c.sub operator(pg_catalog.~*) '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
        then c.sub::uuid
    end
    from (select app.jwt_claims() operator(pg_catalog.->>) 'sub' as sub) c
$$;
comment on function app.current_user_id() is 'The app_users id named by the token''s sub claim, or null.';

-- The signed-in user's organisation, application role and employee, looked up once per request.
-- app.pre_request() stores the answer in a transaction-local setting keyed by the token's sub, so
-- the helpers below (called by every policy) cost a setting read instead of a query; without
-- the pre-request step, or when the claims changed since, they look the user up again. The cache
-- can only be set by whoever can already set the claims themselves, and it dies with the request,
-- so a role change or deactivation still takes effect on the next request.
create or replace function app.current_identity() returns jsonb
language plpgsql stable security definer
set search_path = ''
as $$
declare
    v_user uuid := app.current_user_id();
    v_cached jsonb := nullif(pg_catalog.current_setting('request.identity', true), '')::jsonb;
begin
    if v_user is null then
        return null;
    end if;
    if v_cached is not null and v_cached ->> 'sub' = v_user::text then
        return v_cached;
    end if;
    return (select pg_catalog.jsonb_build_object('sub', u.id, 'org', u.org_id, 'role', u.app_role,
                                                 'employee', u.employee_id)
            from app.app_users u
            where u.id = v_user and u.active);
end
$$;
comment on function app.current_identity() is 'The active signed-in user''s {sub, org, role, employee}, or null.';

create or replace function app.current_org_id() returns uuid
language sql stable
as $$ select (app.current_identity() operator(pg_catalog.->>) 'org')::uuid $$;
comment on function app.current_org_id() is 'The organisation of the signed-in, active user.';

create or replace function app.current_app_role() returns app.app_role
language sql stable
as $$ select (app.current_identity() operator(pg_catalog.->>) 'role')::app.app_role $$;
comment on function app.current_app_role() is 'The application role of the signed-in, active user.';

create or replace function app.current_employee_id() returns uuid
language sql stable
as $$ select (app.current_identity() operator(pg_catalog.->>) 'employee')::uuid $$;
comment on function app.current_employee_id() is 'The employee record linked to the signed-in user, if any.';

create or replace function app.direct_report_ids() returns uuid[]
language sql stable security definer
set search_path = ''
as $$
    select coalesce(pg_catalog.array_agg(e.id), '{}')
    from app.employees e
    where e.org_id = app.current_org_id()
      and app.current_employee_id() is not null   -- no linked employee: no direct reports
      and e.manager_id = app.current_employee_id()
$$;
comment on function app.direct_report_ids() is 'The employees whose manager is the signed-in user''s employee.';

-- Rights checks compare a record's employee with the caller's, which is null for a user with no
-- linked employee record (viewers, service logins, many admins). These two answer false, never
-- null, so a refusing `if not (...)` cannot fall through on a null comparison.
create or replace function app.is_own_employee(p_employee_id uuid) returns boolean
language sql stable
as $$
    select coalesce(p_employee_id operator(pg_catalog.=) app.current_employee_id(), false)
$$;
comment on function app.is_own_employee(uuid) is
    'Whether the employee is the signed-in user''s own record (false when either is null).';

create or replace function app.is_direct_report(p_employee_id uuid) returns boolean
language sql stable
as $$
    select coalesce(app.current_app_role() operator(pg_catalog.=) 'manager'::app.app_role
                    and p_employee_id operator(pg_catalog.=) any (app.direct_report_ids()), false)
$$;
comment on function app.is_direct_report(uuid) is
    'Whether the signed-in user is a manager and the employee reports to them (false without a linked employee).';

create or replace function app.current_role_in(variadic roles app.app_role[]) returns boolean
language sql stable
as $$
    select coalesce(app.current_app_role() operator(pg_catalog.=) any (roles), false)
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
    perform pg_catalog.set_config('request.identity',
        pg_catalog.jsonb_build_object('sub', user_row.id, 'org', user_row.org_id,
                                      'role', user_row.app_role, 'employee', user_row.employee_id)::text,
        true);
    -- Billing never blocks evidence, except after a canceled or unpaid subscription's paid
    -- period: then a request that may write (not GET or HEAD, not a read-only transaction such
    -- as PostgREST's for a STABLE function) is refused with PT402. Reading and exporting stay.
    if coalesce(pg_catalog.current_setting('request.method', true), '') not in ('GET', 'HEAD')
       and pg_catalog.current_setting('transaction_read_only') = 'off' then
        perform app.refuse_if_billing_locked(user_row.org_id, 'changing records');
    end if;
end
$$;
comment on function app.pre_request() is 'PostgREST pre-request hook: refuses unknown (401) and inactive (403) users, and writes of an organisation whose paid period ended (402).';

grant execute on function app.jwt_claims(), app.current_user_id(), app.current_identity(),
    app.current_org_id(),
    app.current_app_role(), app.current_employee_id(), app.direct_report_ids(),
    app.current_role_in(app.app_role[]), app.is_own_employee(uuid), app.is_direct_report(uuid)
    to authenticated, web_app;
grant execute on function app.pre_request() to anon, authenticated;
