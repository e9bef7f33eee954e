-- api.events_since (DESIGN §8, docs/events.md): argument validation, row-level security, and the
-- delivery order (tx_id, id) below the horizon of running transactions.
-- Events under test carry synthetic, old transaction ids (tx_id 10, 11, ...): this test is one
-- transaction, and its own events are (rightly) not delivered until it ends.
-- tests/events/test_ordering.py proves the guarantee with real concurrent transactions.
begin;
select plan(21);

select tests.set_var('org', tests.create_org('events-since')::text);
select tests.set_var('hr', tests.create_user(tests.var('org')::uuid, 'hr_admin', 'hr@events.example')::text);
select tests.set_var('emp_user', tests.create_user(tests.var('org')::uuid, 'employee', 'ann@events.example')::text);
select tests.set_var('emp', (select employee_id::text from app.app_users where id = tests.var('emp_user')::uuid));
select tests.set_var('other', tests.create_employee(tests.var('org')::uuid, 'bob@events.example')::text);
select tests.set_var('org2', tests.create_org('events-since-2')::text);
select tests.set_var('hr2', tests.create_user(tests.var('org2')::uuid, 'hr_admin', 'hr@events2.example')::text);

-- e1..e5 of org (ids ascending), written by transactions 30, 20, 20, 40, 10: delivery order is
-- e5 (tx 10), e2, e3 (tx 20), e1 (tx 30), e4 (tx 40). e6 belongs to org2, e7 is addressed to hr.
insert into app.events (org_id, tx_id, type, employee_id, entity, entity_id)
values (tests.var('org')::uuid, '30', 'employee.updated', tests.var('emp')::uuid, 'employee', 'e1'),
       (tests.var('org')::uuid, '20', 'employee.updated', tests.var('other')::uuid, 'employee', 'e2'),
       (tests.var('org')::uuid, '20', 'assignment.updated', tests.var('emp')::uuid, 'assignment', 'e3'),
       (tests.var('org')::uuid, '40', 'metrics.refresh', null, null, 'e4'),
       (tests.var('org')::uuid, '10', 'sync.completed', null, 'sync_run', 'e5'),
       (tests.var('org2')::uuid, '15', 'employee.updated', null, 'employee', 'e6');
insert into app.events (org_id, tx_id, type, recipient_id, entity, entity_id)
values (tests.var('org')::uuid, '35', 'notification.created', tests.var('hr')::uuid, 'notification', 'e7');
-- e8: written by this (running) transaction.
insert into app.events (org_id, type, entity, entity_id) values (tests.var('org')::uuid, 'metrics.refresh', null, 'e8');
create function tests.h4_event(p_label text) returns bigint
language sql stable security definer set search_path = ''
as $$ select e.id from app.events e where e.entity_id = p_label $$;
grant execute on function tests.h4_event(text) to public;

-- Delivery order.
select tests.authenticate_as(tests.var('hr')::uuid, 'GET', '/rpc/events_since');
select is((select array_agg(e.entity_id) from api.events_since(0, 100) e
           where e.entity_id like 'e_'),
          '{e5,e2,e3,e1,e7,e4}'::text[], 'events come in (transaction, id) order, not id order');
select is((select array_agg(e.entity_id) from api.events_since(tests.h4_event('e3'), 100) e
           where e.entity_id like 'e_'),
          '{e1,e7,e4}'::text[], 'resuming after an event gives exactly the ones after it');
select is((select array_agg(e.entity_id) from api.events_since(tests.h4_event('e5'), 2) e),
          '{e2,e3}'::text[], 'max_rows limits the batch');
select is((select count(*)::int from api.events_since(tests.h4_event('e4'), 100) e where e.entity_id like 'e_'),
          0, 'nothing after the last one');
select is((select count(*)::int from api.events_since(0, 100) e where e.entity_id = 'e8'),
          0, 'an event of a transaction still running is not delivered');
select is((select array_agg(e.entity_id) from api.events_since() e where e.entity_id like 'e_'),
          '{e5,e2,e3,e1,e7,e4}'::text[], 'defaults: from the oldest kept event');

-- Row-level security.
select ok((select bool_and(e.org_id = tests.var('org')::uuid) from api.events_since(0, 10000) e),
          'another organisation''s events never appear');
select tests.clear_authentication();
select tests.authenticate_as(tests.var('emp_user')::uuid, 'GET', '/rpc/events_since');
select is((select array_agg(e.entity_id) from api.events_since(0, 100) e where e.entity_id like 'e_'),
          '{e3,e1}'::text[], 'an employee sees only the events about themselves');
select tests.clear_authentication();
select tests.authenticate_as(tests.var('hr2')::uuid, 'GET', '/rpc/events_since');
select is((select array_agg(e.entity_id) from api.events_since(0, 100) e where e.entity_id like 'e_'),
          '{e6}'::text[], 'the other organisation sees its own');
select throws_ok(format('select * from api.events_since(%s, 10)', tests.h4_event('e1')), 'PT410',
                 format('event %s is unknown or no longer kept', tests.h4_event('e1')),
                 'resuming from another organisation''s event id answers 410');
select tests.clear_authentication();
select tests.authenticate_as(tests.var('emp_user')::uuid, 'GET', '/rpc/events_since');
select throws_ok(format('select * from api.events_since(%s, 10)', tests.h4_event('e7')), 'PT410', null,
                 'an event addressed to someone else is as unknown as a purged one');

-- Validation.
select throws_ok('select * from api.events_since(0, 0)', '22023', 'max_rows must be between 1 and 10000, not 0',
                 'max_rows 0 is refused');
select throws_ok('select * from api.events_since(0, 10001)', '22023', null, 'max_rows 10001 is refused');
select throws_ok('select * from api.events_since(0, null)', '22023', null, 'max_rows null is refused');
select throws_ok('select * from api.events_since(-1, 10)', '22023', null, 'a negative after_id is refused');
select throws_ok('select * from api.events_since(9223372036854775807, 10)', 'PT410',
                 'event 9223372036854775807 is unknown or no longer kept', 'an unknown id answers 410');
select lives_ok('select * from api.events_since(null, 10)', 'after_id null means from the start');
select tests.clear_authentication();

-- Purged: resuming from an id the retention job removed answers 410.
select tests.set_var('e5', tests.h4_event('e5')::text);
delete from app.events where entity_id = 'e5';
select tests.authenticate_as(tests.var('hr')::uuid, 'GET', '/rpc/events_since');
select throws_ok(format('select * from api.events_since(%s, 10)', tests.var('e5')), 'PT410', null,
                 'a purged id answers 410');
select tests.clear_authentication();

-- Anonymous callers get nothing.
select function_privs_are('api', 'events_since', array['bigint', 'integer'], 'anon', '{}'::text[],
                          'anonymous callers cannot read events');
select function_privs_are('api', 'events_since', array['bigint', 'integer'], 'authenticated', '{EXECUTE}'::text[],
                          'signed-in users can');
select is((select p.provolatile::text from pg_proc p where p.oid = 'api.events_since'::regproc), 's',
          'events_since is STABLE (GET)');

select * from finish();
rollback;
