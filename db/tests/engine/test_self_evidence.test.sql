-- Evidence about oneself needs another person (HIPAA), as a review of one's own submission is
-- refused: an HR admin or superadmin may not exempt or un-exempt their own assignment, record
-- their own result, set their own requirement record inactive or switch their own tier by hand,
-- unless the organisation enables hr_self_evidence (off by default). On their own record they act
-- as an employee: progress, submissions, advancement when eligible, and results when the
-- organisation enables employee_self_report.
begin;
select plan(25);

do $$ begin perform tests.engine_org('selfev'); end $$;
-- HR admin Hanna and superadmin Sam have employee records; tests.var('hr') is a second HR admin.
select tests.set_var('hanna', tests.create_employee(tests.var('org')::uuid, 'hanna@selfev.example')::text);
select tests.set_var('hanna_user', tests.create_user(tests.var('org')::uuid, 'hr_admin', 'hanna@selfev.example',
                                                     tests.var('hanna')::uuid)::text);
select tests.set_var('sam', tests.create_employee(tests.var('org')::uuid, 'sam@selfev.example')::text);
select tests.set_var('sam_user', tests.create_user(tests.var('org')::uuid, 'superadmin', 'sam@selfev.example',
                                                   tests.var('sam')::uuid)::text);
do $$ begin perform tests.set_var('h_osha', tests.assignment_of(tests.var('hanna')::uuid, tests.var('m_osha')::uuid)::text); end $$;
do $$ begin perform tests.set_var('h_hipaa', tests.assignment_of(tests.var('hanna')::uuid, tests.var('m_hipaa')::uuid)::text); end $$;
do $$ begin perform tests.set_var('h_att', tests.record_of(tests.var('hanna')::uuid, tests.var('r_attest')::uuid)::text); end $$;
do $$ begin perform tests.set_var('s_osha', tests.assignment_of(tests.var('sam')::uuid, tests.var('m_osha')::uuid)::text); end $$;
do $$ begin perform tests.set_var('emp_osha', tests.assignment_of(tests.var('emp')::uuid, tests.var('m_osha')::uuid)::text); end $$;
select is((select hr_self_evidence from app.organizations where id = tests.var('org')::uuid), false,
          'hr_self_evidence is off by default');

-- Off: Hanna may not produce evidence about herself.
select tests.authenticate_as(tests.var('hanna_user')::uuid);
select throws_ok($$select api.exempt_assignment(tests.var('h_osha')::uuid, 'I took it elsewhere')$$, '42501',
                 'you may not exempt or un-exempt your own assignment ' || tests.var('h_osha')
                 || ': evidence about yourself needs another person',
                 'an HR admin may not exempt her own assignment');
select throws_like($$select api.record_assignment_result(tests.var('h_hipaa')::uuid, 95, now(), 20)$$,
                   'you may not record the completion or score of your own assignment %: evidence about yourself needs another person',
                   'nor record her own passing score');
select throws_ok($$select api.update_assignment_status(tests.var('h_osha')::uuid, 'completed')$$, '42501', null,
                 'nor complete her own assignment');
select throws_like($$select api.update_requirement_status(tests.var('h_att')::uuid, 'inactive')$$,
                   'you may not set your own requirement record % inactive: evidence about yourself needs another person',
                   'nor set her own requirement record inactive');
select throws_like($$select api.switch_tier(tests.var('hanna')::uuid, tests.var('gold')::uuid, 'promote me')$$,
                   'you may only advance yourself to the next tier',
                   'nor switch her own tier by hand');
-- She still acts as an employee on her own record, and as HR on everyone else's.
select is(api.update_assignment_status(tests.var('h_osha')::uuid, 'in_progress') ->> 'status', 'in_progress',
          'she records progress on her own assignment');
select is(api.submit_requirement(tests.var('h_att')::uuid, '{"note": "signed"}') ->> 'status', 'submitted',
          'she submits her own evidence');
select throws_ok($$select api.review_requirement(tests.var('h_att')::uuid, 'approved', null)$$, '42501', null,
                 'and cannot review it');
select is(api.exempt_assignment(tests.var('emp_osha')::uuid, 'on leave') ->> 'status', 'exempted',
          'she exempts someone else''s assignment');
select tests.clear_authentication();
select is((tests.assignment(tests.var('h_osha')::uuid)).status::text, 'in_progress', 'her assignment was not exempted');
select is((tests.assignment(tests.var('h_hipaa')::uuid)).score, null::numeric, 'no score was recorded');
select is((tests.assignment(tests.var('h_hipaa')::uuid)).attempts, 0, 'no attempt was counted');
select is((select tier_id from app.employee_tiers where employee_id = tests.var('hanna')::uuid),
          tests.var('bronze')::uuid, 'her tier is unchanged');
select is(tests.audit_count(tests.var('hanna')::uuid, 'assignment_exempted'), 0, 'no exemption was audited');

-- A superadmin is held to the same rule.
select tests.authenticate_as(tests.var('sam_user')::uuid);
select throws_like($$select api.exempt_assignment(tests.var('s_osha')::uuid, 'mine')$$,
                   '%evidence about yourself needs another person', 'a superadmin may not exempt their own assignment');
select tests.clear_authentication();

-- Another HR admin does it: evidence about Hanna from another person.
select tests.authenticate_as(tests.var('hr')::uuid);
select is(api.exempt_assignment(tests.var('h_osha')::uuid, 'took it at her previous employer') ->> 'status',
          'exempted', 'another HR admin exempts Hanna''s assignment');
select is(api.review_requirement(tests.var('h_att')::uuid, 'approved', null) ->> 'status', 'approved',
          'and reviews her submission');
select tests.clear_authentication();
select tests.authenticate_as(tests.var('hanna_user')::uuid);
select throws_like($$select api.unexempt_assignment(tests.var('h_osha')::uuid, 'changed my mind')$$,
                   'you may not exempt or un-exempt your own assignment %', 'she may not un-exempt it herself');
select tests.clear_authentication();

-- employee_self_report on: she records her own result as any employee may.
update app.organizations set employee_self_report = true where id = tests.var('org')::uuid;
select tests.authenticate_as(tests.var('hanna_user')::uuid);
select is(api.record_assignment_result(tests.var('h_hipaa')::uuid, 60, now(), 20) ->> 'status', 'in_progress',
          'with employee self-report she records her own result, as an employee');
select throws_like($$select api.exempt_assignment(tests.var('h_hipaa')::uuid, 'mine')$$,
                   '%evidence about yourself needs another person', 'but still may not exempt her own assignment');
select tests.clear_authentication();
update app.organizations set employee_self_report = false where id = tests.var('org')::uuid;

-- hr_self_evidence on (a superadmin sets it through /organizations): HR admins act on their own.
select tests.authenticate_as(tests.var('sam_user')::uuid, 'PATCH', '/organizations');
update api.organizations set hr_self_evidence = true where id = tests.var('org')::uuid;
select is((select hr_self_evidence from api.organizations where id = tests.var('org')::uuid), true,
          'a superadmin enables hr_self_evidence');
select tests.clear_authentication();
select tests.authenticate_as(tests.var('hanna_user')::uuid);
select is(api.unexempt_assignment(tests.var('h_osha')::uuid, 'taking it here after all') ->> 'status', 'not_started',
          'enabled: she un-exempts her own assignment');
select is(api.record_assignment_result(tests.var('h_hipaa')::uuid, 95, now(), 20) ->> 'status', 'completed',
          'records her own passing score');
select is(api.switch_tier(tests.var('hanna')::uuid, tests.var('gold')::uuid, 'as decided') ->> 'kind', 'manual',
          'and switches her own tier by hand');
select tests.clear_authentication();

select * from finish();
rollback;
