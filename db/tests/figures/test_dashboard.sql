-- api.dashboard() (the DashboardData shape, its numbers, who may call it) and
-- api.employee_detail(employee_id) (shape, own-only for employees, 404).
begin;
select plan(26);

select 'setup: ' || tests.set_var('org', tests.create_org('fig-dash')::text);
select 'setup: ' || tests.set_var('general', (select id::text from app.departments where org_id = tests.var('org')::uuid));
insert into app.training_modules (org_id, name, month_key, due_date)
values (tests.var('org')::uuid, 'A', '2025-01', tests.today() + 30), (tests.var('org')::uuid, 'B', '2025-02', tests.today() + 2),
       (tests.var('org')::uuid, 'Retired', '2024-01', tests.today() - 400);
update app.training_modules set active = false where org_id = tests.var('org')::uuid and name = 'Retired';
select 'setup: ' || tests.set_var('a', tests.create_employee(tests.var('org')::uuid, 'a@fig-dash.example')::text);
select 'setup: ' || tests.set_var('b', tests.create_employee(tests.var('org')::uuid, 'b@fig-dash.example')::text);
select 'setup: ' || tests.set_var('gone', tests.create_employee(tests.var('org')::uuid, 'gone@fig-dash.example')::text);
insert into app.training_assignments (org_id, employee_id, module_id, due_date, status, score, completion_date)
select e.org_id, e.id, m.id, m.due_date,
       case when m.name = 'A' then 'completed' else 'not_started' end::app.assignment_status,
       case when m.name = 'A' then 90 end, case when m.name = 'A' then now() end
from app.employees e join app.training_modules m on m.org_id = e.org_id and m.active
where e.org_id = tests.var('org')::uuid;
-- b's B is 10 days past due: overdue.
update app.training_assignments set due_date = tests.today() - 10
where org_id = tests.var('org')::uuid and employee_id = tests.var('b')::uuid
  and module_id = (select id from app.training_modules where org_id = tests.var('org')::uuid and name = 'B');
update app.employees set status = 'terminated' where org_id = tests.var('org')::uuid and id = tests.var('gone')::uuid;
-- Active a, b: A completed ×2, B: a due in 2 days, b overdue -> 2 of 4 = 50.00

insert into app.sync_runs (org_id, type, source, status, started_at, completed_at)
values (tests.var('org')::uuid, 'employees', 'zenefits', 'completed', now() - interval '2 hours', now() - interval '1 hour'),
       (tests.var('org')::uuid, 'completions', 'classroom', 'failed', now() - interval '10 minutes', now() - interval '9 minutes');

select 'setup: ' || tests.set_var('hr', tests.create_user(tests.var('org')::uuid, 'hr_admin', 'hr@fig-dash.example')::text);
select 'setup: ' || tests.set_var('a_user', tests.create_user(tests.var('org')::uuid, 'employee', 'a.login@fig-dash.example', tests.var('a')::uuid)::text);
select 'setup: ' || tests.set_var('other', tests.create_org('fig-dash-other')::text);
select 'setup: ' || tests.set_var('other_emp', tests.create_employee(tests.var('other')::uuid, 'x@fig-dash-other.example')::text);

select tests.authenticate_as(tests.var('hr')::uuid, 'POST', '/rpc/dashboard');
select 'setup: ' || tests.set_var('d', api.dashboard()::text);

select is((select array_agg(k order by k) from jsonb_object_keys(tests.var('d')::jsonb) k),
          '{asOf,billing,departments,lastSync,locations,matrix,overallStats,summary,syncSources,today}'::text[],
          'dashboard: the DashboardData keys');
select is((select array_agg(k order by k) from jsonb_object_keys(tests.var('d')::jsonb -> 'summary') k)
          @> '{totalEmployees,totalModules,overallComplianceRate,overdueCount}'::text[], true,
          'summary has totalEmployees, totalModules, overallComplianceRate, overdueCount');
select is(tests.var('d')::jsonb -> 'summary' ->> 'totalEmployees', '2', 'totalEmployees: active employees (a, b; not the terminated one)');
select is((tests.var('d')::jsonb -> 'summary' ->> 'totalModules')::integer, 2, 'totalModules: active modules');
select is((tests.var('d')::jsonb -> 'summary' ->> 'overallComplianceRate')::numeric, 50.00, 'overallComplianceRate: 2 of 4');
select is((tests.var('d')::jsonb -> 'summary' ->> 'overallComplianceRate')::numeric, api.compliance_rate(),
          'the same figure as compliance_rate()');
select is((tests.var('d')::jsonb -> 'summary' ->> 'overdueCount')::integer, 1, 'overdueCount: b''s B');
select is((tests.var('d')::jsonb -> 'summary' ->> 'dueSoonCount')::integer, 1, 'dueSoonCount: a''s B, due in 2 days');
select is(jsonb_array_length(tests.var('d')::jsonb -> 'matrix' -> 'trainings'), 2,
          'matrix.trainings: the active modules (and any with counted assignments)');
select is((select (c ->> 'required')::integer || '/' || (c ->> 'completed') || '/' || (c ->> 'overdue')
           from jsonb_array_elements(tests.var('d')::jsonb -> 'matrix' -> 'cells') c
           where c ->> 'moduleId' = (select id::text from app.training_modules where org_id = tests.var('org')::uuid and name = 'B')),
          '2/0/1', 'matrix.cells: department × module counts (B: 2 required, 0 completed, 1 overdue)');
select is((tests.var('d')::jsonb -> 'departments' -> 0 ->> 'complianceRate')::numeric, 50.00, 'departments[0]: General 50.00');
select is((tests.var('d')::jsonb -> 'departments' -> 0 ->> 'targetMet')::boolean, false, 'departments[0]: target (95) not met');
select is((tests.var('d')::jsonb -> 'overallStats' ->> 'totalCompletions')::integer, 2, 'overallStats.totalCompletions');
select is(jsonb_array_length(tests.var('d')::jsonb -> 'overallStats' -> 'trendsData'), 1, 'overallStats.trendsData: this month, ending on the live figure');
select is((tests.var('d')::jsonb ->> 'lastSync')::timestamptz,
          (select completed_at from app.sync_runs where org_id = tests.var('org')::uuid and source = 'zenefits'),
          'lastSync: the latest successful sync (a failed one does not count)');
select is(tests.var('d')::jsonb -> 'syncSources' -> 'classroom' ->> 'lastStatus', 'failed', 'syncSources: the classroom run failed');

-- employee_detail
select 'setup: ' || tests.set_var('e', api.employee_detail(tests.var('b')::uuid)::text);
select is((select array_agg(k order by k) from jsonb_object_keys(tests.var('e')::jsonb) k),
          '{complianceHistory,complianceStats,employee,trainings,upcomingDeadlines}'::text[], 'employee_detail: its keys');
select is((tests.var('e')::jsonb -> 'complianceStats' ->> 'complianceRate')::numeric, 50.00, 'b''s own rate: 1 of 2');
select is((tests.var('e')::jsonb -> 'upcomingDeadlines' -> 0 ->> 'daysUntilDue')::integer, -10, 'b''s deadline: 10 days past due');
select throws_ok(format('select api.employee_detail(%L)', tests.var('other_emp')), 'PT404', null,
                 'another organisation''s employee: 404');
select throws_ok(format('select api.employee_detail(%L)', gen_random_uuid()), 'PT404', null, 'an unknown employee: 404');

-- An organisation with nothing yet: 100.00, zeros, no sync.
select tests.clear_authentication();
select 'setup: ' || tests.set_var('empty_hr', tests.create_user(tests.create_org('fig-dash-empty'), 'hr_admin')::text);
select tests.authenticate_as(tests.var('empty_hr')::uuid, 'POST', '/rpc/dashboard');
select is((select (s ->> 'overallComplianceRate', s ->> 'totalEmployees', s ->> 'overdueCount')::text
           from (select api.dashboard() -> 'summary' as s) x), '(100.00,0,0)',
          'an empty organisation: 100.00 and zeros');
select is(api.dashboard() -> 'lastSync', 'null'::jsonb, 'an organisation that never synced: lastSync null');

-- An employee: no dashboard, their own detail only.
select tests.clear_authentication();
select tests.authenticate_as(tests.var('a_user')::uuid, 'POST', '/rpc/dashboard');
select throws_ok('select api.dashboard()', '42501', null, 'an employee may not read the organisation dashboard (403)');
select is(api.employee_detail(tests.var('a')::uuid) -> 'employee' ->> 'email', 'a@fig-dash.example', 'an employee reads their own detail');
select throws_ok(format('select api.employee_detail(%L)', tests.var('b')), 'PT404', null,
                 'an employee cannot see a colleague (404)');

select * from finish();
rollback;
