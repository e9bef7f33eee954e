-- The compliance engine, part 3: the training status machine (DESIGN §5), in ONE place that every
-- writer of app.training_assignments goes through: the api functions, the sync merge, the jobs,
-- an operator. A BEFORE ROW trigger validates each row and derives its status; AFTER STATEMENT
-- triggers (transition tables, so bulk writes stay set-based) refresh stats, emit events and
-- approve training requirements.
--
-- Status derivation, whatever the writer sent:
--   * a new result (score set, or score/completion date changed) counts an attempt; beyond the
--     module's max_attempts it is refused (PT409). A writer that counts attempts itself (the
--     Classroom merge: the turn-ins of the submission history; a regrade is none) sets
--     app.attempts_counted_by_writer = 'on' for its transaction and writes attempts;
--   * score >= the MODULE's passing score with a completion date -> completed;
--     a lower new score -> in_progress (an attempt used);
--   * status completed without a score -> completed (completion date defaults to now());
--     status completed while the recorded score is below the passing score -> refused;
--   * not completed/exempted and due date + the row's grace_days before the organisation's
--     today (app.org_today) -> overdue;
--   * late = the completion's LOCAL date (organisation's zone) after due date + grace_days, and
--     days_late = the local days past it, whoever records it and whenever it arrives: overdue ->
--     completed with an on-time completion time is on time;
--   * exempted only with a reason and only by hr_admin/superadmin (app.may_exempt), and back to
--     not_started the same way (then overdue again if past due);
--   * transitions allowed: not_started -> in_progress | completed | overdue | exempted;
--     in_progress -> completed | overdue | exempted; overdue -> completed | exempted (and back to
--     not_started/in_progress only when its due date moves out of the past);
--     exempted -> not_started (| overdue); completed -> completed (a new passing score);
--     anything else is refused with PT409, DETAIL and HINT naming the assignment, from and to.
--
-- Transition tables are paired old-with-new by a FULL JOIN behind an OFFSET 0 fence (then unpacked
-- as n and o): a full join is hashed or merged, never nested-looped, whatever row count the cached
-- plan assumed for the transition tables (PostgreSQL takes it when the statement is first parsed
-- in a session, often from an empty or one-row statement).

create or replace function app.assignment_transition_refused(
    p_id uuid, p_from app.assignment_status, p_to app.assignment_status, p_why text default null,
    p_hint text default null
) returns void
language plpgsql volatile
set search_path = ''
as $$
begin
    raise exception using
        errcode = 'PT409',
        message = pg_catalog.format('assignment %s cannot move from %s to %s', p_id, p_from, p_to),
        detail = pg_catalog.format('Assignment %s is %s; the change asked for %s.%s', p_id, p_from,
                                   p_to, coalesce(' ' || p_why, '')),
        hint = coalesce(p_hint,
            'Allowed: not_started -> in_progress/completed/exempted, in_progress -> completed/exempted, '
            'overdue -> completed/exempted, exempted -> not_started (HR admins); completed is final.');
end
$$;

create or replace function app.training_assignment_rules() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
    -- The organisation's day (app.org_today, inlined: this runs for every written row): the
    -- pinned app.today of the transaction, else the local date now in the organisation's zone.
    v_today date := nullif(pg_catalog.current_setting('app.today', true), '')::date;
    v_tz text;
    v_insert boolean := tg_op = 'INSERT';
    v_old_status app.assignment_status;
    v_old_attempts integer;
    v_requested app.assignment_status := new.status;
    v_status app.assignment_status;
    v_attempt boolean;
    v_passing numeric;
    v_max_attempts integer;
    v_grace integer;
    v_past_due boolean;
begin
    -- The grace days that govern the assignment: given by the writer, else the department rule's
    -- for the employee's department, else the module's.
    if new.grace_days is null then
        new.grace_days := coalesce(
            (select r.grace_days
             from app.employees e
             join app.department_training_requirements r
               on r.org_id = e.org_id and r.department_id = e.department_id and r.module_id = new.module_id
             where e.org_id = new.org_id and e.id = new.employee_id),
            (select m.grace_period_days from app.training_modules m
             where m.org_id = new.org_id and m.id = new.module_id));
    end if;
    v_grace := coalesce(new.grace_days, 0);
    if v_today is null then
        select o.timezone into v_tz from app.organizations o where o.id = new.org_id;
        v_today := pg_catalog.timezone(v_tz, pg_catalog.now())::date;
    end if;

    if v_insert then
        v_old_status := 'not_started';
        v_old_attempts := 0;
        v_attempt := new.score is not null;
    else
        v_old_status := old.status;
        v_old_attempts := old.attempts;
        v_attempt := new.score is not null
                     and (new.score is distinct from old.score
                          or new.completion_date is distinct from old.completion_date);
    end if;

    -- A completion withdrawn by HR's correction (api.correct_completion, attended false): open
    -- again, overdue when past due + grace. Nothing else takes a completed assignment back.
    if not v_insert and v_old_status = 'completed' and new.completion_date is null
       and app.completion_withdrawn_now(new.org_id, new.id) then
        new.score := null;
        new.is_late := false;
        new.days_late := null;
        new.status := case when new.due_date + v_grace < v_today then 'overdue' else 'not_started' end;
        return new;
    end if;

    -- Exemption: only with a reason, only by HR admins / superadmins, only while not completed.
    if new.status = 'exempted' then
        if v_old_status = 'exempted' then
            if not v_insert and (new.score is distinct from old.score
                                 or new.completion_date is distinct from old.completion_date) then
                perform app.assignment_transition_refused(new.id, 'exempted', 'exempted',
                    'An exempted assignment takes no results.',
                    'Un-exempt it first (/rpc/unexempt_assignment), then record the result.');
            end if;
            return new;
        end if;
        if v_old_status = 'completed' then
            perform app.assignment_transition_refused(new.id, v_old_status, 'exempted',
                'A completed assignment needs no exemption.', 'Nothing to do: it already counts as completed.');
        end if;
        if not app.may_exempt() then
            perform app.fail('42501',
                pg_catalog.format('only HR admins and superadmins may exempt assignment %s', new.id),
                pg_catalog.format('The acting role is %s.', app.current_actor() ->> 'role'),
                'Ask an HR admin to exempt it (/rpc/exempt_assignment).');
        end if;
        if nullif(pg_catalog.btrim(new.exemption_reason), '') is null then
            perform app.fail('22023',
                pg_catalog.format('exempting assignment %s needs a reason', new.id),
                'The exemption reason is empty.', 'Say why the employee is exempt.');
        end if;
        new.exempted_by := app.current_user_id();
        new.exempted_at := pg_catalog.now();
        return new;
    end if;

    if v_old_status = 'exempted' then
        if new.status <> 'not_started' then
            perform app.assignment_transition_refused(new.id, 'exempted', new.status,
                'An exempted assignment can only go back to not_started.',
                'Un-exempt it first (/rpc/unexempt_assignment, HR admins).');
        end if;
        if not app.may_exempt() then
            perform app.fail('42501',
                pg_catalog.format('only HR admins and superadmins may un-exempt assignment %s', new.id),
                pg_catalog.format('The acting role is %s.', app.current_actor() ->> 'role'),
                'Ask an HR admin to un-exempt it (/rpc/unexempt_assignment).');
        end if;
        new.exemption_reason := null;
        new.exempted_by := null;
        new.exempted_at := null;
    end if;

    -- The module's rules, only when needed: a result to judge, a completion to flag late, or a due
    -- date in the past (grace is never negative, so a due date from today on is never overdue).
    if v_attempt or new.status = 'completed' or new.score is not null or new.due_date < v_today then
        select m.passing_score, m.max_attempts
        into v_passing, v_max_attempts
        from app.training_modules m
        where m.org_id = new.org_id and m.id = new.module_id;
        if not found then
            return new;  -- the foreign key refuses the row
        end if;
    end if;

    -- Attempts: a new result counts one, unless the writer counts them itself (the Classroom
    -- merge sets app.attempts_counted_by_writer for its transaction: an attempt is a turn-in,
    -- and a teacher's regrade of the same turn-in is none). Beyond max_attempts: refused.
    if v_attempt and v_old_status <> 'completed' then
        if pg_catalog.current_setting('app.attempts_counted_by_writer', true) = 'on' then
            if new.attempts > v_max_attempts then
                perform app.fail('PT409',
                    pg_catalog.format('assignment %s has %s turn-ins, more than the %s attempts allowed',
                                      new.id, new.attempts, v_max_attempts),
                    pg_catalog.format('Assignment %s: %s turn-ins recorded in Classroom, the module allows %s; the score was %s.',
                                      new.id, new.attempts, v_max_attempts, new.score),
                    'Ask an HR admin to exempt or re-assign the training, or raise the module''s max attempts.');
            end if;
        else
            if v_old_attempts >= v_max_attempts then
                perform app.fail('PT409',
                    pg_catalog.format('assignment %s has used all %s attempts', new.id, v_max_attempts),
                    pg_catalog.format('Assignment %s: %s attempts recorded, the module allows %s; the new score was %s.',
                                      new.id, v_old_attempts, v_max_attempts, new.score),
                    'Ask an HR admin to exempt or re-assign the training.');
            end if;
            new.attempts := v_old_attempts + 1;
        end if;
    end if;

    -- Nothing goes back to not_started but an exemption that ends (handled above).
    if v_requested = 'not_started' and v_old_status not in ('not_started', 'exempted') then
        perform app.assignment_transition_refused(new.id, v_old_status, 'not_started');
    end if;

    -- Derive the status.
    if new.score is not null and new.completion_date is not null and new.score >= v_passing then
        v_status := 'completed';
    elsif v_attempt then
        v_status := 'in_progress';                      -- a failed attempt
    elsif new.status = 'completed' then
        if new.score is not null and new.score < v_passing then
            perform app.fail('PT409',
                pg_catalog.format('assignment %s cannot be completed: its score %s is below the passing score %s',
                                  new.id, new.score, v_passing),
                pg_catalog.format('Assignment %s is %s with score %s; the module''s passing score is %s.',
                                  new.id, v_old_status, new.score, v_passing),
                'Record a passing result with /rpc/record_assignment_result.');
        end if;
        new.completion_date := coalesce(new.completion_date, pg_catalog.now());
        v_status := 'completed';
    elsif new.status = 'overdue' then
        v_status := case when v_old_status in ('not_started', 'in_progress', 'overdue')
                         then v_old_status else 'not_started' end;
    else
        v_status := new.status;
    end if;

    v_past_due := new.due_date + v_grace < v_today;
    if v_status in ('not_started', 'in_progress', 'overdue') then
        if v_past_due then
            v_status := 'overdue';
        elsif v_old_status = 'overdue' and not v_insert and new.due_date = old.due_date then
            v_status := 'overdue';                      -- marked by a job running for a later day
        elsif v_requested = 'overdue' then
            if v_old_status <> 'overdue' then
                perform app.fail('PT409',
                    pg_catalog.format('assignment %s is not overdue', new.id),
                    pg_catalog.format('Assignment %s is due %s with %s grace days; today is %s.',
                                      new.id, new.due_date, v_grace, v_today),
                    'The database marks assignments overdue itself.');
            end if;
            v_status := case when new.attempts > 0 or new.minutes_spent > 0
                             then 'in_progress' else 'not_started' end::app.assignment_status;  -- due date moved on
        end if;
    end if;

    -- The transitions.
    if v_status is distinct from v_old_status then
        if not (
            (v_old_status = 'not_started' and v_status in ('in_progress', 'completed', 'overdue'))
            or (v_old_status = 'in_progress' and v_status in ('completed', 'overdue'))
            or (v_old_status = 'overdue' and v_status = 'completed')
            or (v_old_status = 'overdue' and v_status in ('not_started', 'in_progress') and not v_past_due)
            or (v_old_status = 'exempted' and v_status in ('not_started', 'overdue'))
        ) then
            perform app.assignment_transition_refused(new.id, v_old_status, v_status,
                case when v_requested is distinct from v_status
                     then pg_catalog.format('(Asked for %s; the rules make it %s.)', v_requested, v_status) end);
        end if;
    elsif v_status = 'completed' and v_attempt and new.score < v_passing then
        perform app.assignment_transition_refused(new.id, 'completed', 'in_progress');
    end if;
    new.status := v_status;

    -- Lateness is a fact about the completion: its local date in the organisation's zone after
    -- the due date plus grace, whoever records it and whenever it arrives (an on-time result that
    -- arrives after the overdue marking is on time). days_late counts the local days past grace.
    if v_status = 'completed' then
        if v_tz is null then
            select o.timezone into v_tz from app.organizations o where o.id = new.org_id;
        end if;
        new.days_late := nullif(greatest(
            pg_catalog.timezone(v_tz, new.completion_date)::date - (new.due_date + v_grace), 0), 0);
        new.is_late := new.days_late is not null;
    else
        new.is_late := false;
        new.days_late := null;
    end if;
    return new;
end
$$;
comment on function app.training_assignment_rules() is
    'BEFORE ROW trigger of training_assignments: the training status machine (DESIGN §5).';

-- Only rows whose status inputs changed (or that may have fallen overdue) reach the rules: the
-- sync's bookkeeping updates (last_synced_at, sync_status) cost no plpgsql call. A new open
-- assignment with its grace given, no result, no exemption and a due date no zone has reached
-- yet (the reconciliation's, by the thousand) is already what the rules would make it.
create or replace trigger assignment_rules_on_insert
    before insert on app.training_assignments
    for each row
    when (new.grace_days is null
          or new.status <> 'not_started'
          or new.score is not null
          or new.completion_date is not null
          or new.exemption_reason is not null
          or new.is_late is distinct from false
          or new.days_late is not null
          or new.due_date < coalesce(nullif(pg_catalog.current_setting('app.today', true), '')::date,
                                     pg_catalog.timezone('Etc/GMT-14', pg_catalog.now())::date))
    execute function app.training_assignment_rules();

create or replace trigger assignment_rules_on_update
    before update on app.training_assignments
    for each row
    when (old.status is distinct from new.status
          or old.score is distinct from new.score
          or old.completion_date is distinct from new.completion_date
          or old.due_date is distinct from new.due_date
          or old.grace_days is distinct from new.grace_days
          or old.attempts is distinct from new.attempts
          or (new.status in ('not_started', 'in_progress')
              and new.due_date < coalesce(nullif(pg_catalog.current_setting('app.today', true), '')::date,
                                          -- the latest date anywhere (UTC+14): the rules judge
                                          -- the row in its organisation's zone
                                          pg_catalog.timezone('Etc/GMT-14', pg_catalog.now())::date)))
    execute function app.training_assignment_rules();

-- After a statement: events, training requirements approved, stats kept current.
--
-- Events: up to 100 changed rows, one assignment.updated per assignment (entity
-- training_assignment, its id, payload op/module_id/status/previous_status/score/is_late); a bulk
-- statement (a sync merge) emits one assignment.updated per employee instead (entity employee,
-- payload {op, bulk: true, count}), so the outbox grows with the people touched, not the rows.
-- Stats: the training figures change by the statement's deltas (commutative, so concurrent
-- writers never lose an update); a missing stats row is computed from scratch.
create or replace function app.training_assignments_changed() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
    v_n integer;
    v_changes app.assignment_change[];
    v_completed app.assignment_change[];
    v_stats_inputs boolean;
    v_orgs uuid[];
    v_emps uuid[];
begin
    -- The changed rows (old_status is null on insert, status is null on delete), whether any
    -- changes a stats input (status, is_required, employee), and the new completions.
    if tg_op = 'INSERT' then
        select pg_catalog.array_agg(row(n.org_id, n.id, n.employee_id, n.module_id, n.status, null,
                                        n.score, n.completion_date, n.is_late, null, 'insert',
                                        n.is_required, null)::app.assignment_change),
               pg_catalog.array_agg(row(n.org_id, n.id, n.employee_id, n.module_id, n.status, null,
                                        n.score, n.completion_date, n.is_late, null, 'insert',
                                        n.is_required, null)::app.assignment_change)
                   filter (where n.status = 'completed')
        into v_changes, v_completed
        from new_rows n;
        v_stats_inputs := v_changes is not null;
    elsif tg_op = 'UPDATE' then
        select pg_catalog.array_agg(row(n.org_id, n.id, n.employee_id, n.module_id, n.status,
                                        o.status, n.score, n.completion_date, n.is_late,
                                        o.employee_id, 'update', n.is_required,
                                        o.is_required)::app.assignment_change),
               pg_catalog.array_agg(row(n.org_id, n.id, n.employee_id, n.module_id, n.status,
                                        o.status, n.score, n.completion_date, n.is_late,
                                        o.employee_id, 'update', n.is_required,
                                        o.is_required)::app.assignment_change)
                   filter (where n.status = 'completed' and o.status <> 'completed'),
               coalesce(pg_catalog.bool_or(n.status <> o.status or n.is_required <> o.is_required
                                           or n.employee_id <> o.employee_id), false)
        into v_changes, v_completed, v_stats_inputs
        from (select n, o from new_rows n full join old_rows o on o.org_id = n.org_id and o.id = n.id offset 0) p
        cross join lateral (select (p.n).*) n cross join lateral (select (p.o).*) o
        where n.status is distinct from o.status
           or n.score is distinct from o.score
           or n.completion_date is distinct from o.completion_date
           or n.is_required is distinct from o.is_required
           or n.employee_id is distinct from o.employee_id
           or n.due_date is distinct from o.due_date
           or n.module_id is distinct from o.module_id
           or n.minutes_spent is distinct from o.minutes_spent;
    else
        select pg_catalog.array_agg(row(o.org_id, o.id, null, o.module_id, null, o.status, null,
                                        null, null, o.employee_id, 'delete', null,
                                        o.is_required)::app.assignment_change)
        into v_changes
        from old_rows o;
        v_stats_inputs := v_changes is not null;
    end if;
    if v_changes is null then
        return null;
    end if;

    -- Change events (ids NOTIFYed; payloads stay small).
    if pg_catalog.cardinality(v_changes) <= 100 then
        with ev as (
            insert into app.events (org_id, type, entity, entity_id, employee_id, payload)
            select c.org_id, 'assignment.updated', 'training_assignment', c.id::text,
                   coalesce(c.employee_id, c.old_employee_id),
                   pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
                       'op', c.op, 'module_id', c.module_id, 'status', c.status,
                       'previous_status', c.old_status, 'score', c.score, 'is_late', c.is_late))
            from unnest(v_changes) c
            order by c.org_id, c.id
            returning id
        )
        select pg_catalog.count(pg_catalog.pg_notify('compliance_events', ev.id::text)) into v_n from ev;
    else
        with ev as (
            insert into app.events (org_id, type, entity, entity_id, employee_id, payload)
            select c.org_id, 'assignment.updated', 'employee',
                   coalesce(c.employee_id, c.old_employee_id)::text,
                   coalesce(c.employee_id, c.old_employee_id),
                   pg_catalog.jsonb_build_object('op', pg_catalog.min(c.op), 'bulk', true,
                                                 'count', pg_catalog.count(*))
            from unnest(v_changes) c
            group by c.org_id, coalesce(c.employee_id, c.old_employee_id)
            order by c.org_id, coalesce(c.employee_id, c.old_employee_id)
            returning id
        )
        select pg_catalog.count(pg_catalog.pg_notify('compliance_events', ev.id::text)) into v_n from ev;
    end if;

    -- The training figures move by the statement's deltas (before the approvals below, whose
    -- own trigger recomputes the employee's stats from scratch, changes included).
    if v_stats_inputs and not app.stats_deferred() then   -- else the operation refreshes at its end
        if pg_catalog.cardinality(v_changes) > 1 then
            -- Lock the stats rows in key order first, so that concurrent bulk writers queue
            -- instead of deadlocking on them.
            perform 1
            from app.employee_compliance_stats s
            where (s.org_id, s.employee_id) in (
                select c.org_id, c.employee_id from unnest(v_changes) c
                union
                select c.org_id, c.old_employee_id from unnest(v_changes) c)
            order by s.org_id, s.employee_id
            for update;
        end if;
        with sides as (
            select c.org_id, c.employee_id, 1 as sign, c.is_required as req, c.status
            from unnest(v_changes) c where c.status is not null
            union all
            select c.org_id, c.old_employee_id, -1, c.old_is_required, c.old_status
            from unnest(v_changes) c where c.old_status is not null
        ),
        d as (
            select s.org_id, s.employee_id,
                   pg_catalog.sum(s.sign) filter (where s.req) as assigned,
                   pg_catalog.sum(s.sign) filter (where s.req and s.status = 'completed') as completed,
                   pg_catalog.sum(s.sign) filter (where s.req and s.status = 'overdue') as overdue,
                   pg_catalog.sum(s.sign) filter (where s.req and s.status = 'exempted') as exempted
            from sides s
            group by s.org_id, s.employee_id
        ),
        up as (
            update app.employee_compliance_stats s
            set training_assigned = s.training_assigned + coalesce(d.assigned, 0),
                training_completed = s.training_completed + coalesce(d.completed, 0),
                training_overdue = s.training_overdue + coalesce(d.overdue, 0),
                training_exempted = s.training_exempted + coalesce(d.exempted, 0),
                training_rate = app.compliance_rate_of(
                    s.training_completed + coalesce(d.completed, 0),
                    s.training_assigned + coalesce(d.assigned, 0),
                    s.training_exempted + coalesce(d.exempted, 0)),
                updated_at = pg_catalog.now()
            from d
            where s.org_id = d.org_id and s.employee_id = d.employee_id
              and (coalesce(d.assigned, 0), coalesce(d.completed, 0), coalesce(d.overdue, 0),
                   coalesce(d.exempted, 0)) <> (0, 0, 0, 0)
            returning s.org_id, s.employee_id, s.training_rate, s.completion_pct, s.earned_points,
                      s.training_overdue
        ),
        ev as (
            insert into app.events (org_id, type, entity, entity_id, employee_id, payload)
            select up.org_id, 'stats.updated', 'employee_compliance_stats', up.employee_id::text,
                   up.employee_id,
                   pg_catalog.jsonb_build_object('training_rate', up.training_rate,
                                                 'completion_pct', up.completion_pct,
                                                 'earned_points', up.earned_points,
                                                 'training_overdue', up.training_overdue)
            from up
            order by up.org_id, up.employee_id
            returning id
        )
        select pg_catalog.count(pg_catalog.pg_notify('compliance_events', ev.id::text)) into v_n from ev;

        -- Employees without a stats row yet get theirs computed from scratch.
        select pg_catalog.array_agg(k.org_id), pg_catalog.array_agg(k.employee_id)
        into v_orgs, v_emps
        from (select distinct c.org_id, coalesce(c.employee_id, c.old_employee_id) as employee_id
              from unnest(v_changes) c) k
        where not exists (select from app.employee_compliance_stats s
                          where s.org_id = k.org_id and s.employee_id = k.employee_id);
        perform app.refresh_stats(v_orgs, v_emps);
    end if;

    -- A completed training approves the employee's open requirement records linked to its module.
    if v_completed is not null then
        update app.employee_requirements er
        set status = 'approved',
            submitted_at = coalesce(er.submitted_at, c.completion_date),
            reviewed_at = c.completion_date,
            reviewed_by = null,
            review_comments = null,
            evidence = coalesce(er.evidence, '{}'::jsonb)
                       || pg_catalog.jsonb_build_object('assignment_id', c.id, 'score', c.score),
            expires_at = c.completion_date
                         + pg_catalog.make_interval(days => coalesce(cr.validity_days, m.validity_days))
        from unnest(v_completed) c
        join app.compliance_requirements cr
          on cr.org_id = c.org_id and cr.module_id = c.module_id and cr.type = 'training'
        join app.training_modules m on m.org_id = c.org_id and m.id = c.module_id
        where er.org_id = c.org_id and er.employee_id = c.employee_id and er.requirement_id = cr.id
          and er.status not in ('approved', 'inactive');
    end if;

    return null;
end
$$;
comment on function app.training_assignments_changed() is
    'AFTER STATEMENT trigger of training_assignments: events, training requirement approval, stats deltas.';

create or replace trigger assignments_changed_on_insert
    after insert on app.training_assignments
    referencing new table as new_rows
    for each statement execute function app.training_assignments_changed();

create or replace trigger assignments_changed_on_update
    after update on app.training_assignments
    referencing old table as old_rows new table as new_rows
    for each statement execute function app.training_assignments_changed();

create or replace trigger assignments_changed_on_delete
    after delete on app.training_assignments
    referencing old table as old_rows
    for each statement execute function app.training_assignments_changed();
