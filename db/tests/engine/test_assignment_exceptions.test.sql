-- The exception report: raised once per open subject, read by staff, resolved by HR with a note.
begin;
select plan(15);

-- another organisation first, so that tests.var names the second one's people
do $$ begin perform tests.engine_org('exceptions-other'); perform tests.engine_org('exceptions'); end $$;

select isnt(app.raise_assignment_exception(tests.var('org')::uuid, 'unmatched_student', 'classroom:student:42',
              'Classroom results are matched to employees by user id, then e-mail',
              'A result for Classroom student 42 matches no employee.', 'Link the student to an employee.'),
            null, 'a case is raised');
select is(app.raise_assignment_exception(tests.var('org')::uuid, 'unmatched_student', 'classroom:student:42',
              'Classroom results are matched to employees by user id, then e-mail',
              'A result for Classroom student 42 matches no employee.', 'Link the student to an employee.'),
          (select id from app.assignment_exceptions where subject_key = 'classroom:student:42'),
          'raising it again keeps the one open case');
select is((select count(*)::int from app.assignment_exceptions where subject_key = 'classroom:student:42'), 1,
          'one row for the subject');
select lives_ok($$select app.raise_assignment_exception(tests.var('org')::uuid, 'regrade_below_passing',
              'assignment:' || tests.var('emp'), 'A completion stands as evidence; a regrade below passing is for a person to decide',
              'Ann''s result was regraded from 90 to 60.', 'Confirm the completion or ask for a retake.',
              tests.var('emp')::uuid)$$, 'a case about an employee');

select tests.authenticate_as(tests.var('viewer')::uuid);
select is((select count(*)::int from api.assignment_exceptions), 2, 'a viewer reads the organisation''s cases');
select throws_ok($$select api.resolve_assignment_exception((select id from api.assignment_exceptions limit 1), 'ok')$$,
                 '42501', null, 'a viewer may not resolve');
select tests.authenticate_as(tests.var('mgr')::uuid);
select is((select count(*)::int from api.assignment_exceptions), 1, 'a manager reads the cases of their direct reports only');
select tests.authenticate_as(tests.var('emp_user')::uuid);
select is((select count(*)::int from api.assignment_exceptions), 0, 'an employee reads none');

select tests.authenticate_as(tests.var('hr')::uuid);
select throws_ok($$select api.resolve_assignment_exception((select id from api.assignment_exceptions where kind = 'unmatched_student'), '  ')$$,
                 '22023', null, 'a resolution needs a note');
select throws_ok($$select api.resolve_assignment_exception(gen_random_uuid(), 'x')$$, 'PT404', null, 'an unknown case is 404');
select is(api.resolve_assignment_exception((select id from api.assignment_exceptions where kind = 'unmatched_student'),
                                           'student left the course') ->> 'resolved', 'true', 'HR resolves a case');
select throws_ok($$select api.resolve_assignment_exception((select id from api.assignment_exceptions where kind = 'unmatched_student'), 'again')$$,
                 'PT409', null, 'a resolved case cannot be resolved again');
select is((select resolved_by from api.assignment_exceptions where kind = 'unmatched_student'), tests.var('hr')::uuid,
          'the case names who resolved it');
select tests.clear_authentication();
select is((select count(*)::int from audit.log where event_type = 'exception_resolved'), 1, 'the resolution is audited');
select isnt(app.raise_assignment_exception(tests.var('org')::uuid, 'unmatched_student', 'classroom:student:42',
              'rule', 'seen again', 'hint'),
            (select id from app.assignment_exceptions where subject_key = 'classroom:student:42' and resolved_at is not null),
            'the same subject seen after a resolution opens a new case');

select * from finish();
rollback;
