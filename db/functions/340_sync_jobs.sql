-- The scheduled SQL jobs (DESIGN §12), started by the sync workers' timer: app.run_daily_jobs(day),
-- app.run_weekly_jobs(day) (billing's usage snapshot) and app.run_monthly_jobs(day) (each
-- idempotent). sync.run_scheduled_jobs(day) runs
-- each job that exists at most once per day across all workers (ledger sync.job_runs), retrying a
-- failed one on a later call (up to three attempts a day, ten minutes apart). A job that raises is
-- rolled back alone and recorded with its error. Returns {daily: ..., weekly: ..., monthly: ...} saying for each
-- job: ran, failed: <error>, already ran, running elsewhere, or missing (not installed).

create or replace function sync.run_scheduled_jobs(p_day date) returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
declare
    v_job record;
    v_claimed boolean;
    v_result text;
    v_out jsonb := '{}';
begin
    if p_day is null then
        raise exception 'the day of the scheduled jobs is missing'
            using errcode = '22023', hint = 'Pass the date the jobs run for.';
    end if;
    for v_job in
        select * from (values ('daily', 'app.run_daily_jobs'), ('weekly', 'app.run_weekly_jobs'),
                              ('monthly', 'app.run_monthly_jobs')) j(job, fn)
    loop
        if pg_catalog.to_regprocedure(v_job.fn || '(date)') is null then
            v_out := v_out || pg_catalog.jsonb_build_object(v_job.job, 'missing');
            continue;
        end if;
        if not pg_catalog.pg_try_advisory_xact_lock(460048, pg_catalog.hashtext(v_job.job || ':' || p_day::text)) then
            v_out := v_out || pg_catalog.jsonb_build_object(v_job.job, 'running elsewhere');
            continue;
        end if;
        insert into sync.job_runs as j (job, day) values (v_job.job, p_day)
        on conflict (job, day) do update
            set attempts = j.attempts + 1, started_at = pg_catalog.now(), finished_at = null,
                ok = null, error = null, result = null
            where j.ok is false and j.attempts < 3 and j.started_at < pg_catalog.now() - interval '10 minutes'
        returning true into v_claimed;
        if not coalesce(v_claimed, false) then
            v_out := v_out || pg_catalog.jsonb_build_object(v_job.job, 'already ran');
            continue;
        end if;
        begin
            execute pg_catalog.format('select %s($1)::text', v_job.fn) using p_day into v_result;
            update sync.job_runs j
            set finished_at = pg_catalog.clock_timestamp(), ok = true,
                result = pg_catalog.to_jsonb(v_result)
            where j.job = v_job.job and j.day = p_day;
            v_out := v_out || pg_catalog.jsonb_build_object(v_job.job, 'ran');
        exception when others then
            update sync.job_runs j
            set finished_at = pg_catalog.clock_timestamp(), ok = false, error = sqlerrm
            where j.job = v_job.job and j.day = p_day;
            v_out := v_out || pg_catalog.jsonb_build_object(v_job.job, 'failed: ' || sqlerrm);
        end;
    end loop;
    return v_out;
end
$$;
comment on function sync.run_scheduled_jobs(date) is
    'Runs app.run_daily_jobs, app.run_weekly_jobs and app.run_monthly_jobs for a day, each once across all workers.';
grant execute on function sync.run_scheduled_jobs(date) to sync_worker;
