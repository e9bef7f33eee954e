-- api.course_roster (db/functions/440_training_record.sql): a module's sessions (cycles by the
-- month of the due date) with who attended (completed, required or not) and who did not (required,
-- open or exempted), its trainer fields (written through api.training_modules within their
-- limits), and who may read it: the organisation's roster for HR, a manager's reports only.
begin;
select plan(17);

select set_config('app.today', '2026-03-10', true);
select tests.set_var('org', tests.create_org('roster-a')::text);
select tests.set_var('b', tests.create_org('roster-b')::text);
select tests.set_var('hr', tests.create_user(tests.var('org')::uuid, 'hr_admin', 'hr@ros-a.example')::text);
select tests.set_var('mgr', tests.create_user(tests.var('org')::uuid, 'manager', 'mgr@ros-a.example')::text);
select tests.set_var('mgr_e', (select employee_id::text from app.app_users where id = tests.var('mgr')::uuid));
select tests.set_var('emp', tests.create_user(tests.var('org')::uuid, 'employee', 'emp@ros-a.example')::text);
select tests.set_var('b_hr', tests.create_user(tests.var('b')::uuid, 'hr_admin', 'hr@ros-b.example')::text);
select tests.set_var('ann', tests.create_employee(tests.var('org')::uuid, 'ann@ros-a.example', tests.var('mgr_e')::uuid, 'Nurse')::text);
select tests.set_var('bob', tests.create_employee(tests.var('org')::uuid, 'bob@ros-a.example', null, 'Clerk')::text);
select tests.set_var('cy', tests.create_employee(tests.var('org')::uuid, 'cy@ros-a.example', tests.var('mgr_e')::uuid, 'Nurse')::text);
select tests.set_var('dee', tests.create_employee(tests.var('org')::uuid, 'dee@ros-a.example', null, 'Nurse')::text);
insert into app.training_modules (org_id, name, month_key, due_date, grace_period_days)
values (tests.var('org')::uuid, 'Bloodborne Pathogens', '2025-01', '2025-01-31', 0);
select tests.set_var('m', (select id::text from app.training_modules where org_id = tests.var('org')::uuid));

-- January: Bob completes first, Ann second (late), Dee's optional result counts as attendance,
-- Cy has not; a not-required open cycle is nobody's absence. February: Ann again.
insert into app.training_assignments (org_id, employee_id, module_id, due_date, status, completion_date, score, attempts, is_required, not_required_reason)
values (tests.var('org')::uuid, tests.var('bob')::uuid, tests.var('m')::uuid, '2025-01-31', 'completed', tests.local_noon(tests.var('org')::uuid, '2025-01-20'), 95, 1, true, null),
       (tests.var('org')::uuid, tests.var('ann')::uuid, tests.var('m')::uuid, '2025-01-31', 'completed', tests.local_noon(tests.var('org')::uuid, '2025-02-02'), 81.25, 1, true, null),
       (tests.var('org')::uuid, tests.var('dee')::uuid, tests.var('m')::uuid, '2025-01-31', 'completed', tests.local_noon(tests.var('org')::uuid, '2025-01-25'), 90, 1, false, 'optional'),
       (tests.var('org')::uuid, tests.var('cy')::uuid, tests.var('m')::uuid, '2025-01-31', 'overdue', null, null, 0, true, null),
       (tests.var('org')::uuid, tests.var('bob')::uuid, tests.var('m')::uuid, '2025-01-15', 'not_started', null, null, 0, false, 'rule_ended'),
       (tests.var('org')::uuid, tests.var('ann')::uuid, tests.var('m')::uuid, '2025-02-28', 'completed', tests.local_noon(tests.var('org')::uuid, '2025-02-27'), 99, 1, true, null);

-- HR writes the trainer fields through the api view.
select tests.authenticate_as(tests.var('hr')::uuid, 'PATCH');
update api.training_modules
set content_summary = 'Exposure control plan, PPE, hepatitis B vaccination, post-exposure follow-up.',
    trainer = 'Dana Reyes, RN', trainer_qualifications = 'Registered nurse; OSHA 501 trainer'
where id = tests.var('m')::uuid;
select is((select trainer from app.training_modules where id = tests.var('m')::uuid), 'Dana Reyes, RN',
          'HR writes the trainer through api.training_modules');
select is(tests.error_of(format('update api.training_modules set trainer = %L where id = %L', repeat('x', 201), tests.var('m'))) ->> 'code',
          '23514', 'a trainer longer than 200 characters is refused');
select is(tests.error_of(format('update api.training_modules set trainer = %L where id = %L', E'Dana\nReyes', tests.var('m'))) ->> 'code',
          '23514', 'so is a trainer on two lines');
select is(tests.error_of(format('update api.training_modules set content_summary = %L where id = %L', repeat('x', 4001), tests.var('m'))) ->> 'code',
          '23514', 'and a content summary longer than 4,000 characters');

select tests.authenticate_as(tests.var('hr')::uuid, 'GET');
select tests.set_var('ros', api.course_roster(module_id => tests.var('m')::uuid)::text);
create temp table ros as select tests.var('ros')::jsonb as r;
select is((select r #>> '{module,trainer_qualifications}' from ros), 'Registered nurse; OSHA 501 trainer', 'the trainer''s qualifications');
select is((select r #>> '{module,content_summary}' from ros),
          'Exposure control plan, PPE, hepatitis B vaccination, post-exposure follow-up.', 'the content summary');
select is((select jsonb_path_query_array(r, '$.sessions[*].cycle') from ros), '["2025-01", "2025-02"]'::jsonb,
          'one session per cycle, in order');
select is((select jsonb_path_query_array(r, '$.sessions[0].completed[*].name') from ros),
          '["Bob Test", "Dee Test", "Ann Test"]'::jsonb, 'attendees in completion order, an optional result included');
select is((select r #>> '{sessions,0,completed,2,completed_at}' from ros), '2025-02-02T12:00:00', 'completed_at in local time');
select is((select r #> '{sessions,0,completed,2}' ->> 'late' from ros), 'true', 'late');
select is((select r #> '{sessions,0,completed,2}' ->> 'score' from ros), '81.25', 'the score');
select is((select r #> '{sessions,0,completed,2}' ->> 'job_title' from ros), 'Nurse', 'the job title');
select is((select jsonb_path_query_array(r, '$.sessions[0].not_completed[*].name') from ros),
          '["Cy Test"]'::jsonb, 'who did not attend: required assignments only');

select tests.authenticate_as(tests.var('mgr')::uuid, 'GET');
select is(jsonb_path_query_array(api.course_roster(module_id => tests.var('m')::uuid), '$.sessions[*].completed[*].name'),
          '["Ann Test", "Ann Test"]'::jsonb, 'a manager sees their direct reports only');
select tests.authenticate_as(tests.var('emp')::uuid, 'GET');
select is(tests.error_of(format('select api.course_roster(module_id => %L)', tests.var('m'))) ->> 'code',
          '42501', 'an employee may not read rosters');
select tests.authenticate_as(tests.var('b_hr')::uuid, 'GET');
select is(tests.error_of(format('select api.course_roster(module_id => %L)', tests.var('m'))) ->> 'code',
          'PT404', 'another organisation''s module is unknown');
select is(tests.error_of('select api.course_roster(module_id => null)') ->> 'message',
          'module_id is required', 'no module: 400 naming the argument');
select tests.clear_authentication();

select * from finish();
rollback;
