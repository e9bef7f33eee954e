-- What the sync could not honour goes to the exception report (180_assignment_exceptions.sql):
-- duplicate people in the HR roster, results for course work that is no module, Classroom
-- students who match no employee. The merges raise these cases set-based, one call per case, and
-- close them themselves when they see the cause gone (the record fixed upstream, the module or the
-- employee linked).
--
-- A case a PERSON resolved is a decision ("two different people", "not one of our staff", "not a
-- training"): the sync does not raise the same subject again while that decision stands, so a
-- sync every night does not undo it. A case the rules closed themselves (the cause went away)
-- opens again when the cause comes back. The run still names the record in its warnings.
--
-- Subjects (app.assignment_exceptions.subject_key):
--   duplicate_person       zenefits:<lower id>+<higher id>    (the two Zenefits person ids)
--   unknown_module_result  classroom:submission:<submission id>
--   unmatched_student      classroom:student:<Classroom user id>

-- Raise (or refresh) a sync case, unless a person decided that subject already. Returns the
-- open case's id, or null when a person's decision stands.
create or replace function app.raise_sync_exception(
    p_org_id uuid, p_kind app.exception_kind, p_subject_key text, p_rule text, p_message text,
    p_resolution_hint text, p_employee_id uuid default null, p_module_id uuid default null,
    p_assignment_id uuid default null, p_details jsonb default '{}'
) returns uuid
language plpgsql volatile security definer
set search_path = ''
as $$
begin
    if exists (select from app.assignment_exceptions x
               where x.org_id = p_org_id and x.kind = p_kind and x.subject_key = p_subject_key
                 and x.resolved_at is not null and x.resolved_by is not null) then
        return null;
    end if;
    return app.raise_assignment_exception(p_org_id, p_kind, p_subject_key, p_rule, p_message,
                                          p_resolution_hint, p_employee_id, p_module_id,
                                          p_assignment_id, p_details);
end
$$;
comment on function app.raise_sync_exception(uuid, app.exception_kind, text, text, text, text, uuid, uuid, uuid, jsonb) is
    'Raises a sync exception case unless a person already resolved that subject (their decision stands).';
revoke execute on function app.raise_sync_exception(uuid, app.exception_kind, text, text, text, text, uuid, uuid, uuid, jsonb) from public;

-- The subject of a duplicate-person case: the two Zenefits ids, lower first.
create or replace function app.duplicate_person_subject(p_zid_a text, p_zid_b text) returns text
language sql immutable parallel safe
set search_path = ''
as $$
    select 'zenefits:' || least(p_zid_a, p_zid_b) || '+' || greatest(p_zid_a, p_zid_b)
$$;
comment on function app.duplicate_person_subject(text, text) is
    'The subject key of a duplicate-person case: both Zenefits person ids, the lower first.';
