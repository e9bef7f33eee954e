-- Compliance figures, part 1: the definition of the compliance rate, and the live counters that
-- make it cheap (DESIGN §5 "Compliance rate"; docs/analytics.md).
--
-- THE DEFINITION, in one place:
--   * which assignments count: required assignments (is_required) of ACTIVE employees
--     -> app.counts_toward_compliance(is_required, employee status);
--   * the rate: completed ÷ (counted - exempted) × 100, rounded to 2 decimals, 100.00 when
--     nothing is left to complete -> app.compliance_rate_of(completed, counted, exempted), in
--     100_engine_base.sql (the employee stats use it too).
--     Exempted assignments are taken out of the denominator, never counted as not completed.
-- Every figure (api views, api.compliance_rate, the dashboard, snapshots, analytics views) is
-- built from these two functions, over app.compliance_counters (live) or app.compliance_facts
-- (the raw rows, for snapshots and verification).
--
-- app.compliance_counters holds, per org × department × location × module × due date, the
-- counted assignments by status (the due date makes "open and due within N days" a sum too), and
-- app.compliance_headcounts the active employees per org × department × location. Statement-level
-- triggers on app.training_assignments and app.employees keep them current in the writing
-- transaction (bulk writes stay set-based). Concurrency: the
-- assignment trigger takes FOR SHARE on the employees it counts (then reads them in a new
-- statement), so an employee's move (department, location, status) and a change to one of their
-- assignments serialise; whichever commits second sees the other's result, and no count is lost
-- (tests/figures/test_counters_concurrency.py). app.verify_compliance_counters()
-- recomputes from the rows and returns the differences (empty when right).
--
-- Transition tables are paired old-with-new by a FULL JOIN behind an OFFSET 0 fence (then unpacked
-- as n and o): a full join is hashed or merged, never nested-looped, whatever row count the cached
-- plan assumed for the transition tables (PostgreSQL takes it when the statement is first parsed
-- in a session, often from an empty or one-row statement).

-- Whether an assignment counts towards the compliance rate. Inlined into the queries that call
-- it (no SET clause on purpose: a SET clause would prevent inlining, and this runs once per
-- assignment row in the snapshot and verification scans; every name in it is qualified).
create or replace function app.counts_toward_compliance(
    p_is_required boolean, p_employee_status app.employee_status
) returns boolean
language sql immutable parallel safe
as $$
    select p_is_required and p_employee_status operator(pg_catalog.=) 'active'::app.employee_status
$$;
comment on function app.counts_toward_compliance(boolean, app.employee_status) is
    'Whether an assignment counts towards compliance: required, and its employee is active.';

-- The counted assignments, one row each, with their employee's department and location: what the
-- counters summarise. Snapshots and verification read it; security invoker (RLS applies).
drop view if exists app.compliance_facts cascade;
create view app.compliance_facts with (security_invoker = true) as
    select a.org_id, e.department_id, e.location_id, a.module_id, a.employee_id, a.id as assignment_id,
           a.status, a.due_date
    from app.training_assignments a
    join app.employees e on e.org_id = a.org_id and e.id = a.employee_id
    where app.counts_toward_compliance(a.is_required, e.status);
comment on view app.compliance_facts is
    'The assignments that count towards compliance (required, of active employees), with the employee''s department and location.';

-- Add a batch of counted/uncounted assignments to the counters: group, skip what nets to zero,
-- upsert in key order (so concurrent batches lock counter rows in the same order).
create or replace function app.tally_compliance_changes(p_changes app.compliance_counter_change[])
returns void
language plpgsql volatile security definer
set search_path = ''
as $$
begin
    if p_changes is null or pg_catalog.cardinality(p_changes) = 0 then
        return;
    end if;
    insert into app.compliance_counters as t (
        org_id, department_id, location_id, module_id, due_date, required_count, completed_count,
        in_progress_count, not_started_count, overdue_count, exempted_count)
    select d.org_id, d.department_id, d.location_id, d.module_id, d.due_date, d.required,
           d.completed, d.in_progress, d.not_started, d.overdue, d.exempted
    from (
        select c.org_id, c.department_id, c.location_id, c.module_id, c.due_date,
               pg_catalog.sum(c.sign)::integer as required,
               coalesce(pg_catalog.sum(c.sign) filter (where c.status = 'completed'), 0)::integer as completed,
               coalesce(pg_catalog.sum(c.sign) filter (where c.status = 'in_progress'), 0)::integer as in_progress,
               coalesce(pg_catalog.sum(c.sign) filter (where c.status = 'not_started'), 0)::integer as not_started,
               coalesce(pg_catalog.sum(c.sign) filter (where c.status = 'overdue'), 0)::integer as overdue,
               coalesce(pg_catalog.sum(c.sign) filter (where c.status = 'exempted'), 0)::integer as exempted
        from pg_catalog.unnest(p_changes) c
        where c.counts
        group by c.org_id, c.department_id, c.location_id, c.module_id, c.due_date
    ) d
    where (d.required, d.completed, d.in_progress, d.not_started, d.overdue, d.exempted)
          <> (0, 0, 0, 0, 0, 0)
    order by d.org_id, d.department_id, d.location_id, d.module_id, d.due_date
    on conflict (org_id, department_id, location_id, module_id, due_date) do update set
        required_count = t.required_count + excluded.required_count,
        completed_count = t.completed_count + excluded.completed_count,
        in_progress_count = t.in_progress_count + excluded.in_progress_count,
        not_started_count = t.not_started_count + excluded.not_started_count,
        overdue_count = t.overdue_count + excluded.overdue_count,
        exempted_count = t.exempted_count + excluded.exempted_count,
        updated_at = pg_catalog.now();
end
$$;
comment on function app.tally_compliance_changes(app.compliance_counter_change[]) is
    'Adds counted (+1) / uncounted (-1) assignments to app.compliance_counters, in key order.';

-- AFTER STATEMENT trigger of training_assignments. Only changes to what is counted (employee,
-- module, due date, required flag, status) touch the counters. The employees involved are first
-- locked FOR SHARE, in key order, in a statement of its own; the changes are then read in a new
-- statement (a new snapshot in READ COMMITTED), so an employee's department, location and status
-- are the committed ones even when a concurrent move made us wait (see the header).
create or replace function app.count_assignment_changes() returns trigger
language plpgsql volatile security definer
set search_path = ''
as $$
declare
    v_changes app.compliance_counter_change[];
begin
    if tg_op = 'INSERT' then
        perform 1 from app.employees e
        where (e.org_id, e.id) in (select n.org_id, n.employee_id from new_rows n where n.is_required)
        order by e.org_id, e.id
        for share of e;
        if not found then
            return null;
        end if;
        v_changes := array(
            select row(n.org_id, e.department_id, e.location_id, n.module_id, n.due_date,
                       app.counts_toward_compliance(n.is_required, e.status), n.status, 1
                   )::app.compliance_counter_change
            from new_rows n
            join app.employees e on e.org_id = n.org_id and e.id = n.employee_id
            where n.is_required);
    elsif tg_op = 'DELETE' then
        perform 1 from app.employees e
        where (e.org_id, e.id) in (select o.org_id, o.employee_id from old_rows o where o.is_required)
        order by e.org_id, e.id
        for share of e;
        if not found then
            return null;
        end if;
        v_changes := array(
            select row(o.org_id, e.department_id, e.location_id, o.module_id, o.due_date,
                       app.counts_toward_compliance(o.is_required, e.status), o.status, -1
                   )::app.compliance_counter_change
            from old_rows o
            join app.employees e on e.org_id = o.org_id and e.id = o.employee_id
            where o.is_required);
    else
        perform 1 from app.employees e
        where (e.org_id, e.id) in (
            select o.org_id, unnest(array[o.employee_id, n.employee_id])
            from (select n, o from new_rows n full join old_rows o on o.org_id = n.org_id and o.id = n.id offset 0) p
            cross join lateral (select (p.n).*) n cross join lateral (select (p.o).*) o
            where (o.employee_id, o.module_id, o.due_date, o.is_required, o.status)
                  is distinct from (n.employee_id, n.module_id, n.due_date, n.is_required, n.status)
              and (o.is_required or n.is_required))
        order by e.org_id, e.id
        for share of e;
        if not found then
            return null;  -- nothing counted changed (a score, a note, a sync stamp)
        end if;
        v_changes := array(
            with changed as (
                select o.org_id, o.employee_id as old_employee_id, o.module_id as old_module_id,
                       o.due_date as old_due_date, o.is_required as old_required,
                       o.status as old_status, n.employee_id, n.module_id, n.due_date,
                       n.is_required, n.status
                from (select n, o from new_rows n full join old_rows o on o.org_id = n.org_id and o.id = n.id offset 0) p
                cross join lateral (select (p.n).*) n cross join lateral (select (p.o).*) o
                where (o.employee_id, o.module_id, o.due_date, o.is_required, o.status)
                      is distinct from (n.employee_id, n.module_id, n.due_date, n.is_required, n.status)
                  and (o.is_required or n.is_required)
            ),
            side as (
                select c.org_id, c.old_employee_id as employee_id, c.old_module_id as module_id,
                       c.old_due_date as due_date, c.old_required as is_required,
                       c.old_status as status, -1 as sign
                from changed c
                union all
                select c.org_id, c.employee_id, c.module_id, c.due_date, c.is_required, c.status, 1
                from changed c
            )
            select row(s.org_id, e.department_id, e.location_id, s.module_id, s.due_date,
                       app.counts_toward_compliance(s.is_required, e.status), s.status, s.sign
                   )::app.compliance_counter_change
            from side s
            join app.employees e on e.org_id = s.org_id and e.id = s.employee_id);
    end if;
    perform app.tally_compliance_changes(v_changes);
    return null;
end
$$;
comment on function app.count_assignment_changes() is
    'AFTER STATEMENT trigger of training_assignments: keeps app.compliance_counters current.';

create or replace trigger compliance_counters_on_insert
    after insert on app.training_assignments
    referencing new table as new_rows
    for each statement execute function app.count_assignment_changes();
create or replace trigger compliance_counters_on_update
    after update on app.training_assignments
    referencing old table as old_rows new table as new_rows
    for each statement execute function app.count_assignment_changes();
create or replace trigger compliance_counters_on_delete
    after delete on app.training_assignments
    referencing old table as old_rows
    for each statement execute function app.count_assignment_changes();

-- AFTER UPDATE STATEMENT trigger of employees: an employee who changes department, location or
-- active status takes their counted assignments from the old group to the new one. (A new
-- employee has no assignments yet; one with assignments cannot be deleted.)
create or replace function app.count_employee_moves() returns trigger
language plpgsql volatile security definer
set search_path = ''
as $$
declare
    v_changes app.compliance_counter_change[];
begin
    v_changes := array(
        with moved as (
            select o.org_id, o.id, o.department_id as old_department_id,
                   o.location_id as old_location_id, o.status as old_status,
                   n.department_id, n.location_id, n.status
            from (select n, o from new_rows n full join old_rows o on o.org_id = n.org_id and o.id = n.id offset 0) p
            cross join lateral (select (p.n).*) n cross join lateral (select (p.o).*) o
            where (o.department_id, o.location_id, o.status)
                  is distinct from (n.department_id, n.location_id, n.status)
        )
        select row(m.org_id, m.old_department_id, m.old_location_id, a.module_id, a.due_date,
                   app.counts_toward_compliance(a.is_required, m.old_status), a.status, -1
               )::app.compliance_counter_change
        from moved m
        join app.training_assignments a on a.org_id = m.org_id and a.employee_id = m.id
        where a.is_required
        union all
        select row(m.org_id, m.department_id, m.location_id, a.module_id, a.due_date,
                   app.counts_toward_compliance(a.is_required, m.status), a.status, 1
               )::app.compliance_counter_change
        from moved m
        join app.training_assignments a on a.org_id = m.org_id and a.employee_id = m.id
        where a.is_required);
    perform app.tally_compliance_changes(v_changes);
    return null;
end
$$;
comment on function app.count_employee_moves() is
    'AFTER STATEMENT trigger of employees: moves counted assignments between counter groups on department, location or status changes.';

create or replace trigger compliance_counters_on_employee_update
    after update on app.employees
    referencing old table as old_rows new table as new_rows
    for each statement execute function app.count_employee_moves();

-- AFTER STATEMENT trigger of employees (insert, update, delete): active employees per group.
-- Depends only on the employee rows themselves, which the writing statement holds locked.
create or replace function app.count_employee_heads() returns trigger
language plpgsql volatile security definer
set search_path = ''
as $$
begin
    if tg_op = 'INSERT' then
        insert into app.compliance_headcounts as t (org_id, department_id, location_id, active_employees)
        select n.org_id, n.department_id, n.location_id, pg_catalog.count(*)::integer
        from new_rows n
        where n.status = 'active'
        group by n.org_id, n.department_id, n.location_id
        order by 1, 2, 3
        on conflict (org_id, department_id, location_id) do update
            set active_employees = t.active_employees + excluded.active_employees,
                updated_at = pg_catalog.now();
    elsif tg_op = 'DELETE' then
        insert into app.compliance_headcounts as t (org_id, department_id, location_id, active_employees)
        select o.org_id, o.department_id, o.location_id, -pg_catalog.count(*)::integer
        from old_rows o
        where o.status = 'active'
        group by o.org_id, o.department_id, o.location_id
        order by 1, 2, 3
        on conflict (org_id, department_id, location_id) do update
            set active_employees = t.active_employees + excluded.active_employees,
                updated_at = pg_catalog.now();
    else
        insert into app.compliance_headcounts as t (org_id, department_id, location_id, active_employees)
        select d.org_id, d.department_id, d.location_id, pg_catalog.sum(d.n)::integer
        from (
            select o.org_id, o.department_id, o.location_id, -1 as n
            from (select n, o from new_rows n full join old_rows o on o.org_id = n.org_id and o.id = n.id offset 0) p
            cross join lateral (select (p.n).*) n cross join lateral (select (p.o).*) o
            where o.status = 'active'
              and (n.department_id, n.location_id, n.status)
                  is distinct from (o.department_id, o.location_id, o.status)
            union all
            select n.org_id, n.department_id, n.location_id, 1
            from (select n, o from new_rows n full join old_rows o on o.org_id = n.org_id and o.id = n.id offset 0) p
            cross join lateral (select (p.n).*) n cross join lateral (select (p.o).*) o
            where n.status = 'active'
              and (n.department_id, n.location_id, n.status)
                  is distinct from (o.department_id, o.location_id, o.status)
        ) d
        group by d.org_id, d.department_id, d.location_id
        having pg_catalog.sum(d.n) <> 0
        order by 1, 2, 3
        on conflict (org_id, department_id, location_id) do update
            set active_employees = t.active_employees + excluded.active_employees,
                updated_at = pg_catalog.now();
    end if;
    return null;
end
$$;
comment on function app.count_employee_heads() is
    'AFTER STATEMENT trigger of employees: keeps app.compliance_headcounts (active employees per group) current.';

create or replace trigger compliance_headcounts_on_insert
    after insert on app.employees
    referencing new table as new_rows
    for each statement execute function app.count_employee_heads();
create or replace trigger compliance_headcounts_on_update
    after update on app.employees
    referencing old table as old_rows new table as new_rows
    for each statement execute function app.count_employee_heads();
create or replace trigger compliance_headcounts_on_delete
    after delete on app.employees
    referencing old table as old_rows
    for each statement execute function app.count_employee_heads();

-- The counters are derived data, like employee_compliance_stats: not audited row by row (both
-- tables are named by audit.untracked_tables(), so the audit installer leaves them out).

-- The counters recomputed from the rows, per group (what they should hold).
create or replace function app.compliance_counts_recomputed(p_org_id uuid default null)
returns table (org_id uuid, department_id uuid, location_id uuid, module_id uuid, due_date date,
               required_count integer, completed_count integer, in_progress_count integer,
               not_started_count integer, overdue_count integer, exempted_count integer)
language sql stable security definer
set search_path = ''
as $$
    select f.org_id, f.department_id, f.location_id, f.module_id, f.due_date,
           pg_catalog.count(*)::integer,
           pg_catalog.count(*) filter (where f.status = 'completed')::integer,
           pg_catalog.count(*) filter (where f.status = 'in_progress')::integer,
           pg_catalog.count(*) filter (where f.status = 'not_started')::integer,
           pg_catalog.count(*) filter (where f.status = 'overdue')::integer,
           pg_catalog.count(*) filter (where f.status = 'exempted')::integer
    from app.compliance_facts f
    where p_org_id is null or f.org_id = p_org_id
    group by f.org_id, f.department_id, f.location_id, f.module_id, f.due_date
$$;
comment on function app.compliance_counts_recomputed(uuid) is
    'The compliance counters recomputed from the assignment rows (one organisation, or all).';

-- Active employees per group, recomputed from the rows.
create or replace function app.compliance_headcounts_recomputed(p_org_id uuid default null)
returns table (org_id uuid, department_id uuid, location_id uuid, active_employees integer)
language sql stable security definer
set search_path = ''
as $$
    select e.org_id, e.department_id, e.location_id, pg_catalog.count(*)::integer
    from app.employees e
    where e.status = 'active' and (p_org_id is null or e.org_id = p_org_id)
    group by e.org_id, e.department_id, e.location_id
$$;
comment on function app.compliance_headcounts_recomputed(uuid) is
    'Active employees per group recomputed from the employee rows (one organisation, or all).';

-- Differences between the stored counters (and head counts: the rows with module_id null) and
-- the rows; empty when the maintenance is right. One statement, one snapshot: exact even while
-- others write.
create or replace function app.verify_compliance_counters(p_org_id uuid default null)
returns table (org_id uuid, department_id uuid, location_id uuid, module_id uuid,
               due_date date, stored jsonb, computed jsonb)
language sql stable security definer
set search_path = ''
as $$
    with c as (
        select r.org_id, r.department_id, r.location_id, r.module_id, r.due_date,
               pg_catalog.to_jsonb(r) - '{org_id,department_id,location_id,module_id,due_date}'::text[] as figures
        from app.compliance_counts_recomputed(p_org_id) r
        union all
        select h.org_id, h.department_id, h.location_id, null, null,
               pg_catalog.jsonb_build_object('active_employees', h.active_employees)
        from app.compliance_headcounts_recomputed(p_org_id) h
    ),
    s as (
        select t.org_id, t.department_id, t.location_id, t.module_id, t.due_date,
               pg_catalog.jsonb_build_object(
                   'required_count', t.required_count, 'completed_count', t.completed_count,
                   'in_progress_count', t.in_progress_count, 'not_started_count', t.not_started_count,
                   'overdue_count', t.overdue_count, 'exempted_count', t.exempted_count) as figures
        from app.compliance_counters t
        where (p_org_id is null or t.org_id = p_org_id) and t.required_count <> 0
        union all
        select h.org_id, h.department_id, h.location_id, null, null,
               pg_catalog.jsonb_build_object('active_employees', h.active_employees)
        from app.compliance_headcounts h
        where (p_org_id is null or h.org_id = p_org_id) and h.active_employees <> 0
    )
    select coalesce(s.org_id, c.org_id), coalesce(s.department_id, c.department_id),
           coalesce(s.location_id, c.location_id), coalesce(s.module_id, c.module_id),
           coalesce(s.due_date, c.due_date), s.figures, c.figures
    from c
    full join s on s.org_id = c.org_id
               and coalesce(s.module_id, '00000000-0000-0000-0000-000000000000')
                   = coalesce(c.module_id, '00000000-0000-0000-0000-000000000000')
               and coalesce(s.department_id, '00000000-0000-0000-0000-000000000000')
                   = coalesce(c.department_id, '00000000-0000-0000-0000-000000000000')
               and coalesce(s.location_id, '00000000-0000-0000-0000-000000000000')
                   = coalesce(c.location_id, '00000000-0000-0000-0000-000000000000')
               and coalesce(s.due_date, '-infinity') = coalesce(c.due_date, '-infinity')
    where s.figures is distinct from c.figures
$$;
comment on function app.verify_compliance_counters(uuid) is
    'Compares app.compliance_counters and app.compliance_headcounts with the rows; returns the groups that differ (empty when right; module_id null = a head count).';

-- Rebuild the counters from the rows (repair, or first install on existing data). Blocks writers
-- of assignments and employees for its duration (SHARE locks), so nothing is counted twice.
create or replace function app.rebuild_compliance_counters(p_org_id uuid default null)
returns integer
language plpgsql volatile security definer
set search_path = ''
as $$
declare
    v_rows integer;
begin
    lock table app.employees, app.training_assignments in share mode;
    delete from app.compliance_headcounts t where p_org_id is null or t.org_id = p_org_id;
    insert into app.compliance_headcounts (org_id, department_id, location_id, active_employees)
    select h.org_id, h.department_id, h.location_id, h.active_employees
    from app.compliance_headcounts_recomputed(p_org_id) h
    order by 1, 2, 3;
    delete from app.compliance_counters t where p_org_id is null or t.org_id = p_org_id;
    insert into app.compliance_counters (org_id, department_id, location_id, module_id, due_date,
        required_count, completed_count, in_progress_count, not_started_count, overdue_count,
        exempted_count)
    select r.org_id, r.department_id, r.location_id, r.module_id, r.due_date, r.required_count,
           r.completed_count, r.in_progress_count, r.not_started_count, r.overdue_count,
           r.exempted_count
    from app.compliance_counts_recomputed(p_org_id) r
    order by 1, 2, 3, 4, 5;
    get diagnostics v_rows = row_count;
    return v_rows;
end
$$;
comment on function app.rebuild_compliance_counters(uuid) is
    'Recomputes app.compliance_counters and app.compliance_headcounts from the rows (one organisation, or all); blocks assignment and employee writes meanwhile.';

-- First install on a database that already has assignments: fill the counters once.
do $fill$
begin
    if not exists (select from app.compliance_counters)
       and not exists (select from app.compliance_headcounts)
       and exists (select from app.employees) then
        perform app.rebuild_compliance_counters(null);
    end if;
end
$fill$;

grant execute on function app.counts_toward_compliance(boolean, app.employee_status)
    to authenticated, analyst, sync_worker, web_app;
