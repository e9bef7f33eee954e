-- The compliance engine, part 3b: the PostgREST functions that change assignments. They check the
-- caller's right (DESIGN §6), then write the row; the status machine itself is the trigger's
-- (120_assignment_rules.sql), the same for every writer.
--
-- Who may record progress or completion on an assignment:
--   superadmin, hr_admin: any assignment of the organisation (their own: see below);
--   manager: their direct reports' (none without a linked employee record);
--   every role but viewer, with a linked employee record: their own, but not completion or a
--   score unless the organisation enables employee_self_report;
--   viewer: none (a read-only role, even with an employee record).
-- Exempt / un-exempt: hr_admin and superadmin only.
--
-- Evidence about oneself needs another person (HIPAA), as no one reviews their own submission:
-- an HR admin's or superadmin's powers over evidence (exempting, un-exempting, recording
-- results, inactivating or reopening requirement records, switching a tier by hand) do not
-- reach their own employee record unless the organisation enables hr_self_evidence. On their
-- own record they act as an employee.

-- The assignment as the api shows it.
create or replace function app.assignment_json(p_row app.training_assignments) returns jsonb
language sql stable
as $$
    select pg_catalog.to_jsonb(p_row) operator(pg_catalog.-) 'classroom_submission'
           operator(pg_catalog.-) 'sync_errors'
$$;

-- Whether the organisation lets HR admins and superadmins act on their own evidence.
create or replace function app.hr_self_evidence(p_org_id uuid) returns boolean
language sql stable
set search_path = ''
as $$
    select coalesce((select o.hr_self_evidence from app.organizations o where o.id = p_org_id), false)
$$;
comment on function app.hr_self_evidence(uuid) is
    'Whether the organisation enables hr_self_evidence (false when it does not, or is unknown).';

-- Whether the signed-in HR admin or superadmin may use their powers over evidence on this
-- employee's records: always on others', on their own only when the organisation enables
-- hr_self_evidence. False for every other role.
create or replace function app.admin_may_act_on(p_org_id uuid, p_employee_id uuid) returns boolean
language sql stable
as $$
    select app.current_role_in('superadmin', 'hr_admin')
           and (not app.is_own_employee(p_employee_id) or app.hr_self_evidence(p_org_id))
$$;
comment on function app.admin_may_act_on(uuid, uuid) is
    'Whether the caller is an HR admin or superadmin who may act on this employee''s evidence (own only with hr_self_evidence).';

-- The refusal of an HR admin or superadmin acting on their own evidence.
create or replace function app.refuse_self_evidence(p_action text) returns void
language plpgsql volatile
set search_path = ''
as $$
begin
    perform app.fail('42501',
        pg_catalog.format('you may not %s: evidence about yourself needs another person', p_action),
        'The record is your own, and your organisation does not let HR admins and superadmins act on '
        'their own evidence (hr_self_evidence is off).',
        'Ask another HR admin or a superadmin to do it; a superadmin may enable hr_self_evidence '
        'on /organizations.');
end
$$;

-- Find an assignment of the caller's organisation that the caller may change, locked.
-- p_action: 'progress' (status other than completed), 'complete' (completion or a score),
-- 'exempt' (exempt or un-exempt; the callers have checked the role).
create or replace function app.assignment_for_write(p_assignment_id uuid, p_action text)
returns app.training_assignments
language plpgsql volatile security definer
set search_path = ''
as $$
declare
    v_role app.app_role := app.current_app_role();
    v_row app.training_assignments;
    v_own boolean;
    v_self_report boolean;
begin
    select * into v_row from app.training_assignments a
    where a.org_id = app.current_org_id() and a.id = p_assignment_id
    for update;
    v_own := app.is_own_employee(v_row.employee_id);
    if v_row.id is null or (v_role = 'employee' and not v_own) then
        perform app.fail('PT404', pg_catalog.format('assignment %s not found', p_assignment_id),
            pg_catalog.format('No assignment with id %s that you may read.', p_assignment_id),
            'Check the id; list assignments at /training_assignments.');
    end if;
    if app.admin_may_act_on(v_row.org_id, v_row.employee_id) then
        return v_row;
    end if;
    if p_action = 'exempt' and v_own then
        perform app.refuse_self_evidence(
            pg_catalog.format('exempt or un-exempt your own assignment %s', p_assignment_id));
    end if;
    if p_action <> 'exempt' and app.is_direct_report(v_row.employee_id) then
        return v_row;
    end if;
    if p_action <> 'exempt' and v_own and v_role is distinct from 'viewer' then
        if p_action = 'complete' then
            select o.employee_self_report into v_self_report
            from app.organizations o where o.id = v_row.org_id;
            if v_self_report is distinct from true and app.current_role_in('superadmin', 'hr_admin') then
                perform app.refuse_self_evidence(pg_catalog.format(
                    'record the completion or score of your own assignment %s', p_assignment_id));
            end if;
            if v_self_report is distinct from true then
                perform app.fail('42501',
                    pg_catalog.format('you may not record the completion or score of your own assignment %s',
                                      p_assignment_id),
                    'Your organisation does not allow employees to self-report results (employee_self_report is off).',
                    'Complete the course in Google Classroom, or ask your manager or HR to record it.');
            end if;
        end if;
        return v_row;
    end if;
    perform app.fail('42501',
        pg_catalog.format('you may not change assignment %s', p_assignment_id),
        pg_catalog.format('Your role is %s%s; the assignment belongs to employee %s, who is %s.',
                          coalesce(v_role::text, 'none'),
                          case when app.current_employee_id() is null
                               then ' with no linked employee record' else '' end,
                          v_row.employee_id,
                          case when v_own then 'you' else 'not your direct report' end),
        case when v_role = 'viewer' then 'Viewers only read; ask the employee''s manager or HR.'
             else 'Managers change their direct reports'' assignments; HR admins anyone''s.' end);
    return null;
end
$$;

-- A completion belongs to the assignment only from when it existed: its first recorded version
-- (its creation, for rows older than the history). Earlier is refused (22023): it belongs to an
-- earlier cycle.
create or replace function app.refuse_completion_before_assignment(
    p_row app.training_assignments, p_at timestamptz
) returns void
language plpgsql stable
set search_path = ''
as $$
declare
    v_zone text := app.org_timezone(p_row.org_id);
    v_since timestamptz;
begin
    select least(p_row.created_at, pg_catalog.min(pg_catalog.lower(h.valid))) into v_since
    from app.assignment_history h
    where h.org_id = p_row.org_id and h.employee_id = p_row.employee_id and h.assignment_id = p_row.id;
    if p_at < v_since then
        perform app.fail('22023',
            pg_catalog.format('completed_at %s is before assignment %s existed', p_at, p_row.id),
            pg_catalog.format('The assignment was created at %s (%s); completed_at was %s.',
                              pg_catalog.timezone(v_zone, v_since), v_zone,
                              pg_catalog.timezone(v_zone, p_at)),
            'A completion before the assignment belongs to an earlier cycle; record it there.');
    end if;
end
$$;
comment on function app.refuse_completion_before_assignment(app.training_assignments, timestamptz) is
    'Refuses (22023) a completion time before the assignment existed (its first recorded version).';

-- The assignment's minutes after adding one call's (app.minutes_spent: 0 to 1,440), refused
-- with a message when the total would pass its ceiling (the constraint
-- training_assignments_minutes_spent_at_most_1000000, db/migrations/0011_argument_ranges.sql).
create or replace function app.minutes_after(p_row app.training_assignments, p_minutes integer)
returns integer
language plpgsql stable
set search_path = ''
as $$
declare
    v_total bigint := p_row.minutes_spent::bigint + coalesce(p_minutes, 0);
begin
    if v_total > 1000000 then
        perform app.fail('22023',
            pg_catalog.format('minutes_spent %s would bring assignment %s to %s minutes; at most 1,000,000 in total',
                              app.thousands(p_minutes), p_row.id, app.thousands(v_total)),
            pg_catalog.format('Assignment %s has %s minutes recorded.', p_row.id,
                              app.thousands(p_row.minutes_spent)),
            'Send only the minutes of this session; the total is kept by the database.');
    end if;
    return v_total;
end
$$;
revoke execute on function app.minutes_after(app.training_assignments, integer) from public;

create or replace function api.update_assignment_status(
    assignment_id uuid, status app.status_name, minutes_spent app.minutes_spent default null
) returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
    v_id uuid := update_assignment_status.assignment_id;
    v_status_text text := pg_catalog.lower(pg_catalog.btrim(update_assignment_status.status));
    v_minutes integer := update_assignment_status.minutes_spent;
    v_status app.assignment_status;
    v_row app.training_assignments;
begin
    if v_status_text is null or v_status_text not in ('not_started', 'in_progress', 'completed') then
        perform app.fail('22023',
            pg_catalog.format('status %s cannot be set with update_assignment_status',
                              coalesce(pg_catalog.quote_literal(update_assignment_status.status), 'null')),
            'Accepted: not_started, in_progress, completed.',
            case when v_status_text = 'exempted' then 'Use /rpc/exempt_assignment (HR admins).'
                 when v_status_text = 'overdue' then 'The database marks assignments overdue itself.'
                 else 'Send one of the accepted statuses.' end);
    end if;
    v_status := v_status_text::app.assignment_status;
    v_row := app.assignment_for_write(v_id, case when v_status = 'completed' then 'complete' else 'progress' end);
    update app.training_assignments a
    set status = v_status,
        minutes_spent = app.minutes_after(v_row, v_minutes)
    where a.org_id = v_row.org_id and a.id = v_id
    returning * into v_row;
    return app.assignment_json(v_row);
end
$$;
comment on function api.update_assignment_status(uuid, app.status_name, app.minutes_spent) is
$$Moves an assignment to not_started, in_progress or completed, optionally adding minutes spent.

The database's status machine decides the resulting status: past due + grace makes it overdue,
completed is final, a completion is late when its local date (organisation's zone) is after due
date + grace (days_late says by how many days). Refused transitions answer 409 with the
assignment, from and to. Rights: HR admins and superadmins any assignment, managers their direct
reports', everyone but a viewer their own (completion only when the organisation enables
employee_self_report, or for HR admins on their own record hr_self_evidence): 403 otherwise;
404 for an assignment you cannot read; 400 for another status (exempted: use
/rpc/exempt_assignment; overdue is set by the database). Returns the assignment.$$;
grant execute on function api.update_assignment_status(uuid, app.status_name, app.minutes_spent) to authenticated;

create or replace function api.record_assignment_result(
    assignment_id uuid, score numeric, completed_at app.completion_time default null,
    minutes_spent app.minutes_spent default null
) returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
    v_id uuid := record_assignment_result.assignment_id;
    v_score numeric := record_assignment_result.score;
    v_at timestamptz := coalesce(record_assignment_result.completed_at, pg_catalog.now());
    v_minutes integer := record_assignment_result.minutes_spent;
    v_row app.training_assignments;
    v_module app.training_modules;
begin
    if v_score is null or v_score < 0 or v_score > 100 then
        perform app.fail('22023',
            pg_catalog.format('score must be between 0 and 100, not %s', coalesce(v_score::text, 'null')),
            pg_catalog.format('Assignment %s, score %s.', v_id, coalesce(v_score::text, 'null')),
            'Send the percentage score of the attempt.');
    end if;
    if v_at > pg_catalog.now() + interval '5 minutes' then
        perform app.fail('22023', pg_catalog.format('completed_at %s is in the future', v_at),
            pg_catalog.format('Assignment %s, completed_at %s, now %s.', v_id, v_at, pg_catalog.now()),
            'Send the time the attempt was finished.');
    end if;
    v_row := app.assignment_for_write(v_id, 'complete');
    perform app.refuse_completion_before_assignment(v_row, v_at);
    if v_row.status = 'completed' then
        perform app.fail('PT409', pg_catalog.format('assignment %s is already completed', v_id),
            pg_catalog.format('Assignment %s was completed on %s with score %s.', v_id,
                              v_row.completion_date, coalesce(v_row.score::text, 'none')),
            'Nothing to record: a completed assignment is final.');
    end if;
    update app.training_assignments a
    set score = v_score,
        completion_date = v_at,
        minutes_spent = app.minutes_after(v_row, v_minutes)
    where a.org_id = v_row.org_id and a.id = v_id
    returning * into v_row;
    select * into v_module from app.training_modules m
    where m.org_id = v_row.org_id and m.id = v_row.module_id;
    return app.assignment_json(v_row) || pg_catalog.jsonb_build_object(
        'passed', v_row.status = 'completed',
        'passing_score', v_module.passing_score,
        'attempts_left', greatest(v_module.max_attempts - v_row.attempts, 0));
end
$$;
comment on function api.record_assignment_result(uuid, numeric, app.completion_time, app.minutes_spent) is
$$Records the result of an attempt: score (0-100), when it was finished, minutes spent.

A score at or above the module's passing score completes the assignment (late when completed_at,
in the organisation's zone, falls after due date + grace, even if it was marked overdue before);
a lower one counts an attempt and leaves it in progress (or overdue). Attempts beyond the module's
max_attempts are refused (409), as is a result for a completed or exempted assignment. Rights as for
/rpc/update_assignment_status; a result on your own assignment only when the organisation enables
employee_self_report (or, for HR admins and superadmins, hr_self_evidence): 403 otherwise. Returns the assignment with passed, passing_score and attempts_left.$$;
grant execute on function api.record_assignment_result(uuid, numeric, app.completion_time, app.minutes_spent) to authenticated;

create or replace function api.exempt_assignment(assignment_id uuid, reason app.reason) returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
    v_id uuid := exempt_assignment.assignment_id;
    v_reason text := nullif(pg_catalog.btrim(exempt_assignment.reason), '');
    v_row app.training_assignments;
begin
    if not app.current_role_in('superadmin', 'hr_admin') then
        perform app.fail('42501', pg_catalog.format('only HR admins and superadmins may exempt assignment %s', v_id),
            pg_catalog.format('Your role is %s.', coalesce(app.current_app_role()::text, 'none')),
            'Ask an HR admin.');
    end if;
    if v_reason is null then
        perform app.fail('22023', pg_catalog.format('exempting assignment %s needs a reason', v_id),
            'The reason was empty.', 'Say why the employee is exempt.');
    end if;
    v_row := app.assignment_for_write(v_id, 'exempt');
    if v_row.status = 'exempted' then
        perform app.fail('PT409', pg_catalog.format('assignment %s is already exempted', v_id),
            pg_catalog.format('Assignment %s was exempted on %s: %s', v_id, v_row.exempted_at,
                              v_row.exemption_reason),
            'Nothing to do.');
    end if;
    update app.training_assignments a
    set status = 'exempted', exemption_reason = v_reason
    where a.org_id = v_row.org_id and a.id = v_id
    returning * into v_row;
    perform audit.record_event(v_row.org_id, 'assignment_exempted', v_row.employee_id,
        'training_assignments', v_id::text, pg_catalog.jsonb_build_object('reason', v_reason));
    return app.assignment_json(v_row);
end
$$;
comment on function api.exempt_assignment(uuid, app.reason) is
$$Exempts an assignment, with a reason (HR admins and superadmins; 403 otherwise).

Not your own assignment (403: evidence about yourself needs another person) unless the
organisation enables hr_self_evidence. An exempted assignment counts neither as done nor as missing in the compliance rate. 409 when it is
completed or already exempted; 400 without a reason; 404 for an unknown assignment.$$;
grant execute on function api.exempt_assignment(uuid, app.reason) to authenticated;

create or replace function api.unexempt_assignment(assignment_id uuid, reason app.reason) returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
    v_id uuid := unexempt_assignment.assignment_id;
    v_reason text := nullif(pg_catalog.btrim(unexempt_assignment.reason), '');
    v_row app.training_assignments;
    v_previous text;
begin
    if not app.current_role_in('superadmin', 'hr_admin') then
        perform app.fail('42501', pg_catalog.format('only HR admins and superadmins may un-exempt assignment %s', v_id),
            pg_catalog.format('Your role is %s.', coalesce(app.current_app_role()::text, 'none')),
            'Ask an HR admin.');
    end if;
    if v_reason is null then
        perform app.fail('22023', pg_catalog.format('un-exempting assignment %s needs a reason', v_id),
            'The reason was empty.', 'Say why the exemption ends.');
    end if;
    v_row := app.assignment_for_write(v_id, 'exempt');
    if v_row.status <> 'exempted' then
        perform app.fail('PT409', pg_catalog.format('assignment %s is not exempted', v_id),
            pg_catalog.format('Assignment %s is %s.', v_id, v_row.status),
            'Only an exempted assignment can be un-exempted.');
    end if;
    v_previous := v_row.exemption_reason;
    update app.training_assignments a
    set status = 'not_started'
    where a.org_id = v_row.org_id and a.id = v_id
    returning * into v_row;
    perform audit.record_event(v_row.org_id, 'assignment_unexempted', v_row.employee_id,
        'training_assignments', v_id::text,
        pg_catalog.jsonb_build_object('reason', v_reason, 'exemption_reason', v_previous,
                                      'status', v_row.status));
    return app.assignment_json(v_row);
end
$$;
comment on function api.unexempt_assignment(uuid, app.reason) is
$$Ends an exemption, with a reason (HR admins and superadmins; 403 otherwise).

Not on your own assignment unless the organisation enables hr_self_evidence (403). The assignment goes back to not_started (overdue at once when its due date and grace have passed).
409 when it is not exempted; 400 without a reason; 404 for an unknown assignment.$$;
grant execute on function api.unexempt_assignment(uuid, app.reason) to authenticated;
