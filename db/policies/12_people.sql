-- Employees and the users who log in (DESIGN §6).
-- Employees: superadmins, HR admins, managers and viewers read the organisation; an employee
-- reads only their own record. HR admins and superadmins create and edit (deactivation is a status
-- change, nothing is deleted).
drop policy if exists "members read employees of their org" on app.employees;
create policy "members read employees of their org" on app.employees
    for select to authenticated
    using (org_id = (select app.current_org_id())
           and ((select app.current_app_role()) <> 'employee'
                or id = (select app.current_employee_id())));

drop policy if exists "hr admins insert employees in their org" on app.employees;
create policy "hr admins insert employees in their org" on app.employees
    for insert to authenticated
    with check (org_id = (select app.current_org_id())
                and (select app.current_role_in('superadmin', 'hr_admin')));

drop policy if exists "hr admins update employees in their org" on app.employees;
create policy "hr admins update employees in their org" on app.employees
    for update to authenticated
    using (org_id = (select app.current_org_id())
           and (select app.current_role_in('superadmin', 'hr_admin')))
    with check (org_id = (select app.current_org_id()));

grant select on app.employees to authenticated;
grant insert (org_id, id, email, first_name, last_name, department_id, location_id, job_title,
              start_date, status, manager_id, classroom_user_id, zenefits_id),
      update (email, first_name, last_name, department_id, location_id, job_title, start_date,
              status, manager_id, classroom_user_id, zenefits_id)
    on app.employees to authenticated;

create view api.employees with (security_invoker = true) as
    select org_id, id, zenefits_id, email, first_name, last_name, full_name, department_id,
           location_id, job_title, start_date, status, manager_id, classroom_user_id,
           last_synced_at, sync_status, sync_errors, deactivated_at, created_at, updated_at
    from app.employees;
alter view api.employees alter column org_id set default app.current_org_id();
comment on view api.employees is
$$Employees of your organisation, from the HR roster (Zenefits) or entered by HR.

Employees see only their own record. HR admins and superadmins create and edit employees; a new
active employee gets their trainings, tier and requirements at once. Setting status to inactive
or terminated deactivates (see /rpc/deactivate_employee); nothing is deleted.$$;

-- Users: everyone reads their own login; superadmins and HR admins read all of the organisation's;
-- only superadmins create users and change roles (DESIGN §6 "manage users and roles").
drop policy if exists "users read themselves and admins read their org" on app.app_users;
create policy "users read themselves and admins read their org" on app.app_users
    for select to authenticated
    using (org_id = (select app.current_org_id())
           and (id = (select app.current_user_id())
                or (select app.current_role_in('superadmin', 'hr_admin'))));

drop policy if exists "superadmins insert users in their org" on app.app_users;
create policy "superadmins insert users in their org" on app.app_users
    for insert to authenticated
    with check (org_id = (select app.current_org_id())
                and (select app.current_role_in('superadmin')));

drop policy if exists "superadmins update users in their org" on app.app_users;
create policy "superadmins update users in their org" on app.app_users
    for update to authenticated
    using (org_id = (select app.current_org_id()) and (select app.current_role_in('superadmin')))
    with check (org_id = (select app.current_org_id()));

grant select on app.app_users to authenticated;
grant insert (org_id, id, email, display_name, app_role, employee_id, active),
      update (email, display_name, app_role, employee_id, active)
    on app.app_users to authenticated;

create view api.app_users with (security_invoker = true) as
    select org_id, id, email, display_name, app_role, employee_id, active, created_at, updated_at
    from app.app_users;
alter view api.app_users alter column org_id set default app.current_org_id();
comment on view api.app_users is
$$Who can sign in, with which application role (superadmin, hr_admin, manager, employee, viewer).

Everyone reads their own row; superadmins and HR admins read the organisation's; only superadmins
add users, change roles or deactivate (active = false takes effect on the next request).$$;

-- Identity links: a user reads their own; superadmins read their organisation's. Only
-- app.pre_request() writes them (first sign-in), so no role may insert, update or delete.
drop policy if exists "users read their own identity links and superadmins their org's" on app.identity_links;
create policy "users read their own identity links and superadmins their org's" on app.identity_links
    for select to authenticated
    using (org_id = (select app.current_org_id())
           and (user_id = (select app.current_user_id())
                or (select app.current_role_in('superadmin'))));
grant select on app.identity_links to authenticated;
