-- Evidence an inspector accepts (docs/web.md "Training record and course roster"):
-- api.training_record(employee_id), an employee's transcript (every assignment cycle ever, the
-- requirements with their reviews, the tier history, who generated it and the audit chain's head
-- to verify it against), and api.course_roster(module_id), a module's sessions with who attended
-- and who did not, its content summary and its trainer (the OSHA 1910.1030(h)(2) record).
--
-- Both are SECURITY DEFINER endpoints that check the caller's right themselves: a transcript names
-- the people who exempted, corrected and reviewed, whom an employee may not read through
-- row-level security (app_users: "self"). They read only the caller's organisation: an id of
-- another organisation is unknown (PT404), never a refusal that would confirm it exists.
-- Instants are written as the export dialect writes them (app.local_iso: the organisation's local
-- time, 'YYYY-MM-DDTHH:MM:SS'), with the zone named once (time_zone); days as 'YYYY-MM-DD'.

-- A login as a person: {name, role}; null for none (a sync, a job). Only for the definer
-- endpoints below, which have checked the caller's right to the record first.
create or replace function app.person_of(p_org_id uuid, p_user_id uuid) returns jsonb
language sql stable
set search_path = ''
as $$
    select pg_catalog.jsonb_build_object('name', u.display_name, 'role', u.app_role)
    from app.app_users u
    where u.org_id = p_org_id and u.id = p_user_id
$$;
comment on function app.person_of(uuid, uuid) is
    'A login of the organisation as {name, role} (null when unknown).';
revoke execute on function app.person_of(uuid, uuid) from public;

-- The head of the organisation's sealed audit chain as it stands (read-only: no sealing), what
-- audit.verify_chain(org, seq, hash, p_written_at => written_at) later proves intact.
create or replace function app.chain_head_of(p_org_id uuid, p_timezone text) returns jsonb
language sql stable
set search_path = ''
as $$
    select pg_catalog.jsonb_build_object(
               'organization_id', p_org_id,
               'chain_seq', h.seq,
               'chain_hash', pg_catalog.encode(h.hash, 'hex'),
               'sealed_at', app.local_iso(h.sealed_at, p_timezone),
               'written_at', app.local_iso(h.written_at, p_timezone),
               'written_at_utc', pg_catalog.to_char(h.written_at at time zone 'UTC',
                                                    'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
               'verify', pg_catalog.format(
                   'select * from audit.verify_chain(%L, %s, %L%s)', p_org_id, h.seq,
                   pg_catalog.encode(h.hash, 'hex'),
                   case when h.written_at is not null
                        then pg_catalog.format(', p_written_at => %L',
                                               pg_catalog.to_char(h.written_at at time zone 'UTC',
                                                   'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
                        else '' end))
    from (
        select c.seq, c.hash, c.sealed_at,
               (select l.occurred_at from audit.log l
                where l.org_id = p_org_id and l.id = c.log_id) as written_at
        from audit.chain c
        where c.org_id = p_org_id
        order by c.seq desc
        limit 1
    ) h
    union all
    select pg_catalog.jsonb_build_object(
               'organization_id', p_org_id, 'chain_seq', s.seq,
               'chain_hash', pg_catalog.encode(s.hash, 'hex'), 'sealed_at', null,
               'written_at', null, 'written_at_utc', null,
               'verify', pg_catalog.format('select * from audit.verify_chain(%L, %s, %L)',
                                           p_org_id, s.seq, pg_catalog.encode(s.hash, 'hex')))
    from audit.chain_start(p_org_id) s
    where not exists (select from audit.chain c where c.org_id = p_org_id)
    limit 1
$$;
comment on function app.chain_head_of(uuid, text) is
    'The newest sealed entry of an organisation''s audit chain (seq, hash, times) and the query that verifies it.';
revoke execute on function app.chain_head_of(uuid, text) from public;

-- "Generated at, by": the caller, now, in the organisation's time.
create or replace function app.generated_stamp(p_org_id uuid, p_timezone text) returns jsonb
language sql stable
set search_path = ''
as $$
    select pg_catalog.jsonb_build_object(
        'generated_at', app.local_iso(pg_catalog.now(), p_timezone),
        'generated_by', coalesce(app.person_of(p_org_id, app.current_user_id()),
                                 pg_catalog.jsonb_build_object('name', null, 'role', null)))
$$;
comment on function app.generated_stamp(uuid, text) is
    'generated_at (local time) and generated_by {name, role} of a record made now by the caller.';
revoke execute on function app.generated_stamp(uuid, text) from public;

-- The first checks of a record endpoint: its id given (22023 naming the argument), a signed-in
-- user (42501); answers the organisation's time zone.
create or replace function app.record_reader_zone(p_function text, p_argument text, p_id uuid)
returns text
language plpgsql stable
set search_path = ''
as $$
declare
    v_tz text;
begin
    if p_id is null then
        raise exception '% is required', p_argument
            using errcode = '22023',
                  hint = pg_catalog.format('Call /rpc/%s?%s=<id>.', p_function, p_argument);
    end if;
    select o.timezone into v_tz from app.organizations o where o.id = app.current_org_id();
    if v_tz is null then
        raise exception 'only a signed-in, active user can read %', p_function
            using errcode = '42501', detail = 'The request carries no active user.',
                  hint = 'Sign in again.';
    end if;
    return v_tz;
end
$$;
comment on function app.record_reader_zone(text, text, uuid) is
    'Checks a record endpoint''s id and caller; the time zone of the caller''s organisation.';
revoke execute on function app.record_reader_zone(text, text, uuid) from public;

-- The organisation as a record shows it: {id, name, timezone, paper_size} (paper_size, the paper
-- its PDFs are laid out for, is null where the setting does not exist).
create or replace function app.organization_of(p_org_id uuid) returns jsonb
language sql stable
set search_path = ''
as $$
    select pg_catalog.jsonb_build_object('id', o.id, 'name', o.name, 'timezone', o.timezone,
                                         'paper_size', pg_catalog.to_jsonb(o) ->> 'paper_size')
    from app.organizations o
    where o.id = p_org_id
$$;
comment on function app.organization_of(uuid) is
    'An organisation as records show it: {id, name, timezone, paper_size}.';
revoke execute on function app.organization_of(uuid) from public;

-- The transcript ------------------------------------------------------------------------------

create or replace function api.training_record(employee_id uuid) returns jsonb
language plpgsql stable security definer
set search_path = ''
as $$
declare
    v_org uuid := app.current_org_id();
    v_employee_id uuid := training_record.employee_id;
    v_tz text;
    v_today date;
    v_employee jsonb;
begin
    v_tz := app.record_reader_zone('training_record', 'employee_id', v_employee_id);
    v_today := app.today_in(v_tz);

    select pg_catalog.jsonb_build_object(
               'id', e.id, 'name', e.full_name, 'email', e.email, 'job_title', e.job_title,
               'department', d.name, 'location', l.name, 'hire_date', e.start_date,
               'status', e.status, 'tier', t.name)
    into v_employee
    from app.employees e
    left join app.departments d on d.org_id = e.org_id and d.id = e.department_id
    left join app.locations l on l.org_id = e.org_id and l.id = e.location_id
    left join app.employee_tiers et on et.org_id = e.org_id and et.employee_id = e.id
    left join app.compliance_tiers t on t.org_id = et.org_id and t.id = et.tier_id
    where e.org_id = v_org and e.id = v_employee_id;
    if v_employee is null then
        raise exception 'employee % not found', v_employee_id
            using errcode = 'PT404',
                  detail = pg_catalog.format('No employee with id %s in your organisation.',
                                             v_employee_id),
                  hint = 'Check the id.';
    end if;
    if not (app.is_own_employee(v_employee_id)
            or app.is_direct_report(v_employee_id)
            or app.current_role_in('superadmin', 'hr_admin', 'viewer')) then
        raise exception 'you may not read the training record of employee %', v_employee_id
            using errcode = '42501',
                  detail = 'An employee reads their own training record, a manager their direct '
                           'reports''; HR admins, superadmins and viewers anyone''s.',
                  hint = 'Ask an HR admin for this record.';
    end if;

    return pg_catalog.jsonb_build_object(
        'employee', v_employee,
        'organization', app.organization_of(v_org),
        'time_zone', v_tz,
        'today', v_today,
        'verification', app.chain_head_of(v_org, v_tz),
        'cycles', coalesce((
            select pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                       'assignment_id', a.id,
                       'module_id', m.id,
                       'module', m.name,
                       'month_key', m.month_key,
                       'assigned_at', app.local_iso(a.created_at, v_tz),
                       'due_date', a.due_date,
                       'status', a.status,
                       'required', a.is_required,
                       'not_required_reason', a.not_required_reason,
                       'required_until', app.local_iso(a.required_until, v_tz),
                       'completed_at', app.local_iso(a.completion_date, v_tz),
                       'score', a.score,
                       'attempts', a.attempts,
                       'late', a.is_late,
                       'days_late', case
                           when not pg_catalog.isfinite(a.due_date) then null
                           when a.status = 'completed' and a.is_late
                                and pg_catalog.isfinite(a.completion_date)
                               then app.days_overdue(a.due_date,
                                                     pg_catalog.timezone(v_tz, a.completion_date)::date)
                           when a.status = 'overdue' then app.days_overdue(a.due_date, v_today)
                       end,
                       'exemption', case when a.status = 'exempted' or a.exempted_at is not null then
                           pg_catalog.jsonb_build_object(
                               'reason', a.exemption_reason,
                               'by', app.person_of(v_org, a.exempted_by),
                               'at', app.local_iso(a.exempted_at, v_tz)) end,
                       'valid_until', case
                           when a.status = 'completed' and m.validity_days is not null
                                and pg_catalog.isfinite(a.completion_date)
                               then pg_catalog.timezone(v_tz, a.completion_date)::date
                                    + m.validity_days end,
                       'corrections', coalesce((
                           select pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                                      'at', app.local_iso(c.corrected_at, v_tz),
                                      'by', app.person_of(v_org, c.corrected_by),
                                      'kind', c.kind,
                                      'reason', c.reason,
                                      'before', pg_catalog.jsonb_build_object(
                                          'status', c.previous_status,
                                          'completed_at', app.local_iso(c.previous_completion_date, v_tz),
                                          'score', c.previous_score),
                                      'after', pg_catalog.jsonb_build_object(
                                          'attended', c.attended,
                                          'completed_at', app.local_iso(c.completion_date, v_tz),
                                          'score', c.score))
                                  order by c.corrected_at, c.id)
                           from app.completion_corrections c
                           where c.org_id = a.org_id and c.assignment_id = a.id), '[]'))
                   order by a.due_date, m.name, a.created_at, a.id)
            from app.training_assignments a
            join app.training_modules m on m.org_id = a.org_id and m.id = a.module_id
            where a.org_id = v_org and a.employee_id = v_employee_id), '[]'),
        'requirements', coalesce((
            select pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                       'id', er.id,
                       'requirement', r.name,
                       'type', r.type,
                       'tier', t.name,
                       'status', er.status,
                       'submitted_at', app.local_iso(er.submitted_at, v_tz),
                       'reviewed_at', app.local_iso(er.reviewed_at, v_tz),
                       'expires_at', app.local_iso(er.expires_at, v_tz),
                       'reviews', coalesce(
                           (select pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                                       'decision', l.details ->> 'decision',
                                       'by', app.person_of(v_org, l.actor_user_id),
                                       'at', app.local_iso(l.occurred_at, v_tz),
                                       'comments', l.details ->> 'comments')
                                   order by l.occurred_at, l.id)
                            from audit.log l
                            where l.org_id = v_org and l.employee_id = v_employee_id
                              and l.event_type = 'requirement_review'
                              and l.entity_id = er.id::text),
                           -- the trail's entries may be purged by retention: the record keeps
                           -- its last review
                           case when er.reviewed_at is not null then pg_catalog.jsonb_build_array(
                               pg_catalog.jsonb_build_object(
                                   'decision', er.status,
                                   'by', app.person_of(v_org, er.reviewed_by),
                                   'at', app.local_iso(er.reviewed_at, v_tz),
                                   'comments', er.review_comments)) end,
                           '[]'))
                   order by t.level, r.name, er.id)
            from app.employee_requirements er
            join app.compliance_requirements r on r.org_id = er.org_id and r.id = er.requirement_id
            join app.compliance_tiers t on t.org_id = r.org_id and t.id = r.tier_id
            where er.org_id = v_org and er.employee_id = v_employee_id), '[]'),
        'tier_history', coalesce((
            select pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                       'at', app.local_iso(h.changed_at, v_tz),
                       'from', ft.name,
                       'to', tt.name,
                       'kind', h.kind,
                       'reason', h.reason,
                       'by', app.person_of(v_org, h.changed_by))
                   order by h.changed_at, h.id)
            from app.employee_tier_history h
            join app.compliance_tiers tt on tt.org_id = h.org_id and tt.id = h.to_tier_id
            left join app.compliance_tiers ft on ft.org_id = h.org_id and ft.id = h.from_tier_id
            where h.org_id = v_org and h.employee_id = v_employee_id), '[]'))
        || app.generated_stamp(v_org, v_tz);
end
$$;
comment on function api.training_record(uuid) is
$$An employee's training record (transcript): every assignment cycle ever, requirements with their reviews, tier history.

Keys: employee {id, name, email, job_title, department, location, hire_date, status, tier};
organization {id, name, timezone, paper_size}; time_zone (every *_at below is local time in it,
YYYY-MM-DDTHH:MM:SS); today; generated_at; generated_by {name, role}; verification {chain_seq,
chain_hash, sealed_at, written_at, written_at_utc, verify}: the head of the audit chain when the
record was made, which audit.verify_chain proves intact later; cycles (every assignment,
including those not required, superseded or lapsed): assignment_id, module_id, module, month_key,
assigned_at, due_date, status, required, not_required_reason, required_until, completed_at, score,
attempts, late, days_late (completed late: local days from the due date to the completion; overdue:
to today), exemption {reason, by, at}, valid_until (modules with validity_days), corrections [{at,
by, kind, reason, before, after}]; requirements [{requirement, type, tier, status, submitted_at,
reviewed_at, expires_at, reviews [{decision, by, at, comments}]}]; tier_history [{at, from, to,
kind, reason, by}]. People are {name, role}.
The employee themself, their manager, HR admins, superadmins and viewers (403 otherwise); 404 for
an employee not in your organisation. Also /export/training-record/{employee}.pdf and .csv.$$;
revoke execute on function api.training_record(uuid) from public;
grant execute on function api.training_record(uuid) to authenticated;

-- The course roster ---------------------------------------------------------------------------

create or replace function api.course_roster(module_id uuid) returns jsonb
language plpgsql stable security definer
set search_path = ''
as $$
declare
    v_org uuid := app.current_org_id();
    v_module_id uuid := course_roster.module_id;
    v_tz text;
    v_module jsonb;
    v_reports uuid[];
    v_all boolean;
begin
    v_tz := app.record_reader_zone('course_roster', 'module_id', v_module_id);
    select pg_catalog.jsonb_build_object(
               'id', m.id, 'name', m.name, 'month_key', m.month_key, 'due_date', m.due_date,
               'description', m.description, 'content_summary', m.content_summary,
               'trainer', m.trainer, 'trainer_qualifications', m.trainer_qualifications,
               'validity_days', m.validity_days, 'passing_score', m.passing_score,
               'estimated_minutes', m.estimated_minutes, 'active', m.active)
    into v_module
    from app.training_modules m
    where m.org_id = v_org and m.id = v_module_id;
    if v_module is null then
        raise exception 'module % not found', v_module_id
            using errcode = 'PT404',
                  detail = pg_catalog.format('No training module with id %s in your organisation.',
                                             v_module_id),
                  hint = 'Check the id (GET /training_modules).';
    end if;
    v_all := app.current_role_in('superadmin', 'hr_admin', 'viewer');
    if not v_all then
        if not app.current_role_in('manager') then
            raise exception 'you may not read course rosters'
                using errcode = '42501',
                      detail = 'HR admins, superadmins and viewers read a module''s roster; '
                               'managers the part of it about their direct reports.',
                      hint = 'Ask an HR admin for the roster.';
        end if;
        v_reports := app.direct_report_ids();
    end if;

    return pg_catalog.jsonb_build_object(
        'module', v_module,
        'organization', app.organization_of(v_org),
        'time_zone', v_tz,
        'scope', case when v_all then 'organization' else 'direct_reports' end,
        'verification', app.chain_head_of(v_org, v_tz),
        'sessions', coalesce((
            select pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                       'cycle', s.cycle,
                       'first_due_date', s.first_due,
                       'last_due_date', s.last_due,
                       'first_completed_on', s.first_done,
                       'last_completed_on', s.last_done,
                       'completed_count', s.completed_count,
                       'not_completed_count', s.open_count,
                       'completed', s.completed,
                       'not_completed', s.not_completed)
                   order by s.cycle)
            from (
                select r.cycle,
                       pg_catalog.min(r.due_date) as first_due,
                       pg_catalog.max(r.due_date) as last_due,
                       pg_catalog.min(r.done_on) as first_done,
                       pg_catalog.max(r.done_on) as last_done,
                       pg_catalog.count(*) filter (where r.attended) as completed_count,
                       pg_catalog.count(*) filter (where not r.attended) as open_count,
                       coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                                    'employee_id', r.employee_id, 'name', r.name,
                                    'job_title', r.job_title, 'department', r.department,
                                    'completed_at', app.local_iso(r.completion_date, v_tz),
                                    'score', r.score, 'late', r.is_late,
                                    'required', r.is_required, 'due_date', r.due_date)
                                order by r.completion_date, r.name, r.employee_id)
                                filter (where r.attended), '[]') as completed,
                       coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                                    'employee_id', r.employee_id, 'name', r.name,
                                    'job_title', r.job_title, 'department', r.department,
                                    'status', r.status, 'due_date', r.due_date,
                                    'exemption_reason', r.exemption_reason)
                                order by r.name, r.employee_id, r.due_date)
                                filter (where not r.attended), '[]') as not_completed
                from (
                    select a.employee_id, e.full_name as name, e.job_title, d.name as department,
                           a.due_date, a.status, a.completion_date, a.score, a.is_late,
                           a.is_required, a.exemption_reason,
                           a.status = 'completed' as attended,
                           case when pg_catalog.isfinite(a.completion_date)
                                then pg_catalog.timezone(v_tz, a.completion_date)::date end as done_on,
                           case when pg_catalog.isfinite(a.due_date)
                                then pg_catalog.to_char(a.due_date, 'YYYY-MM')
                                else a.due_date::text end as cycle
                    from app.training_assignments a
                    join app.employees e on e.org_id = a.org_id and e.id = a.employee_id
                    left join app.departments d on d.org_id = e.org_id and d.id = e.department_id
                    where a.org_id = v_org and a.module_id = v_module_id
                      and (v_all or a.employee_id = any (v_reports))
                      -- who did not attend: the assignments that counted (required), open or
                      -- exempted; a result counts as attendance whether it was required or not
                      and (a.status = 'completed' or a.is_required)
                ) r
                group by r.cycle
            ) s), '[]'))
        || app.generated_stamp(v_org, v_tz);
end
$$;
comment on function api.course_roster(uuid) is
$$A module's course roster: its content summary and trainer, and per session who attended and who did not.

Keys: module {id, name, month_key, due_date, description, content_summary, trainer,
trainer_qualifications, validity_days, passing_score, estimated_minutes, active}; organization
{id, name, timezone, paper_size}; time_zone (every *_at is local time in it, YYYY-MM-DDTHH:MM:SS); scope
(organization | direct_reports); generated_at; generated_by {name, role}; verification (the head
of the audit chain, as api.training_record); sessions, one per cycle (the month of the due date,
YYYY-MM), in order: cycle, first_due_date, last_due_date, first_completed_on, last_completed_on,
completed_count, not_completed_count, completed [{employee_id, name, job_title, department,
completed_at, score, late, required, due_date}] in completion order, not_completed (required
assignments open or exempted) [{employee_id, name, job_title, department, status, due_date,
exemption_reason}].
HR admins, superadmins and viewers read the whole roster, managers the rows of their direct
reports (403 for employees); 404 for a module not in your organisation. Also
/export/roster/{module}.pdf and .csv.$$;
revoke execute on function api.course_roster(uuid) from public;
grant execute on function api.course_roster(uuid) to authenticated;
