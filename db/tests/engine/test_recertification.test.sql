-- Recertification as certification periods (issue 13 item 3): a completion is valid for the
-- module's validity days; the next cycle is assigned when the window opens (default 30 days before
-- expiry), due on the expiry date, not counting yet; at expiry the old cycle stops counting
-- (lapsed) and the new one counts; a renewal before expiry counts at once (the old one: renewed).
-- Optional trainings get no overdue notices or escalations (item 4).
begin;
select plan(22);

select set_config('app.today', '2026-06-15', true);
select 'setup: ' || tests.set_var('org', tests.create_org('recert')::text);
select 'setup: ' || tests.set_var('general', (select id::text from app.departments where org_id = tests.var('org')::uuid));
insert into app.training_modules (org_id, name, month_key, due_date, validity_days, grace_period_days)
values (tests.var('org')::uuid, 'CPR', '2025-07', '2026-07-31', 365, 7),
       (tests.var('org')::uuid, 'Volunteering', '2025-07', '2026-01-31', null, 7);
select 'setup: ' || tests.set_var('m_cpr', (select id::text from app.training_modules where org_id = tests.var('org')::uuid and name = 'CPR'));
select 'setup: ' || tests.set_var('m_vol', (select id::text from app.training_modules where org_id = tests.var('org')::uuid and name = 'Volunteering'));
insert into app.department_training_requirements (org_id, department_id, module_id, grace_days, effective_start)
values (tests.var('org')::uuid, tests.var('general')::uuid, tests.var('m_cpr')::uuid, 7, '2025-01-01');
insert into app.employees (org_id, email, first_name, last_name, start_date, department_id)
values (tests.var('org')::uuid, 'boss@recert.example', 'Bea', 'Boss', '2010-01-01', tests.var('general')::uuid);
insert into app.employees (org_id, email, first_name, last_name, start_date, department_id, manager_id)
values (tests.var('org')::uuid, 'eve@recert.example', 'Eve', 'Early', '2015-01-01', tests.var('general')::uuid,
        (select id from app.employees where email = 'boss@recert.example')),
       (tests.var('org')::uuid, 'fay@recert.example', 'Fay', 'Fresh', '2015-01-01', tests.var('general')::uuid,
        (select id from app.employees where email = 'boss@recert.example'));
select 'setup: ' || tests.set_var('eve', (select id::text from app.employees where email = 'eve@recert.example'));
select 'setup: ' || tests.set_var('fay', (select id::text from app.employees where email = 'fay@recert.example'));
select 'setup: ' || tests.set_var('boss_user', tests.create_user(tests.var('org')::uuid, 'manager', 'boss@recert.example', (select id from app.employees where email = 'boss@recert.example'))::text);
select 'setup: ' || tests.set_var('eve_user', tests.create_user(tests.var('org')::uuid, 'employee', 'eve@recert.example', tests.var('eve')::uuid)::text);
select 'setup: ' || tests.set_var('eve_cpr', tests.assignment_of(tests.var('eve')::uuid, tests.var('m_cpr')::uuid)::text);
select 'setup: ' || tests.set_var('fay_cpr', tests.assignment_of(tests.var('fay')::uuid, tests.var('m_cpr')::uuid)::text);
-- Eve completed CPR on 2025-07-10 (expires 2026-07-10: window open since 2026-06-10);
-- Fay on 2025-08-20 (expires 2026-08-20: window opens 2026-07-21). Times are midday in Detroit.
update app.training_assignments set score = 90, completion_date = '2025-07-10 16:00+00' where id = tests.var('eve_cpr')::uuid;
update app.training_assignments set score = 90, completion_date = '2025-08-20 16:00+00' where id = tests.var('fay_cpr')::uuid;

-- 1-6. The window opens.
select is(app.open_recertification_windows(tests.var('org')::uuid, '2026-06-15'), 1,
          'one window is open on 2026-06-15 (Eve''s; Fay''s opens in July)');
select is((select (a.due_date, a.is_required, a.not_required_reason, a.status)::text from app.training_assignments a
           where a.employee_id = tests.var('eve')::uuid and a.module_id = tests.var('m_cpr')::uuid
             and a.id <> tests.var('eve_cpr')::uuid),
          '(2026-07-10,f,next_cycle,not_started)', 'the next cycle is assigned, due on the expiry date, not counting yet');
select is((select (training_assigned, training_completed)::text from app.employee_compliance_stats
           where employee_id = tests.var('eve')::uuid), '(1,1)', 'the valid completion keeps counting until expiry');
select is(tests.notification_count(tests.var('eve_user')::uuid, 'assignment.recertification_due')
          + tests.notification_count(tests.var('boss_user')::uuid, 'assignment.recertification_due'), 2,
          'the employee and the manager are told');
select is(app.open_recertification_windows(tests.var('org')::uuid, '2026-06-16'), 0, 'the window opens once');
select is(tests.notification_count(tests.var('eve_user')::uuid, 'assignment.recertification_due'), 1,
          '... and they are told once');

-- 7-11. Expiry: the old cycle lapses, the new one counts, overdue after its grace.
select is((app.run_daily_jobs(tests.var('org')::uuid, '2026-07-09') ->> 'lapsed_completions')::int, 0, 'nothing lapses the day before expiry');
select is((app.run_daily_jobs(tests.var('org')::uuid, '2026-07-10') ->> 'lapsed_completions')::int, 1, 'Eve''s completion lapses on its expiry date');
select is((select (a.status, a.is_required, a.not_required_reason, a.required_until at time zone 'UTC')::text
           from app.training_assignments a where a.id = tests.var('eve_cpr')::uuid),
          '(completed,f,lapsed,"2026-07-10 04:00:00")',
          'the lapsed cycle stays completed in the history, no longer counting since the start of the expiry day');
select is((select (training_assigned, training_completed)::text from app.employee_compliance_stats
           where employee_id = tests.var('eve')::uuid), '(1,0)', 'the next cycle counts instead');
select 'run: ' || app.run_daily_jobs(tests.var('org')::uuid, '2026-07-18')::text is not null;
select is((select a.status::text from app.training_assignments a
           where a.employee_id = tests.var('eve')::uuid and a.module_id = tests.var('m_cpr')::uuid and a.is_required),
          'overdue', 'the new cycle is overdue after its grace like any other');

-- 12-15. Renewal before expiry.
select is(app.open_recertification_windows(tests.var('org')::uuid, '2026-07-21'), 1, 'Fay''s window opens 30 days before expiry');
select set_config('app.today', '2026-07-30', true);
update app.training_assignments set score = 88, completion_date = '2026-07-30 15:00+00'
where employee_id = tests.var('fay')::uuid and module_id = tests.var('m_cpr')::uuid and not_required_reason = 'next_cycle';
select is((select array_agg((a.status, a.is_required, a.not_required_reason)::text order by a.due_date)
           from app.training_assignments a
           where a.employee_id = tests.var('fay')::uuid and a.module_id = tests.var('m_cpr')::uuid),
          array['(completed,f,renewed)', '(completed,t,)'], 'the renewal counts at once; the completion it renews stops (renewed)');
select is((select (training_assigned, training_completed)::text from app.employee_compliance_stats
           where employee_id = tests.var('fay')::uuid), '(1,1)', 'one counting cycle, completed');
select is((app.run_daily_jobs(tests.var('org')::uuid, '2026-08-20') ->> 'lapsed_completions')::int, 0,
          'the renewed completion does not lapse again');

-- 16-17. Refused: the jobs are not callable by API users.
select tests.authenticate_as(tests.var('eve_user')::uuid);
select throws_ok(format($$select app.open_recertification_windows(%L, '2026-06-15')$$, tests.var('org')),
                 '42501', null, 'an API user may not run the recertification job');
select throws_ok(format($$select app.reconcile_assignments(array[%L]::uuid[], array[%L]::uuid[])$$, tests.var('org'), tests.var('eve')),
                 '42501', null, 'nor the reconciliation');
select tests.clear_authentication();

-- 18-21. Optional trainings: never in a rate, never an overdue notice or escalation.
insert into app.training_assignments (org_id, employee_id, module_id, due_date, is_required, not_required_reason)
values (tests.var('org')::uuid, tests.var('eve')::uuid, tests.var('m_vol')::uuid, '2026-07-01', false, 'optional');
select is((select training_assigned from app.employee_compliance_stats where employee_id = tests.var('eve')::uuid), 1,
          'an optional training is not in the employee''s figures');
select lives_ok($$select app.run_daily_jobs(tests.var('org')::uuid, '2026-09-30')$$, 'the daily job runs long after its due date');
select is((select count(*)::int from app.notifications n
           where n.recipient_id = tests.var('eve_user')::uuid and n.type = 'assignment.overdue'
             and n.action_url = '/assignments/' || tests.assignment_of(tests.var('eve')::uuid, tests.var('m_vol')::uuid)), 0,
          'no overdue notice for an optional training');
select ok(tests.notification_count(tests.var('eve_user')::uuid, 'assignment.overdue') > 0,
          '... while the required CPR renewal is noticed');
select is((select count(*)::int from app.notifications n
           where n.recipient_id = tests.var('boss_user')::uuid and n.type = 'assignment.escalated'
             and n.message like '%Volunteering%'), 0, 'and no escalation of it');

select * from finish();
rollback;
