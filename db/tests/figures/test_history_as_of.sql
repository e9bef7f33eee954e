-- Any past local day answered exactly from the history, in organisations far from the server's
-- zone (UTC+14 and UTC−12): figures at the end of the day, the named overdue list of a past day,
-- a missed daily job (nothing marked overdue, the day is still right), a catch-up run after a
-- termination (the termination is not that day's), a completion recorded later (counted by its
-- time, flagged, the cached day adjusted), the trend ending on the live figure, and an
-- employee's own trend.
begin;
select plan(51);

-- One scenario per zone; T = the organisation's today, days relative to it:
--   T-28 a, b, c assigned module A (due T-25, grace 7: overdue from T-17)
--   T-20 c completes; T-10 b is terminated; today a's completion of T-12 is recorded (HR keyed it in late)
-- The daily job never runs: no row or version is ever marked overdue.
create function pg_temp.scenario(p_slug text, p_zone text) returns void
language plpgsql as $$
declare
    v_org uuid := tests.create_org('hist-' || p_slug);
    v_t date;
    v_m uuid;
begin
    update app.organizations set timezone = p_zone where id = v_org;
    v_t := app.org_today(v_org);
    perform tests.set_var(p_slug || '_org', v_org::text);
    perform tests.set_var(p_slug || '_t', v_t::text);
    insert into app.training_modules (org_id, name, month_key, due_date, grace_period_days)
    values (v_org, 'A', '2025-01', v_t - 25, 7) returning id into v_m;
    perform tests.set_var(p_slug || '_a', tests.create_employee(v_org, 'a@' || p_slug || '.example')::text);
    perform tests.set_var(p_slug || '_b', tests.create_employee(v_org, 'b@' || p_slug || '.example')::text);
    perform tests.set_var(p_slug || '_c', tests.create_employee(v_org, 'c@' || p_slug || '.example')::text);
    insert into app.training_assignments (org_id, employee_id, module_id, due_date)
    select v_org, e.id, v_m, v_t - 25 from app.employees e where e.org_id = v_org
    on conflict do nothing;
    perform tests.set_var(p_slug || '_hr', tests.create_user(v_org, 'hr_admin')::text);
    perform tests.set_var(p_slug || '_a_user',
        tests.create_user(v_org, 'employee', 'a.login@' || p_slug || '.example', tests.var(p_slug || '_a')::uuid)::text);
    -- The daily job never runs: nothing is marked overdue, in the rows or their history.
    perform set_config('session_replication_role', 'replica', true);
    update app.training_assignments set status = 'not_started' where org_id = v_org;
    perform set_config('session_replication_role', 'origin', true);
    update app.assignment_history set status = 'not_started' where org_id = v_org;
    perform tests.history_at(v_org, tests.local_noon(v_org, v_t - 28));

    update app.training_assignments set status = 'completed', score = 95,
           completion_date = tests.local_noon(v_org, v_t - 20)
    where org_id = v_org and employee_id = tests.var(p_slug || '_c')::uuid;
    perform tests.history_at(v_org, tests.local_noon(v_org, v_t - 20));

    update app.employees set status = 'terminated' where org_id = v_org and id = tests.var(p_slug || '_b')::uuid;
    perform tests.history_at(v_org, tests.local_noon(v_org, v_t - 10));
end
$$;
select pg_temp.scenario('east', 'Pacific/Kiritimati');
select pg_temp.scenario('west', 'Etc/GMT+12');

-- The assertions, for one organisation.
create function pg_temp.checks(p text) returns setof text
language plpgsql as $$
declare
    v_org uuid := tests.var(p || '_org')::uuid;
    v_t date := tests.var(p || '_t')::date;
    d jsonb;
    l jsonb;
begin
    perform tests.authenticate_as(tests.var(p || '_hr')::uuid, 'GET', '/rpc/compliance_as_of');
    d := api.compliance_as_of(v_t - 26);
    return next is(d -> 'organization' ->> 'requiredAssignments', '3', p || ': before the due date, three counted');
    return next is(d -> 'organization' ->> 'overdueAssignments', '0', p || ': and none overdue');

    -- T-15: no job ever marked anything overdue, yet a and b were overdue that day; c had completed.
    return next is((select count(*)::integer from app.assignment_history
                    where org_id = v_org and status = 'overdue'), 0,
                   p || ': (no version was ever marked overdue)');
    return next is(api.compliance_as_of(v_t - 14) ->> 'source', 'history', p || ': an uncached day is answered from the history');
    d := api.compliance_as_of(v_t - 15);
    return next is((d -> 'organization' ->> 'completedAssignments', d -> 'organization' ->> 'overdueAssignments',
                    d -> 'organization' ->> 'complianceRate')::text,
                   '(1,2,33.33)', p || ': T-15 (missed daily jobs): 1 completed, 2 overdue, 33.33 %');
    l := api.overdue_as_of(v_t - 15);
    return next is((select string_agg(x ->> 'employee' || ':' || (x -> 'overdue' -> 0 ->> 'daysOverdue'), ',')
                    from jsonb_array_elements(l -> 'people') x),
                   'A Test:10,B Test:10', p || ': who was overdue on T-15, and 10 days (from the due date)');
    l := api.overdue_as_of(v_t - 15, page_size => 1);
    return next is((l -> 'people' -> 0 ->> 'employee', l ->> 'nextAfter')::text,
                   ('A Test', tests.var(p || '_a'))::text, p || ': paged: the first person and the cursor');
    l := api.overdue_as_of(v_t - 15, page_size => 1, after => (l ->> 'nextAfter')::uuid);
    return next is((l -> 'people' -> 0 ->> 'employee', l ->> 'nextAfter')::text, '("B Test",)',
                   p || ': the next page: the second person, no further cursor');

    -- T-11: a's completion of T-12, recorded today, counts on T-11 and is flagged.
    d := api.compliance_as_of(v_t - 11);
    return next is((d -> 'organization' ->> 'completedAssignments', d -> 'organization' ->> 'completedRecordedLater',
                    d -> 'organization' ->> 'overdueAssignments')::text,
                   '(2,1,1)', p || ': T-11: a''s late-recorded completion counts by its time, flagged; b overdue');
    l := api.overdue_as_of(v_t - 11, department => 'General', location => 'Main');
    return next is((select string_agg(x ->> 'employee' || ':' || (x -> 'overdue' -> 0 ->> 'daysOverdue'), ',')
                    from jsonb_array_elements(l -> 'people') x),
                   'B Test:14', p || ': the overdue list of T-11 (by department and location names)');

    -- T-5: b's termination (recorded T-10) took b out.
    d := api.compliance_as_of(v_t - 5);
    return next is((d -> 'organization' ->> 'activeEmployees', d -> 'organization' ->> 'requiredAssignments',
                    d -> 'organization' ->> 'complianceRate')::text,
                   '(2,2,100.00)', p || ': T-5: b terminated, a and c completed');

    -- Today: the live figures, the same as the headline and the trend's last point.
    d := api.compliance_as_of(v_t);
    return next is(d ->> 'source', 'live', p || ': today is the live figure');
    return next is((d -> 'organization' ->> 'complianceRate')::numeric, api.compliance_rate(),
                   p || ': today''s as-of = the headline compliance_rate');
    return next is((select t.compliance_rate from api.compliance_trend t
                    where t.scope = 'organization' and t.granularity = 'day'
                    order by t.period desc limit 1), api.compliance_rate(),
                   p || ': the trend''s last point is the live figure');

    -- Refusals.
    return next throws_ok(format('select api.compliance_as_of(%L::date)', v_t + 1), '22023', null,
                          p || ': a future day is refused');
    return next throws_ok(format('select api.compliance_as_of(%L::date)', v_t - 40), '22023', null,
                          p || ': a day before the organisation existed is refused');
    return next throws_ok(format('select api.compliance_as_of(%L::date, department => %L)', v_t - 5, 'Nowhere'),
                          'PT404', null, p || ': an unknown department is 404');

    -- a's own trend (as the employee): overdue on T-15, completed from T-12.
    perform tests.authenticate_as(tests.var(p || '_a_user')::uuid, 'GET', '/rpc/employee_compliance_trend');
    return next is((select string_agg(x.day - v_t || ':' || x.compliance_rate, ',' order by x.day)
                    from api.employee_compliance_trend(from_day => v_t - 13, to_day => v_t - 11) x),
                   '-13:0.00,-12:100.00,-11:100.00', p || ': an employee''s own trend');
    return next throws_ok(format('select api.compliance_as_of(%L::date)', v_t - 5), '42501', null,
                          p || ': an employee does not read the organisation''s past figures');
    return next throws_ok(format('select count(*) from app.assignments_as_of(%L::uuid, %L::date)', v_org, v_t - 5),
                          '42501', null, p || ': nor everyone''s history through the helper');
    perform tests.clear_authentication();
end
$$;

-- Before a's late completion is recorded: a catch-up run caches T-15 and T-11 after b's
-- termination was recorded (T-10): the termination is not those days'.
select is(app.snapshot_compliance(tests.var(p || '_t')::date - 15, tests.var(p || '_org')::uuid) > 0, true,
          p || ': a catch-up run caches T-15')
from unnest(array['east', 'west']) p;
select is((select (required_assignments, overdue_assignments, active_employees)::text from app.compliance_snapshots
           where org_id = tests.var(p || '_org')::uuid and snapshot_date = tests.var(p || '_t')::date - 15
             and department_id is null and location_id is null),
          '(3,2,3)', p || ': the catch-up after the termination still counts b as active and overdue on T-15')
from unnest(array['east', 'west']) p;
select 'setup: ' || app.snapshot_compliance(tests.var(p || '_t')::date - 11, tests.var(p || '_org')::uuid)
from unnest(array['east', 'west']) p;

-- Today HR records a's completion of T-12: the cached T-11 is adjusted in the same transaction
-- (a completed, flagged recorded later), T-15 is left as it was (a was still overdue then).
update app.training_assignments set status = 'completed', score = 90,
       completion_date = tests.local_noon(org_id, tests.var('east_t')::date - 12)
where org_id = tests.var('east_org')::uuid and employee_id = tests.var('east_a')::uuid;
update app.training_assignments set status = 'completed', score = 90,
       completion_date = tests.local_noon(org_id, tests.var('west_t')::date - 12)
where org_id = tests.var('west_org')::uuid and employee_id = tests.var('west_a')::uuid;
select is((select array_agg((snapshot_date - tests.var(p || '_t')::date, completed_assignments,
                             overdue_assignments, completed_recorded_later)::text order by snapshot_date)
           from app.compliance_snapshots
           where org_id = tests.var(p || '_org')::uuid and department_id is null and location_id is null),
          array['(-15,1,2,0)', '(-11,2,1,1)'],
          p || ': a completion of T-12 recorded today adjusts the cached T-11 (recorded later), keeps T-15')
from unnest(array['east', 'west']) p;
select pg_temp.checks('east');
select pg_temp.checks('west');

-- The daily job of today caches yesterday and fills ended days never cached, 7 more a run,
-- newest first: the second run reaches T-16.
select 'setup: ' || app.take_compliance_snapshots(tests.var('east_t')::date);
select 'setup: ' || app.take_compliance_snapshots(tests.var('east_t')::date);
select ok(exists (select from app.compliance_snapshots
                  where org_id = tests.var('east_org')::uuid and snapshot_date = tests.var('east_t')::date - 16
                    and department_id is null and location_id is null),
          'east: the daily job fills the days never cached, 7 more a run');
select is((select count(*)::integer from app.compliance_snapshots
           where org_id = tests.var('east_org')::uuid and snapshot_date = tests.var('east_t')::date - 11
             and department_id is null and location_id is null and completed_recorded_later = 1),
          1, 'east: and leaves the adjusted T-11 as it is');

-- The cached T-15 answers as the snapshot, the same figures as the history gives.
select tests.authenticate_as(tests.var('east_hr')::uuid, 'GET', '/rpc/compliance_as_of');
select is(api.compliance_as_of(tests.var('east_t')::date - 15) ->> 'source', 'snapshot',
          'east_ a cached ended day answers from the cache');
select is(api.compliance_as_of(tests.var('east_t')::date - 15) -> 'organization',
          app.compliance_figures_document(tests.var('east_org')::uuid, tests.var('east_t')::date - 15,
                                          'history', now(), null, null) -> 'organization',
          'east: the cache holds exactly the history''s answer');
select throws_ok(format('select count(*) from app.assignments_as_of(%L::uuid, %L::date)',
                        tests.var('west_org'), tests.var('west_t')::date - 5),
                 '42501', null, 'east: no history of another organisation');
select tests.clear_authentication();

select * from finish();
rollback;
