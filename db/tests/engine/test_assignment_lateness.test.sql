-- Lateness is a fact about the completion: its completion time's local date, in the organisation's
-- zone, after due date + grace, whoever records it and whenever it arrives; days_late counts the
-- local days past it. The organisations sit at UTC+14 and UTC-12 and in Detroit across both
-- daylight-saving change days (of 2025: the results must lie in the past whatever the clock); the
-- session runs in a zone far from each.
begin;
select plan(23);

do $$
declare
    v_slug text;
    v_tz text;
begin
    for v_slug, v_tz in values ('kiri', 'Pacific/Kiritimati'), ('baker', 'Etc/GMT+12'),
                               ('detroit', 'America/Detroit') loop
        perform tests.engine_org('late-' || v_slug);
        update app.organizations set timezone = v_tz where id = tests.var('org')::uuid;
        perform tests.set_var(v_slug, tests.var('org'));
        perform tests.set_var(v_slug || '_hr', tests.var('hr'));
        perform tests.set_var(v_slug || '_emp', tests.var('emp'));
        perform tests.set_var(v_slug || '_module', tests.var('m_fire'));
    end loop;
end $$;

-- One assignment of Fire Safety per case: due on the day, with the grace days given, assigned two
-- months before (a result may not predate its assignment).
create function pg_temp.assign(p_org text, p_due date, p_grace integer) returns uuid
language sql as $$
    insert into app.training_assignments (org_id, employee_id, module_id, due_date, grace_days, created_at)
    values (tests.var(p_org)::uuid, tests.var(p_org || '_emp')::uuid, tests.var(p_org || '_module')::uuid,
            p_due, p_grace, (p_due - 60)::timestamptz)
    returning id
$$;
-- HR records a passing result finished at p_at; returns {is_late, days_late, status}.
create function pg_temp.complete(p_org text, p_id uuid, p_at timestamptz) returns jsonb
language plpgsql as $$
declare
    v jsonb;
begin
    perform tests.authenticate_as(tests.var(p_org || '_hr')::uuid);
    v := api.record_assignment_result(assignment_id => p_id, score => 95, completed_at => p_at);
    perform tests.clear_authentication();
    return jsonb_build_object('status', v ->> 'status', 'is_late', (v ->> 'is_late')::boolean,
                              'days_late', (v ->> 'days_late')::integer);
end
$$;

-- UTC+14, the session at UTC-12 (a day or two behind the organisation's date).
set local timezone = 'Etc/GMT+12';
select is(pg_temp.complete('kiri', pg_temp.assign('kiri', '2025-03-09', 0), '2025-03-09 21:30:00 Pacific/Kiritimati'),
          '{"status": "completed", "is_late": false, "days_late": null}',
          'UTC+14: completed at 21:30 local on the due date is on time');
select is(pg_temp.complete('kiri', pg_temp.assign('kiri', '2025-03-10', 0), '2025-03-11 00:30:00 Pacific/Kiritimati'),
          '{"status": "completed", "is_late": true, "days_late": 1}',
          'UTC+14: 00:30 local the day after (still the day before in the session''s zone) is one day late');
select is(pg_temp.complete('kiri', pg_temp.assign('kiri', '2025-03-02', 7), '2025-03-12 09:00:00 Pacific/Kiritimati'),
          '{"status": "completed", "is_late": true, "days_late": 3}',
          'UTC+14: days late count the local days past due date + grace');

-- UTC-12, the session at UTC+14.
set local timezone = 'Pacific/Kiritimati';
select is(pg_temp.complete('baker', pg_temp.assign('baker', '2025-03-09', 0), '2025-03-09 21:30:00 Etc/GMT+12'),
          '{"status": "completed", "is_late": false, "days_late": null}',
          'UTC-12: completed at 21:30 local on the due date (already two days on in the session''s zone) is on time');
select is(pg_temp.complete('baker', pg_temp.assign('baker', '2025-03-08', 1), '2025-03-09 23:59:59 Etc/GMT+12'),
          '{"status": "completed", "is_late": false, "days_late": null}',
          'UTC-12: the last second of the grace day is on time');
select is(pg_temp.complete('baker', pg_temp.assign('baker', '2025-03-07', 2), '2025-03-10 00:00:00 Etc/GMT+12'),
          '{"status": "completed", "is_late": true, "days_late": 1}',
          'UTC-12: local midnight after the grace day is late');

-- Detroit on both daylight-saving change days, the session at UTC+14.
select is(pg_temp.complete('detroit', pg_temp.assign('detroit', '2025-03-09', 0), '2025-03-09 21:30:00 America/Detroit'),
          '{"status": "completed", "is_late": false, "days_late": null}',
          'Detroit, spring-forward day: 21:30 on the due date is on time');
select is(pg_temp.complete('detroit', pg_temp.assign('detroit', '2025-03-08', 1), '2025-03-09 23:59:00 America/Detroit'),
          '{"status": "completed", "is_late": false, "days_late": null}',
          'Detroit, spring-forward day: 23:59 on the last grace day is on time');
select is(pg_temp.complete('detroit', pg_temp.assign('detroit', '2025-03-07', 2), '2025-03-10 00:00:01 America/Detroit'),
          '{"status": "completed", "is_late": true, "days_late": 1}',
          'Detroit, spring-forward day: one second after local midnight is one day late');
select is(pg_temp.complete('detroit', pg_temp.assign('detroit', '2025-11-02', 0), '2025-11-02 21:30:00 America/Detroit'),
          '{"status": "completed", "is_late": false, "days_late": null}',
          'Detroit, fall-back day: 21:30 on the due date is on time');
select is(pg_temp.complete('detroit', pg_temp.assign('detroit', '2025-11-01', 1), '2025-11-02 23:59:00 America/Detroit'),
          '{"status": "completed", "is_late": false, "days_late": null}',
          'Detroit, fall-back day: 23:59 on the last grace day is on time');
select is(pg_temp.complete('detroit', pg_temp.assign('detroit', '2025-10-31', 2), '2025-11-03 00:00:01 America/Detroit'),
          '{"status": "completed", "is_late": true, "days_late": 1}',
          'Detroit, fall-back day: one second after local midnight is one day late');
select is(pg_temp.complete('detroit', pg_temp.assign('detroit', '2025-10-30', 2), '2025-11-02 01:30:00-05'),
          '{"status": "completed", "is_late": true, "days_late": 1}',
          'Detroit, fall-back day: the second 01:30 (EST) is that local day too');

-- A late-arriving on-time result: completed on the due date, recorded a week after the daily job
-- marked the assignment overdue.
do $$ begin perform tests.set_var('arrives', pg_temp.assign('detroit', '2025-03-10', 0)::text); end $$;
select set_config('app.today', '2025-03-17', true);
update app.training_assignments set minutes_spent = 10 where id = tests.var('arrives')::uuid;
select is((tests.assignment(tests.var('arrives')::uuid)).status, 'overdue'::app.assignment_status,
          'the assignment is overdue a week after its due date');
select is(pg_temp.complete('detroit', tests.var('arrives')::uuid, '2025-03-10 20:45:00 America/Detroit'),
          '{"status": "completed", "is_late": false, "days_late": null}',
          'an on-time result recorded after the overdue marking completes it on time');
select is((select count(*)::integer from audit.log l
           where l.table_name = 'training_assignments' and l.entity_id = tests.var('arrives')
             and l.old_values ->> 'status' = 'overdue' and l.new_values ->> 'status' = 'completed'),
          1, 'the audit trail keeps that it was overdue in between');
select is((tests.stats(tests.var('detroit_emp')::uuid)).training_overdue, 0,
          'and the stats no longer count it overdue');

-- The same on-time result recorded by the Classroom merge's path (a plain write): on time too.
do $$ begin perform tests.set_var('merged', pg_temp.assign('detroit', '2025-03-11', 0)::text); end $$;
update app.training_assignments set minutes_spent = 10 where id = tests.var('merged')::uuid;
update app.training_assignments set score = 88, completion_date = '2025-03-11 22:00:00 America/Detroit'
where id = tests.var('merged')::uuid;
select is(((tests.assignment(tests.var('merged')::uuid)).status, (tests.assignment(tests.var('merged')::uuid)).is_late),
          ('completed'::app.assignment_status, false), 'whoever records it: a direct write is judged the same way');

-- Completed without a time (status completed): now, in the organisation's zone (UTC-12; the
-- session's date, at UTC+14, is a day or two ahead).
do $$ begin perform tests.set_var('now', pg_temp.assign('baker', (now() at time zone 'Etc/GMT+12')::date, 0)::text); end $$;
select set_config('app.today', '', true);
update app.training_assignments set status = 'completed' where id = tests.var('now')::uuid;
select is((tests.assignment(tests.var('now')::uuid)).is_late, false,
          'completed today (the organisation''s today, not the session''s) is on time');

-- A regrade moving the completion time is judged again.
do $$ begin perform tests.set_var('regraded', pg_temp.assign('kiri', '2025-03-11', 0)::text); end $$;
update app.training_assignments set score = 97, completion_date = '2025-03-13 10:00:00 Pacific/Kiritimati'
where id = tests.var('regraded')::uuid;
select is((select (a.is_late, a.days_late) from app.training_assignments a
           where a.org_id = tests.var('kiri')::uuid and a.due_date = '2025-03-11'),
          (true, 2), 'a result written with its completion time at once: 2 days late');
update app.training_assignments a set completion_date = '2025-03-11 10:00:00 Pacific/Kiritimati'
where a.org_id = tests.var('kiri')::uuid and a.due_date = '2025-03-11';
select is((select (a.is_late, a.days_late) from app.training_assignments a
           where a.org_id = tests.var('kiri')::uuid and a.due_date = '2025-03-11'),
          (false, null::integer), 'its completion time corrected to the due date: on time again');

select is((select count(*)::integer from app.training_assignments a
           where a.is_late is distinct from (a.days_late is not null)), 0,
          'is_late and days_late always agree');
select throws_ok($$update app.training_assignments set days_late = null
                   where org_id = tests.var('kiri')::uuid and is_late$$,
                 '23514', null, 'a late completion without its days late is refused by the table');

select * from finish();
rollback;
