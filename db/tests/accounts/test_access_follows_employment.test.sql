-- Access follows employment (DESIGN §5 "Deactivation", HIPAA §164.308(a)(3)(ii)(C)): an employee
-- leaving active, by any writer, deactivates their login in the same transaction; reviews and
-- escalations go to the next active manager up the chain, else the HR admins; coming back
-- restores only an employee login and tells the superadmins.
begin;
select plan(22);

do $$
declare
    v_top_emp uuid;
begin
    perform tests.engine_org('access');
    -- boss (mgr, a manager) reports to top (another manager): ann -> boss -> top.
    v_top_emp := tests.create_employee(tests.var('org')::uuid, 'top@access.example', null, 'Director');
    perform tests.set_var('top_emp', v_top_emp::text);
    perform tests.set_var('top', tests.create_user(tests.var('org')::uuid, 'manager', 'top@access.example', v_top_emp)::text);
    update app.employees set manager_id = v_top_emp where id = tests.var('mgr_emp')::uuid;
end $$;

select is(app.acting_manager_user_id(tests.var('org')::uuid, tests.var('emp')::uuid), tests.var('mgr')::uuid,
          'while boss is employed, ann''s acting manager is boss');

-- A sync-style write terminates boss (no API call, no signed-in user).
update app.employees set status = 'terminated' where id = tests.var('mgr_emp')::uuid;

select is((select active from app.app_users where id = tests.var('mgr')::uuid), false,
          'the terminated manager''s login is deactivated in the same transaction');
select is((select details ->> 'reason' from audit.log
           where entity_id = tests.var('mgr') and event_type = 'user_deactivated'),
          'employment ended', 'audited user_deactivated, employment ended');
select is((select count(*)::int from app.events
           where entity = 'app_user' and entity_id = tests.var('mgr') and type = 'user.deactivated'),
          1, 'event user.deactivated (it wakes the WebSocket relay, which closes the user''s sockets)');
select throws_ok($$select tests.authenticate_as(tests.var('mgr')::uuid)$$, 'PT403', null,
                 'the terminated manager''s next request is refused');
select tests.clear_authentication();

select is(app.acting_manager_user_id(tests.var('org')::uuid, tests.var('emp')::uuid), tests.var('top')::uuid,
          'ann''s acting manager is now top, the next active manager up the chain');
select is(app.acting_manager_user_id(tests.var('org')::uuid, tests.var('other')::uuid), null::uuid,
          'bob has no manager: no acting manager');

-- Top may now review ann's submissions, as her acting manager.
select tests.authenticate_as(tests.var('top')::uuid, 'GET', '/employees');
select ok(app.is_direct_report(tests.var('emp')::uuid), 'top acts as ann''s manager');
select ok(not app.is_direct_report(tests.var('other')::uuid), '... and not as bob''s');
select is((select count(*)::int from api.employees where id = tests.var('emp')::uuid), 1,
          'top reads ann''s record');
select tests.clear_authentication();

select tests.authenticate_as(tests.var('emp_user')::uuid);
select lives_ok($$select api.submit_requirement(tests.record_of(tests.var('emp')::uuid, tests.var('r_attest')::uuid),
                                                '{"url": "https://evidence.example/ann.pdf"}')$$,
                'ann submits her attestation');
select tests.clear_authentication();
select is(tests.notification_count(tests.var('top')::uuid, 'requirement.submitted'), 1,
          'the review request goes to top');
select is(tests.notification_count(tests.var('mgr')::uuid, 'requirement.submitted'), 0,
          '... not to the terminated manager');
select tests.authenticate_as(tests.var('top')::uuid);
select is(api.review_requirement(tests.record_of(tests.var('emp')::uuid, tests.var('r_attest')::uuid),
                                 'approved', 'fine') ->> 'status', 'approved',
          'top reviews ann''s submission');
select tests.clear_authentication();

-- Escalations: ann's to top, bob's (no manager) to the HR admins, none to the terminated manager.
select ok((app.run_daily_jobs(tests.var('org')::uuid, tests.today() + 120) ->> 'escalated')::int > 0, 'the daily job escalates');
select ok(tests.notification_count(tests.var('top')::uuid, 'assignment.escalated') > 0,
          'ann''s overdue training is escalated to top');
select ok((select count(*) from app.notifications n where n.recipient_id = tests.var('hr')::uuid
           and n.type = 'assignment.escalated' and n.employee_id = tests.var('other')::uuid) > 0,
          'bob''s is escalated to the HR admins');
select is(tests.notification_count(tests.var('mgr')::uuid, 'assignment.escalated'), 0,
          'nothing is escalated to the terminated manager');

-- Rehired: an employee login only, and the superadmins are told.
update app.employees set status = 'active' where id = tests.var('mgr_emp')::uuid;
select is((select array[active::text, app_role::text] from app.app_users where id = tests.var('mgr')::uuid),
          array['true', 'employee'], 'rehire restores an employee login, not the manager role');
select is(tests.notification_count(tests.var('superadmin')::uuid, 'user.reactivated'), 1,
          'the superadmins are told');
select is((select details ->> 'app_role' from audit.log
           where entity_id = tests.var('mgr') and event_type = 'user_reactivated'),
          'employee', 'audited user_reactivated');
select is(app.acting_manager_user_id(tests.var('org')::uuid, tests.var('emp')::uuid), tests.var('mgr')::uuid,
          'boss is ann''s acting manager again (active, with an active login)');

select * from finish();
rollback;
