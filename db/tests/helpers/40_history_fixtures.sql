-- History fixtures: a test runs in one transaction, so every version it writes is recorded at the
-- same instant (now()). tests.history_at moves what this transaction recorded for an organisation
-- to an earlier instant, so a test can lay down the history of several past days in order:
-- write day 1's changes, history_at(day 1), write day 2's, history_at(day 2), ...
create or replace function tests.history_at(p_org uuid, p_at timestamptz) returns void
language plpgsql
set search_path = ''
as $$
begin
    update app.assignment_history h
    set valid = tstzrange(case when lower(h.valid) = now() then p_at else lower(h.valid) end,
                          case when upper(h.valid) = now() then p_at else upper(h.valid) end)
    where h.org_id = p_org and (lower(h.valid) = now() or upper(h.valid) = now());
    update app.employee_history h
    set valid = tstzrange(case when lower(h.valid) = now() then p_at else lower(h.valid) end,
                          case when upper(h.valid) = now() then p_at else upper(h.valid) end)
    where h.org_id = p_org and (lower(h.valid) = now() or upper(h.valid) = now());
    update app.organizations o set created_at = least(o.created_at, p_at) where o.id = p_org;
end
$$;

-- Noon of a local day of the organisation (an instant well inside that day in any zone).
create or replace function tests.local_noon(p_org uuid, p_day date) returns timestamptz
language sql stable
set search_path = ''
as $$
    select pg_catalog.timezone(app.org_timezone(p_org), p_day + time '12:00')
$$;

grant execute on function tests.history_at(uuid, timestamptz), tests.local_noon(uuid, date) to public;
