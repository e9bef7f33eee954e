-- Corrections of completions (HR's completion editor), in an organisation at UTC+14: a completion
-- recorded with its real, back-dated time and a reason; never in the future, never before the
-- assignment existed; corrected (time, score) or withdrawn (did not attend) only with a reason;
-- the original kept in the history, the training record showing who and why, and the as-of
-- figures of the days touched naming that they were corrected later.
begin;
select plan(26);

select 'setup: ' || tests.set_var('org', tests.create_org('corrections')::text);
update app.organizations set timezone = 'Pacific/Kiritimati' where id = tests.var('org')::uuid;
select 'setup: ' || tests.set_var('t', app.org_today(tests.var('org')::uuid)::text);
insert into app.training_modules (org_id, name, month_key, due_date, grace_period_days, passing_score)
values (tests.var('org')::uuid, 'Fire safety', '2025-01', tests.var('t')::date - 10, 0, 80);
select 'setup: ' || tests.set_var('e', tests.create_employee(tests.var('org')::uuid, 'erin@corrections.example')::text);
select 'setup: ' || tests.set_var('f', tests.create_employee(tests.var('org')::uuid, 'finn@corrections.example')::text);
insert into app.training_assignments (org_id, employee_id, module_id, due_date)
select e.org_id, e.id, m.id, m.due_date
from app.employees e join app.training_modules m on m.org_id = e.org_id
where e.org_id = tests.var('org')::uuid;
select 'setup: ' || tests.set_var('ae', tests.assignment_of(tests.var('e')::uuid,
    (select id from app.training_modules where org_id = tests.var('org')::uuid))::text);
select 'setup: ' || tests.set_var('af', tests.assignment_of(tests.var('f')::uuid,
    (select id from app.training_modules where org_id = tests.var('org')::uuid))::text);
select 'setup: ' || tests.set_var('hr', tests.create_user(tests.var('org')::uuid, 'hr_admin')::text);
select 'setup: ' || tests.set_var('manager', tests.create_user(tests.var('org')::uuid, 'manager')::text);
select tests.history_at(tests.var('org')::uuid, tests.local_noon(tests.var('org')::uuid, tests.var('t')::date - 20));

-- Refusals, each changing nothing.
select tests.authenticate_as(tests.var('manager')::uuid, 'POST', '/rpc/record_completion');
select throws_ok(format('select api.record_completion(%L, %L, %L)', tests.var('ae'),
                        tests.local_noon(tests.var('org')::uuid, tests.var('t')::date - 5), 'session'),
                 '42501', null, 'a manager may not record a completion');
select tests.authenticate_as(tests.var('hr')::uuid, 'POST', '/rpc/record_completion');
select throws_ok(format('select api.record_completion(%L, %L, %L)', tests.var('ae'), now() + interval '1 hour', 'session'),
                 '22023', null, 'a completion in the future is refused');
select throws_ok(format('select api.record_completion(%L, %L, %L)', tests.var('ae'),
                        tests.local_noon(tests.var('org')::uuid, tests.var('t')::date - 25), 'session'),
                 '22023', null, 'a completion before the assignment existed is refused');
select throws_ok(format('select api.record_completion(%L, %L, %L)', tests.var('ae'),
                        tests.local_noon(tests.var('org')::uuid, tests.var('t')::date - 5), '  '),
                 '22023', 'a reason is required to record a completion', 'a completion without a reason is refused');
select throws_ok(format('select api.record_completion(%L, %L, %L, score => 50)', tests.var('ae'),
                        tests.local_noon(tests.var('org')::uuid, tests.var('t')::date - 5), 'session'),
                 '22023', null, 'a score below the passing score is refused');
select throws_ok(format('select api.correct_completion(%L, %L, completed_at => %L)', tests.var('ae'), 'typo',
                        tests.local_noon(tests.var('org')::uuid, tests.var('t')::date - 5)),
                 'PT409', null, 'there is no completion to correct yet');
select is((select count(*)::integer from app.completion_corrections where org_id = tests.var('org')::uuid), 0,
          'nothing was written by the refusals');

-- Recorded on T-5 (HR keyed in an in-person session of that day); Finn's of T-6 on T-6.
select is((api.record_completion(tests.var('ae')::uuid,
                                 tests.local_noon(tests.var('org')::uuid, tests.var('t')::date - 5),
                                 'In-person session, sign-in sheet') ->> 'status'), 'completed',
          'HR records a back-dated completion');
select is((tests.assignment(tests.var('ae')::uuid)).completion_date,
          tests.local_noon(tests.var('org')::uuid, tests.var('t')::date - 5), 'with its real time');
select tests.clear_authentication();
select tests.history_at(tests.var('org')::uuid, tests.local_noon(tests.var('org')::uuid, tests.var('t')::date - 5) + interval '1 hour');
select tests.authenticate_as(tests.var('hr')::uuid, 'POST', '/rpc/record_completion');
select is((api.record_completion(tests.var('af')::uuid,
                                 tests.local_noon(tests.var('org')::uuid, tests.var('t')::date - 6),
                                 'Night shift session', score => 90) ->> 'status'), 'completed',
          'a completion with a score');
select throws_ok(format('select api.record_completion(%L, %L, %L)', tests.var('af'),
                        tests.local_noon(tests.var('org')::uuid, tests.var('t')::date - 6), 'again'),
                 'PT409', null, 'a completed assignment is not recorded twice');
select tests.clear_authentication();
select tests.history_at(tests.var('org')::uuid, tests.local_noon(tests.var('org')::uuid, tests.var('t')::date - 6) + interval '2 hours');

-- Today: Erin's session was really on T-3; Finn did not attend.
select tests.authenticate_as(tests.var('hr')::uuid, 'POST', '/rpc/correct_completion');
select throws_ok(format('select api.correct_completion(%L, %L)', tests.var('ae'), ''),
                 '22023', null, 'a correction without a reason is refused');
select throws_ok(format('select api.correct_completion(%L, %L, completed_at => %L)', tests.var('ae'), 'same',
                        tests.local_noon(tests.var('org')::uuid, tests.var('t')::date - 5)),
                 '22023', null, 'a correction that changes nothing is refused');
select throws_ok(format('select api.correct_completion(%L, %L, completed_at => %L, attended => false)', tests.var('af'),
                        'no', tests.local_noon(tests.var('org')::uuid, tests.var('t')::date - 5)),
                 '22023', null, 'a withdrawal takes no time');
select is((api.correct_completion(tests.var('ae')::uuid, 'The session was on Thursday, not Tuesday',
                                  completed_at => tests.local_noon(tests.var('org')::uuid, tests.var('t')::date - 3))
           ->> 'completion_date')::timestamptz,
          tests.local_noon(tests.var('org')::uuid, tests.var('t')::date - 3), 'HR corrects the completion time');
select is((api.correct_completion(tests.var('af')::uuid, 'Signed the sheet but left before the session',
                                  attended => false) ->> 'status'), 'overdue',
          'a withdrawn completion reopens the assignment (overdue: past due)');
select is((tests.assignment(tests.var('af')::uuid)).completion_date, null, 'and removes its completion');

-- The original stays in the history; the training record shows who corrected what and why.
select is((select count(*)::integer from app.assignment_history
           where org_id = tests.var('org')::uuid and assignment_id = tests.var('ae')::uuid
             and completion_date = tests.local_noon(tests.var('org')::uuid, tests.var('t')::date - 5)), 1,
          'the original completion time is kept in the history');
select is((select string_agg(kind || '/' || attended || '/' || corrected_by_name || '/' || reason, '; ' order by kind <> 'recorded', corrected_at)
           from api.completion_corrections where assignment_id = tests.var('ae')::uuid),
          'recorded/true/Hr_Admin User/In-person session, sign-in sheet; corrected/true/Hr_Admin User/The session was on Thursday, not Tuesday',
          'the training record lists both, with who and why');
select is((select (previous_completion_date, completion_date)::text from api.completion_corrections
           where assignment_id = tests.var('ae')::uuid and kind = 'corrected'),
          (tests.local_noon(tests.var('org')::uuid, tests.var('t')::date - 5),
           tests.local_noon(tests.var('org')::uuid, tests.var('t')::date - 3))::text,
          'the correction shows the completion before and after');

-- The past days it touches: T-4 (Erin recorded as completed on T-5, now on T-3; Finn recorded on
-- T-6, now withdrawn): both overdue that day, each named as corrected later.
select tests.authenticate_as(tests.var('hr')::uuid, 'GET', '/rpc/compliance_as_of');
select is((api.compliance_as_of(tests.var('t')::date - 4) -> 'organization' ->> 'overdueAssignments',
           api.compliance_as_of(tests.var('t')::date - 4) -> 'organization' ->> 'correctedLater')::text,
          '(2,2)', 'T-4: both overdue now that the corrections say so, and named corrected later');
select is((select string_agg((x ->> 'employee') || ':' || (x -> 'overdue' -> 0 ->> 'correctedLater'), ',')
           from jsonb_array_elements(api.overdue_as_of(tests.var('t')::date - 4) -> 'people') x),
          'Erin Test:true,Finn Test:true', 'the overdue list of T-4 names the corrections');
select is((api.compliance_as_of(tests.var('t')::date - 2) -> 'organization' ->> 'completedAssignments',
           api.compliance_as_of(tests.var('t')::date - 2) -> 'organization' ->> 'correctedLater')::text,
          '(1,2)', 'T-2: Erin completed (T-3), Finn not; both corrected later');
select is((api.compliance_as_of(tests.var('t')::date - 7) -> 'organization' ->> 'correctedLater')::text,
          '0', 'T-7, before any of it: untouched');

-- Who may read the record.
select tests.clear_authentication();
select 'setup: ' || tests.set_var('erin', tests.create_user(tests.var('org')::uuid, 'employee', 'erin.login@corrections.example',
                                                           tests.var('e')::uuid)::text);
select tests.authenticate_as(tests.var('erin')::uuid, 'GET', '/completion_corrections');
select is((select count(*)::integer from api.completion_corrections), 2, 'Erin reads her own corrections');
select is((select count(*)::integer from api.completion_corrections where employee_id = tests.var('f')::uuid), 0,
          'and not Finn''s');
select tests.clear_authentication();

select * from finish();
rollback;
