-- The scheduled SQL jobs (DESIGN §12), started by the sync worker's timer:
-- sync.run_scheduled_jobs(org slug) runs
--   * the organisation's daily jobs (app.run_daily_jobs(org, day)) for each of its LOCAL days that
--     has begun and not run yet: after the organisation's local midnight, once per day across all
--     workers (ledger sync.daily_job_runs), catching up missed days in order, oldest first (at most
--     31 days a call; the next call goes on). The first run of an organisation runs its today only.
--     A day that raises is rolled back alone, recorded with its error and retried on a later call
--     (ten minutes apart, three attempts in all); later days wait for it until its last attempt
--     failed, so days never run out of order while a retry is pending;
--   * the weekly job (app.run_weekly_jobs(day): billing's usage snapshot) and the monthly job
--     (app.run_monthly_jobs(day), all organisations' retention), each once per day across all
--     workers (ledger sync.job_runs), for the organisation's local day.
-- "Today" is app.org_today(org): the organisation's local date (or the day a transaction pins with
-- app.today, as the tests do), never the server's. Returns {today, daily: {<day>: ran | failed:
-- <error> | ...}, weekly and monthly: ran | already ran | running elsewhere | missing | failed:
-- <error>}.

-- (Before per-organisation days: one day for every organisation, the server's date.)
drop function if exists sync.run_scheduled_jobs(date);

-- The organisation's daily jobs that are due, in day order; returns {<day>: outcome}.
create or replace function sync.run_daily_jobs_due(p_org_id uuid, p_today date) returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
declare
    v_from date;
    v_day date;
    v_run sync.daily_job_runs;
    v_result jsonb;
    v_out jsonb := '{}';
begin
    if not pg_catalog.pg_try_advisory_xact_lock(460049, pg_catalog.hashtext(p_org_id::text)) then
        return pg_catalog.jsonb_build_object('all', 'running elsewhere');
    end if;
    -- The first day not run successfully after the last successful one (today on a first run).
    select coalesce(pg_catalog.max(r.day) + 1, p_today) into v_from
    from sync.daily_job_runs r where r.org_id = p_org_id and r.ok;
    for v_day in
        select g::date from pg_catalog.generate_series(v_from, p_today, interval '1 day') g
        order by 1 limit 31
    loop
        select * into v_run from sync.daily_job_runs r where r.org_id = p_org_id and r.day = v_day;
        if v_run.day is not null and v_run.ok is false then
            if v_run.attempts >= 3 then
                v_out := v_out || pg_catalog.jsonb_build_object(v_day, 'failed 3 times: ' || v_run.error);
                continue;                       -- given up: later days go on
            end if;
            if v_run.started_at >= pg_catalog.now() - interval '10 minutes' then
                v_out := v_out || pg_catalog.jsonb_build_object(v_day, 'failed, retried later');
                exit;                           -- later days wait for the retry
            end if;
        elsif v_run.day is not null then
            continue;                           -- ran (an earlier successful run of this day)
        end if;
        insert into sync.daily_job_runs as r (org_id, day) values (p_org_id, v_day)
        on conflict (org_id, day) do update
            set attempts = r.attempts + 1, started_at = pg_catalog.now(), finished_at = null,
                ok = null, error = null, result = null;
        begin
            v_result := app.run_daily_jobs(p_org_id, v_day);
            update sync.daily_job_runs r
            set finished_at = pg_catalog.clock_timestamp(), ok = true, result = v_result
            where r.org_id = p_org_id and r.day = v_day;
            v_out := v_out || pg_catalog.jsonb_build_object(v_day, 'ran');
        exception when others then
            update sync.daily_job_runs r
            set finished_at = pg_catalog.clock_timestamp(), ok = false, error = sqlerrm
            where r.org_id = p_org_id and r.day = v_day;
            v_out := v_out || pg_catalog.jsonb_build_object(v_day, 'failed: ' || sqlerrm);
            exit;
        end;
    end loop;
    return v_out;
end
$$;
comment on function sync.run_daily_jobs_due(uuid, date) is
    'Runs an organisation''s daily jobs for each local day up to p_today not run yet, in order (ledger sync.daily_job_runs).';

create or replace function sync.run_scheduled_jobs(p_org text) returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
declare
    v_org_id uuid;
    v_today date;
    v_claimed boolean;
    v_daily jsonb;
    v_job text;
    v_fn text;
    v_state text;
    v_result jsonb;
    v_jobs jsonb := '{}';
begin
    select o.id into v_org_id from app.organizations o where o.slug = p_org;
    if v_org_id is null then
        raise exception 'no organisation %', coalesce(pg_catalog.quote_literal(p_org), 'null')
            using errcode = '22023',
                  detail = pg_catalog.format('No organisation has the slug %s.', coalesce(p_org, 'null')),
                  hint = 'Check COMPLIANCE_ORG_SLUG.';
    end if;
    v_today := app.org_today(v_org_id);
    v_daily := sync.run_daily_jobs_due(v_org_id, v_today);

    -- The organisation-wide jobs of the day, each once per day across all workers.
    for v_job, v_fn in
        select j.job, j.fn
        from (values ('weekly', 'app.run_weekly_jobs'), ('monthly', 'app.run_monthly_jobs')) j(job, fn)
    loop
        if pg_catalog.to_regprocedure(v_fn || '(date)') is null then
            v_state := 'missing';
        elsif not pg_catalog.pg_try_advisory_xact_lock(460048, pg_catalog.hashtext(v_job || ':' || v_today::text)) then
            v_state := 'running elsewhere';
        else
            v_claimed := null;
            insert into sync.job_runs as j (job, day) values (v_job, v_today)
            on conflict (job, day) do update
                set attempts = j.attempts + 1, started_at = pg_catalog.now(), finished_at = null,
                    ok = null, error = null, result = null
                where j.ok is false and j.attempts < 3 and j.started_at < pg_catalog.now() - interval '10 minutes'
            returning true into v_claimed;
            if not coalesce(v_claimed, false) then
                v_state := 'already ran';
            else
                begin
                    execute pg_catalog.format('select %s($1)', v_fn) into v_result using v_today;
                    update sync.job_runs j
                    set finished_at = pg_catalog.clock_timestamp(), ok = true, result = v_result
                    where j.job = v_job and j.day = v_today;
                    v_state := 'ran';
                exception when others then
                    update sync.job_runs j
                    set finished_at = pg_catalog.clock_timestamp(), ok = false, error = sqlerrm
                    where j.job = v_job and j.day = v_today;
                    v_state := 'failed: ' || sqlerrm;
                end;
            end if;
        end if;
        v_jobs := v_jobs || pg_catalog.jsonb_build_object(v_job, v_state);
    end loop;
    return pg_catalog.jsonb_build_object('today', v_today, 'daily', v_daily) || v_jobs;
end
$$;
comment on function sync.run_scheduled_jobs(text) is
    'Runs the organisation''s due daily jobs (its local days, once, missed days in order) and the weekly and monthly jobs once a day.';
grant execute on function sync.run_scheduled_jobs(text) to sync_worker;
