-- The compliance engine: who must do what is reconciled, not only initialised (DESIGN §5, issue 13
-- items 1, 2 and 4). What an active employee must take is a function of the employee (status,
-- department, hire date) and the catalog (active modules required of new hires, department rules
-- effective on the organisation's day and marked required):
--
--   app.required_assignments(orgs, employees, modules)  the required set, with the due date the
--       catalog would give and the grace days that govern it (the department rule's, else the
--       module's);
--   app.reconcile_assignments(orgs, employees, modules, cause)  makes the assignments match it,
--       one set-based statement per step:
--         1. an open (or optional completed, still valid) assignment that stopped counting and is
--            required again counts again;
--         2. a required module with no counting cycle gets an assignment; its due date is never in
--            the past on the day it is made: a new hire's is start date + grace, anyone else's the
--            rule's (else the module's) due date when still ahead, else the day they became
--            subject + grace; when the catalog's date had passed, an overdue_on_arrival case says so;
--         3. an open counting assignment nobody requires any more stops counting (is_required
--            false, required_until, not_required_reason = the cause); completed and exempted ones
--            stay as they are (history).
--
-- Callers (every writer's path, through triggers): employees insert/update (150_lifecycle.sql),
-- training_modules and department_training_requirements insert/update/delete (below), the daily
-- job for rules whose effective dates start or end (app.reconcile_rule_dates). A module's or
-- rule's due date that changes moves its open assignments (audited by the audit triggers, the
-- employee notified); a rule's or module's grace that changes applies to the open assignments it
-- governs. A result for a module nobody requires of the employee is optional from creation: the
-- Classroom merge creates an assignment only where none exists, and the reconciliation keeps one
-- for every required module, so what it creates is optional (320_sync_classroom.sql).
--
-- Transition tables are paired old-with-new by a FULL JOIN behind an OFFSET 0 fence (then unpacked
-- as n and o): a full join is hashed or merged, never nested-looped, whatever row count the cached
-- plan assumed for the transition tables (PostgreSQL takes it when the statement is first parsed
-- in a session, often from an empty or one-row statement).

-- The required set of active employees (of the given keys) for the given modules (null = all).
-- Inlined (language sql without SET): every name is qualified.
drop function if exists app.required_assignments(uuid[], uuid[], uuid[]);
create function app.required_assignments(
    p_org_ids uuid[], p_employee_ids uuid[], p_module_ids uuid[] default null
) returns setof app.required_assignment
language sql stable
as $$
    with days as (
        select o.id as org_id, app.org_today(o.id) as today
        from app.organizations o
        where o.id operator(pg_catalog.=) any (p_org_ids)
    ),
    emp as (
        select e.org_id, e.id, e.department_id, e.start_date, d.today
        from (select distinct k.org_id, k.employee_id
              from unnest(p_org_ids, p_employee_ids) as k(org_id, employee_id)) k
        join days d on d.org_id operator(pg_catalog.=) k.org_id
        join app.employees e
          on e.org_id operator(pg_catalog.=) k.org_id and e.id operator(pg_catalog.=) k.employee_id
         and e.status operator(pg_catalog.=) 'active'::app.employee_status
    ),
    src as (
        -- modules required of new hires: start date + the module's grace; for staff hired before
        -- (that date passed), the module's due date
        select e.org_id, e.id as employee_id, m.id as module_id,
               case when e.start_date operator(pg_catalog.+) m.grace_period_days
                         operator(pg_catalog.>=) e.today
                    then e.start_date operator(pg_catalog.+) m.grace_period_days
                    else coalesce(m.due_date,
                                  e.start_date operator(pg_catalog.+) m.grace_period_days) end as due_date,
               m.grace_period_days as grace_days, 2 as rank, e.today
        from emp e
        join app.training_modules m
          on m.org_id operator(pg_catalog.=) e.org_id and m.active and m.required_for_new_hires
        where p_module_ids is null or m.id operator(pg_catalog.=) any (p_module_ids)
        union all
        -- department rules effective on the organisation's day: the rule's (else the module's)
        -- due date, not before start date + the rule's grace
        select e.org_id, e.id, m.id,
               greatest(coalesce(r.due_date, m.due_date),
                                   e.start_date operator(pg_catalog.+) r.grace_days),
               r.grace_days, 1, e.today
        from emp e
        join app.department_training_requirements r
          on r.org_id operator(pg_catalog.=) e.org_id
         and r.department_id operator(pg_catalog.=) e.department_id and r.required
         and r.effective_start operator(pg_catalog.<=) e.today
         and (r.effective_end is null or r.effective_end operator(pg_catalog.>=) e.today)
        join app.training_modules m
          on m.org_id operator(pg_catalog.=) r.org_id and m.id operator(pg_catalog.=) r.module_id
         and m.active
        where p_module_ids is null or m.id operator(pg_catalog.=) any (p_module_ids)
    )
    select s.org_id, s.employee_id, s.module_id, pg_catalog.max(s.due_date),
           (pg_catalog.array_agg(s.grace_days order by s.rank))[1], pg_catalog.min(s.today)
    from src s
    group by s.org_id, s.employee_id, s.module_id
$$;
comment on function app.required_assignments(uuid[], uuid[], uuid[]) is
    'The modules active employees must take (new-hire modules, department rules effective today), with the catalog''s due date and the governing grace days.';

-- overdue_on_arrival cases: one open case per employee (subject: the employee's id), listing in
-- details.modules each module whose catalog due date had passed when it was assigned (module,
-- assignment, the day, the catalog's date, the due date given, the grace days); a later batch
-- merges its modules into the open case (in module order; a module listed again keeps its
-- latest entry).
create or replace function app.merge_overdue_on_arrival(p_old jsonb, p_new jsonb) returns jsonb
language sql immutable
set search_path = ''
as $$
    select p_new || pg_catalog.jsonb_build_object('modules', (
        select pg_catalog.jsonb_agg(u.m order by u.m ->> 'module', u.m ->> 'module_id')
        from (select o.m
              from pg_catalog.jsonb_array_elements(p_old -> 'modules') o(m)
              where not exists (select from pg_catalog.jsonb_array_elements(p_new -> 'modules') n(m)
                                where (n.m ->> 'module_id') = (o.m ->> 'module_id'))
              union all
              select n.m from pg_catalog.jsonb_array_elements(p_new -> 'modules') n(m)) u))
$$;
comment on function app.merge_overdue_on_arrival(jsonb, jsonb) is
    'The details of an open overdue_on_arrival case with a later batch''s modules merged in.';

-- The module's or assignment's id when the case lists exactly one module (else null).
create or replace function app.overdue_on_arrival_single(p_details jsonb, p_key text) returns uuid
language sql immutable
set search_path = ''
as $$
    select case when pg_catalog.jsonb_array_length(p_details -> 'modules') = 1
                then (p_details -> 'modules' -> 0 ->> p_key)::uuid end
$$;
comment on function app.overdue_on_arrival_single(jsonb, text) is
    'The module or assignment id of an overdue_on_arrival case that lists one module; null for several.';

create or replace function app.overdue_on_arrival_message(p_details jsonb) returns text
language sql immutable
set search_path = ''
as $$
    select case when pg_catalog.jsonb_array_length(p_details -> 'modules') = 1
        then (select pg_catalog.format(
                  '%s was assigned %s on %s; the due date the rules gave, %s, had already passed, so it is due %s (%s grace days from that day)',
                  p_details ->> 'employee', m ->> 'module',
                  m ->> 'assigned_on', m ->> 'catalog_due_date',
                  m ->> 'due_date', m ->> 'grace_days')
              from (select p_details -> 'modules' -> 0 as m) one)
        else pg_catalog.format(
                 '%s was assigned %s trainings whose due dates the rules gave had already passed, so each is due the day assigned + its grace days: %s',
                 p_details ->> 'employee',
                 pg_catalog.jsonb_array_length(p_details -> 'modules'),
                 (select pg_catalog.string_agg(pg_catalog.format(
                             '%s (assigned %s; the rules gave %s; due %s, %s grace days)',
                             m ->> 'module', m ->> 'assigned_on',
                             m ->> 'catalog_due_date', m ->> 'due_date',
                             m ->> 'grace_days'), '; ' order by k)
                  from pg_catalog.jsonb_array_elements(p_details -> 'modules')
                       with ordinality as e(m, k)))
        end
$$;
comment on function app.overdue_on_arrival_message(jsonb) is
    'The message of an overdue_on_arrival case, from its details (one module, or the list).';

create or replace function app.reconcile_assignments(
    p_org_ids uuid[], p_employee_ids uuid[], p_module_ids uuid[] default null,
    p_cause text default 'department_changed'
) returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
declare
    v_required integer;
    v_created integer;
    v_released integer;
    v_cases integer;
    v_bulk boolean;
    v_req app.required_assignment[];
begin
    if p_org_ids is null or pg_catalog.cardinality(p_org_ids) = 0 then
        return pg_catalog.jsonb_build_object('required_again', 0, 'created', 0, 'released', 0,
                                             'cases', 0);
    end if;

    -- A large batch on tables this transaction (or one the statistics have not seen) just filled,
    -- such as a go-live import: fresh statistics keep the plans set-based (hash joins, not loops).
    v_bulk := pg_catalog.cardinality(p_employee_ids) >= 1000
              and (select c.reltuples from pg_catalog.pg_class c
                   where c.oid = 'app.employees'::pg_catalog.regclass)
                  < pg_catalog.cardinality(p_employee_ids);
    if v_bulk then
        analyze app.employees;
    end if;

    -- The required set, once.
    select pg_catalog.array_agg(r) into v_req
    from app.required_assignments(p_org_ids, p_employee_ids, p_module_ids) r;

    -- 1. Required again: the latest open assignment that stopped counting (or an optional
    -- completion still valid), when no other cycle counts.
    with req as materialized (
        select * from unnest(v_req)
    ),
    pick as (
        select distinct on (a.org_id, a.employee_id, a.module_id) a.org_id, a.id
        from req r
        join app.training_assignments a
          on a.org_id = r.org_id and a.employee_id = r.employee_id and a.module_id = r.module_id
        join app.training_modules m on m.org_id = a.org_id and m.id = a.module_id
        where not a.is_required
          and (  (a.status in ('not_started', 'in_progress', 'overdue')
                  and a.not_required_reason in ('department_changed', 'rule_ended', 'module_retired',
                                                'optional'))
              or (a.status = 'completed' and a.not_required_reason = 'optional'
                  and (m.validity_days is null
                       or app.local_date(a.org_id, a.completion_date) + m.validity_days > r.today)))
          and not exists (select from app.training_assignments c
                          where c.org_id = a.org_id and c.employee_id = a.employee_id
                            and c.module_id = a.module_id and c.is_required)
        order by a.org_id, a.employee_id, a.module_id, (a.status = 'completed') desc, a.due_date desc
    )
    update app.training_assignments a
    set is_required = true, required_until = null, not_required_reason = null
    from pick
    where a.org_id = pick.org_id and a.id = pick.id;
    get diagnostics v_required = row_count;

    -- 2. Missing: a new cycle, due never in the past; an overdue_on_arrival case when the
    -- catalog's due date had passed.
    with req as materialized (
        select * from unnest(v_req)
    ),
    ins as (
        insert into app.training_assignments (org_id, employee_id, module_id, due_date, grace_days,
                                              is_required)
        select r.org_id, r.employee_id, r.module_id,
               case when r.due_date >= r.today then r.due_date else r.today + r.grace_days end,
               r.grace_days, true
        from req r
        where not exists (select from app.training_assignments a
                          where a.org_id = r.org_id and a.employee_id = r.employee_id
                            and a.module_id = r.module_id and a.is_required)
        order by r.org_id, r.employee_id, r.module_id
        on conflict (org_id, employee_id, module_id, due_date)
            where not_required_reason is distinct from 'superseded_by_rehire' do nothing
        returning org_id, id, employee_id, module_id, due_date
    ),
    -- one case per employee, listing the modules (merged into the employee's open case)
    arrivals as (
        select i.org_id, i.employee_id, e.full_name,
               pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                   'module_id', i.module_id, 'module', m.name, 'assignment_id', i.id,
                   'assigned_on', r.today, 'catalog_due_date', r.due_date, 'due_date', i.due_date,
                   'grace_days', r.grace_days) order by m.name, i.module_id) as modules
        from ins i
        join req r on r.org_id = i.org_id and r.employee_id = i.employee_id and r.module_id = i.module_id
        join app.employees e on e.org_id = i.org_id and e.id = i.employee_id
        join app.training_modules m on m.org_id = i.org_id and m.id = i.module_id
        where r.due_date < r.today
        group by i.org_id, i.employee_id, e.full_name
    ),
    cases as (
        insert into app.assignment_exceptions as x (org_id, kind, subject_key, rule, message,
                                                    resolution_hint, employee_id, module_id,
                                                    assignment_id, details)
        select a.org_id, 'overdue_on_arrival', a.employee_id::text,
               'due dates are never in the past on the day they are made',
               app.overdue_on_arrival_message(d.details),
               'Nothing is overdue yet. If a training was done before (elsewhere or on paper), record the result or exempt the assignment; otherwise resolve the case with a note.',
               a.employee_id, app.overdue_on_arrival_single(d.details, 'module_id'),
               app.overdue_on_arrival_single(d.details, 'assignment_id'), d.details
        from arrivals a
        cross join lateral (select pg_catalog.jsonb_build_object(
            'employee', a.full_name, 'cause', p_cause, 'modules', a.modules) as details) d
        order by a.org_id, a.employee_id
        on conflict (org_id, kind, subject_key) where resolved_at is null do update
            set details = app.merge_overdue_on_arrival(x.details, excluded.details),
                message = app.overdue_on_arrival_message(
                    app.merge_overdue_on_arrival(x.details, excluded.details)),
                module_id = app.overdue_on_arrival_single(
                    app.merge_overdue_on_arrival(x.details, excluded.details), 'module_id'),
                assignment_id = app.overdue_on_arrival_single(
                    app.merge_overdue_on_arrival(x.details, excluded.details), 'assignment_id'),
                last_seen_at = pg_catalog.now()
        returning org_id, id, employee_id
    ),
    ev as (
        insert into app.events (org_id, type, entity, entity_id, employee_id, payload)
        select c.org_id, 'exception.raised', 'assignment_exception', c.id::text, c.employee_id,
               '{"kind": "overdue_on_arrival"}'::jsonb
        from cases c
        order by c.org_id, c.id
        returning id
    )
    select (select pg_catalog.count(*) from ins),
           (select pg_catalog.count(pg_catalog.pg_notify('compliance_events', ev.id::text)) from ev)
    into v_created, v_cases;

    -- 3. No longer required: open counting assignments outside the required set stop counting.
    -- Only modules the rules govern (required of new hires, named by a department rule, retired,
    -- or the subject of this catalog change): an assignment given by hand for a module no rule
    -- mentions is left as it is.
    if v_bulk then
        analyze app.training_assignments;
    end if;
    with req as materialized (
        select * from unnest(v_req)
    ),
    held as materialized (
        select a.org_id, a.employee_id, a.module_id
        from (select distinct k.org_id, k.employee_id
              from unnest(p_org_ids, p_employee_ids) as k(org_id, employee_id)) k
        join app.employees e on e.org_id = k.org_id and e.id = k.employee_id and e.status = 'active'
        join app.training_assignments a on a.org_id = e.org_id and a.employee_id = e.id
        join app.training_modules m on m.org_id = a.org_id and m.id = a.module_id
        where a.is_required and a.status in ('not_started', 'in_progress', 'overdue')
          and (case when p_module_ids is null
                    then m.required_for_new_hires or not m.active
                         or exists (select from app.department_training_requirements r
                                    where r.org_id = m.org_id and r.module_id = m.id)
                    else a.module_id = any (p_module_ids) end)
    ),
    -- (a set difference: hashed whatever the row estimates of tables written in this transaction)
    gone as (
        select h.org_id, h.employee_id, h.module_id from held h
        except
        select r.org_id, r.employee_id, r.module_id from req r
    )
    update app.training_assignments a
    set is_required = false, required_until = pg_catalog.now(), not_required_reason = p_cause
    from gone g
    where a.org_id = g.org_id and a.employee_id = g.employee_id and a.module_id = g.module_id
      and a.is_required and a.status in ('not_started', 'in_progress', 'overdue');
    get diagnostics v_released = row_count;

    return pg_catalog.jsonb_build_object('required_again', v_required, 'created', v_created,
                                         'released', v_released, 'cases', v_cases);
end
$$;
comment on function app.reconcile_assignments(uuid[], uuid[], uuid[], text) is
    'Makes the assignments of the given employees (and modules, null = all) match what the rules require, set-based; returns the counts.';

-- A rehire (inactive/terminated -> active): the open assignments of the earlier employment are
-- closed as superseded and never count again; the reconciliation then gives new ones.
create or replace function app.supersede_for_rehire(p_org_ids uuid[], p_employee_ids uuid[])
returns integer
language plpgsql volatile security definer
set search_path = ''
as $$
declare
    v_count integer;
begin
    update app.training_assignments a
    set is_required = false, required_until = pg_catalog.now(),
        not_required_reason = 'superseded_by_rehire'
    from (select distinct k.org_id, k.employee_id
          from unnest(p_org_ids, p_employee_ids) as k(org_id, employee_id)) k
    where a.org_id = k.org_id and a.employee_id = k.employee_id
      and a.status in ('not_started', 'in_progress', 'overdue')
      and (a.is_required or a.not_required_reason <> 'superseded_by_rehire');
    get diagnostics v_count = row_count;
    return v_count;
end
$$;
comment on function app.supersede_for_rehire(uuid[], uuid[]) is
    'Closes the open assignments of rehired employees'' earlier employment as superseded (never counted again).';

drop trigger if exists assignment_optional_on_insert on app.training_assignments;
drop function if exists app.assignment_optional_unless_required();

-- A module's or rule's due date that changes moves the open counting assignments that carry the
-- old date: those of the module in the department (or, for a module, in every department whose
-- rule sets no due date of its own) due on p_from move to p_to, never before the organisation's
-- day; the employee is notified. Audited by the audit triggers of training_assignments.
create or replace function app.move_due_dates(
    p_org_id uuid, p_module_id uuid, p_department_id uuid, p_from date, p_to date, p_why text
) returns integer
language plpgsql volatile security definer
set search_path = ''
as $$
declare
    v_to date := greatest(p_to, app.org_today(p_org_id));
    v_count integer;
    v_notified integer;
begin
    if p_from is null or p_to is null or p_from = v_to then
        return 0;
    end if;
    with moved as (
        update app.training_assignments a
        set due_date = v_to
        from app.employees e
        where e.org_id = a.org_id and e.id = a.employee_id
          and a.org_id = p_org_id and a.module_id = p_module_id
          and a.is_required and a.status in ('not_started', 'in_progress', 'overdue')
          and a.due_date = p_from
          and (case when p_department_id is not null
                    then e.department_id = p_department_id
                    else not exists (select from app.department_training_requirements r
                                     where r.org_id = e.org_id and r.department_id = e.department_id
                                       and r.module_id = p_module_id and r.due_date is not null)
               end)
          and not exists (select from app.training_assignments b
                          where b.org_id = a.org_id and b.employee_id = a.employee_id
                            and b.module_id = a.module_id and b.due_date = v_to
                            and b.not_required_reason is distinct from 'superseded_by_rehire')
        returning a.org_id, a.id, a.employee_id
    )
    select pg_catalog.count(*), pg_catalog.count(app.notify_employee(mv.org_id, mv.employee_id,
               'assignment.due_date_changed',
               pg_catalog.format('%s is now due %s', m.name, pg_catalog.to_char(v_to, 'YYYY-MM-DD')),
               pg_catalog.format('The due date of your training %s moved from %s to %s (%s).', m.name,
                                 pg_catalog.to_char(p_from, 'YYYY-MM-DD'),
                                 pg_catalog.to_char(v_to, 'YYYY-MM-DD'), p_why),
               pg_catalog.format('/assignments/%s', mv.id), 'medium',
               pg_catalog.format('assignment.due_date_changed:%s:%s', mv.id, v_to)))
    into v_count, v_notified
    from moved mv
    join app.training_modules m on m.org_id = mv.org_id and m.id = p_module_id;
    return v_count;
end
$$;
comment on function app.move_due_dates(uuid, uuid, uuid, date, date, text) is
    'Moves the open assignments carrying a module''s or rule''s old due date to its new one, notifying the employees.';

-- The grace that governs open assignments follows the rule (or, where no rule says, the module).
create or replace function app.apply_grace_days(p_org_id uuid, p_module_id uuid, p_department_id uuid,
                                                p_grace integer)
returns integer
language plpgsql volatile security definer
set search_path = ''
as $$
declare
    v_count integer;
begin
    update app.training_assignments a
    set grace_days = p_grace
    from app.employees e
    where e.org_id = a.org_id and e.id = a.employee_id
      and a.org_id = p_org_id and a.module_id = p_module_id and a.grace_days <> p_grace
      and a.is_required and a.status in ('not_started', 'in_progress', 'overdue')
      and (case when p_department_id is not null
                then e.department_id = p_department_id
                else not exists (select from app.department_training_requirements r
                                 where r.org_id = e.org_id and r.department_id = e.department_id
                                   and r.module_id = p_module_id and r.required)
           end);
    get diagnostics v_count = row_count;
    return v_count;
end
$$;

-- The active employees of an organisation (optionally of some departments), as key arrays.
create or replace function app.active_employee_keys(p_org_ids uuid[], p_department_ids uuid[] default null,
                                                    out org_ids uuid[], out employee_ids uuid[])
language sql stable
set search_path = ''
as $$
    select pg_catalog.array_agg(e.org_id order by e.org_id, e.id),
           pg_catalog.array_agg(e.id order by e.org_id, e.id)
    from app.employees e
    where e.org_id = any (p_org_ids) and e.status = 'active'
      and (p_department_ids is null or e.department_id = any (p_department_ids))
$$;

-- Catalog triggers ---------------------------------------------------------------------------------

-- A new or changed module: reconcile the organisation's active employees for it (a new module
-- required of new hires reaches everyone; a deactivated one stops counting where still open);
-- a new due date moves the open assignments carrying the old one; a new grace applies where no
-- department rule governs.
create or replace function app.training_modules_changed() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
    v_changed uuid[];
    r record;
    k record;
begin
    -- (old_rows exists only for UPDATE: each branch reads only the tables its event has)
    if tg_op = 'INSERT' then
        select pg_catalog.array_agg(n.id) into v_changed from new_rows n where n.active;
    else
        select pg_catalog.array_agg(n.id) into v_changed
        from (select n, o from new_rows n full join old_rows o on o.org_id = n.org_id and o.id = n.id offset 0) p
             cross join lateral (select (p.n).*) n cross join lateral (select (p.o).*) o
        where (n.active, n.required_for_new_hires) is distinct from (o.active, o.required_for_new_hires);
        perform app.move_due_dates(n.org_id, n.id, null, o.due_date, n.due_date,
                                   'the module''s due date changed')
        from (select n, o from new_rows n full join old_rows o on o.org_id = n.org_id and o.id = n.id offset 0) p
             cross join lateral (select (p.n).*) n cross join lateral (select (p.o).*) o
        where n.active and n.due_date is distinct from o.due_date;
        perform app.apply_grace_days(n.org_id, n.id, null, n.grace_period_days)
        from (select n, o from new_rows n full join old_rows o on o.org_id = n.org_id and o.id = n.id offset 0) p
             cross join lateral (select (p.n).*) n cross join lateral (select (p.o).*) o
        where n.grace_period_days <> o.grace_period_days;
    end if;
    for r in
        select m.org_id, pg_catalog.array_agg(m.id order by m.id) as modules
        from app.training_modules m
        where m.id = any (v_changed)
        group by m.org_id
        order by m.org_id
    loop
        select * into k from app.active_employee_keys(array[r.org_id]);
        perform app.reconcile_assignments(k.org_ids, k.employee_ids, r.modules, 'module_retired');
    end loop;
    return null;
end
$$;

create or replace trigger training_modules_reconcile_on_insert
    after insert on app.training_modules
    referencing new table as new_rows
    for each statement execute function app.training_modules_changed();

create or replace trigger training_modules_reconcile_on_update
    after update on app.training_modules
    referencing old table as old_rows new table as new_rows
    for each statement execute function app.training_modules_changed();

-- A new, changed or deleted department rule: reconcile the department's active employees for its
-- module (old and new department and module when moved); a new due date moves the open
-- assignments carrying the old one; a new grace applies to the open assignments it governs.
create or replace function app.department_rules_changed() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
    v_changed app.department_training_requirements[];
    r record;
    k record;
begin
    -- The rules as they were and as they are (old_rows exists only for UPDATE and DELETE, new_rows
    -- for INSERT and UPDATE: each branch reads only the tables its event has).
    if tg_op = 'INSERT' then
        select pg_catalog.array_agg(n) into v_changed from new_rows n;
    elsif tg_op = 'DELETE' then
        select pg_catalog.array_agg(o) into v_changed from old_rows o;
    else
        -- Due dates and grace first, so that the reconciliation sees the assignments as the rule
        -- now makes them.
        perform app.move_due_dates(n.org_id, n.module_id, n.department_id,
                                   coalesce(o.due_date, m.due_date), coalesce(n.due_date, m.due_date),
                                   'the department rule''s due date changed')
        from (select n, o from new_rows n full join old_rows o on o.org_id = n.org_id and o.id = n.id offset 0) p
        cross join lateral (select (p.n).*) n cross join lateral (select (p.o).*) o
        join app.training_modules m on m.org_id = n.org_id and m.id = n.module_id
        where n.department_id = o.department_id and n.module_id = o.module_id
          and n.due_date is distinct from o.due_date;
        perform app.apply_grace_days(n.org_id, n.module_id, n.department_id, n.grace_days)
        from (select n, o from new_rows n full join old_rows o on o.org_id = n.org_id and o.id = n.id offset 0) p
        cross join lateral (select (p.n).*) n cross join lateral (select (p.o).*) o
        where n.grace_days <> o.grace_days and n.required;
        -- (both sides of each rule whose reach changed: the department and module it left too)
        select pg_catalog.array_agg(p.n) || pg_catalog.array_agg(p.o) into v_changed
        from (select n, o from new_rows n full join old_rows o on o.org_id = n.org_id and o.id = n.id offset 0) p
             cross join lateral (select (p.n).*) n cross join lateral (select (p.o).*) o
        where (n.department_id, n.module_id, n.required, n.effective_start, n.effective_end)
              is distinct from (o.department_id, o.module_id, o.required, o.effective_start,
                                o.effective_end);
    end if;
    -- One reconciliation per module: the active employees of every department whose rule for it
    -- changed, in one set-based pass.
    for r in
        select c.org_id, c.module_id, pg_catalog.array_agg(distinct c.department_id) as departments
        from unnest(v_changed) c
        group by c.org_id, c.module_id
        order by c.org_id, c.module_id
    loop
        select * into k from app.active_employee_keys(array[r.org_id], r.departments);
        perform app.reconcile_assignments(k.org_ids, k.employee_ids, array[r.module_id], 'rule_ended');
    end loop;
    return null;
end
$$;

create or replace trigger department_rules_reconcile_on_insert
    after insert on app.department_training_requirements
    referencing new table as new_rows
    for each statement execute function app.department_rules_changed();

create or replace trigger department_rules_reconcile_on_update
    after update on app.department_training_requirements
    referencing old table as old_rows new table as new_rows
    for each statement execute function app.department_rules_changed();

create or replace trigger department_rules_reconcile_on_delete
    after delete on app.department_training_requirements
    referencing old table as old_rows
    for each statement execute function app.department_rules_changed();

-- Rules whose effective dates start or end on a day take effect that day (the daily job).
create or replace function app.reconcile_rule_dates(p_org_id uuid, p_day date) returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
declare
    v_created integer := 0;
    v_result jsonb;
    r record;
    k record;
begin
    for r in
        select x.module_id, pg_catalog.array_agg(distinct x.department_id) as departments
        from app.department_training_requirements x
        where x.org_id = p_org_id and (x.effective_start = p_day or x.effective_end = p_day - 1)
        group by x.module_id
        order by x.module_id
    loop
        select * into k from app.active_employee_keys(array[p_org_id], r.departments);
        v_result := app.reconcile_assignments(k.org_ids, k.employee_ids, array[r.module_id], 'rule_ended');
        v_created := v_created + coalesce((v_result ->> 'created')::integer, 0);
    end loop;
    return pg_catalog.jsonb_build_object('created', v_created);
end
$$;
comment on function app.reconcile_rule_dates(uuid, date) is
    'Reconciles the departments whose rules start or end on the day (run by the daily job).';
