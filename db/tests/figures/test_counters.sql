-- app.compliance_counters stay equal to a recomputation from the rows through every kind of
-- change: inserts, status changes, the required flag, deletes, employee moves between
-- departments/locations, deactivation and re-activation, bulk statements. Nobody writes them
-- directly, and they are not audited row by row.
begin;
select plan(25);

select 'setup: ' || tests.set_var('org', tests.create_org('fig-counters')::text);
insert into app.departments (org_id, name) values (tests.var('org')::uuid, 'Surgery');
insert into app.locations (org_id, name) values (tests.var('org')::uuid, 'Wixom');
select 'setup: ' || tests.set_var('surgery', (select id::text from app.departments where org_id = tests.var('org')::uuid and name = 'Surgery'));
select 'setup: ' || tests.set_var('wixom', (select id::text from app.locations where org_id = tests.var('org')::uuid and name = 'Wixom'));
insert into app.training_modules (org_id, name, month_key, due_date)
select tests.var('org')::uuid, 'Module ' || g, '2025-0' || g, app.today() + 10 * g
from generate_series(1, 4) g;
insert into app.employees (org_id, email, first_name, last_name, department_id, location_id)
select tests.var('org')::uuid, 'p' || g || '@fig-counters.example', 'P' || g, 'Test',
       (select id from app.departments where org_id = tests.var('org')::uuid and name = 'General'),
       (select id from app.locations where org_id = tests.var('org')::uuid and name = 'Main')
from generate_series(1, 12) g;

-- One bulk statement: 12 employees × 4 modules.
insert into app.training_assignments (org_id, employee_id, module_id, due_date)
select e.org_id, e.id, m.id, m.due_date
from app.employees e join app.training_modules m on m.org_id = e.org_id
where e.org_id = tests.var('org')::uuid;
select is((select sum(required_count)::integer from app.compliance_counters where org_id = tests.var('org')::uuid),
          48, 'a bulk insert of 48 assignments is counted');
select is_empty(format('select * from app.verify_compliance_counters(%L)', tests.var('org')), 'after the bulk insert');

update app.training_assignments set status = 'in_progress'
where org_id = tests.var('org')::uuid and module_id in (select id from app.training_modules where org_id = tests.var('org')::uuid and name in ('Module 1', 'Module 2'));
select is_empty(format('select * from app.verify_compliance_counters(%L)', tests.var('org')), 'after a bulk status change');

update app.training_assignments set status = 'completed', completion_date = now()
where org_id = tests.var('org')::uuid and module_id = (select id from app.training_modules where org_id = tests.var('org')::uuid and name = 'Module 1');
update app.training_assignments set status = 'exempted', exemption_reason = 'covered elsewhere'
where org_id = tests.var('org')::uuid and module_id = (select id from app.training_modules where org_id = tests.var('org')::uuid and name = 'Module 3')
  and employee_id in (select id from app.employees where org_id = tests.var('org')::uuid and email like 'p1%');
select is_empty(format('select * from app.verify_compliance_counters(%L)', tests.var('org')), 'after completions and exemptions');

update app.training_assignments set is_required = false
where org_id = tests.var('org')::uuid and module_id = (select id from app.training_modules where org_id = tests.var('org')::uuid and name = 'Module 4')
  and employee_id in (select id from app.employees where org_id = tests.var('org')::uuid and email like 'p2%');
select is_empty(format('select * from app.verify_compliance_counters(%L)', tests.var('org')), 'after making some optional');

update app.training_assignments set score = 91
where org_id = tests.var('org')::uuid and status = 'completed';
select is_empty(format('select * from app.verify_compliance_counters(%L)', tests.var('org')), 'after a change that moves no count');

update app.employees set department_id = tests.var('surgery')::uuid
where org_id = tests.var('org')::uuid and email in ('p3@fig-counters.example', 'p4@fig-counters.example');
update app.employees set location_id = tests.var('wixom')::uuid
where org_id = tests.var('org')::uuid and email in ('p4@fig-counters.example', 'p5@fig-counters.example');
select is_empty(format('select * from app.verify_compliance_counters(%L)', tests.var('org')), 'after department and location moves');
select is((select sum(required_count)::integer from app.compliance_counters
           where org_id = tests.var('org')::uuid and department_id = tests.var('surgery')::uuid and location_id = tests.var('wixom')::uuid),
          4, 'p4 (Surgery, Wixom) has its own group');

update app.employees set status = 'terminated'
where org_id = tests.var('org')::uuid and email in ('p6@fig-counters.example', 'p7@fig-counters.example');
select is_empty(format('select * from app.verify_compliance_counters(%L)', tests.var('org')), 'after deactivation');
select is((select sum(required_count)::integer from app.compliance_counters where org_id = tests.var('org')::uuid),
          48 - 1 - 8, 'terminated employees'' assignments no longer count (48 - 1 optional - 8)');
update app.employees set status = 'active'
where org_id = tests.var('org')::uuid and email = 'p6@fig-counters.example';
select is_empty(format('select * from app.verify_compliance_counters(%L)', tests.var('org')), 'after re-activation');

-- A due date moves (the counters are kept per due date too, for "due within N days").
update app.training_assignments set due_date = due_date + 3
where org_id = tests.var('org')::uuid and status = 'not_started'
  and employee_id in (select id from app.employees where org_id = tests.var('org')::uuid and email like 'p9%');
select is_empty(format('select * from app.verify_compliance_counters(%L)', tests.var('org')), 'after due date changes');

-- Head counts: active employees per department × location.
select is((select active_employees from app.compliance_headcounts
           where org_id = tests.var('org')::uuid and department_id = tests.var('surgery')::uuid and location_id = tests.var('wixom')::uuid),
          1, 'head count: p4 alone in Surgery/Wixom');
select is((select sum(active_employees)::integer from app.compliance_headcounts where org_id = tests.var('org')::uuid),
          11, 'head count: 12 employees, one terminated');
insert into app.employees (org_id, email, first_name, last_name, department_id, location_id, status)
values (tests.var('org')::uuid, 'new@fig-counters.example', 'New', 'Test', tests.var('surgery')::uuid, tests.var('wixom')::uuid, 'active'),
       (tests.var('org')::uuid, 'gone@fig-counters.example', 'Gone', 'Test', tests.var('surgery')::uuid, tests.var('wixom')::uuid, 'inactive');
select is((select active_employees from app.compliance_headcounts
           where org_id = tests.var('org')::uuid and department_id = tests.var('surgery')::uuid and location_id = tests.var('wixom')::uuid),
          2, 'a new active employee is counted, an inactive one is not');
select is_empty(format('select * from app.verify_compliance_counters(%L)', tests.var('org')), 'head counts after inserts');
create temp table leaving on commit drop as
    select id from app.employees
    where org_id = tests.var('org')::uuid and email in ('new@fig-counters.example', 'gone@fig-counters.example');
delete from app.employee_compliance_stats where org_id = tests.var('org')::uuid and employee_id in (select id from leaving);
delete from app.employee_requirements where org_id = tests.var('org')::uuid and employee_id in (select id from leaving);
delete from app.employee_tier_history where org_id = tests.var('org')::uuid and employee_id in (select id from leaving);
delete from app.employee_tiers where org_id = tests.var('org')::uuid and employee_id in (select id from leaving);
delete from app.employees where org_id = tests.var('org')::uuid and id in (select id from leaving);
select is((select active_employees from app.compliance_headcounts
           where org_id = tests.var('org')::uuid and department_id = tests.var('surgery')::uuid and location_id = tests.var('wixom')::uuid),
          1, 'deleting employees takes them out of the head count');
select is_empty(format('select * from app.verify_compliance_counters(%L)', tests.var('org')), 'head counts after deletes');

delete from app.training_assignments
where org_id = tests.var('org')::uuid and status = 'not_started'
  and employee_id in (select id from app.employees where org_id = tests.var('org')::uuid and email like 'p8%');
select is_empty(format('select * from app.verify_compliance_counters(%L)', tests.var('org')), 'after deletes');

-- The rebuild gives the same counters.
create temp table before_rebuild on commit drop as
    select department_id, location_id, module_id, required_count, completed_count, in_progress_count,
           not_started_count, overdue_count, exempted_count
    from app.compliance_counters where org_id = tests.var('org')::uuid and required_count <> 0;
select ok(app.rebuild_compliance_counters(tests.var('org')::uuid) > 0, 'rebuild writes the groups');
select is_empty(format('select * from app.verify_compliance_counters(%L)', tests.var('org')), 'after the rebuild');
select set_eq('select department_id, location_id, module_id, required_count, completed_count, in_progress_count,
                      not_started_count, overdue_count, exempted_count
               from app.compliance_counters where org_id = tests.var(''org'')::uuid',
              'select * from before_rebuild', 'the rebuild finds exactly the maintained counters');

-- Derived data: not audited row by row, and not writable by API users.
select is_empty($$select 1 from pg_trigger where tgrelid = 'app.compliance_counters'::regclass and not tgisinternal and tgname like 'audit%'$$,
                'no audit triggers on the counters');
select 'setup: ' || tests.set_var('hr', tests.create_user(tests.var('org')::uuid, 'hr_admin')::text);
select tests.authenticate_as(tests.var('hr')::uuid);
select throws_ok(format($$insert into app.compliance_counters (org_id, module_id) values (%L, %L)$$,
                        tests.var('org'), gen_random_uuid()),
                 '42501', null, 'an HR admin cannot write the counters');
select is((select count(*)::integer from app.compliance_counters
           where org_id = tests.var('org')::uuid and department_id = tests.var('surgery')::uuid),
          8, 'an HR admin reads the counters of their organisation (Surgery: 2 locations × 4 modules)');

select * from finish();
rollback;
