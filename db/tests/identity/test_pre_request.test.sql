-- Identity (DESIGN §6 "Identity"): the pre-request hook refuses unknown, malformed and inactive
-- users with the codes PostgREST turns into 401/403; the helpers answer "my org, my app role, my
-- employee, my direct reports" from app_users, never from the token; org A never sees org B.
begin;
select plan(33);

-- Fixtures (as the superuser that owns them) --------------------------------------------------
do $fixtures$
begin
    perform tests.set_var('org_a', tests.create_org('identity-a')::text);
    perform tests.set_var('org_b', tests.create_org('identity-b')::text);
    perform tests.set_var('mgr_a', tests.create_user(tests.var('org_a')::uuid, 'manager', 'mgr@identity-a.test')::text);
    perform tests.set_var('mgr_emp_a', (select employee_id::text from app.app_users where id = tests.var('mgr_a')::uuid));
    perform tests.set_var('emp_emp_a', tests.create_employee(tests.var('org_a')::uuid, 'emp@identity-a.test',
                                                            tests.var('mgr_emp_a')::uuid)::text);
    perform tests.set_var('other_emp_a', tests.create_employee(tests.var('org_a')::uuid, 'other@identity-a.test')::text);
    perform tests.set_var('emp_a', tests.create_user(tests.var('org_a')::uuid, 'employee', 'emp@identity-a.test',
                                                    tests.var('emp_emp_a')::uuid)::text);
    perform tests.set_var('hr_a', tests.create_user(tests.var('org_a')::uuid, 'hr_admin', 'hr@identity-a.test')::text);
    perform tests.set_var('gone_a', tests.create_user(tests.var('org_a')::uuid, 'viewer', 'gone@identity-a.test')::text);
    update app.app_users set active = false where id = tests.var('gone_a')::uuid;
    perform tests.set_var('hr_b', tests.create_user(tests.var('org_b')::uuid, 'hr_admin', 'hr@identity-b.test')::text);
    perform tests.set_var('emp_b', tests.create_user(tests.var('org_b')::uuid, 'employee', 'emp@identity-b.test')::text);
end
$fixtures$;

-- Acting with hand-made claims (the fixture always sends a well-formed sub), rolled back with the test.
create function tests.identity_act_with_claims(p_claims jsonb) returns void
language plpgsql
set search_path = ''
as $$
begin
    perform pg_catalog.set_config('request.jwt.claims', p_claims::text, true);
    perform pg_catalog.set_config('request.method', 'GET', true);
    perform pg_catalog.set_config('request.path', '/employees', true);
    perform pg_catalog.set_config('role', 'authenticated', true);
    perform app.pre_request();
end
$$;

-- Refusals ------------------------------------------------------------------------------------
select throws_ok(
    $$select tests.authenticate_as('00000000-0000-4000-8000-000000000000')$$,
    'PT401', 'unknown user',
    'a token naming no user is refused with PT401 (HTTP 401)');

select throws_ok(
    format($$select tests.authenticate_as(%L)$$, tests.var('gone_a')),
    'PT403', 'user gone@identity-a.test is inactive',
    'an inactive user is refused with PT403 (HTTP 403), naming the account');

select throws_ok(
    $$select tests.identity_act_with_claims('{"sub": "not-a-uuid", "role": "authenticated"}')$$,
    'PT401', 'the token does not name a user',
    'a malformed sub is refused with PT401');

select throws_ok(
    $$select tests.identity_act_with_claims('{"role": "authenticated", "email": "x@y.test"}')$$,
    'PT401', 'the token does not name a user',
    'a token without sub is refused with PT401');

select throws_ok(
    $$select tests.identity_act_with_claims('{"sub": 42, "role": "authenticated"}')$$,
    'PT401', 'the token does not name a user',
    'a numeric sub is refused with PT401');

select is(current_user::text, session_user::text, 'a refused request leaves the connection as it was');

-- Anonymous requests ------------------------------------------------------------------------------
select set_config('role', 'anon', true);
select lives_ok($$select app.pre_request()$$, 'anon without a token passes the pre-request hook');
select throws_ok($$select app.current_org_id()$$, '42501', null,
                 'anon cannot call the identity helpers (it reaches health only)');
select tests.clear_authentication();

-- An active user ------------------------------------------------------------------------------
select lives_ok(format($$select tests.authenticate_as(%L)$$, tests.var('hr_a')),
                'an active user passes the pre-request hook');
select tests.authenticate_as(tests.var('hr_a')::uuid);
select is(current_user::text, 'authenticated', 'the request runs as role authenticated');
select is(app.current_user_id(), tests.var('hr_a')::uuid, 'current_user_id() is the token''s sub');
select is(app.current_org_id(), tests.var('org_a')::uuid, 'current_org_id() is the user''s organisation');
select is(app.current_app_role(), 'hr_admin'::app.app_role, 'current_app_role() is the user''s role');
select is(app.current_employee_id(), null, 'a user without an employee record has no current_employee_id()');
select is(app.direct_report_ids(), '{}'::uuid[], 'and no direct reports');
select ok(app.current_role_in('superadmin', 'hr_admin'), 'current_role_in() holds for the user''s role');
select ok(not app.current_role_in('superadmin', 'manager'), 'current_role_in() fails for other roles');

-- Org A never sees org B
select is((select count(*)::int from api.employees where org_id <> tests.var('org_a')::uuid), 0,
          'an hr_admin of org A sees no employee of org B');
select is((select count(*)::int from api.employees where org_id = tests.var('org_a')::uuid), 3,
          'but sees all three employees of org A');
select is(
    (select count(*)::int from (
        select org_id from api.departments union all select org_id from api.locations
        union all select id from api.organizations union all select org_id from api.app_users
        union all select org_id from api.training_assignments union all select org_id from api.audit_log
        union all select org_id from api.notifications union all select org_id from api.events) r
     where r.org_id <> tests.var('org_a')::uuid),
    0, 'nor any other row of org B in departments, locations, organisations, users, assignments, audit, notifications, events');
select tests.clear_authentication();

-- A manager and their employee ----------------------------------------------------------------
select tests.authenticate_as(tests.var('mgr_a')::uuid);
select is(app.current_app_role(), 'manager'::app.app_role, 'a manager''s role is manager');
select is(app.current_employee_id(), tests.var('mgr_emp_a')::uuid, 'current_employee_id() is the linked employee');
select is(app.direct_report_ids(), array[tests.var('emp_emp_a')::uuid],
          'direct_report_ids() lists exactly the employees they manage');
select tests.clear_authentication();

select tests.authenticate_as(tests.var('emp_a')::uuid);
select is(app.current_employee_id(), tests.var('emp_emp_a')::uuid, 'an employee''s current_employee_id() is their record');
select is(app.direct_report_ids(), '{}'::uuid[], 'an employee without reports has none');
select is((select array_agg(id) from api.employees), array[tests.var('emp_emp_a')::uuid],
          'an employee sees only their own employee record');
select tests.clear_authentication();

-- The token cannot choose organisation or role -----------------------------------------------------
select tests.identity_act_with_claims(jsonb_build_object(
    'sub', upper(tests.var('emp_a')), 'role', 'authenticated',
    'org_id', tests.var('org_b'), 'app_role', 'superadmin', 'employee_id', tests.var('other_emp_a')));
select is(app.current_user_id(), tests.var('emp_a')::uuid, 'an upper-case sub names the same user');
select is(app.current_org_id(), tests.var('org_a')::uuid, 'an org_id claim in the token is ignored');
select is(app.current_app_role(), 'employee'::app.app_role, 'an app_role claim in the token is ignored');
select is(app.current_employee_id(), tests.var('emp_emp_a')::uuid, 'an employee_id claim in the token is ignored');
select tests.clear_authentication();

-- Changes to app_users take effect on the next request ------------------------------------------
update app.app_users set app_role = 'viewer' where id = tests.var('hr_a')::uuid;
select tests.authenticate_as(tests.var('hr_a')::uuid);
select is(app.current_app_role(), 'viewer'::app.app_role, 'a role change applies to the next request');
select tests.clear_authentication();

update app.app_users set active = false where id = tests.var('hr_b')::uuid;
select throws_ok(format($$select tests.authenticate_as(%L)$$, tests.var('hr_b')), 'PT403', null,
                 'a deactivation applies to the next request');
-- Even a caller that skipped the hook gets nothing for an inactive user.
select set_config('request.jwt.claims', jsonb_build_object('sub', tests.var('hr_b'))::text, true);
select set_config('role', 'authenticated', true);
select ok(app.current_org_id() is null and app.current_app_role() is null,
          'the identity helpers answer null for an inactive user even without the pre-request hook');
select tests.clear_authentication();

select * from finish();
rollback;
