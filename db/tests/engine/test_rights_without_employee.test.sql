-- Rights checks that compare a record's employee with the caller's: a login with no linked
-- employee record (a viewer, a manager whose record was never linked) must be
-- refused, never let through by a comparison with null; a manager with no employee record has
-- no direct reports (not even the employees who have no manager); a viewer only reads, even
-- with an employee record of their own.
begin;
select plan(28);

do $$ begin perform tests.engine_org('nullrights'); end $$;
do $$ begin perform tests.set_var('att', tests.record_of(tests.var('emp')::uuid, tests.var('r_attest')::uuid)::text); end $$;
do $$ begin perform tests.set_var('other_att', tests.record_of(tests.var('other')::uuid, tests.var('r_attest')::uuid)::text); end $$;
do $$ begin perform tests.set_var('mgr_att', tests.record_of(tests.var('mgr_emp')::uuid, tests.var('r_attest')::uuid)::text); end $$;
do $$ begin perform tests.set_var('emp_osha', tests.assignment_of(tests.var('emp')::uuid, tests.var('m_osha')::uuid)::text); end $$;
do $$ begin perform tests.set_var('other_osha', tests.assignment_of(tests.var('other')::uuid, tests.var('m_osha')::uuid)::text); end $$;
-- A manager login without an employee record (tests.create_user would give it one; an
-- employee-role login always has one: app_users_employee_role_has_an_employee), and a viewer
-- with an employee record of their own (vic).
insert into app.app_users (org_id, email, display_name, app_role, employee_id)
values (tests.var('org')::uuid, 'lone-manager@nullrights.example', 'Lone Manager', 'manager', null);
select tests.set_var('lone_mgr', (select id::text from app.app_users where email = 'lone-manager@nullrights.example'));
select tests.set_var('vic', tests.create_employee(tests.var('org')::uuid, 'vic@nullrights.example')::text);
select tests.set_var('vic_user', tests.create_user(tests.var('org')::uuid, 'viewer', 'vic@nullrights.example',
                                                   tests.var('vic')::uuid)::text);
do $$ begin perform tests.set_var('vic_att', tests.record_of(tests.var('vic')::uuid, tests.var('r_attest')::uuid)::text); end $$;
do $$ begin perform tests.set_var('vic_osha', tests.assignment_of(tests.var('vic')::uuid, tests.var('m_osha')::uuid)::text); end $$;
-- A submitted record for the review cases.
select tests.authenticate_as(tests.var('other_user')::uuid);
select is(api.submit_requirement(tests.var('other_att')::uuid, '{"note": "signed"}') ->> 'status', 'submitted',
          'setup: bob submits his attestation');
select tests.clear_authentication();

-- A viewer without an employee record.
select tests.authenticate_as(tests.var('viewer')::uuid);
select throws_like($$select api.update_requirement_status(tests.var('att')::uuid, 'in_progress')$$,
                   'you may not change requirement record %', 'a viewer may not move a report''s record');
select throws_ok($$select api.update_requirement_status(tests.var('mgr_att')::uuid, 'in_progress')$$, '42501', null,
                 'nor any other employee''s');
select throws_ok($$select api.submit_requirement(tests.var('att')::uuid, '{"note": "x"}')$$, '42501', null,
                 'a viewer submits nothing');
select throws_ok($$select api.update_assignment_status(tests.var('emp_osha')::uuid, 'in_progress')$$, '42501', null,
                 'a viewer records no progress');
select throws_ok($$select api.switch_tier(tests.var('emp')::uuid, tests.var('silver')::uuid, 'x')$$, '42501', null,
                 'a viewer switches no tier');
select tests.clear_authentication();
select is((tests.record(tests.var('att')::uuid)).status::text, 'pending', 'the refused calls changed nothing');
select is((tests.assignment(tests.var('emp_osha')::uuid)).status::text, 'not_started', 'nor the assignment');

-- A manager without an employee record has no direct reports: not ann (mgr's report), not bob
-- (who has no manager: a null manager is nobody's report).
select tests.authenticate_as(tests.var('lone_mgr')::uuid);
select is(app.direct_report_ids(), '{}'::uuid[], 'a manager without an employee record has no direct reports');
select throws_ok($$select api.update_requirement_status(tests.var('att')::uuid, 'in_progress')$$, '42501', null,
                 'it may not move a record of someone with a manager');
select throws_ok($$select api.update_requirement_status(tests.var('other_att')::uuid, 'in_progress')$$, '42501', null,
                 'nor of someone without one');
select throws_ok($$select api.review_requirement(tests.var('other_att')::uuid, 'approved', null)$$, '42501', null,
                 'it reviews nobody''s submission');
select throws_ok($$select api.update_assignment_status(tests.var('other_osha')::uuid, 'in_progress')$$, '42501', null,
                 'it records progress for nobody');
select throws_ok($$select api.submit_requirement(tests.var('other_att')::uuid, '{"note": "x"}')$$, '42501', null,
                 'it submits for nobody');
select throws_ok($$select api.switch_tier(tests.var('other')::uuid, tests.var('silver')::uuid, 'x')$$, '42501', null,
                 'it switches nobody''s tier');
select is((select count(*) from api.audit_log), 0::bigint,
          'and reads no one''s audit trail (managers read their own and their reports'')');
select tests.clear_authentication();
select isnt((select count(*) from audit.log where org_id = tests.var('org')::uuid), 0::bigint,
            'setup: the organisation has an audit trail');
select is((tests.record(tests.var('other_att')::uuid)).status::text, 'submitted', 'bob''s record is unchanged');
select is((tests.record(tests.var('att')::uuid)).status::text, 'pending', 'ann''s record is unchanged');
select is((tests.assignment(tests.var('other_osha')::uuid)).status::text, 'not_started', 'bob''s assignment is unchanged');

-- A viewer WITH an employee record still only reads: not even their own records.
select tests.authenticate_as(tests.var('vic_user')::uuid);
select throws_ok($$select api.update_requirement_status(tests.var('vic_att')::uuid, 'in_progress')$$, '42501', null,
                 'a viewer does not move their own record');
select throws_like($$select api.submit_requirement(tests.var('vic_att')::uuid, '{"note": "x"}')$$,
                   'viewers may not submit requirements%', 'nor submit it');
select throws_ok($$select api.update_assignment_status(tests.var('vic_osha')::uuid, 'in_progress')$$, '42501', null,
                 'nor record progress on their own assignment');
select throws_ok($$select api.switch_tier(tests.var('vic')::uuid, tests.var('silver')::uuid, 'x')$$, '42501', null,
                 'nor advance their own tier');
select tests.clear_authentication();
select is((tests.record(tests.var('vic_att')::uuid)).status::text, 'pending', 'vic''s record is unchanged');

-- Staff with an employee record act as employees on their own records: a manager moves and
-- submits their own and may try to advance themselves (refused only as not yet eligible).
select tests.authenticate_as(tests.var('mgr')::uuid);
select is(api.update_requirement_status(tests.var('mgr_att')::uuid, 'in_progress') ->> 'status', 'in_progress',
          'a manager moves their own record');
select is(api.submit_requirement(tests.var('mgr_att')::uuid, '{"note": "signed"}') ->> 'status', 'submitted',
          'and submits their own evidence');
select throws_ok($$select api.switch_tier(tests.var('mgr_emp')::uuid, tests.var('silver')::uuid, 'x')$$, 'PT409', null,
                 'and may advance themselves when eligible (409: not yet)');
select tests.clear_authentication();

select * from finish();
rollback;
