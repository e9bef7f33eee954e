-- Accounts (DESIGN §6, §15): who can sign in, and access following employment.
--
-- * Access follows employment: when an employee leaves active (any writer: HR, the API, a sync),
--   their login is deactivated in the same transaction; the WebSocket relay closes the user's
--   connections on the next round (the user.deactivated event wakes it). When the employee comes
--   back, the login is restored as a plain `employee` login (never an elevated role by itself) and
--   the organisation's superadmins are told.
-- * Guards of app_users, whoever writes (the api functions below or PATCH /app_users): nobody
--   changes their own role; an organisation keeps at least one active superadmin (except when
--   employment ends: access then ends even for the last one, and an operator adds another with
--   app.create_organization or SQL).
-- * Every change of a login's role or activity is audited (role_changed, user_deactivated,
--   user_reactivated), evented (user.role_changed, user.deactivated, user.reactivated) and
--   notified to the user by the statement trigger of app_users, whoever writes; an invitation
--   (api.invite_user) is audited user_invited, evented and notified user.invited.
-- * The superadmins' API: api.invite_user, api.change_user_role, api.deactivate_user,
--   api.reactivate_user.

-- Access follows employment -------------------------------------------------------------------

create or replace function app.employees_access_follows_employment() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
    r record;
begin
    -- Left active: the login ends with the employment.
    perform pg_catalog.set_config('app.user_change_reason', 'employment ended', true);
    update app.app_users u
    set active = false
    from new_rows n
    join old_rows o on o.org_id = n.org_id and o.id = n.id
    where o.status = 'active' and n.status <> 'active'
      and u.org_id = n.org_id and u.employee_id = n.id and u.active;

    -- Back to active: a plain employee login, and the superadmins decide about more.
    perform pg_catalog.set_config('app.user_change_reason', 'employment resumed', true);
    for r in
        with back as (
            select u.org_id, u.id, u.app_role as previous_role, n.full_name
            from new_rows n
            join old_rows o on o.org_id = n.org_id and o.id = n.id
            join app.app_users u on u.org_id = n.org_id and u.employee_id = n.id and not u.active
            where o.status <> 'active' and n.status = 'active'
            order by u.org_id, u.id
            for update of u
        ),
        restored as (
            update app.app_users u
            set active = true, app_role = 'employee'
            from back b
            where u.org_id = b.org_id and u.id = b.id
            returning u.org_id, u.id, u.employee_id, u.email, b.previous_role, b.full_name
        )
        select * from restored order by org_id, id
    loop
        perform app.notify_user(r.org_id, s.id, 'user.reactivated',
            pg_catalog.format('%s can sign in again, as employee', r.full_name),
            pg_catalog.format('%s is employed again, so the login %s is active again with the role '
                              'employee (it was %s). Give it another role with /rpc/change_user_role '
                              'if it needs one.', r.full_name, r.email, r.previous_role),
            pg_catalog.format('/users/%s', r.id), 'medium', r.employee_id,
            pg_catalog.format('user.reactivated:%s:%s', r.id, pg_catalog.txid_current()))
        from app.app_users s
        where s.org_id = r.org_id and s.app_role = 'superadmin' and s.active;
    end loop;
    perform pg_catalog.set_config('app.user_change_reason', '', true);
    return null;
end
$$;
comment on function app.employees_access_follows_employment() is
    'AFTER UPDATE STATEMENT trigger of employees: a login ends with the employment and comes back as employee.';

create or replace trigger employees_access_follows_employment
    after update on app.employees
    referencing old table as old_rows new table as new_rows
    for each statement execute function app.employees_access_follows_employment();

-- Guards of app_users -------------------------------------------------------------------------

create or replace function app.app_users_guard() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
    if new.app_role is distinct from old.app_role and old.id = app.current_user_id() then
        perform app.fail('42501', 'you cannot change your own role',
            pg_catalog.format('You (%s) hold the role %s and asked for %s.', old.email, old.app_role,
                              new.app_role),
            'Ask another superadmin of your organisation.');
    end if;
    -- Employment ending (the update comes from the employees trigger) ends access regardless.
    if old.app_role = 'superadmin' and old.active
       and (new.app_role is distinct from 'superadmin' or not new.active)
       and pg_catalog.pg_trigger_depth() = 1 then
        -- one change of an organisation's superadmins at a time, so two cannot remove each other
        perform from app.organizations o where o.id = old.org_id for no key update;
        if not exists (select from app.app_users s
                       where s.org_id = old.org_id and s.id <> old.id
                         and s.app_role = 'superadmin' and s.active) then
            perform app.fail('PT409',
                pg_catalog.format('%s is the last active superadmin of the organisation', old.email),
                pg_catalog.format('Demoting or deactivating %s would leave the organisation without '
                                  'an active superadmin.', old.email),
                'Make another user superadmin first (/rpc/change_user_role).');
        end if;
    end if;
    return new;
end
$$;
comment on function app.app_users_guard() is
    'BEFORE UPDATE trigger of app_users: nobody changes their own role; the last active superadmin stays.';

create or replace trigger app_users_guard
    before update of app_role, active on app.app_users
    for each row execute function app.app_users_guard();

-- Audit, events and notifications of every change of a login ------------------------------------


create or replace function app.app_users_updated() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
    r record;
    v_reason text := nullif(pg_catalog.current_setting('app.user_change_reason', true), '');
begin
    for r in
        select n.org_id, n.id, n.email, n.employee_id, n.active, o.active as was_active,
               n.app_role, o.app_role as old_role
        from new_rows n join old_rows o on o.org_id = n.org_id and o.id = n.id
        where n.active is distinct from o.active or n.app_role is distinct from o.app_role
        order by n.org_id, n.id
    loop
        if r.app_role is distinct from r.old_role then
            perform audit.record_event(r.org_id, 'role_changed', r.employee_id, 'app_users', r.id::text,
                pg_catalog.jsonb_build_object('email', r.email, 'from_role', r.old_role,
                                              'to_role', r.app_role, 'reason', v_reason));
            perform app.emit_event(r.org_id, 'user.role_changed', 'app_user', r.id::text, r.employee_id,
                pg_catalog.jsonb_build_object('from_role', r.old_role, 'to_role', r.app_role));
            perform app.notify_user(r.org_id, r.id, 'user.role_changed',
                pg_catalog.format('Your role is now %s', r.app_role),
                pg_catalog.format('Your role changed from %s to %s.', r.old_role, r.app_role),
                '/', 'medium', r.employee_id);
        end if;
        if r.was_active and not r.active then
            perform audit.record_event(r.org_id, 'user_deactivated', r.employee_id, 'app_users', r.id::text,
                pg_catalog.jsonb_build_object('email', r.email, 'app_role', r.old_role,
                                              'reason', v_reason));
            perform app.emit_event(r.org_id, 'user.deactivated', 'app_user', r.id::text, r.employee_id,
                pg_catalog.jsonb_build_object('reason', v_reason));
            perform app.notify_user(r.org_id, r.id, 'user.deactivated', 'Your login was deactivated',
                pg_catalog.format('You can no longer sign in (%s).', coalesce(v_reason, 'no reason given')),
                null, 'high', r.employee_id);
        elsif r.active and not r.was_active then
            perform audit.record_event(r.org_id, 'user_reactivated', r.employee_id, 'app_users', r.id::text,
                pg_catalog.jsonb_build_object('email', r.email, 'app_role', r.app_role,
                                              'reason', v_reason));
            perform app.emit_event(r.org_id, 'user.reactivated', 'app_user', r.id::text, r.employee_id,
                pg_catalog.jsonb_build_object('app_role', r.app_role));
            perform app.notify_user(r.org_id, r.id, 'user.reactivated', 'You can sign in again',
                pg_catalog.format('Your login is active again, with the role %s.', r.app_role),
                '/', 'medium', r.employee_id);
        end if;
    end loop;
    return null;
end
$$;
comment on function app.app_users_updated() is
    'AFTER UPDATE STATEMENT trigger of app_users: audit, events and notifications of role and activity changes.';

create or replace trigger app_users_updated
    after update on app.app_users
    referencing old table as old_rows new table as new_rows
    for each statement execute function app.app_users_updated();

-- The superadmins' API -------------------------------------------------------------------------

-- The application role named by a text argument, or a 22023 naming the accepted ones.
create or replace function app.app_role_of(p_role text) returns app.app_role
language plpgsql stable
set search_path = ''
as $$
declare
    v_text text := pg_catalog.lower(pg_catalog.btrim(p_role));
begin
    if v_text is null or not v_text = any (pg_catalog.enum_range(null::app.app_role)::text[]) then
        perform app.fail('22023',
            pg_catalog.format('%s is not an application role', coalesce(pg_catalog.quote_literal(p_role), 'null')),
            pg_catalog.format('The role was %s.', coalesce(pg_catalog.quote_literal(p_role), 'null')),
            'Use one of superadmin, hr_admin, manager, employee, viewer.');
    end if;
    return v_text::app.app_role;
end
$$;

create or replace function app.require_superadmin(p_action text) returns void
language plpgsql volatile
set search_path = ''
as $$
begin
    if not app.current_role_in('superadmin') then
        perform app.fail('42501', pg_catalog.format('only superadmins may %s', p_action),
            pg_catalog.format('Your role is %s.', coalesce(app.current_app_role()::text, 'none')),
            'Ask a superadmin of your organisation.');
    end if;
end
$$;

-- A user of the caller's organisation, locked for the change, or 404.
create or replace function app.user_for_change(p_user_id uuid) returns app.app_users
language plpgsql volatile security definer
set search_path = ''
as $$
declare
    v_user app.app_users;
begin
    select * into v_user from app.app_users u
    where u.org_id = app.current_org_id() and u.id = p_user_id
    for update;
    if v_user.id is null then
        perform app.fail('PT404', pg_catalog.format('user %s not found', coalesce(p_user_id::text, 'null')),
            pg_catalog.format('No user has the id %s in your organisation.', coalesce(p_user_id::text, 'null')),
            'List users at /app_users.');
    end if;
    return v_user;
end
$$;

create or replace function app.user_json(p_user app.app_users) returns jsonb
language sql immutable
set search_path = ''
as $$
    select pg_catalog.jsonb_build_object('id', p_user.id, 'email', p_user.email,
        'displayName', p_user.display_name, 'role', p_user.app_role,
        'employeeId', p_user.employee_id, 'active', p_user.active)
$$;


create or replace function api.invite_user(email text, role text, employee_id uuid default null,
                                           display_name text default null) returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
#variable_conflict use_variable
declare
    v_org uuid := app.current_org_id();
    v_email text := pg_catalog.lower(pg_catalog.btrim(invite_user.email));
    v_role app.app_role;
    v_employee app.employees;
    v_user app.app_users;
begin
    perform app.require_superadmin('invite users');
    v_role := app.app_role_of(invite_user.role);
    if v_email is null or v_email !~ '^[^@\s]+@[^@\s]+\.[^@\s]+$' then
        perform app.fail('22023',
            pg_catalog.format('%s is not an e-mail address', coalesce(pg_catalog.quote_literal(invite_user.email), 'null')),
            'The invitation needs the address the person signs in with.', 'Give an address like name@example.org.');
    end if;
    if invite_user.employee_id is not null then
        select * into v_employee from app.employees e
        where e.org_id = v_org and e.id = invite_user.employee_id;
        if v_employee.id is null then
            perform app.fail('PT404', pg_catalog.format('employee %s not found', invite_user.employee_id),
                pg_catalog.format('No employee with id %s in your organisation.', invite_user.employee_id),
                'Check the id; list employees at /employees.');
        end if;
        if v_employee.status <> 'active' then
            perform app.fail('PT409',
                pg_catalog.format('employee %s is %s', v_employee.full_name, v_employee.status),
                'A login follows employment: an inactive or terminated employee cannot sign in.',
                'Reactivate the employee first, or invite without an employee.');
        end if;
        if exists (select from app.app_users u where u.org_id = v_org and u.employee_id = v_employee.id) then
            perform app.fail('23505',
                pg_catalog.format('employee %s already has a login', v_employee.full_name),
                pg_catalog.format('Employee %s is linked to the user %s.', v_employee.id,
                                  (select u.email from app.app_users u
                                   where u.org_id = v_org and u.employee_id = v_employee.id)),
                'Change that user''s role with /rpc/change_user_role instead.');
        end if;
    elsif v_role in ('employee', 'manager') then
        perform app.fail('22023', pg_catalog.format('the role %s needs an employee record', v_role),
            pg_catalog.format('%s was invited as %s without employee_id.', v_email, v_role),
            'Pass the employee_id of the person''s employee record.');
    end if;
    if exists (select from app.app_users u where u.org_id = v_org and pg_catalog.lower(u.email) = v_email) then
        perform app.fail('23505', pg_catalog.format('%s already has a login', v_email),
            pg_catalog.format('A user with the e-mail %s exists in your organisation.', v_email),
            'Change that user''s role or reactivate them instead.');
    end if;
    insert into app.app_users (org_id, email, display_name, app_role, employee_id)
    values (v_org, v_email,
            coalesce(nullif(pg_catalog.btrim(invite_user.display_name), ''), v_employee.full_name, v_email),
            v_role, v_employee.id)
    returning * into v_user;
    perform audit.record_event(v_org, 'user_invited', v_user.employee_id, 'app_users', v_user.id::text,
        pg_catalog.jsonb_build_object('email', v_user.email, 'app_role', v_user.app_role,
                                      'employee_id', v_user.employee_id));
    perform app.emit_event(v_org, 'user.invited', 'app_user', v_user.id::text, v_user.employee_id,
        pg_catalog.jsonb_build_object('app_role', v_user.app_role));
    perform app.notify_user(v_org, v_user.id, 'user.invited',
        pg_catalog.format('Welcome: you can sign in as %s', v_user.app_role),
        pg_catalog.format('You were invited to your organisation''s compliance training manager '
                          'with the role %s. Sign in with %s.', v_user.app_role, v_user.email),
        '/', 'medium', v_user.employee_id, pg_catalog.format('user.invited:%s', v_user.id));
    return app.user_json(v_user);
end
$$;
comment on function api.invite_user(text, text, uuid, text) is
$$Invites a user of your organisation: e-mail, application role, the linked employee record (needed for employee and manager), display name.

Superadmins only (403). 400 for an unknown role, a malformed address, or an employee or manager
without employee_id; 404 for an employee not in your organisation; 409 when the employee is not
active or the address or the employee already has a login. Audited (user_invited), evented and
notified (user.invited). Returns the user.$$;
grant execute on function api.invite_user(text, text, uuid, text) to authenticated;

create or replace function api.change_user_role(user_id uuid, role text) returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
#variable_conflict use_variable
declare
    v_role app.app_role;
    v_user app.app_users;
begin
    perform app.require_superadmin('change roles');
    v_role := app.app_role_of(change_user_role.role);
    v_user := app.user_for_change(change_user_role.user_id);
    if v_user.app_role = v_role then
        perform app.fail('PT409', pg_catalog.format('%s already has the role %s', v_user.email, v_role),
            pg_catalog.format('User %s.', v_user.id), 'Nothing to do.');
    end if;
    if v_role in ('employee', 'manager') and v_user.employee_id is null then
        perform app.fail('22023', pg_catalog.format('the role %s needs an employee record', v_role),
            pg_catalog.format('%s has no linked employee.', v_user.email),
            'Give the user a linked employee first (PATCH /app_users employee_id).');
    end if;
    update app.app_users u set app_role = v_role
    where u.org_id = v_user.org_id and u.id = v_user.id
    returning * into v_user;
    return app.user_json(v_user);
end
$$;
comment on function api.change_user_role(uuid, text) is
$$Changes a user's application role (superadmin, hr_admin, manager, employee, viewer).

Superadmins only (403); nobody changes their own role (403). 409 when it would leave the
organisation without an active superadmin, or the user already has that role; 404 for a user not
in your organisation; 400 for an unknown role. Takes effect on the user's next request. Audited
(role_changed), evented and notified (user.role_changed). Returns the user.$$;
grant execute on function api.change_user_role(uuid, text) to authenticated;

create or replace function api.deactivate_user(user_id uuid, reason text) returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
#variable_conflict use_variable
declare
    v_reason text := nullif(pg_catalog.btrim(deactivate_user.reason), '');
    v_user app.app_users;
begin
    perform app.require_superadmin('deactivate users');
    v_user := app.user_for_change(deactivate_user.user_id);
    if v_reason is null then
        perform app.fail('22023', 'a reason is required to deactivate a user',
            pg_catalog.format('User %s; the reason was empty.', v_user.email),
            'Say why (left the company, account compromised, ...).');
    end if;
    if not v_user.active then
        perform app.fail('PT409', pg_catalog.format('%s is already inactive', v_user.email),
            pg_catalog.format('User %s.', v_user.id), 'Nothing to do; /rpc/reactivate_user brings it back.');
    end if;
    perform pg_catalog.set_config('app.user_change_reason', v_reason, true);
    update app.app_users u set active = false
    where u.org_id = v_user.org_id and u.id = v_user.id
    returning * into v_user;
    perform pg_catalog.set_config('app.user_change_reason', '', true);
    return app.user_json(v_user);
end
$$;
comment on function api.deactivate_user(uuid, text) is
$$Deactivates a login, with a reason: the user's next request is refused and their WebSockets closed.

Superadmins only (403). 409 for the organisation's last active superadmin or a user already
inactive; 404 for a user not in your organisation; 400 without a reason. The employee record is
untouched. Audited (user_deactivated), evented and notified (user.deactivated). Returns the user.$$;
grant execute on function api.deactivate_user(uuid, text) to authenticated;

create or replace function api.reactivate_user(user_id uuid) returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
#variable_conflict use_variable
declare
    v_user app.app_users;
    v_status app.employee_status;
begin
    perform app.require_superadmin('reactivate users');
    v_user := app.user_for_change(reactivate_user.user_id);
    if v_user.active then
        perform app.fail('PT409', pg_catalog.format('%s is already active', v_user.email),
            pg_catalog.format('User %s.', v_user.id), 'Nothing to do.');
    end if;
    select e.status into v_status from app.employees e
    where e.org_id = v_user.org_id and e.id = v_user.employee_id;
    if v_status is not null and v_status <> 'active' then
        perform app.fail('PT409',
            pg_catalog.format('%s cannot sign in: their employee record is %s', v_user.email, v_status),
            'Access follows employment.', 'Reactivate the employee first (status active).');
    end if;
    update app.app_users u set active = true
    where u.org_id = v_user.org_id and u.id = v_user.id
    returning * into v_user;
    return app.user_json(v_user);
end
$$;
comment on function api.reactivate_user(uuid) is
$$Reactivates a login with its current role.

Superadmins only (403). 409 when the user is already active or their employee record is inactive
or terminated (access follows employment); 404 for a user not in your organisation. Audited
(user_reactivated), evented and notified (user.reactivated). Returns the user.$$;
grant execute on function api.reactivate_user(uuid) to authenticated;
