-- app.event_audience (db/functions/410_web_relay.sql), the web relay's live path: for every
-- event, the users it names are exactly the users who read the event through api.events under
-- row-level security (the policy "members read events they may see"), for two organisations and
-- every role; events come in api.events_since's order, below its horizon. If the policy on
-- app.events changes and event_audience does not, the set_eq below fails.
-- Events under test carry synthetic, old transaction ids (as test_events_since does): this test is
-- one transaction, and its own events are (rightly) not delivered until it ends.
begin;
select plan(16);

-- Two organisations, every role, plus a second employee user and an inactive user in A.
select tests.set_var('a', tests.create_org('audience-a')::text);
select tests.set_var('b', tests.create_org('audience-b')::text);
select tests.set_var('a_super', tests.create_user(tests.var('a')::uuid, 'superadmin', 'super@aud-a.example')::text);
select tests.set_var('a_hr', tests.create_user(tests.var('a')::uuid, 'hr_admin', 'hr@aud-a.example')::text);
select tests.set_var('a_mgr', tests.create_user(tests.var('a')::uuid, 'manager', 'mgr@aud-a.example')::text);
select tests.set_var('a_emp', tests.create_user(tests.var('a')::uuid, 'employee', 'emp@aud-a.example')::text);
select tests.set_var('a_emp2', tests.create_user(tests.var('a')::uuid, 'employee', 'emp2@aud-a.example')::text);
select tests.set_var('a_viewer', tests.create_user(tests.var('a')::uuid, 'viewer', 'viewer@aud-a.example')::text);
select tests.set_var('a_gone', tests.create_user(tests.var('a')::uuid, 'hr_admin', 'gone@aud-a.example')::text);
update app.app_users set active = false where id = tests.var('a_gone')::uuid;
select tests.set_var('b_super', tests.create_user(tests.var('b')::uuid, 'superadmin', 'super@aud-b.example')::text);
select tests.set_var('b_hr', tests.create_user(tests.var('b')::uuid, 'hr_admin', 'hr@aud-b.example')::text);
select tests.set_var('b_mgr', tests.create_user(tests.var('b')::uuid, 'manager', 'mgr@aud-b.example')::text);
select tests.set_var('b_emp', tests.create_user(tests.var('b')::uuid, 'employee', 'emp@aud-b.example')::text);
select tests.set_var('b_viewer', tests.create_user(tests.var('b')::uuid, 'viewer', 'viewer@aud-b.example')::text);
select tests.set_var('a_emp_e', (select employee_id::text from app.app_users where id = tests.var('a_emp')::uuid));
select tests.set_var('a_emp2_e', (select employee_id::text from app.app_users where id = tests.var('a_emp2')::uuid));
select tests.set_var('a_mgr_e', (select employee_id::text from app.app_users where id = tests.var('a_mgr')::uuid));
select tests.set_var('a_other_e', tests.create_employee(tests.var('a')::uuid, 'nobody@aud-a.example')::text);
select tests.set_var('b_emp_e', (select employee_id::text from app.app_users where id = tests.var('b_emp')::uuid));

-- A mix: org-wide, about an employee (with and without a login), addressed to a user (with and
-- without an employee, about themselves or someone else), addressed across organisations.
-- Transaction ids are out of id order on purpose.
create temp table aud_events (label text primary key, org uuid, tx text, employee uuid, recipient uuid);
insert into aud_events values
    ('a01', tests.var('a')::uuid, '31', null, null),
    ('a02', tests.var('a')::uuid, '22', tests.var('a_emp_e')::uuid, null),
    ('a03', tests.var('a')::uuid, '22', tests.var('a_emp2_e')::uuid, null),
    ('a04', tests.var('a')::uuid, '24', tests.var('a_other_e')::uuid, null),
    ('a05', tests.var('a')::uuid, '25', tests.var('a_mgr_e')::uuid, null),
    ('a06', tests.var('a')::uuid, '26', null, tests.var('a_mgr')::uuid),
    ('a07', tests.var('a')::uuid, '21', tests.var('a_emp_e')::uuid, tests.var('a_emp')::uuid),
    ('a08', tests.var('a')::uuid, '28', tests.var('a_emp2_e')::uuid, tests.var('a_emp')::uuid),
    ('a09', tests.var('a')::uuid, '29', null, tests.var('a_emp')::uuid),
    ('a10', tests.var('a')::uuid, '30', tests.var('a_emp_e')::uuid, tests.var('a_hr')::uuid),
    ('a11', tests.var('a')::uuid, '23', null, tests.var('a_gone')::uuid),
    ('a12', tests.var('a')::uuid, '32', null, tests.var('b_hr')::uuid),
    ('a13', tests.var('a')::uuid, '33', null, tests.var('a_viewer')::uuid),
    ('b01', tests.var('b')::uuid, '27', null, null),
    ('b02', tests.var('b')::uuid, '21', tests.var('b_emp_e')::uuid, null),
    ('b03', tests.var('b')::uuid, '34', tests.var('a_emp_e')::uuid, null),
    ('b04', tests.var('b')::uuid, '35', null, tests.var('b_emp')::uuid),
    ('b05', tests.var('b')::uuid, '36', tests.var('b_emp_e')::uuid, tests.var('b_super')::uuid);
insert into app.events (org_id, tx_id, type, employee_id, recipient_id, entity, entity_id)
select org, tx::xid8, 'assignment.updated', employee, recipient, 'audience', label
from aud_events order by label;
-- written by this (running) transaction: below no horizon yet
insert into app.events (org_id, type, entity, entity_id)
values (tests.var('a')::uuid, 'metrics.refresh', 'audience', 'a99');
create temp table aud_ids as
    select e.entity_id as label, e.id, e.tx_id from app.events e where e.entity = 'audience';

-- What row-level security shows each active user of both organisations, through api.events.
create temp table rls_seen (user_id uuid, id bigint);
do $$
declare
    v_users uuid[];
    v_user uuid;
    v_seen bigint[];
begin
    select array_agg(u.id order by u.email) into v_users
    from app.app_users u
    where u.org_id in (tests.var('a')::uuid, tests.var('b')::uuid) and u.active;
    foreach v_user in array v_users loop
        perform tests.authenticate_as(v_user, 'GET', '/events');
        select coalesce(array_agg(e.id), '{}') into v_seen
        from api.events e where e.entity = 'audience' and e.entity_id <> 'a99';
        perform tests.clear_authentication();
        insert into rls_seen select v_user, s from unnest(v_seen) s;
    end loop;
end
$$;

-- What event_audience says, for all users (null) and for the users of both organisations.
create temp table fn_all as
    select a.id, a.tx_id, a.org_id, a.body, a.audience
    from app.event_audience('0', 0, 10000, null) a
    where a.org_id in (tests.var('a')::uuid, tests.var('b')::uuid);
create temp table fn_given as
    select a.id, a.tx_id, a.org_id, a.body, a.audience
    from app.event_audience('0', 0, 10000,
        (select array_agg(u.id) from app.app_users u
         where u.org_id in (tests.var('a')::uuid, tests.var('b')::uuid))) a;

select set_eq(
    'select a.id, u.user_id from fn_all a cross join lateral unnest(a.audience) as u(user_id)',
    'select id, user_id from rls_seen',
    'the audience of every event is exactly who reads it through api.events under RLS (every role, two organisations)');
select set_eq(
    'select a.id, u.user_id from fn_given a cross join lateral unnest(a.audience) as u(user_id)',
    'select id, user_id from rls_seen',
    'the same with the users given');
select set_eq('select id from fn_all', 'select id from aud_ids where label <> ''a99''',
              'every committed event is returned, also those nobody may read');

-- The policy spelled out, so that the equality above is not between two empty sets.
select set_eq(format('select l.label from rls_seen s join aud_ids l on l.id = s.id where s.user_id = %L', tests.var('a_emp')),
              array['a02', 'a07', 'a08', 'a09'],
              'the employee: about themselves, or addressed to them');
select set_eq(format('select l.label from rls_seen s join aud_ids l on l.id = s.id where s.user_id = %L', tests.var('a_hr')),
              array['a01', 'a02', 'a03', 'a04', 'a05', 'a10'],
              'HR: the organisation''s, except what is addressed to someone else');
select set_eq(format('select l.label from rls_seen s join aud_ids l on l.id = s.id where s.user_id = %L', tests.var('b_viewer')),
              array['b01', 'b02', 'b03'],
              'a viewer of the other organisation: only its events');
select is((select count(*)::int from fn_all a where tests.var('a_gone')::uuid = any (a.audience)), 0,
          'an inactive user reads nothing');
select is((select audience from fn_all a join aud_ids l on l.id = a.id where l.label = 'a12'), '{}'::uuid[],
          'addressed to a user of another organisation: nobody reads it');

-- Restricted to some users: only their organisations' events, only them in the audiences.
select set_eq(
    format('select a.id, u.user_id from app.event_audience(''0'', 0, 10000, array[%L, %L]::uuid[]) a cross join lateral unnest(a.audience) as u(user_id)',
           tests.var('a_emp'), tests.var('a_viewer')),
    format('select id, user_id from rls_seen where user_id in (%L, %L)', tests.var('a_emp'), tests.var('a_viewer')),
    'with some users given, the audiences name only them');
select ok((select bool_and(a.org_id = tests.var('b')::uuid)
           from app.event_audience('0', 0, 10000, array[tests.var('b_emp')::uuid]) a),
          'with users of one organisation given, only its events come');

-- Order, resumption and the horizon: api.events_since's rule.
select is((select array_agg(l.label order by a.tx_id, a.id) from fn_all a join aud_ids l on l.id = a.id),
          (select array_agg(l.label order by l.tx_id, l.id) from aud_ids l where l.label <> 'a99'),
          'events in (transaction, id) order');
select is(array(select l.label
                from app.event_audience('0', 0, 10000, null)
                    with ordinality as a(org_id, id, tx_id, body, audience, o)
                join aud_ids l on l.id = a.id
                order by a.o),
          (select array_agg(l.label order by l.tx_id, l.id) from aud_ids l where l.label <> 'a99'),
          'the function itself returns that order');
select is(array(select l.label
                from app.event_audience((select tx_id from aud_ids where label = 'a02'),
                                        (select id from aud_ids where label = 'a02'), 3, null)
                    with ordinality as a(org_id, id, tx_id, body, audience, o)
                join aud_ids l on l.id = a.id
                order by a.o),
          array(select l.label from aud_ids l
                where (l.tx_id, l.id) > (select tx_id, id from aud_ids where label = 'a02')
                  and l.label <> 'a99'
                order by l.tx_id, l.id limit 3),
          'after (tx, id), at most max_rows');
select is((select count(*)::int from app.event_audience('0', 0, 10000, null) a
           join aud_ids l on l.id = a.id where l.label = 'a99'), 0,
          'an event of a transaction still running is not returned');

-- Only the web app may call it; it reads around RLS, with a pinned search_path.
select ok(has_function_privilege('web_app', 'app.event_audience(xid8, bigint, integer, uuid[])', 'execute')
          and not has_function_privilege('authenticated', 'app.event_audience(xid8, bigint, integer, uuid[])', 'execute')
          and not has_function_privilege('anon', 'app.event_audience(xid8, bigint, integer, uuid[])', 'execute'),
          'EXECUTE: web_app only');
select throws_ok('select * from app.event_audience(''0'', 0, 0, null)', '22023',
                 'max_rows must be between 1 and 10000, not 0', 'max_rows 0 is refused');

select * from finish();
rollback;
