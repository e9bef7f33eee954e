-- Corrections of completions, as a completion editor does them (DESIGN §5 "History";
-- docs/engine.md "Corrections"). Table: migration 0015_history (app.completion_corrections).
--
-- api.record_completion: HR records a completion with its real time (an in-person session last
-- Tuesday): back-dated, never in the future, never before the assignment existed, always with a
-- reason. api.correct_completion: HR corrects a recorded completion (its time, its score, or that
-- the person did not attend: the completion is withdrawn and the assignment is open again, overdue
-- if past due + grace), always with a reason. Each writes one app.completion_corrections row (who,
-- when, why, before and after) in the same transaction as the change; the assignment's history
-- keeps every version (the original too), and the as-of figures of the days it touches change
-- with it, flagged "corrected later" (252_history.sql). api.completion_corrections is the
-- training record's list of them.

-- Whether a correction of this transaction withdraws the assignment's completion (the status
-- machine lets such a correction take a completed assignment back to open; nothing else can).
create or replace function app.completion_withdrawn_now(p_org_id uuid, p_assignment_id uuid)
returns boolean
language sql stable security definer
set search_path = ''
as $$
    select exists (
        select from app.completion_corrections c
        where c.org_id = p_org_id and c.assignment_id = p_assignment_id and not c.attended
          and c.corrected_at = pg_catalog.now())
$$;
comment on function app.completion_withdrawn_now(uuid, uuid) is
    'Whether api.correct_completion withdrew this assignment''s completion in the current transaction.';

-- The checks both functions share: HR admins and superadmins only; a reason; a completion time
-- not in the future and not before the assignment existed; a score 0–100 and at least the
-- module's passing score. Returns the assignment, locked.
create or replace function app.completion_correction_target(
    p_assignment_id uuid, p_reason text, p_at timestamptz, p_score numeric, p_what text
) returns app.training_assignments
language plpgsql volatile security definer
set search_path = ''
as $$
declare
    v_row app.training_assignments;
    v_passing numeric;
    v_zone text;
begin
    if not app.current_role_in('superadmin', 'hr_admin') then
        perform app.fail('42501', pg_catalog.format('only HR admins and superadmins may %s', p_what),
            pg_catalog.format('Your role is %s.', coalesce(app.current_app_role()::text, 'none')),
            'Ask an HR admin.');
    end if;
    if nullif(pg_catalog.btrim(p_reason), '') is null then
        perform app.fail('22023', pg_catalog.format('a reason is required to %s', p_what),
            pg_catalog.format('Assignment %s; the reason was empty.', p_assignment_id),
            'Say why (e.g. "in-person session, sign-in sheet of 3 March").');
    end if;
    if p_score is not null and (p_score < 0 or p_score > 100) then
        perform app.fail('22023', pg_catalog.format('score must be between 0 and 100, not %s', p_score),
            pg_catalog.format('Assignment %s, score %s.', p_assignment_id, p_score),
            'Send the percentage score, or leave it out.');
    end if;
    v_row := app.assignment_for_write(p_assignment_id, 'complete');
    if not app.admin_may_act_on(v_row.org_id, v_row.employee_id) then
        perform app.refuse_self_evidence(pg_catalog.format('%s of your own assignment %s', p_what,
                                                           p_assignment_id));
    end if;
    v_zone := app.org_timezone(v_row.org_id);
    if p_at is not null and p_at > pg_catalog.now() then
        perform app.fail('22023', pg_catalog.format('completed_at %s is in the future', p_at),
            pg_catalog.format('Assignment %s: completed_at %s (%s), now %s.', p_assignment_id,
                              pg_catalog.timezone(v_zone, p_at), v_zone, pg_catalog.timezone(v_zone, pg_catalog.now())),
            'Send when the training actually took place.');
    end if;
    if p_at is not null then
        perform app.refuse_completion_before_assignment(v_row, p_at);
    end if;
    if p_score is not null then
        select m.passing_score into v_passing
        from app.training_modules m where m.org_id = v_row.org_id and m.id = v_row.module_id;
        if p_score < v_passing then
            perform app.fail('22023',
                pg_catalog.format('score %s is below the passing score %s', p_score, v_passing),
                pg_catalog.format('Assignment %s: a completion needs at least %s.', p_assignment_id, v_passing),
                'Record a failed attempt with /rpc/record_assignment_result, or withdraw the completion (attended false).');
        end if;
    end if;
    return v_row;
end
$$;
comment on function app.completion_correction_target(uuid, text, timestamptz, numeric, text) is
    'The checks of api.record_completion and api.correct_completion; returns the assignment, locked.';

create or replace function api.record_completion(
    assignment_id uuid, completed_at app.completion_time, reason app.reason, score numeric default null
) returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
    v_id uuid := record_completion.assignment_id;
    v_at timestamptz := record_completion.completed_at;
    v_score numeric := record_completion.score;
    v_row app.training_assignments;
    v_correction uuid;
begin
    if v_at is null then
        perform app.fail('22023', 'completed_at is required',
            pg_catalog.format('Assignment %s.', v_id), 'Send when the training took place.');
    end if;
    v_row := app.completion_correction_target(v_id, record_completion.reason, v_at, v_score,
                                              'record a completion');
    if v_row.status in ('completed', 'exempted') then
        perform app.fail('PT409', pg_catalog.format('assignment %s is already %s', v_id, v_row.status),
            pg_catalog.format('Assignment %s is %s (completion %s).', v_id, v_row.status,
                              coalesce(v_row.completion_date::text, 'none')),
            case when v_row.status = 'completed' then 'Correct it with /rpc/correct_completion.'
                 else 'Un-exempt it first (/rpc/unexempt_assignment).' end);
    end if;
    insert into app.completion_corrections (org_id, assignment_id, employee_id, kind, previous_status,
                                            previous_completion_date, previous_score, attended,
                                            completion_date, score, reason, corrected_by)
    values (v_row.org_id, v_id, v_row.employee_id, 'recorded', v_row.status, v_row.completion_date,
            v_row.score, true, v_at, v_score, pg_catalog.btrim(record_completion.reason), app.current_user_id())
    returning id into v_correction;
    update app.training_assignments a
    set status = 'completed', completion_date = v_at, score = coalesce(v_score, a.score)
    where a.org_id = v_row.org_id and a.id = v_id
    returning * into v_row;
    return app.assignment_json(v_row) || pg_catalog.jsonb_build_object('correction_id', v_correction);
end
$$;
comment on function api.record_completion(uuid, app.completion_time, app.reason, numeric) is
$$Records a completion with its real time and a reason (HR admins, superadmins).

For training done outside the system (an in-person session last Tuesday): completed_at is when it
took place, never in the future and never before the assignment existed; score is optional (at
least the module's passing score when given). Late or not follows from completed_at. The figures
of past days count it from that time on, flagged as recorded later; the training record
(/completion_corrections) shows who recorded it and why. 400 for a missing reason or a bad time or
score, 403 for other roles, 404 for an unknown assignment, 409 when it is already completed or
exempted. Returns the assignment and correction_id.$$;
grant execute on function api.record_completion(uuid, app.completion_time, app.reason, numeric) to authenticated;

create or replace function api.correct_completion(
    assignment_id uuid, reason app.reason, completed_at app.completion_time default null,
    score numeric default null,
    attended boolean default true
) returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
    v_id uuid := correct_completion.assignment_id;
    v_attended boolean := coalesce(correct_completion.attended, true);
    v_row app.training_assignments;
    v_at timestamptz;
    v_score numeric;
    v_correction uuid;
begin
    if not v_attended and (correct_completion.completed_at is not null or correct_completion.score is not null) then
        perform app.fail('22023', 'a withdrawn completion takes no completed_at or score',
            pg_catalog.format('Assignment %s: attended false with completed_at %s, score %s.', v_id,
                              coalesce(correct_completion.completed_at::text, 'none'),
                              coalesce(correct_completion.score::text, 'none')),
            'Send attended false alone to withdraw the completion, or attended true with the corrected values.');
    end if;
    v_row := app.completion_correction_target(v_id, correct_completion.reason, correct_completion.completed_at,
                                              correct_completion.score, 'correct a completion');
    if v_row.status <> 'completed' then
        perform app.fail('PT409', pg_catalog.format('assignment %s is not completed', v_id),
            pg_catalog.format('Assignment %s is %s; there is no completion to correct.', v_id, v_row.status),
            'Record it with /rpc/record_completion.');
    end if;
    v_at := case when v_attended then coalesce(correct_completion.completed_at, v_row.completion_date) end;
    v_score := case when v_attended then coalesce(correct_completion.score, v_row.score) end;
    if v_attended and v_at = v_row.completion_date and v_score is not distinct from v_row.score then
        perform app.fail('22023', pg_catalog.format('nothing to correct on assignment %s', v_id),
            pg_catalog.format('It was completed at %s with score %s; the correction says the same.', v_row.completion_date,
                              coalesce(v_row.score::text, 'none')),
            'Send the corrected completed_at or score, or attended false to withdraw the completion.');
    end if;
    insert into app.completion_corrections (org_id, assignment_id, employee_id, kind, previous_status,
                                            previous_completion_date, previous_score, attended,
                                            completion_date, score, reason, corrected_by)
    values (v_row.org_id, v_id, v_row.employee_id, 'corrected', v_row.status, v_row.completion_date,
            v_row.score, v_attended, v_at, v_score, pg_catalog.btrim(correct_completion.reason),
            app.current_user_id())
    returning id into v_correction;
    if v_attended then
        update app.training_assignments a
        set completion_date = v_at, score = v_score
        where a.org_id = v_row.org_id and a.id = v_id
        returning * into v_row;
    else
        update app.training_assignments a
        set status = 'not_started', completion_date = null, score = null
        where a.org_id = v_row.org_id and a.id = v_id
        returning * into v_row;
    end if;
    return app.assignment_json(v_row) || pg_catalog.jsonb_build_object('correction_id', v_correction);
end
$$;
comment on function api.correct_completion(uuid, app.reason, app.completion_time, numeric, boolean) is
$$Corrects a recorded completion, with a reason (HR admins, superadmins).

Change its time (completed_at: never in the future, never before the assignment existed), its
score (at least the module's passing score), or withdraw it (attended false: the person did not
attend; the assignment is open again, overdue when past its due date + grace). The original stays
in the assignment's history; the training record (/completion_corrections) shows the correction,
who made it and why; the figures of the past days it touches change, flagged corrected later.
400 for a missing reason, a bad time or score, or nothing to correct; 403 for other roles; 404 for
an unknown assignment; 409 when the assignment is not completed. Returns the assignment and
correction_id.$$;
grant execute on function api.correct_completion(uuid, app.reason, app.completion_time, numeric, boolean) to authenticated;

create view api.completion_corrections with (security_invoker = true) as
    select c.org_id, c.id, c.assignment_id, c.employee_id, e.full_name as employee, a.module_id,
           m.name as module, c.kind, c.attended, c.previous_status, c.previous_completion_date,
           c.previous_score, c.completion_date, c.score, c.reason, c.corrected_by,
           u.display_name as corrected_by_name, c.corrected_at
    from app.completion_corrections c
    join app.training_assignments a on a.org_id = c.org_id and a.id = c.assignment_id
    join app.employees e on e.org_id = c.org_id and e.id = c.employee_id
    join app.training_modules m on m.org_id = a.org_id and m.id = a.module_id
    left join app.app_users u on u.org_id = c.org_id and u.id = c.corrected_by;
comment on view api.completion_corrections is
$$The training record's corrections: completions recorded with their real time, or corrected.

One row per correction: kind (recorded | corrected), attended (false: the completion was
withdrawn), the completion before (previous_status, previous_completion_date, previous_score)
and after (completion_date, score), the reason, who (corrected_by, corrected_by_name) and when
(corrected_at). HR admins, superadmins, managers and viewers read the organisation's; an
employee their own. Written by /rpc/record_completion and /rpc/correct_completion.$$;
grant select on api.completion_corrections to authenticated;
