-- api.request_sync: superadmins, HR admins and managers queue a sync of their organisation;
-- employees and viewers are refused (42501); an unknown type is refused (22023); a request of
-- the same kind already queued is returned instead of a new one.
begin;
select plan(14);

select tests.set_var('org', tests.create_org('sync-requests')::text);
select tests.set_var('other', tests.create_org('sync-requests-other')::text);
select tests.set_var('admin', tests.create_user(tests.var('org')::uuid, 'superadmin')::text);
select tests.set_var('hr', tests.create_user(tests.var('org')::uuid, 'hr_admin')::text);
select tests.set_var('manager', tests.create_user(tests.var('org')::uuid, 'manager')::text);
select tests.set_var('employee', tests.create_user(tests.var('org')::uuid, 'employee')::text);
select tests.set_var('viewer', tests.create_user(tests.var('org')::uuid, 'viewer')::text);
select tests.set_var('stranger', tests.create_user(tests.var('other')::uuid, 'hr_admin')::text);

select tests.authenticate_as(tests.var('hr')::uuid, 'POST', '/rpc/request_sync');
select tests.set_var('first', (api.request_sync('employees') ->> 'id'));
select is((select status::text from app.sync_requests where id = tests.var('first')::uuid), 'queued',
          'an HR admin queues a request');
select is((select requested_by from app.sync_requests where id = tests.var('first')::uuid),
          tests.var('hr')::uuid, 'the request names who asked');
select is(api.request_sync('employees') ->> 'id', tests.var('first'),
          'the same kind already queued: that request is returned');
select is((api.request_sync('employees') ->> 'alreadyQueued')::boolean, true,
          'and says it was already queued');
select tests.clear_authentication();

select tests.authenticate_as(tests.var('manager')::uuid, 'POST', '/rpc/request_sync');
select isnt(api.request_sync('completions') ->> 'id', tests.var('first'),
            'a manager queues a request of another kind');
select tests.clear_authentication();

select tests.authenticate_as(tests.var('admin')::uuid, 'POST', '/rpc/request_sync');
select is(api.request_sync() ->> 'type', 'full', 'a superadmin queues a full sync by default');
select throws_ok($$select api.request_sync('everything')$$, '22023', null,
                 'an unknown type is refused');
select is((select count(*)::integer from app.sync_requests where org_id = tests.var('org')::uuid), 3,
          'three requests were queued');
select tests.clear_authentication();

select tests.authenticate_as(tests.var('employee')::uuid, 'POST', '/rpc/request_sync');
select throws_ok($$select api.request_sync('full')$$, '42501', null, 'an employee may not request a sync');
select tests.clear_authentication();
select tests.authenticate_as(tests.var('viewer')::uuid, 'POST', '/rpc/request_sync');
select throws_ok($$select api.request_sync('full')$$, '42501', null, 'a viewer may not request a sync');
select tests.clear_authentication();

select is((select count(*)::integer from app.sync_requests where org_id = tests.var('org')::uuid), 3,
          'a refusal queued nothing');

select tests.authenticate_as(tests.var('stranger')::uuid, 'GET', '/sync_requests');
select is((select count(*)::integer from api.sync_requests), 0,
          'another organisation''s HR admin sees none of these requests');
select tests.clear_authentication();
select tests.authenticate_as(tests.var('hr')::uuid, 'GET', '/sync_requests');
select is((select count(*)::integer from api.sync_requests), 3, 'the HR admin sees the organisation''s');
select tests.clear_authentication();

select function_privs_are('api', 'request_sync', array['app.sync_type_name'], 'authenticated', array['EXECUTE'],
                          'authenticated may call api.request_sync');

select * from finish();
rollback;
