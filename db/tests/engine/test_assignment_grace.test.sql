-- Each assignment carries the grace days that govern it: the department rule's, else the module's.
begin;
select plan(4);

do $$ begin perform tests.engine_org('grace'); end $$;
update app.department_training_requirements set grace_days = 3
where org_id = tests.var('org')::uuid and module_id = tests.var('m_osha')::uuid;
do $$ begin perform tests.set_var('new', tests.create_employee(tests.var('org')::uuid, 'new@grace.example')::text); end $$;

select is((tests.assignment(tests.assignment_of(tests.var('new')::uuid, tests.var('m_osha')::uuid))).grace_days, 3,
          'a department rule''s grace days govern its assignments');
select is((tests.assignment(tests.assignment_of(tests.var('new')::uuid, tests.var('m_hipaa')::uuid))).grace_days, 7,
          'the module''s grace days apply where no rule says');

-- On due date + 3 it is still open; the day after, overdue (the module's 7 days do not apply).
select set_config('app.today', ((tests.assignment(tests.assignment_of(tests.var('new')::uuid, tests.var('m_osha')::uuid))).due_date + 3)::text, true);
update app.training_assignments set status = 'in_progress' where id = tests.assignment_of(tests.var('new')::uuid, tests.var('m_osha')::uuid);
select is((tests.assignment(tests.assignment_of(tests.var('new')::uuid, tests.var('m_osha')::uuid))).status, 'in_progress'::app.assignment_status,
          'open on the last day of the rule''s grace');
select set_config('app.today', ((tests.assignment(tests.assignment_of(tests.var('new')::uuid, tests.var('m_osha')::uuid))).due_date + 4)::text, true);
update app.training_assignments set minutes_spent = 5 where id = tests.assignment_of(tests.var('new')::uuid, tests.var('m_osha')::uuid);
select is((tests.assignment(tests.assignment_of(tests.var('new')::uuid, tests.var('m_osha')::uuid))).status, 'overdue'::app.assignment_status,
          'overdue once the rule''s grace has passed');

select * from finish();
rollback;
