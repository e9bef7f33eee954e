-- api.audit_history (DESIGN §7, §9): filters, paging, newest first, and who reads what (RLS of
-- audit.log: HR admins, superadmins and viewers the organisation's trail, managers their direct
-- reports' and their own, employees their own; never another organisation's).
begin;
select plan(26);

select tests.set_var('org', tests.create_org('history')::text);
select tests.set_var('hr', tests.create_user(tests.var('org')::uuid, 'hr_admin', 'hr@history.example')::text);
select tests.set_var('viewer', tests.create_user(tests.var('org')::uuid, 'viewer', 'v@history.example')::text);
select tests.set_var('mgr', tests.create_user(tests.var('org')::uuid, 'manager', 'boss@history.example')::text);
select tests.set_var('mgr_emp', (select employee_id::text from app.app_users where id = tests.var('mgr')::uuid));
select tests.set_var('emp', tests.create_employee(tests.var('org')::uuid, 'ann@history.example',
                                                  tests.var('mgr_emp')::uuid)::text);
select tests.set_var('emp_user', tests.create_user(tests.var('org')::uuid, 'employee', 'ann@history.example',
                                                   tests.var('emp')::uuid)::text);
select tests.set_var('other', tests.create_employee(tests.var('org')::uuid, 'bob@history.example')::text);
select tests.set_var('other_user', tests.create_user(tests.var('org')::uuid, 'employee', 'bob@history.example',
                                                     tests.var('other')::uuid)::text);
select tests.set_var('org2', tests.create_org('history-other')::text);
select tests.set_var('hr2', tests.create_user(tests.var('org2')::uuid, 'hr_admin', 'hr@history2.example')::text);

-- Named events at known times, on top of what the fixtures wrote.
insert into audit.log (org_id, occurred_at, event_type, employee_id, table_name, entity_id, details)
values (tests.var('org')::uuid, '2025-01-10 09:00+00', 'tier_change', tests.var('emp')::uuid, 'employee_tiers', tests.var('emp'), '{"to": "Silver"}'),
       (tests.var('org')::uuid, '2025-02-10 09:00+00', 'requirement_review', tests.var('emp')::uuid, 'employee_requirements', 'r1', '{"decision": "approved"}'),
       (tests.var('org')::uuid, '2025-03-10 09:00+00', 'tier_change', tests.var('other')::uuid, 'employee_tiers', tests.var('other'), '{"to": "Gold"}'),
       (tests.var('org')::uuid, '2025-03-11 09:00+00', 'role_change', tests.var('mgr_emp')::uuid, 'employees', tests.var('mgr_emp'), '{}'),
       (tests.var('org2')::uuid, '2025-03-12 09:00+00', 'tier_change', null, null, null, '{"to": "Gold"}');

-- HR admin: the whole organisation, newest first, with the total.
select tests.authenticate_as(tests.var('hr')::uuid, 'GET', '/rpc/audit_history');
select is((select count(*)::int from api.audit_history(page_size => 500)),
          (select total_count::int from api.audit_history(page_size => 1)),
          'total_count is the number of entries matching');
select ok((select bool_and(h.org_id = tests.var('org')::uuid) from api.audit_history(page_size => 500) h),
          'an HR admin reads only their organisation''s trail');
select is((select array_agg(h.occurred_at order by h.occurred_at desc, h.id desc)
           from api.audit_history(page_size => 500) h),
          (select array_agg(h.occurred_at) from api.audit_history(page_size => 500) h),
          'entries come newest first');
select is((select array_agg(h.details ->> 'to') from api.audit_history(event_types => '{tier_change}') h),
          '{Gold,Silver}'::text[], 'filter by event type');
select is((select count(*)::int from api.audit_history(event_types => '{tier_change,requirement_review}')),
          3, 'several event types at once');
select is((select count(*)::int from api.audit_history(entity => 'employee_tiers', entity_id => tests.var('emp'))
           where event_type = 'tier_change'),
          1, 'filter by entity and entity id');
select ok((select bool_and(h.table_name = 'employees') from api.audit_history(entity => 'employees') h),
          'filter by entity');
select is((select array_agg(h.event_type order by h.occurred_at)
           from api.audit_history(employee_id => tests.var('emp')::uuid, date_to => '2026-01-01') h),
          '{tier_change,requirement_review}'::text[], 'filter by employee');
select is((select array_agg(h.event_type)
           from api.audit_history(date_from => '2025-02-01', date_to => '2025-03-11 09:00+00') h),
          '{tier_change,requirement_review}'::text[], 'date range: from inclusive, to exclusive');
select is((select array_agg(h.event_type) from api.audit_history(date_from => '2025-01-01', date_to => '2025-12-31',
                                                                page_size => 2, page => 2) h),
          '{requirement_review,tier_change}'::text[], 'paging: page 2 of size 2');
select is((select count(*)::int from api.audit_history(date_from => '2025-01-01', date_to => '2025-12-31',
                                                      page_size => 2, page => 3)),
          0, 'a page past the end is empty');
select ok((select bool_and(h.total_count = 4) from api.audit_history(date_from => '2025-01-01', date_to => '2025-12-31',
                                                                    page_size => 2, page => 2) h),
          'total_count counts every page');

-- Refusals.
select throws_ok($$select * from api.audit_history(page_size => 0)$$, '22023',
                 'page_size must be between 1 and 500, not 0', 'page_size 0 is refused');
select throws_ok($$select * from api.audit_history(page_size => 501)$$, '22023', null, 'page_size 501 is refused');
select throws_ok($$select * from api.audit_history(page => 0)$$, '22023', null, 'page 0 is refused');
select throws_ok($$select * from api.audit_history(date_from => '2025-02-01', date_to => '2025-01-01')$$, '22023',
                 null, 'a date range that ends before it starts is refused');
select throws_ok($$select * from api.audit_history(entity_id => 'x')$$, '22023', 'entity_id needs entity',
                 'entity_id without entity is refused');
select tests.clear_authentication();

-- Viewer: the organisation too.
select tests.authenticate_as(tests.var('viewer')::uuid, 'GET', '/rpc/audit_history');
select is((select count(*)::int from api.audit_history(event_types => '{tier_change,requirement_review,role_change}')),
          4, 'a viewer reads the organisation''s trail');
select tests.clear_authentication();

-- Employee: their own entries only.
select tests.authenticate_as(tests.var('emp_user')::uuid, 'GET', '/rpc/audit_history');
select ok((select bool_and(h.employee_id = tests.var('emp')::uuid) from api.audit_history(page_size => 500) h),
          'an employee reads only their own entries');
select is((select count(*)::int from api.audit_history(event_types => '{tier_change,requirement_review,role_change}')),
          2, '... all of them');
select is((select count(*)::int from api.audit_history(employee_id => tests.var('other')::uuid)), 0,
          'asking for another employee gives nothing');
select tests.clear_authentication();

-- Manager: direct reports' and their own.
select tests.authenticate_as(tests.var('mgr')::uuid, 'GET', '/rpc/audit_history');
select is((select array_agg(h.event_type order by h.occurred_at)
           from api.audit_history(event_types => '{tier_change,requirement_review,role_change}') h),
          '{tier_change,requirement_review,role_change}'::text[],
          'a manager reads their direct report''s entries and their own, not another employee''s');
select tests.clear_authentication();

-- Another organisation's HR admin sees none of it.
select tests.authenticate_as(tests.var('hr2')::uuid, 'GET', '/rpc/audit_history');
select ok((select bool_and(h.org_id = tests.var('org2')::uuid) from api.audit_history(page_size => 500) h),
          'another organisation''s trail never appears');
select tests.clear_authentication();

-- The function's contract.
select is((select p.provolatile::text || p.prosecdef::text from pg_proc p
           where p.oid = 'api.audit_history'::regproc), 'sfalse', 'STABLE and security invoker');
select ok(obj_description('api.audit_history'::regproc, 'pg_proc') like 'The audit trail you may read%',
          'documented with COMMENT ON');
select function_privs_are('api', 'audit_history',
    array['text[]', 'text', 'text', 'uuid', 'timestamp with time zone', 'timestamp with time zone', 'integer', 'integer'],
    'anon', '{}'::text[], 'anonymous callers cannot read the trail');

select * from finish();
rollback;
