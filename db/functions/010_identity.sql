-- Identity (DESIGN §6): the JWT claims are read in one place; organisation, application role and
-- employee are looked up in app_users on every request, never taken from the token.

create or replace function app.jwt_claims() returns jsonb
language sql stable
as $$
    select coalesce(nullif(pg_catalog.current_setting('request.jwt.claims', true), ''), '{}')::jsonb
$$;
comment on function app.jwt_claims() is 'The claims of the request''s JWT, as PostgREST set them (empty when none).';

-- Two kinds of token name a user. A development token (HS256, `compliance token`) has no iss and
-- its sub is the app_users id. A token of an identity provider has an iss, and its (iss, sub) is
-- linked to one app_users row in app.identity_links; the first sign-in of an invited user links
-- by the token's verified e-mail (email_verified true), once, and only into an organisation whose
-- identity_issuer is that iss (app.identity_user_id).
create or replace function app.identity_user_id(p_claims jsonb) returns uuid
language sql stable security definer
set search_path = ''
as $$
    select coalesce(
        (select l.user_id from app.identity_links l
         where l.issuer = p_claims operator(pg_catalog.->>) 'iss'
           and l.subject = p_claims operator(pg_catalog.->>) 'sub'),
        -- first sign-in: exactly one unlinked login with this verified e-mail, in an organisation
        -- that signs in with this issuer
        (select pg_catalog.min(u.id::text)::uuid
         from app.organizations o
         join app.app_users u
           on u.org_id = o.id
          and pg_catalog.lower(u.email) = pg_catalog.lower(p_claims operator(pg_catalog.->>) 'email')
         where o.identity_issuer = p_claims operator(pg_catalog.->>) 'iss'
           and (p_claims operator(pg_catalog.->) 'email_verified') in ('true'::jsonb, '"true"'::jsonb)
           and not exists (select from app.identity_links l
                           where l.org_id = u.org_id and l.user_id = u.id
                             and l.issuer = o.identity_issuer)
         having pg_catalog.count(*) = 1))
$$;
comment on function app.identity_user_id(jsonb) is
    'The app_users id an identity provider''s token signs in as: its linked login, else (first sign-in) the one unlinked login with its verified e-mail.';

-- Inlinable (no FROM, no SET, operators qualified), as are the helpers below: the rights checks
-- that call them are planned once, not once per transaction.
create or replace function app.current_user_id() returns uuid
language sql stable
as $$
    select case
        when app.jwt_claims() operator(pg_catalog.?) 'iss' then
            case when pg_catalog.current_setting('request.identity', true) operator(pg_catalog.<>) ''
                      and (pg_catalog.current_setting('request.identity', true)::jsonb
                           operator(pg_catalog.->>) 'key')
                          = (app.jwt_claims() operator(pg_catalog.->>) 'iss') || ' '
                            || (app.jwt_claims() operator(pg_catalog.->>) 'sub')
                 then (pg_catalog.current_setting('request.identity', true)::jsonb
                       operator(pg_catalog.->>) 'sub')::uuid
                 else app.identity_user_id(app.jwt_claims()) end
        when app.jwt_claims() operator(pg_catalog.->>) 'sub'
             operator(pg_catalog.~*) '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
        then (app.jwt_claims() operator(pg_catalog.->>) 'sub')::uuid
    end
$$;
comment on function app.current_user_id() is
    'The app_users id the token names: its sub (development tokens), or its linked (iss, sub).';

-- The signed-in user's organisation, application role and employee, looked up once per request.
-- app.pre_request() stores the answer in a transaction-local setting keyed by the token's sub, so
-- the helpers below (called by every policy) cost a setting read instead of a query; without
-- the pre-request step, or when the claims changed since, they look the user up again. The cache
-- can only be set by whoever can already set the claims themselves, and it dies with the request,
-- so a role change or deactivation still takes effect on the next request.
-- The look-up behind app.current_identity() when the request's cache does not answer.
create or replace function app.identity_lookup() returns jsonb
language sql stable security definer
set search_path = ''
as $$
    select pg_catalog.jsonb_build_object('sub', u.id, 'org', u.org_id, 'role', u.app_role,
                                         'employee', u.employee_id)
    from app.app_users u
    where u.id = app.current_user_id() and u.active
$$;
comment on function app.identity_lookup() is
    'The active signed-in user''s {sub, org, role, employee} read from app_users (the uncached path of app.current_identity).';

-- The cache answers when it was made for these claims: the same (iss, sub) of an identity
-- provider's token, the same sub of a development token. An inlinable expression (no SET, no
-- FROM, operators qualified): every policy and rights check reads a setting, not a function call.
create or replace function app.current_identity() returns jsonb
language sql stable
as $$
    select case
        when coalesce(
                 case when app.jwt_claims() operator(pg_catalog.?) 'iss'
                      then (nullif(pg_catalog.current_setting('request.identity', true), '')::jsonb
                            operator(pg_catalog.->>) 'key')
                           operator(pg_catalog.=)
                           ((app.jwt_claims() operator(pg_catalog.->>) 'iss') operator(pg_catalog.||) ' '
                            operator(pg_catalog.||) (app.jwt_claims() operator(pg_catalog.->>) 'sub'))
                      else (nullif(pg_catalog.current_setting('request.identity', true), '')::jsonb
                            operator(pg_catalog.->>) 'sub')
                           operator(pg_catalog.=) (app.jwt_claims() operator(pg_catalog.->>) 'sub')
                 end, false)
        then nullif(pg_catalog.current_setting('request.identity', true), '')::jsonb
        else app.identity_lookup()
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

-- Reviews and escalations follow the management chain past managers who can no longer act (DESIGN
-- §5 "Deactivation"): a manager acts when their employee record is active and has an active login.
-- An employee's acting manager is the nearest such manager up the chain; a manager's direct reports
-- are their own reports plus, through any report who cannot act, that report's reports, and so on.
create or replace function app.manager_can_act(p_org_id uuid, p_employee_id uuid) returns boolean
language sql stable security definer
set search_path = ''
as $$
    select exists (select from app.employees m
                   join app.app_users u on u.org_id = m.org_id and u.employee_id = m.id and u.active
                   where m.org_id = p_org_id and m.id = p_employee_id and m.status = 'active')
$$;
comment on function app.manager_can_act(uuid, uuid) is
    'Whether the employee is active and has an active login (may act as a manager).';

create or replace function app.acting_manager_user_id(p_org_id uuid, p_employee_id uuid) returns uuid
language sql stable security definer
set search_path = ''
as $$
    with recursive chain (id, depth, path) as (
        select e.manager_id, 1, array[e.id]
        from app.employees e
        where e.org_id = p_org_id and e.id = p_employee_id and e.manager_id is not null
        union all
        select m.manager_id, c.depth + 1, c.path operator(pg_catalog.||) m.id
        from chain c
        join app.employees m on m.org_id = p_org_id and m.id = c.id
        where m.manager_id is not null and not m.manager_id operator(pg_catalog.=) any (c.path)
          and not app.manager_can_act(p_org_id, m.id)
    )
    select u.id
    from chain c
    join app.employees m on m.org_id = p_org_id and m.id = c.id and m.status = 'active'
    join app.app_users u on u.org_id = p_org_id and u.employee_id = m.id and u.active
    order by c.depth
    limit 1
$$;
comment on function app.acting_manager_user_id(uuid, uuid) is
    'The login of the nearest manager up the employee''s chain who is active with an active login, or null.';

create or replace function app.direct_report_ids() returns uuid[]
language sql stable security definer
set search_path = ''
as $$
    with recursive reports (id) as (
        select e.id
        from app.employees e
        where e.org_id = app.current_org_id()
          and app.current_employee_id() is not null   -- no linked employee: no direct reports
          and e.manager_id = app.current_employee_id()
        union
        select e.id
        from reports r
        join app.employees e on e.org_id = app.current_org_id() and e.manager_id = r.id
        where not app.manager_can_act(app.current_org_id(), r.id)
          and e.id is distinct from app.current_employee_id()
    )
    select coalesce(pg_catalog.array_agg(r.id), '{}') from reports r
$$;
comment on function app.direct_report_ids() is
    'The employees whose acting manager is the signed-in user''s employee (their own reports, and '
    'the reports of any report who can no longer act as a manager, down the chain).';

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
language plpgsql volatile security definer
set search_path = ''
as $$
declare
    claims jsonb := app.jwt_claims();
    user_id uuid;
    user_row app.app_users;
    linked boolean := false;
begin
    if pg_catalog.current_setting('role', true) = 'anon' or claims = '{}'::jsonb then
        return;  -- anonymous requests reach only what anon is granted (health)
    end if;
    perform pg_catalog.set_config('request.identity', '', true);
    -- One indexed read: the login by its id (development tokens) or by its linked (iss, sub).
    if claims ? 'iss' then
        select u.* into user_row
        from app.identity_links l
        join app.app_users u on u.org_id = l.org_id and u.id = l.user_id
        where l.issuer = claims ->> 'iss' and l.subject = claims ->> 'sub';
        linked := user_row.id is not null;
        user_id := coalesce(user_row.id, app.identity_user_id(claims));  -- else: first sign-in
    else
        user_id := app.current_user_id();
    end if;
    if user_id is null and claims ? 'iss' then
        raise exception 'no login is linked to this sign-in'
            using errcode = 'PT401',
                  detail = pg_catalog.format('Issuer %s, subject %s%s.',
                      coalesce(pg_catalog.quote_literal(claims ->> 'iss'), 'missing'),
                      coalesce(pg_catalog.quote_literal(claims ->> 'sub'), 'missing'),
                      case when claims -> 'email_verified' in ('true'::jsonb, '"true"'::jsonb)
                           then pg_catalog.format(', e-mail %s: no single unlinked invited user has it', claims ->> 'email')
                           else ': the token''s e-mail is not verified (email_verified), so it cannot link an invitation' end),
                  hint = 'Ask a superadmin of your organisation to invite your e-mail address, then sign in with a verified address.';
    end if;
    if user_id is null then
        raise exception 'the token does not name a user'
            using errcode = 'PT401',
                  detail = pg_catalog.format('The token''s "sub" claim is %s, not a user id.',
                                             coalesce(pg_catalog.quote_literal(claims ->> 'sub'), 'missing')),
                  hint = 'Sign in again to get a new token.';
    end if;
    if user_row.id is null then
        select * into user_row from app.app_users u where u.id = user_id;
    end if;
    if user_row.id is null then
        raise exception 'unknown user'
            using errcode = 'PT401',
                  detail = pg_catalog.format('No user has the id %s.', user_id),
                  hint = 'Sign in again; the account may have been removed.';
    end if;
    if not user_row.active then
        raise exception 'user % is inactive', user_row.email
            using errcode = 'PT403',
                  detail = pg_catalog.format('The account %s was deactivated.', user_row.email),
                  hint = 'Ask a superadmin of your organisation to reactivate it.';
    end if;
    -- The first sign-in through an identity provider links (iss, sub) to the login, once; a
    -- read-only request (GET) resolves it the same way and leaves the link to the next write.
    if claims ? 'iss' and not linked and pg_catalog.current_setting('transaction_read_only') = 'off' then
        insert into app.identity_links (org_id, issuer, subject, user_id)
        values (user_row.org_id, claims ->> 'iss', claims ->> 'sub', user_row.id)
        on conflict do nothing;
    end if;
    perform pg_catalog.set_config('request.identity',
        pg_catalog.jsonb_build_object('sub', user_row.id, 'org', user_row.org_id,
                                      'role', user_row.app_role, 'employee', user_row.employee_id,
                                      'key', case when claims ? 'iss'
                                                  then (claims ->> 'iss') || ' ' || (claims ->> 'sub') end)::text,
        true);
    -- Billing never blocks evidence, except after a canceled or unpaid subscription's paid
    -- period: then a request that may write (not GET or HEAD, not a read-only transaction such
    -- as PostgREST's for a STABLE function) is refused with PT402. Reading and exporting stay.
    if coalesce(pg_catalog.current_setting('request.method', true), '') not in ('GET', 'HEAD')
       and pg_catalog.current_setting('transaction_read_only') = 'off'
       and exists (select from app.subscriptions s
                   where s.org_id = user_row.org_id and s.status in ('canceled', 'unpaid')) then
        perform app.refuse_if_billing_locked(user_row.org_id, 'changing records');
    end if;
end
$$;
comment on function app.pre_request() is
    'PostgREST pre-request hook: refuses unknown (401) and inactive (403) users, and writes of an organisation whose paid period ended (402); links an identity provider''s first sign-in.';

grant execute on function app.jwt_claims(), app.current_user_id(), app.identity_user_id(jsonb), app.current_identity(),
    app.identity_lookup(),
    app.current_org_id(),
    app.current_app_role(), app.current_employee_id(), app.direct_report_ids(),
    app.manager_can_act(uuid, uuid), app.acting_manager_user_id(uuid, uuid),
    app.current_role_in(app.app_role[]), app.is_own_employee(uuid), app.is_direct_report(uuid)
    to authenticated, web_app;
grant execute on function app.pre_request() to anon, authenticated;
