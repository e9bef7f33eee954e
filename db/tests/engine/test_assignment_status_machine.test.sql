-- The training status machine, for every writer: derivation and transitions.
begin;
select plan(22);

do $$ begin perform tests.engine_org('machine'); end $$;
do $$ begin perform tests.set_var('a', tests.assignment_of(tests.var('emp')::uuid, tests.var('m_osha')::uuid)::text); end $$;
do $$ begin perform tests.set_var('h', tests.assignment_of(tests.var('emp')::uuid, tests.var('m_hipaa')::uuid)::text); end $$;

-- As the employee (own assignment).
select tests.authenticate_as(tests.var('emp_user')::uuid);
select is(api.update_assignment_status(tests.var('a')::uuid, 'in_progress', 15) ->> 'status', 'in_progress',
          'not_started -> in_progress by the employee');
select is((tests.assignment(tests.var('a')::uuid)).minutes_spent, 15, 'minutes spent are added');
select throws_ok($$select api.update_assignment_status(tests.var('a')::uuid, 'not_started')$$, 'PT409',
                 format('assignment %s cannot move from in_progress to not_started', tests.var('a')),
                 'in_progress -> not_started is refused with PT409');
select throws_ok($$select api.update_assignment_status(tests.var('a')::uuid, 'completed')$$, '42501', null,
                 'an employee may not complete their own assignment without self-report');
select throws_ok($$select api.update_assignment_status(tests.var('a')::uuid, 'exempted')$$, '22023', null,
                 'exempted is not a status update');
select throws_ok($$select api.update_assignment_status(tests.var('a')::uuid, 'overdue')$$, '22023', null,
                 'overdue is the database''s');
select throws_ok($$select api.update_assignment_status(tests.var('a')::uuid, 'in_progress', -5)$$, '22023', null,
                 'negative minutes are refused');
select throws_ok(format($$select api.update_assignment_status(%L, 'in_progress')$$,
                        tests.assignment_of(tests.var('other')::uuid, tests.var('m_osha')::uuid)),
                 'PT404', null, 'an employee cannot reach another employee''s assignment');

-- The manager (Ann is a direct report; Bob is not).
select tests.authenticate_as(tests.var('mgr')::uuid);
select throws_ok(format($$select api.update_assignment_status(%L, 'in_progress')$$,
                        tests.assignment_of(tests.var('other')::uuid, tests.var('m_osha')::uuid)),
                 '42501', null, 'a manager may not change someone else''s report');
select is(api.update_assignment_status(tests.var('a')::uuid, 'completed') ->> 'status', 'completed',
          'a manager completes a direct report''s assignment (no score)');
select isnt((tests.assignment(tests.var('a')::uuid)).completion_date, null, 'completion date set');
select throws_ok($$select api.update_assignment_status(tests.var('a')::uuid, 'in_progress')$$, 'PT409', null,
                 'completed is final');

-- The viewer may not write.
select tests.authenticate_as(tests.var('viewer')::uuid);
select throws_ok($$select api.update_assignment_status(tests.var('h')::uuid, 'in_progress')$$, '42501', null,
                 'a viewer may not change assignments');
select tests.clear_authentication();

-- Overdue on write, late completion: move HIPAA's due date into the past (an operator write).
update app.training_assignments set due_date = tests.today() - 10 where id = tests.var('h')::uuid;
select is((tests.assignment(tests.var('h')::uuid)).status::text, 'overdue',
          'past due + grace: overdue on write');
select is(tests.error_of($$update app.training_assignments set status = 'not_started' where id = tests.var('h')::uuid$$)
          - 'message',
          jsonb_build_object('code', 'PT409',
              'detail', format('Assignment %s is overdue; the change asked for not_started.', tests.var('h')),
              'hint', 'Allowed: not_started -> in_progress/completed/exempted, in_progress -> completed/exempted, overdue -> completed/exempted, exempted -> not_started (HR admins); completed is final.'),
          'a refusal names the assignment, from and to in DETAIL, what is allowed in HINT');
select tests.authenticate_as(tests.var('hr')::uuid);
select is(api.update_assignment_status(tests.var('h')::uuid, 'in_progress') ->> 'status', 'overdue',
          'in_progress asked on an overdue assignment stays overdue');
select is(api.update_assignment_status(tests.var('h')::uuid, 'completed') ->> 'is_late', 'true',
          'overdue -> completed is allowed and flagged late');
select tests.clear_authentication();


-- Every writer goes through the same rules: an operator update.
select throws_ok($$update app.training_assignments set status = 'not_started' where id = tests.var('h')::uuid$$,
                 'PT409', null, 'a direct UPDATE is held to the same machine');
select throws_ok(format($$update app.training_assignments set status = 'overdue' where id = %L$$,
                        tests.assignment_of(tests.var('other')::uuid, tests.var('m_osha')::uuid)),
                 'PT409', null, 'overdue cannot be set before the due date has passed');
-- A sync-style insert with a passing score is completed whatever status it sent.
insert into app.training_assignments (org_id, employee_id, module_id, due_date, status, score, completion_date)
values (tests.var('org')::uuid, tests.var('other')::uuid, tests.var('m_fire')::uuid, tests.today() + 60,
        'in_progress', 95, now());
select is((tests.assignment(tests.assignment_of(tests.var('other')::uuid, tests.var('m_fire')::uuid))).status::text,
          'completed', 'score >= passing with a completion date: completed');
select is((tests.assignment(tests.assignment_of(tests.var('other')::uuid, tests.var('m_fire')::uuid))).attempts,
          1, 'the result counts as an attempt');
select is(tests.verify_stats_count(), 0, 'verify_stats finds nothing to fix');

select * from finish();
rollback;
