-- Employee lifecycle: a new active employee is initialised in the same transaction.
begin;
select plan(17);

do $$ begin perform tests.engine_org('init'); end $$;

-- The fixture's employee Ann (job title Staff, department General, started today).
select is((select count(*)::int from app.training_assignments a where a.employee_id = tests.var('emp')::uuid),
          2, 'a new hire gets the new-hire module and the department''s module');
select is((select a.due_date from app.training_assignments a
           where a.employee_id = tests.var('emp')::uuid and a.module_id = tests.var('m_hipaa')::uuid),
          tests.today() + 7, 'new-hire module due start date + the module''s grace period');
select is((select a.due_date from app.training_assignments a
           where a.employee_id = tests.var('emp')::uuid and a.module_id = tests.var('m_osha')::uuid),
          tests.today() + 30, 'department module due on the module''s due date (later than start + grace)');
select is((select et.tier_id from app.employee_tiers et where et.employee_id = tests.var('emp')::uuid),
          tests.var('bronze')::uuid, 'an unmapped job title starts in the default tier');
select is((select array_agg(er.status::text order by er.status::text) from app.employee_requirements er
           where er.employee_id = tests.var('emp')::uuid),
          array['pending', 'pending', 'pending'], 'the tier''s requirements are pending');
select is((select (s.training_assigned, s.total_requirements, s.total_points)::text
           from app.employee_compliance_stats s where s.employee_id = tests.var('emp')::uuid),
          '(2,3,15)', 'a stats row with the figures');
select is(tests.audit_count(tests.var('emp')::uuid, 'employee_initialized'), 1,
          'audit event employee_initialized');
select is(tests.event_count(tests.var('emp')::uuid, 'employee.created'), 1, 'event employee.created');
select is((select h.kind::text || ':' || h.to_tier_id::text from app.employee_tier_history h
           where h.employee_id = tests.var('emp')::uuid),
          'initial:' || tests.var('bronze'), 'tier history row of kind initial');

-- HR admin creates a nurse through the API: mapped tier, starts a month ago in Surgery (no rule).
select tests.authenticate_as(tests.var('hr')::uuid, 'POST', '/employees');
insert into api.employees (email, first_name, last_name, job_title, start_date, department_id)
values ('nina@init.example', 'Nina', 'Nurse', 'nurse', tests.today() - 30, tests.var('dept2')::uuid);
do $$ begin perform tests.set_var('nina', (select e.id from api.employees e where e.email = 'nina@init.example')::text); end $$;
select tests.clear_authentication();
select is((select et.tier_id from app.employee_tiers et where et.employee_id = tests.var('nina')::uuid),
          tests.var('silver')::uuid, 'the job title (any case) maps to its tier');
select is((select count(*)::int from app.employee_requirements er
           where er.employee_id = tests.var('nina')::uuid and er.status = 'pending'),
          5, 'the mapped tier''s requirements and the lower tier''s are pending (an initial tier above the first)');
select is((select a.status::text || ' ' || (a.due_date - app.org_today(a.org_id)) from app.training_assignments a
           where a.employee_id = tests.var('nina')::uuid and a.module_id = tests.var('m_hipaa')::uuid),
          'not_started 7', 'a new-hire module whose start + grace has passed is due today + grace, never in the past');
select is((select count(*)::int from app.training_assignments a where a.employee_id = tests.var('nina')::uuid),
          1, 'no department module for a department without rules');
select is((select x.kind::text from app.assignment_exceptions x
           where x.employee_id = tests.var('nina')::uuid and x.module_id = tests.var('m_hipaa')::uuid),
          'overdue_on_arrival', '... and an exception case says it would have been overdue on arrival');

-- An employee inserted inactive is not initialised, but has stats.
insert into app.employees (org_id, email, first_name, last_name, status)
values (tests.var('org')::uuid, 'gone@init.example', 'Gone', 'Person', 'terminated');
select is((select count(*)::int from app.training_assignments a
           join app.employees e on e.org_id = a.org_id and e.id = a.employee_id
           where e.email = 'gone@init.example'), 0, 'an inactive new employee gets no assignments');
select is((select count(*)::int from app.employee_compliance_stats s
           join app.employees e on e.org_id = s.org_id and e.id = s.employee_id
           where e.email = 'gone@init.example'), 1, '... but a stats row');

select is(tests.verify_stats_count(), 0, 'verify_stats finds nothing to fix');

select * from finish();
rollback;
