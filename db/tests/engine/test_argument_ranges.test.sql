-- Argument ranges (db/functions/105_argument_domains.sql): values the database could store but
-- not live with are refused with 22023, a message naming the argument and the value, and no
-- change; the minutes total has a ceiling that a call cannot pass.
begin;
select plan(24);

do $$ begin perform tests.engine_org('ranges'); end $$;
do $$ begin perform tests.set_var('h', tests.assignment_of(tests.var('emp')::uuid, tests.var('m_hipaa')::uuid)::text); end $$;
do $$ begin perform tests.set_var('o', tests.assignment_of(tests.var('emp')::uuid, tests.var('m_osha')::uuid)::text); end $$;
do $$ begin perform tests.set_var('att', tests.record_of(tests.var('emp')::uuid, tests.var('r_attest')::uuid)::text); end $$;

select tests.authenticate_as(tests.var('hr')::uuid);

-- Minutes: 0 to 1,440 a call.
select throws_ok($$select api.update_assignment_status(tests.var('h')::uuid, 'in_progress', 2000000000)$$,
                 '22023', 'minutes_spent must be between 0 and 1,440 per call, not 2,000,000,000',
                 'two billion minutes in one call are refused, naming the argument and the value');
select throws_ok($$select api.record_assignment_result(tests.var('h')::uuid, 50, now(), 1441)$$,
                 '22023', 'minutes_spent must be between 0 and 1,440 per call, not 1,441',
                 'a result with more than a day of minutes is refused');
select throws_ok($$select api.update_assignment_status(tests.var('h')::uuid, 'in_progress', -1)$$,
                 '22023', 'minutes_spent must be between 0 and 1,440 per call, not -1',
                 'negative minutes are refused');
select is((tests.assignment(tests.var('h')::uuid)).minutes_spent, 0, 'the refused calls changed nothing');
select is(api.update_assignment_status(tests.var('h')::uuid, 'in_progress', 1440) ->> 'minutes_spent', '1440',
          'a whole day is accepted');

-- The total: at most 1,000,000 minutes; a call that would pass it is refused, nothing overflows.
select tests.clear_authentication();
update app.training_assignments set minutes_spent = 999000 where id = tests.var('h')::uuid;
select tests.authenticate_as(tests.var('hr')::uuid);
select is(api.update_assignment_status(tests.var('h')::uuid, 'in_progress', 1000) ->> 'minutes_spent', '1000000',
          'the total may reach 1,000,000');
select throws_ok($$select api.update_assignment_status(tests.var('h')::uuid, 'in_progress', 1)$$,
                 '22023', format('minutes_spent 1 would bring assignment %s to 1,000,001 minutes; at most 1,000,000 in total', tests.var('h')),
                 'a call that would pass the total is refused');
select throws_ok($$select api.record_assignment_result(tests.var('h')::uuid, 50, now(), 1440)$$,
                 '22023', format('minutes_spent 1,440 would bring assignment %s to 1,001,440 minutes; at most 1,000,000 in total', tests.var('h')),
                 'so is a result that would');
select is(((tests.assignment(tests.var('h')::uuid)).minutes_spent, (tests.assignment(tests.var('h')::uuid)).attempts)::text,
          '(1000000,0)', 'and neither changed the assignment');

-- Completion times: finite, 1900 or later, not before the assignment existed, not in the future.
select throws_ok($$select api.record_assignment_result(tests.var('o')::uuid, 90, '-infinity', 10)$$,
                 '22023', 'completed_at -infinity is not a possible completion time', '-infinity is refused');
select throws_ok($$select api.record_assignment_result(tests.var('o')::uuid, 90, 'infinity', 10)$$,
                 '22023', 'completed_at infinity is not a possible completion time', 'infinity is refused');
select throws_like($$select api.record_assignment_result(tests.var('o')::uuid, 90, '0044-03-15 12:00:00+00 BC', 10)$$,
                   'completed_at % BC is not a possible completion time', '44 BC is refused');
select throws_like($$select api.record_assignment_result(tests.var('o')::uuid, 90, '0001-01-01 12:00:00+00', 10)$$,
                   'completed_at 0001-01-01 % is not a possible completion time', 'year 1 is refused');
select throws_like($$select api.record_assignment_result(tests.var('o')::uuid, 90, '1899-12-30 12:00:00+00', 10)$$,
                   'completed_at 1899-12-3% is not a possible completion time', '1899 is refused');
select throws_like($$select api.record_assignment_result(tests.var('o')::uuid, 90,
                          (tests.assignment(tests.var('o')::uuid)).created_at - interval '1 second', 10)$$,
                   'completed_at % is before assignment % existed',
                   'a completion from before the assignment existed is refused');
select is(((tests.assignment(tests.var('o')::uuid)).status, (tests.assignment(tests.var('o')::uuid)).attempts)::text,
          '(not_started,0)', 'the refused results changed nothing');
select is(api.record_assignment_result(tests.var('o')::uuid, 90,
              (tests.assignment(tests.var('o')::uuid)).created_at, 10) ->> 'status',
          'completed', 'a completion at the moment the assignment was created is accepted');

-- Free text: a length limit named in the message; no control characters but tabs and line breaks.
select throws_ok(format($$select api.deactivate_employee(%L, repeat('x', 1048576))$$, tests.var('other')),
                 '22023', 'reason is 1,048,576 characters; at most 2,000', 'a megabyte of reason is refused');
select throws_ok(format($$select api.exempt_assignment(%L, E'on leave\u0007')$$, tests.var('h')),
                 '22023', 'reason contains a control character (U+0007) at position 9',
                 'a control character in a reason is refused, with its position');
select is(api.exempt_assignment(tests.var('h')::uuid, E'on leave\n\tuntil June') ->> 'exemption_reason',
          E'on leave\n\tuntil June', 'line breaks and tabs are fine in a reason');
select throws_ok($$select api.update_requirement_status(tests.var('att')::uuid, E'in_progress\n')$$,
                 '22023', 'status contains a control character (U+000A) at position 12',
                 'a status is one line');
select throws_ok($$select api.request_sync(repeat('full', 26))$$,
                 '22023', 'type is 104 characters; at most 100', 'a sync type is short');

-- Evidence: at most 65,536 characters of JSON.
select tests.authenticate_as(tests.var('emp_user')::uuid);
select throws_ok($$select api.submit_requirement(tests.var('att')::uuid, jsonb_build_object('note', repeat('x', 70000)))$$,
                 '22023', 'evidence is 70,012 characters of JSON; at most 65,536', 'oversized evidence is refused');
select is((tests.record(tests.var('att')::uuid)).status::text, 'pending', 'and the record is unchanged');

select * from finish();
rollback;
