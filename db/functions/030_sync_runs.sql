-- Whether a sync run is still open (started or in progress): staging accepts rows only for those.
create or replace function sync.run_is_open(p_org_id uuid, p_run_id uuid) returns boolean
language sql stable security definer
set search_path = ''
as $$
    select exists (
        select from app.sync_runs r
        where r.org_id = p_org_id and r.id = p_run_id and r.status in ('started', 'in_progress'))
$$;
comment on function sync.run_is_open(uuid, uuid) is 'Whether the sync run exists and has not finished.';
grant usage on schema sync to sync_worker;
grant execute on function sync.run_is_open(uuid, uuid) to sync_worker;
