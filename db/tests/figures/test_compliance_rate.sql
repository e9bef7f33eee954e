-- api.compliance_rate (DESIGN §5): completed ÷ required non-exempted assignments of active
-- employees; exempted not counted; 100.00 when none; department/location filters; RLS: an HR
-- admin gets their organisation's figure, an employee their own, nobody another organisation's.
begin;
select plan(20);

-- An organisation: departments General, Surgery; locations Main, Wixom; modules M1, M2.
select 'setup: ' || tests.set_var('org', tests.create_org('fig-rate')::text);
insert into app.departments (org_id, name) values (tests.var('org')::uuid, 'Surgery');
insert into app.locations (org_id, name) values (tests.var('org')::uuid, 'Wixom');
select 'setup: ' || tests.set_var('general', (select id::text from app.departments where org_id = tests.var('org')::uuid and name = 'General'));
select 'setup: ' || tests.set_var('surgery', (select id::text from app.departments where org_id = tests.var('org')::uuid and name = 'Surgery'));
select 'setup: ' || tests.set_var('main', (select id::text from app.locations where org_id = tests.var('org')::uuid and name = 'Main'));
select 'setup: ' || tests.set_var('wixom', (select id::text from app.locations where org_id = tests.var('org')::uuid and name = 'Wixom'));
insert into app.training_modules (org_id, name, month_key, due_date)
values (tests.var('org')::uuid, 'M1', '2025-01', app.today() + 20),
       (tests.var('org')::uuid, 'M2', '2025-02', app.today() + 40);
select 'setup: ' || tests.set_var('m1', (select id::text from app.training_modules where org_id = tests.var('org')::uuid and name = 'M1'));
select 'setup: ' || tests.set_var('m2', (select id::text from app.training_modules where org_id = tests.var('org')::uuid and name = 'M2'));

-- Employees a, b (General/Main), c (Surgery/Wixom), d (General/Main, deactivated below).
select 'setup: ' || tests.set_var('a', tests.create_employee(tests.var('org')::uuid, 'a@fig-rate.example')::text);
select 'setup: ' || tests.set_var('b', tests.create_employee(tests.var('org')::uuid, 'b@fig-rate.example')::text);
select 'setup: ' || tests.set_var('c', tests.create_employee(tests.var('org')::uuid, 'c@fig-rate.example')::text);
select 'setup: ' || tests.set_var('d', tests.create_employee(tests.var('org')::uuid, 'd@fig-rate.example')::text);
update app.employees set department_id = tests.var('surgery')::uuid, location_id = tests.var('wixom')::uuid
where org_id = tests.var('org')::uuid and id = tests.var('c')::uuid;

-- a: M1 completed, M2 in progress, plus an optional M2 (not counted)
-- b: M1 overdue (due 30 days ago), M2 exempted
-- c: M1 completed, M2 not started
-- d: M1 completed, M2 overdue
insert into app.training_assignments (org_id, employee_id, module_id, due_date, status, is_required, exemption_reason)
values (tests.var('org')::uuid, tests.var('a')::uuid, tests.var('m1')::uuid, app.today() + 20, 'completed', true, null),
       (tests.var('org')::uuid, tests.var('a')::uuid, tests.var('m2')::uuid, app.today() + 40, 'in_progress', true, null),
       (tests.var('org')::uuid, tests.var('a')::uuid, tests.var('m2')::uuid, app.today() + 100, 'not_started', false, null),
       (tests.var('org')::uuid, tests.var('b')::uuid, tests.var('m1')::uuid, app.today() - 30, 'not_started', true, null),
       (tests.var('org')::uuid, tests.var('b')::uuid, tests.var('m2')::uuid, app.today() + 40, 'exempted', true, 'prior certificate'),
       (tests.var('org')::uuid, tests.var('c')::uuid, tests.var('m1')::uuid, app.today() + 20, 'completed', true, null),
       (tests.var('org')::uuid, tests.var('c')::uuid, tests.var('m2')::uuid, app.today() + 40, 'not_started', true, null),
       (tests.var('org')::uuid, tests.var('d')::uuid, tests.var('m1')::uuid, app.today() + 20, 'completed', true, null),
       (tests.var('org')::uuid, tests.var('d')::uuid, tests.var('m2')::uuid, app.today() - 30, 'not_started', true, null);

select is((select status::text from app.training_assignments
           where org_id = tests.var('org')::uuid and employee_id = tests.var('b')::uuid and module_id = tests.var('m1')::uuid),
          'overdue', 'setup: a required assignment 30 days past due is overdue');

-- Users: an HR admin and a viewer of the organisation, employees a and b with logins.
select 'setup: ' || tests.set_var('hr', tests.create_user(tests.var('org')::uuid, 'hr_admin')::text);
select 'setup: ' || tests.set_var('viewer', tests.create_user(tests.var('org')::uuid, 'viewer')::text);
select 'setup: ' || tests.set_var('a_user', tests.create_user(tests.var('org')::uuid, 'employee', 'a.login@fig-rate.example', tests.var('a')::uuid)::text);
select 'setup: ' || tests.set_var('b_user', tests.create_user(tests.var('org')::uuid, 'employee', 'b.login@fig-rate.example', tests.var('b')::uuid)::text);

-- Another organisation, fully compliant except one open assignment: 0 of 1.
select 'setup: ' || tests.set_var('other', tests.create_org('fig-rate-other')::text);
insert into app.training_modules (org_id, name, month_key, due_date)
values (tests.var('other')::uuid, 'X', '2025-01', app.today() + 10);
select 'setup: ' || tests.set_var('x_emp', tests.create_employee(tests.var('other')::uuid, 'x@fig-rate-other.example')::text);
insert into app.training_assignments (org_id, employee_id, module_id, due_date)
select tests.var('other')::uuid, tests.var('x_emp')::uuid, m.id, app.today() + 10
from app.training_modules m where m.org_id = tests.var('other')::uuid;
select 'setup: ' || tests.set_var('other_hr', tests.create_user(tests.var('other')::uuid, 'hr_admin')::text);
select 'setup: ' || tests.set_var('other_dept', (select id::text from app.departments where org_id = tests.var('other')::uuid));

-- An organisation with no assignments at all.
select 'setup: ' || tests.set_var('empty', tests.create_org('fig-rate-empty')::text);
select 'setup: ' || tests.set_var('empty_hr', tests.create_user(tests.var('empty')::uuid, 'hr_admin')::text);

-- Active a, b, c, d: required 8, completed 3 (a, c, d), exempted 1 (b): 3 / 7.
select tests.authenticate_as(tests.var('hr')::uuid, 'GET', '/rpc/compliance_rate');
select is(api.compliance_rate(), 42.86, 'HR admin: 3 completed of 7 required non-exempted = 42.86');

-- Deactivating d takes d's assignments out: 2 / 5 (exempted b/M2 not counted; as "not completed" it would be 2/6).
select tests.clear_authentication();
update app.employees set status = 'inactive' where org_id = tests.var('org')::uuid and id = tests.var('d')::uuid;
select tests.authenticate_as(tests.var('hr')::uuid, 'GET', '/rpc/compliance_rate');
select is(api.compliance_rate(), 40.00, 'inactive employees do not count: 2 of 5 = 40.00');
select is(api.compliance_rate(department => tests.var('general')::uuid), 33.33,
          'department General (a, b): 1 of 3 = 33.33');
select is(api.compliance_rate(department => tests.var('surgery')::uuid), 50.00,
          'department Surgery (c): 1 of 2 = 50.00');
select is(api.compliance_rate(location => tests.var('wixom')::uuid), 50.00, 'location Wixom: 50.00');
select is(api.compliance_rate(location => tests.var('main')::uuid), 33.33, 'location Main: 33.33');
select is(api.compliance_rate(tests.var('general')::uuid, tests.var('main')::uuid), 33.33,
          'department and location together');
select is(api.compliance_rate(tests.var('surgery')::uuid, tests.var('main')::uuid), 100.00,
          'a department × location with no assignments: 100.00');
select throws_ok(format('select api.compliance_rate(department => %L)', tests.var('other_dept')),
                 'PT404', null, 'another organisation''s department is not found (404)');
select throws_ok(format('select api.compliance_rate(location => %L)', gen_random_uuid()),
                 'PT404', null, 'an unknown location is not found (404)');

-- The definition agrees with a recomputation from the raw rows.
select tests.clear_authentication();
select is((select round(100.0 * count(*) filter (where a.status = 'completed')
                        / nullif(count(*) filter (where a.status <> 'exempted'), 0), 2)
           from app.training_assignments a join app.employees e on e.org_id = a.org_id and e.id = a.employee_id
           where a.org_id = tests.var('org')::uuid and a.is_required and e.status = 'active'),
          40.00, 'raw recomputation gives the same 40.00');
select is_empty('select * from app.verify_compliance_counters()', 'the counters match the rows');

-- A viewer reads the same organisation figure.
select tests.authenticate_as(tests.var('viewer')::uuid, 'GET', '/rpc/compliance_rate');
select is(api.compliance_rate(), 40.00, 'a viewer gets the organisation figure');

-- Employees get their own figure.
select tests.clear_authentication();
select tests.authenticate_as(tests.var('a_user')::uuid, 'GET', '/rpc/compliance_rate');
select is(api.compliance_rate(), 50.00, 'employee a: own figure, 1 of 2 = 50.00 (optional one not counted)');
select tests.clear_authentication();
select tests.authenticate_as(tests.var('b_user')::uuid, 'GET', '/rpc/compliance_rate');
select is(api.compliance_rate(), 0.00, 'employee b: own figure, 0 of 1 (exempted not counted) = 0.00');
select is(api.compliance_rate(department => tests.var('surgery')::uuid), 100.00,
          'employee b filtered to a department not theirs: nothing to count, 100.00');

-- Another organisation's HR admin sees only their own organisation.
select tests.clear_authentication();
select tests.authenticate_as(tests.var('other_hr')::uuid, 'GET', '/rpc/compliance_rate');
select is(api.compliance_rate(), 0.00, 'other organisation: its own figure (0 of 1)');
select is((select count(*)::integer from app.compliance_counters where org_id = tests.var('org')::uuid), 0,
          'other organisation reads none of our counters');

-- No assignments at all: 100.00.
select tests.clear_authentication();
select tests.authenticate_as(tests.var('empty_hr')::uuid, 'GET', '/rpc/compliance_rate');
select is(api.compliance_rate(), 100.00, 'no assignments: 100.00');

select * from finish();
rollback;
