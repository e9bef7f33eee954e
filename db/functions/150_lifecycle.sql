-- The compliance engine, part 6: the employee lifecycle (DESIGN §5 "Assignments", "Deactivation").
-- Statement-level triggers on app.employees, so that a sync inserting or updating
-- hundreds of people at once stays set-based:
--
--   INSERT of an active employee: the assignments the rules require (app.reconcile_assignments,
--     152_reconcile.sql: new-hire modules due start date + grace, department modules due on the
--     rule's or module's date, never in the past), the initial tier (the job title's
--     role_tier_mappings entry, else the default tier) with a history row (kind initial), that
--     tier's requirements (and the lower tiers') pending, a stats row, audit employee_initialized,
--     event employee.created (every inserted employee gets the event and a stats row).
--   UPDATE to inactive/terminated: open requirement records (pending, in_progress, submitted,
--     revision_required) inactive, the tier record inactive, deactivated_at set; nothing deleted;
--     audit employee_deactivated, event employee.deactivated.
--   UPDATE back to active (a rehire): the tier record active again (or an initial tier), the
--     current tier's records pending again, the earlier employment's open assignments closed as
--     superseded (never counted again), then reconciled; audit employee_reactivated, event
--     employee.updated.
--   UPDATE of department, location, job title or start date of an active employee: reconciled.
--   UPDATE of the job title of an active employee to a title mapped to another tier: a tier switch
--     (kind role_change) and audit role_change.
--
-- Transition tables are paired old-with-new by a FULL JOIN behind an OFFSET 0 fence (then unpacked
-- as n and o): a full join is hashed or merged, never nested-looped, whatever row count the cached
-- plan assumed for the transition tables (PostgreSQL takes it when the statement is first parsed
-- in a session, often from an empty or one-row statement).

drop function if exists app.assign_initial_modules(uuid[], uuid[]);

-- The initial tier of active employees that have none: the job title's mapping, else the default.
create or replace function app.ensure_initial_tier(p_org_ids uuid[], p_employee_ids uuid[])
returns integer
language plpgsql volatile security definer
set search_path = ''
as $$
declare
    v_count integer;
    v_actor uuid := app.current_user_id();
begin
    with chosen as (
        select e.org_id, e.id as employee_id, coalesce(rm.tier_id, d.id) as tier_id,
               case when rm.tier_id is not null
                    then pg_catalog.format('initial tier of job role %s', e.job_title)
                    else 'default tier' end as reason
        from (select distinct k.org_id, k.employee_id
              from unnest(p_org_ids, p_employee_ids) as k(org_id, employee_id)) k
        join app.employees e on e.org_id = k.org_id and e.id = k.employee_id and e.status = 'active'
        left join app.role_tier_mappings rm
          on rm.org_id = e.org_id and pg_catalog.lower(rm.job_role) = pg_catalog.lower(e.job_title)
        left join app.compliance_tiers d on d.org_id = e.org_id and d.is_default
        where coalesce(rm.tier_id, d.id) is not null
          and not exists (select from app.employee_tiers et
                          where et.org_id = e.org_id and et.employee_id = e.id)
    ),
    tiers as (
        insert into app.employee_tiers (org_id, employee_id, tier_id, status)
        select c.org_id, c.employee_id, c.tier_id, 'active' from chosen c
        order by c.org_id, c.employee_id
        on conflict (org_id, employee_id) do nothing
        returning org_id, employee_id
    )
    insert into app.employee_tier_history (org_id, employee_id, from_tier_id, to_tier_id, kind,
                                           reason, changed_by)
    select c.org_id, c.employee_id, null, c.tier_id, 'initial', c.reason, v_actor
    from chosen c
    join tiers t on t.org_id = c.org_id and t.employee_id = c.employee_id;
    get diagnostics v_count = row_count;
    return v_count;
end
$$;

-- deactivated_at follows the status: set when an employee leaves active, cleared on return.
create or replace function app.employee_status_dates() returns trigger
language plpgsql
set search_path = ''
as $$
begin
    if new.status = 'active' then
        new.deactivated_at := null;
    elsif tg_op = 'INSERT' or old.status = 'active' then
        new.deactivated_at := coalesce(new.deactivated_at, pg_catalog.now());
    end if;
    return new;
end
$$;

create or replace trigger employee_status_dates_on_insert
    before insert on app.employees
    for each row when (new.status <> 'active')
    execute function app.employee_status_dates();

create or replace trigger employee_status_dates_on_update
    before update on app.employees
    for each row when (old.status is distinct from new.status)
    execute function app.employee_status_dates();

create or replace function app.employees_inserted() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
    v_n integer;
    v_all_orgs uuid[];
    v_all_emps uuid[];
    v_orgs uuid[];
    v_emps uuid[];
    v_deferred text;
begin
    select pg_catalog.array_agg(n.org_id order by n.org_id, n.id),
           pg_catalog.array_agg(n.id order by n.org_id, n.id),
           pg_catalog.array_agg(n.org_id order by n.org_id, n.id) filter (where n.status = 'active'),
           pg_catalog.array_agg(n.id order by n.org_id, n.id) filter (where n.status = 'active')
    into v_all_orgs, v_all_emps, v_orgs, v_emps
    from new_rows n;
    if v_all_orgs is null then
        return null;
    end if;

    with ev as (
        insert into app.events (org_id, type, entity, entity_id, employee_id, payload)
        select n.org_id, 'employee.created', 'employee', n.id::text, n.id,
               pg_catalog.jsonb_build_object('status', n.status, 'department_id', n.department_id,
                                             'location_id', n.location_id)
        from new_rows n
        order by n.org_id, n.id
        returning id
    )
    select pg_catalog.count(pg_catalog.pg_notify('compliance_events', ev.id::text)) into v_n from ev;

    v_deferred := app.defer_stats();
    if v_orgs is not null then
        perform app.reconcile_assignments(v_orgs, v_emps);
        perform app.ensure_initial_tier(v_orgs, v_emps);
        perform app.add_tier_requirements(v_orgs, v_emps);
    end if;
    perform app.undefer_stats(v_deferred);
    perform app.refresh_stats_unless_deferred(v_all_orgs, v_all_emps);

    -- audit employee_initialized, one row per employee in one statement (what audit.record_event
    -- writes: the acting user and role, looked up once)
    insert into audit.log (org_id, actor_user_id, actor_role, db_role, event_type, table_name,
                           entity_id, employee_id, details)
    select n.org_id, w.user_id, coalesce(w.app_role, w.db_role), w.db_role, 'employee_initialized',
           'employees', n.id::text, n.id,
           pg_catalog.jsonb_build_object(
               'assignments', (select pg_catalog.count(*) from app.training_assignments a
                               where a.org_id = n.org_id and a.employee_id = n.id),
               'tier_id', (select et.tier_id from app.employee_tiers et
                           where et.org_id = n.org_id and et.employee_id = n.id),
               'requirements', (select pg_catalog.count(*) from app.employee_requirements er
                                where er.org_id = n.org_id and er.employee_id = n.id))
    from new_rows n
    cross join (select app.current_user_id() as user_id, app.current_app_role()::text as app_role,
                       audit.current_db_role() as db_role) w
    where n.status = 'active'
    order by n.org_id, n.id;
    return null;
end
$$;
comment on function app.employees_inserted() is
    'AFTER INSERT STATEMENT trigger of employees: initialises new active employees (DESIGN §5).';

create or replace trigger employees_initialize_on_insert
    after insert on app.employees
    referencing new table as new_rows
    for each statement execute function app.employees_inserted();

create or replace function app.employees_updated() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
    v_n integer;
    v_orgs uuid[];
    v_emps uuid[];
    v_deferred text;
    v_reason text := nullif(pg_catalog.current_setting('app.deactivation_reason', true), '');
    r record;
begin
    -- employee.updated for changes worth showing (not the sync's bookkeeping columns).
    with changed as (
        select n.org_id, n.id, n.status, o.status as old_status,
               pg_catalog.array_remove(array[
                   case when n.email is distinct from o.email then 'email' end,
                   case when n.first_name is distinct from o.first_name then 'first_name' end,
                   case when n.last_name is distinct from o.last_name then 'last_name' end,
                   case when n.department_id is distinct from o.department_id then 'department_id' end,
                   case when n.location_id is distinct from o.location_id then 'location_id' end,
                   case when n.job_title is distinct from o.job_title then 'job_title' end,
                   case when n.start_date is distinct from o.start_date then 'start_date' end,
                   case when n.status is distinct from o.status then 'status' end,
                   case when n.manager_id is distinct from o.manager_id then 'manager_id' end,
                   case when n.classroom_user_id is distinct from o.classroom_user_id then 'classroom_user_id' end,
                   case when n.zenefits_id is distinct from o.zenefits_id then 'zenefits_id' end
               ], null) as fields
        from (select n, o from new_rows n full join old_rows o on o.org_id = n.org_id and o.id = n.id offset 0) p
             cross join lateral (select (p.n).*) n cross join lateral (select (p.o).*) o
    ),
    ev as (
        insert into app.events (org_id, type, entity, entity_id, employee_id, payload)
        select c.org_id,
               case when c.old_status = 'active' and c.status <> 'active' then 'employee.deactivated'
                    else 'employee.updated' end,
               'employee', c.id::text, c.id,
               pg_catalog.jsonb_build_object('status', c.status, 'changed', pg_catalog.to_jsonb(c.fields))
        from changed c
        where pg_catalog.cardinality(c.fields) > 0
        order by c.org_id, c.id
        returning id
    )
    select pg_catalog.count(pg_catalog.pg_notify('compliance_events', ev.id::text)) into v_n from ev;

    -- Deactivation.
    select pg_catalog.array_agg(n.org_id order by n.org_id, n.id), pg_catalog.array_agg(n.id order by n.org_id, n.id)
    into v_orgs, v_emps
    from (select n, o from new_rows n full join old_rows o on o.org_id = n.org_id and o.id = n.id offset 0) p
         cross join lateral (select (p.n).*) n cross join lateral (select (p.o).*) o
    where o.status = 'active' and n.status <> 'active';
    if v_orgs is not null then
        v_deferred := app.defer_stats();
        with closed as (
            update app.employee_requirements er
            set status = 'inactive'
            from unnest(v_orgs, v_emps) as k(org_id, employee_id)
            where er.org_id = k.org_id and er.employee_id = k.employee_id
              and er.status in ('pending', 'in_progress', 'submitted', 'revision_required')
            returning er.org_id, er.employee_id
        ),
        counts as (
            select c.org_id, c.employee_id, pg_catalog.count(*) as n
            from closed c group by c.org_id, c.employee_id
        )
        select pg_catalog.count(audit.record_event(n.org_id, 'employee_deactivated', n.id, 'employees', n.id::text,
            pg_catalog.jsonb_build_object('status', n.status, 'previous_status', o.status,
                                          'reason', v_reason,
                                          'requirements_inactivated', coalesce(c.n, 0))))
        into v_n
        from (select n, o from new_rows n full join old_rows o on o.org_id = n.org_id and o.id = n.id offset 0) p
        cross join lateral (select (p.n).*) n cross join lateral (select (p.o).*) o
        left join counts c on c.org_id = n.org_id and c.employee_id = n.id
        where o.status = 'active' and n.status <> 'active'
        ;
        update app.employee_tiers et
        set status = 'inactive'
        from unnest(v_orgs, v_emps) as k(org_id, employee_id)
        where et.org_id = k.org_id and et.employee_id = k.employee_id and et.status = 'active';
        perform app.undefer_stats(v_deferred);
        perform app.refresh_stats_unless_deferred(v_orgs, v_emps);
    end if;

    -- Re-activation.
    select pg_catalog.array_agg(n.org_id order by n.org_id, n.id), pg_catalog.array_agg(n.id order by n.org_id, n.id)
    into v_orgs, v_emps
    from (select n, o from new_rows n full join old_rows o on o.org_id = n.org_id and o.id = n.id offset 0) p
         cross join lateral (select (p.n).*) n cross join lateral (select (p.o).*) o
    where o.status <> 'active' and n.status = 'active';
    if v_orgs is not null then
        v_deferred := app.defer_stats();
        update app.employee_tiers et
        set status = 'active'
        from unnest(v_orgs, v_emps) as k(org_id, employee_id)
        where et.org_id = k.org_id and et.employee_id = k.employee_id and et.status = 'inactive';
        perform app.ensure_initial_tier(v_orgs, v_emps);
        perform app.add_tier_requirements(v_orgs, v_emps);
        perform app.supersede_for_rehire(v_orgs, v_emps);
        perform app.reconcile_assignments(v_orgs, v_emps);
        perform app.undefer_stats(v_deferred);
        perform app.refresh_stats_unless_deferred(v_orgs, v_emps);
        perform audit.record_event(n.org_id, 'employee_reactivated', n.id, 'employees', n.id::text,
            pg_catalog.jsonb_build_object('status', n.status, 'previous_status', o.status))
        from (select n, o from new_rows n full join old_rows o on o.org_id = n.org_id and o.id = n.id offset 0) p
             cross join lateral (select (p.n).*) n cross join lateral (select (p.o).*) o
        where o.status <> 'active' and n.status = 'active';
    end if;

    -- An HR change of an active employee (department, location, job title, start date) reconciles
    -- their assignments: the new department's modules assigned, the old one's open ones released.
    select pg_catalog.array_agg(n.org_id order by n.org_id, n.id), pg_catalog.array_agg(n.id order by n.org_id, n.id)
    into v_orgs, v_emps
    from (select n, o from new_rows n full join old_rows o on o.org_id = n.org_id and o.id = n.id offset 0) p
         cross join lateral (select (p.n).*) n cross join lateral (select (p.o).*) o
    where o.status = 'active' and n.status = 'active'
      and (n.department_id, n.location_id, n.job_title, n.start_date)
          is distinct from (o.department_id, o.location_id, o.job_title, o.start_date);
    if v_orgs is not null then
        perform app.reconcile_assignments(v_orgs, v_emps, null, 'department_changed');
    end if;

    -- A new job title mapped to another tier switches the tier (kind role_change).
    for r in
        select n.org_id, n.id, o.job_title as old_title, n.job_title as new_title,
               et.tier_id as from_tier, rm.tier_id as to_tier
        from (select n, o from new_rows n full join old_rows o on o.org_id = n.org_id and o.id = n.id offset 0) p
        cross join lateral (select (p.n).*) n cross join lateral (select (p.o).*) o
        join app.role_tier_mappings rm
          on rm.org_id = n.org_id and pg_catalog.lower(rm.job_role) = pg_catalog.lower(n.job_title)
        left join app.employee_tiers et on et.org_id = n.org_id and et.employee_id = n.id
        where n.status = 'active' and o.status = 'active'
          and pg_catalog.lower(coalesce(n.job_title, '')) <> pg_catalog.lower(coalesce(o.job_title, ''))
          and rm.tier_id is distinct from et.tier_id
        order by n.org_id, n.id
    loop
        perform app.apply_tier_switch(r.org_id, r.id, r.to_tier, 'role_change',
            pg_catalog.format('job title changed from %s to %s', coalesce(r.old_title, 'none'), r.new_title));
        perform audit.record_event(r.org_id, 'role_change', r.id, 'employees', r.id::text,
            pg_catalog.jsonb_build_object('from_job_title', r.old_title, 'to_job_title', r.new_title,
                                          'from_tier_id', r.from_tier, 'to_tier_id', r.to_tier));
    end loop;
    return null;
end
$$;
comment on function app.employees_updated() is
    'AFTER UPDATE STATEMENT trigger of employees: events, deactivation, re-activation, role-change tier switch.';

create or replace trigger employees_lifecycle_on_update
    after update on app.employees
    referencing old table as old_rows new table as new_rows
    for each statement execute function app.employees_updated();

-- PostgREST --------------------------------------------------------------------------------------

create or replace function api.deactivate_employee(employee_id uuid, reason app.reason) returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
    v_org uuid := app.current_org_id();
    v_employee_id uuid := deactivate_employee.employee_id;
    v_reason text := nullif(pg_catalog.btrim(deactivate_employee.reason), '');
    v_employee app.employees;
begin
    if not app.current_role_in('superadmin', 'hr_admin') then
        perform app.fail('42501', 'only HR admins and superadmins may deactivate employees',
            pg_catalog.format('Your role is %s.', coalesce(app.current_app_role()::text, 'none')),
            'Ask an HR admin.');
    end if;
    select * into v_employee from app.employees e where e.org_id = v_org and e.id = v_employee_id
    for update;
    if v_employee.id is null then
        perform app.fail('PT404', pg_catalog.format('employee %s not found', v_employee_id),
            pg_catalog.format('No employee with id %s in your organisation.', v_employee_id),
            'Check the id; list employees at /employees.');
    end if;
    if v_reason is null then
        perform app.fail('22023', 'a reason is required to deactivate an employee',
            pg_catalog.format('Employee %s; the reason was empty.', v_employee_id),
            'Say why (left the company, long leave, ...).');
    end if;
    if v_employee.status <> 'active' then
        perform app.fail('PT409',
            pg_catalog.format('employee %s is already %s', v_employee.full_name, v_employee.status),
            pg_catalog.format('Employee %s has status %s since %s.', v_employee_id, v_employee.status,
                              v_employee.deactivated_at),
            'Nothing to do; set status active to bring them back.');
    end if;
    perform pg_catalog.set_config('app.deactivation_reason', v_reason, true);
    update app.employees e set status = 'inactive'
    where e.org_id = v_org and e.id = v_employee_id
    returning * into v_employee;
    perform pg_catalog.set_config('app.deactivation_reason', '', true);
    return pg_catalog.jsonb_build_object(
        'employeeId', v_employee.id, 'status', v_employee.status,
        'deactivatedAt', v_employee.deactivated_at, 'reason', v_reason);
end
$$;
comment on function api.deactivate_employee(uuid, app.reason) is
$$Deactivates an employee (status inactive), with a reason.

HR admins and superadmins only (403). Open requirement records become inactive, the tier record
inactive, open assignments stop counting in compliance rates; nothing is deleted, and the audit
trail records employee_deactivated with the reason. 409 when already inactive or terminated, 404
for an unknown employee, 400 without a reason. Setting status back to active re-activates.$$;
grant execute on function api.deactivate_employee(uuid, app.reason) to authenticated;
