-- What the sync cannot honour goes to the exception report: duplicate people in the Zenefits
-- roster, Classroom results for course work that is no module, Classroom students who match no
-- employee. Each is one open case however often the sync sees it, closes itself when the next
-- sync can honour it, and a person's resolution stands against later syncs.
begin;
select plan(38);

select tests.set_var('org', tests.create_org('sync-exceptions')::text);
select tests.set_var('hr', tests.create_user(tests.var('org')::uuid, 'hr_admin')::text);

-- One complete Zenefits run of these people; its merge figures.
create function pg_temp.zenefits(p_people jsonb) returns jsonb
language plpgsql as $$
declare
    v_run uuid := sync.start_run('sync-exceptions', 'employees', 'zenefits');
    v_merge jsonb;
begin
    insert into sync.staged_records (org_id, run_id, kind, page, item, payload)
    select tests.var('org')::uuid, v_run, 'zenefits_person', 1, (t.n - 1)::integer, t.person
    from jsonb_array_elements(p_people) with ordinality t(person, n);
    perform sync.record_fetch(v_run, 'zenefits', true, '{"pages": 1}');
    v_merge := sync.apply_zenefits_people(v_run);
    return v_merge || jsonb_build_object('status', sync.finish_run(v_run) ->> 'status');
end
$$;
create function pg_temp.person(p_id text, p_first text, p_last text, p_email text, p_birth text default null)
returns jsonb language sql as $$
    select jsonb_build_object('id', p_id, 'first_name', p_first, 'last_name', p_last,
                              'work_email', p_email, 'status', 'active', 'date_of_birth', p_birth)
$$;
create function pg_temp.cases(p_kind app.exception_kind) returns setof app.assignment_exceptions
language sql as $$
    select * from app.assignment_exceptions
    where org_id = tests.var('org')::uuid and kind = p_kind order by raised_at, subject_key
$$;

-- duplicate_person, same e-mail ------------------------------------------------------------
select tests.set_var('z1', pg_temp.zenefits(jsonb_build_array(
    pg_temp.person('101', 'Ann', 'Lee', 'ann.lee@acme.test'),
    pg_temp.person('102', 'Ann', 'Lee', 'ann.lee@acme.test')))::text);
select is(tests.var('z1')::jsonb ->> 'status', 'completed', 'a duplicate does not make the run partial');
select is((tests.var('z1')::jsonb ->> 'failed')::int, 0, 'a duplicate is no failed record');
select is((select array_agg(zenefits_id order by zenefits_id) from app.employees
           where org_id = tests.var('org')::uuid and zenefits_id in ('101', '102')),
          array['101'], 'the two records are not merged: one is the employee, the other not imported');
select is((select subject_key || ' ' || rule from pg_temp.cases('duplicate_person') where resolved_at is null),
          'zenefits:101+102 zenefits_duplicate_email', 'a case names both ids and the rule that matched');
select ok((select message like '%101%102%ann.lee@acme.test%' from pg_temp.cases('duplicate_person')),
          'its summary names both people and the e-mail');
select is((select details -> 'zenefits_ids' from pg_temp.cases('duplicate_person')), '["101", "102"]'::jsonb,
          'its details list both ids');
select is((select employee_id from pg_temp.cases('duplicate_person')),
          (select id from app.employees where org_id = tests.var('org')::uuid and zenefits_id = '101'),
          'it is about the employee of the record kept');

select is(pg_temp.zenefits(jsonb_build_array(
    pg_temp.person('101', 'Ann', 'Lee', 'ann.lee@acme.test'),
    pg_temp.person('102', 'Ann', 'Lee', 'ann.lee@acme.test'))) ->> 'exception_cases', '1',
    'the next sync sees the case again');
select is((select count(*)::int from pg_temp.cases('duplicate_person')), 1, 'and it stays one case');
select is((select count(*)::int from app.events where org_id = tests.var('org')::uuid
           and type = 'exception.raised'), 1, 'raised once');

-- Fixed in Zenefits: the next complete roster closes the case and imports the second person.
select pg_temp.zenefits(jsonb_build_array(
    pg_temp.person('101', 'Ann', 'Lee', 'ann.lee@acme.test'),
    pg_temp.person('102', 'Anna', 'Lee', 'anna.lee@acme.test')));
select ok((select resolved_at is not null and resolved_by is null from pg_temp.cases('duplicate_person')),
          'a roster without the duplicate closes the case');
select is((select count(*)::int from app.employees where org_id = tests.var('org')::uuid and zenefits_id = '102'), 1,
          'and the second record is imported');

-- duplicate_person, same name and date of birth --------------------------------------------
select tests.set_var('z2', pg_temp.zenefits(jsonb_build_array(
    pg_temp.person('101', 'Ann', 'Lee', 'ann.lee@acme.test'),
    pg_temp.person('102', 'Anna', 'Lee', 'anna.lee@acme.test'),
    pg_temp.person('201', 'Cy', 'Dee', 'cy.dee@acme.test', '1980-05-05'),
    pg_temp.person('202', 'CY', 'dee', 'cdee@mail.test', '1980-05-05'),
    pg_temp.person('203', 'Cy', 'Dee', 'cy2@acme.test', '1990-01-01')))::text);
select is((select rule from pg_temp.cases('duplicate_person') where resolved_at is null and subject_key = 'zenefits:201+202'),
          'zenefits_duplicate_name_and_date_of_birth', 'same name and date of birth under two ids is a case');
select is((select count(*)::int from pg_temp.cases('duplicate_person') where resolved_at is null), 1,
          'the same name with another date of birth is none');
select is((select count(*)::int from app.employees where org_id = tests.var('org')::uuid
           and zenefits_id in ('201', '202')), 2, 'both are imported: they may be two people');

-- A person decides they are two people: later syncs do not raise it again.
select tests.authenticate_as(tests.var('hr')::uuid);
select is(api.resolve_assignment_exception(
              (select id from api.assignment_exceptions where kind = 'duplicate_person' and not resolved),
              'two people: father and son') ->> 'resolved', 'true', 'HR resolves the case');
select tests.clear_authentication();
select pg_temp.zenefits(jsonb_build_array(
    pg_temp.person('101', 'Ann', 'Lee', 'ann.lee@acme.test'),
    pg_temp.person('102', 'Anna', 'Lee', 'anna.lee@acme.test'),
    pg_temp.person('201', 'Cy', 'Dee', 'cy.dee@acme.test', '1980-05-05'),
    pg_temp.person('202', 'CY', 'dee', 'cdee@mail.test', '1980-05-05'),
    pg_temp.person('203', 'Cy', 'Dee', 'cy2@acme.test', '1990-01-01')));
select is((select count(*)::int from pg_temp.cases('duplicate_person') where resolved_at is null), 0,
          'the person''s decision stands against the next sync');

-- A new record with the e-mail of an employee whose record the roster no longer lists (a
-- rehire under a new id): a case, not an error.
select tests.set_var('z3', pg_temp.zenefits(jsonb_build_array(
    pg_temp.person('102', 'Anna', 'Lee', 'anna.lee@acme.test'),
    pg_temp.person('201', 'Cy', 'Dee', 'cy.dee@acme.test', '1980-05-05'),
    pg_temp.person('202', 'CY', 'dee', 'cdee@mail.test', '1980-05-05'),
    pg_temp.person('203', 'Cy', 'Dee', 'cy2@acme.test', '1990-01-01'),
    pg_temp.person('109', 'Ann', 'Lee', 'ann.lee@acme.test')))::text);
select is((select subject_key from pg_temp.cases('duplicate_person') where resolved_at is null),
          'zenefits:101+109', 'a new id with the e-mail of a known employee is a duplicate case');
select is((tests.var('z3')::jsonb ->> 'failed')::int, 0, 'and no failed record');
-- HR links the new record to the employee (PATCH /employees zenefits_id): the case closes.
update app.employees set zenefits_id = '109' where org_id = tests.var('org')::uuid and zenefits_id = '101';
select pg_temp.zenefits(jsonb_build_array(
    pg_temp.person('102', 'Anna', 'Lee', 'anna.lee@acme.test'),
    pg_temp.person('201', 'Cy', 'Dee', 'cy.dee@acme.test', '1980-05-05'),
    pg_temp.person('202', 'CY', 'dee', 'cdee@mail.test', '1980-05-05'),
    pg_temp.person('203', 'Cy', 'Dee', 'cy2@acme.test', '1990-01-01'),
    pg_temp.person('109', 'Ann', 'Lee', 'ann.lee@acme.test')));
select is((select count(*)::int from pg_temp.cases('duplicate_person') where resolved_at is null), 0,
          'a record linked to the employee closes its case');
select is((select status::text from app.employees where org_id = tests.var('org')::uuid and zenefits_id = '109'),
          'active', 'and the employee follows the linked record');

-- Classroom ---------------------------------------------------------------------------------
select tests.set_var('ann', (select id::text from app.employees
                             where org_id = tests.var('org')::uuid and zenefits_id = '102'));
select tests.set_var('bob', tests.create_employee(tests.var('org')::uuid, 'bob@acme.test')::text);

-- One complete Classroom run: course work w1 (published; w2 is not listed), students, submissions.
create function pg_temp.classroom(p_students jsonb, p_submissions jsonb) returns jsonb
language plpgsql as $$
declare
    v_run uuid := sync.start_run('sync-exceptions', 'completions', 'classroom');
    v_merge jsonb;
begin
    insert into sync.staged_records (org_id, run_id, kind, page, item, payload)
    values (tests.var('org')::uuid, v_run, 'classroom_course', 1, 0, '{"id": "c1", "name": "Compliance"}'),
           (tests.var('org')::uuid, v_run, 'classroom_coursework', 1, 0,
            '{"courseId": "c1", "id": "w1", "title": "Fire safety", "state": "PUBLISHED", "maxPoints": 100}');
    insert into sync.staged_records (org_id, run_id, kind, page, item, payload)
    select tests.var('org')::uuid, v_run, 'classroom_student', 2, (t.n - 1)::integer, t.s
    from jsonb_array_elements(p_students) with ordinality t(s, n);
    insert into sync.staged_records (org_id, run_id, kind, page, item, payload)
    select tests.var('org')::uuid, v_run, 'classroom_submission', 3, (t.n - 1)::integer, t.s
    from jsonb_array_elements(p_submissions) with ordinality t(s, n);
    perform sync.record_fetch(v_run, 'classroom', true, '{"pages": 3}');
    perform sync.apply_classroom_coursework(v_run);
    v_merge := sync.apply_classroom_submissions(v_run);
    return v_merge || jsonb_build_object('status', sync.finish_run(v_run) ->> 'status');
end
$$;
create function pg_temp.student(p_id text, p_name text, p_email text) returns jsonb
language sql as $$
    select jsonb_build_object('courseId', 'c1', 'userId', p_id,
                              'profile', jsonb_build_object('id', p_id, 'emailAddress', p_email,
                                                            'name', jsonb_build_object('fullName', p_name)))
$$;
create function pg_temp.result(p_id text, p_cw text, p_user text, p_grade numeric) returns jsonb
language sql as $$
    select jsonb_build_object('courseId', 'c1', 'courseWorkId', p_cw, 'id', p_id, 'userId', p_user,
                              'state', 'RETURNED', 'assignedGrade', p_grade,
                              'updateTime', '2026-01-10T10:00:00.000Z',
                              'submissionHistory', jsonb_build_array(jsonb_build_object('stateHistory',
                                  jsonb_build_object('state', 'TURNED_IN', 'stateTimestamp', '2026-01-10T09:00:00.000Z'))))
$$;
select tests.set_var('students', jsonb_build_array(
    pg_temp.student('u1', 'Anna Lee', 'anna.lee@acme.test'),
    pg_temp.student('u2', 'Robert Test', 'robert@home.test'))::text);
select tests.set_var('subs', jsonb_build_array(
    pg_temp.result('s1', 'w1', 'u1', 90),
    pg_temp.result('s2', 'w2', 'u1', 85),
    pg_temp.result('s3', 'w1', 'u2', 70))::text);

select tests.set_var('c1', pg_temp.classroom(tests.var('students')::jsonb, tests.var('subs')::jsonb)::text);
select is(tests.var('c1')::jsonb ->> 'status', 'completed', 'results the sync cannot record do not fail the run');
select is((tests.var('c1')::jsonb ->> 'exception_cases')::int, 2, 'they are two cases');

-- unknown_module_result
select is((select subject_key || ' ' || rule from pg_temp.cases('unknown_module_result')),
          'classroom:submission:s2 classroom_result_module', 'a result for course work that is no module is a case');
select is((select employee_id from pg_temp.cases('unknown_module_result')), tests.var('ann')::uuid,
          'about the student''s employee');
select ok((select message like '%w2%course c1%' and details ->> 'course_id' = 'c1' and (details ->> 'grade')::numeric = 85
                  and details -> 'submission' ->> 'id' = 's2'
           from pg_temp.cases('unknown_module_result')),
          'naming the course, the course work, the grade, and keeping the submission as sent');

-- unmatched_student
select is((select subject_key || ' ' || rule from pg_temp.cases('unmatched_student')),
          'classroom:student:u2 classroom_student_matching', 'a student who matches no employee is a case');
select ok((select message like '%u2%Robert Test, robert@home.test%' and details -> 'results' -> 0 ->> 'submission_id' = 's3'
           from pg_temp.cases('unmatched_student')),
          'naming the student and keeping their results');

select pg_temp.classroom(tests.var('students')::jsonb, tests.var('subs')::jsonb);
select is((select count(*)::int from app.assignment_exceptions where org_id = tests.var('org')::uuid
           and kind in ('unknown_module_result', 'unmatched_student')), 2,
          'the same problems seen again stay one case each');

-- The course work mapped to a module, the student linked to an employee (as HR does through
-- /training_modules and /employees): the next sync records both results and closes both cases.
insert into app.training_modules (org_id, name, month_key, due_date, classroom_course_id, classroom_coursework_id)
values (tests.var('org')::uuid, 'Hand hygiene', '2026-01', '2026-01-31', 'c1', 'w2');
update app.employees set classroom_user_id = 'u2' where org_id = tests.var('org')::uuid and id = tests.var('bob')::uuid;
select is(pg_temp.classroom(tests.var('students')::jsonb, tests.var('subs')::jsonb) ->> 'status', 'completed',
          'the next sync runs');
select is((select classroom_grade from app.training_assignments
           where org_id = tests.var('org')::uuid and classroom_submission_id = 's2'), 85.00::numeric(9, 2),
          'the result of the mapped course work is recorded');
select ok((select resolved_at is not null and resolution like '%Hand hygiene%' from pg_temp.cases('unknown_module_result')),
          'and its case closed, saying why');
select is((select employee_id from app.training_assignments
           where org_id = tests.var('org')::uuid and classroom_submission_id = 's3'), tests.var('bob')::uuid,
          'the linked student''s result is recorded');
select ok((select resolved_at is not null and resolution like 'Matched to employee%' from pg_temp.cases('unmatched_student')),
          'and their case closed');

-- A student HR decides is no employee: resolved, and not raised again.
select tests.set_var('students', (tests.var('students')::jsonb
                                  || jsonb_build_array(pg_temp.student('u3', 'Visiting Nurse', 'vn@agency.test')))::text);
select tests.set_var('subs', (tests.var('subs')::jsonb || jsonb_build_array(pg_temp.result('s4', 'w1', 'u3', 95)))::text);
select pg_temp.classroom(tests.var('students')::jsonb, tests.var('subs')::jsonb);
select is((select count(*)::int from pg_temp.cases('unmatched_student') where resolved_at is null), 1,
          'a new unmatched student is a new case');
select tests.authenticate_as(tests.var('hr')::uuid);
select is(api.resolve_assignment_exception(
              (select id from api.assignment_exceptions where kind = 'unmatched_student' and not resolved),
              'agency nurse, not our staff') ->> 'resolved', 'true', 'HR resolves it');
select tests.clear_authentication();
select is(pg_temp.classroom(tests.var('students')::jsonb, tests.var('subs')::jsonb) ->> 'unmatched_students', '1',
          'the next sync still does not match the student');
select is((select count(*)::int from pg_temp.cases('unmatched_student') where resolved_at is null), 0,
          'but the person''s decision stands');

select * from finish();
rollback;
