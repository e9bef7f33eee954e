-- The daily job, run for a given day: overdue, reminders, escalation, certifications, next cycle,
-- requirement expiry; idempotent.
begin;
select plan(23);

do $$ begin perform tests.engine_org('jobs'); end $$;
-- Ann: HIPAA due today + 7 (grace 7), OSHA due today + 30 (rule: remind 10 days before).
-- Bob (no manager): same modules.  The organisation reminds 7 days before, escalates after 14.

-- Day +3: HIPAA is due within 7 days (org reminder), OSHA not within 10 days.
select is((app.run_daily_jobs(tests.var('org')::uuid, tests.today() + 3) ->> 'due_soon_notified')::int, 3,
          'due-soon reminders for the HIPAA of Ann, Bob and their manager... ');
select is(tests.notification_count(tests.var('emp_user')::uuid, 'assignment.due_soon'), 1, '... one for Ann');
select is((app.run_daily_jobs(tests.var('org')::uuid, tests.today() + 3) ->> 'due_soon_notified')::int, 0, 'a second run notifies nobody again');

-- Day +21: OSHA due in 9 days (rule: 10) -> reminder; HIPAA overdue (due + 7 grace < day).
do $$ begin perform tests.set_var('run', app.run_daily_jobs(tests.var('org')::uuid, tests.today() + 21)::text); end $$;
select is((tests.var('run')::jsonb ->> 'overdue')::int, 3, 'HIPAA of Ann, Bob and the manager marked overdue');
select is((tests.assignment(tests.assignment_of(tests.var('emp')::uuid, tests.var('m_hipaa')::uuid))).status::text,
          'overdue', 'the assignment is overdue');
select is(tests.notification_count(tests.var('emp_user')::uuid, 'assignment.due_soon'), 2,
          'OSHA reminded within the department rule''s 10 days');
select is(tests.notification_count(tests.var('emp_user')::uuid, 'assignment.overdue'), 1, 'the employee is told it is overdue');
select is(tests.notification_count(tests.var('mgr')::uuid, 'assignment.escalated'), 0, 'no escalation yet');
select is((tests.stats(tests.var('emp')::uuid)).training_overdue, 1, 'stats count the overdue assignment');

-- Day +30: 23 days past due + grace > 14 escalation days -> Ann's manager; Bob and the manager
-- have no manager, so theirs go to the HR admins.
select is((app.run_daily_jobs(tests.var('org')::uuid, tests.today() + 30) ->> 'escalated')::int, 3, 'three escalations');
select is(tests.notification_count(tests.var('mgr')::uuid, 'assignment.escalated'), 1, 'Ann''s to her manager');
select is(tests.notification_count(tests.var('hr')::uuid, 'assignment.escalated'), 2,
          'Bob''s and the manager''s (no manager) to the HR admin');
select is((app.run_daily_jobs(tests.var('org')::uuid, tests.today() + 30) - 'day' - 'snapshots')
          , '{"overdue": 0, "escalated": 0, "due_soon_notified": 0, "overdue_notified": 0, "requirements_expired": 0, "next_cycle_assignments": 0, "certifications_expiring": 0, "lapsed_completions": 0, "rule_date_assignments": 0}'::jsonb,
          'the same day again changes nothing');

-- Next cycle: HIPAA (valid 365 days) completed 400 days ago has lapsed: its next cycle is assigned
-- (due the day + grace, its expiry being past) and counts instead, once.
update app.training_assignments
set due_date = tests.today() - 405, score = 95, completion_date = now() - interval '400 days'
where id = tests.assignment_of(tests.var('other')::uuid, tests.var('m_hipaa')::uuid);
select tests.set_var('run', app.run_daily_jobs(tests.var('org')::uuid, tests.today() + 31)::text);
select is((tests.var('run')::jsonb ->> 'next_cycle_assignments')::int, 1, 'a lapsed module is assigned again');
select is((tests.var('run')::jsonb ->> 'lapsed_completions')::int, 1, 'the lapsed completion stops counting');
select is((select array_agg(coalesce(not_required_reason, 'counts') order by due_date)
           from app.training_assignments
           where employee_id = tests.var('other')::uuid and module_id = tests.var('m_hipaa')::uuid),
          array['lapsed', 'counts'], 'the next cycle is a new assignment, and the one that counts');
select is((tests.assignment(tests.assignment_of(tests.var('other')::uuid, tests.var('m_hipaa')::uuid))).due_date,
          tests.today() + 31 + 7, 'due the day + grace (the expiry had passed before the window opened)');
select is((app.run_daily_jobs(tests.var('org')::uuid, tests.today() + 32) - 'day' - 'snapshots' - 'overdue' - 'due_soon_notified'
           - 'overdue_notified' - 'escalated' - 'certifications_expiring' - 'requirements_expired'),
          '{"next_cycle_assignments": 0, "lapsed_completions": 0, "rule_date_assignments": 0}'::jsonb,
          'and only once');

-- Certification expiring within 30 days.
insert into app.employee_requirements (org_id, employee_id, requirement_id)
values (tests.var('org')::uuid, tests.var('emp')::uuid, tests.var('r_cpr')::uuid);
update app.employee_requirements set status = 'submitted', submitted_at = now()
where employee_id = tests.var('emp')::uuid and requirement_id in (tests.var('r_cpr')::uuid, tests.var('r_attest')::uuid);
update app.employee_requirements set status = 'approved', expires_at = now() + interval '40 days'
where employee_id = tests.var('emp')::uuid and requirement_id in (tests.var('r_cpr')::uuid, tests.var('r_attest')::uuid);
select is((app.run_daily_jobs(tests.var('org')::uuid, tests.today() + 15) ->> 'certifications_expiring')::int, 1,
          'a certification expiring within 30 days is announced (attestations are not)');
select is((app.run_daily_jobs(tests.var('org')::uuid, tests.today() + 15) ->> 'certifications_expiring')::int, 0, 'once');

-- Inactive employees are left alone.
update app.employees set status = 'inactive' where id = tests.var('other')::uuid;
update app.training_assignments set due_date = tests.today() - 60
where id = tests.assignment_of(tests.var('other')::uuid, tests.var('m_osha')::uuid);
select is((tests.assignment(tests.assignment_of(tests.var('other')::uuid, tests.var('m_osha')::uuid))).status::text,
          'overdue', '(a write still applies the rules)');
select is((app.run_daily_jobs(tests.var('org')::uuid, tests.today() + 32) ->> 'overdue_notified')::int, 0,
          'the daily job tells no inactive employee about an overdue assignment');
select is(tests.verify_stats_count(), 0, 'verify_stats finds nothing to fix');
select * from finish();
rollback;
