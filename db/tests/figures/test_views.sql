-- The api figure views: department_compliance (target: the highest in-effect rule target, 95.00
-- by default; met), location_compliance, module_compliance, compliance_matrix (days overdue and
-- display status from today), upcoming_deadlines (days left); who sees what.
begin;
select plan(26);

select 'setup: ' || tests.set_var('org', tests.create_org('fig-views')::text);
insert into app.departments (org_id, name) values (tests.var('org')::uuid, 'Surgery'), (tests.var('org')::uuid, 'Empty');
select 'setup: ' || tests.set_var('general', (select id::text from app.departments where org_id = tests.var('org')::uuid and name = 'General'));
select 'setup: ' || tests.set_var('surgery', (select id::text from app.departments where org_id = tests.var('org')::uuid and name = 'Surgery'));
select 'setup: ' || tests.set_var('empty', (select id::text from app.departments where org_id = tests.var('org')::uuid and name = 'Empty'));
insert into app.training_modules (org_id, name, month_key, due_date)
values (tests.var('org')::uuid, 'A', '2025-01', app.today() + 30), (tests.var('org')::uuid, 'B', '2025-02', app.today() + 3);
select 'setup: ' || tests.set_var('ma', (select id::text from app.training_modules where org_id = tests.var('org')::uuid and name = 'A'));
select 'setup: ' || tests.set_var('mb', (select id::text from app.training_modules where org_id = tests.var('org')::uuid and name = 'B'));
select 'setup: ' || tests.set_var('g1', tests.create_employee(tests.var('org')::uuid, 'g1@fig-views.example')::text);
select 'setup: ' || tests.set_var('g2', tests.create_employee(tests.var('org')::uuid, 'g2@fig-views.example')::text);
select 'setup: ' || tests.set_var('s1', tests.create_employee(tests.var('org')::uuid, 's1@fig-views.example')::text);
-- (tests.create_employee takes the first department by name, which would be Empty)
update app.employees set department_id = tests.var('general')::uuid where org_id = tests.var('org')::uuid;
update app.employees set department_id = tests.var('surgery')::uuid where org_id = tests.var('org')::uuid and id = tests.var('s1')::uuid;

-- g1: A, B completed; g2: A completed, B due in 3 days; s1: A completed, B 20 days past due.
insert into app.training_assignments (org_id, employee_id, module_id, due_date, status)
values (tests.var('org')::uuid, tests.var('g1')::uuid, tests.var('ma')::uuid, app.today() + 30, 'completed'),
       (tests.var('org')::uuid, tests.var('g1')::uuid, tests.var('mb')::uuid, app.today() + 3, 'completed'),
       (tests.var('org')::uuid, tests.var('g2')::uuid, tests.var('ma')::uuid, app.today() + 30, 'completed'),
       (tests.var('org')::uuid, tests.var('g2')::uuid, tests.var('mb')::uuid, app.today() + 3, 'not_started'),
       (tests.var('org')::uuid, tests.var('s1')::uuid, tests.var('ma')::uuid, app.today() + 30, 'completed'),
       (tests.var('org')::uuid, tests.var('s1')::uuid, tests.var('mb')::uuid, app.today() - 20, 'not_started');

-- Department rules: General A 70 %, B 80 % (in effect); Surgery A 10 % from next month (not yet).
insert into app.department_training_requirements (org_id, department_id, module_id, completion_target, effective_start)
values (tests.var('org')::uuid, tests.var('general')::uuid, tests.var('ma')::uuid, 70, app.today() - 10),
       (tests.var('org')::uuid, tests.var('general')::uuid, tests.var('mb')::uuid, 80, app.today() - 10),
       (tests.var('org')::uuid, tests.var('surgery')::uuid, tests.var('ma')::uuid, 10, app.today() + 30);

select 'setup: ' || tests.set_var('hr', tests.create_user(tests.var('org')::uuid, 'hr_admin')::text);
select 'setup: ' || tests.set_var('manager', tests.create_user(tests.var('org')::uuid, 'manager')::text);
select 'setup: ' || tests.set_var('g2_user', tests.create_user(tests.var('org')::uuid, 'employee', 'g2.login@fig-views.example', tests.var('g2')::uuid)::text);
select 'setup: ' || tests.set_var('other', tests.create_org('fig-views-other')::text);
select 'setup: ' || tests.set_var('other_hr', tests.create_user(tests.var('other')::uuid, 'hr_admin')::text);

select tests.authenticate_as(tests.var('hr')::uuid, 'GET', '/department_compliance');

-- department_compliance
select is((select compliance_rate from api.department_compliance where department_id = tests.var('general')::uuid), 75.00,
          'General: 3 of 4 = 75.00');
select is((select completion_target from api.department_compliance where department_id = tests.var('general')::uuid), 80.00,
          'General''s target is its highest in-effect rule target (70, 80 -> 80)');
select is((select target_met from api.department_compliance where department_id = tests.var('general')::uuid), false,
          'General misses its target (75 < 80)');
select is((select modules_below_target from api.department_compliance where department_id = tests.var('general')::uuid), 1,
          'one General rule is below its own target (B: 50 % < 80 %)');
select is((select due_soon_assignments from api.department_compliance where department_id = tests.var('general')::uuid), 1,
          'General has one assignment due within the reminder days');
select is((select active_employees from api.department_compliance where department_id = tests.var('general')::uuid), 2,
          'General has two active employees');
select is((select compliance_rate from api.department_compliance where department_id = tests.var('surgery')::uuid), 50.00,
          'Surgery: 1 of 2 = 50.00');
select is((select completion_target from api.department_compliance where department_id = tests.var('surgery')::uuid), 95.00,
          'Surgery: a rule not yet in effect is ignored; default target 95.00');
select is((select (compliance_rate, completion_target, target_met, active_employees)::text
           from api.department_compliance where department_id = tests.var('empty')::uuid),
          '(100.00,95.00,t,1)', 'a department without assignments (only the manager''s employee record): 100.00, target met');

-- location_compliance, module_compliance
select is((select compliance_rate from api.location_compliance where org_id = tests.var('org')::uuid and location = 'Main'),
          66.67, 'location Main: 4 of 6 = 66.67');
select is((select string_agg(module || '=' || compliance_rate, ',' order by module) from api.module_compliance
           where org_id = tests.var('org')::uuid), 'A=100.00,B=33.33', 'module figures: A 3/3, B 1/3');

-- compliance_matrix: days overdue and display status are computed from today.
select is((select (days_overdue, display_status)::text from api.compliance_matrix
           where employee_id = tests.var('s1')::uuid and module_id = tests.var('mb')::uuid),
          '(20,overdue)', 'a 20-days-past-due assignment: 20 days overdue');
select is((select (days_overdue, display_status)::text from api.compliance_matrix
           where employee_id = tests.var('g2')::uuid and module_id = tests.var('mb')::uuid),
          '(0,due_soon)', 'due in 3 days: due_soon, 0 days overdue');
select is((select (days_overdue, display_status, counts_toward_rate)::text from api.compliance_matrix
           where employee_id = tests.var('g1')::uuid and module_id = tests.var('ma')::uuid),
          '(0,completed,t)', 'completed: 0 days overdue');
select is((select count(*)::integer from api.compliance_matrix where org_id = tests.var('org')::uuid), 6,
          'HR admin sees the whole grid');

-- upcoming_deadlines
select set_eq($$select employee_id, days_left, status::text from api.upcoming_deadlines where org_id = tests.var('org')::uuid$$,
              format($$values (%L::uuid, 3, 'not_started'), (%L::uuid, -20, 'overdue')$$, tests.var('g2'), tests.var('s1')),
              'upcoming deadlines: the open ones, with days left (negative when past due)');
select is((select count(*)::integer from api.upcoming_deadlines where org_id = tests.var('org')::uuid and days_left between 0 and 7), 1,
          'due within 7 days: ?days_left=gte.0&days_left=lte.7');

-- A manager reads the organisation's figures too.
select tests.clear_authentication();
select tests.authenticate_as(tests.var('manager')::uuid, 'GET', '/department_compliance');
select is((select count(*)::integer from api.department_compliance where org_id = tests.var('org')::uuid), 3,
          'a manager reads every department');

-- An employee: own grid and deadlines, no organisation figures.
select tests.clear_authentication();
select tests.authenticate_as(tests.var('g2_user')::uuid, 'GET', '/compliance_matrix');
select is((select count(*)::integer from api.compliance_matrix), 2, 'an employee sees only their own 2 cells');
select is((select count(*)::integer from api.upcoming_deadlines), 1, 'an employee sees only their own deadline');
select is_empty('select * from api.department_compliance', 'an employee sees no department figures');
select is_empty('select * from api.location_compliance', 'an employee sees no location figures');
select is_empty('select * from api.module_compliance', 'an employee sees no module figures');

-- Another organisation sees none of it.
select tests.clear_authentication();
select tests.authenticate_as(tests.var('other_hr')::uuid, 'GET', '/department_compliance');
select is_empty(format('select * from api.department_compliance where org_id = %L', tests.var('org')),
                'another organisation sees none of our departments');
select is_empty(format('select * from api.compliance_matrix where org_id = %L', tests.var('org')),
                'another organisation sees none of our grid');

-- Meeting the target once B is completed.
select tests.clear_authentication();
update app.training_assignments set status = 'completed'
where org_id = tests.var('org')::uuid and employee_id = tests.var('g2')::uuid and module_id = tests.var('mb')::uuid;
select tests.authenticate_as(tests.var('hr')::uuid, 'GET', '/department_compliance');
select is((select (compliance_rate, target_met, modules_below_target)::text
           from api.department_compliance where department_id = tests.var('general')::uuid),
          '(100.00,t,0)', 'General meets its target once everything is completed');

select * from finish();
rollback;
