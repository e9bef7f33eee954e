-- Snapshots, the cache of the as-of answer: app.take_compliance_snapshots(day) caches the day that
-- ended (day - 1) from the history, idempotently (one row per department × location group plus an
-- org-wide row); api.compliance_as_of(day) answers a cached day from the cache, an uncached one
-- from the history, today live; changes recorded later never become that day's.
begin;
select plan(27);

select 'setup: ' || tests.set_var('org', tests.create_org('fig-snap')::text);
insert into app.departments (org_id, name) values (tests.var('org')::uuid, 'Surgery');
insert into app.locations (org_id, name) values (tests.var('org')::uuid, 'Wixom');
select 'setup: ' || tests.set_var('general', (select id::text from app.departments where org_id = tests.var('org')::uuid and name = 'General'));
select 'setup: ' || tests.set_var('surgery', (select id::text from app.departments where org_id = tests.var('org')::uuid and name = 'Surgery'));
select 'setup: ' || tests.set_var('main', (select id::text from app.locations where org_id = tests.var('org')::uuid and name = 'Main'));
select 'setup: ' || tests.set_var('wixom', (select id::text from app.locations where org_id = tests.var('org')::uuid and name = 'Wixom'));
insert into app.training_modules (org_id, name, month_key, due_date)
values (tests.var('org')::uuid, 'A', '2025-01', app.org_today(tests.var('org')::uuid) + 30),
       (tests.var('org')::uuid, 'B', '2025-02', app.org_today(tests.var('org')::uuid) + 60);
select 'setup: ' || tests.set_var('a', tests.create_employee(tests.var('org')::uuid, 'a@fig-snap.example')::text);
select 'setup: ' || tests.set_var('b', tests.create_employee(tests.var('org')::uuid, 'b@fig-snap.example')::text);
select 'setup: ' || tests.set_var('c', tests.create_employee(tests.var('org')::uuid, 'c@fig-snap.example')::text);
select 'setup: ' || tests.set_var('n', tests.create_employee(tests.var('org')::uuid, 'n@fig-snap.example')::text);
update app.employees set department_id = tests.var('general')::uuid, location_id = tests.var('main')::uuid where org_id = tests.var('org')::uuid;
update app.employees set department_id = tests.var('surgery')::uuid, location_id = tests.var('wixom')::uuid
where org_id = tests.var('org')::uuid and id = tests.var('c')::uuid;
-- n has neither department nor location: counted in the org-wide row only.
update app.employees set department_id = null, location_id = null where org_id = tests.var('org')::uuid and id = tests.var('n')::uuid;
insert into app.training_assignments (org_id, employee_id, module_id, due_date, status, exemption_reason, completion_date)
select e.org_id, e.id, m.id, m.due_date,
       case when e.id = tests.var('a')::uuid or m.name = 'A' then 'completed'
            when e.id = tests.var('b')::uuid then 'exempted' else 'not_started' end::app.assignment_status,
       case when e.id = tests.var('b')::uuid and m.name = 'B' then 'waived' end,
       case when e.id = tests.var('a')::uuid or m.name = 'A' then tests.local_noon(e.org_id, app.org_today(e.org_id) - 2) end
from app.employees e join app.training_modules m on m.org_id = e.org_id
where e.org_id = tests.var('org')::uuid;
-- a: 2 completed; b: A completed, B exempted; c: A completed, B open; n: A completed, B open
-- org: required 8, completed 5, exempted 1 -> 5/7 = 71.43

select 'setup: ' || tests.set_var('hr', tests.create_user(tests.var('org')::uuid, 'hr_admin')::text);
select 'setup: ' || tests.set_var('a_user', tests.create_user(tests.var('org')::uuid, 'employee', 'a.login@fig-snap.example', tests.var('a')::uuid)::text);
select 'setup: ' || tests.set_var('other', tests.create_org('fig-snap-other')::text);
select 'setup: ' || tests.set_var('other_hr', tests.create_user(tests.var('other')::uuid, 'hr_admin')::text);
select 'setup: ' || tests.set_var('day', (app.org_today(tests.var('org')::uuid) - 1)::text);
-- All of this was recorded the day before `day`.
select tests.history_at(o, tests.local_noon(o, tests.var('day')::date - 1))
from unnest(array[tests.var('org')::uuid, tests.var('other')::uuid]) o;

-- Taking the snapshot (the daily job's entry point for the next day: every organisation).
select ok(app.take_compliance_snapshots(tests.var('day')::date + 1) >= 3, 'take_compliance_snapshots(day + 1) caches day');
select is((select count(*)::integer from app.compliance_snapshots
           where org_id = tests.var('org')::uuid and snapshot_date = tests.var('day')::date), 3,
          'one org-wide row and two groups (General/Main, Surgery/Wixom)');
select is((select (active_employees, required_assignments, completed_assignments, exempted_assignments, compliance_rate)::text
           from app.compliance_snapshots
           where org_id = tests.var('org')::uuid and snapshot_date = tests.var('day')::date
             and department_id is null and location_id is null),
          '(4,8,5,1,71.43)', 'the org-wide row covers everyone (n too): 5 of 7 = 71.43');
select is((select (active_employees, required_assignments, completed_assignments, compliance_rate)::text
           from app.compliance_snapshots
           where org_id = tests.var('org')::uuid and snapshot_date = tests.var('day')::date
             and department_id = tests.var('general')::uuid and location_id = tests.var('main')::uuid),
          '(2,4,3,100.00)', 'General/Main: a and b, 3 of 3 (exempted not counted)');
select ok((select count(*) from app.compliance_snapshots where org_id = tests.var('other')::uuid
           and snapshot_date = tests.var('day')::date and department_id is null and location_id is null) = 1,
          'every organisation gets its org-wide row');

-- Idempotent: again for the same day, the same rows.
create temp table first_take on commit drop as
    select department_id, location_id, required_assignments, completed_assignments, compliance_rate
    from app.compliance_snapshots where org_id = tests.var('org')::uuid and snapshot_date = tests.var('day')::date;
select 'setup: ' || app.snapshot_compliance(tests.var('day')::date, tests.var('org')::uuid);
select set_eq($$select department_id, location_id, required_assignments, completed_assignments, compliance_rate
                from app.compliance_snapshots where org_id = tests.var('org')::uuid and snapshot_date = tests.var('day')::date$$,
              'select * from first_take', 'taking the same day twice leaves the same rows');

-- (The job also refilled the ended day before; this test asks that one uncached.)
delete from app.compliance_snapshots where org_id = tests.var('org')::uuid and snapshot_date < tests.var('day')::date;

-- The figures of that day, exactly, after things change today.
select tests.authenticate_as(tests.var('hr')::uuid, 'GET', '/rpc/compliance_as_of');
select 'setup: ' || tests.set_var('before', api.compliance_as_of(tests.var('day')::date)::text);
select tests.clear_authentication();
update app.training_assignments set status = 'completed'
where org_id = tests.var('org')::uuid and employee_id = tests.var('c')::uuid;
update app.employees set status = 'terminated' where org_id = tests.var('org')::uuid and id = tests.var('n')::uuid;
select tests.authenticate_as(tests.var('hr')::uuid, 'GET', '/rpc/compliance_as_of');
select is(api.compliance_rate(), 100.00, 'meanwhile the live rate moved (c completed, n terminated): 100.00');
select is(api.compliance_as_of(tests.var('day')::date)::text, tests.var('before'), 'as_of answers the same document as before the changes');
select is((api.compliance_as_of(tests.var('day')::date) -> 'organization' ->> 'complianceRate')::numeric, 71.43,
          'as_of: the org-wide rate of that day');
select is(api.compliance_as_of(tests.var('day')::date) ->> 'source', 'snapshot', 'as_of says it comes from the cache');
select is(api.compliance_as_of(tests.var('day')::date - 1) ->> 'source', 'history', 'an uncached day comes from the history');
select is((select x ->> 'complianceRate' from jsonb_array_elements(api.compliance_as_of(tests.var('day')::date) -> 'departments') x
           where x ->> 'department' = 'Surgery'), '50.00', 'as_of: Surgery that day, 1 of 2');
select is((select x ->> 'complianceRate' from jsonb_array_elements(api.compliance_as_of(tests.var('day')::date) -> 'locations') x
           where x ->> 'location' = 'Main'), '100.00', 'as_of: Main that day');
select is(jsonb_array_length(api.compliance_as_of(tests.var('day')::date) -> 'groups'), 2, 'as_of lists the two groups');

-- Today: the live figures.
select is(api.compliance_as_of(tests.var('day')::date + 1) ->> 'source', 'live', 'today: live figures');
select is((api.compliance_as_of(tests.var('day')::date + 1) -> 'organization' ->> 'complianceRate')::numeric, api.compliance_rate(),
          'live: the same rate as compliance_rate()');
select is((api.compliance_as_of(tests.var('day')::date + 1) -> 'organization' ->> 'activeEmployees')::integer, 3,
          'live: active employees now (a, b, c; n was terminated)');

-- Before the organisation existed: 400; no day: 400.
select throws_ok(format('select api.compliance_as_of(%L::date)', tests.var('day')::date - 30), '22023', null,
                 'a day before the organisation existed is 400');
select throws_ok('select api.compliance_as_of(null)', '22023', null, 'no day is 400');

-- Trend: from the snapshots.
select is((select compliance_rate from api.compliance_trend
           where org_id = tests.var('org')::uuid and scope = 'organization' and granularity = 'day'
             and period = tests.var('day')::date), 71.43, 'compliance_trend: the day''s org-wide rate');
select is((select compliance_rate from api.compliance_trend
           where org_id = tests.var('org')::uuid and scope = 'department' and granularity = 'day'
             and department_id = tests.var('surgery')::uuid and period = tests.var('day')::date), 50.00,
          'compliance_trend: Surgery''s day');

-- Re-taking the day after moves recorded today: the day's groups stay as they were that day.
select tests.clear_authentication();
update app.employees set department_id = tests.var('surgery')::uuid where org_id = tests.var('org')::uuid and id = tests.var('b')::uuid;
update app.employees set location_id = tests.var('wixom')::uuid where org_id = tests.var('org')::uuid and id = tests.var('a')::uuid;
update app.employees set department_id = tests.var('surgery')::uuid where org_id = tests.var('org')::uuid and id = tests.var('a')::uuid;
select 'setup: ' || app.snapshot_compliance(tests.var('day')::date, tests.var('org')::uuid);
select is((select count(*)::integer from app.compliance_snapshots
           where org_id = tests.var('org')::uuid and snapshot_date = tests.var('day')::date), 3,
          're-taken: org-wide, General/Main and Surgery/Wixom, as on that day');

-- Who may read it.
select tests.authenticate_as(tests.var('a_user')::uuid, 'GET', '/rpc/compliance_as_of');
select throws_ok(format('select api.compliance_as_of(%L::date)', tests.var('day')), '42501', null,
                 'an employee may not read organisation figures (403)');
select is_empty('select * from api.compliance_trend', 'an employee sees no trend');
select tests.clear_authentication();
select tests.authenticate_as(tests.var('other_hr')::uuid, 'GET', '/rpc/compliance_as_of');
select is((api.compliance_as_of(tests.var('day')::date) -> 'organization' ->> 'requiredAssignments')::integer, 0,
          'another organisation gets its own snapshot, not ours');
select tests.clear_authentication();
select ok(has_function_privilege('sync_worker', 'app.take_compliance_snapshots(date, uuid)', 'execute'),
          'the sync worker (daily job) may take snapshots');
delete from app.compliance_snapshots where org_id = tests.var('org')::uuid;
select 'setup: ' || app.run_daily_jobs(tests.var('org')::uuid, tests.var('day')::date + 1)::text;
select is((select count(*)::integer from app.compliance_snapshots
           where org_id = tests.var('org')::uuid and snapshot_date = tests.var('day')::date
             and department_id is null and location_id is null), 1,
          'the daily job of a day (app.run_daily_jobs) caches the day that ended');

select * from finish();
rollback;
