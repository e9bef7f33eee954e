-- Results: the module's passing score, attempts, max attempts, self-report.
begin;
select plan(21);

do $$ begin perform tests.engine_org('results'); end $$;
do $$ begin perform tests.set_var('h', tests.assignment_of(tests.var('emp')::uuid, tests.var('m_hipaa')::uuid)::text); end $$;
do $$ begin perform tests.set_var('o', tests.assignment_of(tests.var('emp')::uuid, tests.var('m_osha')::uuid)::text); end $$;

-- The employee may not record a result without self-report.
select tests.authenticate_as(tests.var('emp_user')::uuid);
select throws_ok($$select api.record_assignment_result(tests.var('h')::uuid, 90, now(), 10)$$, '42501', null,
                 'no self-reported results unless the organisation allows them');

-- The manager records for a direct report. HIPAA passes at 70 (the module's score, not 80).
select tests.authenticate_as(tests.var('mgr')::uuid);
select throws_ok($$select api.record_assignment_result(tests.var('h')::uuid, 101, now(), 10)$$, '22023', null,
                 'a score above 100 is refused');
select throws_ok($$select api.record_assignment_result(tests.var('h')::uuid, 50, now() + interval '1 day', 10)$$,
                 '22023', null, 'a result in the future is refused');
select is(api.record_assignment_result(tests.var('h')::uuid, 60, now() - interval '2 hours', 20) ->> 'status',
          'in_progress', 'a score below the passing score stays in progress');
select is((tests.assignment(tests.var('h')::uuid)).attempts, 1, 'and counts an attempt');
select is(api.record_assignment_result(tests.var('h')::uuid, 60, now() - interval '2 hours', 0) ->> 'attempts',
          '1', 'the same result again is not a new attempt');
select is(api.record_assignment_result(tests.var('h')::uuid, 75, now() - interval '1 hour', 15) ->> 'status',
          'completed', '75 passes a module whose passing score is 70');
select is((tests.assignment(tests.var('h')::uuid)).is_late, false, 'completed in time is not late');
select is((tests.assignment(tests.var('h')::uuid)).minutes_spent, 35, 'minutes add up over attempts');
select is((tests.record(tests.record_of(tests.var('emp')::uuid, tests.var('r_hipaa')::uuid))).status::text,
          'approved', 'the linked training requirement is approved by the database');
select throws_ok($$select api.record_assignment_result(tests.var('h')::uuid, 99, now(), 0)$$, 'PT409', null,
                 'a completed assignment takes no more results');

-- OSHA (passing 80, 3 attempts): three failures, then the fourth is refused.
select is(api.record_assignment_result(tests.var('o')::uuid, 79.99, now() - interval '3 hours', 5) ->> 'attempts_left',
          '2', '79.99 fails a module whose passing score is 80');
select lives_ok($$select api.record_assignment_result(tests.var('o')::uuid, 40, now() - interval '2 hours', 5)$$,
                'second failed attempt');
select is(api.record_assignment_result(tests.var('o')::uuid, 50, now() - interval '1 hours', 5) ->> 'attempts_left',
          '0', 'third failed attempt: none left');
select throws_ok($$select api.record_assignment_result(tests.var('o')::uuid, 100, now(), 5)$$, 'PT409',
                 format('assignment %s has used all 3 attempts', tests.var('o')), 'the fourth attempt is refused');
select is((tests.assignment(tests.var('o')::uuid)).score, 50.00, 'the refusal changed nothing');

-- With self-report enabled the employee records their own result.
select tests.clear_authentication();
update app.organizations set employee_self_report = true where id = tests.var('org')::uuid;
select tests.authenticate_as(tests.var('emp_user')::uuid);
select throws_ok(format($$select api.record_assignment_result(%L, 90, now(), 5)$$,
                        tests.assignment_of(tests.var('other')::uuid, tests.var('m_osha')::uuid)),
                 'PT404', null, 'self-report covers only your own assignments');
select tests.clear_authentication();
insert into app.department_training_requirements (org_id, department_id, module_id)
values (tests.var('org')::uuid, tests.var('dept')::uuid, tests.var('m_fire')::uuid);
select tests.authenticate_as(tests.var('emp_user')::uuid);
select is(api.record_assignment_result(tests.assignment_of(tests.var('emp')::uuid, tests.var('m_fire')::uuid),
                                       85, now(), 30) ->> 'status', 'completed',
          'self-reported passing result completes the assignment');
select tests.clear_authentication();

-- Stats follow: HIPAA and Fire completed; OSHA in progress; required = 3.
select is((tests.stats(tests.var('emp')::uuid)).training_completed, 2, 'stats count the completions');
select is((tests.stats(tests.var('emp')::uuid)).training_rate, 66.67, 'rate = completed / required');
select is(tests.verify_stats_count(), 0, 'verify_stats finds nothing to fix');
select * from finish();
rollback;
