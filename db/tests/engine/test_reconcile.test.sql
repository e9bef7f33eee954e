-- Assignments follow the organisation as it changes (issue 13 items 1, 2): the database reconciles
-- who must do what whenever an employee or the catalog changes, due dates are never in the past on
-- the day they are made, and what nobody requires any more stops counting (kept, with the reason).
begin;
select plan(47);

-- The organisation's day is pinned: 2026-06-15.
select set_config('app.today', '2026-06-15', true);
select 'setup: ' || tests.set_var('org', tests.create_org('recon')::text);
insert into app.departments (org_id, name) values (tests.var('org')::uuid, 'Lab');
select 'setup: ' || tests.set_var('general', (select id::text from app.departments where org_id = tests.var('org')::uuid and name = 'General'));
select 'setup: ' || tests.set_var('lab', (select id::text from app.departments where org_id = tests.var('org')::uuid and name = 'Lab'));
insert into app.training_modules (org_id, name, month_key, due_date, required_for_new_hires, grace_period_days)
values (tests.var('org')::uuid, 'Onboarding', '2026-01', null, true, 7),
       (tests.var('org')::uuid, 'Bloodborne Pathogens', '2026-01', '2026-01-31', false, 7),
       (tests.var('org')::uuid, 'Fire Safety', '2026-09', '2026-09-30', false, 7),
       (tests.var('org')::uuid, 'Ad hoc', '2026-02', '2026-02-28', false, 7);
select 'setup: ' || tests.set_var('m_nh', (select id::text from app.training_modules where org_id = tests.var('org')::uuid and name = 'Onboarding'));
select 'setup: ' || tests.set_var('m_bbp', (select id::text from app.training_modules where org_id = tests.var('org')::uuid and name = 'Bloodborne Pathogens'));
select 'setup: ' || tests.set_var('m_fire', (select id::text from app.training_modules where org_id = tests.var('org')::uuid and name = 'Fire Safety'));
select 'setup: ' || tests.set_var('m_adhoc', (select id::text from app.training_modules where org_id = tests.var('org')::uuid and name = 'Ad hoc'));
-- The Lab requires bloodborne-pathogens training, with its own 14 grace days.
insert into app.department_training_requirements (org_id, department_id, module_id, grace_days, effective_start)
values (tests.var('org')::uuid, tests.var('lab')::uuid, tests.var('m_bbp')::uuid, 14, '2026-01-01');

-- Go-live import: Olga (hired 2015, General), Nina (starts 2026-06-20, General), Leo (hired 2015, Lab),
-- Dora (hired 2016, Lab).
insert into app.employees (org_id, email, first_name, last_name, start_date, department_id)
values (tests.var('org')::uuid, 'olga@recon.example', 'Olga', 'Old', '2015-03-01', tests.var('general')::uuid),
       (tests.var('org')::uuid, 'nina@recon.example', 'Nina', 'New', '2026-06-20', tests.var('general')::uuid),
       (tests.var('org')::uuid, 'leo@recon.example', 'Leo', 'Lab', '2015-05-01', tests.var('lab')::uuid),
       (tests.var('org')::uuid, 'dora@recon.example', 'Dora', 'Done', '2016-05-01', tests.var('lab')::uuid);
select 'setup: ' || tests.set_var('olga', (select id::text from app.employees where email = 'olga@recon.example'));
select 'setup: ' || tests.set_var('nina', (select id::text from app.employees where email = 'nina@recon.example'));
select 'setup: ' || tests.set_var('leo', (select id::text from app.employees where email = 'leo@recon.example'));
select 'setup: ' || tests.set_var('dora', (select id::text from app.employees where email = 'dora@recon.example'));
select 'setup: ' || tests.set_var('hr', tests.create_user(tests.var('org')::uuid, 'hr_admin', 'hr@recon.example')::text);
select 'setup: ' || tests.set_var('mgr', tests.create_user(tests.var('org')::uuid, 'manager', 'leo@recon.example', tests.var('leo')::uuid)::text);
select 'setup: ' || tests.set_var('nina_user', tests.create_user(tests.var('org')::uuid, 'employee', 'nina@recon.example', tests.var('nina')::uuid)::text);

-- 1-6. Due dates are never in the past on the day they are made.
select is((tests.assignment(tests.assignment_of(tests.var('nina')::uuid, tests.var('m_nh')::uuid))).due_date,
          '2026-06-27'::date, 'a new hire: start date + the module''s grace');
select is((tests.assignment(tests.assignment_of(tests.var('olga')::uuid, tests.var('m_nh')::uuid))).due_date,
          '2026-06-22'::date, 'long-standing staff imported at go-live: the day they became subject + grace, not their hire date');
select is((select (a.due_date, a.grace_days)::text from app.training_assignments a
           where a.id = tests.assignment_of(tests.var('leo')::uuid, tests.var('m_bbp')::uuid)),
          '(2026-06-29,14)', 'a department rule whose due date passed: the day + the RULE''s grace days, which govern the row');
select is((select count(*)::int from app.training_assignments a
           where a.org_id = tests.var('org')::uuid and a.due_date < '2026-06-15'), 0,
          'no assignment is due before the day it was made');
select is((select x.message from app.assignment_exceptions x
           where x.kind = 'overdue_on_arrival' and x.employee_id = tests.var('leo')::uuid),
          'Leo Lab was assigned 2 trainings whose due dates the rules gave had already passed, so each is due the day assigned + its grace days: '
          'Bloodborne Pathogens (assigned 2026-06-15; the rules gave 2026-01-31; due 2026-06-29, 14 grace days); '
          'Onboarding (assigned 2026-06-15; the rules gave 2015-05-08; due 2026-06-22, 7 grace days)',
          'one overdue_on_arrival case per person says what the rules could not honour, module by module, with the dates');
select is((select count(*)::int from app.assignment_exceptions x where x.employee_id = tests.var('nina')::uuid), 0,
          'a new hire whose due date is ahead raises no case');

-- Dora completed her bloodborne-pathogens training.
update app.training_assignments set score = 95, completion_date = '2026-06-10 10:00+00'
where id = tests.assignment_of(tests.var('dora')::uuid, tests.var('m_bbp')::uuid);
-- Olga has a training given by hand, for a module no rule mentions.
insert into app.training_assignments (org_id, employee_id, module_id, due_date)
values (tests.var('org')::uuid, tests.var('olga')::uuid, tests.var('m_adhoc')::uuid, '2026-07-31');

-- 7-12. A department move, through the API as an HR admin (OSHA 1910.1030: first assigned to exposure tasks).
select tests.authenticate_as(tests.var('hr')::uuid, 'PATCH', '/employees');
update api.employees set department_id = tests.var('lab')::uuid where id = tests.var('olga')::uuid;
update api.employees set department_id = tests.var('general')::uuid where id in (tests.var('leo')::uuid, tests.var('dora')::uuid);
select tests.clear_authentication();
select is((select (a.due_date, a.is_required)::text from app.training_assignments a
           where a.id = tests.assignment_of(tests.var('olga')::uuid, tests.var('m_bbp')::uuid)),
          '(2026-06-29,t)', 'moving into the Lab assigns its rule''s module at once, due the day + the rule''s grace');
select is((select (a.status, a.is_required, a.not_required_reason, a.required_until is not null)::text
           from app.training_assignments a
           where a.id = tests.assignment_of(tests.var('leo')::uuid, tests.var('m_bbp')::uuid)),
          '(not_started,f,department_changed,t)', 'moving out: the open assignment is kept but stops counting, with the reason');
select is((select (a.status, a.is_required)::text from app.training_assignments a
           where a.id = tests.assignment_of(tests.var('dora')::uuid, tests.var('m_bbp')::uuid)),
          '(completed,t)', 'a completed one stays as it is (history)');
select is((select a.is_required from app.training_assignments a
           where a.id = tests.assignment_of(tests.var('olga')::uuid, tests.var('m_adhoc')::uuid)),
          true, 'a training given by hand for a module no rule mentions is left alone');
select is((tests.stats(tests.var('leo')::uuid)).training_assigned, 1, 'stats: Leo counts only his onboarding now');
select is((select count(*)::int from app.verify_compliance_counters()), 0, 'the compliance counters follow');

-- 13-14. Moving back: the same open assignment counts again (no duplicate).
update app.employees set department_id = tests.var('lab')::uuid where id = tests.var('leo')::uuid;
select is((select count(*)::int from app.training_assignments
           where employee_id = tests.var('leo')::uuid and module_id = tests.var('m_bbp')::uuid), 1,
          'moving back re-requires the kept assignment instead of adding one');
select is((select (a.is_required, a.not_required_reason)::text from app.training_assignments a
           where a.id = tests.assignment_of(tests.var('leo')::uuid, tests.var('m_bbp')::uuid)),
          '(t,)', '... which counts again');

-- 15-17. A rule added mid-year reaches the department's current staff (HR admin, through the API).
select tests.authenticate_as(tests.var('hr')::uuid, 'POST', '/department_training_requirements');
insert into api.department_training_requirements (department_id, module_id, grace_days, effective_start)
values (tests.var('general')::uuid, tests.var('m_fire')::uuid, 10, '2026-06-01');
select tests.clear_authentication();
select is((select array_agg(a.due_date::text order by e.email) from app.training_assignments a
           join app.employees e on e.org_id = a.org_id and e.id = a.employee_id
           where a.module_id = tests.var('m_fire')::uuid),
          array['2026-09-30', '2026-09-30'], 'a new rule assigns its module to the department''s staff, due on the module''s date (still ahead)');
select is((select count(*)::int from app.assignment_exceptions x where x.module_id = tests.var('m_fire')::uuid), 0,
          'a due date still ahead raises no case');
-- A manager may not add rules: refused, nothing assigned.
select tests.authenticate_as(tests.var('mgr')::uuid, 'POST', '/department_training_requirements');
select throws_ok(format($$insert into api.department_training_requirements (department_id, module_id) values (%L, %L)$$,
                        tests.var('lab'), tests.var('m_fire')),
                 '42501', null, 'a manager may not add a department rule');
select tests.clear_authentication();

-- 18-20. Changing a rule's due date moves its open assignments, notifies, audits.
select tests.authenticate_as(tests.var('hr')::uuid, 'PATCH', '/department_training_requirements');
update api.department_training_requirements set due_date = '2026-10-15'
where department_id = tests.var('general')::uuid and module_id = tests.var('m_fire')::uuid;
select tests.clear_authentication();
select is((tests.assignment(tests.assignment_of(tests.var('nina')::uuid, tests.var('m_fire')::uuid))).due_date,
          '2026-10-15'::date, 'a rule''s new due date moves its open assignments');
select is(tests.notification_count(tests.var('nina_user')::uuid, 'assignment.due_date_changed'), 1,
          'the employee is told');
select ok((select count(*) > 0 from audit.log l
           where l.table_name = 'training_assignments' and l.op = 'UPDATE'
             and l.entity_id = tests.assignment_of(tests.var('nina')::uuid, tests.var('m_fire')::uuid)::text),
          'the move is in the audit trail');

-- 21-22. A module's due date moves the open assignments that carry it, not those a rule dates itself.
update app.training_modules set due_date = '2026-11-30' where id = tests.var('m_fire')::uuid;
select is((tests.assignment(tests.assignment_of(tests.var('nina')::uuid, tests.var('m_fire')::uuid))).due_date,
          '2026-10-15'::date, 'the rule''s own due date wins over the module''s');
update app.training_modules set due_date = '2026-08-31' where id = tests.var('m_bbp')::uuid;
insert into app.employees (org_id, email, first_name, last_name, start_date, department_id)
values (tests.var('org')::uuid, 'lia@recon.example', 'Lia', 'Later', '2016-01-01', tests.var('lab')::uuid);
update app.training_modules set due_date = '2026-09-15' where id = tests.var('m_bbp')::uuid;
select is((select a.due_date from app.training_assignments a join app.employees e on e.id = a.employee_id
           where e.email = 'lia@recon.example' and a.module_id = tests.var('m_bbp')::uuid),
          '2026-09-15'::date, 'a module''s new due date moves the open assignments that carried the old one');

-- 23-24. A rule's grace change governs its open assignments.
update app.department_training_requirements set grace_days = 21
where department_id = tests.var('lab')::uuid and module_id = tests.var('m_bbp')::uuid;
select is((tests.assignment(tests.assignment_of(tests.var('olga')::uuid, tests.var('m_bbp')::uuid))).grace_days,
          21, 'a rule''s new grace days apply to its open assignments');
select is((tests.assignment(tests.assignment_of(tests.var('dora')::uuid, tests.var('m_bbp')::uuid))).grace_days,
          14, '... not to completed ones (history)');

-- 25-26. A rule that ends releases what it made.
delete from app.department_training_requirements
where department_id = tests.var('general')::uuid and module_id = tests.var('m_fire')::uuid;
select is((select array_agg(distinct coalesce(a.not_required_reason, 'counts')) from app.training_assignments a
           where a.module_id = tests.var('m_fire')::uuid),
          array['rule_ended'], 'deleting a rule: its open assignments stop counting (reason rule_ended)');
select is((select count(*)::int from app.training_assignments a where a.module_id = tests.var('m_fire')::uuid), 2,
          '... and are kept');

-- An UPDATE that ends the Lab's rule (effective_end before the day) releases its open assignments;
-- reopening it re-requires them.
update app.department_training_requirements set effective_end = '2026-06-14'
where department_id = tests.var('lab')::uuid and module_id = tests.var('m_bbp')::uuid;
select is((select (a.is_required, a.not_required_reason)::text from app.training_assignments a
           where a.id = tests.assignment_of(tests.var('leo')::uuid, tests.var('m_bbp')::uuid)),
          '(f,rule_ended)', 'ending a rule by its effective dates releases its open assignments (reason rule_ended)');
update app.department_training_requirements set effective_end = null
where department_id = tests.var('lab')::uuid and module_id = tests.var('m_bbp')::uuid;
select is((select (a.is_required, a.not_required_reason)::text from app.training_assignments a
           where a.id = tests.assignment_of(tests.var('leo')::uuid, tests.var('m_bbp')::uuid)),
          '(t,)', 'reopening it re-requires them');

-- 27-28. A rule that takes effect later reaches staff on that day (the daily job).
insert into app.department_training_requirements (org_id, department_id, module_id, effective_start)
values (tests.var('org')::uuid, tests.var('general')::uuid, tests.var('m_fire')::uuid, '2026-07-01');
select is((select count(*)::int from app.training_assignments a
           where a.module_id = tests.var('m_fire')::uuid and a.is_required), 0, 'a rule not yet in effect assigns nothing');
select set_config('app.today', '2026-07-01', true);
select is((app.reconcile_rule_dates(tests.var('org')::uuid, '2026-07-01') ->> 'created')::int, 0,
          'on its first day the kept assignments count again (none created)');
select set_config('app.today', '2026-06-15', true);

-- 29-30. A new module required of new hires reaches everyone; retiring it releases the open ones.
insert into app.training_modules (org_id, name, month_key, due_date, required_for_new_hires, grace_period_days)
values (tests.var('org')::uuid, 'Privacy 2026', '2026-06', '2026-07-31', true, 7);
select is((select count(*)::int from app.training_assignments a join app.training_modules m on m.id = a.module_id
           where m.name = 'Privacy 2026' and a.is_required and a.due_date >= '2026-06-15'), 5,
          'a new module required of new hires reaches every active employee, due ahead');
update app.training_modules set active = false where name = 'Privacy 2026' and org_id = tests.var('org')::uuid;
select is((select array_agg(distinct a.not_required_reason) from app.training_assignments a
           join app.training_modules m on m.id = a.module_id where m.name = 'Privacy 2026'),
          array['module_retired'], 'a retired module''s open assignments stop counting (reason module_retired)');

-- 31-34. A rehire: earlier open assignments superseded, never counted again; new ones due ahead.
update app.employees set status = 'terminated' where id = tests.var('olga')::uuid;
select set_config('app.today', '2027-03-01', true);
update app.employees set status = 'active', start_date = '2027-03-01' where id = tests.var('olga')::uuid;
select is((select array_agg(a.not_required_reason order by a.due_date) from app.training_assignments a
           where a.employee_id = tests.var('olga')::uuid and a.module_id = tests.var('m_bbp')::uuid),
          array['superseded_by_rehire', null], 'a rehire: the earlier open assignment is superseded, a new one counts');
select is((select a.due_date from app.training_assignments a
           where a.employee_id = tests.var('olga')::uuid and a.module_id = tests.var('m_bbp')::uuid and a.is_required),
          '2027-03-22'::date, '... due the rehire day + the rule''s grace, not overdue on day one');
select is((select count(*)::int from app.training_assignments a
           where a.employee_id = tests.var('olga')::uuid and a.is_required and a.status = 'overdue'), 0,
          'nothing of the earlier employment is overdue');
select is((tests.stats(tests.var('olga')::uuid)).training_overdue, 0, 'stats agree');

-- A rehire whose new cycle falls on the earlier employment's key: Rita, hired into the Lab today,
-- is terminated and rehired the same day; later terminated again and rehired four days on, when a
-- module's due date still ahead gives the new cycle the old one's due date.
insert into app.employees (org_id, email, first_name, last_name, start_date, department_id)
values (tests.var('org')::uuid, 'rita@recon.example', 'Rita', 'Return', '2027-03-01', tests.var('lab')::uuid);
select 'setup: ' || tests.set_var('rita', (select id::text from app.employees where email = 'rita@recon.example'));
update app.employees set status = 'terminated' where id = tests.var('rita')::uuid;
update app.employees set status = 'active' where id = tests.var('rita')::uuid;
select is((select array_agg((a.due_date, a.is_required, a.not_required_reason)::text order by a.is_required)
           from app.training_assignments a
           where a.employee_id = tests.var('rita')::uuid and a.module_id = tests.var('m_bbp')::uuid),
          array['(2027-03-22,f,superseded_by_rehire)', '(2027-03-22,t,)'],
          'terminated and rehired the same day: the earlier assignment superseded, a new one on the same due date counts');
select is((select count(*)::int from app.training_assignments a
           where a.employee_id = tests.var('rita')::uuid and a.is_required), 2,
          '... every required module has its new cycle (new-hire module and the Lab''s rule)');
insert into app.training_modules (org_id, name, month_key, due_date, required_for_new_hires, grace_period_days)
values (tests.var('org')::uuid, 'Hazard Communication', '2027-06', '2027-06-30', false, 7);
insert into app.department_training_requirements (org_id, department_id, module_id, grace_days, effective_start)
select tests.var('org')::uuid, tests.var('lab')::uuid, m.id, 14, '2026-01-01'
from app.training_modules m where m.org_id = tests.var('org')::uuid and m.name = 'Hazard Communication';
update app.employees set status = 'terminated' where id = tests.var('rita')::uuid;
select set_config('app.today', '2027-03-05', true);
update app.employees set status = 'active' where id = tests.var('rita')::uuid;
select is((select array_agg((a.due_date, a.is_required, a.not_required_reason)::text order by a.is_required)
           from app.training_assignments a join app.training_modules m on m.id = a.module_id
           where a.employee_id = tests.var('rita')::uuid and m.name = 'Hazard Communication'),
          array['(2027-06-30,f,superseded_by_rehire)', '(2027-06-30,t,)'],
          'a rehire whose new cycle collides with the earlier one''s key: superseded and created, no unique violation');
select throws_ok(format($q$insert into app.training_assignments (org_id, employee_id, module_id, due_date)
                          select %L, %L, m.id, '2027-06-30' from app.training_modules m
                          where m.org_id = %L and m.name = 'Hazard Communication'$q$,
                        tests.var('org'), tests.var('rita'), tests.var('org')),
                 '23505', null, 'one assignment per employee, module and due date among those not superseded');
select is((tests.stats(tests.var('rita')::uuid)).training_assigned, 3,
          'only the new cycles count (the superseded ones never again)');
select set_config('app.today', '2027-03-01', true);

-- 35-36. Deactivated employees are not reconciled; everything adds up.
update app.employees set status = 'inactive' where id = tests.var('dora')::uuid;
insert into app.department_training_requirements (org_id, department_id, module_id, effective_start)
values (tests.var('org')::uuid, tests.var('general')::uuid, tests.var('m_adhoc')::uuid, '2026-01-01');
select is((select count(*)::int from app.training_assignments a
           where a.employee_id = tests.var('dora')::uuid and a.module_id = tests.var('m_adhoc')::uuid), 0,
          'an inactive employee gets nothing from a new rule');
select is(tests.verify_stats_count() + (select count(*)::int from app.verify_compliance_counters()), 0,
          'stats and counters verify');

-- The exception report groups by person: a later batch's module joins the open case; resolved, it
-- stays as history. (The Lab now requires the ad hoc module too.)
insert into app.department_training_requirements (org_id, department_id, module_id, effective_start)
values (tests.var('org')::uuid, tests.var('lab')::uuid, tests.var('m_adhoc')::uuid, '2026-01-01');
select is((select (count(*), sum(jsonb_array_length(x.details -> 'modules')),
                   bool_and(x.module_id is null and x.assignment_id is null))::text
           from app.assignment_exceptions x
           where x.kind = 'overdue_on_arrival' and x.employee_id = tests.var('leo')::uuid and x.resolved_at is null),
          '(1,3,t)', 'a later batch''s module joins the employee''s open case (one case, three modules)');
select is((select x.details -> 'modules' -> 0 ->> 'assignment_id' from app.assignment_exceptions x
           where x.kind = 'overdue_on_arrival' and x.employee_id = tests.var('leo')::uuid),
          tests.assignment_of(tests.var('leo')::uuid, tests.var('m_adhoc')::uuid)::text,
          '... each module with its assignment (in module order: Ad hoc first)');
select tests.authenticate_as(tests.var('hr')::uuid);
select is(api.resolve_assignment_exception(
              (select x.id from app.assignment_exceptions x
               where x.kind = 'overdue_on_arrival' and x.employee_id = tests.var('leo')::uuid),
              'trained on paper in 2025; results recorded') ->> 'resolved', 'true',
          'HR resolves the person''s case');
select tests.clear_authentication();
select is((select count(*)::int from app.assignment_exceptions x
           where x.kind = 'overdue_on_arrival' and x.employee_id = tests.var('leo')::uuid and x.resolved_at is null),
          0, '... no open case remains for them');

select * from finish();
rollback;
