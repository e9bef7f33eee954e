-- Sync staging: the sync worker loads raw pages for runs that are still open, and nothing else.
grant usage on schema sync to sync_worker;
grant select, insert, delete on sync.staged_records to sync_worker;

drop policy if exists "sync workers stage records of open runs" on sync.staged_records;
create policy "sync workers stage records of open runs" on sync.staged_records
    for insert to sync_worker
    with check (sync.run_is_open(org_id, run_id));

drop policy if exists "sync workers read staged records of open runs" on sync.staged_records;
create policy "sync workers read staged records of open runs" on sync.staged_records
    for select to sync_worker
    using (sync.run_is_open(org_id, run_id));

drop policy if exists "sync workers clear staged records of open runs" on sync.staged_records;
create policy "sync workers clear staged records of open runs" on sync.staged_records
    for delete to sync_worker
    using (sync.run_is_open(org_id, run_id));
