-- The assignment exception report (Totara's program exception report is the model): what the
-- rules could not honour or a person must decide. The rules raise cases with
-- app.raise_assignment_exception (idempotent per open subject); staff read them through
-- api.assignment_exceptions and close them with api.resolve_assignment_exception.
--
-- Kinds (app.exception_kind):
--   overdue_on_arrival     an import or catalog change would have made an assignment overdue the
--                          day it was created; the rules gave it a later due date instead
--   duplicate_person       two records of the HR roster look like one person
--   unknown_module_result  a result for course work that is no training module
--   unmatched_student      a result for a student who matches no employee
--   regrade_below_passing  a teacher lowered a completed result below the passing score
--   grade_removed          a teacher removed the grade of a completed result

-- Raise (or refresh) an open case. A case already open for the same kind and subject is kept and
-- its details, message and last_seen_at refreshed, so a rule that runs every sync raises it once.
create or replace function app.raise_assignment_exception(
    p_org_id uuid, p_kind app.exception_kind, p_subject_key text, p_rule text, p_message text,
    p_resolution_hint text, p_employee_id uuid default null, p_module_id uuid default null,
    p_assignment_id uuid default null, p_details jsonb default '{}'
) returns uuid
language plpgsql volatile security definer
set search_path = ''
as $$
declare
    v_id uuid;
begin
    insert into app.assignment_exceptions as x (org_id, kind, subject_key, rule, message,
                                                resolution_hint, employee_id, module_id,
                                                assignment_id, details)
    values (p_org_id, p_kind, p_subject_key, p_rule, p_message, p_resolution_hint, p_employee_id,
            p_module_id, p_assignment_id, coalesce(p_details, '{}'))
    on conflict (org_id, kind, subject_key) where resolved_at is null do update
        set message = excluded.message, details = excluded.details,
            resolution_hint = excluded.resolution_hint, last_seen_at = pg_catalog.now()
        where (x.message, x.details, x.resolution_hint)
              is distinct from (excluded.message, excluded.details, excluded.resolution_hint)
    returning x.id into v_id;
    if v_id is null then
        select x.id into v_id from app.assignment_exceptions x
        where x.org_id = p_org_id and x.kind = p_kind and x.subject_key = p_subject_key
          and x.resolved_at is null;
    else
        perform app.emit_event(p_org_id, 'exception.raised', 'assignment_exception', v_id::text,
                               p_employee_id, pg_catalog.jsonb_build_object('kind', p_kind));
    end if;
    return v_id;
end
$$;
comment on function app.raise_assignment_exception(uuid, app.exception_kind, text, text, text, text, uuid, uuid, uuid, jsonb) is
    'Raises an open exception case for a person to decide (one open case per kind and subject).';

-- Close the open case of a subject when the rule sees its cause gone (a regrade back above the
-- passing score, a student matched after all). Returns whether one was closed.
create or replace function app.close_assignment_exception(
    p_org_id uuid, p_kind app.exception_kind, p_subject_key text, p_resolution text
) returns boolean
language plpgsql volatile security definer
set search_path = ''
as $$
begin
    update app.assignment_exceptions x
    set resolved_at = pg_catalog.now(), resolution = p_resolution
    where x.org_id = p_org_id and x.kind = p_kind and x.subject_key = p_subject_key
      and x.resolved_at is null;
    return found;
end
$$;
comment on function app.close_assignment_exception(uuid, app.exception_kind, text, text) is
    'Closes the open case of a subject whose cause the rules saw disappear.';

create or replace function api.resolve_assignment_exception(exception_id uuid, resolution text)
returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
declare
    v_org uuid := app.current_org_id();
    v_case app.assignment_exceptions;
    v_resolution text := nullif(pg_catalog.btrim(resolution), '');
begin
    if not coalesce(app.current_role_in('superadmin', 'hr_admin'), false) then
        perform app.fail('42501', 'only HR admins and superadmins resolve exception cases',
            pg_catalog.format('Your role is %s.', coalesce(app.current_app_role()::text, 'none')),
            'Ask an HR admin to decide the case.');
    end if;
    if v_resolution is null then
        perform app.fail('22023', 'resolving an exception case needs a resolution note',
            'The resolution was empty.', 'Say what was decided and done, e.g. "exempted: on leave".');
    end if;
    if pg_catalog.length(v_resolution) > 2000 then
        perform app.fail('22023', 'the resolution note is too long',
            pg_catalog.format('The resolution has %s characters; at most 2000 are kept.',
                              pg_catalog.length(v_resolution)),
            'Shorten the note; attach long documents as requirement evidence.');
    end if;
    select * into v_case from app.assignment_exceptions x
    where x.org_id = v_org and x.id = exception_id
    for update;
    if not found then
        perform app.fail('PT404', pg_catalog.format('exception case %s does not exist', exception_id),
            'No case with that id exists in your organisation.', 'List them with /assignment_exceptions.');
    end if;
    if v_case.resolved_at is not null then
        perform app.fail('PT409', pg_catalog.format('exception case %s is already resolved', exception_id),
            pg_catalog.format('It was resolved at %s: %s', v_case.resolved_at, v_case.resolution),
            'Nothing to do.');
    end if;
    update app.assignment_exceptions x
    set resolved_at = pg_catalog.now(), resolved_by = app.current_user_id(), resolution = v_resolution
    where x.org_id = v_org and x.id = exception_id;
    perform audit.record_event(v_org, 'exception_resolved', v_case.employee_id,
                               'assignment_exceptions', exception_id::text,
                               pg_catalog.jsonb_build_object('kind', v_case.kind,
                                                             'resolution', v_resolution));
    perform app.emit_event(v_org, 'exception.resolved', 'assignment_exception', exception_id::text,
                           v_case.employee_id, pg_catalog.jsonb_build_object('kind', v_case.kind));
    return pg_catalog.jsonb_build_object('id', exception_id, 'kind', v_case.kind,
                                         'resolved', true, 'resolution', v_resolution);
end
$$;
comment on function api.resolve_assignment_exception(uuid, text) is
$$Closes an exception case with a note saying what was decided (HR admins, superadmins).

The case stays in the report as resolved, with who resolved it and when; audited as
exception_resolved. Errors: 42501 (role), 22023 (empty or over-long note), PT404, PT409 (already resolved).$$;
revoke execute on function api.resolve_assignment_exception(uuid, text) from public;
grant execute on function api.resolve_assignment_exception(uuid, text) to authenticated;
