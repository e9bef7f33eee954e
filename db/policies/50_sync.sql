-- Sync staging: the sync worker appends raw records for runs that are still open, and nothing
-- else. It neither reads nor deletes them (the sync.apply_* merges and sync.finish_run do, as
-- SECURITY DEFINER functions). The check reads the open runs once per statement (a hashed
-- subplan), so staging a page of a thousand records costs one look-up, not a thousand.
grant usage on schema sync to sync_worker;
revoke all on sync.staged_records from sync_worker;
grant insert on sync.staged_records to sync_worker;

drop policy if exists "sync workers stage records of open runs" on sync.staged_records;
create policy "sync workers stage records of open runs" on sync.staged_records
    for insert to sync_worker
    with check ((org_id, run_id) in (select o.org_id, o.run_id from sync.open_runs() o));

drop policy if exists "sync workers read staged records of open runs" on sync.staged_records;
drop policy if exists "sync workers clear staged records of open runs" on sync.staged_records;
-- (and their helper: the insert policy reads sync.open_runs() once per statement)
drop function if exists sync.run_is_open(uuid, uuid);

-- The ledger of scheduled jobs is written by sync.run_scheduled_jobs only: no policy, no grant.
revoke all on sync.job_runs from sync_worker;

-- The ledger of each organisation's daily jobs is written by sync.run_daily_jobs_due only: no
-- policy, no grant (the sync schema is no API).
revoke all on sync.daily_job_runs from sync_worker;
