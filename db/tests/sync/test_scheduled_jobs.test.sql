-- The worker's scheduled jobs: each organisation's daily jobs run for its LOCAL day, after its
-- local midnight, once across all workers, catching up missed days in order; a catch-up caches
-- only days that have ended, from the history (never later events as an earlier day's). The
-- organisations sit at UTC+14 and UTC-12; the server's zone changes nothing.
begin;
select plan(14);

do $$ begin
    perform tests.engine_org('jobs-kiri');
    update app.organizations set timezone = 'Pacific/Kiritimati' where id = tests.var('org')::uuid;
    perform tests.set_var('baker', tests.create_org('jobs-baker')::text);
    update app.organizations set timezone = 'Etc/GMT+12' where id = tests.var('baker')::uuid;
end $$;
set local timezone = 'America/Detroit';

-- Without a pinned day each organisation runs its own local today.
set local role sync_worker;
select is(sync.run_scheduled_jobs('jobs-kiri') -> 'daily',
          jsonb_build_object((now() at time zone 'Pacific/Kiritimati')::date, 'ran'),
          'UTC+14: the first run runs the organisation''s local today');
select is(sync.run_scheduled_jobs('jobs-baker') -> 'daily',
          jsonb_build_object((now() at time zone 'Etc/GMT+12')::date, 'ran'),
          'UTC-12: its own local today, a day or two behind');
select is(sync.run_scheduled_jobs('jobs-kiri') -> 'daily', '{}'::jsonb,
          'called again the same local day: nothing runs twice');
select throws_ok($$select sync.run_scheduled_jobs('no-such-org')$$, '22023', null,
                 'an unknown organisation is refused with a clear error');
reset role;
select is((select count(*)::integer from sync.daily_job_runs r where r.org_id = tests.var('org')::uuid), 1,
          'the ledger holds one day of the organisation');

-- Missed days: Ann's Fire Safety is due on today + 1 (no grace); the worker was away three days.
select tests.set_var('today', tests.today()::text) is not null as "set-up";
insert into app.training_assignments (org_id, employee_id, module_id, due_date, grace_days)
values (tests.var('org')::uuid, tests.var('emp')::uuid, tests.var('m_fire')::uuid,
        tests.var('today')::date + 1, 0);
select set_config('app.today', (tests.var('today')::date + 4)::text, true);
set local role sync_worker;
select is(sync.run_scheduled_jobs('jobs-kiri') -> 'daily',
          jsonb_build_object(tests.var('today')::date + 1, 'ran', tests.var('today')::date + 2, 'ran',
                             tests.var('today')::date + 3, 'ran', tests.var('today')::date + 4, 'ran'),
          'the missed days run, each once');
reset role;
select is((select array_agg(r.day order by r.finished_at) from sync.daily_job_runs r
           where r.org_id = tests.var('org')::uuid and r.day > tests.var('today')::date),
          array[tests.var('today')::date + 1, tests.var('today')::date + 2,
                tests.var('today')::date + 3, tests.var('today')::date + 4],
          'in order, oldest first');
select is((select (r.result ->> 'overdue')::integer from sync.daily_job_runs r
           where r.org_id = tests.var('org')::uuid and r.day = tests.var('today')::date + 2),
          1, 'the assignment due on day 1 was marked overdue by the run of day 2, the first day after it');
select is((tests.assignment(tests.assignment_of(tests.var('emp')::uuid, tests.var('m_fire')::uuid))).status,
          'overdue'::app.assignment_status, 'and it is overdue');

-- A catch-up of past days after a termination: each day's run caches only days that have ended,
-- from the history (the figures as recorded by each day's end: the termination, recorded now,
-- is no earlier day's; db/tests/figures/test_history_as_of.sql checks the figures).
select set_config('app.today', '', true);
do $$ begin
    perform tests.set_var('real_today', tests.today()::text);
end $$;
delete from sync.daily_job_runs where org_id = tests.var('org')::uuid;
delete from app.compliance_snapshots where org_id = tests.var('org')::uuid;
insert into sync.daily_job_runs (org_id, day, finished_at, ok)
values (tests.var('org')::uuid, tests.var('real_today')::date - 3, now(), true);
update app.employees set status = 'terminated' where id = tests.var('other')::uuid;
set local role sync_worker;
select is(sync.run_scheduled_jobs('jobs-kiri') -> 'daily',
          jsonb_build_object(tests.var('real_today')::date - 2, 'ran', tests.var('real_today')::date - 1, 'ran',
                             tests.var('real_today')::date, 'ran'),
          'after a termination, the two missed days and today run');
reset role;
select is((select count(*)::integer from sync.daily_job_runs r
           where r.org_id = tests.var('org')::uuid and r.result ->> 'snapshots' !~ '^[0-9]+$'),
          0, 'every run of the catch-up cached the days that had ended');
select is((select count(*)::integer from app.compliance_snapshots s
           where s.org_id = tests.var('org')::uuid and s.snapshot_date >= tests.var('real_today')::date),
          0, 'no day that has not ended is cached');

-- A day that fails is recorded with its error, and later days wait for its retry.
delete from sync.daily_job_runs where org_id = tests.var('org')::uuid;
insert into sync.daily_job_runs (org_id, day, finished_at, ok) values
    (tests.var('org')::uuid, tests.var('real_today')::date - 2, now(), true),
    (tests.var('org')::uuid, tests.var('real_today')::date - 1, now(), false);
set local role sync_worker;
select is(sync.run_scheduled_jobs('jobs-kiri') -> 'daily',
          jsonb_build_object(tests.var('real_today')::date - 1, 'failed, retried later'),
          'a day that failed minutes ago is retried later, and today waits for it');
reset role;
update sync.daily_job_runs set started_at = now() - interval '11 minutes'
where org_id = tests.var('org')::uuid and day = tests.var('real_today')::date - 1;
set local role sync_worker;
select is(sync.run_scheduled_jobs('jobs-kiri') -> 'daily',
          jsonb_build_object(tests.var('real_today')::date - 1, 'ran', tests.var('real_today')::date, 'ran'),
          'ten minutes on, the failed day runs again, then today');
reset role;

select * from finish();
rollback;
