-- Exact history and the state of any past day (DESIGN §5 "History"; docs/analytics.md "History and
-- point-in-time figures"). Tables: migration 0015_history.
--
-- app.assignment_history / app.employee_history hold every version of an assignment (status, due
-- date, grace, required flag, completion, score, lateness, exemption, employee, module) and of an
-- employee (status, department, location), each valid over the system-time range `valid` =
-- [when the database recorded it, when it was superseded). AFTER STATEMENT triggers with
-- transition tables keep them in the writing transaction: a changed row closes its current
-- version at the transaction's time and adds the new one, set-based (one statement for any number
-- of rows). Only changes to the named columns make a version. A row changed twice in one
-- transaction keeps one version for that transaction (the state nobody else could see is not
-- history). A transaction that started before the current version was recorded (it waited on the
-- row) starts its version at that version's time, so versions never overlap.
--
-- THE AS-OF RULE: the state at the end of local day D is the state valid at the instant
-- T = (D + 1) 00:00 in the organisation's zone. Every fact counts by when the database recorded it
-- (existence, due date, grace, required flag, exemption, the employee's status, department,
-- location) except a completion, which counts by its valid time: an assignment is completed on D
-- when what the database knows now says it was completed before T. Such a completion recorded
-- after T is flagged "recorded later"; one whose version at T said otherwise because a correction
-- changed it afterwards is flagged "corrected later". Overdue on D = not completed, not exempted,
-- and D > due date + grace days (so a missed daily job changes nothing); days overdue =
-- app.days_overdue(due date, D).
--
-- Transition tables are paired old-with-new by a FULL JOIN behind an OFFSET 0 fence (then unpacked
-- as n and o): a full join is hashed or merged, never nested-looped, whatever row count the cached
-- plan assumed for the transition tables (PostgreSQL takes it when the statement is first parsed
-- in a session, often from an empty or one-row statement).

-- Whether a change of an assignment makes a version: one of the named columns changed. Inlined
-- (no SET clause; operators qualified): the trigger evaluates it per changed row.
create or replace function app.assignment_version_changed(o app.training_assignments, n app.training_assignments)
returns boolean
language sql immutable parallel safe
as $$
    select (o.employee_id, o.module_id, o.status, o.due_date, o.grace_days, o.is_required,
            o.completion_date, o.score, o.is_late, o.days_late, o.exemption_reason)
           is distinct from
           (n.employee_id, n.module_id, n.status, n.due_date, n.grace_days, n.is_required,
            n.completion_date, n.score, n.is_late, n.days_late, n.exemption_reason)
$$;
comment on function app.assignment_version_changed(app.training_assignments, app.training_assignments) is
    'Whether an assignment change makes a history version (a change to one of the named columns).';

create or replace function app.employee_version_changed(o app.employees, n app.employees)
returns boolean
language sql immutable parallel safe
as $$
    select (o.status, o.department_id, o.location_id) is distinct from (n.status, n.department_id, n.location_id)
$$;
comment on function app.employee_version_changed(app.employees, app.employees) is
    'Whether an employee change makes a history version (status, department or location changed).';

-- The day state of an assignment version by THE AS-OF RULE, at the end of local day p_day
-- (instant p_end): completed when the known completion is before the end of the day, else
-- exempted, else overdue after due date + grace, else open. Inlined (no SET clause; operators
-- qualified), like app.counts_toward_compliance: the as-of queries evaluate it per version.
create or replace function app.as_of_state(p_known_completion timestamptz, p_end timestamptz,
                                           p_day date, p_status app.assignment_status,
                                           p_due_date date, p_grace_days integer) returns text
language sql immutable parallel safe
as $$
    select case when p_known_completion operator(pg_catalog.<) p_end then 'completed'
                when p_status operator(pg_catalog.=) 'exempted'::app.assignment_status then 'exempted'
                when p_day operator(pg_catalog.>) (p_due_date operator(pg_catalog.+) p_grace_days) then 'overdue'
                else 'open'
           end
$$;
comment on function app.as_of_state(timestamptz, timestamptz, date, app.assignment_status, date, integer) is
    'The as-of day state of an assignment version (completed, exempted, overdue, open) from its known completion and the end of the day.';
grant execute on function app.as_of_state(timestamptz, timestamptz, date, app.assignment_status, date, integer)
    to authenticated, sync_worker;

-- The advisory lock of an organisation's cached figures: writers that adjust them take it
-- shared (their adjustments commute), app.snapshot_compliance exclusive (it replaces a day).
create or replace function app.cached_figures_lock_key(p_org_id uuid) returns bigint
language sql immutable parallel safe
as $$
    select (pg_catalog.hashtext('app.compliance_snapshots')::bigint operator(pg_catalog.<<) 32)
           operator(pg_catalog.#) pg_catalog.hashtext(p_org_id::text)::bigint
$$;
comment on function app.cached_figures_lock_key(uuid) is
    'The advisory lock key of an organisation''s cached figures (app.compliance_snapshots).';
grant execute on function app.cached_figures_lock_key(uuid) to sync_worker;

-- Keep the cached figures of ended days exact when the known completion of assignments changes
-- (a completion recorded with an earlier time, corrected or withdrawn; an assignment deleted,
-- after which each version's own completion is what is known). For every cached day from the
-- earliest one the change can touch (the old or new completion's local day, or the day a
-- completed version was recorded), the assignment's contribution with the old known completion
-- is taken out of its group and of the org-wide row and the new one put in, set-based. Facts
-- other than a completion count by when they were recorded, so they never change an ended day.
-- p_deleted: the assignments no longer exist (the new known completion is each version's own).
create or replace function app.adjust_cached_figures(p_org_ids uuid[], p_assignment_ids uuid[],
                                                     p_employee_ids uuid[],
                                                     p_old_completions timestamptz[],
                                                     p_new_completions timestamptz[],
                                                     p_deleted boolean)
returns void
language plpgsql volatile security definer
set search_path = ''
as $$
declare
    v_org uuid;
begin
    for v_org in select distinct x.org_id from pg_catalog.unnest(p_org_ids) x(org_id) order by 1 loop
        perform pg_catalog.pg_advisory_xact_lock_shared(app.cached_figures_lock_key(v_org));
    end loop;
    with changed as (
        select c.org_id, c.assignment_id, c.employee_id, c.k_old, c.k_new,
               least(app.local_date(c.org_id, c.k_old), app.local_date(c.org_id, c.k_new),
                     app.local_date(c.org_id, v.first_completed)) as from_day
        from rows from (pg_catalog.unnest(p_org_ids), pg_catalog.unnest(p_assignment_ids),
                        pg_catalog.unnest(p_employee_ids), pg_catalog.unnest(p_old_completions),
                        pg_catalog.unnest(p_new_completions))
             as c(org_id, assignment_id, employee_id, k_old, k_new)
        left join lateral (
            select pg_catalog.min(pg_catalog.lower(h.valid)) as first_completed
            from app.assignment_history h
            where h.org_id = c.org_id and h.employee_id = c.employee_id
              and h.assignment_id = c.assignment_id and h.status = 'completed'
        ) v on true
    ),
    days as (
        select c.*, s.snapshot_date as day, app.end_of_local_day(c.org_id, s.snapshot_date) as day_end
        from changed c
        join app.compliance_snapshots s
          on s.org_id = c.org_id and s.snapshot_date >= c.from_day
         and s.department_id is null and s.location_id is null
    ),
    facts as (
        select d.org_id, d.day, e.department_id, e.location_id, k.sign,
               app.as_of_state(k.known, d.day_end, d.day, h.status, h.due_date, h.grace_days) as state,
               h.status, h.completion_date, k.known
        from days d
        join app.assignment_history h
          on h.org_id = d.org_id and h.employee_id = d.employee_id
         and h.assignment_id = d.assignment_id and h.valid @> d.day_end
        join app.employee_history e
          on e.org_id = d.org_id and e.employee_id = h.employee_id and e.valid @> d.day_end
        cross join lateral (
            values (-1, d.k_old),
                   (1, case when p_deleted then case when h.status = 'completed' then h.completion_date end
                            else d.k_new end)
        ) k(sign, known)
        where app.counts_toward_compliance(h.is_required, e.status)
    ),
    deltas as (
        select f.org_id, f.day, f.department_id, f.location_id,
               grouping(f.department_id, f.location_id) as g,
               pg_catalog.sum(case when f.state = 'completed' then f.sign else 0 end)::integer as completed,
               pg_catalog.sum(case when f.state = 'overdue' then f.sign else 0 end)::integer as overdue,
               pg_catalog.sum(case when f.state = 'exempted' then f.sign else 0 end)::integer as exempted,
               pg_catalog.sum(case when f.state = 'completed' and f.status <> 'completed'
                                   then f.sign else 0 end)::integer as recorded_later,
               pg_catalog.sum(case when f.status = 'completed' and f.completion_date is distinct from f.known
                                   then f.sign else 0 end)::integer as corrected_later
        from facts f
        group by f.org_id, f.day, grouping sets ((f.department_id, f.location_id), ())
    )
    update app.compliance_snapshots s
    set completed_assignments = s.completed_assignments + d.completed,
        overdue_assignments = s.overdue_assignments + d.overdue,
        exempted_assignments = s.exempted_assignments + d.exempted,
        completed_recorded_later = s.completed_recorded_later + d.recorded_later,
        corrected_later = s.corrected_later + d.corrected_later,
        compliance_rate = app.compliance_rate_of((s.completed_assignments + d.completed)::bigint,
                                                 s.required_assignments::bigint,
                                                 (s.exempted_assignments + d.exempted)::bigint)
    from deltas d
    where s.org_id = d.org_id and s.snapshot_date = d.day
      and (d.completed, d.overdue, d.exempted, d.recorded_later, d.corrected_later) <> (0, 0, 0, 0, 0)
      and case when d.g <> 0 then s.department_id is null and s.location_id is null
               else (d.department_id is not null or d.location_id is not null)
                    and s.department_id is not distinct from d.department_id
                    and s.location_id is not distinct from d.location_id
          end;
end
$$;
comment on function app.adjust_cached_figures(uuid[], uuid[], uuid[], timestamptz[], timestamptz[], boolean) is
    'Keeps the cached figures of ended days exact when the known completion of assignments changes: the old contribution out, the new one in, per day and group.';

-- AFTER STATEMENT trigger of training_assignments (insert, update, delete).
create or replace function app.record_assignment_history() returns trigger
language plpgsql volatile security definer
set search_path = ''
as $$
declare
    v_orgs uuid[];
    v_ids uuid[];
    v_employees uuid[];
    v_old timestamptz[];
    v_new timestamptz[];
    v_replaced uuid[];
    v_since timestamptz[];
begin
    -- An assignment inserted now has no version before now: no ended day changes.
    if tg_op = 'INSERT' then
        insert into app.assignment_history (org_id, assignment_id, employee_id, module_id, status,
                                            due_date, grace_days, is_required, completion_date, score,
                                            is_late, days_late, exemption_reason, valid)
        select n.org_id, n.id, n.employee_id, n.module_id, n.status, n.due_date, n.grace_days,
               n.is_required, n.completion_date, n.score, n.is_late, n.days_late, n.exemption_reason,
               pg_catalog.tstzrange(pg_catalog.now(), null)
        from new_rows n;
        return null;
    end if;
    if tg_op = 'DELETE' then
        update app.assignment_history h
        set valid = pg_catalog.tstzrange(pg_catalog.lower(h.valid), pg_catalog.now())
        from old_rows o
        where h.org_id = o.org_id and h.assignment_id = o.id and pg_catalog.upper_inf(h.valid)
          and pg_catalog.lower(h.valid) < pg_catalog.now();
        delete from app.assignment_history h
        using old_rows o
        where h.org_id = o.org_id and h.assignment_id = o.id and pg_catalog.upper_inf(h.valid);
        -- What is known of a deleted assignment's completion is now each version's own.
        select pg_catalog.array_agg(o.org_id), pg_catalog.array_agg(o.id), pg_catalog.array_agg(o.employee_id),
               pg_catalog.array_agg(case when o.status = 'completed' then o.completion_date end)
        into v_orgs, v_ids, v_employees, v_old
        from old_rows o;
        if v_orgs is not null then
            perform app.adjust_cached_figures(v_orgs, v_ids, v_employees, v_old, v_old, true);
        end if;
        return null;
    end if;
    -- Close the current versions of the changed rows, then add their new versions (two statements:
    -- a version recorded at or after this transaction's time is replaced, not closed).
    update app.assignment_history h
    set valid = pg_catalog.tstzrange(pg_catalog.lower(h.valid), pg_catalog.now())
    from (select n, o from new_rows n full join old_rows o on o.org_id = n.org_id and o.id = n.id offset 0) p
    cross join lateral (select (p.n).*) n cross join lateral (select (p.o).*) o
    where h.org_id = n.org_id and h.assignment_id = n.id and pg_catalog.upper_inf(h.valid)
      and pg_catalog.lower(h.valid) < pg_catalog.now()
      and app.assignment_version_changed(row(o.*)::app.training_assignments, row(n.*)::app.training_assignments);
    with replaced as (
        delete from app.assignment_history h
        using (select n, o from new_rows n full join old_rows o on o.org_id = n.org_id and o.id = n.id offset 0) p
        cross join lateral (select (p.n).*) n cross join lateral (select (p.o).*) o
        where h.org_id = n.org_id and h.assignment_id = n.id and pg_catalog.upper_inf(h.valid)
          and pg_catalog.lower(h.valid) >= pg_catalog.now()
          and app.assignment_version_changed(row(o.*)::app.training_assignments, row(n.*)::app.training_assignments)
        returning h.org_id, h.assignment_id, pg_catalog.lower(h.valid) as since
    )
    select pg_catalog.array_agg(r.assignment_id), pg_catalog.array_agg(r.since)
    into v_replaced, v_since
    from replaced r;
    insert into app.assignment_history (org_id, assignment_id, employee_id, module_id, status,
                                        due_date, grace_days, is_required, completion_date, score,
                                        is_late, days_late, exemption_reason, valid)
    select n.org_id, n.id, n.employee_id, n.module_id, n.status, n.due_date, n.grace_days,
           n.is_required, n.completion_date, n.score, n.is_late, n.days_late, n.exemption_reason,
           pg_catalog.tstzrange(greatest(pg_catalog.now(), r.since), null)
    from (select n, o from new_rows n full join old_rows o on o.org_id = n.org_id and o.id = n.id offset 0) p
    cross join lateral (select (p.n).*) n cross join lateral (select (p.o).*) o
    left join rows from (pg_catalog.unnest(v_replaced), pg_catalog.unnest(v_since)) as r(assignment_id, since)
      on r.assignment_id = n.id
    where app.assignment_version_changed(row(o.*)::app.training_assignments, row(n.*)::app.training_assignments);
    -- A completion recorded, corrected or withdrawn changes ended days: adjust their cached
    -- figures in this transaction.
    select pg_catalog.array_agg(n.org_id), pg_catalog.array_agg(n.id), pg_catalog.array_agg(n.employee_id),
           pg_catalog.array_agg(case when o.status = 'completed' then o.completion_date end),
           pg_catalog.array_agg(case when n.status = 'completed' then n.completion_date end)
    into v_orgs, v_ids, v_employees, v_old, v_new
    from (select n, o from new_rows n full join old_rows o on o.org_id = n.org_id and o.id = n.id offset 0) p
    cross join lateral (select (p.n).*) n cross join lateral (select (p.o).*) o
    where case when o.status = 'completed' then o.completion_date end
          is distinct from case when n.status = 'completed' then n.completion_date end;
    if v_orgs is not null then
        perform app.adjust_cached_figures(v_orgs, v_ids, v_employees, v_old, v_new, false);
    end if;
    return null;
end
$$;
comment on function app.record_assignment_history() is
    'AFTER STATEMENT trigger of training_assignments: keeps app.assignment_history (one version per change of the named columns, system-time ranges).';

create or replace trigger assignment_history_on_insert
    after insert on app.training_assignments
    referencing new table as new_rows
    for each statement execute function app.record_assignment_history();
create or replace trigger assignment_history_on_update
    after update on app.training_assignments
    referencing old table as old_rows new table as new_rows
    for each statement execute function app.record_assignment_history();
create or replace trigger assignment_history_on_delete
    after delete on app.training_assignments
    referencing old table as old_rows
    for each statement execute function app.record_assignment_history();

-- AFTER STATEMENT trigger of employees (insert, update, delete): status, department, location.
create or replace function app.record_employee_history() returns trigger
language plpgsql volatile security definer
set search_path = ''
as $$
declare
    v_replaced uuid[];
    v_since timestamptz[];
begin
    if tg_op = 'INSERT' then
        insert into app.employee_history (org_id, employee_id, status, department_id, location_id, valid)
        select n.org_id, n.id, n.status, n.department_id, n.location_id,
               pg_catalog.tstzrange(pg_catalog.now(), null)
        from new_rows n;
        return null;
    end if;
    if tg_op = 'DELETE' then
        update app.employee_history h
        set valid = pg_catalog.tstzrange(pg_catalog.lower(h.valid), pg_catalog.now())
        from old_rows o
        where h.org_id = o.org_id and h.employee_id = o.id and pg_catalog.upper_inf(h.valid)
          and pg_catalog.lower(h.valid) < pg_catalog.now();
        delete from app.employee_history h
        using old_rows o
        where h.org_id = o.org_id and h.employee_id = o.id and pg_catalog.upper_inf(h.valid);
        return null;
    end if;
    update app.employee_history h
    set valid = pg_catalog.tstzrange(pg_catalog.lower(h.valid), pg_catalog.now())
    from (select n, o from new_rows n full join old_rows o on o.org_id = n.org_id and o.id = n.id offset 0) p
    cross join lateral (select (p.n).*) n cross join lateral (select (p.o).*) o
    where h.org_id = n.org_id and h.employee_id = n.id and pg_catalog.upper_inf(h.valid)
      and pg_catalog.lower(h.valid) < pg_catalog.now()
      and app.employee_version_changed(row(o.*)::app.employees, row(n.*)::app.employees);
    with replaced as (
        delete from app.employee_history h
        using (select n, o from new_rows n full join old_rows o on o.org_id = n.org_id and o.id = n.id offset 0) p
        cross join lateral (select (p.n).*) n cross join lateral (select (p.o).*) o
        where h.org_id = n.org_id and h.employee_id = n.id and pg_catalog.upper_inf(h.valid)
          and pg_catalog.lower(h.valid) >= pg_catalog.now()
          and app.employee_version_changed(row(o.*)::app.employees, row(n.*)::app.employees)
        returning h.employee_id, pg_catalog.lower(h.valid) as since
    )
    select pg_catalog.array_agg(r.employee_id), pg_catalog.array_agg(r.since)
    into v_replaced, v_since
    from replaced r;
    insert into app.employee_history (org_id, employee_id, status, department_id, location_id, valid)
    select n.org_id, n.id, n.status, n.department_id, n.location_id,
           pg_catalog.tstzrange(greatest(pg_catalog.now(), r.since), null)
    from (select n, o from new_rows n full join old_rows o on o.org_id = n.org_id and o.id = n.id offset 0) p
    cross join lateral (select (p.n).*) n cross join lateral (select (p.o).*) o
    left join rows from (pg_catalog.unnest(v_replaced), pg_catalog.unnest(v_since)) as r(employee_id, since)
      on r.employee_id = n.id
    where app.employee_version_changed(row(o.*)::app.employees, row(n.*)::app.employees);
    return null;
end
$$;
comment on function app.record_employee_history() is
    'AFTER STATEMENT trigger of employees: keeps app.employee_history (status, department, location; system-time ranges).';

create or replace trigger employee_history_on_insert
    after insert on app.employees
    referencing new table as new_rows
    for each statement execute function app.record_employee_history();
create or replace trigger employee_history_on_update
    after update on app.employees
    referencing old table as old_rows new table as new_rows
    for each statement execute function app.record_employee_history();
create or replace trigger employee_history_on_delete
    after delete on app.employees
    referencing old table as old_rows
    for each statement execute function app.record_employee_history();

-- The instant a local day ends in the organisation's zone: the as-of instant of that day.
create or replace function app.end_of_local_day(p_org_id uuid, p_day date) returns timestamptz
language sql stable parallel safe
set search_path = ''
as $$
    select pg_catalog.timezone(app.org_timezone(p_org_id), (p_day operator(pg_catalog.+) 1)::timestamp)
$$;
comment on function app.end_of_local_day(uuid, date) is
    'The instant the organisation''s local day ends (the next day''s local midnight): the as-of instant of that day.';
grant execute on function app.end_of_local_day(uuid, date) to authenticated, sync_worker, web_app;

-- Every assignment of an organisation (or of one employee) as it stood at the end of local day p_day (THE AS-OF RULE
-- above), with its employee's department, location and status of that moment. state: completed,
-- exempted, overdue or open. p_overdue_only: only the counted assignments overdue that day, read
-- through the index of the versions that can be overdue (api.overdue_as_of). The caller is
-- checked (own organisation; employees their own).
drop function if exists app.assignments_as_of(uuid, date, uuid);
create or replace function app.assignments_as_of(p_org_id uuid, p_day date, p_employee_id uuid default null,
                                                 p_overdue_only boolean default false)
returns table (assignment_id uuid, employee_id uuid, module_id uuid, department_id uuid,
               location_id uuid, due_date date, grace_days integer, required boolean, counts boolean, state text,
               days_overdue integer, completion_date timestamptz, recorded_later boolean,
               corrected_later boolean)
language plpgsql stable security definer
set search_path = ''
set jit = off
as $$
begin
    -- Security definer: with row-level security the range test (not leakproof) could not use the
    -- index of the versions that can be overdue, and every version of the organisation would be
    -- read. The caller's
    -- rights are checked here instead, null-safely: a signed-in user reads only their own
    -- organisation, and an employee only their own assignments.
    if app.current_user_id() is not null
       and (p_org_id is distinct from app.current_org_id()
            or (app.current_app_role() is distinct from 'superadmin'
                and app.current_app_role() is distinct from 'hr_admin'
                and app.current_app_role() is distinct from 'manager'
                and app.current_app_role() is distinct from 'viewer'
                and p_employee_id is distinct from app.current_employee_id())) then
        raise exception 'you may not read the history of organisation % or employee %', p_org_id,
                        coalesce(p_employee_id::text, '(all)')
            using errcode = '42501',
                  detail = 'Staff read their own organisation''s history; an employee only their own.',
                  hint = 'Ask for your own organisation (or, as an employee, your own record).';
    end if;
    -- JIT off (the SET clause): compiling these plans costs more than running them.
    -- Planned for this organisation, day and instant (EXECUTE with literals): a generic plan
    -- cannot know how many versions are valid at the instant, and a wrong guess (a nested loop
    -- over the employee versions) costs minutes instead of a second.
    return query execute pg_catalog.format($q$
        with v as (
            select h.*, e.department_id, e.location_id, e.status as employee_status,
                   case when a.id is null then
                            case when h.status = 'completed' then h.completion_date end
                        when a.status = 'completed' then a.completion_date
                   end as known_completion
            from app.assignment_history h
            join app.employee_history e
              on e.org_id = h.org_id and e.employee_id = h.employee_id and e.valid @> %3$L::timestamptz
            -- the current row of a superseded version, looked up by key (OFFSET 0: one index
            -- probe per version, never a scan of every assignment of the organisation); a
            -- current version is the current row, and a deleted assignment has none: for both
            -- the version's own completion is the one known now
            left join lateral (
                select a.id, a.status, a.completion_date
                from app.training_assignments a
                where a.org_id = h.org_id and a.id = h.assignment_id
                  and not pg_catalog.upper_inf(h.valid)
                offset 0
            ) a on true
            where h.org_id = %1$L::uuid and h.valid @> %3$L::timestamptz
              and e.org_id = %1$L::uuid %4$s
        ),
        s as (
            select v.*,
                   app.as_of_state(v.known_completion, %3$L::timestamptz, %2$L::date, v.status,
                                   v.due_date, v.grace_days) as day_state
            from v
        )
        select s.assignment_id, s.employee_id, s.module_id, s.department_id, s.location_id, s.due_date,
               s.grace_days, s.is_required, app.counts_toward_compliance(s.is_required, s.employee_status),
               s.day_state,
               case when s.day_state = 'overdue' then app.days_overdue(s.due_date, %2$L::date) end,
               case when s.day_state = 'completed' then s.known_completion end,
               s.day_state = 'completed' and s.status is distinct from 'completed',
               s.status = 'completed' and s.completion_date is distinct from s.known_completion
        from s %5$s$q$,
        p_org_id, p_day, app.end_of_local_day(p_org_id, p_day),
        case when p_employee_id is not null
             then pg_catalog.format('and h.employee_id = %L::uuid and e.employee_id = %L::uuid',
                                    p_employee_id, p_employee_id)
             else '' end
        -- The predicate of the index assignment_history_may_be_overdue (migration 0021), word
        -- for word, so that the planner reads only those versions.
        || case when p_overdue_only
                then pg_catalog.format(
                    $w$ and h.is_required and h.due_date + h.grace_days < %L::date
                        and (h.status not in ('completed', 'exempted')
                             or (h.status = 'completed' and not pg_catalog.upper_inf(h.valid)))$w$, p_day)
                else '' end,
        case when p_overdue_only
             then 'where s.day_state = ''overdue'' and app.counts_toward_compliance(s.is_required, s.employee_status)'
             else '' end);
end
$$;
comment on function app.assignments_as_of(uuid, date, uuid, boolean) is
    'Every assignment of an organisation (or one employee) at the end of a local day (or only the counted overdue ones): the version valid then, its employee''s department, location and status then, the completion known now judged by its time (flagged recorded/corrected later). Checks the caller: own organisation; employees their own.';
grant execute on function app.assignments_as_of(uuid, date, uuid, boolean) to authenticated, sync_worker;

-- The figures of a past day in the shape of app.compliance_snapshots: one org-wide row
-- (department and location null) and one row per department × location group with active
-- employees or counted assignments (employees with neither are in the org-wide row only).
create or replace function app.compliance_groups_as_of(p_org_id uuid, p_day date)
returns table (department_id uuid, location_id uuid, active_employees bigint, required bigint,
               completed bigint, overdue bigint, exempted bigint, completed_recorded_later bigint,
               corrected_later bigint)
language sql stable
set search_path = ''
set jit = off
as $$
    with facts as (
        select f.department_id, f.location_id, grouping(f.department_id, f.location_id) as g,
               pg_catalog.count(*) as required,
               pg_catalog.count(*) filter (where f.state = 'completed') as completed,
               pg_catalog.count(*) filter (where f.state = 'overdue') as overdue,
               pg_catalog.count(*) filter (where f.state = 'exempted') as exempted,
               pg_catalog.count(*) filter (where f.recorded_later) as recorded_later,
               pg_catalog.count(*) filter (where f.corrected_later) as corrected_later
        from app.assignments_as_of(p_org_id, p_day) f
        where f.counts
        group by grouping sets ((f.department_id, f.location_id), ())
    ),
    heads as (
        select e.department_id, e.location_id, grouping(e.department_id, e.location_id) as g,
               pg_catalog.count(*) as active_employees
        from app.employee_history e
        where e.org_id = p_org_id and e.valid @> app.end_of_local_day(p_org_id, p_day)
          and e.status = 'active'
        group by grouping sets ((e.department_id, e.location_id), ())
    ),
    rows as (
        select f.department_id, f.location_id, f.g, 0::bigint as active_employees, f.required,
               f.completed, f.overdue, f.exempted, f.recorded_later, f.corrected_later
        from facts f
        union all
        select h.department_id, h.location_id, h.g, h.active_employees, 0, 0, 0, 0, 0, 0
        from heads h
        union all
        select null, null, 3, 0, 0, 0, 0, 0, 0, 0
    )
    select case when r.g = 0 then r.department_id end, case when r.g = 0 then r.location_id end,
           pg_catalog.sum(r.active_employees)::bigint, pg_catalog.sum(r.required)::bigint,
           pg_catalog.sum(r.completed)::bigint, pg_catalog.sum(r.overdue)::bigint,
           pg_catalog.sum(r.exempted)::bigint, pg_catalog.sum(r.recorded_later)::bigint,
           pg_catalog.sum(r.corrected_later)::bigint
    from rows r
    where r.g <> 0 or r.department_id is not null or r.location_id is not null
    group by r.g = 0, case when r.g = 0 then r.department_id end, case when r.g = 0 then r.location_id end
$$;
comment on function app.compliance_groups_as_of(uuid, date) is
    'The compliance figures at the end of a local day, from the history: the org-wide row and the department × location groups (the snapshot shape).';
grant execute on function app.compliance_groups_as_of(uuid, date) to authenticated, sync_worker;

-- The figures of a day as group rows in the snapshot shape, from one source: 'snapshot' (the
-- cache), 'history' (computed) or 'live' (the counters and head counts of now).
create or replace function app.compliance_groups(p_org_id uuid, p_day date, p_source text)
returns table (department_id uuid, location_id uuid, active_employees bigint, required bigint,
               completed bigint, overdue bigint, exempted bigint, completed_recorded_later bigint,
               corrected_later bigint)
language sql stable
set search_path = ''
as $$
    select s.department_id, s.location_id, s.active_employees::bigint,
           s.required_assignments::bigint, s.completed_assignments::bigint,
           s.overdue_assignments::bigint, s.exempted_assignments::bigint,
           s.completed_recorded_later::bigint, s.corrected_later::bigint
    from app.compliance_snapshots s
    where p_source = 'snapshot' and s.org_id = p_org_id and s.snapshot_date = p_day
    union all
    select g.*
    from app.compliance_groups_as_of(p_org_id, p_day) g
    where p_source = 'history'
    union all
    select case when x.g = 0 then x.department_id end, case when x.g = 0 then x.location_id end,
           pg_catalog.sum(x.active_employees)::bigint, pg_catalog.sum(x.required)::bigint,
           pg_catalog.sum(x.completed)::bigint, pg_catalog.sum(x.overdue)::bigint,
           pg_catalog.sum(x.exempted)::bigint, 0::bigint, 0::bigint
    from (
        select c.department_id, c.location_id, grouping(c.department_id, c.location_id) as g,
               0::bigint as active_employees, pg_catalog.sum(c.required_count)::bigint as required,
               pg_catalog.sum(c.completed_count)::bigint as completed,
               pg_catalog.sum(c.overdue_count)::bigint as overdue,
               pg_catalog.sum(c.exempted_count)::bigint as exempted
        from app.compliance_counters c
        where p_source = 'live' and c.org_id = p_org_id
        group by grouping sets ((c.department_id, c.location_id), ())
        union all
        select h.department_id, h.location_id, grouping(h.department_id, h.location_id),
               pg_catalog.sum(h.active_employees)::bigint, 0, 0, 0, 0
        from app.compliance_headcounts h
        where p_source = 'live' and h.org_id = p_org_id
        group by grouping sets ((h.department_id, h.location_id), ())
        union all
        select null, null, 3, 0, 0, 0, 0, 0 where p_source = 'live'
    ) x
    where p_source = 'live' and (x.g <> 0 or x.department_id is not null or x.location_id is not null)
    group by x.g = 0, case when x.g = 0 then x.department_id end, case when x.g = 0 then x.location_id end
    having not (x.g = 0) or pg_catalog.sum(x.required) <> 0 or pg_catalog.sum(x.active_employees) <> 0
$$;
comment on function app.compliance_groups(uuid, date, text) is
    'The compliance figures of a day as the org-wide row and department × location group rows, from the cache (''snapshot''), the history (''history'') or the live counters (''live'').';
grant execute on function app.compliance_groups(uuid, date, text) to authenticated;

