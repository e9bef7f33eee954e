-- Exemptions: HR admins and superadmins only, with a reason; back to not_started the same way.
begin;
select plan(16);

do $$ begin perform tests.engine_org('exempt'); end $$;
do $$ begin perform tests.set_var('o', tests.assignment_of(tests.var('emp')::uuid, tests.var('m_osha')::uuid)::text); end $$;
do $$ begin perform tests.set_var('h', tests.assignment_of(tests.var('emp')::uuid, tests.var('m_hipaa')::uuid)::text); end $$;

select tests.authenticate_as(tests.var('mgr')::uuid);
select throws_ok($$select api.exempt_assignment(tests.var('o')::uuid, 'on leave')$$, '42501', null,
                 'a manager may not exempt');
select tests.authenticate_as(tests.var('emp_user')::uuid);
select throws_ok($$select api.exempt_assignment(tests.var('o')::uuid, 'on leave')$$, '42501', null,
                 'an employee may not exempt');
select tests.authenticate_as(tests.var('hr')::uuid);
select throws_ok($$select api.exempt_assignment(tests.var('o')::uuid, '')$$, '22023', null,
                 'an exemption needs a reason');
select throws_ok($$select api.exempt_assignment(gen_random_uuid(), 'x')$$, 'PT404', null,
                 'an unknown assignment is 404');
select is(api.exempt_assignment(tests.var('o')::uuid, 'certified elsewhere') ->> 'status', 'exempted',
          'HR admin exempts with a reason');
select is((tests.assignment(tests.var('o')::uuid)).exempted_by, tests.var('hr')::uuid, 'exempted_by is the HR admin');
select throws_ok($$select api.exempt_assignment(tests.var('o')::uuid, 'again')$$, 'PT409', null,
                 'exempting twice is a conflict');
select throws_ok($$select api.record_assignment_result(tests.var('o')::uuid, 90, now(), 0)$$, 'PT409', null,
                 'an exempted assignment takes no results');
select tests.clear_authentication();
select is(((tests.stats(tests.var('emp')::uuid)).training_exempted, (tests.stats(tests.var('emp')::uuid)).training_rate)::text,
          '(1,0.00)', 'exempted counts in training_exempted and leaves the rate''s denominator');
select tests.authenticate_as(tests.var('hr')::uuid);
select lives_ok($$select api.update_assignment_status(tests.var('h')::uuid, 'completed')$$, 'complete HIPAA');
select throws_ok($$select api.exempt_assignment(tests.var('h')::uuid, 'late')$$, 'PT409', null,
                 'a completed assignment cannot be exempted');
select tests.clear_authentication();
select is((tests.stats(tests.var('emp')::uuid)).training_rate, 100.00, 'one completed of one non-exempted: 100 %');

select tests.authenticate_as(tests.var('mgr')::uuid);
select throws_ok($$select api.unexempt_assignment(tests.var('o')::uuid, 'back')$$, '42501', null,
                 'a manager may not un-exempt');
select tests.authenticate_as(tests.var('superadmin')::uuid);
select throws_ok($$select api.unexempt_assignment(tests.var('h')::uuid, 'back')$$, 'PT409', null,
                 'un-exempting a non-exempted assignment is a conflict');
select is(api.unexempt_assignment(tests.var('o')::uuid, 'no longer certified') ->> 'status', 'not_started',
          'a superadmin un-exempts: back to not_started');
select tests.clear_authentication();
select is(tests.audit_count(tests.var('emp')::uuid, 'assignment_unexempted'), 1, 'the reason is audited');
select * from finish();
rollback;
