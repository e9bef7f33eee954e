-- Users and roles (DESIGN §6 "manage users and roles"): superadmins invite, change roles,
-- deactivate and reactivate; nobody changes their own role; the last active superadmin stays;
-- every change is audited, evented and notified; other organisations' users are out of reach.
begin;
select plan(36);

do $$
begin
    perform tests.engine_org('users');
    perform tests.set_var('org_b', tests.create_org('users-b')::text);
    perform tests.set_var('b_emp', tests.create_employee(tests.var('org_b')::uuid, 'b@users-b.example')::text);
    perform tests.set_var('b_user', tests.create_user(tests.var('org_b')::uuid, 'viewer', 'v@users-b.example')::text);
    perform tests.set_var('newbie_emp', tests.create_employee(tests.var('org')::uuid, 'newbie@users.example')::text);
end $$;

-- Only superadmins.
select tests.authenticate_as(tests.var('hr')::uuid);
select throws_ok($$select api.invite_user('x@users.example', 'viewer')$$, '42501', 'only superadmins may invite users',
                 'an HR admin may not invite');
select throws_ok($$select api.change_user_role(tests.var('viewer')::uuid, 'hr_admin')$$, '42501', null,
                 'an HR admin may not change roles');
select throws_ok($$select api.deactivate_user(tests.var('viewer')::uuid, 'left')$$, '42501', null,
                 'an HR admin may not deactivate users');
select tests.authenticate_as(tests.var('mgr')::uuid);
select throws_ok($$select api.reactivate_user(tests.var('viewer')::uuid)$$, '42501', null,
                 'a manager may not reactivate users');

-- Invitations and their refusals.
select tests.authenticate_as(tests.var('superadmin')::uuid);
select throws_ok($$select api.invite_user('x@users.example', 'owner')$$, '22023', '''owner'' is not an application role',
                 'an unknown role is 400');
select throws_ok($$select api.invite_user('not an address', 'viewer')$$, '22023', null, 'a malformed address is 400');
select throws_ok($$select api.invite_user('x@users.example', 'employee')$$, '22023',
                 'the role employee needs an employee record', 'an employee login needs an employee');
select throws_ok($$select api.invite_user('hr@users.example', 'viewer')$$, '23505', null,
                 'an address that already has a login is 409');
select throws_ok($$select api.invite_user('x@users.example', 'employee', tests.var('emp')::uuid)$$, '23505', null,
                 'an employee who already has a login is 409');
select throws_ok($$select api.invite_user('x@users.example', 'employee', tests.var('b_emp')::uuid)$$, 'PT404', null,
                 'another organisation''s employee is 404');
select is((select count(*)::int from app.app_users where email = 'x@users.example'), 0, 'refusals wrote nothing');

select is(api.invite_user(' Newbie@Users.example ', 'employee', tests.var('newbie_emp')::uuid) ->> 'role', 'employee',
          'a superadmin invites an employee');
select tests.set_var('newbie', (select id::text from app.app_users where email = 'newbie@users.example'));
select is(api.invite_user('auditor@users.example', 'viewer', display_name => 'The Auditor') ->> 'active', 'true',
          'and a viewer without an employee record');
select tests.clear_authentication();
select is((select details ->> 'app_role' from audit.log where entity_id = tests.var('newbie') and event_type = 'user_invited'),
          'employee', 'audited user_invited');
select is(tests.notification_count(tests.var('newbie')::uuid, 'user.invited'), 1, 'the new user is notified');
select is(tests.event_count(tests.var('newbie_emp')::uuid, 'user.invited'), 1, 'evented user.invited');

-- Roles.
select tests.authenticate_as(tests.var('superadmin')::uuid);
select is(api.change_user_role(tests.var('newbie')::uuid, 'manager') ->> 'role', 'manager', 'a superadmin changes a role');
select throws_ok($$select api.change_user_role(tests.var('newbie')::uuid, 'manager')$$, 'PT409', null,
                 'the same role again is 409');
select throws_ok($$select api.change_user_role(tests.var('superadmin')::uuid, 'viewer')$$, '42501',
                 'you cannot change your own role', 'nobody changes their own role');
select throws_ok($$select api.change_user_role(tests.var('b_user')::uuid, 'hr_admin')$$, 'PT404', null,
                 'another organisation''s user is 404');
select throws_ok($$select api.change_user_role(tests.var('viewer')::uuid, 'employee')$$, '22023', null,
                 'the employee role needs an employee record');
select throws_ok($$select api.deactivate_user(tests.var('superadmin')::uuid, 'leaving')$$, 'PT409', null,
                 'the last active superadmin cannot be deactivated');
select tests.clear_authentication();
select is((select details ->> 'to_role' from audit.log where entity_id = tests.var('newbie') and event_type = 'role_changed'),
          'manager', 'audited role_changed');
select is(tests.notification_count(tests.var('newbie')::uuid, 'user.role_changed'), 1, 'the user is told');
select is(tests.event_count(tests.var('newbie_emp')::uuid, 'user.role_changed'), 1, 'evented user.role_changed');

-- A second superadmin may demote the first; the last one cannot demote themselves through PATCH either.
select tests.authenticate_as(tests.var('superadmin')::uuid);
select lives_ok($$select api.change_user_role(tests.var('hr')::uuid, 'superadmin')$$, 'hr becomes superadmin');
select tests.authenticate_as(tests.var('hr')::uuid);
select is(api.change_user_role(tests.var('superadmin')::uuid, 'viewer') ->> 'role', 'viewer',
          'the new superadmin demotes the first');
select tests.authenticate_as(tests.var('hr')::uuid, 'PATCH', '/app_users');
select throws_ok($$update api.app_users set app_role = 'hr_admin' where id = tests.var('hr')::uuid$$, '42501', null,
                 'PATCH /app_users cannot change one''s own role either');
select throws_ok($$update api.app_users set active = false where id = tests.var('hr')::uuid$$, 'PT409', null,
                 'nor deactivate the last active superadmin');

-- Deactivation and reactivation.
select tests.authenticate_as(tests.var('hr')::uuid);
select throws_ok($$select api.deactivate_user(tests.var('newbie')::uuid, '  ')$$, '22023', null, 'a reason is required');
select is(api.deactivate_user(tests.var('newbie')::uuid, 'account shared') ->> 'active', 'false',
          'a superadmin deactivates a user');
select throws_ok($$select api.deactivate_user(tests.var('newbie')::uuid, 'again')$$, 'PT409', null,
                 'deactivating an inactive user is 409');
select tests.clear_authentication();
select throws_ok($$select tests.authenticate_as(tests.var('newbie')::uuid)$$, 'PT403', null,
                 'the deactivated user''s next request is refused');
select tests.clear_authentication();
select is((select details ->> 'reason' from audit.log where entity_id = tests.var('newbie') and event_type = 'user_deactivated'),
          'account shared', 'audited user_deactivated with the reason');
select tests.authenticate_as(tests.var('hr')::uuid);
select is(api.reactivate_user(tests.var('newbie')::uuid) ->> 'role', 'manager', 'reactivation keeps the role');
select tests.clear_authentication();
update app.employees set status = 'terminated' where id = tests.var('newbie_emp')::uuid;
select tests.authenticate_as(tests.var('hr')::uuid);
select throws_ok($$select api.reactivate_user(tests.var('newbie')::uuid)$$, 'PT409', null,
                 'a terminated employee''s login cannot be reactivated');
select tests.clear_authentication();

select * from finish();
rollback;
